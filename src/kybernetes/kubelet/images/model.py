"""The values the image store hands out: ``Image`` and ``ImageConfig`` (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImageConfig:
    """The runtime-relevant part of an image config (OCI ``config`` object)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)          # "K=V"
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp"
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"entrypoint": self.entrypoint, "cmd": self.cmd, "env": list(self.env),
                "working_dir": self.working_dir, "user": self.user,
                "exposed_ports": list(self.exposed_ports), "labels": dict(self.labels),
                "stop_signal": self.stop_signal}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ImageConfig":
        return cls(entrypoint=d.get("entrypoint"), cmd=d.get("cmd"), env=list(d.get("env") or []),
                   working_dir=d.get("working_dir") or "", user=d.get("user") or "",
                   exposed_ports=list(d.get("exposed_ports") or []),
                   labels=dict(d.get("labels") or {}), stop_signal=d.get("stop_signal") or "")


@dataclass
class Image:
    """An image in the local store.

    ``id`` is ``sha256:<config digest>`` (what the kubelet reports as ``imageID`` when the image
    has no repo digest); ``repo_digests`` are ``registry/repo@sha256:<digest>`` (the digest the
    reference resolved to at the registry: an index or a manifest); ``layer_dirs`` are the
    unpacked layers, lowest first, ready to be overlayfs lowerdirs (reverse them for ``lowerdir=``).
    """

    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    config: ImageConfig
    layer_dirs: list[str]
    manifest_digest: str = ""
    last_used: float = 0.0
    created_at: float = 0.0

    @property
    def image_ref(self) -> str:
        """What the kubelet reports as ``imageID``: the first repo digest, else the id."""
        return self.repo_digests[0] if self.repo_digests else self.id
