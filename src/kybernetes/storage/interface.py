"""The one storage interface that every backend (sqlite, etcd) implements.

Keys are strings such as ``/registry/apps/deployments/default/web``; values are opaque bytes
(the API server stores JSON). Every write bumps one global, strictly increasing integer, the
*revision*; a key's ``mod_revision`` is the revision of its last write and is the
``resourceVersion`` users see. Semantics follow etcd v3:

* ``create`` fails with KeyExistsError when the key is present.
* ``update``/``delete`` take ``expected_revision``: 0 means "unconditionally", otherwise the
  write only happens when the key's current mod_revision equals it (else ConflictError).
* ``list`` is a consistent snapshot at one revision. ``revision=0`` means "now". Paging: pass the
  last key of the previous page as ``start_after`` together with the revision returned by the
  first page, so every page comes from the same snapshot (CompactedError if it was compacted).
* ``watch(prefix, from_revision)`` yields batches of events with revision > from_revision, in
  revision order, starting with the history still kept. If ``from_revision`` is below the
  compacted revision it raises CompactedError (the API turns that into 410 Gone). A watcher that
  falls too far behind may end with WatchLaggedError (``last_revision``: re-watch from there).
* A write returns only after it is durable (survives a power cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change. ``type`` is PUT (create or update) or DELETE.

    For PUT, ``kv`` is the new value (a create has kv.create_revision == kv.mod_revision) and
    ``prev`` the value it replaced, if any. For DELETE, ``kv.value`` is the last value, with
    ``kv.mod_revision`` = the revision of the delete; ``prev`` is that last value as stored.
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int          # the snapshot revision the list was read at
    more: bool             # True when ``limit`` cut the list short
    remaining: int | None = None  # keys after this page, when asked for (``count_remaining``)


class Store(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None: ...

    async def list(
        self,
        prefix: str,
        *,
        revision: int = 0,
        limit: int = 0,
        start_after: str | None = None,
        count_remaining: bool = False,
    ) -> ListResult: ...
    # ``count_remaining``: fill ``ListResult.remaining`` for a cut-short page (SQLite must count
    # the rest of the range for it, etcd gets it free); None when not asked.

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> KeyValue: ...

    async def update(self, key: str, value: bytes, *, expected_revision: int = 0) -> KeyValue: ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete ``key``; return the deleted value with mod_revision = the delete's revision."""
        ...

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]: ...

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...
