"""Entry point of ``kyb scheduler``: a Scheduler behind Lease-based leader election.

    await run_scheduler("/etc/kyb/scheduler.kubeconfig")                  # kube-system/kube-scheduler
    await run_scheduler(kc, leader_elect=False)                           # a single instance

Only the holder of the Lease ``kube-system/kube-scheduler`` schedules. When leadership is lost the
scheduler is stopped and the process campaigns again with a fresh Scheduler (fresh caches), so a
standby never acts on stale state.

    python -m kybernetes.scheduler.main --kubeconfig KC [--leader-elect true|false] [--identity ID]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import uuid
from collections.abc import Sequence

from ..client.events import EventRecorder
from ..client.leaderelection import LeaderElectionConfig, LeaderElector
from ..client.rest import ApiClient
from .registry import DEFAULT_SCHEDULER_NAME, new_framework
from .scheduler import COMPONENT, DEFAULT_BIND_CONCURRENCY, Scheduler

log = logging.getLogger(__name__)

LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"
RECAMPAIGN_DELAY = 1.0


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def run_scheduler(kubeconfig: str, *, leader_elect: bool = True, identity: str | None = None,
                        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                        bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
                        election: LeaderElectionConfig | None = None) -> None:
    """Run the scheduler until cancelled (see the module docstring)."""
    client = ApiClient.from_kubeconfig(kubeconfig)
    try:
        await run_with_client(client, leader_elect=leader_elect, identity=identity,
                              scheduler_name=scheduler_name, bind_concurrency=bind_concurrency,
                              election=election)
    finally:
        await client.close()


async def run_with_client(client: ApiClient, *, leader_elect: bool = True,
                          identity: str | None = None,
                          scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                          bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
                          election: LeaderElectionConfig | None = None) -> None:
    """``run_scheduler`` with a client you own (tests; embedding in one process)."""
    ident = identity or default_identity()

    def new_scheduler() -> Scheduler:
        fw = new_framework(scheduler_name=scheduler_name)
        recorder = EventRecorder(client, COMPONENT, ident)
        return Scheduler(client, fw, identity=ident, bind_concurrency=bind_concurrency,
                         recorder=recorder)

    if not leader_elect:
        await new_scheduler().run()
        return
    cfg = election or LeaderElectionConfig(LEASE_NAME, LEASE_NAMESPACE, ident)
    elector = LeaderElector(client, cfg)
    while True:
        await elector.run(lambda: new_scheduler().run())
        log.warning("%s: lost leadership; campaigning again", ident)
        await asyncio.sleep(RECAMPAIGN_DELAY)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kyb scheduler", description="Run the kybernetes scheduler.")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``kyb scheduler`` (for the CLI to reuse)."""
    p.add_argument("--kubeconfig", required=True, help="kubeconfig to reach the API server")
    p.add_argument("--leader-elect", default="true", choices=("true", "false"),
                   help="use leader election on Lease kube-system/kube-scheduler (default true)")
    p.add_argument("--identity", default=None, help="leader election identity (default host_uuid)")
    p.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER_NAME,
                   help="the spec.schedulerName this scheduler serves (default default-scheduler)")
    p.add_argument("--bind-concurrency", type=int, default=DEFAULT_BIND_CONCURRENCY,
                   help="API writes (binds, status updates) in flight at once (default 64)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run_scheduler(args.kubeconfig, leader_elect=args.leader_elect == "true",
                                  identity=args.identity, scheduler_name=args.scheduler_name,
                                  bind_concurrency=args.bind_concurrency))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
