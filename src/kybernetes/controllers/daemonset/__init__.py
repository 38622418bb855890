"""The DaemonSet controller: one daemon pod on every eligible node (upstream ``pkg/controller/daemon``).

    util.py        pure predicates: default tolerations, node selector/affinity/taints, the daemon pod
    sync.py        pure ``reconcile(Observed) -> Plan``: manage, rolling update, status
    controller.py  the I/O shell (informers, claiming, revision history, writes, events)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .controller import NAME, DaemonSetController

if TYPE_CHECKING:
    from ..manager import ControllerContext

ALIASES = ("daemonset",)

__all__ = ["ALIASES", "NAME", "DaemonSetController", "new"]


def new(ctx: ControllerContext) -> DaemonSetController:
    workers = int(ctx.options.get("concurrent_daemonset_syncs", 2))
    return DaemonSetController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                               workers=workers)
