"""The fake kubelet: one process simulating many nodes whose pods run without processes (kwok-style).

    await run_fake_kubelet("admin.kubeconfig", nodes=1000, node_name_prefix="sim-")

Shape (all state lives on the loop thread; every per-object step is a key in a work queue):

* **Registration** at start: each simulated Node is created (or, if it exists, its labels and
  status are brought up to date), at most ``register_concurrency`` requests at a time.
* **One** shared pod informer over every bound pod (``spec.nodeName!=``), filtered to our nodes,
  feeds the pod queue; ``pod_workers`` workers bound the write concurrency. Timed steps (a Job pod
  finishing, a deleted pod's stop time) are delayed adds on the same queue, whose single timer heap
  serves every pod: no task per pod.
* One node informer (our nodes) feeds the node queue, which also carries ``lease/<node>`` keys:
  each Lease is renewed every ``lease_interval`` seconds, the nodes spread evenly over the
  interval (1,000 nodes = 100 writes/s). Node status is re-posted when it differs from what is
  stored (e.g. the node controller marked it Unknown) or every ``status_report_interval`` seconds
  (5 min, also spread over the nodes). The first Lease of each node is created on its first turn,
  so with many nodes all Leases exist after one ``lease_interval``.
* **Stopping a heartbeat** (to simulate a dead node): annotate the Node
  ``kybernetes.io/fake-heartbeat=stop`` (remove it to resume), or call ``set_heartbeat(name,
  False)``. Both stop Lease renewals and node status posts for that node only.
* **Restart-safe**: a pod with a ``status.startTime`` is re-adopted with that start (and its pod IP),
  so its recomputed status equals the stored one and nothing is rewritten.

Per-pod behaviour (phases, Job pods, grace periods) is the pure ``status.compute_fake_pod_action``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client.controller import Controller, Requeue
from ..client.errors import AlreadyExists, ClientError, Conflict, NotFound
from ..client.informer import InformerFactory, SharedInformer
from ..client.keys import ObjectKey
from ..client.resources import NODES, PODS
from ..client.rest import ApiClient
from ..util.backoff import Backoff
from ..util.clock import Clock, RealClock
from . import lease as leases
from .node import (
    NodeConfig,
    build_node,
    compute_node_status,
    fake_node_config,
    heartbeat_deadline,
    node_status_changed,
    registration_patch,
)
from .status import (
    DEFAULT_RUN_SECONDS,
    IPPool,
    PoolExhausted,
    compute_fake_pod_action,
    is_terminal,
    next_whole_second,
    start_time_of,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

FAKE_HEARTBEAT_ANNOTATION = "kybernetes.io/fake-heartbeat"
BOUND_PODS = "spec.nodeName!="
STATUS_REPORT_INTERVAL = 300.0


def fake_node_configs(nodes: int = 1, *, node_name: str | None = None, node_name_prefix: str = "sim-",
                      capacity: Mapping[str, str] | None = None) -> list[NodeConfig]:
    """Configs for ``nodes`` simulated nodes: ``<prefix>1`` ... or the single ``node_name``."""
    if nodes < 1:
        raise ValueError("nodes must be at least 1")
    if node_name is not None:
        if nodes != 1:
            raise ValueError("node_name names a single node; use node_name_prefix with nodes > 1")
        return [fake_node_config(1, name=node_name, capacity=capacity)]
    return [fake_node_config(i, prefix=node_name_prefix, capacity=capacity) for i in range(1, nodes + 1)]


@dataclass
class _Node:
    cfg: NodeConfig
    pool: IPPool
    uid: str | None = None
    heartbeat: bool = True
    last_status_post: float | None = None
    lease_renewals: int = 0


@dataclass
class _Pod:
    uid: str
    node: str
    started: dt.datetime
    pod_ip: str
    deleting_since: float | None = None
    pooled: bool = field(default=True)


def _node_key(prefix: str, name: str) -> ObjectKey:
    return ObjectKey(f"{prefix}/{name}")


class _Worker(Controller):
    """A Controller whose ``sync`` is a bound method of the fake kubelet."""

    def __init__(self, name: str, kubelet: FakeKubelet,
                 sync: Callable[[ObjectKey], Awaitable[None]], workers: int) -> None:
        super().__init__(name, kubelet.client, workers=workers, factory=kubelet.factory,
                         clock=kubelet.clock)
        self._sync = sync

    async def sync(self, key: ObjectKey) -> None:
        await self._sync(key)


class FakeKubelet:
    """Simulates ``nodes`` (see the module docstring). ``run()`` returns only on cancellation."""

    def __init__(self, client: ApiClient, nodes: Sequence[NodeConfig], *, clock: Clock | None = None,
                 pod_workers: int = 32, node_workers: int = 16, register_concurrency: int = 32,
                 default_duration: float = DEFAULT_RUN_SECONDS, stop_seconds: float = 0.2,
                 lease_interval: float = leases.RENEW_INTERVAL,
                 status_report_interval: float = STATUS_REPORT_INTERVAL) -> None:
        if not nodes:
            raise ValueError("a fake kubelet needs at least one node")
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.default_duration = default_duration
        self.stop_seconds = stop_seconds
        self.lease_interval = lease_interval
        self.status_report_interval = status_report_interval
        self.register_concurrency = register_concurrency
        self.nodes: dict[str, _Node] = {}
        for cfg in nodes:
            self.nodes[cfg.name] = _Node(cfg, IPPool(cfg.pod_cidr or "10.128.0.0/24"))
        self._order = {name: i for i, name in enumerate(self.nodes)}
        self.pods: dict[str, _Pod] = {}
        self.factory = InformerFactory(client, clock=self.clock)
        self.pod_worker = _Worker("fake-kubelet-pods", self, self._sync_pod, pod_workers)
        self.node_worker = _Worker("fake-kubelet-nodes", self, self._sync_node, node_workers)
        self.pod_informer: SharedInformer = self.pod_worker.informer(
            PODS, field_selector=BOUND_PODS, mapper=self._pod_keys)
        self.node_informer: SharedInformer = self.node_worker.informer(NODES, mapper=self._node_keys)
        self.registered = asyncio.Event()
        self.status_writes = 0
        self.deletes = 0
        self.node_status_writes = 0

    # -- event mapping (handlers only compute keys) -----------------------------------------------
    def _pod_keys(self, pod: Obj) -> list[str]:
        if (pod.get("spec") or {}).get("nodeName") not in self.nodes:
            return []
        md = pod.get("metadata") or {}
        return [f"{md.get('namespace')}/{md.get('name')}"]

    def _node_keys(self, node: Obj) -> list[str]:
        name = (node.get("metadata") or {}).get("name")
        return [_node_key("status", name)] if name in self.nodes else []

    # -- heartbeat switch ----------------------------------------------------------------------------
    def set_heartbeat(self, node_name: str, enabled: bool) -> None:
        """Stop (or resume) one simulated node: Lease renewals, node and pod status posts."""
        self.nodes[node_name].heartbeat = enabled
        if enabled:
            self.node_worker.enqueue(_node_key("lease", node_name))
            self.node_worker.enqueue(_node_key("status", node_name))

    def _heartbeat_on(self, name: str) -> bool:
        node = self.nodes[name]
        if not node.heartbeat:
            return False
        obj = self.node_informer.lister().get(name)
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        return annotations.get(FAKE_HEARTBEAT_ANNOTATION) != "stop"

    # -- registration --------------------------------------------------------------------------------
    async def register_nodes(self) -> None:
        """Create every Node (or update the existing one), a bounded number at a time."""
        sem = asyncio.Semaphore(self.register_concurrency)

        async def one(node: _Node) -> None:
            backoff = Backoff(initial=0.5, maximum=30.0)
            while True:
                try:
                    async with sem:
                        await self._register(node)
                    return
                except ClientError as e:  # the API server is not there (yet): keep trying
                    delay = backoff.next()
                    log.warning("registering node %s failed: %s; retrying in %.1fs", node.cfg.name, e, delay)
                    await self.clock.sleep(delay)

        async with asyncio.TaskGroup() as tg:
            for node in self.nodes.values():
                tg.create_task(one(node))
        self.registered.set()

    async def _register(self, node: _Node) -> None:
        cfg, now = node.cfg, self.clock.wall()
        try:
            created = await self.client.create(NODES, build_node(cfg, now))
            node.uid = (created.get("metadata") or {}).get("uid")
        except AlreadyExists:
            existing = await self.client.get(NODES, cfg.name)
            node.uid = (existing.get("metadata") or {}).get("uid")
            patch = registration_patch(existing, cfg)
            if patch:
                await self.client.patch(NODES, cfg.name, patch)
            status = compute_node_status(cfg, existing.get("status"), now)
            await self.client.patch_status(NODES, cfg.name, {"status": status})
        node.last_status_post = self.clock.monotonic() - self._phase(cfg.name) * self.status_report_interval

    def _phase(self, name: str) -> float:
        """This node's place in [0, 1): spreads periodic writes of many nodes over the interval."""
        return self._order[name] / len(self._order)

    # -- nodes: leases and status ---------------------------------------------------------------------
    async def _sync_node(self, key: ObjectKey) -> None:
        kind, _, name = str(key).partition("/")
        node = self.nodes.get(name)
        if node is None:
            return
        if kind == "lease":
            if self._heartbeat_on(name):
                await leases.renew_lease(self.client, name, node.uid, self.clock.wall())
                node.lease_renewals += 1
            raise Requeue(after=self.lease_interval)
        await self._sync_node_status(node)
        due = (node.last_status_post or 0.0) + self.status_report_interval - self.clock.monotonic()
        raise Requeue(after=max(due, 1.0))

    async def _sync_node_status(self, node: _Node) -> None:
        name = node.cfg.name
        obj = self.node_informer.lister().get(name)
        if obj is None or not self._heartbeat_on(name):
            return
        desired = compute_node_status(node.cfg, obj.get("status"), self.clock.wall())
        mono = self.clock.monotonic()
        if node_status_changed(obj.get("status"), desired) or heartbeat_deadline(
                node.last_status_post, mono, self.status_report_interval):
            await self.client.patch_status(NODES, name, {"status": desired})
            node.last_status_post = mono
            self.node_status_writes += 1

    def _schedule_leases(self) -> None:
        for name in self.nodes:
            self.node_worker.enqueue_after(_node_key("lease", name), self._phase(name) * self.lease_interval)

    # -- pods -------------------------------------------------------------------------------------------
    def _forget_pod(self, key: str) -> None:
        rec = self.pods.pop(key, None)
        if rec is not None and rec.node in self.nodes:
            self.nodes[rec.node].pool.release(rec.uid)

    def _adopt(self, key: str, pod: Obj, node: _Node) -> _Pod:
        """The record for ``pod``: a new start now, or the start and IP a previous run recorded."""
        uid = str(pod["metadata"].get("uid") or "")
        rec = self.pods.get(key)
        if rec is not None and rec.uid == uid:
            return rec
        self._forget_pod(key)
        status = pod.get("status") or {}
        started = start_time_of(pod) or next_whole_second(self.clock.wall())
        if (pod.get("spec") or {}).get("hostNetwork"):
            rec = _Pod(uid, node.cfg.name, started, node.cfg.internal_ip, pooled=False)
        elif status.get("podIP"):
            ip = str(status["podIP"])
            rec = _Pod(uid, node.cfg.name, started, ip, pooled=node.pool.reserve(uid, ip))
        else:
            rec = _Pod(uid, node.cfg.name, started, node.pool.allocate(uid))
        self.pods[key] = rec
        return rec

    async def _sync_pod(self, key: ObjectKey) -> None:
        pod = self.pod_informer.lister().get_by_key(key)
        node = self.nodes.get(((pod or {}).get("spec") or {}).get("nodeName") or "")
        if pod is None or node is None:
            self._forget_pod(key)
            return
        if not self._heartbeat_on(node.cfg.name):
            # a dead node's kubelet does nothing: no status, no deletions, until it comes back
            raise Requeue(after=5.0)
        try:
            rec = self._adopt(key, pod, node)
        except PoolExhausted:
            log.warning("pod %s: node %s has no free pod address", key, node.cfg.name)
            raise Requeue(after=5.0) from None
        md = pod["metadata"]
        mono = self.clock.monotonic()
        if md.get("deletionTimestamp") and rec.deleting_since is None:
            rec.deleting_since = mono
        action = compute_fake_pod_action(
            pod, started=rec.started, now=self.clock.wall(), host_ip=node.cfg.internal_ip,
            pod_ip=rec.pod_ip, stop_seconds=self.stop_seconds, default_duration=self.default_duration,
            deleting_for=None if rec.deleting_since is None else mono - rec.deleting_since)
        ns, name = md.get("namespace"), md.get("name")
        if action.delete:
            try:
                await self.client.delete(PODS, name, ns, grace_period_seconds=0,
                                         preconditions={"uid": rec.uid})
                self.deletes += 1
            except (NotFound, Conflict):
                pass  # already gone, or a new pod took the name
            return
        if action.status is not None:
            await self.client.patch_status(PODS, name, {"status": action.status}, ns)
            self.status_writes += 1
            if action.status.get("phase") in ("Succeeded", "Failed") and rec.pooled:
                node.pool.release(rec.uid)  # the sandbox is gone; the address is free again
                rec.pooled = False
        elif is_terminal(pod) and rec.pooled:
            node.pool.release(rec.uid)
            rec.pooled = False
        if action.requeue_after is not None:
            raise Requeue(after=action.requeue_after)

    # -- running ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Register the nodes, then simulate them until cancelled."""
        await self.register_nodes()
        log.info("fake kubelet: %d nodes registered", len(self.nodes))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.factory.run(), name="fake-kubelet/informers")
            tg.create_task(self.pod_worker.run(), name="fake-kubelet/pods")
            tg.create_task(self.node_worker.run(), name="fake-kubelet/nodes")
            self._schedule_leases()

    def statistics(self) -> dict[str, Any]:
        return {
            "nodes": len(self.nodes), "pods": len(self.pods), "pod_status_writes": self.status_writes,
            "pod_deletes": self.deletes, "node_status_writes": self.node_status_writes,
            "lease_renewals": sum(n.lease_renewals for n in self.nodes.values()),
            "pod_worker": self.pod_worker.statistics(), "node_worker": self.node_worker.statistics(),
        }


