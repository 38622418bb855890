"""ClusterRole aggregation (upstream's clusterrole-aggregation controller, inside the API server).

A ClusterRole with ``aggregationRule.clusterRoleSelectors`` owns no rules of its own: its rules
are kept equal to the union of the rules of every other ClusterRole whose labels match one of
the selectors — roles taken in name order, each rule once, in first-seen order
(:func:`compute_aggregated_rules`, pure). That is how ``admin`` / ``edit`` / ``view`` grow when a
CRD author labels a role ``rbac.authorization.k8s.io/aggregate-to-view: "true"``.

:class:`AggregationController` re-syncs every aggregated role whenever a ClusterRole changes
(the RBAC index tells it), writing only roles whose rules differ. Chains (``view`` feeds
``edit`` feeds ``admin``) settle through the writes' own change events; ``sync_all`` also loops
until nothing changes so start-up finishes with settled roles before the first request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ...api import errors
from ...api.labels import selector_from_label_selector

if TYPE_CHECKING:
    from ..registry import Registry
    from ..rest import ApiStore
    from .rbac import RbacIndex

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NAME = "clusterrole-aggregation-controller"
MAX_ROUNDS = 10


def compute_aggregated_rules(role: Mapping[str, Any], all_roles: Iterable[Mapping[str, Any]]) -> list[Obj] | None:
    """The rules ``role`` should have, or None when it is not an aggregated role."""
    agg = role.get("aggregationRule")
    if not isinstance(agg, Mapping):
        return None
    name = (role.get("metadata") or {}).get("name")
    others = sorted((r for r in all_roles if (r.get("metadata") or {}).get("name") != name),
                    key=lambda r: (r.get("metadata") or {}).get("name") or "")
    out: list[Obj] = []
    for sel in agg.get("clusterRoleSelectors") or []:
        try:
            selector = selector_from_label_selector(sel)
        except errors.StatusError:
            continue
        for other in others:
            if not selector.matches((other.get("metadata") or {}).get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                if rule not in out:
                    out.append(rule)
    return out


class AggregationController:
    def __init__(self, index: "RbacIndex", api: "ApiStore", registry: "Registry") -> None:
        self.index = index
        self.api = api
        self.registry = registry
        self._wake = asyncio.Event()
        self.writes = 0
        index.listeners.append(self._on_change)

    def _on_change(self, kind: str) -> None:
        if kind == "ClusterRole":
            self._wake.set()

    def pending(self) -> list[tuple[str, list[Obj]]]:
        """(name, rules) of every aggregated role whose rules are out of date."""
        roles = list(self.index.cluster_roles.values())
        out = []
        for role in roles:
            want = compute_aggregated_rules(role, roles)
            if want is not None and (role.get("rules") or []) != want:
                out.append(((role.get("metadata") or {}).get("name", ""), want))
        return out

    async def sync_once(self) -> int:
        """Write every out-of-date aggregated role once; returns the number written."""
        from ..rest import WriteOptions

        info = self.registry.lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
        assert info is not None
        written = 0
        for name, rules in self.pending():
            def set_rules(cur: Obj | None, rules: list[Obj] = rules) -> Obj:
                assert cur is not None
                cur["rules"] = rules
                return cur

            try:
                out, _ = await self.api.guaranteed_update(info, "", name, set_rules,
                                                          WriteOptions(field_manager=NAME, field_validation="Ignore"))
                written += 1
                # read-your-writes: the watch event follows within a flush interval
                self.index.on_cluster_role(info.key("", name), out)
            except errors.StatusError as e:
                if e.code != 404:
                    raise
        self.writes += written
        return written

    async def sync_all(self) -> None:
        """Sync until nothing changes (chains of aggregated roles settle in a few rounds)."""
        for _ in range(MAX_ROUNDS):
            if not await self.sync_once():
                return

    async def run(self) -> None:
        """Re-sync on every ClusterRole change; return only by cancellation."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync_once()
            except Exception:  # noqa: BLE001 - retried at the next change or after a pause
                log.warning("%s: sync failed; retrying", NAME, exc_info=True)
                await asyncio.sleep(1.0)
                self._wake.set()
