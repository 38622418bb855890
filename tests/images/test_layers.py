"""Layer unpacking (whiteouts in overlayfs form, path safety, diff ids) and packing."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from kybernetes.kubelet.images.errors import LayerError
from kybernetes.kubelet.images.layers import OVERLAY_OPAQUE_XATTR, pack_layer, unpack_layer

from .helpers import make_tar

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="whiteouts (mknod, trusted xattrs) need root")


def write_blob(tmp: Path, data: bytes, name: str = "blob") -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_unpack_files_links_and_diff_id(tmp_path: Path, compress: bool) -> None:
    raw = make_tar([
        ("dir", "etc", 0o750), ("file", "etc/motd", b"hello\n", 0o640), ("dir", "bin"),
        ("file", "bin/tool", b"#!/bin/sh\n", 0o4755), ("sym", "bin/sh", "tool"),
        ("link", "bin/tool2", "bin/tool"), ("sym", "abs", "/etc/motd"), ("fifo", "pipe"),
        ("file", "deep/er/x", b"implicit parents"),
    ])
    blob = write_blob(tmp_path, gzip.compress(raw, mtime=0) if compress else raw)
    dest = tmp_path / "layer"
    diff_id, size = unpack_layer(blob, dest)
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert size == len(b"hello\n") + len(b"#!/bin/sh\n") + len(b"implicit parents")
    assert (dest / "etc/motd").read_bytes() == b"hello\n"
    assert stat.S_IMODE((dest / "etc/motd").stat().st_mode) == 0o640
    assert stat.S_IMODE((dest / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "bin/tool").stat().st_mode) == 0o4755
    assert os.readlink(dest / "bin/sh") == "tool"
    assert os.readlink(dest / "abs") == "/etc/motd"    # absolute links stay links
    assert (dest / "bin/tool2").stat().st_ino == (dest / "bin/tool").stat().st_ino
    assert stat.S_ISFIFO((dest / "pipe").lstat().st_mode)
    assert (dest / "deep/er/x").read_bytes() == b"implicit parents"
    assert int((dest / "etc/motd").stat().st_mtime) == 1_700_000_000


@needs_root
def test_whiteouts_become_overlay_form(tmp_path: Path) -> None:
    raw = make_tar([
        ("dir", "etc"), ("file", "etc/.wh.passwd", b""), ("dir", "var/cache"),
        ("file", "var/cache/.wh..wh..opq", b""), ("file", "var/cache/new", b"n"),
        ("file", ".wh.gone-dir", b""), ("file", "etc/.wh..wh.plnk", b""),
    ])
    dest = tmp_path / "layer"
    unpack_layer(write_blob(tmp_path, raw), dest)
    wh = (dest / "etc/passwd").lstat()
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert stat.S_ISCHR((dest / "gone-dir").lstat().st_mode)
    assert os.getxattr(dest / "var/cache", OVERLAY_OPAQUE_XATTR) == b"y"
    assert (dest / "var/cache/new").read_bytes() == b"n"
    assert not any(p.name.startswith(".wh.") for p in dest.rglob("*"))


@needs_root
@pytest.mark.privileged
def test_overlay_mount_hides_whited_out_files(tmp_path: Path) -> None:
    """The unpacked layers really stack: the kernel hides whited-out files and opaque dirs."""
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    unpack_layer(write_blob(tmp_path, make_tar([
        ("file", "etc/passwd", b"root"), ("file", "etc/keep", b"k"),
        ("file", "var/cache/old", b"o"), ("file", "var/cache/sub/old2", b"o2")]), "b1"), lower)
    unpack_layer(write_blob(tmp_path, make_tar([
        ("file", "etc/.wh.passwd", b""), ("file", "var/cache/.wh..wh..opq", b""),
        ("file", "var/cache/new", b"n")]), "b2"), upper)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # overlay lowerdir lists the top layer first
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(mnt)],
                   check=True, capture_output=True)
    try:
        assert not (mnt / "etc/passwd").exists()
        assert (mnt / "etc/keep").read_bytes() == b"k"
        assert sorted(p.name for p in (mnt / "var/cache").iterdir()) == ["new"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("name", ["../../escape", "/abs/escape", "a/../../../escape", "./../escape"])
def test_traversal_is_clamped_inside_the_layer(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "work" / "layer"
    unpack_layer(write_blob(tmp_path, make_tar([("file", name, b"x")])), dest)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "work" / "escape").exists()
    assert not Path("/abs/escape").exists()
    written = [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()]
    assert written and all(w.endswith("escape") for w in written)


def test_never_writes_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    raw = make_tar([("sym", "evil", str(outside)), ("file", "evil/pwned", b"x")])
    with pytest.raises(LayerError, match="refusing to write through"):
        unpack_layer(write_blob(tmp_path, raw), tmp_path / "layer")
    assert list(outside.iterdir()) == []


def test_relative_symlink_escape_and_whiteout_through_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep")
    raw = make_tar([("sym", "up", "../outside"), ("file", "up/.wh.victim", b"")])
    with pytest.raises(LayerError):
        unpack_layer(write_blob(tmp_path, raw), tmp_path / "layer")
    assert (outside / "victim").read_text() == "keep"


def test_hardlink_must_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    raw = make_tar([("link", "stolen", "../secret")])   # clamps to /secret inside the layer: absent
    with pytest.raises(LayerError, match="not in this layer"):
        unpack_layer(write_blob(tmp_path, raw), tmp_path / "layer")


def test_later_entry_replaces_earlier(tmp_path: Path) -> None:
    raw = make_tar([("file", "x", b"old"), ("dir", "x"), ("file", "x/y", b"y"),
                    ("file", "f", b"1"), ("file", "f", b"2")])
    dest = tmp_path / "layer"
    unpack_layer(write_blob(tmp_path, raw), dest)
    assert (dest / "x").is_dir() and (dest / "x/y").read_bytes() == b"y"
    assert (dest / "f").read_bytes() == b"2"


def test_corrupt_and_unsupported_layers(tmp_path: Path) -> None:
    good = gzip.compress(make_tar([("file", "a", b"a" * 5000)]), mtime=0)
    with pytest.raises(LayerError):
        unpack_layer(write_blob(tmp_path, good[: len(good) // 2], "trunc"), tmp_path / "l1")
    with pytest.raises(LayerError, match="zstd"):
        unpack_layer(write_blob(tmp_path, b"\x28\xb5\x2f\xfd" + b"\0" * 100, "zstd"), tmp_path / "l2")


def test_pack_then_unpack_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "rootfs"
    (src / "bin").mkdir(parents=True)
    (src / "bin/prog").write_bytes(b"\x7fELF...")
    os.chmod(src / "bin/prog", 0o755)
    os.symlink("prog", src / "bin/alias")
    os.link(src / "bin/prog", src / "bin/hard")
    (src / "empty").mkdir()
    with open(tmp_path / "layer.tgz", "wb") as out:
        digest, size, diff_id = pack_layer(src, out)
    data = (tmp_path / "layer.tgz").read_bytes()
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest() and size == len(data)
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    with open(tmp_path / "again.tgz", "wb") as out:
        assert pack_layer(src, out)[2] == diff_id          # deterministic
    dest = tmp_path / "unpacked"
    assert unpack_layer(tmp_path / "layer.tgz", dest)[0] == diff_id
    assert (dest / "bin/prog").read_bytes() == b"\x7fELF..."
    assert os.access(dest / "bin/prog", os.X_OK)
    assert os.readlink(dest / "bin/alias") == "prog"
    assert (dest / "bin/hard").stat().st_ino == (dest / "bin/prog").stat().st_ino
    assert (dest / "empty").is_dir()
