"""The StatefulSet controller: stable names, ordered pods, per-replica PVCs
(upstream ``pkg/controller/statefulset``).

    util.py        pure identity helpers: ordinals, the replica pod, its PVCs, pod state
    sync.py        pure ``reconcile(Observed) -> Plan``: create/delete/update order, status
    controller.py  the I/O shell (informers, claiming, revisions, PVCs, writes, events)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .controller import NAME, StatefulSetController

if TYPE_CHECKING:
    from ..manager import ControllerContext

ALIASES = ("statefulset",)

__all__ = ["ALIASES", "NAME", "StatefulSetController", "new"]


def new(ctx: ControllerContext) -> StatefulSetController:
    workers = int(ctx.options.get("concurrent_statefulset_syncs", 5))
    return StatefulSetController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                 workers=workers)
