"""Layer tars: unpacking into an overlayfs lower directory, and packing a directory into a layer.

Blocking code (call it through ``asyncio.to_thread`` from async code).

**Unpacking.** Each layer is unpacked into its own directory, which the runc runtime stacks as an
overlayfs ``lowerdir``. OCI whiteouts become their overlayfs form so the kernel hides the lower
layers' files: ``dir/.wh.name`` becomes a character device 0/0 at ``dir/name``, and
``dir/.wh..wh..opq`` sets the ``trusted.overlay.opaque=y`` xattr on ``dir``. Both need root
(CAP_MKNOD / CAP_SYS_ADMIN); without it they are skipped with a warning.

**Safety.** Entry names are cleaned lexically as if rooted at ``/`` (so ``../../etc/x`` becomes
``etc/x``, as containerd does), and every directory on the way is opened relative to the layer
root with ``O_NOFOLLOW``: a symlink in the layer can exist (absolute or escaping targets are fine
*as links*), but nothing is ever written through one. A hard link must point inside the layer.
A layer that tries to write through a symlink or non-directory is rejected (``LayerError``).

The uncompressed stream is hashed while it is read, which gives the layer's *diff id* (checked
against the image config by the caller). gzip and uncompressed tars are accepted.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import LayerError

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COPY_CHUNK = 1 << 20


class _HashingReader:
    """A read-only file object that hashes what passes through it and counts bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass


