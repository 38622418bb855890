"""Builders for encryption tests: keys, configuration documents, raw-store readers."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from kybernetes.apiserver.encryption import EncryptionConfig, parse_encryption_config

KEY1 = bytes(range(32))
KEY2 = bytes(range(100, 132))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def provider(kind: str, *keys: tuple[str, bytes]) -> dict[str, Any]:
    if kind == "identity":
        return {"identity": {}}
    return {kind: {"keys": [{"name": n, "secret": b64(k)} for n, k in keys]}}


def config_doc(*providers: dict[str, Any], resources: tuple[str, ...] = ("secrets",)) -> dict[str, Any]:
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": list(providers)}]}


def config(*providers: dict[str, Any], resources: tuple[str, ...] = ("secrets",)) -> EncryptionConfig:
    return EncryptionConfig(parse_encryption_config(config_doc(*providers, resources=resources)))


def sqlite_bytes(db: Path) -> bytes:
    """Everything SQLite keeps for ``db`` on disk: the file, its WAL and shared memory."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def random_plaintext() -> str:
    return "kyb-plain-" + os.urandom(8).hex()
