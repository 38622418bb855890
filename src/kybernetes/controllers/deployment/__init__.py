"""The Deployment controller (upstream ``pkg/controller/deployment``), split by concern:

    util.py      pure arithmetic (maxSurge/maxUnavailable, proportions, hash, annotations, conditions)
    rolling.py   RollingUpdate step decisions          recreate.py  Recreate step decisions
    sync.py      scaling events, history cleanup, new ReplicaSet construction
    progress.py  status, Progressing/Available conditions, progress deadline
    controller.py  the I/O shell (``DeploymentController``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .controller import NAME, DeploymentController

if TYPE_CHECKING:
    from ..manager import ControllerContext

ALIASES = ("deployment",)


def new(ctx: ControllerContext) -> DeploymentController:
    workers = int(ctx.options.get("concurrent_deployment_syncs", 5))
    return DeploymentController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                                workers=workers)


__all__ = ["ALIASES", "NAME", "DeploymentController", "new"]
