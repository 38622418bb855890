"""FakeRuntime: the in-memory runtime kubelet unit tests drive."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.kubelet.runtime import base
from kybernetes.kubelet.runtime.testing import FakeRuntime
from tests.runtime.conftest import container_config, sandbox_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_lifecycle_ids_and_calls():
    clock = Clock()
    rt = FakeRuntime(clock=clock)
    sb = await rt.run_sandbox(sandbox_config("p"))
    assert sb.id == "sandbox-1" and sb.state == "ready" and sb.ip == "10.88.0.3"
    cid = await rt.create_container(sb.id, container_config(["/l"], ["sleep", "1"]))
    assert cid == "container-1"
    assert (await rt.container_status(cid)).state == base.ContainerState.CREATED
    clock.now = 101.0
    await rt.start_container(cid)
    st = await rt.container_status(cid)
    assert (st.state, st.started_at, st.pid) == (base.ContainerState.RUNNING, 101.0, 1000)
    assert st.log_path.endswith("/main/0.log")
    clock.now = 105.0
    await rt.stop_container(cid, 30)
    st = await rt.container_status(cid)
    assert (st.state, st.exit_code, st.reason, st.finished_at) == (base.ContainerState.EXITED, 143, "Error", 105.0)
    with pytest.raises(base.RuntimeError_):
        await rt.start_container(cid)
    await rt.remove_sandbox(sb.id)
    assert await rt.list_sandboxes() == [] and await rt.list_containers() == []
    assert rt.call_names()[:3] == ["run_sandbox", "create_container", "container_status"]
    assert ("stop_container", (cid, 30)) in rt.calls
    with pytest.raises(base.NotFoundError):
        await rt.container_status(cid)


async def test_set_exit_fail_next_and_stop_codes():
    rt = FakeRuntime()
    sb = await rt.run_sandbox(sandbox_config("p"))
    a = await rt.create_container(sb.id, container_config([], ["a"], name="a"))
    b = await rt.create_container(sb.id, container_config([], ["b"], name="b"))
    await rt.start_container(a)
    await rt.start_container(b)
    rt.set_exit(a, 0)
    rt.set_exit(b, 137, reason="OOMKilled")
    assert [(s.exit_code, s.reason) for s in await rt.list_containers(sb.id)] == [(0, "Completed"), (137, "OOMKilled")]
    rt.fail_next("create_container", base.RuntimeError_("boom", reason="CreateContainerError"))
    with pytest.raises(base.RuntimeError_) as e:
        await rt.create_container(sb.id, container_config([], ["c"]))
    assert e.value.reason == "CreateContainerError"
    c = await rt.create_container(sb.id, container_config([], ["c"], name="c"))
    await rt.start_container(c)
    rt.stop_exit_codes[c] = 0
    await rt.stop_sandbox(sb.id)
    assert (await rt.container_status(c)).exit_code == 0
    assert (await rt.sandbox_status(sb.id)).state == "notready"
    with pytest.raises(base.RuntimeError_):
        await rt.create_container(sb.id, container_config([], ["d"]))


async def test_exec_scripts_attach_port_forward_stats(tmp_path):
    rt = FakeRuntime(log_root=tmp_path)
    sb = await rt.run_sandbox(sandbox_config("p"))
    cid = await rt.create_container(sb.id, container_config([], ["srv"]))
    with pytest.raises(base.RuntimeError_):
        await rt.exec_sync(cid, ["true"], 1)            # not running yet
    await rt.start_container(cid)
    assert (await rt.exec_sync(cid, ["true"], 1)).exit_code == 0
    rt.script_exec(base.ExecResult(1, stdout=b"not ready"), argv=["cat", "/ready"])
    rt.script_exec(lambda c, argv: base.ExecResult(0, stdout=" ".join(argv).encode()), container_id=cid,
                   argv=["echo"])
    assert (await rt.exec_sync(cid, ["cat", "/ready"], 1)).stdout == b"not ready"
    assert (await rt.exec_sync(cid, ["echo", "x"], 1)).stdout == b"echo x"
    p = await rt.exec(cid, ["echo", "y"], stdin=True, tty=False)
    await p.write_stdin(b"in")
    assert [c async for c in p.stdout()] == [b"echo y"] and await p.wait() == 0
    assert rt.stdin_received[cid] == b"in"
    rt.attach_output[cid] = b"hello"
    a = await rt.attach(cid, stdin=False, tty=False)
    assert [c async for c in a.stdout()] == [b"hello"]
    waiter = asyncio.ensure_future(a.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    rt.set_exit(cid, 3)
    assert await waiter == 3

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()

    rt.port_handlers[80] = echo
    r, w = await rt.port_forward(sb.id, 80)
    w.write(b"ping\n")
    assert await asyncio.wait_for(r.readline(), 5) == b"ping\n"
    w.close()
    with pytest.raises(base.RuntimeError_):
        await rt.port_forward(sb.id, 81)
    rt.set_stats(cid, 5_000, 1 << 20)
    s = await rt.container_stats(cid)
    assert (s.cpu_usage_ns, s.memory_working_set_bytes) == (5_000, 1 << 20)
    rt.write_log(cid, "line1\nline2")
    st = await rt.container_status(cid)
    with open(st.log_path) as f:
        assert [line.split(" ", 3)[1:] for line in f.read().splitlines()] == [
            ["stdout", "F", "line1"], ["stdout", "F", "line2"]]
    await rt.close()
