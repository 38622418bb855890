"""Start a real, single-member etcd on loopback for tests and benchmarks.

    with EtcdServer(tmp_path) as etcd:
        store = EtcdStore(etcd.endpoints)
        ...
        etcd.kill9(); etcd.restart()

The server listens on free 127.0.0.1 ports (client and peer), keeps its data in a fresh directory
under ``tmpdir`` (removed by ``stop()``), and is only ever stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ETCD_BIN = os.environ.get("KYB_ETCD_BIN", "/usr/bin/etcd")


def etcd_available() -> bool:
    return os.access(ETCD_BIN, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EtcdServer:
    def __init__(self, tmpdir: str | os.PathLike[str] | None = None, *, start: bool = True) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="etcd-", dir=tmpdir))
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir.parent / f"{self.data_dir.name}.log"
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    @property
    def endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{self.client_port}"]

    def _argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            ETCD_BIN,
            "--name", "default",
            "--data-dir", str(self.data_dir / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "error",
        ]

    def start(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(
                self._argv(), stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL
            )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.client_port}/health"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if b'"health":"true"' in resp.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"etcd not healthy after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self._log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the server (data stays) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, timeout: float = 20.0) -> None:
        self.kill9()
        self.start(timeout)

    def stop(self) -> None:
        """Terminate the server by PID, wait for it and remove its data directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            self._log.unlink()
        except OSError:
            pass

    def __enter__(self) -> "EtcdServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
