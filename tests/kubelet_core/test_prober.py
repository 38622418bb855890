"""Probes: exec / httpGet / tcpSocket against a fake runtime and a local aiohttp server; the probe
workers' thresholds, gating and results; lifecycle hooks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from kybernetes.kubelet.hooks import HookError, run_hook, run_pre_stop
from kybernetes.kubelet.prober import ProbeError, ProbeManager, ProbeTarget, run_probe
from kybernetes.kubelet.runtime.base import ExecResult
from kybernetes.kubelet.runtime.testing import FakeRuntime
from kybernetes.util.clock import FakeClock

from .helpers import container, pod

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def runtime() -> AsyncIterator[FakeRuntime]:
    rt = FakeRuntime()
    try:
        yield rt
    finally:
        await rt.close()


async def _running_container(rt: FakeRuntime) -> tuple[str, str]:
    from kybernetes.kubelet.runtime.base import ContainerConfig, SandboxConfig
    sbs = await rt.run_sandbox(SandboxConfig(pod_uid="u", namespace="default", name="web", hostname="web"))
    cid = await rt.create_container(sbs.id, ContainerConfig(name="app", image="x", image_id="y",
                                                            rootfs_layers=[], argv=["sh"]))
    await rt.start_container(cid)
    return sbs.id, cid


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        code = int(request.match_info.get("code") or 200)
        if request.path == "/redirect":
            raise web.HTTPFound("/200")
        return web.Response(status=code, text=f"status {code}")

    app = web.Application()
    app.router.add_get("/redirect", handler)
    app.router.add_get("/{code}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- single probes -----------------------------------------------------------------------------------------
async def test_exec_probe(runtime: FakeRuntime) -> None:
    sid, cid = await _running_container(runtime)
    target = ProbeTarget(runtime, cid, sid, None, container("app"))
    runtime.script_exec(ExecResult(0, b"ok\n"), argv=["check"])
    assert await run_probe({"exec": {"command": ["check"]}, "timeoutSeconds": 2}, target) == ("Success", "ok\n")
    runtime.script_exec(ExecResult(1, b"", b"boom"), argv=["check"])
    assert await run_probe({"exec": {"command": ["check"]}}, target) == ("Failure", "boom")
    runtime.script_exec(ExecResult(-1, timed_out=True), argv=["check"])
    assert await run_probe({"exec": {"command": ["check", "x"]}}, target) == (
        "Failure", 'command "check x" timed out')
    assert ("exec_sync", (cid, ["check"], 2.0)) in runtime.calls


async def test_http_probe_to_the_pod_ip(runtime: FakeRuntime, http_server: Any) -> None:
    port, seen = http_server
    target = ProbeTarget(runtime, "c", "s", "127.0.0.1", container("app", ports=[{"name": "web", "containerPort": port}]))
    probe = {"httpGet": {"path": "/204", "port": "web", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}
    assert (await run_probe(probe, target))[0] == "Success"
    assert seen[-1]["User-Agent"] == "kube-probe/1.32" and seen[-1]["X-Probe"] == "1"
    assert await run_probe({"httpGet": {"path": "/500", "port": port}}, target) == (
        "Failure", "HTTP probe failed with statuscode: 500")
    assert (await run_probe({"httpGet": {"path": "/redirect", "port": port}}, target))[0] == "Success"
    closed = _free_port()
    result, out = await run_probe({"httpGet": {"path": "/", "port": closed}}, target)
    assert result == "Failure"
    assert out == f'Get "http://127.0.0.1:{closed}/": dial tcp 127.0.0.1:{closed}: connect: connection refused'


async def test_http_probe_through_port_forward_without_a_pod_ip(runtime: FakeRuntime) -> None:
    sid, cid = await _running_container(runtime)
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        code = b"200 OK" if b"/healthz" in head else b"503 Service Unavailable"
        writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    runtime.port_handlers[8080] = serve
    target = ProbeTarget(runtime, cid, sid, None, container("app"))
    assert (await run_probe({"httpGet": {"path": "/healthz", "port": 8080}}, target))[0] == "Success"
    assert requests[0].startswith(b"GET /healthz HTTP/1.1\r\n") and b"User-Agent: kube-probe/1.32" in requests[0]
    assert await run_probe({"httpGet": {"path": "/other", "port": 8080}}, target) == (
        "Failure", "HTTP probe failed with statuscode: 503")
    result, out = await run_probe({"httpGet": {"path": "/", "port": 9999}}, target)
    assert result == "Failure" and "connection refused" in out


async def test_tcp_probe(runtime: FakeRuntime, http_server: Any) -> None:
    port, _ = http_server
    target = ProbeTarget(runtime, "c", "s", "127.0.0.1", container("app"))
    assert await run_probe({"tcpSocket": {"port": port}}, target) == ("Success", "")
    closed = _free_port()
    assert await run_probe({"tcpSocket": {"port": closed}}, target) == (
        "Failure", f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


async def test_unsupported_probes_error(runtime: FakeRuntime) -> None:
    target = ProbeTarget(runtime, "c", "s", "127.0.0.1", container("app"))
    with pytest.raises(ProbeError):
        await run_probe({"grpc": {"port": 9000}}, target)
    with pytest.raises(ProbeError):
        await run_probe({"httpGet": {"port": "nope"}}, target)


# -- workers ------------------------------------------------------------------------------------------------
class _Harness:
    def __init__(self, rt: FakeRuntime, clock: FakeClock, p: dict[str, Any], sid: str, cid: str) -> None:
        self.pod = p
        self.uid = p["metadata"]["uid"]
        self.status: dict[str, Any] | None = None
        self.changes: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.sid, self.cid = sid, cid
        self.mgr = ProbeManager(rt, status_of=lambda uid: self.status, on_change=self.changes.append,
                                event=lambda pod, c, t, r, msg: self.events.append((t, r, msg)),
                                target_of=lambda uid, cid, c: ProbeTarget(rt, cid, sid, None, c), clock=clock)

    def set_running(self, *, started: bool = True, started_at: str = "2025-01-01T00:00:00Z") -> None:
        self.status = {"phase": "Running", "containerStatuses": [{
            "name": "app", "containerID": f"fake://{self.cid}", "started": started,
            "state": {"running": {"startedAt": started_at}}}]}


async def _advance(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    t = 0.0
    while t < seconds:
        clock.advance(step)
        t += step
        for _ in range(20):
            await asyncio.sleep(0)


async def test_liveness_worker_fails_after_the_threshold(runtime: FakeRuntime) -> None:
    clock = FakeClock()
    sid, cid = await _running_container(runtime)
    p = pod(container("app", livenessProbe={"exec": {"command": ["check"]}, "periodSeconds": 1,
                                            "failureThreshold": 3}))
    h = _Harness(runtime, clock, p, sid, cid)
    h.set_running()
    runtime.script_exec(ExecResult(1, b"bad"), argv=["check"])
    h.mgr.add_pod(p)
    try:
        await _advance(clock, 0.1, 0.1)
        assert h.mgr.results[(cid, "liveness")] == "Success"  # initial value
        await _advance(clock, 3)
        assert h.mgr.results[(cid, "liveness")] == "Failure" and h.changes == [h.uid]
        assert h.events[0] == ("Warning", "Unhealthy", "Liveness probe failed: bad")
        assert len(h.events) == 3
        await _advance(clock, 3)
        assert len(h.events) == 3  # on hold until the container is replaced
    finally:
        await h.mgr.remove_pod(h.uid)
        await h.mgr.stop()


async def test_readiness_worker_and_initial_delay(runtime: FakeRuntime) -> None:
    clock = FakeClock()
    sid, cid = await _running_container(runtime)
    p = pod(container("app", readinessProbe={"exec": {"command": ["ready"]}, "periodSeconds": 1,
                                             "initialDelaySeconds": 5, "successThreshold": 2}))
    h = _Harness(runtime, clock, p, sid, cid)
    h.set_running(started_at=clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ"))
    h.mgr.add_pod(p)
    try:
        await _advance(clock, 3)
        assert h.mgr.results[(cid, "readiness")] == "Failure"
        assert not [c for c in runtime.calls if c[0] == "exec_sync"]  # still in the initial delay
        await _advance(clock, 4)
        assert h.mgr.results[(cid, "readiness")] == "Success" and h.changes == [h.uid]
        runtime.script_exec(ExecResult(1), argv=["ready"])
        await _advance(clock, 3)
        assert h.mgr.results[(cid, "readiness")] == "Failure"
    finally:
        await h.mgr.stop()


async def test_startup_probe_gates_liveness(runtime: FakeRuntime) -> None:
    clock = FakeClock()
    sid, cid = await _running_container(runtime)
    p = pod(container("app", startupProbe={"exec": {"command": ["started"]}, "periodSeconds": 1},
                      livenessProbe={"exec": {"command": ["alive"]}, "periodSeconds": 1}))
    h = _Harness(runtime, clock, p, sid, cid)
    h.set_running(started=False)
    h.mgr.add_pod(p)
    try:
        await _advance(clock, 3)
        argvs = [c[1][1] for c in runtime.calls if c[0] == "exec_sync"]
        assert ["started"] in argvs and ["alive"] not in argvs
        assert h.mgr.results[(cid, "startup")] == "Success"
        before = argvs.count(["started"])  # probed until the status says started
        h.set_running(started=True)
        await _advance(clock, 3)
        argvs = [c[1][1] for c in runtime.calls if c[0] == "exec_sync"]
        assert ["alive"] in argvs and argvs.count(["started"]) == before
    finally:
        await h.mgr.stop()


async def test_workers_stop_for_deleted_pods(runtime: FakeRuntime) -> None:
    clock = FakeClock()
    sid, cid = await _running_container(runtime)
    p = pod(container("app", livenessProbe={"exec": {"command": ["alive"]}, "periodSeconds": 1}))
    h = _Harness(runtime, clock, p, sid, cid)
    h.set_running()
    h.mgr.add_pod(p)
    try:
        await _advance(clock, 1)
        assert h.mgr.has_workers(h.uid)
        deleted = {**p, "metadata": {**p["metadata"], "deletionTimestamp": "2025-01-01T00:00:00Z"}}
        h.mgr.update_pod(deleted)
        await _advance(clock, 2)
        assert not h.mgr.has_workers(h.uid)
    finally:
        await h.mgr.stop()


# -- hooks ---------------------------------------------------------------------------------------------------
async def test_exec_hook(runtime: FakeRuntime) -> None:
    sid, cid = await _running_container(runtime)
    target = ProbeTarget(runtime, cid, sid, None, container("app"))
    await run_hook({"exec": {"command": ["setup"]}}, target, pod=pod("app"), timeout=5)
    assert ("exec_sync", (cid, ["setup"], 5.0)) in runtime.calls
    runtime.script_exec(ExecResult(1, b"nope"), argv=["setup"])
    with pytest.raises(HookError) as e:
        await run_hook({"exec": {"command": ["setup"]}}, target, pod=pod("app"), timeout=5)
    assert e.value.message.startswith(
        'Exec lifecycle hook ([setup]) for Container "app" in Pod "web_default(uid-1)" failed - error:')


async def test_http_hook(runtime: FakeRuntime, http_server: Any) -> None:
    port, seen = http_server
    target = ProbeTarget(runtime, "c", "s", "127.0.0.1", container("app"))
    await run_hook({"httpGet": {"path": "/200", "port": port}}, target, pod=pod("app"), timeout=5)
    assert seen
    with pytest.raises(HookError) as e:
        await run_hook({"httpGet": {"path": "/500", "port": port}}, target, pod=pod("app"), timeout=5)
    assert "HTTP lifecycle hook (/500)" in e.value.message


async def test_pre_stop_is_bounded_by_the_grace_period(runtime: FakeRuntime) -> None:
    sid, cid = await _running_container(runtime)
    target = ProbeTarget(runtime, cid, sid, None, container("app"))
    release = asyncio.Event()

    async def slow(container_id: str, argv: list[str]) -> ExecResult:
        with contextlib.suppress(asyncio.CancelledError):
            await release.wait()
        return ExecResult(0)

    runtime.script_exec(slow, argv=["drain"])
    used, err = await run_pre_stop({"exec": {"command": ["drain"]}}, target, pod=pod("app"), grace=0.2)
    assert err is None and 0.15 < used < 2.0
    used, err = await run_pre_stop({"exec": {"command": ["true"]}}, target, pod=pod("app"), grace=5)
    assert err is None and used < 1.0
