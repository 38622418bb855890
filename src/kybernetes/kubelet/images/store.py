"""The node's image store: pull per policy, import, build, push, list, remove and GC.

One store per node, shared by every pod: blobs are content-addressed and each layer is unpacked
once (see ``disk.py`` for the layout). The index (``index.json``) maps images, keyed by id
(``sha256:<config digest>``), to a record::

    {"manifest_digest": "sha256:..", "media_type": "...manifest.v1+json",
     "repo_tags": ["127.0.0.1:5000/busybox:1"], "repo_digests": ["127.0.0.1:5000/busybox@sha256:.."],
     "layers": [{"digest": "sha256:..", "diff_id": "sha256:..", "size": 123, "media_type": ".."}],
     "config_size": 456, "size": 579, "config": {ImageConfig fields},
     "created_at": 1700000000.0, "last_used": 1700000000.0}

A tag names at most one image; pulling a tag that moved leaves the old image untagged ("dangling")
but stored, since running containers may still use its layers; GC or ``remove(id)`` deletes it.
Removing an image deletes the blobs and layer directories no remaining image refers to.

Sync methods (``get``, ``list``, ``remove``, ``import_archive``, ``build``, ``gc``) do blocking file
I/O: async callers with big inputs run them via ``asyncio.to_thread``. ``ensure``/``pull``/``push``
are coroutines that keep all blocking work off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .archive import read_archive
from .auth import RegistryAuth
from .build import build_blobs
from .disk import Disk, remove_tree
from .errors import (ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, INVALID_IMAGE_NAME, ImageError,
                     ImageNotFound, ImagePullError, InvalidReference)
from .gc import DiskUsage, GcImage, done_gc, gc_order, needs_gc, validate_thresholds
from .manifest import (INDEX_TYPES, ConfigInfo, Descriptor, Manifest, Platform, host_platform,
                       is_layer_type, parse_config, parse_index, parse_manifest, select_platform)
from .model import Image, ImageConfig
from .reference import Reference, looks_like_id, parse_reference, should_pull
from .registry import FetchedManifest, RegistryClient

log = logging.getLogger(__name__)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DiskUsageFn = Callable[[Path], Any]   # returns (total, used, free) like shutil.disk_usage


def _repo_names(rec: Mapping[str, Any]) -> set[str]:
    names = {t.rsplit(":", 1)[0] for t in rec.get("repo_tags", [])}
    names |= {d.split("@", 1)[0] for d in rec.get("repo_digests", [])}
    return names


def _config_of(info: ConfigInfo) -> ImageConfig:
    return ImageConfig(entrypoint=info.entrypoint, cmd=info.cmd, env=list(info.env),
                       working_dir=info.working_dir, user=info.user,
                       exposed_ports=list(info.exposed_ports), labels=dict(info.labels),
                       stop_signal=info.stop_signal)


def _first_error(eg: BaseExceptionGroup) -> BaseException:  # type: ignore[type-arg]
    """The first real error inside a (nested) exception group from a TaskGroup."""
    exc: BaseException = eg
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class ImageStore:
    """The content-addressed image store at ``root`` (e.g. ``<kubelet data dir>/images``)."""

    def __init__(self, root: str | os.PathLike[str], *, platform: Platform | None = None,
                 disk_usage: DiskUsageFn | None = None, clock: Callable[[], float] = time.time,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 request_timeout: float = 60.0, max_concurrent_downloads: int = 3,
                 push_chunk_size: int | None = None) -> None:
        self.root = Path(root)
        self.disk = Disk(self.root)
        self.platform = platform or host_platform()
        self._disk_usage = disk_usage or shutil.disk_usage
        self._clock = clock
        self._timeouts = dict(connect_timeout=connect_timeout, read_timeout=read_timeout,
                              request_timeout=request_timeout)
        self._max_downloads = max(1, max_concurrent_downloads)
        self.push_chunk_size = push_chunk_size
        self._ref_locks: dict[str, asyncio.Lock] = {}

    # -- reading the index ---------------------------------------------------------------------

    def _to_image(self, image_id: str, rec: Mapping[str, Any]) -> Image:
        return Image(
            id=image_id, repo_tags=list(rec.get("repo_tags", [])),
            repo_digests=list(rec.get("repo_digests", [])), size=int(rec.get("size", 0)),
            config=ImageConfig.from_dict(rec.get("config") or {}),
            layer_dirs=[str(self.disk.layer_path(layer["diff_id"])) for layer in rec.get("layers", [])],
            manifest_digest=rec.get("manifest_digest", ""), last_used=float(rec.get("last_used", 0.0)),
            created_at=float(rec.get("created_at", 0.0)))

    @staticmethod
    def _find(idx: Mapping[str, Any], ref_or_id: str) -> tuple[str, Reference | None] | None:
        """(image id, the parsed reference or None when matched by id)."""
        images: Mapping[str, Any] = idx["images"]
        try:
            r: Reference | None = parse_reference(ref_or_id)
        except InvalidReference:
            r = None
        if r is not None:
            for image_id, rec in images.items():
                if r.digest:
                    if (f"{r.name}@{r.digest}" in rec.get("repo_digests", [])
                            or (rec.get("manifest_digest") == r.digest and r.name in _repo_names(rec))):
                        return image_id, r
                elif r.tagged in rec.get("repo_tags", []):
                    return image_id, r
        if looks_like_id(ref_or_id):
            h = ref_or_id[7:] if ref_or_id.startswith("sha256:") else ref_or_id
            hits = [i for i in images if i[7:].startswith(h)]
            if len(hits) == 1:
                return hits[0], None
        return None

    def get(self, ref_or_id: str) -> Image | None:
        """The stored image for a reference (tag or digest) or an id / unique id prefix."""
        if not ref_or_id:
            return None
        idx = self.disk.load_index()
        found = self._find(idx, ref_or_id)
        if found is None:
            return None
        return self._to_image(found[0], idx["images"][found[0]])

    def list(self) -> list[Image]:
        idx = self.disk.load_index()
        out = [self._to_image(i, rec) for i, rec in idx["images"].items()]
        out.sort(key=lambda im: (im.repo_tags[0] if im.repo_tags else "~" + im.id))
        return out

    # -- writing the index ---------------------------------------------------------------------

    def _commit(self, *, manifest: bytes, manifest_digest: str, media_type: str, tags: Iterable[str],
                repo_digest: str | None, touch: bool) -> Image:
        """Record an image whose blobs are all in the store, unpacking any missing layer."""
        man = parse_manifest(manifest, media_type)
        info = parse_config(self.disk.read_blob(man.config.digest))
        if len(info.diff_ids) != len(man.layers):
            raise ImageError(f"image config lists {len(info.diff_ids)} layers, the manifest "
                             f"{len(man.layers)}")
        now = self._clock()
        with self.disk.lock():
            for diff_id, layer in zip(info.diff_ids, man.layers):
                if not self.disk.has_blob(layer.digest):
                    raise ImageError(f"layer blob {layer.digest} vanished (removed concurrently); retry")
                self.disk.ensure_layer(diff_id, layer.digest)
            idx = self.disk.load_index()
            image_id = man.config.digest
            rec = idx["images"].get(image_id) or {"repo_tags": [], "repo_digests": [],
                                                  "created_at": now, "last_used": now}
            layers = [{"digest": d.digest, "diff_id": diff, "size": d.size, "media_type": d.media_type}
                      for d, diff in zip(man.layers, info.diff_ids)]
            rec.update(manifest_digest=manifest_digest, media_type=man.media_type, layers=layers,
                       config_size=man.config.size,
                       size=max(0, man.config.size) + sum(max(0, d.size) for d in man.layers),
                       config=_config_of(info).to_dict())
            for tag in tags:
                for other_id, other in idx["images"].items():
                    if other_id != image_id and tag in other.get("repo_tags", []):
                        other["repo_tags"].remove(tag)
                if tag not in rec["repo_tags"]:
                    rec["repo_tags"].append(tag)
            if repo_digest and repo_digest not in rec["repo_digests"]:
                rec["repo_digests"].append(repo_digest)
            if touch:
                rec["last_used"] = now
            idx["images"][image_id] = rec
            self.disk.save_index(idx)
        return self._to_image(image_id, rec)

    def touch(self, image_id: str) -> None:
        """Mark an image as just used (the LRU order of GC)."""
        with self.disk.lock():
            idx = self.disk.load_index()
            rec = idx["images"].get(image_id)
            if rec is not None:
                rec["last_used"] = self._clock()
                self.disk.save_index(idx)

    def _delete_locked(self, idx: dict[str, Any], image_id: str) -> list[Path]:
        """Drop an image from ``idx`` and move its now-unreferenced layer dirs aside; delete its
        unreferenced blobs. Returns the directories to delete after the lock is released."""
        rec = idx["images"].pop(image_id)
        keep_blobs: set[str] = set()
        keep_layers: set[str] = set()
        for other_id, other in idx["images"].items():
            keep_blobs |= {other_id, other.get("manifest_digest", "")}
            keep_blobs |= {layer["digest"] for layer in other.get("layers", [])}
            keep_layers |= {layer["diff_id"] for layer in other.get("layers", [])}
        for digest in {image_id, rec.get("manifest_digest", "")} | {x["digest"] for x in rec.get("layers", [])}:
            if digest and digest not in keep_blobs:
                self.disk.delete_blob(digest)
        doomed = []
        for layer in rec.get("layers", []):
            diff_id = layer["diff_id"]
            if diff_id not in keep_layers and self.disk.has_layer(diff_id):
                tmp = self.disk.tmp_path("rm-")
                os.rename(self.disk.layer_path(diff_id), tmp)
                doomed.append(tmp)
        return doomed

    def _delete_dirs(self, dirs: list[Path]) -> None:
        for d in dirs:
            remove_tree(d)

    def remove(self, ref_or_id: str) -> None:
        """Untag ``ref`` (deleting the image when no tag is left) or delete the image ``id``.
        Blobs and layers no remaining image uses are deleted. Raises ``ImageNotFound``."""
        with self.disk.lock():
            idx = self.disk.load_index()
            found = self._find(idx, ref_or_id)
            if found is None:
                raise ImageNotFound(f"no such image: {ref_or_id}")
            image_id, r = found
            rec = idx["images"][image_id]
            delete = r is None
            if r is not None:
                if r.digest:
                    rd = f"{r.name}@{r.digest}"
                    if rd in rec["repo_digests"]:
                        rec["repo_digests"].remove(rd)
                else:
                    rec["repo_tags"].remove(r.tagged)
                delete = not rec["repo_tags"]
            doomed = self._delete_locked(idx, image_id) if delete else []
            self.disk.save_index(idx)
        self._delete_dirs(doomed)

    # -- ensure / pull -------------------------------------------------------------------------

    @staticmethod
    def _parse(ref: str) -> Reference:
        try:
            return parse_reference(ref)
        except InvalidReference as e:
            raise ImagePullError(f'Failed to apply default image tag "{ref}": {e.message}',
                                 INVALID_IMAGE_NAME) from None

    async def ensure(self, ref: str, *, policy: str = "IfNotPresent",
                     auths: Sequence[RegistryAuth] = (),
                     insecure_registries: set[str] | None = None) -> Image:
        """Make ``ref`` available per ``imagePullPolicy`` and return it. Raises ``ImagePullError``
        (ErrImagePull, ErrImageNeverPull or InvalidImageName)."""
        if policy not in PULL_POLICIES:
            raise ValueError(f"unknown image pull policy {policy!r}")
        r = self._parse(ref)
        image = await asyncio.to_thread(self.get, str(r))
        if policy == "Never" and image is None:
            raise ImagePullError(f'Container image "{ref}" is not present with pull policy of Never',
                                 ERR_IMAGE_NEVER_PULL)
        if not should_pull(policy, image is not None):
            assert image is not None
            await asyncio.to_thread(self.touch, image.id)
            return image
        async with self._ref_lock(str(r)):
            if policy == "IfNotPresent":  # a concurrent ensure may have pulled it meanwhile
                image = await asyncio.to_thread(self.get, str(r))
                if image is not None:
                    await asyncio.to_thread(self.touch, image.id)
                    return image
            return await self._pull_reporting(r, list(auths), insecure_registries)

    def _ref_lock(self, key: str) -> asyncio.Lock:
        lock = self._ref_locks.get(key)
        if lock is None:
            lock = self._ref_locks[key] = asyncio.Lock()
        return lock

    async def pull(self, ref: str, *, auths: Sequence[RegistryAuth] = (),
                   insecure_registries: set[str] | None = None) -> Image:
        """Fetch ``ref`` from its registry (re-resolving the tag every time; blobs and layers
        already stored are not fetched again). Raises ``ImagePullError``."""
        r = self._parse(ref)
        async with self._ref_lock(str(r)):
            return await self._pull_reporting(r, list(auths), insecure_registries)

    async def _pull_reporting(self, r: Reference, auths: list[RegistryAuth],
                              insecure: set[str] | None) -> Image:
        """``_pull`` with every failure turned into ``ImagePullError(ErrImagePull)``."""
        try:
            return await self._pull(r, auths, insecure)
        except ImagePullError:
            raise
        except (ImageError, OSError) as e:
            msg = e.message if isinstance(e, ImageError) else f"{type(e).__name__}: {e}"
            raise ImagePullError(f'failed to pull and unpack image "{r}": {msg}', ERR_IMAGE_PULL) from e

    async def _pull(self, r: Reference, auths: list[RegistryAuth],
                    insecure: set[str] | None) -> Image:
        await asyncio.to_thread(self.disk.ensure_dirs)
        async with RegistryClient(auths=auths, insecure_registries=insecure, **self._timeouts) as c:
            top = await c.get_manifest(r)
            fetched: FetchedManifest = top
            if top.media_type in INDEX_TYPES:
                entry = select_platform(parse_index(top.data), self.platform)
                fetched = await c.get_manifest(r, entry.digest)
            man = parse_manifest(fetched.data, fetched.media_type)
            for layer in man.layers:
                if not is_layer_type(layer.media_type) or layer.media_type.endswith("zstd"):
                    raise ImageError(f"unsupported layer media type {layer.media_type!r}")
            await self._fetch_missing(c, r, [man.config])
            info = parse_config(await asyncio.to_thread(self.disk.read_blob, man.config.digest))
            if len(info.diff_ids) != len(man.layers):
                raise ImageError("image config and manifest disagree on the number of layers")
            await self._fetch_missing(c, r, list(man.layers))
        await self._unpack_missing(man, info)
        await asyncio.to_thread(self.disk.put_blob_bytes, fetched.data, fetched.digest)
        tags = [r.tagged] if r.tag and not r.digest else []
        image = await asyncio.to_thread(
            self._commit, manifest=fetched.data, manifest_digest=fetched.digest,
            media_type=man.media_type, tags=tags, repo_digest=r.with_digest(top.digest), touch=True)
        log.info("pulled %s (%s, %d bytes)", r, image.id, image.size)
        return image

    async def _fetch_missing(self, c: RegistryClient, r: Reference, descs: list[Descriptor]) -> None:
        sem = asyncio.Semaphore(self._max_downloads)

        async def one(d: Descriptor) -> None:
            async with sem:
                if await asyncio.to_thread(self.disk.has_blob, d.digest):
                    return
                tmp = await asyncio.to_thread(self.disk.tmp_path, "blob-")
                await c.fetch_blob(r, d.digest, d.size, tmp)
                await asyncio.to_thread(self.disk.adopt_blob, tmp, d.digest)

        seen: set[str] = set()
        try:
            async with asyncio.TaskGroup() as tg:
                for d in descs:
                    if d.digest not in seen:
                        seen.add(d.digest)
                        tg.create_task(one(d))
        except ExceptionGroup as eg:
            raise _first_error(eg) from None

    async def _unpack_missing(self, man: Manifest, info: ConfigInfo) -> None:
        for diff_id, layer in zip(info.diff_ids, man.layers):
            await asyncio.to_thread(self.disk.ensure_layer, diff_id, layer.digest)

    # -- push ----------------------------------------------------------------------------------

    async def push(self, ref: str, *, auths: Sequence[RegistryAuth] = (),
                   insecure_registries: set[str] | None = None,
                   chunk_size: int | None = None) -> str:
        """Upload the local image ``ref`` to the registry its name points at (missing blobs first,
        then the manifest under the tag). Returns the manifest digest. Raises ``ImageError``."""
        try:
            r = parse_reference(ref)
        except InvalidReference as e:
            raise ImageError(e.message) from None
        image = await asyncio.to_thread(self.get, str(r))
        if image is None:
            raise ImageNotFound(f"no such image: {ref}")
        data = await asyncio.to_thread(self.disk.read_blob, image.manifest_digest)
        idx = await asyncio.to_thread(self.disk.load_index)
        media_type = idx["images"][image.id].get("media_type", "")
        man = parse_manifest(data, media_type)
        chunk = chunk_size if chunk_size is not None else self.push_chunk_size
        async with RegistryClient(auths=list(auths), insecure_registries=insecure_registries,
                                  **self._timeouts) as c:
            for d in [man.config, *man.layers]:
                if await c.blob_exists(r, d.digest):
                    continue
                size = d.size if d.size >= 0 else (await asyncio.to_thread(os.path.getsize, self.disk.blob_path(d.digest)))
                await c.upload_blob(r, d.digest, self.disk.blob_path(d.digest), size, chunk_size=chunk)
            digest = await c.put_manifest(r, r.digest or r.tag, data, man.media_type)
        if digest != image.manifest_digest:
            raise ImageError(f"registry stored the manifest as {digest}, expected {image.manifest_digest}")
        await asyncio.to_thread(self._commit, manifest=data, manifest_digest=image.manifest_digest,
                                media_type=man.media_type, tags=[], repo_digest=r.with_digest(digest),
                                touch=False)
        log.info("pushed %s (%s)", r, digest)
        return digest

    # -- import / build ------------------------------------------------------------------------

    def import_archive(self, path: str | os.PathLike[str], *, name: str | None = None) -> list[Image]:
        """Import an OCI image layout tar (or a ``docker save`` tar). ``name`` names images the
        archive leaves unnamed (or names only by tag). Raises ``ImageError``."""
        self.disk.ensure_dirs()
        out = []
        for imp in read_archive(self.disk, path, platform=self.platform, name=name):
            out.append(self._commit(manifest=imp.manifest, manifest_digest=imp.manifest_digest,
                                    media_type=imp.media_type, tags=imp.names, repo_digest=None,
                                    touch=False))
        return out

    def build(self, rootfs_dir: str | os.PathLike[str], name: str, *,
              entrypoint: str | Sequence[str] | None = None, cmd: str | Sequence[str] | None = None,
              env: Mapping[str, str] | Sequence[str] | None = None, workdir: str | None = None,
              user: str | None = None) -> Image:
        """Turn the directory ``rootfs_dir`` into a one-layer OCI image stored as ``name``
        (normalised; ``:latest`` when untagged). A string ``cmd`` is split shell-style; a string
        ``entrypoint`` is one path. Raises ``ImageError``."""
        try:
            r = parse_reference(name)
        except InvalidReference as e:
            raise ImageError(e.message) from None
        if r.digest:
            raise ImageError(f"{name}: an image name to build cannot carry a digest")
        self.disk.ensure_dirs()
        built = build_blobs(self.disk, rootfs_dir, platform=self.platform, entrypoint=entrypoint,
                            cmd=cmd, env=env, workdir=workdir, user=user)
        return self._commit(manifest=built.manifest, manifest_digest=built.manifest_digest,
                            media_type=parse_manifest(built.manifest).media_type, tags=[r.tagged],
                            repo_digest=None, touch=False)

    # -- garbage collection --------------------------------------------------------------------

    def disk_usage(self) -> DiskUsage:
        self.root.mkdir(parents=True, exist_ok=True)
        u = self._disk_usage(self.root)
        return DiskUsage(int(u[0]), int(u[1]), int(u[2]))

    def gc(self, *, high_percent: float = 85, low_percent: float = 80,
           in_use: Iterable[str] = ()) -> list[str]:
        """When the store's filesystem is at least ``high_percent`` full, delete unused images
        (least recently used first) until it is at most ``low_percent`` full. ``in_use`` holds
        image ids or references of images that running containers use. Returns removed ids."""
        validate_thresholds(high_percent, low_percent)
        self.disk.clean_tmp()
        usage = self.disk_usage()
        if not needs_gc(usage, high_percent):
            return []
        idx = self.disk.load_index()
        keep: set[str] = set()
        for x in in_use:
            found = self._find(idx, x)
            if found is not None:
                keep.add(found[0])
        order = gc_order((GcImage(i, float(rec.get("last_used", 0.0)), float(rec.get("created_at", 0.0)))
                          for i, rec in idx["images"].items()), keep)
        removed: list[str] = []
        for image_id in order:
            if done_gc(usage, low_percent):
                break
            with self.disk.lock():
                idx = self.disk.load_index()
                if image_id not in idx["images"]:
                    continue
                doomed = self._delete_locked(idx, image_id)
                self.disk.save_index(idx)
            self._delete_dirs(doomed)
            removed.append(image_id)
            log.info("image GC removed %s", image_id)
            usage = self.disk_usage()
        return removed
