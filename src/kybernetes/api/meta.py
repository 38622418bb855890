"""Object metadata helpers on plain JSON dicts (no I/O)."""

from __future__ import annotations

import datetime as _dt
import random
import uuid
from typing import Any

Obj = dict[str, Any]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATE_PREFIX = 58  # 63 - 5 random characters


def now_rfc3339(now: _dt.datetime | None = None) -> str:
    t = now or _dt.datetime.now(_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro(now: _dt.datetime | None = None) -> str:
    t = now or _dt.datetime.now(_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> _dt.datetime | None:
    if not s:
        return None
    try:
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        return _dt.datetime.fromisoformat(s)
    except ValueError:
        return None


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    r = rng or random
    return prefix[:MAX_GENERATE_PREFIX] + "".join(r.choice(_NAME_CHARS) for _ in range(5))


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: Obj) -> str:
    m = obj.get("metadata")
    return str(m.get("name") or "") if isinstance(m, dict) else ""


def namespace_of(obj: Obj) -> str:
    m = obj.get("metadata")
    return str(m.get("namespace") or "") if isinstance(m, dict) else ""


def get_path(obj: Any, *path: str | int) -> Any:
    cur = obj
    for p in path:
        if isinstance(p, int):
            if not isinstance(cur, list) or p >= len(cur):
                return None
        elif not isinstance(cur, dict):
            return None
        cur = cur[p] if isinstance(p, int) else cur.get(p)
        if cur is None:
            return None
    return cur


def find_condition(obj: Obj, ctype: str) -> Obj | None:
    for c in get_path(obj, "status", "conditions") or ():
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def set_condition(conditions: list[Obj], cond: Obj) -> list[Obj]:
    """Replace the condition of the same type, keeping lastTransitionTime when status is unchanged."""
    out = []
    found = False
    for c in conditions:
        if c.get("type") == cond.get("type"):
            found = True
            if c.get("status") == cond.get("status") and c.get("lastTransitionTime"):
                cond = {**cond, "lastTransitionTime": c["lastTransitionTime"]}
            out.append(cond)
        else:
            out.append(c)
    if not found:
        out.append(cond)
    return out
