"""End-to-end fixtures: a real `kyb up` cluster driven by the real kubectl."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import free_port

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class Cluster:
    def __init__(self, data_dir: Path, port: int, home: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        self.kubeconfig = data_dir / "admin.kubeconfig"
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(home),
                    "KUBECACHEDIR": str(home / "cache")}
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "kyb-up.log"

    def start(self, *extra: str) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kybernetes.cli.main", "up", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), *extra],
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kyb up exited: {self.log.read_text()[-3000:]}")
            if b"cluster is up" in self.log.read_bytes()[offset:]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"kyb up did not become ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout,
                           env={**self.env, **(env or {})})
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def kjson(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    base = tmp_path_factory.mktemp("cluster")
    home = base / "home"
    home.mkdir()
    c = Cluster(base / "data", free_port(), home)
    c.start("--runtime", "fake", "--nodes", "3")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = "e2e-" + uuid.uuid4().hex[:8]
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
