"""Periodic compaction: keep the newest ``keep`` revisions of history, drop the rest."""

from __future__ import annotations

import asyncio
import logging

from .errors import StoreError
from .interface import Store

log = logging.getLogger(__name__)


def compaction_target(current: int, compacted: int, keep: int) -> int | None:
    """The revision to compact to, or None when that would not advance (pure)."""
    target = current - keep
    return target if target > compacted else None


async def compact_once(store: Store, *, keep: int = 1000) -> int | None:
    """Compact to ``current - keep`` if that advances; return the new compacted revision."""
    target = compaction_target(await store.current_revision(), await store.compacted_revision(), keep)
    if target is None:
        return None
    await store.compact(target)
    return target


async def run_compactor(store: Store, *, interval: float = 300.0, keep: int = 1000) -> None:
    """Compact every ``interval`` seconds; returns only on cancellation (errors are logged)."""
    while True:
        try:
            target = await compact_once(store, keep=keep)
            if target is not None:
                log.info("compacted storage to revision %d", target)
        except StoreError as exc:
            log.warning("compaction failed: %s", exc)
        await asyncio.sleep(interval)
