"""Authorization overhead: API create and get throughput, AlwaysAllow vs RBAC, 1,000 RoleBindings.

    .venv/bin/python bench/authz.py [--quick] [--clients N]

Prints one JSON document. For each ``--authorization-mode`` (AlwaysAllow, then RBAC,Node) it
starts a real ``kyb apiserver`` process (TLS, SQLite), fills the cluster with 100 namespaces
holding 1,000 RoleBindings (to ``view``, for 1,000 different users) plus one RoleBinding that
gives the benchmark user ``bench`` the ``edit`` role in ``default``, and then, as ``bench``
(a client certificate, not ``system:masters``, so every request really is authorized), runs
the same load phases as ``bench/run.py``: ConfigMap creates and gets from 32 connections.
``in_process_cost`` is the noise-free part: microseconds per authorization (URL parsing and
decision) in-process, for both modes. ``summary`` compares the two modes' throughput over all rounds (the order of the modes alternates
between rounds, so a machine shared with other work biases neither); the target is at most 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT / "src"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench.run import Bench, Server, connect_all  # noqa: E402

NAMESPACES = 100
BINDINGS = 1000


class ModeServer(Server):
    """bench/run.py's server with an authorization mode (its command line is built in __init__)."""

    def __init__(self, mode: str) -> None:
        import subprocess
        import tempfile

        from bench.run import free_port

        self.dir = Path(tempfile.mkdtemp(prefix="kyb-bench-authz-"))
        self.port = free_port()
        args = [sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(self.dir),
                "--port", str(self.port), "--compaction-interval", "0", "--authorization-mode", mode]
        self.log = open(self.dir / "apiserver.log", "wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.kubeconfig = str(self.dir / "admin.kubeconfig")
        self.url = f"https://127.0.0.1:{self.port}"


def user_kubeconfig(server: Server, user: str) -> str:
    from kybernetes.pki import ensure_pki, issue_client_cert
    from kybernetes.pki.kubeconfig import write_kubeconfig

    pki = ensure_pki(server.dir / "pki", hosts=[])
    cert, key = issue_client_cert(pki, user, [])
    path = server.dir / f"{user}.kubeconfig"
    write_kubeconfig(path, server=server.url, ca_pem=Path(pki.ca_cert).read_bytes(), cert_pem=cert, key_pem=key, user=user)
    return str(path)


def rolebinding(name: str, ns: str, role: str, user: str) -> bytes:
    return orjson.dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                         "metadata": {"name": name, "namespace": ns},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})


