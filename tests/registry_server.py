"""A real OCI registry on loopback for tests (Debian's ``docker-registry``), and busybox images.

    with RegistryServer(tmp_path) as reg:          # http://127.0.0.1:<port>, storage in a temp dir
        store.build(build_busybox_rootfs(tmp_path / "rootfs"), f"{reg.host}/busybox:1", cmd="sh")
        await store.push(f"{reg.host}/busybox:1")

    registry = registry_fixture()                  # in a test module: a pytest fixture factory
    auth_registry = registry_fixture(htpasswd={"alice": "s3cret"})

Registries on 127.0.0.1 are plain HTTP for the image store, so nothing needs configuring. The
server is only ever stopped by its own PID, and its storage directory is removed on stop.
``htpasswd`` users get bcrypt hashes from the C library's ``crypt`` (Debian's libxcrypt), so basic
auth needs no extra Python package; ``auth`` passes any raw ``auth:`` section (e.g. ``token``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REGISTRY_BIN = os.environ.get("KYB_REGISTRY_BIN", "/usr/bin/docker-registry")
BUSYBOX_BIN = os.environ.get("KYB_BUSYBOX_BIN", "/usr/bin/busybox")

DEFAULT_APPLETS = (
    "sh", "ash", "httpd", "nc", "wget", "nslookup", "cat", "sleep", "tar", "echo", "ls", "env",
    "id", "hostname", "ps", "kill", "mkdir", "rm", "cp", "mv", "ln", "true", "false", "test", "[",
    "printf", "head", "tail", "grep", "touch", "date", "pwd", "sed", "wc", "stat", "chmod",
    "dd", "yes", "seq", "sync", "top", "uname", "whoami", "tee",
)


def registry_available() -> bool:
    return os.access(REGISTRY_BIN, os.X_OK)


def busybox_available() -> bool:
    return os.access(BUSYBOX_BIN, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash (``$2b$``, cost 4: fast, for tests) from the C library."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, removed in 3.13; libxcrypt does bcrypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


class RegistryServer:
    """``docker-registry serve`` on a free 127.0.0.1 port with storage under ``tmpdir``."""

    def __init__(self, tmpdir: str | os.PathLike[str] | None = None, *,
                 htpasswd: dict[str, str] | None = None, auth: dict[str, Any] | None = None,
                 start: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="registry-", dir=tmpdir))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self.dir / "registry.log"
        self.auth: dict[str, Any] | None = auth
        if htpasswd is not None:
            path = self.dir / "htpasswd"
            path.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in htpasswd.items()))
            self.auth = {"htpasswd": {"realm": "kyb-test", "path": str(path)}}
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self) -> Path:
        cfg: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth:
            cfg["auth"] = self.auth
        path = self.dir / "config.yml"
        path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
        return path

    def start(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        last = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            config = self._write_config()
            env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
            with open(self._log, "ab") as log:
                self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, env=env, cwd=self.dir)
            try:
                self.wait_ready(timeout)
                return
            except RuntimeError as e:  # exited early
                last = str(e)
                self._kill()
        raise RuntimeError(f"docker-registry did not start: {last}")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as e:
                if e.code == 401:  # up, and asking for credentials
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"docker-registry not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self._log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """Stop the server (by its PID) and remove its directory."""
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "RegistryServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def registry_fixture(*, scope: str = "function", **kwargs: Any) -> Callable[..., Any]:
    """A pytest fixture yielding a running ``RegistryServer`` (skips when the binary is missing).
    Assign it to a module-level name: ``registry = registry_fixture()``."""

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
        if not registry_available():
            pytest.skip(f"{REGISTRY_BIN} is not installed")
        server = RegistryServer(tmp_path_factory.mktemp("registry"), **kwargs)
        try:
            yield server
        finally:
            server.stop()

    return _fixture


def build_busybox_rootfs(dest: str | os.PathLike[str], *, applets: tuple[str, ...] = DEFAULT_APPLETS,
                         files: dict[str, str | bytes] | None = None) -> Path:
    """A tiny root filesystem at ``dest``: ``bin/busybox`` (static) with applet symlinks,
    ``etc/passwd``/``etc/group`` (root, nobody), ``tmp`` (1777) and empty ``proc``, ``sys``,
    ``dev``, ``root``. ``files`` adds more: ``{"www/index.html": "hello"}``. Returns ``dest``."""
    if not busybox_available():
        raise FileNotFoundError(f"{BUSYBOX_BIN} (Debian busybox-static) is not installed")
    root = Path(dest)
    for d in ("bin", "etc", "proc", "sys", "dev", "root", "tmp", "var", "usr/bin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    shutil.copy2(BUSYBOX_BIN, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for a in applets:
        link = root / "bin" / a
        if a != "busybox" and not link.is_symlink():
            os.symlink("busybox", link)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for rel, content in (files or {}).items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def busybox_image(store: Any, name: str, scratch: str | os.PathLike[str], *,
                  files: dict[str, str | bytes] | None = None, **build_kwargs: Any) -> Any:
    """Build a busybox rootfs in a temp dir under ``scratch`` and store it as image ``name`` in
    ``store`` (an ``ImageStore``); ``build_kwargs`` go to ``ImageStore.build`` (entrypoint, cmd,
    env, workdir, user)."""
    rootfs = build_busybox_rootfs(Path(tempfile.mkdtemp(prefix="rootfs-", dir=scratch)), files=files)
    try:
        return store.build(rootfs, name, **build_kwargs)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
