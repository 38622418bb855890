"""Value transformers: how one stored value is encrypted and decrypted (pure, no I/O).

The stored format is upstream's, byte for byte, so operators recognise it and data written by
one server reads in another:

    k8s:enc:aescbc:v1:<key name>:<16-byte IV><AES-CBC ciphertext, PKCS#7 padded>
    k8s:enc:aesgcm:v1:<key name>:<12-byte nonce><AES-GCM ciphertext + 16-byte tag>
    k8s:enc:secretbox:v1:<key name>:<24-byte nonce><Poly1305 tag + XSalsa20 ciphertext>
    <anything else>                 unencrypted (read only through the ``identity`` provider)

AES-GCM authenticates the storage key (``/registry/secrets/ns/name``) as additional data, so a
ciphertext copied to another key fails to decrypt; CBC and secretbox have no additional data.

A :class:`PrefixTransformers` picks the transformer whose prefix the stored bytes start with;
the first one encrypts new writes. A value read with any but the first is *stale*: the next
update rewrites it with the first (that is what makes key rotation work).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED_PREFIX = b"k8s:enc:"
AESCBC_PREFIX = b"k8s:enc:aescbc:v1:"
AESGCM_PREFIX = b"k8s:enc:aesgcm:v1:"
SECRETBOX_PREFIX = b"k8s:enc:secretbox:v1:"
AES_BLOCK = 16
GCM_NONCE = 12
SECRETBOX_NONCE = 24
SECRETBOX_OVERHEAD = 16


class ValueTransformError(Exception):
    """A stored value could not be turned back into plaintext (wrong key, no provider, tampered)."""


class Transformer(Protocol):
    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        """(plaintext, stale) or ValueTransformError. ``context`` is the storage key."""
        ...

    def to_storage(self, data: bytes, context: bytes) -> bytes: ...


class Identity:
    """No transformation; refuses to pass encrypted bytes through as if they were plaintext."""

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        if data.startswith(ENCRYPTED_PREFIX):
            raise ValueTransformError("identity transformer tried to read encrypted data")
        return data, False

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        return data


IDENTITY = Identity()


class CBC:
    """AES-CBC with a random IV and PKCS#7 padding (no authentication: prefer aesgcm/secretbox)."""

    def __init__(self, key: bytes) -> None:
        self._algo = algorithms.AES(key)

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        if len(data) < AES_BLOCK:
            raise ValueTransformError("the stored data was shorter than the required size")
        iv, body = data[:AES_BLOCK], data[AES_BLOCK:]
        if len(body) % AES_BLOCK:
            raise ValueTransformError("the stored data is not a multiple of the block size")
        dec = Cipher(self._algo, modes.CBC(iv)).decryptor()
        out = dec.update(body) + dec.finalize()
        pad = out[-1] if out else 0
        if pad == 0 or pad > len(out):
            raise ValueTransformError("invalid PKCS7 data (empty or not padded)")
        if out[-pad:] != bytes([pad]) * pad:
            raise ValueTransformError("invalid padding on input")
        return out[:-pad], False

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        pad = AES_BLOCK - len(data) % AES_BLOCK
        iv = os.urandom(AES_BLOCK)
        enc = Cipher(self._algo, modes.CBC(iv)).encryptor()
        return iv + enc.update(data + bytes([pad]) * pad) + enc.finalize()


class GCM:
    """AES-GCM with a random 96-bit nonce; the storage key is the authenticated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        if len(data) < GCM_NONCE:
            raise ValueTransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[:GCM_NONCE], data[GCM_NONCE:], context), False
        except InvalidTag:
            raise ValueTransformError("cipher: message authentication failed") from None

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(GCM_NONCE)
        return nonce + self._aead.encrypt(nonce, data, context)


class Secretbox:
    """NaCl secretbox (XSalsa20-Poly1305) with a random 24-byte nonce, through PyNaCl."""

    def __init__(self, key: bytes) -> None:
        from nacl.secret import SecretBox

        self._box = SecretBox(key)

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        from nacl.exceptions import CryptoError

        if len(data) < SECRETBOX_NONCE + SECRETBOX_OVERHEAD:
            raise ValueTransformError("the stored data was shorter than the required size")
        try:
            return bytes(self._box.decrypt(data[SECRETBOX_NONCE:], data[:SECRETBOX_NONCE])), False
        except CryptoError:
            raise ValueTransformError("output array was not large enough for encryption") from None

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(SECRETBOX_NONCE)
        return bytes(self._box.encrypt(data, nonce))  # nonce + tag + ciphertext


@dataclass(frozen=True)
class Prefixed:
    prefix: bytes
    transformer: Transformer


class PrefixTransformers:
    """Try each transformer whose prefix the data starts with, in order; write with the first.

    An error from one candidate does not stop the search: two providers of the same type (one
    being rotated to, one away from) share a prefix. An empty prefix (identity) that fails is
    skipped silently, as it only means "this is not plaintext"."""

    def __init__(self, items: list[Prefixed], no_match: str) -> None:
        if not items:
            raise ValueError("at least one transformer is required")
        self.items = items
        self.no_match = no_match

    def from_storage(self, data: bytes, context: bytes) -> tuple[bytes, bool]:
        errs: list[str] = []
        for i, it in enumerate(self.items):
            if not data.startswith(it.prefix):
                continue
            try:
                out, stale = it.transformer.from_storage(data[len(it.prefix):], context)
            except ValueTransformError as e:
                if it.prefix:
                    errs.append(str(e))
                continue
            return out, stale or i != 0
        if errs:
            raise ValueTransformError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        raise ValueTransformError(self.no_match)

    def to_storage(self, data: bytes, context: bytes) -> bytes:
        first = self.items[0]
        return first.prefix + first.transformer.to_storage(data, context)

    @property
    def encrypts(self) -> bool:
        """Whether new writes are encrypted (the first provider is not identity)."""
        return not isinstance(self.items[0].transformer, Identity)
