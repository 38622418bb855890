"""The API server write-path changes made for control-plane scale: no deep copies of the stored
object (shared parts must not leak between the stored and the new object), no managedFields
entry for a binding (as upstream), status writes still keep spec and metadata."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ApiClient

pytestmark = pytest.mark.integration

PODS = "/api/v1/namespaces/default/pods"
SVCS = "/api/v1/namespaces/default/services"


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}


def managers(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e.get("manager", ""), e["operation"], e.get("subresource", ""))
            for e in obj["metadata"].get("managedFields") or []]


async def test_binding_records_no_managed_fields_entry(api: ApiClient) -> None:
    code, created, _ = await api.post(PODS + "?fieldManager=creator", pod("b1"))
    assert code == 201
    code, _, _ = await api.post(PODS + "/b1/binding?fieldManager=sched",
                                {"target": {"kind": "Node", "name": "n1"}})
    assert code == 201
    _, p, _ = await api.get(PODS + "/b1")
    assert p["spec"]["nodeName"] == "n1"
    assert [c["type"] for c in p["status"]["conditions"]] == ["PodScheduled"]
    assert managers(p) == managers(created) == [("creator", "Update", "")]


async def test_status_patch_keeps_spec_and_labels_and_tracks_status_manager(api: ApiClient) -> None:
    await api.post(PODS, pod("s1"))
    code, p, _ = await api.patch(PODS + "/s1/status?fieldManager=kubelet",
                                 {"status": {"phase": "Running"}, "spec": {"nodeName": "ignored"},
                                  "metadata": {"labels": {"a": "changed"}}})
    assert code == 200
    assert p["status"]["phase"] == "Running"
    assert p["spec"]["containers"][0]["image"] == "i" and "nodeName" not in p["spec"]
    assert p["metadata"]["labels"] == {"a": "b"}
    assert ("kubelet", "Update", "status") in managers(p)
    # a later spec write keeps the status (shared from the stored object, not lost or aliased)
    code, p2, _ = await api.patch(PODS + "/s1", {"metadata": {"labels": {"a": "c"}}, "status": {"phase": "Failed"}})
    assert code == 200 and p2["status"]["phase"] == "Running" and p2["metadata"]["labels"] == {"a": "c"}
    _, stored, _ = await api.get(PODS + "/s1")
    assert stored["status"]["phase"] == "Running" and stored["metadata"]["labels"] == {"a": "c"}


async def test_noop_update_is_not_written(api: ApiClient) -> None:
    _, p, _ = await api.post(PODS, pod("n1"))
    code, same, _ = await api.patch(PODS + "/n1", {"metadata": {"labels": {"a": "b"}}})
    assert code == 200 and same["metadata"]["resourceVersion"] == p["metadata"]["resourceVersion"]


async def test_service_status_write_keeps_its_cluster_ip(api: ApiClient) -> None:
    code, svc, _ = await api.post(SVCS, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert code == 201
    ip = svc["spec"]["clusterIP"]
    code, out, _ = await api.patch(SVCS + "/web/status", {"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})
    assert code == 200 and out["spec"]["clusterIP"] == ip
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4"}]
