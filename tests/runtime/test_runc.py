"""The runc runtime for real: namespaces, overlay roots, cgroups, the shim, streams, clean-up.

Each test gets its own runtime root, log root and cgroup root (see conftest.runc_rt) and removes
what it made; the fixture force-cleans after a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from kybernetes.kubelet.runtime import base
from kybernetes.kubelet.runtime.runc import RuncRuntime
from tests.harness import wait_for
from tests.runtime.conftest import container_config, leftovers, log_lines, sandbox_config, wait_exited

pytestmark = pytest.mark.privileged
if os.geteuid() != 0 or not os.path.exists("/usr/sbin/runc"):
    pytest.skip("the runc runtime needs root and runc", allow_module_level=True)

EXITED = base.ContainerState.EXITED
RUNNING = base.ContainerState.RUNNING


async def run(rt, sb_id: str, layers: list[str], argv: list[str], **kw) -> str:
    cid = await rt.create_container(sb_id, container_config(layers, argv, **kw))
    await rt.start_container(cid)
    return cid


async def remove_all_and_check(rt, root, cgroup_root: str) -> None:
    for sb in await rt.list_sandboxes():
        await rt.remove_sandbox(sb.id)
    assert await rt.list_sandboxes() == [] and await rt.list_containers() == []
    assert leftovers(root, cgroup_root) == []
    assert not os.listdir(os.path.join(root, "runc")) if os.path.isdir(os.path.join(root, "runc")) else True


async def test_run_logs_hostname_hosts_exit_code(runc_rt: RuncRuntime, busybox_rootfs, tmp_path, cgroup_root):
    rt = runc_rt
    hosts = "127.0.0.1\tlocalhost\n10.9.9.9\tweb-0 # test\n"
    sb = await rt.run_sandbox(sandbox_config("web", hostname="web-0", hosts=hosts,
                                             resolv_conf="nameserver 10.96.0.10\nsearch default.svc\n"))
    assert sb.state == "ready" and sb.ip is None and sb.netns_path and os.path.exists(sb.netns_path)
    script = ("echo hello; hostname; cat /etc/hostname; cat /etc/hosts; cat /etc/resolv.conf; "
              "echo oops >&2; id -u; ip -o link | cut -d: -f2; echo -n bye > /dev/termination-log; "
              "echo x > /written; exit 3")
    cid = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", script])
    st = await wait_exited(rt, cid)
    assert st.exit_code == 3 and st.reason == "Error" and st.message == "bye"
    assert st.started_at and st.finished_at and st.finished_at >= st.started_at
    out = log_lines(st.log_path, "stdout")
    assert out[:3] == ["hello", "web-0", "web-0"]
    assert "10.9.9.9\tweb-0 # test" in out and "nameserver 10.96.0.10" in out
    assert out[out.index("search default.svc") + 1] == "0"            # root in the container
    assert [x.strip() for x in out[out.index("0") + 1:]] == ["lo"]    # loopback only
    assert log_lines(st.log_path, "stderr") == ["oops"]
    assert st.log_path.endswith(f"default_web_{(await rt.sandbox_status(sb.id)).labels[base.LABEL_POD_UID]}/main/0.log")
    # the image layer is untouched (writes go to the container's upper dir)
    cid2 = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", "id -u; id -G"], name="user",
                     uid=65534, gid=65534, supplemental_gids=[5, 7])
    st2 = await wait_exited(rt, cid2)
    assert st2.exit_code == 0
    assert log_lines(st2.log_path, "stdout") == ["65534", "65534 5 7"]
    assert not os.path.exists(os.path.join(busybox_rootfs, "written"))
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_mounts_ro_rw_and_capabilities(runc_rt: RuncRuntime, busybox_rootfs, tmp_path, cgroup_root):
    rt = runc_rt
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("ro-content\n")
    sb = await rt.run_sandbox(sandbox_config("mnt"))
    script = ("echo from-container > /data/out; cat /cfg/f; echo x > /cfg/g || echo ro-refused; "
              "grep CapEff /proc/self/status")
    cid = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", script],
                    mounts=[base.Mount(str(rw), "/data"), base.Mount(str(ro), "/cfg", read_only=True)])
    st = await wait_exited(rt, cid)
    out = log_lines(st.log_path, "stdout")
    assert out[:2] == ["ro-content", "ro-refused"]
    assert (rw / "out").read_text() == "from-container\n" and not (ro / "g").exists()
    # containerd's default capability set: 0x00000000a80425fb
    assert out[-1].split() == ["CapEff:", "00000000a80425fb"]
    cid = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", "grep CapEff /proc/self/status"], name="priv",
                    privileged=True)
    st = await wait_exited(rt, cid)
    assert st.exit_code == 0, log_lines(st.log_path)
    assert int(log_lines(st.log_path)[-1].split()[1], 16) & (1 << 21)   # CAP_SYS_ADMIN
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_stop_sigterm_then_sigkill(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("stop"))
    polite = await run(rt, sb.id, [busybox_rootfs],
                       ["sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"],
                       name="polite")
    # PID 1 ignores SIGTERM without a handler: only the SIGKILL after the grace period ends it
    stubborn = await run(rt, sb.id, [busybox_rootfs], ["sleep", "1000"], name="stubborn")
    assert (await rt.container_status(stubborn)).state == RUNNING
    await wait_for(lambda: "ready" in log_lines(os.path.join(
        rt.log_root, os.listdir(rt.log_root)[0], "polite", "0.log")), what="trap installed")
    await rt.stop_container(polite, 30)
    st = await rt.container_status(polite)
    assert st.state == EXITED and st.exit_code == 3 and "got-term" in log_lines(st.log_path)
    await rt.stop_container(stubborn, 0.5)
    st = await rt.container_status(stubborn)
    assert st.state == EXITED and st.exit_code == 137 and st.reason == "Error"
    await rt.stop_container(stubborn, 1)      # stopping an exited container is a no-op
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_memory_limit_oomkilled(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("oom"))
    cid = await run(rt, sb.id, [busybox_rootfs], ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                    resources=base.Resources(memory_limit_bytes=20 << 20))
    st = await wait_exited(rt, cid)
    assert st.reason == "OOMKilled" and st.exit_code == 137
    ok = await run(rt, sb.id, [busybox_rootfs], ["dd", "if=/dev/zero", "of=/dev/null", "bs=1M", "count=1"],
                   name="small", resources=base.Resources(memory_limit_bytes=20 << 20))
    st = await wait_exited(rt, ok)
    assert st.reason == "Completed" and st.exit_code == 0
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_exec_sync_exec_stdin_and_tty(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("exec"))
    cid = await run(rt, sb.id, [busybox_rootfs], ["sleep", "1000"], env=[("GREETING", "hi")],
                    working_dir="/tmp")
    r = await rt.exec_sync(cid, ["sh", "-c", "echo $GREETING; pwd; echo err >&2; exit 4"], 10)
    assert (r.exit_code, r.stdout, r.stderr, r.timed_out) == (4, b"hi\n/tmp\n", b"err\n", False)
    r = await rt.exec_sync(cid, ["sleep", "30"], 0.5)
    assert r.timed_out
    ps = await rt.exec_sync(cid, ["ps", "-o", "args"], 10)
    assert b"sleep 30" not in ps.stdout                       # the timed-out exec was killed
    # exec with stdin
    p = await rt.exec(cid, ["sh", "-c", "cat; echo done"], stdin=True, tty=False)
    await p.write_stdin(b"hello\n")
    await p.close_stdin()
    out = b"".join([c async for c in p.stdout()])
    assert out == b"hello\ndone\n" and await p.wait() == 0
    # exec with a tty: resize reaches the container's terminal
    p = await rt.exec(cid, ["sh"], stdin=True, tty=True)
    await p.resize(123, 45)
    seen = bytearray()

    async def read_until(token: bytes) -> None:
        it = p.stdout().__aiter__()
        while token not in seen:
            seen.extend(await asyncio.wait_for(it.__anext__(), 10))

    for _ in range(50):
        await p.write_stdin(b"stty size\n")
        try:
            await asyncio.wait_for(read_until(b"45 123"), 0.3)
            break
        except asyncio.TimeoutError:
            continue
    assert b"45 123" in seen
    await p.write_stdin(b"exit 7\n")
    assert await asyncio.wait_for(p.wait(), 10) == 7
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_attach_stdin_once(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("attach"))
    cid = await run(rt, sb.id, [busybox_rootfs],
                    ["sh", "-c", "while read l; do echo got:$l; echo warn:$l >&2; done; echo bye"],
                    stdin=True, stdin_once=True)
    p = await rt.attach(cid, stdin=True, tty=False)
    await p.write_stdin(b"a\n")
    out, err = bytearray(), bytearray()

    async def pump(it, buf):
        async for chunk in it:
            buf.extend(chunk)

    pumps = asyncio.gather(pump(p.stdout(), out), pump(p.stderr(), err))
    await wait_for(lambda: b"got:a" in out and b"warn:a" in err, what="attach output")
    await p.close_stdin()                     # stdinOnce: the container's stdin closes -> it ends
    assert await asyncio.wait_for(p.wait(), 10) == 0
    await asyncio.wait_for(pumps, 10)
    assert out == b"got:a\nbye\n" and err == b"warn:a\n"
    st = await rt.container_status(cid)
    assert st.state == EXITED and st.exit_code == 0
    assert log_lines(st.log_path, "stdout") == ["got:a", "bye"]
    with pytest.raises(base.RuntimeError_):
        await rt.attach(cid, stdin=False, tty=False)
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_attach_tty(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("tty"))
    cid = await run(rt, sb.id, [busybox_rootfs], ["sh"], stdin=True, tty=True)
    p = await rt.attach(cid, stdin=True, tty=True)
    await p.resize(100, 30)
    seen = bytearray()
    it = p.stdout().__aiter__()
    for _ in range(50):
        await p.write_stdin(b"stty size; tty\n")
        try:
            while b"30 100" not in seen or b"/dev/pts/" not in seen:
                seen.extend(await asyncio.wait_for(it.__anext__(), 0.3))
            break
        except asyncio.TimeoutError:
            continue
    assert b"30 100" in seen and b"/dev/pts/" in seen
    await p.write_stdin(b"exit 5\n")
    assert await asyncio.wait_for(p.wait(), 10) == 5
    st = await rt.container_status(cid)
    assert st.exit_code == 5 and any("30 100" in line for line in log_lines(st.log_path))
    await remove_all_and_check(rt, rt.root, cgroup_root)


HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]


async def http_get(reader, writer) -> bytes:
    writer.write(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_port_forward_shared_localhost_and_stats(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("net"))
    web = await run(rt, sb.id, [busybox_rootfs], HTTPD, name="web")

    async def forwarded() -> bool:
        try:
            r, w = await rt.port_forward(sb.id, 8080)
        except base.RuntimeError_:
            return False
        return b"hello-from-pod" in await http_get(r, w)

    await wait_for(forwarded, timeout=15, what="port-forward to httpd")
    with pytest.raises(base.RuntimeError_):
        await rt.port_forward(sb.id, 8081)
    # a second container of the pod reaches the first over localhost and shares /dev/shm
    client = await run(rt, sb.id, [busybox_rootfs],
                       ["sh", "-c", "until wget -qO- http://127.0.0.1:8080/index.html; do sleep 0.1; done"],
                       name="client")
    st = await wait_exited(rt, client)
    assert st.exit_code == 0 and log_lines(st.log_path) == ["hello-from-pod"]
    assert (await rt.exec_sync(web, ["sh", "-c", "echo shared > /dev/shm/x"], 10)).exit_code == 0
    side = await run(rt, sb.id, [busybox_rootfs], ["sleep", "1000"], name="side")
    assert (await rt.exec_sync(side, ["cat", "/dev/shm/x"], 10)).stdout == b"shared\n"
    # stats from the cgroup
    burn = await rt.exec_sync(web, ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], 30)
    assert burn.exit_code == 0
    stats = await rt.container_stats(web)
    assert stats.cpu_usage_ns > 0 and stats.memory_usage_bytes > 0 and stats.memory_working_set_bytes > 0
    assert stats.container_id == web
    await remove_all_and_check(rt, rt.root, cgroup_root)


async def test_start_error_and_log_rotation(busybox_rootfs, tmp_path, cgroup_root):
    rt = RuncRuntime(tmp_path / "rt", cgroup_root=cgroup_root, log_root=tmp_path / "logs",
                     log_max_bytes=2000, log_max_files=3)
    from tests.runtime.conftest import force_cleanup
    try:
        sb = await rt.run_sandbox(sandbox_config("misc"))
        bad = await rt.create_container(sb.id, container_config([busybox_rootfs], ["/no/such/binary"]))
        with pytest.raises(base.RuntimeError_) as e:
            await rt.start_container(bad)
        assert "no such" in str(e.value).lower() or "not found" in str(e.value).lower()
        st = await rt.container_status(bad)
        assert st.state == EXITED and st.exit_code == 128 and st.reason == "StartError" and st.message
        cid = await run(rt, sb.id, [busybox_rootfs],
                        ["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"], name="chatty")
        st = await wait_exited(rt, cid)
        files = sorted(os.listdir(os.path.dirname(st.log_path)))
        assert files == ["0.log", "0.log.1", "0.log.2"]
        assert all(os.path.getsize(os.path.join(os.path.dirname(st.log_path), f)) <= 2000 for f in files)
        assert log_lines(st.log_path)[-1] == "line-299"
        await remove_all_and_check(rt, rt.root, cgroup_root)
    finally:
        await force_cleanup(rt, rt.root, cgroup_root)


ADOPT_SCRIPT = r"""
import asyncio, json, sys
sys.path.insert(0, {repo!r})
from kybernetes.kubelet.runtime.runc import RuncRuntime
from tests.runtime.conftest import sandbox_config, container_config

