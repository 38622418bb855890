"""Liveness, readiness and startup probes (upstream ``pkg/kubelet/prober``).

    probes = ProbeManager(runtime, status_of=kubelet.status_of, on_change=kubelet.resync,
                          event=kubelet.container_event, clock=clock)
    probes.add_pod(pod)             # one worker per (pod, container, probe kind)
    probes.results                   # {(container id, "liveness"|"readiness"|"startup"): "Success"|"Failure"}
    await probes.remove_pod(uid)

A worker probes its container every ``periodSeconds`` (default 10). It waits while the container is
not running, for ``initialDelaySeconds`` after the container started, and — for liveness and
readiness — until the startup probe passed (the ``started`` flag of the status). A result counts
only after ``failureThreshold`` (3) failures or ``successThreshold`` (1) successes in a row. Every
failed run records an ``Unhealthy`` event (``Liveness probe failed: <output>``). A failed liveness
or startup result puts the worker on hold until the container is replaced (the pod worker kills it
and starts a new one). A readiness worker starts at Failure (not ready), a liveness one at Success.
On deletion, liveness and startup stop with Success so a terminating container is not restarted.

``run_probe`` executes one probe: ``exec`` (``runtime.exec_sync`` with the timeout), ``httpGet``
(to the pod IP with aiohttp; through ``runtime.port_forward`` when the pod has no IP of its own,
e.g. a loopback-only network; 200–399 is success), ``tcpSocket`` (a connection opens). ``grpc`` is
not supported: such a probe errors, and errors never change a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..api import meta as m
from ..util.clock import Clock, RealClock
from ..util.tasks import Supervisor
from .actions import FAILURE, SUCCESS
from .runtime.base import Runtime, RuntimeError_

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KINDS = ("liveness", "readiness", "startup")
SPEC_FIELD = {"liveness": "livenessProbe", "readiness": "readinessProbe", "startup": "startupProbe"}
USER_AGENT = "kube-probe/1.32"
MAX_BODY = 10 * 1024
MAX_OUTPUT = 10 * 1024


class ProbeError(Exception):
    """The probe could not be run (not a failure of the container): its result is thrown away."""


@dataclass(frozen=True)
class ProbeTarget:
    """Where a probe or hook goes: the container (exec), the pod's IP or its sandbox (network)."""

    runtime: Runtime
    container_id: str
    sandbox_id: str
    pod_ip: str | None
    container: Mapping[str, Any]


