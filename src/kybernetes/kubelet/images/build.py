"""``kyb image build``: a root filesystem directory -> a one-layer OCI image (blocking).

The directory becomes one gzip-compressed layer; the config carries the entrypoint, command,
environment (a default ``PATH`` unless one is given, as base images carry one), working directory
and user. The blobs go into the store; the caller records the image under its name.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from .disk import Disk
from .errors import ImageError
from .layers import pack_layer
from .manifest import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Platform

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Built:
    manifest: bytes
    manifest_digest: str
    config: bytes
    config_digest: str
    layer_digest: str
    layer_size: int
    diff_id: str


def as_argv(value: str | Sequence[str] | None, *, split: bool) -> list[str] | None:
    """A list stays a list; a string is split shell-style (``split``) or taken as one word."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value) if split else [value]
    return [str(v) for v in value]


def as_env(env: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    """``{"K": "V"}`` or ``["K=V"]`` -> ``["K=V", ...]`` with a default PATH first if none is set."""
    if env is None:
        items: list[str] = []
    elif isinstance(env, Mapping):
        items = [f"{k}={v}" for k, v in env.items()]
    else:
        items = [str(e) for e in env]
    for e in items:
        if "=" not in e or e.startswith("="):
            raise ImageError(f"environment entry {e!r} is not KEY=VALUE")
    if not any(e.startswith("PATH=") for e in items):
        items.insert(0, DEFAULT_PATH)
    return items


def make_config(*, diff_id: str, platform: Platform, entrypoint: list[str] | None,
                cmd: list[str] | None, env: list[str], workdir: str | None, user: str | None,
                created: str) -> bytes:
    cfg: dict[str, object] = {"Env": env}
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if cmd is not None:
        cfg["Cmd"] = cmd
    if workdir:
        cfg["WorkingDir"] = workdir
    if user:
        cfg["User"] = user
    doc = {
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        **({"variant": platform.variant} if platform.variant else {}),
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "kyb image build"}],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def make_manifest(*, config_digest: str, config_size: int, layer_digest: str, layer_size: int) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def build_blobs(disk: Disk, rootfs_dir: str | os.PathLike[str], *, platform: Platform,
                entrypoint: str | Sequence[str] | None = None, cmd: str | Sequence[str] | None = None,
                env: Mapping[str, str] | Sequence[str] | None = None, workdir: str | None = None,
                user: str | None = None) -> Built:
    """Pack ``rootfs_dir``, write layer, config and manifest blobs, and unpack the layer."""
    if not os.path.isdir(rootfs_dir):
        raise ImageError(f"{rootfs_dir}: not a directory")
    if workdir and not workdir.startswith("/"):
        raise ImageError(f"working directory {workdir!r} must be an absolute path")
    tmp = disk.tmp_path("build-")
    try:
        with open(tmp, "xb") as out:
            layer_digest, layer_size, diff_id = pack_layer(rootfs_dir, out)
        if disk.has_blob(layer_digest):
            tmp.unlink()
        else:
            disk.adopt_blob(tmp, layer_digest)
    finally:
        if tmp.exists():
            tmp.unlink()
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = make_config(diff_id=diff_id, platform=platform, entrypoint=as_argv(entrypoint, split=False),
                         cmd=as_argv(cmd, split=True), env=as_env(env), workdir=workdir, user=user,
                         created=created)
    config_digest = disk.put_blob_bytes(config)
    manifest = make_manifest(config_digest=config_digest, config_size=len(config),
                             layer_digest=layer_digest, layer_size=layer_size)
    manifest_digest = disk.put_blob_bytes(manifest)
    disk.ensure_layer(diff_id, layer_digest)
    return Built(manifest=manifest, manifest_digest=manifest_digest, config=config,
                 config_digest=config_digest, layer_digest=layer_digest, layer_size=layer_size,
                 diff_id=diff_id)
