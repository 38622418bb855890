"""The set of resources being served: the built-in table plus the custom resources of
established CustomResourceDefinitions. Lookups by URL path segments and by kind."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

from ..api.resources import BUILTIN, GROUP_ORDER, ResourceInfo


class Registry:
    def __init__(self, builtin: Iterable[ResourceInfo] = BUILTIN) -> None:
        self._builtin = tuple(builtin)
        self._custom: dict[str, tuple[ResourceInfo, ...]] = {}  # CRD name -> its resources
        self.generation = 0
        self._rebuild()

    def _rebuild(self) -> None:
        self._all: tuple[ResourceInfo, ...] = self._builtin + tuple(
            r for rs in self._custom.values() for r in rs
        )
        self._by_path = {(r.group, r.version, r.plural): r for r in self._all}
        self._by_gvk = {(r.group, r.version, r.kind): r for r in self._all}
        self.generation += 1

    # -- custom resources ----------------------------------------------------------------
    def set_custom(self, crd_name: str, resources: Iterable[ResourceInfo]) -> bool:
        new = tuple(resources)
        if self._custom.get(crd_name) == new and all(
            a.schema == b.schema and a.printer_columns == b.printer_columns
            for a, b in zip(self._custom.get(crd_name, ()), new)
        ):
            return False
        self._custom[crd_name] = new
        self._rebuild()
        return True

    def remove_custom(self, crd_name: str) -> bool:
        if self._custom.pop(crd_name, None) is None:
            return False
        self._rebuild()
        return True

    # -- lookups ---------------------------------------------------------------------------
    def all(self) -> tuple[ResourceInfo, ...]:
        return self._all

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_gvk.get((group, version, kind))

    def storage_info(self, info: ResourceInfo) -> ResourceInfo:
        """The entry whose version objects of ``info`` are stored as."""
        if info.storage_version and info.storage_version != info.version:
            other = self.lookup(info.group, info.storage_version, info.plural)
            if other is not None:
                return other
        return info

    def groups(self) -> "OrderedDict[str, list[str]]":
        """group -> versions (preferred first), in discovery order."""
        out: OrderedDict[str, list[str]] = OrderedDict()
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        for r in sorted(self._all, key=lambda r: (order.get(r.group, len(order)), r.group)):
            vs = out.setdefault(r.group, [])
            if r.version not in vs:
                vs.append(r.version)
        for g, vs in out.items():
            vs.sort(key=_version_priority)
        return out

    def resources_in(self, group: str, version: str) -> list[ResourceInfo]:
        return [r for r in self._all if r.group == group and r.version == version]


def _version_priority(v: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