class _HashingWriter:
    """A write-only file object that hashes and counts what is written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.hash.update(b)
        self.count += len(b)
        self.raw.write(b)
        return len(b)

    def flush(self) -> None:
        self.raw.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def clean_name(name: str) -> list[str]:
    """The path components of a tar entry name, cleaned as if rooted at ``/`` ("" -> [])."""
    p = posixpath.normpath("/" + name)
    return [c for c in p.split("/") if c and c != "."]


def _open_dir(root_fd: int, parts: list[str], *, create: bool, entry: str) -> int:
    """Open the directory ``parts`` under ``root_fd`` without following symlinks, creating missing
    directories (0755) when ``create``. Returns a new fd the caller must close."""
    fd = os.dup(root_fd)
    try:
        for p in parts:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                nfd = os.open(p, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise LayerError(f"layer entry {entry!r}: {p!r} does not exist") from None
                os.mkdir(p, 0o755, dir_fd=fd)
                nfd = os.open(p, flags, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LayerError(f"layer entry {entry!r}: refusing to write through "
                                     f"{p!r}, which is not a directory") from None
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _remove_existing(parent_fd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


def _is_dir_at(parent_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in (member.pax_headers or {}).items():
        if k.startswith("SCHILY.xattr."):
            raw = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
            out[k[len("SCHILY.xattr."):]] = raw
    return out


class _Unpacker:
    def __init__(self, root_fd: int, *, privileged: bool) -> None:
        self.root_fd = root_fd
        self.privileged = privileged
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}
        self.size = 0
        self.warned: set[str] = set()

    def _warn(self, what: str, entry: str, err: OSError) -> None:
        if what not in self.warned:
            self.warned.add(what)
            log.warning("layer: cannot create %s (%s: %s); skipped (needs root)", what, entry, err)

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        if not parts:
            return  # the layer root itself
        base, parent = parts[-1], parts[:-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(parent, base, m.name)
            return
        pfd = _open_dir(self.root_fd, parent, create=True, entry=m.name)
        try:
            if m.isdir():
                if not _is_dir_at(pfd, base):
                    _remove_existing(pfd, base)
                    os.mkdir(base, 0o700, dir_fd=pfd)
                self.dirs[tuple(parts)] = m
                return
            _remove_existing(pfd, base)
            if m.isreg():
                self.regular(tf, m, pfd, base)
            elif m.issym():
                os.symlink(m.linkname, base, dir_fd=pfd)
                self.owner_times(pfd, base, m)
            elif m.islnk():
                self.hardlink(m, pfd, base)
            elif m.ischr() or m.isblk():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                try:
                    os.mknod(base, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
                except PermissionError as e:
                    self._warn("device node", m.name, e)
                    return
                self.owner_times(pfd, base, m, chmod=True)
            elif m.isfifo():
                os.mkfifo(base, m.mode & 0o7777, dir_fd=pfd)
                self.owner_times(pfd, base, m, chmod=True)
            else:
                log.debug("layer: skipping %s of unsupported type %r", m.name, m.type)
        finally:
            os.close(pfd)

    def whiteout(self, parent: list[str], base: str, entry: str) -> None:
        pfd = _open_dir(self.root_fd, parent, create=True, entry=entry)
        try:
            if base == WHITEOUT_OPAQUE:
                try:
                    os.setxattr(pfd, OVERLAY_OPAQUE_XATTR, b"y")
                except PermissionError as e:
                    self._warn("opaque directory xattr", entry, e)
                return
            if base.startswith(WHITEOUT_META_PREFIX):
                return  # other AUFS metadata (.wh..wh.plnk, ...): nothing to do in overlay form
            name = base[len(WHITEOUT_PREFIX):]
            if not name or name in (".", ".."):
                raise LayerError(f"layer entry {entry!r}: invalid whiteout")
            _remove_existing(pfd, name)
            try:
                os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            except PermissionError as e:
                self._warn("whiteout", entry, e)
        finally:
            os.close(pfd)

    def regular(self, tf: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        src = tf.extractfile(m)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=pfd)
        try:
            if src is not None:
                with os.fdopen(os.dup(fd), "wb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
            self.size += m.size
            for k, v in _xattrs(m).items():
                try:
                    os.setxattr(fd, k, v)
                except OSError:
                    pass
            if self.privileged:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o7777)
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)

    def hardlink(self, m: tarfile.TarInfo, pfd: int, base: str) -> None:
        tparts = clean_name(m.linkname)
        if not tparts:
            raise LayerError(f"layer entry {m.name!r}: hard link to the layer root")
        tfd = _open_dir(self.root_fd, tparts[:-1], create=False, entry=m.name)
        try:
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"layer entry {m.name!r}: hard link target {m.linkname!r} "
                             "is not in this layer") from None
        finally:
            os.close(tfd)

    def owner_times(self, pfd: int, base: str, m: tarfile.TarInfo, *, chmod: bool = False) -> None:
        if self.privileged:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        try:
            os.utime(base, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
        except OSError:
            pass

    def finish_dirs(self) -> None:
        """Apply directory modes, owners, xattrs and times last (children change mtimes)."""
        for parts, m in sorted(self.dirs.items(), key=lambda kv: -len(kv[0])):
            try:
                fd = _open_dir(self.root_fd, list(parts), create=False, entry=m.name)
            except LayerError:
                continue  # replaced by a later entry
            try:
                for k, v in _xattrs(m).items():
                    try:
                        os.setxattr(fd, k, v)
                    except OSError:
                        pass
                if self.privileged:
                    os.fchown(fd, m.uid, m.gid)
                os.fchmod(fd, m.mode & 0o7777)
                os.utime(fd, (m.mtime, m.mtime))
            finally:
                os.close(fd)


def open_layer_stream(raw: BinaryIO) -> IO[bytes]:
    """The uncompressed stream of a layer blob (gzip detected by its magic bytes)."""
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head == _ZSTD_MAGIC:
        raise LayerError("zstd-compressed layers are not supported")
    return raw


def unpack_layer(blob_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> tuple[str, int]:
    """Unpack the layer blob at ``blob_path`` into the (new or empty) directory ``dest``.
    Returns (diff id, bytes of regular file content). Raises ``LayerError``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with open(blob_path, "rb") as raw:
            stream = _HashingReader(open_layer_stream(raw))
            u = _Unpacker(root_fd, privileged=os.geteuid() == 0)
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
                    for m in tf:
                        u.entry(tf, m)
                stream.drain()
            except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as e:
                if isinstance(e, LayerError):
                    raise
                raise LayerError(f"cannot unpack layer: {e}") from None
            u.finish_dirs()
            return "sha256:" + stream.hash.hexdigest(), u.size
    finally:
        os.close(root_fd)


def _clean_tarinfo(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
    ti.uname = ti.gname = ""
    if ti.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                       tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
        return None
    return ti


def pack_layer(rootfs: str | os.PathLike[str], out: BinaryIO, *, compress: bool = True) -> tuple[str, int, str]:
    """Write a layer tar of the directory ``rootfs`` (its contents, not the directory itself; numeric
    owners kept; entries sorted so the same tree gives the same diff id) to ``out``, gzip-compressed
    when ``compress``. Returns (blob digest, blob size, diff id)."""
    root = Path(rootfs)
    if not root.is_dir():
        raise LayerError(f"{rootfs} is not a directory")
    blob = _HashingWriter(out)
    gz: gzip.GzipFile | None = None
    if compress:
        gz = gzip.GzipFile(fileobj=blob, mode="wb", mtime=0, compresslevel=6)  # type: ignore[arg-type]
        tar_sink = _HashingWriter(gz)  # type: ignore[arg-type]
    else:
        tar_sink = blob
    with tarfile.open(fileobj=tar_sink, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for name in sorted(os.listdir(root)):
            tf.add(root / name, arcname=name, recursive=True, filter=_clean_tarinfo)
    if gz is not None:
        gz.close()
    blob.flush()
    return blob.digest, blob.count, tar_sink.digest
