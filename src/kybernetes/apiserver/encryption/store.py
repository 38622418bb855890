"""A Store that encrypts values on the way in and decrypts them on the way out.

It wraps the real backend (sqlite or etcd) under everything in the API server, like upstream's
transformer inside its etcd3 store: the generic store, the watch cache, authentication and
admission all read plaintext JSON, and only ciphertext reaches disk or etcd. Which transformer a
value uses depends on the (group, resource) of its key (``/registry/secrets/ns/name`` → core
``secrets``; ``/registry/apps/deployments/...`` → ``deployments.apps``); the storage key is the
authenticated data for AES-GCM.

Failures:
* a value that cannot be decrypted (wrong or missing key, tampered bytes) makes ``get``/``list``
  raise :class:`TransformError` (a StoreError: the API answers 500 InternalError
  ``unable to transform key "<key>": <reason>``) for that request only;
* in a watch such an event is dropped and logged (counted in ``statistics()``): one unreadable
  object must not stop the watch cache for every other resource.

A value read through any provider but the first comes back as a :class:`StaleKeyValue`;
``is_stale(kv)`` lets the generic store rewrite it on update even when nothing changed, which is
how ``kyb secrets rotate`` (GET + PUT of each secret) moves data to the new first key.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from ...api.resources import BUILTIN
from ...storage.errors import ConflictError, StoreError
from ...storage.interface import Event, KeyValue, ListResult, Store
from .transformers import ENCRYPTED_PREFIX, PrefixTransformers, ValueTransformError

if TYPE_CHECKING:
    from .config import EncryptionConfig

log = logging.getLogger(__name__)

# API groups whose names have no dot: the only ones a key's first segment can be confused with a
# core resource for (custom resource groups always contain a dot).
DOTLESS_GROUPS = frozenset(r.key_group for r in BUILTIN if r.key_group and "." not in r.key_group)


class TransformError(StoreError):
    """A stored value could not be decrypted (API: 500 InternalError)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f'unable to transform key "{key}": {reason}')
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StaleKeyValue(KeyValue):
    """A value that was read with an old key (or unencrypted): rewrite it on the next update."""


def is_stale(kv: KeyValue | None) -> bool:
    return isinstance(kv, StaleKeyValue)


def resource_of_key(key: str) -> tuple[str, str] | None:
    """(group, resource) of a storage key, None for keys outside ``/registry/<...>/<...>``."""
    parts = key.split("/", 4)
    if len(parts) < 4 or parts[0] != "" or parts[1] != "registry":
        return None
    first = parts[2]
    if first in DOTLESS_GROUPS or "." in first:
        return first, parts[3]
    return "", first


class EncryptingStore:
    """The Store protocol over ``inner``, applying ``config``'s transformers (see module doc)."""

    def __init__(self, inner: Store, config: "EncryptionConfig") -> None:
        self.inner = inner
        self.config = config
        self._by_gr: dict[tuple[str, str], PrefixTransformers | None] = {}
        self.encrypted_writes = 0
        self.dropped_watch_events = 0

    # -- the transform --------------------------------------------------------------------------
    def _transformer(self, key: str) -> PrefixTransformers | None:
        gr = resource_of_key(key)
        if gr is None:
            return None
        try:
            return self._by_gr[gr]
        except KeyError:
            t = self._by_gr[gr] = self.config.transformer_for(*gr)
            return t

    def encrypt(self, key: str, value: bytes) -> bytes:
        t = self._transformer(key)
        if t is None:
            return value
        out: bytes = t.to_storage(value, key.encode())
        if out is not value:
            self.encrypted_writes += 1
        return out

    def decrypt(self, kv: KeyValue) -> KeyValue:
        """The plaintext KeyValue (a StaleKeyValue when an old provider read it)."""
        t = self._transformer(kv.key)
        if t is None:
            if kv.value.startswith(ENCRYPTED_PREFIX):
                raise TransformError(kv.key, "identity transformer tried to read encrypted data")
            return kv
        try:
            plain, stale = t.from_storage(kv.value, kv.key.encode())
        except ValueTransformError as e:
            raise TransformError(kv.key, str(e)) from None
        cls = StaleKeyValue if stale else KeyValue
        return cls(kv.key, plain, kv.mod_revision, kv.create_revision)

    def _decrypt_event(self, ev: Event) -> Event | None:
        try:
            kv = self.decrypt(ev.kv)
        except TransformError as e:
            self.dropped_watch_events += 1
            log.error("watch: dropping the event at revision %d: %s", ev.kv.mod_revision, e)
            return None
        prev = ev.prev
        if prev is not None:
            try:
                prev = self.decrypt(prev)
            except TransformError:
                prev = None
        if kv is ev.kv and prev is ev.prev:
            return ev
        return Event(ev.type, kv, prev)

    def statistics(self) -> dict[str, int]:
        stats = {"encrypted_writes": self.encrypted_writes, "dropped_watch_events": self.dropped_watch_events}
        inner = getattr(self.inner, "statistics", None)
        if callable(inner):
            stats.update(inner())
        return stats

    # -- Store protocol -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        kv = await self.inner.get(key, revision=revision)
        return self.decrypt(kv) if kv is not None else None

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0,
                   start_after: str | None = None, count_remaining: bool = False) -> ListResult:
        res = await self.inner.list(prefix, revision=revision, limit=limit, start_after=start_after,
                                    count_remaining=count_remaining)
        return ListResult([self.decrypt(kv) for kv in res.items], res.revision, res.more, res.remaining)

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv = await self.inner.create(key, self.encrypt(key, value))
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def update(self, key: str, value: bytes, *, expected_revision: int = 0) -> KeyValue:
        try:
            kv = await self.inner.update(key, self.encrypt(key, value), expected_revision=expected_revision)
        except ConflictError as e:
            raise self._plain_conflict(e) from None
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        try:
            kv = await self.inner.delete(key, expected_revision=expected_revision)
        except ConflictError as e:
            raise self._plain_conflict(e) from None
        return self.decrypt(kv)

    def _plain_conflict(self, e: ConflictError) -> ConflictError:
        current = e.current
        if isinstance(current, KeyValue):
            with contextlib.suppress(TransformError):
                current = self.decrypt(current)
        return ConflictError(e.key, e.expected, current if not isinstance(current, KeyValue)
                             or not current.value.startswith(ENCRYPTED_PREFIX) else None)

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]:
        async with contextlib.aclosing(self.inner.watch(prefix, from_revision)) as events:  # type: ignore[type-var]
            async for batch in events:
                out = [e for e in map(self._decrypt_event, batch) if e is not None]
                if out:
                    yield out

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compacted_revision(self) -> int:
        return await self.inner.compacted_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    def __getattr__(self, name: str) -> Any:
        # backend extras stay reachable (only called for names not found on the wrapper)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
