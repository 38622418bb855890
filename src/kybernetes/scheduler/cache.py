"""The scheduler's view of the cluster: NodeInfos built from nodes and bound pods, plus pods
the scheduler has *assumed* onto a node while their binding is in flight.

    cache = Cache()
    cache.add_node(node); cache.add_pod(bound_pod)
    snap = cache.update_snapshot(snap)       # cheap: copies only NodeInfos that changed
    cache.assume_pod(pod_with_node_name)     # right after choosing a node, before Bind
    cache.add_pod(pod_from_informer)         # confirms an assumed pod
    cache.forget_pod(pod)                    # binding failed

The cache is mutated only between scheduling cycles; a snapshot taken for a cycle is never
touched by later updates (upstream ``backend/cache`` + ``snapshot.go``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kybernetes.scheduler.framework.types import NodeInfo, Obj, PodInfo, Snapshot, pod_key


class Cache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, tuple[PodInfo, str]] = {}  # key -> (pod info, node name)
        self._assumed: set[str] = set()
        self._membership = 0  # bumped when the set of nodes changes
        self._dirty: set[str] = set()  # nodes changed since the last update_snapshot
        self._last_snapshot: Snapshot | None = None
        self.namespace_labels: dict[str, Mapping[str, str]] = {}
        self.pdbs: dict[str, Obj] = {}
        self.volumes: Any = None   # plugins.volume_binding.VolumeListers once informers run

    # -- nodes -------------------------------------------------------------------------------

    def add_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo()
        if ni.node is None:
            self._membership += 1
        ni.set_node(node)
        self._dirty.add(name)

    update_node = add_node

    def remove_node(self, name: str) -> None:
        ni = self._nodes.get(name)
        if ni is None:
            return
        self._membership += 1
        if ni.pods:
            ni.remove_node()  # keep the pods until they are deleted, as upstream
        else:
            del self._nodes[name]

    # -- pods --------------------------------------------------------------------------------

    def _node_info(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo()
            ni.name = name
        return ni

    def _add(self, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        pi = self._node_info(node_name).add_pod(pod)
        self._pods[pi.key] = (pi, node_name)
        self._dirty.add(node_name)

    def _remove(self, key: str) -> None:
        entry = self._pods.pop(key, None)
        if entry is None:
            return
        ni = self._nodes.get(entry[1])
        self._dirty.add(entry[1])
        if ni is not None:
            ni.remove_pod(key)
            if ni.node is None and not ni.pods:
                del self._nodes[entry[1]]

    def add_pod(self, pod: Obj) -> None:
        """A pod with ``spec.nodeName`` seen by the informer (confirms an assumed pod)."""
        if not (pod.get("spec") or {}).get("nodeName"):
            return
        key = pod_key(pod)
        self._assumed.discard(key)
        self._remove(key)
        self._add(pod)

    def update_pod(self, pod: Obj) -> None:
        self.add_pod(pod)

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        self._assumed.discard(key)
        self._remove(key)

    def assume_pod(self, pod: Obj) -> None:
        """Account for ``pod`` (with ``spec.nodeName`` set) on its node before it is bound."""
        key = pod_key(pod)
        if key in self._pods:
            raise ValueError(f"pod {key} is already in the cache")
        self._add(pod)
        self._assumed.add(key)

    def forget_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        if key in self._assumed:
            self._assumed.discard(key)
            self._remove(key)

    def is_assumed(self, pod: Obj) -> bool:
        return pod_key(pod) in self._assumed

    def get_pod(self, pod: Obj) -> PodInfo | None:
        entry = self._pods.get(pod_key(pod))
        return entry[0] if entry else None

    # -- other objects -----------------------------------------------------------------------

    def set_namespace(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        self.namespace_labels[meta.get("name", "")] = meta.get("labels") or {}

    def set_pdb(self, pdb: Obj) -> None:
        meta = pdb.get("metadata") or {}
        self.pdbs[f"{meta.get('namespace', '')}/{meta.get('name', '')}"] = pdb

    def remove_pdb(self, pdb: Obj) -> None:
        meta = pdb.get("metadata") or {}
        self.pdbs.pop(f"{meta.get('namespace', '')}/{meta.get('name', '')}", None)

    # -- snapshots ---------------------------------------------------------------------------

    def node_count(self) -> int:
        return sum(1 for ni in self._nodes.values() if ni.node is not None)

    def update_snapshot(self, snapshot: Snapshot | None = None) -> Snapshot:
        """Bring ``snapshot`` up to date, copying only NodeInfos that changed.

        When ``snapshot`` is the one this cache returned last, only the nodes changed since
        then are looked at; any other snapshot is compared node by node (by generation).
        """
        snap = snapshot if snapshot is not None else Snapshot()
        same_nodes = getattr(snap, "_membership", -1) == self._membership
        if same_nodes and snap is self._last_snapshot:
            self._patch(snap)
        else:
            self._rebuild(snap)
        self._dirty.clear()
        self._last_snapshot = snap
        snap._membership = self._membership  # type: ignore[attr-defined]
        snap.namespace_labels = self.namespace_labels
        snap.pdbs = list(self.pdbs.values())
        snap.volumes = self.volumes  # type: ignore[attr-defined]
        return snap

    def _patch(self, snap: Snapshot) -> None:
        index: dict[str, int] = snap._index  # type: ignore[attr-defined]
        refresh = False
        for name in self._dirty:
            i = index.get(name)
            live = self._nodes.get(name)
            if i is None or live is None:
                continue
            old, new = snap.node_infos[i], live.clone()
            snap.node_infos[i] = snap.by_name[name] = new
            refresh = refresh or bool(old.pods_with_affinity or new.pods_with_affinity)
        if refresh:
            snap.refresh_lists()

    def _rebuild(self, snap: Snapshot) -> None:
        infos = []
        for name, ni in self._nodes.items():
            if ni.node is None:
                continue
            old = snap.by_name.get(name)
            infos.append(old if old is not None and old.generation == ni.generation else ni.clone())
        snap.set_node_infos(infos)
        snap._index = {ni.name: i for i, ni in enumerate(infos)}  # type: ignore[attr-defined]

def snapshot_from(nodes: Iterable[Obj], pods: Iterable[Obj] = (),
                  namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
                  pdbs: Iterable[Obj] = ()) -> Snapshot:
    """A snapshot from plain lists (pods without ``spec.nodeName`` are ignored)."""
    cache = Cache()
    for n in nodes:
        cache.add_node(n)
    for p in pods:
        cache.add_pod(p)
    for pdb in pdbs:
        cache.set_pdb(pdb)
    cache.namespace_labels.update(namespace_labels or {})
    return cache.update_snapshot()
