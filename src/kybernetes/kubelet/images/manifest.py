"""Manifests, image indexes and image configs: media types, parsing, digests and platform
selection (pure functions; no I/O).

Both the OCI and the Docker (schema 2) media types are understood. An *index* (OCI image index or
Docker manifest list) names one manifest per platform; ``select_platform`` picks ours. A *manifest*
names a config blob and the layer blobs, lowest layer first.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from .errors import DigestMismatch, ImageError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s


def host_platform() -> Platform:
    """This machine's platform in OCI terms (linux/amd64 here)."""
    machine = _platform.machine().lower()
    arch = _GOARCH.get(machine, machine or "amd64")
    variant = ""
    if machine.startswith("armv7"):
        variant = "v7"
    elif machine.startswith("armv6"):
        variant = "v6"
    elif arch == "arm64":
        variant = "v8"
    return Platform("linux", arch, variant)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, digest: str, *, what: str = "content") -> None:
    """Raise ``DigestMismatch`` unless ``data`` hashes to ``digest`` (only sha256 is supported)."""
    algo, _, _hex = digest.partition(":")
    if algo != "sha256":
        raise DigestMismatch(f"{what}: unsupported digest algorithm {algo!r}")
    actual = sha256_digest(data)
    if actual != digest:
        raise DigestMismatch(f"{what}: digest mismatch: expected {digest}, got {actual}")


def _descriptor(d: Any, where: str) -> Descriptor:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
        raise ImageError(f"malformed descriptor in {where}")
    p = d.get("platform")
    plat = None
    if isinstance(p, dict):
        plat = Platform(str(p.get("os", "")), str(p.get("architecture", "")), str(p.get("variant", "") or ""))
    size = d.get("size", -1)
    return Descriptor(media_type=str(d.get("mediaType", "")), digest=d["digest"],
                      size=int(size) if isinstance(size, int) else -1, platform=plat,
                      annotations=dict(d.get("annotations") or {}))


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what} is not a JSON object")
    return doc


def media_type_of(data: bytes, header_type: str = "") -> str:
    """The media type of a manifest document: its ``mediaType`` field, else the HTTP Content-Type,
    else guessed from its shape (OCI documents may omit ``mediaType``)."""
    doc = load_json(data, "manifest")
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    ht = header_type.split(";", 1)[0].strip()
    if ht in INDEX_TYPES or ht in MANIFEST_TYPES:
        return ht
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1
    return ht


def parse_index(data: bytes) -> list[Descriptor]:
    doc = load_json(data, "image index")
    ms = doc.get("manifests")
    if not isinstance(ms, list):
        raise ImageError("image index has no manifests")
    return [_descriptor(m, "image index") for m in ms]


def parse_manifest(data: bytes, media_type: str = "") -> Manifest:
    doc = load_json(data, "manifest")
    mt = media_type or media_type_of(data)
    if mt in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ImageError("Docker schema 1 manifests are not supported")
    if mt in INDEX_TYPES:
        raise ImageError("expected an image manifest, got an image index")
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
        raise ImageError("manifest has no config or layers")
    return Manifest(media_type=mt or OCI_MANIFEST, config=_descriptor(doc["config"], "manifest"),
                    layers=tuple(_descriptor(x, "manifest") for x in doc["layers"]))


def select_platform(entries: list[Descriptor], want: Platform) -> Descriptor:
    """Choose the index entry for ``want``: same os and architecture; among those, the same
    variant if there is one, else one without variant, else any. Attestation entries
    (``unknown/unknown``) never match. Raise ``ImageError`` when nothing fits."""
    fits = [e for e in entries if e.platform is not None and e.platform.os == want.os
            and e.platform.architecture == want.architecture]
    if not fits:
        seen = ", ".join(str(e.platform) for e in entries if e.platform) or "none"
        raise ImageError(f"no matching manifest for {want} in the manifest list entries (have: {seen})")
    for e in fits:
        if e.platform is not None and e.platform.variant == want.variant:
            return e
    for e in fits:
        if e.platform is not None and not e.platform.variant:
            return e
    return fits[0]


def is_layer_type(media_type: str) -> bool:
    return media_type.startswith(("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs."))


@dataclass
class ConfigInfo:
    """What the store keeps from an image config blob."""

    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    exposed_ports: list[str]
    diff_ids: list[str]
    os: str = "linux"
    architecture: str = ""
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""


def parse_config(data: bytes) -> ConfigInfo:
    doc = load_json(data, "image config")
    c = doc.get("config") or {}
    if not isinstance(c, dict):
        c = {}
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageError("image config has no rootfs.diff_ids")

    def strlist(v: Any) -> list[str] | None:
        if v is None:
            return None
        if isinstance(v, str):
            return [v]
        return [str(x) for x in v] if isinstance(v, list) else None

    return ConfigInfo(
        entrypoint=strlist(c.get("Entrypoint")), cmd=strlist(c.get("Cmd")),
        env=strlist(c.get("Env")) or [], working_dir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""), exposed_ports=sorted((c.get("ExposedPorts") or {}).keys()),
        diff_ids=list(diff_ids), os=str(doc.get("os") or "linux"),
        architecture=str(doc.get("architecture") or ""), created=str(doc.get("created") or ""),
        labels={str(k): str(v) for k, v in (c.get("Labels") or {}).items()},
        stop_signal=str(c.get("StopSignal") or ""))
