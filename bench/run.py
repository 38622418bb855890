"""API server benchmarks. Prints one JSON document; record results in bench/RESULTS.md.

    .venv/bin/python bench/run.py [--store sqlite|etcd|both] [--quick] [--clients N]

For each store it starts a real ``kyb apiserver`` process (TLS, admin client certificate) and
measures, with 32 concurrent clients: ConfigMap creates (1 KiB), gets, a paginated list of
10,000 pods (pages of 500), watch delivery latency with 1,000 watches on pods under 100
writes/s, and the idle server's RSS. It also measures the raw write rate of the store
underneath (SQLite commits/s, etcd puts/s) and prints the API-to-raw ratio.

How the load is generated: the machine has 2 cores, shared by the server and the clients, so
the clients are kept cheap. They are separate processes (``--clients``, default 2) speaking
HTTP/1.1 over keep-alive TLS connections with a minimal hand-written client (no aiohttp on the
client side); watchers scan the raw stream for a timestamp marker instead of parsing JSON. Each
phase reports the server's and the clients' CPU use so a saturated client shows up in the data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT / "src"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

CONCURRENCY = 32
PAYLOAD = "x" * 900          # + metadata ≈ 1 KiB ConfigMap
WATCH_MARK = b'"bench-t":"'  # annotation carrying the monotonic send time of a watched write
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# small helpers
def _cli_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def hist_pct(hist: dict[int, int], p: float, width: float) -> float:
    """Percentile of a histogram of ``width``-second bins."""
    total = sum(hist.values())
    if not total:
        return 0.0
    want = p / 100 * total
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= want:
            return (b + 0.5) * width
    return max(hist) * width


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def client_ssl(kubeconfig: str) -> ssl.SSLContext:
    from kybernetes.pki.kubeconfig import client_ssl_context_from_kubeconfig

    _, ctx, _ = client_ssl_context_from_kubeconfig(kubeconfig)
    return ctx


# ---------------------------------------------------------------------------------------------
# a minimal HTTP/1.1 keep-alive client (cheaper than aiohttp's, so the clients stay light)
class Http:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.r = reader
        self.w = writer
        self.host = host

    @classmethod
    async def connect(cls, host: str, port: int, ctx: ssl.SSLContext) -> "Http":
        r, w = await asyncio.open_connection(host, port, ssl=ctx, limit=1 << 22)
        return cls(r, w, f"{host}:{port}")

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.w.write(head.encode() + body)
        raw = await self.r.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            n = int(raw[i + 17: raw.index(b"\r\n", i + 2)])
            return status, await self.r.readexactly(n)
        chunks = []
        while True:  # chunked
            size = int((await self.r.readuntil(b"\r\n")).strip(), 16)
            data = await self.r.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(data[:-2])

    def close(self) -> None:
        self.w.close()


async def connect_all(url: str, kubeconfig: str, n: int) -> list[Http]:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    ctx = client_ssl(kubeconfig)
    return list(await asyncio.gather(*(Http.connect(host, int(port), ctx) for _ in range(n))))


# ---------------------------------------------------------------------------------------------
# worker processes (``run.py --worker SPEC``): one phase, one JSON line on stdout
def cm_body(i: int) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"payload": PAYLOAD}})


def pod_body(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> bytes:
    md: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        md["annotations"] = annotations
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": md,
                         "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}})


def request_for(spec: dict[str, Any], i: int) -> tuple[str, str, bytes, int]:
    """(method, path, body, expected status) of the i-th operation of a load phase."""
    op = spec["op"]
    if op == "create_cm":
        return "POST", "/api/v1/namespaces/default/configmaps", cm_body(i), 201
    if op == "get_cm":
        return "GET", f"/api/v1/namespaces/default/configmaps/cm-{random.randrange(spec['names'])}", b"", 200
    if op == "create_pod":
        return "POST", "/api/v1/namespaces/default/pods", pod_body(f"pod-{i}", {"app": "bench"}), 201
    raise ValueError(op)


async def load_worker(spec: dict[str, Any]) -> dict[str, Any]:
    conns = await connect_all(spec["url"], spec["kubeconfig"], spec["conns"])
    indices = iter(range(spec["first"], spec["n"], spec["step"]))
    latencies: list[float] = []
    errors = 0

    async def loop(c: Http) -> None:
        nonlocal errors
        for i in indices:
            method, path, body, want = request_for(spec, i)
            t0 = time.perf_counter()
            status, _ = await c.request(method, path, body)
            latencies.append(time.perf_counter() - t0)
            if status != want:
                errors += 1

    await asyncio.sleep(max(0.0, spec["start_at"] - time.monotonic()))
    cpu0, t0 = own_cpu(), time.monotonic()
    await asyncio.gather(*(loop(c) for c in conns))
    end = time.monotonic()
    for c in conns:
        c.close()
    return {"latencies": latencies, "errors": errors, "end": end, "cpu": own_cpu() - cpu0, "wall": end - t0}


class WatchProtocol(asyncio.Protocol):
    """Reads one watch stream; records (now - send time) for every event carrying the marker."""

    def __init__(self, hist: dict[int, int], width: float) -> None:
        self.hist = hist
        self.width = width
        self.tail = b""
        self.events = 0
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.started.done():
            self.started.set_result(None)  # the response headers: the watch is registered
        buf = self.tail + data if self.tail else data
        pos = 0
        while True:
            i = buf.find(WATCH_MARK, pos)
            if i < 0:
                break
            j = buf.find(b'"', i + len(WATCH_MARK))
            if j < 0:
                self.tail = buf[i:]
                return
            b = int((now - float(buf[i + len(WATCH_MARK): j])) / self.width)
            self.hist[b] = self.hist.get(b, 0) + 1
            self.events += 1
            pos = j
        self.tail = buf[max(pos, len(buf) - len(WATCH_MARK)):]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.started.done():
            self.started.set_exception(ConnectionError(f"watch connection lost: {exc}"))


async def watch_worker(spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port = spec["url"].rsplit("//", 1)[1].rsplit(":", 1)
    ctx = client_ssl(spec["kubeconfig"])
    hist: dict[int, int] = {}
    width = 0.0005
    path = (f"/api/v1/namespaces/default/pods?watch=true&resourceVersion={spec['rv']}"
            f"&labelSelector={quote('bench=watch')}&timeoutSeconds={spec['timeout']}")
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    protos: list[WatchProtocol] = []
    transports: list[asyncio.BaseTransport] = []
    sem = asyncio.Semaphore(50)

    async def open_one() -> None:
        async with sem:
            tr, pr = await loop.create_connection(lambda: WatchProtocol(hist, width), host, int(port), ssl=ctx)
            tr.write(req)  # type: ignore[attr-defined]
            protos.append(pr)
            transports.append(tr)

    await asyncio.gather(*(open_one() for _ in range(spec["conns"])))
    await asyncio.wait_for(asyncio.gather(*(p.started for p in protos)), 120)
    print("READY", flush=True)
    cpu0, t0 = own_cpu(), time.monotonic()
    # the parent says when the writes are over by closing our stdin
    await loop.run_in_executor(None, sys.stdin.read)
    cpu, wall = own_cpu() - cpu0, time.monotonic() - t0
    for tr in transports:
        tr.close()
    return {"hist": {str(k): v for k, v in hist.items()}, "width": width, "events": sum(p.events for p in protos),
            "per_watcher": [p.events for p in protos], "cpu": cpu, "wall": wall}


def worker_main(spec: dict[str, Any]) -> None:
    if spec.get("uvloop"):
        use_uvloop()
    fn = watch_worker if spec["op"] == "watch" else load_worker
    out = asyncio.run(fn(spec))
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# the parent: server lifecycle and phases
class Server:
    def __init__(self, store: str, etcd_endpoints: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kyb-bench-"))
        self.port = free_port()
        args = [sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(self.dir),
                "--port", str(self.port), "--store", store, "--compaction-interval", "0"]
        if etcd_endpoints:
            args += ["--etcd-servers", etcd_endpoints]
        self.log = open(self.dir / "apiserver.log", "wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.kubeconfig = str(self.dir / "admin.kubeconfig")
        self.url = f"https://127.0.0.1:{self.port}"

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "apiserver.log").read_text()[-2000:])
            if os.path.exists(self.kubeconfig):
                try:
                    [c] = await connect_all(self.url, self.kubeconfig, 1)
                    status, _ = await c.request("GET", "/readyz")
                    if status == 200:
                        # pods need their ServiceAccount (admission); no controller manager runs here
                        sa = orjson.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                                           "metadata": {"name": "default"}})
                        status, body = await c.request("POST", "/api/v1/namespaces/default/serviceaccounts", sa)
                        c.close()
                        if status not in (201, 409):
                            raise RuntimeError(f"cannot create the default ServiceAccount: {status} {body!r}")
                        return
                    c.close()
                except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                    pass
            await asyncio.sleep(0.2)
        raise RuntimeError("apiserver did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


class Bench:
    def __init__(self, server: Server, clients: int, quick: bool, uvloop: bool) -> None:
        self.server = server
        self.clients = clients
        self.quick = quick
        self.uvloop = uvloop

    def spec(self, **kw: Any) -> dict[str, Any]:
        return {"url": self.server.url, "kubeconfig": self.server.kubeconfig, "uvloop": self.uvloop, **kw}

    async def spawn(self, spec: dict[str, Any]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", json.dumps(spec),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def load(self, op: str, n: int, **extra: Any) -> dict[str, Any]:
        """``n`` operations over CONCURRENCY connections split across the client processes."""
        start_at = time.monotonic() + 2.0  # time for the workers to start and connect
        per = CONCURRENCY // self.clients
        procs = [await self.spawn(self.spec(op=op, n=n, first=k, step=self.clients, conns=per, start_at=start_at, **extra))
                 for k in range(self.clients)]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        srv0 = cpu_seconds(self.server.proc.pid)
        outs = [orjson.loads((await p.communicate())[0]) for p in procs]
        srv_cpu = cpu_seconds(self.server.proc.pid) - srv0
        lat = [x for o in outs for x in o["latencies"]]
        elapsed = max(o["end"] for o in outs) - start_at
        return {"ops": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 1),
                "p50_ms": round(pct(lat, 50) * 1000, 2), "p99_ms": round(pct(lat, 99) * 1000, 2),
                "errors": sum(o["errors"] for o in outs),
                "server_cpu_cores": round(srv_cpu / elapsed, 2),
                "client_cpu_cores": round(sum(o["cpu"] for o in outs) / elapsed, 2)}

    async def list_pods(self) -> dict[str, Any]:
        [c] = await connect_all(self.server.url, self.server.kubeconfig, 1)
        srv0 = cpu_seconds(self.server.proc.pid)
        t0 = time.perf_counter()
        token, count, pages = "", 0, 0
        while True:
            path = "/api/v1/namespaces/default/pods?limit=500" + (f"&continue={quote(token)}" if token else "")
            status, body = await c.request("GET", path)
            assert status == 200, body[:300]
            doc = orjson.loads(body)
            count += len(doc["items"])
            pages += 1
            token = doc["metadata"].get("continue", "")
            if not token:
                break
        elapsed = time.perf_counter() - t0
        c.close()
        return {"pods": count, "pages": pages, "seconds": round(elapsed, 3),
                "server_cpu_seconds": round(cpu_seconds(self.server.proc.pid) - srv0, 3)}

    async def watch(self) -> dict[str, Any]:
        n_watch, rate = 1000, 100
        duration = 5.0 if self.quick else 10.0
        [c] = await connect_all(self.server.url, self.server.kubeconfig, 1)
        _, body = await c.request("GET", "/api/v1/namespaces/default/pods?limit=1")
        c.close()
        rv = orjson.loads(body)["metadata"]["resourceVersion"]
        procs = [await self.spawn(self.spec(op="watch", rv=rv, conns=n_watch // self.clients, timeout=int(duration) + 120))
                 for _ in range(self.clients)]
        for p in procs:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), 120)
            assert line.strip() == b"READY", line
        await asyncio.sleep(1.0)
        writers = await connect_all(self.server.url, self.server.kubeconfig, 8)
        free: asyncio.Queue[Http] = asyncio.Queue()
        for w in writers:
            free.put_nowait(w)
        write_lat: list[float] = []
        errors = 0

        async def write(i: int) -> None:
            nonlocal errors
            conn = await free.get()
            t = time.monotonic()
            body = pod_body(f"w-{i}", {"bench": "watch"}, {"bench-t": f"{t:.6f}"})
            status, _ = await conn.request("POST", "/api/v1/namespaces/default/pods", body)
            write_lat.append(time.monotonic() - t)
            errors += status != 201
            free.put_nowait(conn)

        n_writes = int(duration * rate)
        srv0 = cpu_seconds(self.server.proc.pid)
        t_start = time.monotonic()
        tasks = []
        for i in range(n_writes):
            delay = t_start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(write(i)))
        await asyncio.gather(*tasks)
        srv_cpu = cpu_seconds(self.server.proc.pid) - srv0
        elapsed = time.monotonic() - t_start
        await asyncio.sleep(3.0)  # let the last events arrive
        for w in writers:
            w.close()
        outs = []
        for p in procs:
            out, _ = await p.communicate(b"")
            outs.append(orjson.loads(out.splitlines()[-1]))
        hist: dict[int, int] = {}
        for o in outs:
            for k, v in o["hist"].items():
                hist[int(k)] = hist.get(int(k), 0) + v
        width = outs[0]["width"]
        delivered = sum(o["events"] for o in outs)
        per_watcher = [n for o in outs for n in o["per_watcher"]]
        return {"watches": n_watch, "writes": n_writes, "writes_per_s": round(n_writes / elapsed, 1),
                "write_errors": errors, "delivered": delivered, "expected": n_writes * n_watch,
                "watchers_short": sum(1 for n in per_watcher if n < n_writes),
                "min_per_watcher": min(per_watcher, default=0),
                "p50_ms": round(hist_pct(hist, 50, width) * 1000, 1), "p99_ms": round(hist_pct(hist, 99, width) * 1000, 1),
                "max_ms": round((max(hist) + 1) * width * 1000, 1) if hist else 0.0,
                "write_p99_ms": round(pct(write_lat, 99) * 1000, 1),
                "server_cpu_cores": round(srv_cpu / elapsed, 2),
                "client_cpu_cores": round(sum(o["cpu"] / o["wall"] for o in outs), 2)}


async def bench_api(server: Server, clients: int, quick: bool, uvloop: bool, only: set[str]) -> dict[str, Any]:
    await server.wait_ready()
    await asyncio.sleep(2.0)
    b = Bench(server, clients, quick, uvloop)
    out: dict[str, Any] = {"idle_rss_mb": round(rss_mb(server.proc.pid), 1)}
    n_create = 2000 if quick else 8000
    if "create" in only or "get" in only:
        out["create_configmap_1KiB"] = await b.load("create_cm", n_create)
    if "get" in only:
        out["get_configmap"] = await b.load("get_cm", n_create * 2, names=n_create)
    if "list" in only:
        n_pods = 2000 if quick else 10000
        out["create_pod"] = await b.load("create_pod", n_pods)
        out["list_pods_pages_of_500"] = await b.list_pods()
    if "watch" in only:
        out["watch_1000_at_100_writes_per_s"] = await b.watch()
    out["rss_after_load_mb"] = round(rss_mb(server.proc.pid), 1)
    return out


async def bench_raw(store: str, endpoints: list[str] | None, quick: bool) -> dict[str, Any]:
    from bench import store_raw

    n = 1000 if quick else 4000
    kinds = ("sqlite-raw-full", "sqlite-raw-normal", "sqlite") if store == "sqlite" else ("etcd-raw", "etcd")
    return {k: await store_raw.measure(k, n=n, endpoints=endpoints) for k in kinds}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=("sqlite", "etcd", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    ap.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--only", default="create,get,list,watch", help="comma-separated phases")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw store measurements")
    ap.add_argument("--client-uvloop", action="store_true", help="run the client processes on uvloop")
    args = ap.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
                    "cpu_model": _cpu_model()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load": {"client_processes": args.clients, "connections": CONCURRENCY,
                 "client_loop": "uvloop" if args.client_uvloop else "asyncio",
                 "server_loop": _cli_loop(),  # the loop `kyb` itself picks
                 "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
    }
    stores = ["sqlite", "etcd"] if args.store == "both" else [args.store]
    for store in stores:
        etcd = None
        try:
            endpoints: list[str] | None = None
            if store == "etcd":
                from tests.etcd_server import EtcdServer

                etcd = EtcdServer()
                endpoints = etcd.endpoints
            raw = {} if args.no_raw else await bench_raw(store, endpoints, args.quick)
            server = Server(store, ",".join(endpoints or []))
            try:
                api = await bench_api(server, args.clients, args.quick, args.client_uvloop, only)
            finally:
                server.stop()
            entry: dict[str, Any] = {"raw": raw, "api": api}
            create = api.get("create_configmap_1KiB", {}).get("per_second")
            base = raw.get("sqlite-raw-full") or raw.get("etcd-raw")
            if create and base:
                entry["api_to_raw_create_ratio"] = round(create / base["ops_per_s"], 3)
            backend = raw.get("sqlite") or raw.get("etcd")
            if create and backend:
                entry["api_to_store_create_ratio"] = round(create / backend["ops_per_s"], 3)
            result[store] = entry
        finally:
            if etcd is not None:
                etcd.stop()
    print(json.dumps(result, indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(json.loads(sys.argv[2]))
    else:
        asyncio.run(main())
