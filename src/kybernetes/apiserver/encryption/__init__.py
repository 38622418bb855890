"""Encryption at rest (``--encryption-provider-config``), as upstream kube-apiserver does it.

    config = load_encryption_config("/etc/kyb/encryption.yaml")   # EncryptionConfigError if bad
    store = EncryptingStore(raw_store, config)                     # what ApiServer uses
    is_stale(kv)                                                   # read with an old provider?

* ``transformers``: the ciphers and the upstream stored format (``k8s:enc:<provider>:v1:<key>:``).
* ``config``: parsing and validation of the EncryptionConfiguration file; per-resource transformers.
* ``store``: the Store wrapper that applies them to every read, write and watch event.
"""

from __future__ import annotations

from .config import EncryptionConfig, EncryptionConfigError, load_encryption_config, parse_encryption_config
from .store import EncryptingStore, StaleKeyValue, TransformError, is_stale, resource_of_key

__all__ = [
    "EncryptingStore",
    "EncryptionConfig",
    "EncryptionConfigError",
    "StaleKeyValue",
    "TransformError",
    "is_stale",
    "load_encryption_config",
    "parse_encryption_config",
    "resource_of_key",
]