def resolve_port(port: Any, container: Mapping[str, Any]) -> int:
    """A port number, or a named port of the container."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        n = int(port)
        if 0 < n < 65536:
            return n
        raise ProbeError(f"invalid port number: {n}")
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p.get("containerPort") or 0)
    raise ProbeError(f"couldn't find port: {port} in {container.get('name', '')}")


def _text(data: bytes, limit: int = MAX_OUTPUT) -> str:
    return data[:limit].decode(errors="replace")


# -- the probe actions ----------------------------------------------------------------------------------
async def exec_action(target: ProbeTarget, command: list[str], timeout: float) -> tuple[bool, str]:
    """(succeeded, output) of running ``command`` in the container."""
    res = await target.runtime.exec_sync(target.container_id, list(command), timeout)
    if res.timed_out:
        return False, f'command "{" ".join(command)}" timed out'
    return res.exit_code == 0, _text(res.stdout + res.stderr)


def _http_url(action: Mapping[str, Any], host: str, port: int) -> str:
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    h = f"[{host}]" if ":" in host else host
    return f"{scheme}://{h}:{port}{path}"


def _headers(action: Mapping[str, Any], host: str) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or ():
        if h.get("name"):
            headers[str(h["name"])] = str(h.get("value") or "")
    headers.setdefault("Host", host)
    return headers


async def http_action(target: ProbeTarget, action: Mapping[str, Any],
                      timeout: float) -> tuple[bool, str]:
    """(succeeded, output) of an HTTP GET; success is a status in [200, 400)."""
    port = resolve_port(action.get("port"), target.container)
    host = str(action.get("host") or target.pod_ip or "")
    if not host:
        return await _http_over_forward(target, action, port, timeout)
    url = _http_url(action, host, port)
    sslctx: ssl.SSLContext | bool = False
    try:
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout),
                connector=aiohttp.TCPConnector(ssl=sslctx, force_close=True)) as session:
            async with session.get(url, headers=_headers(action, f"{host}:{port}"),
                                   allow_redirects=True, max_redirects=10) as resp:
                body = await resp.content.read(MAX_BODY)
                return _http_verdict(resp.status, body)
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except aiohttp.ClientConnectorError as e:
        return False, f'Get "{url}": dial tcp {host}:{port}: {_errno_text(e.os_error)}'
    except (aiohttp.ClientError, OSError) as e:
        return False, f'Get "{url}": {e}'


def _http_verdict(status: int, body: bytes) -> tuple[bool, str]:
    if 200 <= status < 400:
        return True, _text(body)
    return False, f"HTTP probe failed with statuscode: {status}"


def _errno_text(err: BaseException | None) -> str:
    if isinstance(err, ConnectionRefusedError) or (
            isinstance(err, RuntimeError_) and "refused" in str(err)):
        return "connect: connection refused"
    if isinstance(err, TimeoutError):
        return "i/o timeout"
    return f"connect: {getattr(err, 'strerror', None) or err}"


async def _http_over_forward(target: ProbeTarget, action: Mapping[str, Any], port: int,
                             timeout: float) -> tuple[bool, str]:
    """An HTTP/1.1 GET over a connection the runtime opens inside the sandbox (no pod IP)."""
    url = _http_url(action, "localhost", port)
    if str(action.get("scheme") or "HTTP").upper() == "HTTPS":
        raise ProbeError("HTTPS probes need a pod IP")
    path = url.split(f":{port}", 1)[1]
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await target.runtime.port_forward(target.sandbox_id, port)
            assert isinstance(reader, asyncio.StreamReader)
            try:
                headers = _headers(action, f"localhost:{port}")
                headers["Connection"] = "close"
                req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write((req + "\r\n").encode())  # type: ignore[attr-defined]
                await writer.drain()  # type: ignore[attr-defined]
                line = await reader.readline()
                parts = line.decode(errors="replace").split()
                if len(parts) < 2 or not parts[1].isdigit():
                    return False, f'Get "{url}": malformed HTTP response {line[:80]!r}'
                while (await reader.readline()).strip():
                    pass
                body = await reader.read(MAX_BODY)
                return _http_verdict(int(parts[1]), body)
            finally:
                writer.close()  # type: ignore[attr-defined]
    except TimeoutError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except (OSError, RuntimeError_) as e:
        return False, f'Get "{url}": {_errno_text(e)}'


async def tcp_action(target: ProbeTarget, action: Mapping[str, Any], timeout: float) -> tuple[bool, str]:
    """(succeeded, output) of opening a TCP connection."""
    port = resolve_port(action.get("port"), target.container)
    host = str(action.get("host") or target.pod_ip or "")
    try:
        async with asyncio.timeout(timeout):
            if host:
                _r, writer = await asyncio.open_connection(host, port)
            else:
                _r, writer = await target.runtime.port_forward(target.sandbox_id, port)
        writer.close()  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            await writer.wait_closed()  # type: ignore[attr-defined]
        return True, ""
    except TimeoutError:
        return False, f"dial tcp {host or 'localhost'}:{port}: i/o timeout"
    except (OSError, RuntimeError_) as e:
        return False, f"dial tcp {host or 'localhost'}:{port}: {_errno_text(e)}"


async def run_probe(probe: Mapping[str, Any], target: ProbeTarget) -> tuple[str, str]:
    """Run one probe: ("Success" | "Failure", output). Raises ProbeError when it cannot run."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if probe.get("exec") is not None:
        ok, out = await exec_action(target, list((probe["exec"] or {}).get("command") or []), timeout)
    elif probe.get("httpGet") is not None:
        ok, out = await http_action(target, probe["httpGet"], timeout)
    elif probe.get("tcpSocket") is not None:
        ok, out = await tcp_action(target, probe["tcpSocket"], timeout)
    elif probe.get("grpc") is not None:
        raise ProbeError("grpc probes are not supported by this kubelet")
    else:
        raise ProbeError("missing probe handler")
    return (SUCCESS if ok else FAILURE), out


