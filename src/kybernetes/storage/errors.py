"""Errors raised by every store backend.

    StoreError
    ├── KeyExistsError        create of a key that is present
    ├── KeyNotFoundError      update/delete of a key that is absent
    ├── ConflictError         update/delete whose expected revision is not the key's current one
    ├── CompactedError        read or watch at a revision older than the compacted one (API: 410)
    ├── FutureRevisionError   read at a revision newer than the store's current one
    ├── UnavailableError      the backend cannot be reached (API: 503 / 504)
    ├── WatchLaggedError      a watcher fell too far behind and was dropped (re-watch)
    └── StoreClosedError      the store was closed
"""

from __future__ import annotations


class StoreError(Exception):
    pass


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """The key's current mod revision differs from the expected one.

    ``current`` is the key's current value (None when it was deleted meanwhile), so callers
    retrying a read-modify-write need not read again.
    """

    def __init__(self, key: str, expected: int, current: "object | None" = None) -> None:
        super().__init__(f"conflict on {key}: expected revision {expected}")
        self.key = key
        self.expected = expected
        self.current = current


class CompactedError(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than current revision {current}")
        self.requested = requested
        self.current = current


class UnavailableError(StoreError):
    pass


class WatchLaggedError(StoreError):
    """A watcher fell too far behind and was dropped; re-watch from ``last_revision``."""

    def __init__(self, last_revision: int) -> None:
        super().__init__(f"watcher fell behind; re-watch from revision {last_revision}")
        self.last_revision = last_revision


class StoreClosedError(StoreError):
    """The store was closed (or never started)."""
