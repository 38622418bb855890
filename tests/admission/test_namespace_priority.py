"""NamespaceLifecycle and Priority: pure decisions and the real API server."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.apiserver.admission import priority
from tests.conftest import ApiClient

Obj = dict[str, Any]


def pod(name: str = "p", **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


# ------------------------------------------------------------------------------------------
# NamespaceLifecycle
@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public"])
async def test_immortal_namespaces(api: ApiClient, ns: str) -> None:
    st, doc, _ = await api.delete(f"/api/v1/namespaces/{ns}")
    assert (st, doc["reason"], doc["message"]) == (403, "Forbidden", f'namespaces "{ns}" is forbidden: this namespace may not be deleted')
    assert (await api.get(f"/api/v1/namespaces/{ns}"))[0] == 200


async def test_missing_and_terminating_namespaces(api: ApiClient) -> None:
    st, doc, _ = await api.post("/api/v1/namespaces/ghost/configmaps", {"metadata": {"name": "x"}})
    assert (st, doc["reason"], doc["message"]) == (404, "NotFound", 'namespaces "ghost" not found')
    # the check comes before validation and webhooks, as upstream's first plugin
    st, doc, _ = await api.post("/api/v1/namespaces/ghost/configmaps", {"metadata": {"name": "Not_Valid"}})
    assert st == 404
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "going"}}))[0] == 201
    assert (await api.post("/api/v1/namespaces/going/configmaps", {"metadata": {"name": "kept"}}))[0] == 201
    st, doc, _ = await api.delete("/api/v1/namespaces/going")
    assert st == 200 and doc["status"]["phase"] == "Terminating"  # held by spec.finalizers (no controller here)
    st, doc, _ = await api.post("/api/v1/namespaces/going/configmaps", {"metadata": {"name": "new"}})
    assert (st, doc["reason"]) == (403, "Forbidden")
    assert doc["message"] == ('configmaps "new" is forbidden: unable to create new content in namespace going '
                              "because it is being terminated")
    assert doc["details"]["causes"] == [{"reason": "NamespaceTerminating", "message": "namespace going is being terminated",
                                         "field": "metadata.namespace"}]
    # existing content can still be changed and deleted
    st, _, _ = await api.patch("/api/v1/namespaces/going/configmaps/kept", {"data": {"a": "b"}})
    assert st == 200
    assert (await api.delete("/api/v1/namespaces/going/configmaps/kept"))[0] == 200


# ------------------------------------------------------------------------------------------
# Priority
def test_resolve() -> None:
    classes = [{"metadata": {"name": "low"}, "value": 10, "globalDefault": True},
               {"metadata": {"name": "lower"}, "value": 5, "globalDefault": True},
               {"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"}]
    assert priority.resolve(pod(), classes) == ("lower", 5, "PreemptLowerPriority")  # several defaults: the lowest
    assert priority.resolve(pod(priorityClassName="high"), classes) == ("high", 1000, "Never")
    assert priority.resolve(pod(), []) == ("", 0, "PreemptLowerPriority")
    assert priority.resolve(pod(priorityClassName="nope"), classes) == "no PriorityClass with name nope was found"
    p = pod(priorityClassName="high", priority=7)
    assert priority.admit_pod(p, classes) == ("the integer value of priority (7) must not be provided in pod spec; "
                                              "priority admission controller computed 1000 from the given PriorityClass name")
    p = pod(priorityClassName="high", preemptionPolicy="PreemptLowerPriority")
    assert priority.admit_pod(p, classes) == ("the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided "
                                              "in pod spec; priority admission controller computed Never from the given PriorityClass name")


async def test_priority_classes_through_the_api(api: ApiClient) -> None:
    _, doc, _ = await api.get("/apis/scheduling.k8s.io/v1/priorityclasses")
    system = {i["metadata"]["name"]: i["value"] for i in doc["items"]}
    assert system == {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}

    st, doc, _ = await api.post("/api/v1/namespaces/default/pods", pod("plain"))
    assert (doc["spec"]["priority"], doc["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert "priorityClassName" not in doc["spec"]
    st, doc, _ = await api.post("/api/v1/namespaces/default/pods", pod("crit", priorityClassName="system-node-critical"))
    assert st == 201 and doc["spec"]["priority"] == 2000001000

    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "batch"}, "value": 100,
          "globalDefault": True, "preemptionPolicy": "Never"}
    assert (await api.post("/apis/scheduling.k8s.io/v1/priorityclasses", pc))[0] == 201
    st, doc, _ = await api.post("/api/v1/namespaces/default/pods", pod("defaulted"))
    assert (doc["spec"]["priorityClassName"], doc["spec"]["priority"], doc["spec"]["preemptionPolicy"]) == ("batch", 100, "Never")
    second = {**pc, "metadata": {"name": "other"}}
    st, doc, _ = await api.post("/apis/scheduling.k8s.io/v1/priorityclasses", second)
    assert (st, doc["message"]) == (403, 'priorityclasses.scheduling.k8s.io "other" is forbidden: '
                                         "PriorityClass batch is already marked as default. Only one default can exist")
    st, doc, _ = await api.post("/api/v1/namespaces/default/pods", pod("bad", priorityClassName="gold"))
    assert (st, doc["reason"], doc["message"]) == (403, "Forbidden", 'pods "bad" is forbidden: no PriorityClass with name gold was found')
    # updates keep the priority admission computed
    st, doc, _ = await api.patch("/api/v1/namespaces/default/pods/defaulted", {"metadata": {"labels": {"a": "b"}}})
    assert st == 200 and doc["spec"]["priority"] == 100
