"""Pure StatefulSet logic: identity, claims, ordered/parallel management, rolling update, status."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers.history import DEFAULT_REVISION_LABEL
from kybernetes.controllers.statefulset.sync import Observed, Plan, reconcile
from kybernetes.controllers.statefulset.util import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    claims_for,
    identity_matches,
    new_pod,
    parent_and_ordinal,
)

from .builders import NOW, pod

Obj = dict[str, Any]


def sts(replicas: int = 3, *, policy: str = "OrderedReady", partition: int | None = None,
        strategy: str = "RollingUpdate", image: str = "web:1", deleting: bool = False) -> Obj:
    md: Obj = {"name": "web", "namespace": "default", "uid": "uid-web", "generation": 2}
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    us: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        us["rollingUpdate"] = {"partition": partition or 0}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": md, "spec": {
        "replicas": replicas, "serviceName": "nginx", "podManagementPolicy": policy, "updateStrategy": us,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "c", "image": image, "volumeMounts": [{"name": "www", "mountPath": "/d"}]}],
            "volumes": [{"name": "tmp", "emptyDir": {}}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "data"}},
                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                           "resources": {"requests": {"storage": "1Gi"}}}}]}}


def member(i: int, rev: str = "web-r1", **kw: Any) -> Obj:
    p = pod(f"web-{i}", node="n1", hash_=rev, **kw)
    p["metadata"]["labels"].update({POD_NAME_LABEL: f"web-{i}", POD_INDEX_LABEL: str(i), "app": "web"})
    return p


def run(s: Obj, pods: list[Obj], current: str = "web-r1", update: str = "web-r1") -> Plan:
    return reconcile(Observed(sts=s, pods=tuple(pods), current_set=s, update_set=s, current_revision=current,
                              update_revision=update, now=NOW))


def names(plan: Plan) -> list[str]:
    return [p["metadata"]["name"] for p in plan.create]


# -- identity ---------------------------------------------------------------------------------------
def test_new_pod_identity_and_storage() -> None:
    p = new_pod(sts(), 2, "web-abc")
    md, spec = p["metadata"], p["spec"]
    assert md["name"] == "web-2"
    assert md["labels"] == {"app": "web", POD_NAME_LABEL: "web-2", POD_INDEX_LABEL: "2",
                            DEFAULT_REVISION_LABEL: "web-abc"}
    assert (spec["hostname"], spec["subdomain"]) == ("web-2", "nginx")
    assert spec["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}},
                               {"name": "tmp", "emptyDir": {}}]
    assert md["ownerReferences"][0]["kind"] == "StatefulSet"
    assert identity_matches(sts(), p)


def test_claims_for() -> None:
    (claim,) = claims_for(sts(), 1)
    assert claim["metadata"]["name"] == "www-web-1"
    assert claim["metadata"]["labels"] == {"tier": "data", "app": "web"}
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


@pytest.mark.parametrize(("name", "want"), [
    pytest.param("web-0", ("web", 0), id="simple"),
    pytest.param("my-web-12", ("my-web", 12), id="dashes"),
    pytest.param("web", ("", -1), id="no-ordinal"),
    pytest.param("web-x", ("", -1), id="not-a-number"),
])
def test_parent_and_ordinal(name: str, want: tuple[str, int]) -> None:
    assert parent_and_ordinal({"metadata": {"name": name}}) == want


# -- ordered / parallel -------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "pods", "create", "delete"), [
    pytest.param(sts(), [], ["web-0"], [], id="ordered-first"),
    pytest.param(sts(), [member(0, phase="Pending", ready=False)], [], [], id="ordered-waits-for-ready"),
    pytest.param(sts(), [member(0, phase="Running", ready=False)], [], [], id="ordered-waits-running-not-ready"),
    pytest.param(sts(), [member(0)], ["web-1"], [], id="ordered-next"),
    pytest.param(sts(), [member(0), member(2)], ["web-1"], [], id="ordered-fills-gap"),
    pytest.param(sts(policy="Parallel"), [], ["web-0", "web-1", "web-2"], [], id="parallel-all"),
    pytest.param(sts(policy="Parallel"), [member(1, phase="Pending", ready=False)], ["web-0", "web-2"], [],
                 id="parallel-ignores-unready"),
    pytest.param(sts(1), [member(0), member(1), member(2)], [], ["web-2"], id="scale-down-highest-first"),
    pytest.param(sts(1), [member(0), member(1), member(2, deleting=True)], [], [], id="scale-down-waits-terminating"),
    pytest.param(sts(1), [member(0, ready=False), member(1), member(2)], [], [],
                 id="scale-down-blocked-by-unhealthy-replica"),
    pytest.param(sts(1), [member(0), member(1, ready=False), member(2, ready=False)], [], ["web-2"],
                 id="scale-down-condemned-unhealthy-highest-goes"),
    pytest.param(sts(1), [member(0), member(1), member(2, ready=False)], [], ["web-2"],
                 id="scale-down-first-unhealthy-may-go"),
    pytest.param(sts(1, policy="Parallel"), [member(0), member(1), member(2)], [], ["web-2", "web-1"],
                 id="parallel-scale-down-all"),
    pytest.param(sts(), [member(0, phase="Failed", ready=False)], [], ["web-0"], id="failed-pod-deleted"),
    pytest.param(sts(deleting=True), [], [], [], id="deleting-set"),
])
def test_manage(spec: Obj, pods: list[Obj], create: list[str], delete: list[str]) -> None:
    plan = run(spec, pods)
    assert names(plan) == create
    assert list(plan.delete) == delete


def test_identity_repair() -> None:
    broken = member(1)
    del broken["metadata"]["labels"][POD_NAME_LABEL]
    plan = run(sts(2), [member(0), broken])
    assert plan.fix_identity == ("web-1",)
    assert plan.ensure_claims == (0, 1)


# -- rolling update -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "pods", "delete"), [
    pytest.param(sts(), [member(i, "old") for i in range(3)], ["web-2"], id="highest-first"),
    pytest.param(sts(), [member(0, "old"), member(1, "old"), member(2, "new")], ["web-1"], id="next-lower"),
    pytest.param(sts(), [member(0, "old"), member(1, "old"), member(2, "new", ready=False)], [],
                 id="waits-for-updated-pod"),
    pytest.param(sts(partition=1), [member(0, "old"), member(1, "new"), member(2, "new")], [],
                 id="partition-stops"),
    pytest.param(sts(partition=1), [member(0, "old"), member(1, "old"), member(2, "new")], ["web-1"],
                 id="partition-includes-its-ordinal"),
    pytest.param(sts(strategy="OnDelete"), [member(i, "old") for i in range(3)], [], id="on-delete"),
])
def test_rolling_update(spec: Obj, pods: list[Obj], delete: list[str]) -> None:
    plan = run(spec, pods, current="old", update="new")
    assert list(plan.delete) == delete


def test_recreated_pod_revision_respects_partition() -> None:
    s = sts(partition=2)
    current = sts(partition=2, image="web:old")
    plan = reconcile(Observed(sts=s, pods=(member(0, "old"), member(2, "new")), current_set=current,
                              update_set=s, current_revision="old", update_revision="new", now=NOW))
    (p,) = plan.create
    assert p["metadata"]["name"] == "web-1"
    assert p["metadata"]["labels"][DEFAULT_REVISION_LABEL] == "old"
    assert p["spec"]["containers"][0]["image"] == "web:old"
    plan = run(sts(), [member(0, "old"), member(1, "old")], current="old", update="new")
    assert plan.create[0]["metadata"]["labels"][DEFAULT_REVISION_LABEL] == "new"


# -- status -------------------------------------------------------------------------------------------
def test_status_mid_update() -> None:
    plan = run(sts(), [member(0, "old"), member(1, "old", ready=False), member(2, "new")],
               current="old", update="new")
    assert plan.status == {"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "currentReplicas": 2,
                           "updatedReplicas": 1, "availableReplicas": 2, "currentRevision": "old",
                           "updateRevision": "new", "collisionCount": 0}


def test_status_completes_rollout() -> None:
    plan = run(sts(), [member(i, "new") for i in range(3)], current="old", update="new")
    assert plan.status["currentRevision"] == "new"
    assert plan.status["currentReplicas"] == 3 and plan.status["updatedReplicas"] == 3