async def main():
    rt = RuncRuntime({root!r}, cgroup_root={cg!r}, log_root={logs!r})
    sb = await rt.run_sandbox(sandbox_config("adopt"))
    cid = await rt.create_container(sb.id, container_config([{rootfs!r}],
        ["sh", "-c", "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done"]))
    await rt.start_container(cid)
    st = await rt.container_status(cid)
    print(json.dumps({{"sandbox": sb.id, "container": cid, "pid": st.pid, "started_at": st.started_at}}), flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
"""


async def test_kubelet_killed_container_survives_and_is_adopted(busybox_rootfs, tmp_path, cgroup_root):
    """A process that started a container is SIGKILLed; a new runtime on the same root sees the
    container running (same pid, same start time), stops it, and removes everything."""
    root, logs = tmp_path / "rt", tmp_path / "logs"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = ADOPT_SCRIPT.format(repo=repo, root=str(root), cg=cgroup_root, logs=str(logs), rootfs=busybox_rootfs)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    rt = RuncRuntime(root, cgroup_root=cgroup_root, log_root=logs)
    from tests.runtime.conftest import force_cleanup
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        proc.stdout.close()
        info = json.loads(line)
        proc.kill()                                   # the "kubelet" dies hard
        await asyncio.to_thread(proc.wait)
        [sb] = await rt.list_sandboxes()
        assert sb.id == info["sandbox"] and sb.state == "ready"
        [st] = await rt.list_containers(sb.id)
        assert (st.id, st.state, st.pid, st.started_at) == (info["container"], RUNNING, info["pid"], info["started_at"])
        assert os.path.exists(f"/proc/{st.pid}")
        await wait_for(lambda: "up" in log_lines(st.log_path), what="container log written by the shim")
        await rt.stop_container(st.id, 10)
        st = await rt.container_status(st.id)
        assert st.state == EXITED and st.exit_code == 0 and st.reason == "Completed"
        # a third instance sees the exit too
        again = RuncRuntime(root, cgroup_root=cgroup_root, log_root=logs)
        [st3] = await again.list_containers()
        assert st3.state == EXITED and st3.exit_code == 0 and st3.finished_at == st.finished_at
        await remove_all_and_check(again, root, cgroup_root)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await force_cleanup(rt, root, cgroup_root)


async def test_remove_running_leaves_nothing_and_timing(runc_rt: RuncRuntime, busybox_rootfs, cgroup_root, capsys):
    """Removing a sandbox with running, exited and created containers leaves nothing behind;
    prints how long create+start takes (no assertion on time)."""
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("gone"))
    durations = []
    for i in range(6):
        t0 = time.monotonic()
        cid = await rt.create_container(sb.id, container_config([busybox_rootfs], ["sleep", "1000"], name=f"c{i}"))
        t1 = time.monotonic()
        await rt.start_container(cid)
        durations.append((t1 - t0, time.monotonic() - t1))
    done = await run(rt, sb.id, [busybox_rootfs], ["true"], name="done")
    await wait_exited(rt, done)
    await rt.create_container(sb.id, container_config([busybox_rootfs], ["true"], name="never"))
    statuses = await rt.list_containers(sb.id)
    assert sorted(s.state.value for s in statuses) == ["created", "exited"] + ["running"] * 6
    pids = [s.pid for s in statuses if s.pid]
    one = statuses[0].id
    await rt.remove_container(one)                       # a running container, alone
    assert one not in {s.id for s in await rt.list_containers()}
    await rt.remove_sandbox(sb.id)
    await rt.remove_sandbox(sb.id)                       # idempotent
    assert leftovers(rt.root, cgroup_root) == []
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
    assert subprocess.run(["runc", "--root", rt.runc_root, "list", "-q"], capture_output=True,
                          text=True).stdout.strip() == ""
    with pytest.raises(base.NotFoundError):
        await rt.container_status(one)
    creates = sorted(d[0] for d in durations)
    starts = sorted(d[1] for d in durations)
    totals = sorted(a + b for a, b in durations)
    with capsys.disabled():
        print(f"\nrunc create p50={creates[len(creates) // 2] * 1000:.1f}ms "
              f"start p50={starts[len(starts) // 2] * 1000:.1f}ms "
              f"create+start p50={totals[len(totals) // 2] * 1000:.1f}ms max={totals[-1] * 1000:.1f}ms")


class RecordingNetwork:
    """A NetworkPlugin stand-in: gives the namespace an address on its loopback, records calls."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, str]] = []

    async def setup(self, netns_path: str, sandbox_id: str, *, port_mappings: list[dict] = []) -> str:
        self.calls.append(("setup", netns_path, sandbox_id))
        if self.fail:
            raise RuntimeError("no IPs left")
        proc = await asyncio.create_subprocess_exec("nsenter", f"--net={netns_path}", "ip", "addr", "add",
                                                    "10.99.0.5/32", "dev", "lo")
        assert await proc.wait() == 0
        return "10.99.0.5"

    async def teardown(self, netns_path: str, sandbox_id: str) -> None:
        self.calls.append(("teardown", netns_path, sandbox_id))


async def test_network_plugin_hooks(busybox_rootfs, tmp_path, cgroup_root):
    from tests.runtime.conftest import force_cleanup
    net = RecordingNetwork()
    rt = RuncRuntime(tmp_path / "rt", cgroup_root=cgroup_root, log_root=tmp_path / "logs", network=net)
    try:
        sb = await rt.run_sandbox(sandbox_config("net", hostname="net-0"))
        assert sb.ip == "10.99.0.5" and net.calls == [("setup", sb.netns_path, sb.id)]
        cid = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", "tail -n 1 /etc/hosts; ip -o addr show lo"])
        st = await wait_exited(rt, cid)
        out = log_lines(st.log_path)
        assert out[0] == "10.99.0.5\tnet-0" and any("10.99.0.5/32" in line for line in out)
        await rt.stop_sandbox(sb.id)
        assert (await rt.sandbox_status(sb.id)).state == "notready"
        await rt.remove_sandbox(sb.id)
        assert net.calls[1:] == [("teardown", sb.netns_path, sb.id)]     # once, while the netns existed
        assert leftovers(rt.root, cgroup_root) == []
        # a failing plugin: the sandbox is not created and its namespaces are released
        bad = RuncRuntime(tmp_path / "rt2", cgroup_root=cgroup_root, log_root=tmp_path / "logs",
                          network=RecordingNetwork(fail=True))
        with pytest.raises(base.RuntimeError_) as e:
            await bad.run_sandbox(sandbox_config("bad"))
        assert e.value.reason == "CreatePodSandboxError" and "no IPs left" in str(e.value)
        assert await bad.list_sandboxes() == [] and leftovers(tmp_path / "rt2", cgroup_root) == []
        assert os.listdir(tmp_path / "rt2" / "sandboxes") == []
    finally:
        await force_cleanup(rt, rt.root, cgroup_root)


async def test_host_namespaces_and_lost_sandbox(runc_rt: RuncRuntime, busybox_rootfs, tmp_path, cgroup_root):
    rt = runc_rt
    sb = await rt.run_sandbox(sandbox_config("host", host_network=True, host_ipc=True, host_pid=True))
    assert sb.netns_path is None and sb.ip is None
    cid = await run(rt, sb.id, [busybox_rootfs], ["sh", "-c", "hostname; ls /proc | grep -c '^[0-9]'; ip -o link | wc -l"])
    st = await wait_exited(rt, cid)
    out = log_lines(st.log_path)
    assert st.exit_code == 0 and out[0] == os.uname().nodename
    assert int(out[1]) > 5                    # the host's processes are visible
    host_links = len(subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines())
    assert int(out[2]) == host_links          # the host's network devices
    # a sandbox whose namespaces vanished (as after a reboot) is NotReady to a new runtime instance
    other = await rt.run_sandbox(sandbox_config("lost"))
    from kybernetes.kubelet.runtime import linux
    for p in ("net", "ipc", "uts"):
        linux.umount(os.path.join(other.netns_path.rsplit("/", 1)[0], p), detach=True)
    fresh = RuncRuntime(rt.root, cgroup_root=cgroup_root, log_root=rt.log_root)
    states = {s.id: s.state for s in await fresh.list_sandboxes()}
    assert states == {sb.id: "ready", other.id: "notready"}
    await remove_all_and_check(fresh, rt.root, cgroup_root)