# -- workers ------------------------------------------------------------------------------------------------
EventFunc = Callable[[Obj, Mapping[str, Any], str, str, str], None]  # pod, container, type, reason, msg


def _find_status(status: Obj, name: str) -> Obj | None:
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or ():
            if cs.get("name") == name:
                return dict(cs)
    return None


class _Worker:
    def __init__(self, mgr: ProbeManager, pod: Obj, container: Mapping[str, Any], kind: str) -> None:
        self.mgr = mgr
        self.pod = pod
        self.uid = str((pod.get("metadata") or {}).get("uid") or "")
        self.container = container
        self.name = str(container.get("name", ""))
        self.kind = kind
        self.spec: Mapping[str, Any] = container.get(SPEC_FIELD[kind]) or {}
        self.container_id = ""
        self.on_hold = False
        self.last: str | None = None
        self.run_count = 0
        self.trigger = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def initial(self) -> str | None:
        return {"readiness": FAILURE, "liveness": SUCCESS}.get(self.kind)

    async def run(self) -> None:
        period = max(1.0, float(self.spec.get("periodSeconds") or 10))
        try:
            while await self.do_probe():
                await self._wait(period)
        finally:
            if self.container_id:
                self.mgr._forget((self.container_id, self.kind))

    async def _wait(self, period: float) -> None:
        """Sleep one period, or less when triggered."""
        if not self.trigger.is_set():
            sleeper = asyncio.ensure_future(self.mgr.clock.sleep(period))
            waiter = asyncio.ensure_future(self.trigger.wait())
            try:
                await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waiter.cancel()
        self.trigger.clear()

    async def do_probe(self) -> bool:
        """One round; False stops the worker."""
        status = self.mgr.status_of(self.uid)
        if status is None:
            return True
        if status.get("phase") in ("Succeeded", "Failed"):
            return False
        cs = _find_status(status, self.name)
        if cs is None or not cs.get("containerID"):
            return True
        cid = str(cs["containerID"]).partition("://")[2]
        if cid != self.container_id:
            if self.container_id:
                self.mgr._forget((self.container_id, self.kind))
            self.container_id = cid
            self.mgr._set((cid, self.kind), self.initial, self.uid, notify=False)
            self.on_hold = False
            self.last, self.run_count = None, 0
        if self.on_hold:
            return True
        state = cs.get("state") or {}
        running = state.get("running")
        if not running:
            self.mgr._set((cid, self.kind), FAILURE, self.uid, notify=False)
            policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
            return not (state.get("terminated") and policy == "Never")
        if (self.pod.get("metadata") or {}).get("deletionTimestamp") and self.kind != "readiness":
            self.mgr._set((cid, self.kind), SUCCESS, self.uid, notify=False)
            return False
        started_at = m.parse_time(running.get("startedAt"))
        delay = float(self.spec.get("initialDelaySeconds") or 0)
        if started_at is not None and (self.mgr.clock.wall() - started_at).total_seconds() < delay:
            return True
        if cs.get("started"):
            if self.kind == "startup":
                return True
        elif self.kind != "startup":
            return True
        target = self.mgr.target_of(self.uid, cid, self.container)
        if target is None:
            return True
        try:
            result, output = await run_probe(self.spec, target)
        except ProbeError as e:
            self.mgr.emit(self.pod, self.container, "Warning", "Unhealthy",
                          f"{self.kind.capitalize()} probe errored: {e}")
            return True
        except Exception as e:  # a runtime error (container gone mid-probe): not a verdict
            log.debug("%s probe of %s/%s errored: %r", self.kind, self.uid, self.name, e)
            return True
        if result == FAILURE:
            self.mgr.emit(self.pod, self.container, "Warning", "Unhealthy",
                          f"{self.kind.capitalize()} probe failed: {output}")
        if result == self.last:
            self.run_count += 1
        else:
            self.last, self.run_count = result, 1
        failure_threshold = int(self.spec.get("failureThreshold") or 3)
        success_threshold = int(self.spec.get("successThreshold") or 1)
        if (result == FAILURE and self.run_count < failure_threshold) or (
                result == SUCCESS and self.run_count < success_threshold):
            return True
        self.mgr._set((cid, self.kind), result, self.uid, notify=True)
        if self.kind in ("liveness", "startup") and result == FAILURE:
            self.on_hold = True  # until the pod worker replaced the container
            self.run_count = 0
        return True


