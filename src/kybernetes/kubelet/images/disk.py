"""The on-disk layout of the image store (blocking; async callers use ``asyncio.to_thread``).

    <root>/blobs/sha256/<hex>      content-addressed blobs: manifests, configs, layer tars
    <root>/layers/sha256/<hex>/    one unpacked layer per diff id (an overlayfs lowerdir)
    <root>/index.json              references -> images (see ``store.py`` for the record shape)
    <root>/lock                    flock(2) taken around every read-modify-write of the index
    <root>/tmp/                    partial downloads and unpacks, renamed into place when complete

Every write is atomic: content goes to ``tmp/`` first and is renamed into place only after it has
been verified, so a blob or layer directory that exists is complete and correct. Several processes
may share one store (the kubelet and ``kyb image build``): index changes are serialised with an
exclusive ``flock`` on ``lock`` and the index is re-read whenever the file changes on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import DigestMismatch, ImageError
from .layers import unpack_layer

INDEX_VERSION = 1
_STALE_TMP_SECONDS = 24 * 3600


def _hex(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise ImageError(f"unsupported or malformed digest {digest!r}")
    return h


def empty_index() -> dict[str, Any]:
    return {"version": INDEX_VERSION, "images": {}}


class Disk:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._index_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    # -- paths ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / "sha256" / _hex(diff_id)

    def ensure_dirs(self) -> None:
        for d in ("blobs/sha256", "layers/sha256", "tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def tmp_path(self, prefix: str) -> Path:
        self.ensure_dirs()
        return self.root / "tmp" / f"{prefix}{uuid.uuid4().hex}"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_path(diff_id).is_dir()

    # -- blobs ---------------------------------------------------------------------------------

    def adopt_blob(self, tmp: Path, digest: str) -> Path:
        """Rename the verified file ``tmp`` to the blob path of ``digest``."""
        dest = self.blob_path(digest)
        os.replace(tmp, dest)
        return dest

    def put_blob_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (verified against ``digest`` when given); returns its digest."""
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and actual != digest:
            raise DigestMismatch(f"content of {digest} hashes to {actual}")
        if not self.has_blob(actual):
            tmp = self.tmp_path("blob-")
            tmp.write_bytes(data)
            self.adopt_blob(tmp, actual)
        return actual

    def put_blob_stream(self, src: IO[bytes], digest: str | None = None, size: int = -1) -> tuple[str, int]:
        """Copy ``src`` into the store, verifying ``digest`` and ``size`` when given."""
        tmp = self.tmp_path("blob-")
        h = hashlib.sha256()
        n = 0
        try:
            with open(tmp, "xb") as out:
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
                    out.write(b)
            actual = "sha256:" + h.hexdigest()
            if digest is not None and actual != digest:
                raise DigestMismatch(f"content of {digest} hashes to {actual}")
            if size >= 0 and n != size:
                raise DigestMismatch(f"{actual}: {n} bytes, expected {size}")
            if self.has_blob(actual):
                tmp.unlink()
            else:
                self.adopt_blob(tmp, actual)
            return actual, n
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the image store") from None

    # -- layers --------------------------------------------------------------------------------

    def ensure_layer(self, diff_id: str, blob_digest: str) -> Path:
        """The unpacked directory of layer ``diff_id``, unpacking blob ``blob_digest`` when missing.
        The unpacked stream must hash to ``diff_id``."""
        dest = self.layer_path(diff_id)
        if dest.is_dir():
            return dest
        tmp = self.tmp_path("layer-")
        try:
            actual, _size = unpack_layer(self.blob_path(blob_digest), tmp)
            if actual != diff_id:
                raise DigestMismatch(f"layer {blob_digest}: uncompressed content hashes to {actual}, "
                                     f"the image config says {diff_id}")
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.is_dir():
                    raise
                # another puller finished first; ours is identical
        finally:
            if tmp.exists():
                remove_tree(tmp)
        return dest

    def delete_blob(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(digest).unlink()

    def delete_layer(self, diff_id: str) -> None:
        src = self.layer_path(diff_id)
        if not src.exists():
            return
        doomed = self.tmp_path("rm-")
        os.rename(src, doomed)   # vanish atomically, then delete at leisure
        remove_tree(doomed)

    def clean_tmp(self, *, older_than: float = _STALE_TMP_SECONDS) -> None:
        """Remove leftovers of interrupted pulls."""
        tmpdir = self.root / "tmp"
        if not tmpdir.is_dir():
            return
        now = time.time()
        for p in tmpdir.iterdir():
            try:
                if now - p.lstat().st_mtime > older_than:
                    remove_tree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            except OSError:
                pass

    # -- index ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock across threads and processes (each call opens its own descriptor)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load_index(self) -> dict[str, Any]:
        """The index (a fresh copy the caller may change); re-read only when the file changed."""
        path = self.root / "index.json"
        try:
            st = path.stat()
        except FileNotFoundError:
            return empty_index()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._index_cache is None or self._index_cache[0] != key:
            try:
                doc = json.loads(path.read_bytes())
            except ValueError as e:
                raise ImageError(f"image index {path} is corrupt: {e}") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("images"), dict):
                raise ImageError(f"image index {path} is corrupt")
            self._index_cache = (key, doc)
        return json.loads(json.dumps(self._index_cache[1]))

    def save_index(self, doc: dict[str, Any]) -> None:
        self.ensure_dirs()
        tmp = self.tmp_path("index-")
        data = json.dumps(doc, indent=1, sort_keys=True).encode()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "index.json")
        self._index_cache = None


def remove_tree(path: Path) -> None:
    def onerror(func: Any, p: str, exc: Any) -> None:
        # a read-only directory (mode 0555 from a layer) blocks unlinking for non-root users
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)
