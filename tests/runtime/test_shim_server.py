"""The shim fork server: containers started through it, its fall-back, and its lifetime."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kybernetes.kubelet.runtime import base
from kybernetes.kubelet.runtime.process import ProcessRuntime
from tests.harness import wait_for
from tests.runtime.conftest import container_config, force_cleanup, leftovers, log_lines, sandbox_config, wait_exited


def _server_procs(root: Path) -> list[str]:
    server = set(leftovers(root, None, server=True)) - set(leftovers(root, None))
    return sorted(server)


async def test_containers_start_through_the_server_and_outlive_it(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt", log_root=tmp_path / "logs")
    try:
        sb = await rt.run_sandbox(sandbox_config("p"))
        cids = []
        for i in range(3):
            cid = await rt.create_container(sb.id, container_config([], ["sh", "-c", f"echo c{i}; exec sleep 60"],
                                                                    name=f"c{i}"))
            await rt.start_container(cid)
            cids.append(cid)
        assert len(_server_procs(rt.root)) == 1, "one resident server serves every start"
        for i, cid in enumerate(cids):
            st = await rt.container_status(cid)
            assert st.state == base.ContainerState.RUNNING
            await wait_for(lambda st=st, i=i: log_lines(st.log_path, "stdout") == [f"c{i}"], timeout=10)
        # a start failure comes back as the shim's message
        bad = await rt.create_container(sb.id, container_config([], ["/no/such/program"], name="bad"))
        try:
            await rt.start_container(bad)
            raise AssertionError("started a missing program")
        except base.RuntimeError_ as e:
            assert "/no/such/program" in str(e)

        await rt.close()
        await wait_for(lambda: _server_procs(rt.root) == [], timeout=10)
        # the containers do not depend on the server: a new runtime object adopts them running
        rt = ProcessRuntime(tmp_path / "rt", log_root=tmp_path / "logs")
        for cid in cids:
            assert (await rt.container_status(cid)).state == base.ContainerState.RUNNING
        await rt.stop_container(cids[0], 1)
        assert (await wait_exited(rt, cids[0])).state == base.ContainerState.EXITED
    finally:
        await force_cleanup(rt, rt.root, None)
        await rt.close()
    assert leftovers(rt.root, None, server=True) == []


async def test_a_dead_server_is_replaced_and_starts_fall_back(tmp_path: Path) -> None:
    rt = ProcessRuntime(tmp_path / "rt", log_root=tmp_path / "logs")
    try:
        sb = await rt.run_sandbox(sandbox_config("p"))
        first = await rt.create_container(sb.id, container_config([], ["sleep", "60"], name="a"))
        await rt.start_container(first)
        server = rt._shim_server
        assert server is not None and server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        await server.proc.wait()
        second = await rt.create_container(sb.id, container_config([], ["sleep", "60"], name="b"))
        await rt.start_container(second)       # a new server is started
        assert (await rt.container_status(second)).state == base.ContainerState.RUNNING
        assert server.proc is not None and server.proc.returncode is None
        # a server that cannot be reached: the shim is started directly
        server.sock_path = str(tmp_path / "nowhere" / "sock")
        server.proc.stdin.close()
        await server.proc.wait()
        third = await rt.create_container(sb.id, container_config([], ["sleep", "60"], name="c"))
        await rt.start_container(third)
        assert (await rt.container_status(third)).state == base.ContainerState.RUNNING
    finally:
        await force_cleanup(rt, rt.root, None)
        await rt.close()
    assert leftovers(rt.root, None, server=True) == []
