"""Image garbage collection by disk usage: the pure decisions (after the kubelet's image GC).

When the filesystem holding the store is at least ``high_percent`` full, unused images are removed,
least recently used first (ties: oldest stored first), until usage drops to ``low_percent`` or
below. Images in use by a container are never removed.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


class GcImage(NamedTuple):
    id: str
    last_used: float
    created_at: float


def usage_percent(u: DiskUsage) -> float:
    """Used share of the filesystem, from capacity and available bytes (as the kubelet does)."""
    if u.total <= 0:
        return 0.0
    return 100.0 * (u.total - u.free) / u.total


def needs_gc(u: DiskUsage, high_percent: float) -> bool:
    return usage_percent(u) >= high_percent


def done_gc(u: DiskUsage, low_percent: float) -> bool:
    return usage_percent(u) <= low_percent


def gc_order(images: Iterable[GcImage], in_use: set[str]) -> list[str]:
    """The ids that may be removed, in the order to remove them."""
    free = [i for i in images if i.id not in in_use]
    free.sort(key=lambda i: (i.last_used, i.created_at, i.id))
    return [i.id for i in free]


def validate_thresholds(high_percent: float, low_percent: float) -> None:
    if not (0 <= low_percent <= high_percent <= 100):
        raise ValueError(f"image GC thresholds must satisfy 0 <= low ({low_percent}) <= "
                         f"high ({high_percent}) <= 100")
