"""VolumeBinding: claims that cannot be used keep a pod Pending with upstream's reasons; bound
node-local volumes pin the pod to their node."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.scheduler.cache import snapshot_from
from kybernetes.scheduler.framework.status import Code
from kybernetes.scheduler.plugins import volume_binding
from kybernetes.scheduler.plugins.volume_binding import VolumeListers, claim_names
from tests.builders import make_node, make_pod
from tests.unit.scheduler.helpers import filter_in, reasons

UU = int(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)
Obj = dict[str, Any]


def claim(name: str, *, volume: str = "", sc: str = "", deleting: bool = False) -> Obj:
    md: Obj = {"name": name, "namespace": "default"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: Obj = {"volumeName": volume} if volume else {}
    if sc:
        spec["storageClassName"] = sc
    return {"metadata": md, "spec": spec}


def local_pv(name: str, node: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}


CLAIMS = {c["metadata"]["name"]: c for c in (
    claim("bound", volume="pv-a"), claim("local", volume="pv-n2"), claim("immediate", sc="manual"),
    claim("nosc"), claim("delayed", sc="local-path"), claim("gone", deleting=True),
    claim("dangling", volume="pv-missing"), claim("web-scratch", volume="pv-a"))}
VOLUMES = {"pv-a": {"metadata": {"name": "pv-a"}, "spec": {}}, "pv-n2": local_pv("pv-n2", "n2")}
CLASSES = {"local-path": {"metadata": {"name": "local-path"}, "volumeBindingMode": "WaitForFirstConsumer"},
           "manual": {"metadata": {"name": "manual"}}}
LISTERS = VolumeListers(claim=lambda ns, n: CLAIMS.get(n) if ns == "default" else None,
                        volume=VOLUMES.get, storage_class=CLASSES.get)


def pod_with(*claims: str, ephemeral: str = "") -> Obj:
    vols: list[Obj] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if ephemeral:
        vols.append({"name": ephemeral, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}})
    return make_pod("web", volumes=vols)


def run(pod: Obj, node: str = "n1") -> Any:
    snap = snapshot_from([make_node("n1"), make_node("n2")], [])
    snap.volumes = LISTERS  # type: ignore[attr-defined]
    return reasons(filter_in(volume_binding.new(), pod, snap, node))


@pytest.mark.parametrize("pod,node,want", [
    pytest.param(make_pod(), "n1", None, id="no-volumes"),
    pytest.param(pod_with("bound"), "n1", None, id="bound-anywhere"),
    pytest.param(pod_with("delayed"), "n1", None, id="wait-for-first-consumer"),
    pytest.param(pod_with("missing"), "n1", (UU, ('persistentvolumeclaim "missing" not found',)), id="missing"),
    pytest.param(pod_with("gone"), "n1", (UU, ('persistentvolumeclaim "gone" is being deleted',)), id="deleting"),
    pytest.param(pod_with("immediate"), "n1", (UU, ("pod has unbound immediate PersistentVolumeClaims",)),
                 id="unbound-immediate"),
    pytest.param(pod_with("nosc"), "n1", (UU, ("pod has unbound immediate PersistentVolumeClaims",)),
                 id="unbound-no-class"),
    pytest.param(pod_with("dangling"), "n1", (UU, ('persistentvolume "pv-missing" not found',)), id="pv-missing"),
    pytest.param(pod_with("local"), "n2", None, id="local-pv-its-node"),
    pytest.param(pod_with("local"), "n1", (UU, ("node(s) had volume node affinity conflict",)), id="local-pv-other"),
    pytest.param(pod_with("bound", "local"), "n1", (UU, ("node(s) had volume node affinity conflict",)),
                 id="one-local-among-two"),
    pytest.param(pod_with(ephemeral="scratch"), "n1", None, id="ephemeral-claim-by-name"),
])
def test_volume_binding(pod: Obj, node: str, want: Any) -> None:
    assert run(pod, node) == want


def test_claim_names_and_no_listers_skips() -> None:
    assert claim_names(pod_with("a", "b", ephemeral="tmp")) == ["a", "b", "web-tmp"]
    snap = snapshot_from([make_node("n1")], [])
    assert reasons(filter_in(volume_binding.new(), pod_with("missing"), snap, "n1")) is None