def client_for(kubeconfig: str, **kw: Any) -> ApiClient:
    """A client from a kubeconfig path, or for a plain server URL (tests, benchmarks)."""
    if kubeconfig.startswith(("http://", "https://")):
        return ApiClient(kubeconfig, **kw)
    return ApiClient.from_kubeconfig(kubeconfig, **kw)


async def run_fake_kubelet(kubeconfig: str, *, nodes: int = 1, node_name: str | None = None,
                           node_name_prefix: str = "sim-", capacity: dict[str, str] | None = None,
                           **options: Any) -> None:
    """Simulate ``nodes`` nodes against the API server of ``kubeconfig`` until cancelled.

    ``options`` go to ``FakeKubelet`` (``default_duration``, ``stop_seconds``, ``lease_interval``...).
    """
    configs = fake_node_configs(nodes, node_name=node_name, node_name_prefix=node_name_prefix,
                                capacity=capacity)
    async with client_for(kubeconfig, connection_limit=128) as client:
        await FakeKubelet(client, configs, **options).run()


def _parse_capacity(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise argparse.ArgumentTypeError(f"--capacity wants RESOURCE=QUANTITY, got {item!r}")
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m kybernetes.kubelet.fake --kubeconfig F --nodes 1000 --node-name-prefix sim-``."""
    p = argparse.ArgumentParser(prog="kyb kubelet --runtime fake", description=__doc__.split("\n")[0])
    p.add_argument("--kubeconfig", required=True, help="kubeconfig path (or a plain server URL)")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--node-name", default=None)
    p.add_argument("--node-name-prefix", default="sim-")
    p.add_argument("--capacity", action="append", default=[], metavar="RESOURCE=QUANTITY")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run_fake_kubelet(args.kubeconfig, nodes=args.nodes, node_name=args.node_name,
                                     node_name_prefix=args.node_name_prefix,
                                     capacity=_parse_capacity(args.capacity) or None))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
