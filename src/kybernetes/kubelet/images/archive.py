"""``kyb image import``: read image archives into the store's blobs (blocking).

Two formats are accepted (plain or compressed tar):

* an **OCI image layout** (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``), as written by
  ``skopeo copy ... oci-archive:``, ``buildah push ... oci-archive:``, ``docker save`` (25+) or
  ``ctr export``. Each ``index.json`` entry is one image; a nested index is narrowed to our
  platform. The image name comes from the ``io.containerd.image.name`` annotation, else from
  ``org.opencontainers.image.ref.name`` (a full reference, or just a tag applied to ``name``).
* the legacy **``docker save``** layout: ``manifest.json`` listing each image's config file,
  ``RepoTags`` and layer tars; an OCI manifest is synthesised for it.

Every blob is verified against its digest (and size) while it is copied.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
from dataclasses import dataclass
from typing import IO, Any

from .disk import Disk
from .errors import ImageError, InvalidReference
from .manifest import (INDEX_TYPES, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor,
                       Platform, media_type_of, parse_index, parse_manifest, select_platform,
                       verify_digest)
from .reference import parse_reference

ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Imported:
    names: list[str]          # normalised references to tag the image with (may be empty)
    manifest: bytes
    manifest_digest: str
    media_type: str


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class _Archive:
    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.members = {_norm(m.name): m for m in tf.getmembers() if not m.isdir()}

    def has(self, name: str) -> bool:
        return _norm(name) in self.members

    def open(self, name: str) -> IO[bytes]:
        m = self.members.get(_norm(name))
        f = self.tf.extractfile(m) if m is not None else None
        if f is None:
            raise ImageError(f"archive has no file {name!r}")
        return f

    def read(self, name: str, limit: int = 16 << 20) -> bytes:
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"archive file {name!r} is too large")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise ImageError(f"archive file {name!r} is not valid JSON: {e}") from None


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if not algo or not hexpart or "/" in digest:
        raise ImageError(f"malformed digest {digest!r} in archive")
    return f"blobs/{algo}/{hexpart}"


def _copy_blob(disk: Disk, ar: _Archive, d: Descriptor) -> None:
    if disk.has_blob(d.digest):
        return
    with ar.open(_blob_name(d.digest)) as f:
        disk.put_blob_stream(f, d.digest, d.size)


def _names_for(annotations: dict[str, str], name: str | None) -> list[str]:
    full = annotations.get(ANNOTATION_CONTAINERD_NAME, "")
    refname = annotations.get(ANNOTATION_REF_NAME, "")
    try:
        if full:
            return [str(parse_reference(full))]
        if refname and ("/" in refname or ":" in refname or "@" in refname):
            return [str(parse_reference(refname))]
        if name:
            r = parse_reference(name)
            if refname:
                return [f"{r.name}:{refname}"]
            return [str(r)]
    except InvalidReference as e:
        raise ImageError(f"archive names an invalid image: {e.message}") from None
    return []


def _read_oci(disk: Disk, ar: _Archive, platform: Platform, name: str | None) -> list[Imported]:
    layout = ar.json("oci-layout") if ar.has("oci-layout") else {}
    if isinstance(layout, dict) and layout.get("imageLayoutVersion") not in (None, "1.0.0"):
        raise ImageError(f"unsupported OCI layout version {layout.get('imageLayoutVersion')!r}")
    entries = parse_index(ar.read("index.json"))
    out: list[Imported] = []
    for desc in entries:
        mdesc = desc
        data = ar.read(_blob_name(desc.digest))
        verify_digest(data, desc.digest, what="archive manifest")
        mt = desc.media_type or media_type_of(data)
        if mt in INDEX_TYPES:
            mdesc = select_platform(parse_index(data), platform)
            data = ar.read(_blob_name(mdesc.digest))
            verify_digest(data, mdesc.digest, what="archive manifest")
            mt = mdesc.media_type or media_type_of(data)
        manifest = parse_manifest(data, mt)
        disk.put_blob_bytes(data, mdesc.digest)
        _copy_blob(disk, ar, manifest.config)
        for layer in manifest.layers:
            _copy_blob(disk, ar, layer)
        out.append(Imported(names=_names_for(desc.annotations, name), manifest=data,
                            manifest_digest=mdesc.digest, media_type=manifest.media_type))
    return out


def _read_docker_save(disk: Disk, ar: _Archive, name: str | None) -> list[Imported]:
    doc = ar.json("manifest.json")
    if not isinstance(doc, list):
        raise ImageError("manifest.json is not a list")
    out: list[Imported] = []
    for entry in doc:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ImageError("manifest.json entry without Config")
        config = ar.read(entry["Config"])
        config_digest = disk.put_blob_bytes(config)
        layers = []
        for lname in entry.get("Layers") or []:
            with ar.open(lname) as f:
                digest, size = disk.put_blob_stream(f)
            with open(disk.blob_path(digest), "rb") as bf:
                gz = bf.read(2) == b"\x1f\x8b"
            layers.append({"mediaType": OCI_LAYER_GZIP if gz else OCI_LAYER, "digest": digest, "size": size})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layers}, sort_keys=True, separators=(",", ":")).encode()
        mdigest = disk.put_blob_bytes(manifest)
        names: list[str] = []
        try:
            for t in entry.get("RepoTags") or []:
                names.append(str(parse_reference(t)))
            if not names and name:
                names.append(str(parse_reference(name)))
        except InvalidReference as e:
            raise ImageError(f"archive names an invalid image: {e.message}") from None
        out.append(Imported(names=names, manifest=manifest, manifest_digest=mdigest, media_type=OCI_MANIFEST))
    return out


def read_archive(disk: Disk, path: str | os.PathLike[str], *, platform: Platform,
                 name: str | None = None) -> list[Imported]:
    """Copy the images of the archive at ``path`` into ``disk``'s blobs (not yet indexed)."""
    try:
        tf = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise ImageError(f"{path}: not a readable tar archive: {e}") from None
    with tf:
        ar = _Archive(tf)
        if ar.has("index.json"):
            return _read_oci(disk, ar, platform, name)
        if ar.has("manifest.json"):
            return _read_docker_save(disk, ar, name)
    raise ImageError(f"{path}: neither an OCI image layout (index.json) nor a docker save archive "
                     "(manifest.json)")
