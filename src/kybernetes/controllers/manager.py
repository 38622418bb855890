"""The controller manager: a table of controllers, run under leader election.

Each controller module exposes ``NAME`` (the upstream controller name, e.g.
``"namespace-controller"``), ``ALIASES`` (short names such as ``"namespace"``) and
``new(ctx: ControllerContext) -> Controller``. ``CONTROLLERS`` lists the modules; which of
them run is configuration (``--controllers``), as in kube-controller-manager.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ..client import ApiClient, InformerFactory
from ..client.events import EventRecorder
from ..client.leaderelection import LeaderElectionConfig, LeaderElector
from ..util.clock import Clock, RealClock
from ..util.tasks import Supervisor

log = logging.getLogger(__name__)

# module names under kybernetes.controllers, in start order
CONTROLLERS: tuple[str, ...] = (
    "replicaset", "replicationcontroller", "deployment",
    "namespace", "garbagecollector", "serviceaccount", "rootcacert",
    "endpoints", "endpointslice", "nodelifecycle", "nodeipam",
    "job", "cronjob", "ttlafterfinished", "daemonset", "statefulset",
    "disruption", "podgc", "resourcequota", "persistentvolume", "localpath", "hpa",
    "satokens", "bootstraptoken", "certificates",
)


@dataclass
class ControllerContext:
    """What every controller gets: one client, one shared informer factory, an event recorder."""

    client: ApiClient
    factory: InformerFactory
    recorder: EventRecorder
    clock: Clock = field(default_factory=RealClock)
    cluster_ca: bytes = b""       # PEM of the cluster CA (root-CA publisher)
    options: dict[str, Any] = field(default_factory=dict)


class Runnable(Protocol):
    name: str

    async def run(self) -> None: ...


def load_modules(names: tuple[str, ...] = CONTROLLERS) -> list[ModuleType]:
    return [importlib.import_module(f"kybernetes.controllers.{n}") for n in names]


def select(modules: list[ModuleType], wanted: str) -> list[ModuleType]:
    """``--controllers``: ``*`` (all), names or aliases, ``-name`` to disable one."""
    items = [w.strip() for w in wanted.split(",") if w.strip()] or ["*"]
    out = []
    for mod in modules:
        names = {mod.NAME, *getattr(mod, "ALIASES", ())}
        if any(f"-{n}" in items for n in names):
            continue
        if "*" in items or names & set(items):
            out.append(mod)
    return out


async def run_controllers(ctx: ControllerContext, modules: list[ModuleType]) -> None:
    """Start the informers and every controller; return only by cancellation."""
    # ``new`` may return None: the controller lacks what it needs (e.g. a key) and says so itself
    controllers = [c for c in (mod.new(ctx) for mod in modules) if c is not None]
    async with Supervisor("controller-manager", logger=log) as sup:
        sup.start(ctx.factory.run(), name="informers")
        sup.start(ctx.recorder.run(), name="events")
        for c in controllers:
            sup.start(c.run(), name=c.name)
        log.info("started controllers: %s", ", ".join(c.name for c in controllers))
        await asyncio.Event().wait()


async def run_manager(kubeconfig: str | Path, *, controllers: str = "*", leader_elect: bool = True,
                      identity: str | None = None, cluster_ca: bytes = b"",
                      options: dict[str, Any] | None = None) -> None:
    client = ApiClient.from_kubeconfig(str(kubeconfig))
    ident = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    try:
        modules = select(load_modules(), controllers)

        async def lead() -> None:
            ctx = ControllerContext(client=client, factory=InformerFactory(client),
                                    recorder=EventRecorder(client, "controller-manager", socket.gethostname()),
                                    cluster_ca=cluster_ca, options=dict(options or {}))
            await run_controllers(ctx, modules)

        if not leader_elect:
            await lead()
            return
        elector = LeaderElector(client, LeaderElectionConfig("kube-controller-manager", "kube-system", ident))
        while True:
            # run() returns when leadership is lost; campaign again (a new context, fresh caches)
            await elector.run(lead)
            log.warning("lost leadership; campaigning again")
    finally:
        await client.close()
