"""The process runtime: the same lifecycle with host processes under the shim (no isolation)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from kybernetes.kubelet.runtime import base
from kybernetes.kubelet.runtime.process import ProcessRuntime
from tests.harness import wait_for
from tests.runtime.conftest import (
    container_config, force_cleanup, leftovers, log_lines, sandbox_config, wait_exited,
)

EXITED = base.ContainerState.EXITED
RUNNING = base.ContainerState.RUNNING


@pytest.fixture
async def proc_rt(tmp_path: Path):
    rt = ProcessRuntime(tmp_path / "rt", log_root=tmp_path / "logs")
    try:
        yield rt
    finally:
        await force_cleanup(rt, rt.root, None)
        await rt.close()


async def run(rt, sb_id, argv, layers=(), **kw) -> str:
    cid = await rt.create_container(sb_id, container_config(list(layers), argv, **kw))
    await rt.start_container(cid)
    return cid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_lifecycle_logs_workdir_links_and_exit(proc_rt: ProcessRuntime, tmp_path):
    rt = proc_rt
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("volume\n")
    sb = await rt.run_sandbox(sandbox_config("p", hosts="127.0.0.1 localhost p\n"))
    assert sb.ip is None and sb.netns_path is None
    cid = await run(rt, sb.id, ["sh", "-c", "echo hello; echo err >&2; pwd; cat ../etc/hosts ../data/f; "
                                "echo $GREETING; exit 3"],
                    working_dir="/app", env=[("GREETING", "hi")],
                    mounts=[base.Mount(str(data), "/data")])
    st = await wait_exited(rt, cid)
    assert st.exit_code == 3 and st.reason == "Error"
    out = log_lines(st.log_path, "stdout")
    assert out[0] == "hello" and out[1].endswith(f"/containers/{cid}/root/app")
    assert out[2:] == ["127.0.0.1 localhost p", "volume", "hi"]
    assert log_lines(st.log_path, "stderr") == ["err"]
    await rt.remove_sandbox(sb.id)
    assert await rt.list_containers() == [] and leftovers(rt.root, None) == []


async def test_image_program_port_forward_and_stats(proc_rt: ProcessRuntime, busybox_rootfs, tmp_path):
    """``httpd`` is not on the host: it is found in the image (a busybox applet symlink)."""
    rt = proc_rt
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello-process\n")
    port = free_port()
    sb = await rt.run_sandbox(sandbox_config("web"))
    cid = await run(rt, sb.id, ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(www)], [busybox_rootfs])

    async def fetched() -> bool:
        try:
            r, w = await rt.port_forward(sb.id, port)
        except base.RuntimeError_:
            return False
        w.write(b"GET /index.html HTTP/1.0\r\n\r\n")
        await w.drain()
        data = await asyncio.wait_for(r.read(), 10)
        w.close()
        return b"hello-process" in data

    await wait_for(fetched, timeout=15, what="port-forward to httpd")
    stats = await rt.container_stats(cid)
    assert stats.memory_usage_bytes > 0 and stats.cpu_usage_ns >= 0
    r = await rt.exec_sync(cid, ["nc", "-h"], 10)       # an exec resolves programs the same way
    assert b"nc" in r.stdout + r.stderr
    await rt.remove_sandbox(sb.id)
    assert leftovers(rt.root, None) == []


async def test_stop_exec_attach_and_adoption(proc_rt: ProcessRuntime, tmp_path):
    rt = proc_rt
    sb = await rt.run_sandbox(sandbox_config("s"))
    polite = await run(rt, sb.id, ["sh", "-c", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done"],
                       name="polite")
    stubborn = await run(rt, sb.id, ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], name="stubborn")
    st = await rt.container_status(polite)
    await wait_for(lambda: "ready" in log_lines(st.log_path), what="trap installed")
    # a new runtime instance on the same root (the kubelet restarted) adopts the running containers
    await rt.close()
    again = ProcessRuntime(rt.root, log_root=rt.log_root)
    adopted = {s.id: s for s in await again.list_containers(sb.id)}
    assert adopted[polite].state == RUNNING and adopted[polite].pid == st.pid
    assert adopted[polite].started_at == st.started_at
    # exec
    r = await again.exec_sync(polite, ["sh", "-c", "echo $HOSTNAME; exit 2"], 10)
    assert (r.exit_code, r.stdout) == (2, b"s\n")
    r = await again.exec_sync(polite, ["sleep", "30"], 0.3)
    assert r.timed_out
    p = await again.exec(polite, ["sh", "-c", "cat; echo done"], stdin=True, tty=False)
    await p.write_stdin(b"x\n")
    await p.close_stdin()
    assert b"".join([c async for c in p.stdout()]) == b"x\ndone\n" and await p.wait() == 0
    p = await again.exec(polite, ["sh"], stdin=True, tty=True)
    await p.resize(90, 33)
    seen = bytearray()
    it = p.stdout().__aiter__()
    for _ in range(50):
        await p.write_stdin(b"stty size\n")
        try:
            while b"33 90" not in seen:
                seen.extend(await asyncio.wait_for(it.__anext__(), 0.3))
            break
        except asyncio.TimeoutError:
            continue
    assert b"33 90" in seen
    await p.write_stdin(b"exit 6\n")
    assert await asyncio.wait_for(p.wait(), 10) == 6
    # stop: SIGTERM handled; SIGTERM ignored -> SIGKILL after the grace period
    await again.stop_container(polite, 30)
    assert (await again.container_status(polite)).exit_code == 3
    await again.stop_container(stubborn, 0.3)
    st = await again.container_status(stubborn)
    assert st.state == EXITED and st.exit_code == 137
    # attach with stdinOnce
    cat = await run(again, sb.id, ["sh", "-c", "while read l; do echo got:$l; done; echo bye"], name="cat",
                    stdin=True, stdin_once=True)
    a = await again.attach(cat, stdin=True, tty=False)
    await a.write_stdin(b"q\n")
    out = bytearray()

    async def pump() -> None:
        async for c in a.stdout():
            out.extend(c)

    task = asyncio.ensure_future(pump())
    try:
        await wait_for(lambda: b"got:q" in out, what="attach echo")
        await a.close_stdin()
        assert await asyncio.wait_for(a.wait(), 10) == 0
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
    assert out == b"got:q\nbye\n"
    pids = [s.pid for s in await again.list_containers() if s.pid]
    await again.remove_sandbox(sb.id)
    await again.close()
    assert leftovers(rt.root, None) == [] and not any(os.path.exists(f"/proc/{p}") for p in pids)


async def test_start_error(proc_rt: ProcessRuntime):
    rt = proc_rt
    sb = await rt.run_sandbox(sandbox_config("e"))
    cid = await rt.create_container(sb.id, container_config([], ["no-such-program-xyz"]))
    with pytest.raises(base.RuntimeError_):
        await rt.start_container(cid)
    st = await rt.container_status(cid)
    assert st.state == EXITED and st.reason == "StartError" and st.exit_code == 128
    await rt.remove_sandbox(sb.id)


NONROOT_SCRIPT = textwrap.dedent("""
    import asyncio, json, os, sys
    sys.path.insert(0, {src!r})
    from kybernetes.kubelet.runtime import base
    from kybernetes.kubelet.runtime.process import ProcessRuntime

    async def main():
        rt = ProcessRuntime({root!r}, log_root={logs!r})
        sb = await rt.run_sandbox(base.SandboxConfig(pod_uid="u1", namespace="n", name="p", hostname="p"))
        def cfg(name, argv):
            return base.ContainerConfig(name=name, image="x", image_id="x", rootfs_layers=[], argv=argv,
                                        uid=0, labels={{base.LABEL_CONTAINER_NAME: name}})
        cid = await rt.create_container(sb.id, cfg("id", ["sh", "-c", "id -u; echo hi"]))
        await rt.start_container(cid)
        for _ in range(200):
            st = await rt.container_status(cid)
            if st.state == base.ContainerState.EXITED:
                break
            await asyncio.sleep(0.05)
        sleeper = await rt.create_container(sb.id, cfg("sleeper", ["sleep", "1000"]))
        await rt.start_container(sleeper)
        ex = await rt.exec_sync(sleeper, ["sh", "-c", "echo exec-ok"], 10)
        await rt.stop_container(sleeper, 1)
        st2 = await rt.container_status(sleeper)
        with open(st.log_path) as f:
            log = f.read()
        await rt.remove_sandbox(sb.id)
        print(json.dumps({{"uid": os.getuid(), "exit": st.exit_code, "log": log, "exec": ex.stdout.decode(),
                          "stopped": st2.exit_code, "left": os.listdir({root!r} + "/containers")}}))

    asyncio.run(main())
""")


@pytest.mark.privileged
async def test_works_as_non_root():
    """The process runtime as an unprivileged user (``runuser -u nobody``), with Debian's python3."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root (to switch to nobody), runuser and /usr/bin/python3")
    src = str(Path(__file__).resolve().parents[2] / "src")
    work = tempfile.mkdtemp(prefix="kyb-nonroot-", dir="/tmp")
    try:
        os.chmod(work, 0o755)
        shutil.chown(work, "nobody")
        script = NONROOT_SCRIPT.format(src=src, root=f"{work}/rt", logs=f"{work}/logs")
        res = await asyncio.to_thread(subprocess.run, ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", script],
                                      capture_output=True, text=True, timeout=120, cwd=work)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        assert doc["uid"] == 65534 and doc["exit"] == 0 and doc["exec"] == "exec-ok\n"
        assert [line.split(" ", 3)[3] for line in doc["log"].splitlines()] == ["65534", "hi"]
        assert doc["stopped"] == 143 and doc["left"] == []
        assert leftovers(Path(work), None) == []
    finally:
        shutil.rmtree(work, ignore_errors=True)