class ProbeManager:
    """Probe workers for the pods of a kubelet (see the module docstring)."""

    def __init__(self, runtime: Runtime, *, status_of: Callable[[str], Obj | None],
                 on_change: Callable[[str], None], event: EventFunc,
                 target_of: Callable[[str, str, Mapping[str, Any]], ProbeTarget | None],
                 clock: Clock | None = None) -> None:
        self.runtime = runtime
        self.status_of = status_of
        self.on_change = on_change
        self.emit = event
        self.target_of = target_of
        self.clock = clock or RealClock()
        self.results: dict[tuple[str, str], str] = {}
        self._workers: dict[tuple[str, str, str], _Worker] = {}
        self._sup = Supervisor("probes", logger=log)

    def _set(self, key: tuple[str, str], value: str | None, uid: str, *, notify: bool) -> None:
        old = self.results.get(key)
        if value is None:
            self.results.pop(key, None)
        else:
            self.results[key] = value
        if notify and old != value:
            self.on_change(uid)

    def _forget(self, key: tuple[str, str]) -> None:
        self.results.pop(key, None)

    def add_pod(self, pod: Obj) -> None:
        """Start the workers ``pod`` needs (idempotent; a pod's probes never change)."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
        for c in containers:
            for kind in KINDS:
                key = (uid, str(c.get("name", "")), kind)
                if not c.get(SPEC_FIELD[kind]) or key in self._workers:
                    continue
                w = _Worker(self, pod, c, kind)
                self._workers[key] = w
                w.task = self._sup.start(self._run(key, w), name=f"probe/{uid}/{key[1]}/{kind}")

    async def _run(self, key: tuple[str, str, str], w: _Worker) -> None:
        try:
            await w.run()
        finally:
            if self._workers.get(key) is w:
                del self._workers[key]

    def update_pod(self, pod: Obj) -> None:
        """Keep the workers' pod object current (deletion stops liveness and startup probes)."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        for (wuid, _n, _k), w in list(self._workers.items()):
            if wuid == uid:
                was = bool((w.pod.get("metadata") or {}).get("deletionTimestamp"))
                w.pod = pod
                if deleting and not was:
                    w.trigger.set()

    def trigger(self, uid: str) -> None:
        """Probe ``uid``'s containers now (e.g. a readiness result is still missing)."""
        for (wuid, _n, _k), w in list(self._workers.items()):
            if wuid == uid:
                w.trigger.set()

    async def remove_pod(self, uid: str) -> None:
        tasks = []
        for key, w in list(self._workers.items()):
            if key[0] == uid and w.task is not None:
                w.task.cancel()
                tasks.append(w.task)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def has_workers(self, uid: str) -> bool:
        return any(k[0] == uid for k in self._workers)

    async def stop(self) -> None:
        await self._sup.stop()

    def statistics(self) -> dict[str, int]:
        return {"workers": len(self._workers), "results": len(self.results)}


def probe_results_for(results: Mapping[tuple[str, str], str],
                      container_ids: set[str]) -> dict[tuple[str, str], str]:
    """The results that concern ``container_ids`` (what the pure deciders take)."""
    return {k: v for k, v in results.items() if k[0] in container_ids}

