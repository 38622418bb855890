"""Completion indexes of Indexed Jobs (pure).

``status.completedIndexes`` (and ``failedIndexes``) hold a set of indexes in compressed form:
ascending, comma-separated, runs of consecutive indexes written ``first-last``:
``{0, 1, 2, 4}`` <-> ``"0-2,4"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def format_indexes(indexes: Iterable[int]) -> str:
    """``{4, 0, 1, 2}`` -> ``"0-2,4"`` (empty set -> ``""``)."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str | None, completions: int | None = None) -> set[int]:
    """``"0-2,4"`` -> ``{0, 1, 2, 4}``; malformed parts are skipped, and with ``completions``
    indexes ``>= completions`` are dropped (as upstream does when a Job is scaled down)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        try:
            lo = int(first)
            hi = int(last) if last else lo
        except ValueError:
            continue
        if lo < 0 or hi < lo:
            continue
        if completions is not None:
            hi = min(hi, completions - 1)
        out.update(range(lo, hi + 1))
    return out


def completion_index(pod: Mapping[str, Any]) -> int | None:
    """The pod's completion index (annotation, else label); None when absent or invalid."""
    md = pod.get("metadata") or {}
    for source in (md.get("annotations") or {}, md.get("labels") or {}):
        value = source.get(COMPLETION_INDEX)
        if value is None:
            continue
        text = str(value)
        if text.isdigit() and (text == "0" or not text.startswith("0")):
            return int(text)
        return None
    return None


def first_pending_indexes(completions: int, taken: Iterable[int], count: int) -> list[int]:
    """The ``count`` lowest indexes in ``[0, completions)`` not in ``taken``."""
    busy = set(taken)
    out: list[int] = []
    for i in range(completions):
        if len(out) >= count:
            break
        if i not in busy:
            out.append(i)
    return out
