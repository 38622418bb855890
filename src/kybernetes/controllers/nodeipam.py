"""The node IPAM controller: a pod CIDR for every node (upstream ``RangeAllocator``).

The cluster CIDR (``cluster_cidr``, default 10.244.0.0/16) is cut into blocks of
``node_cidr_mask_size`` bits (default /24: 256 nodes). ``CIDRSet`` (pure, in memory) hands them out
round-robin from the block after the last one allocated, so a released block is not reused at once.

``sync(node)``:
* a node that already has ``spec.podCIDRs``/``podCIDR`` keeps it; the block is marked used when it
  lies inside the cluster CIDR (the fake kubelet's 10.128.x.0/24 ranges lie outside and are ignored);
* a node without one gets the next free block: ``spec.podCIDR`` and ``spec.podCIDRs`` in one merge
  patch guarded by the node's resourceVersion; a full range gives a ``CIDRNotAvailable`` event;
* a deleted node's block is released.

Restart-safe: before the first allocation every node in the (synced) cache is marked, so blocks
survive a controller restart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..client import NORMAL, WARNING, Controller, EventRecorder
from ..client.errors import Conflict, NotFound
from ..client.keys import ObjectKey
from ..client.resources import NODES

if TYPE_CHECKING:
    from ..client.informer import InformerFactory
    from ..client.rest import ApiClient
    from .manager import ControllerContext

Obj = dict[str, Any]

NAME = "node-ipam-controller"
ALIASES = ("nodeipam",)

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_CIDR_MASK_SIZE = 24


class CIDRRangeFull(Exception):
    """Every block of the cluster CIDR is in use."""


class CIDRSet:
    """The blocks of one cluster CIDR and which are in use (upstream ``cidrset.CidrSet``)."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        if not self.network.prefixlen <= mask_size <= self.network.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit cluster CIDR {cluster_cidr}")
        if mask_size - self.network.prefixlen > 24:
            raise ValueError(f"cluster CIDR {cluster_cidr} has too many /{mask_size} blocks")
        self.mask_size = mask_size
        self.size = 1 << (mask_size - self.network.prefixlen)
        self._block = 1 << (self.network.max_prefixlen - mask_size)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: str) -> int | None:
        """The block index of ``cidr`` when it is exactly one of our blocks."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask_size \
                or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._block

    def _cidr(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._block
        return str(ipaddress.ip_network((base, self.mask_size)))

    def contains(self, cidr: str) -> bool:
        return self._index(cidr) is not None

    def occupy(self, cidr: str) -> bool:
        """Mark ``cidr`` used; False when it is not one of our blocks."""
        i = self._index(cidr)
        if i is None:
            return False
        self._used.add(i)
        return True

    def release(self, cidr: str) -> None:
        i = self._index(cidr)
        if i is not None:
            self._used.discard(i)

    def allocate(self) -> str:
        """The next free block after the last one handed out (wrapping around)."""
        for step in range(self.size):
            i = (self._next + step) % self.size
            if i not in self._used:
                self._used.add(i)
                self._next = (i + 1) % self.size
                return self._cidr(i)
        raise CIDRRangeFull(f"no free /{self.mask_size} left in {self.network}")

    def used(self) -> int:
        return len(self._used)


def node_pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = [str(c) for c in spec.get("podCIDRs") or () if c]
    if not cidrs and spec.get("podCIDR"):
        cidrs = [str(spec["podCIDR"])]
    return cidrs


def pod_cidr_patch(node: Mapping[str, Any], cidr: str) -> Obj:
    return {"metadata": {"resourceVersion": (node.get("metadata") or {}).get("resourceVersion")},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}


class NodeIpamController(Controller):
    def __init__(self, client: ApiClient, *, factory: InformerFactory | None = None,
                 recorder: EventRecorder | None = None, cluster_cidr: str = DEFAULT_CLUSTER_CIDR,
                 node_cidr_mask_size: int = DEFAULT_NODE_CIDR_MASK_SIZE) -> None:
        # one worker: allocation decisions are made one node at a time
        super().__init__(NAME, client, workers=1, factory=factory)
        self.recorder = recorder
        self.cidrs = CIDRSet(cluster_cidr, node_cidr_mask_size)
        self.by_node: dict[str, list[str]] = {}       # blocks of our range each node holds
        self.nodes = self.informer(NODES)
        self._rebuilt = False
        self.allocations = 0

    def _occupy(self, name: str, cidrs: Iterable[str]) -> None:
        ours = [c for c in cidrs if self.cidrs.occupy(c)]
        for old in self.by_node.get(name, []):
            if old not in ours:
                self.cidrs.release(old)
        self.by_node[name] = ours

    def rebuild(self) -> None:
        """Mark every block the cached nodes hold (restart safety)."""
        for node in self.nodes.lister().list():
            self._occupy(str(node["metadata"]["name"]), node_pod_cidrs(node))
        self._rebuilt = True

    async def sync(self, key: ObjectKey) -> None:
        if not self._rebuilt:
            self.rebuild()
        name = str(key)
        node = self.nodes.lister().get(name)
        if node is None:
            for cidr in self.by_node.pop(name, []):
                self.cidrs.release(cidr)
            return
        existing = node_pod_cidrs(node)
        if existing:
            self._occupy(name, existing)
            return
        try:
            cidr = self.cidrs.allocate()
        except CIDRRangeFull:
            self._event(node, NORMAL, "CIDRNotAvailable", f"Node {name} status is now: CIDRNotAvailable")
            raise
        try:
            await self.client.patch(NODES, name, pod_cidr_patch(node, cidr))
        except NotFound:
            self.cidrs.release(cidr)   # deleted meanwhile
            return
        except Conflict:
            self.cidrs.release(cidr)   # changed meanwhile: the retry decides again
            raise
        except Exception as e:
            self.cidrs.release(cidr)
            self._event(node, WARNING, "CIDRAssignmentFailed", f"Node {name}: failed to set pod CIDR: {e}")
            raise
        self.by_node[name] = [cidr]
        self.allocations += 1

    def _event(self, obj: Mapping[str, Any], typ: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(obj, typ, reason, message)


def new(ctx: ControllerContext) -> NodeIpamController:
    return NodeIpamController(
        ctx.client, factory=ctx.factory, recorder=ctx.recorder,
        cluster_cidr=str(ctx.options.get("cluster_cidr", DEFAULT_CLUSTER_CIDR)),
        node_cidr_mask_size=int(ctx.options.get("node_cidr_mask_size", DEFAULT_NODE_CIDR_MASK_SIZE)))
