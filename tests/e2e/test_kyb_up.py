"""`kyb up`: starts, prints how to use it, stops cleanly on SIGINT/SIGTERM, keeps state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

from .conftest import Cluster

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_stop_restart_keeps_state(tmp_path: Path, sig: signal.Signals) -> None:
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(tmp_path / "data", free_port(), home)
    c.start()
    try:
        log = c.log.read_text()
        assert "admin.kubeconfig" in log and "export KUBECONFIG=" in log
        assert oct((c.data_dir / "admin.kubeconfig").stat().st_mode & 0o777) == "0o600"
        c.kubectl("create", "configmap", "survivor", "--from-literal=a=b")
        assert c.proc is not None
        kids = _children(c.proc.pid)
        assert kids, "kyb up should supervise an apiserver child"
        c.proc.send_signal(sig)
        assert c.proc.wait(timeout=20) == 0
        for k in kids:
            assert not Path(f"/proc/{k}").exists() or "zombie" in Path(f"/proc/{k}/status").read_text().lower()
        assert "kyb: stopped" in c.log.read_text()
        c.start()
        assert c.kjson("get", "configmap", "survivor")["data"] == {"a": "b"}
    finally:
        c.stop()


def test_help_on_every_command() -> None:
    for args in (["--help"], ["up", "--help"], ["apiserver", "--help"]):
        r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "usage: kyb" in r.stdout


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(tmp_path), "--store", "etcd"],
                       capture_output=True, text=True, timeout=30, env={**os.environ})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["kyb: error: --store etcd needs --etcd-servers"]
    time.sleep(0)
