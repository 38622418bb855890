"""Two controller managers: only the leader acts; killing it hands over within the lease."""

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
from .test_controllers import eventually

pytestmark = pytest.mark.e2e


def holder(c: Cluster) -> str:
    r = c.kubectl("get", "lease", "kube-controller-manager", "-n", "kube-system", "-o", "jsonpath={.spec.holderIdentity}", check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def test_controller_manager_failover(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(tmp_path / "data", free_port(), home)
    c.start("--runtime", "none")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        kc = str(c.kubeconfig)
        # kyb up runs one controller manager already; add two more with known identities
        for ident in ("cm-a", "cm-b"):
            procs[ident] = subprocess.Popen(
                [sys.executable, "-c",
                 "import asyncio,sys; from kybernetes.controllers.manager import run_manager; "
                 f"asyncio.run(run_manager({kc!r}, identity={ident!r}))"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = eventually(lambda: holder(c), 30)
        # the leader acts: a deployment gets its ReplicaSet
        c.kubectl("create", "deployment", "one", "--image=busybox")
        eventually(lambda: c.kjson("get", "rs", "-l", "app=one")["items"], 30)
        if first in procs:
            victim = procs.pop(first)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        else:  # the leader is kyb up's own controller manager: kill that child (found by parent PID)
            assert c.proc is not None
            kids = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(c.proc.pid)], capture_output=True, text=True).stdout
            pid = next(int(line.split()[0]) for line in kids.splitlines() if " controller-manager " in line)
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        new = eventually(lambda: (lambda h: h if h and h != first else None)(holder(c)), 40)
        assert new != first
        assert time.monotonic() - t0 <= 15 + 2 * 2 + 5  # lease duration + retries + slack
        c.kubectl("create", "deployment", "two", "--image=busybox")
        eventually(lambda: c.kjson("get", "rs", "-l", "app=two")["items"], 40)
        # exactly one ReplicaSet per deployment: only the leader acted
        assert len(c.kjson("get", "rs", "-l", "app=one")["items"]) == 1
        assert len(c.kjson("get", "rs", "-l", "app=two")["items"]) == 1
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        c.stop()