async def populate(server: Server) -> float:
    """Namespaces and RoleBindings, created by the admin over 16 connections; returns seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    conns = await connect_all(server.url, server.kubeconfig, 16)
    queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
    for i in range(NAMESPACES):
        queue.put_nowait(("POST", "/api/v1/namespaces", orjson.dumps({"metadata": {"name": f"team-{i}"}})))

    async def drain(c: Any) -> None:
        while not queue.empty():
            method, path, body = queue.get_nowait()
            status, out = await c.request(method, path, body)
            assert status == 201, out[:300]

    await asyncio.gather(*(drain(c) for c in conns))
    for i in range(BINDINGS):
        ns = f"team-{i % NAMESPACES}"
        queue.put_nowait(("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
                          rolebinding(f"viewer-{i}", ns, "view", f"user-{i}")))
    queue.put_nowait(("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
                      rolebinding("bench-edit", "default", "edit", "bench")))
    await asyncio.gather(*(drain(c) for c in conns))
    for c in conns:
        c.close()
    return loop.time() - t0


class UserBench(Bench):
    """Bench whose load phases run as another user."""

    def __init__(self, server: Server, kubeconfig: str, clients: int, quick: bool, uvloop: bool) -> None:
        super().__init__(server, clients, quick, uvloop)
        self.user_kubeconfig = kubeconfig

    def spec(self, **kw: Any) -> dict[str, Any]:
        return {**super().spec(**kw), "kubeconfig": self.user_kubeconfig}


async def run_mode(mode: str, clients: int, quick: bool) -> dict[str, Any]:
    from bench.run import _cli_loop

    server = ModeServer(mode)
    try:
        await server.wait_ready()
        populate_s = await populate(server)
        kc = await asyncio.to_thread(user_kubeconfig, server, "bench")
        uv = _cli_loop() == "uvloop"
        b = UserBench(server, kc, clients, quick, uv)
        n_create = 2000 if quick else 5000
        n_get = 5000 if quick else 20000
        await asyncio.sleep(1.0)   # let the watch-fed caches settle after the burst of bindings
        create = await b.load("create_cm", n_create)
        get = await b.load("get_cm", n_get, names=n_create)
        return {"mode": mode, "populate_seconds": round(populate_s, 2), "create_configmap": create, "get_configmap": get}
    finally:
        server.stop()


def in_process_cost(n: int = 50_000) -> dict[str, float]:
    """Microseconds per authorization in-process (URL parsing + decision), with the same 1,000
    RoleBindings: the part of a request's cost that authorization adds, free of machine noise."""
    import time

    from multidict import MultiDict

    from kybernetes.apiserver.authn import UserInfo
    from kybernetes.apiserver.authz import bootstrap as bs
    from kybernetes.apiserver.authz.aggregation import compute_aggregated_rules
    from kybernetes.apiserver.authz.attributes import from_request
    from kybernetes.apiserver.authz.node import NodeAuthorizer, NodeGraph
    from kybernetes.apiserver.authz.rbac import RbacAuthorizer, RbacIndex
    from kybernetes.apiserver.authz.union import AlwaysAllow, PrivilegedGroup, Union

    prefix = "/registry/rbac.authorization.k8s.io"
    index = RbacIndex()
    roles = bs.cluster_roles()
    for _ in range(3):
        for role in roles:
            want = compute_aggregated_rules(role, roles)
            if want is not None:
                role["rules"] = want
    for role in roles:
        index.on_cluster_role(f"{prefix}/clusterroles/{role['metadata']['name']}", role)
    for crb in bs.cluster_role_bindings():
        index.on_binding(False)(f"{prefix}/clusterrolebindings/{crb['metadata']['name']}", crb)
    for i in range(BINDINGS):
        ns = f"team-{i % NAMESPACES}"
        index.on_binding(True)(f"{prefix}/rolebindings/{ns}/viewer-{i}",
                               orjson.loads(rolebinding(f"viewer-{i}", ns, "view", f"user-{i}")))
    index.on_binding(True)(f"{prefix}/rolebindings/default/bench-edit",
                           orjson.loads(rolebinding("bench-edit", "default", "edit", "bench")))
    user = UserInfo("bench", groups=("system:authenticated",))
    query: MultiDict[str] = MultiDict()
    out: dict[str, float] = {}
    for label, authz in (("always_allow", Union([PrivilegedGroup(), AlwaysAllow()])),
                         ("rbac_node", Union([PrivilegedGroup(), RbacAuthorizer(index), NodeAuthorizer(NodeGraph())]))):
        for op, method, path in (("get", "GET", "/api/v1/namespaces/default/configmaps/cm-{}"),
                                 ("create", "POST", "/api/v1/namespaces/default/configmaps")):
            t0 = time.perf_counter()
            for i in range(n):
                assert authz.authorize(from_request(user, method, path.format(i % 5000), query)).allowed
            out[f"{label}_{op}_us"] = round((time.perf_counter() - t0) / n * 1e6, 2)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer operations")
    ap.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds, alternating which mode goes first so drift on a shared machine cancels (default 2)")
    ap.add_argument("--in-process-only", action="store_true", help="only the in-process cost per authorization")
    args = ap.parse_args()
    cost = in_process_cost()
    if args.in_process_only:
        print(json.dumps({"benchmark": "authz", "in_process_cost": cost}, indent=2))
        return
    modes = ("AlwaysAllow", "RBAC,Node")
    results: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            results.append({"round": r + 1, **await run_mode(mode, args.clients, args.quick)})

    def rate(mode: str, phase: str) -> float:
        runs = [x[phase] for x in results if x["mode"] == mode]
        return sum(x["ops"] for x in runs) / sum(x["seconds"] for x in runs)

    overhead = {}
    for phase in ("create_configmap", "get_configmap"):
        a, b = rate(modes[0], phase), rate(modes[1], phase)
        overhead[phase] = {"always_allow_per_second": round(a, 1), "rbac_per_second": round(b, 1),
                           "overhead_percent": round((a - b) / a * 100, 1) if a else 0.0}
    doc = {"benchmark": "authz", "rolebindings": BINDINGS, "namespaces": NAMESPACES, "user": "bench (edit in default)",
           "python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
           "in_process_cost": cost, "results": results, "summary": overhead, "target_percent": 10}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
