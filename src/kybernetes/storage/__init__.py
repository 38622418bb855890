"""Storage: one Store protocol (interface.py), two durable backends (sqlite, etcd).

``open_store`` builds a backend by name; call ``await store.start()`` before use and
``await store.close()`` at the end.
"""

from __future__ import annotations

from .errors import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
    StoreError,
    UnavailableError,
    WatchLaggedError,
)
from .interface import Event, KeyValue, ListResult, Store

__all__ = [
    "CompactedError",
    "ConflictError",
    "Event",
    "FutureRevisionError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "ListResult",
    "Store",
    "StoreClosedError",
    "StoreError",
    "UnavailableError",
    "WatchLaggedError",
    "open_store",
]


def open_store(kind: str, *, path: str | None = None, endpoints: list[str] | None = None) -> Store:
    """A (not yet started) store: ``"sqlite"`` needs ``path``, ``"etcd"`` needs ``endpoints``."""
    if kind == "sqlite":
        if not path:
            raise ValueError("the sqlite store needs a path")
        from .sqlite import SqliteStore

        return SqliteStore(path)
    if kind == "etcd":
        if not endpoints:
            raise ValueError("the etcd store needs endpoints")
        from .etcd import EtcdStore

        return EtcdStore(endpoints)
    if kind == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    raise ValueError(f"unknown store kind {kind!r} (want 'sqlite' or 'etcd')")
