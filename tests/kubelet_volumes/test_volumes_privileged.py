"""tmpfs-backed volumes: real mounts (root only). Every test unmounts what it mounted."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kybernetes.kubelet.volumes import VolumeError, VolumeManager, mounts_under, unmount

from .conftest import FakeSource, make_pod

pytestmark = [pytest.mark.privileged,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting tmpfs needs root")]


def fstype(path: str) -> str | None:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == real:
                return fields[fields.index("-") + 1]
    return None


@pytest.fixture
async def manager(tmp_path: Path, source: FakeSource) -> AsyncIterator[VolumeManager]:
    m = VolumeManager(tmp_path / "pods", source, use_tmpfs=True)
    try:
        yield m
    finally:
        for mp in sorted(mounts_under(str(tmp_path)), key=len, reverse=True):
            unmount(mp)  # only if a test failed before its own teardown


async def test_memory_emptydir_size_limit(manager: VolumeManager, tmp_path: Path) -> None:
    pod = make_pod(volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}])
    path = (await manager.setup(pod))["cache"]
    assert fstype(path) == "tmpfs"
    st = os.statvfs(path)
    assert st.f_blocks * st.f_frsize == 1024 * 1024
    with pytest.raises(OSError) as err:
        with open(os.path.join(path, "big"), "wb") as f:
            for _ in range(4):
                f.write(b"\0" * (512 * 1024))
                f.flush()
                os.fsync(f.fileno())
    assert err.value.errno == errno.ENOSPC
    await manager.setup(pod)  # idempotent: not mounted twice
    assert len(mounts_under(path)) == 1
    await manager.teardown("uid-1")
    assert mounts_under(str(tmp_path)) == []
    assert not os.path.exists(path)
    await manager.teardown("uid-1")


async def test_memory_emptydir_sized_by_pod_limit(manager: VolumeManager) -> None:
    pod = make_pod(containers=[{"name": "c", "resources": {"limits": {"memory": "3Mi"}}}],
                   volumes=[{"name": "m", "emptyDir": {"medium": "Memory"}}])
    path = (await manager.setup(pod, {"status": {"allocatable": {"memory": "8Gi"}}}))["m"]
    st = os.statvfs(path)
    assert st.f_blocks * st.f_frsize == 3 * 1024 * 1024
    await manager.teardown("uid-1")
    assert mounts_under(path) == []


async def test_secret_on_tmpfs_and_partial_teardown(manager: VolumeManager, source: FakeSource,
                                                    tmp_path: Path) -> None:
    source.add_secret("db", {"password": b"pw"})
    pod = make_pod(volumes=[{"name": "creds", "secret": {"secretName": "db"}},
                            {"name": "scratch", "emptyDir": {"medium": "Memory"}},
                            {"name": "missing", "configMap": {"name": "nope"}}])
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        await manager.setup(pod)
    creds = manager.volume_dir("uid-1", "secret", "creds")
    assert fstype(str(creds)) == "tmpfs"
    assert (creds / "password").read_text() == "pw"
    assert len(mounts_under(str(tmp_path))) == 2
    await manager.teardown("uid-1")
    assert mounts_under(str(tmp_path)) == []
    assert not (manager.root / "uid-1").exists()
