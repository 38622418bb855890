"""Test helpers: layer tars and OCI image archives built by hand (independent of the code under test)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any


def make_tar(entries: list[tuple], *, compress: bool = False) -> bytes:
    """entries: ("dir", name[, mode]) | ("file", name, data[, mode]) | ("sym", name, target)
    | ("link", name, target) | ("fifo", name)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            ti.uid = ti.gid = 0
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2] if len(e) > 2 else 0o755
                tf.addfile(ti)
            elif kind == "file":
                data = e[2]
                ti.size = len(data)
                ti.mode = e[3] if len(e) > 3 else 0o644
                tf.addfile(ti, io.BytesIO(data))
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
                tf.addfile(ti)
            elif kind == "link":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
                tf.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                ti.mode = 0o600
                tf.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_blobs(layers: list[bytes], *, cmd: list[str] | None = None, env: list[str] | None = None,
                arch: str = "amd64", compress: bool = True) -> dict[str, Any]:
    """Config, manifest and layer blobs of an image whose layers are the given uncompressed tars."""
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for raw in layers:
        data = gzip.compress(raw, mtime=0) if compress else raw
        blobs[sha(data)] = data
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        layer_descs.append({"mediaType": mt, "digest": sha(data), "size": len(data)})
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Cmd": cmd or ["/bin/sh"], "Env": env or ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in layers]}}).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": layer_descs}).encode()
    blobs[sha(manifest)] = manifest
    return {"blobs": blobs, "manifest": manifest, "manifest_digest": sha(manifest),
            "config_digest": sha(config)}


def write_oci_archive(path: Path, index_entries: list[dict[str, Any]], blobs: dict[str, bytes],
                      *, gzip_archive: bool = False) -> Path:
    """A tar holding an OCI image layout: oci-layout, index.json, blobs/sha256/<hex>."""
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps({"schemaVersion": 2, "manifests": index_entries}).encode()}
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    with tarfile.open(path, "w:gz" if gzip_archive else "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path
