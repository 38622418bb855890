"""The ReplicationController controller: the ReplicaSet controller over core/v1 ReplicationControllers
(map selector instead of a LabelSelector; pods owned with ``kind: ReplicationController``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .replicaset import REPLICATIONCONTROLLER, ReplicaSetController, new_replication_controller

if TYPE_CHECKING:
    from .manager import ControllerContext

NAME = REPLICATIONCONTROLLER.controller_name
ALIASES = ("replicationcontroller",)


def new(ctx: ControllerContext) -> ReplicaSetController:
    return new_replication_controller(ctx)
