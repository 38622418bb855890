"""LimitRanger: defaults and bounds (pure), and through the real API server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybernetes.apiserver.admission import limitranger as lr
from tests.conftest import ApiClient

Obj = dict[str, Any]


def limit_range(*items: Obj) -> Obj:
    return {"metadata": {"name": "lr"}, "spec": {"limits": list(items)}}


def pod(*containers: Obj, init: list[Obj] | None = None) -> Obj:
    spec: Obj = {"containers": list(containers)}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": "p"}, "spec": spec}


def c(name: str = "c", requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    res: Obj = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    return {"name": name, "image": "busybox", "resources": res}


def test_defaults_fill_missing_values_and_annotate() -> None:
    ranges = [limit_range({"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                           "defaultRequest": {"cpu": "100m", "memory": "128Mi"}})]
    p = pod(c("a", requests={"cpu": "200m"}), c("b", limits={"memory": "1Gi"}), init=[c("i")])
    assert lr.apply_defaults(p, ranges)
    a, b = p["spec"]["containers"]
    assert a["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert b["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi", "cpu": "500m"}}
    assert p["spec"]["initContainers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert p["metadata"]["annotations"][lr.ANNOTATION] == (
        "LimitRanger plugin set: memory request for container a; cpu, memory limit for container a; "
        "cpu, memory request for container b; cpu limit for container b; "
        "cpu, memory request for init container i; cpu, memory limit for init container i")
    untouched = pod(c("a", requests={"cpu": "1", "memory": "1"}, limits={"cpu": "1", "memory": "1"}))
    before = copy.deepcopy(untouched)
    assert not lr.apply_defaults(untouched, ranges)
    assert untouched == before


@pytest.mark.parametrize("item,p,want", [
    pytest.param({"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}},
                 pod(c(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "2", "memory": "2Gi"})),
                 ["maximum cpu usage per Container is 1, but limit is 2", "maximum memory usage per Container is 1Gi, but limit is 2Gi"],
                 id="max"),
    pytest.param({"type": "Container", "max": {"cpu": "1"}}, pod(c(requests={"cpu": "500m"})),
                 ["maximum cpu usage per Container is 1.  No limit is specified"], id="max-no-limit"),
    pytest.param({"type": "Container", "min": {"memory": "64Mi"}}, pod(c(requests={"memory": "32Mi"}, limits={"memory": "32Mi"})),
                 ["minimum memory usage per Container is 64Mi, but request is 32Mi"], id="min"),
    pytest.param({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}, pod(c(requests={"cpu": "100m"}, limits={"cpu": "500m"})),
                 ["cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000"], id="ratio"),
    pytest.param({"type": "Pod", "max": {"cpu": "1"}},
                 pod(c("a", requests={"cpu": "600m"}, limits={"cpu": "600m"}), c("b", requests={"cpu": "600m"}, limits={"cpu": "600m"})),
                 ["maximum cpu usage per Pod is 1, but limit is 1200m"], id="pod-total"),
    pytest.param({"type": "Container", "max": {"cpu": "1"}}, pod(c(requests={"cpu": "1"}, limits={"cpu": "1"})), [], id="within"),
])
def test_bounds(item: Obj, p: Obj, want: list[str]) -> None:
    assert lr.check_pod(p, limit_range(item)) == want


def test_pvc_bounds() -> None:
    rng = limit_range({"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}})
    small = {"spec": {"resources": {"requests": {"storage": "500Mi"}}}}
    big = {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}
    assert lr.check_pvc(small, rng) == ["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
    assert lr.check_pvc(big, rng) == ["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]


async def test_limit_ranges_through_the_api(api: ApiClient) -> None:
    assert (await api.post("/api/v1/namespaces", {"metadata": {"name": "lr"}}))[0] == 201
    st, doc, _ = await api.post("/api/v1/namespaces/lr/limitranges", {"metadata": {"name": "limits"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "default": {"cpu": "500m", "memory": "256Mi"},
         "defaultRequest": {"cpu": "100m", "memory": "128Mi"}},
        {"type": "PersistentVolumeClaim", "max": {"storage": "5Gi"}}]}})
    assert st == 201, doc
    st, doc, _ = await api.post("/api/v1/namespaces/lr/pods", pod(c()))
    assert st == 201, doc
    assert doc["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                                         "requests": {"cpu": "100m", "memory": "128Mi"}}
    assert "LimitRanger plugin set" in doc["metadata"]["annotations"][lr.ANNOTATION]
    big = {"metadata": {"name": "big"}, "spec": {"containers": [c(limits={"cpu": "2", "memory": "2Gi"})]}}
    st, doc, _ = await api.post("/api/v1/namespaces/lr/pods", big)
    assert (st, doc["reason"]) == (403, "Forbidden")
    assert doc["message"] == ('pods "big" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
                              "maximum memory usage per Container is 1Gi, but limit is 2Gi]")
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}}}
    st, doc, _ = await api.post("/api/v1/namespaces/lr/persistentvolumeclaims", claim)
    assert st == 403 and doc["message"] == ('persistentvolumeclaims "data" is forbidden: '
                                            "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 8Gi")
    # dry-run gets the same answer and stores nothing
    st, doc, _ = await api.post("/api/v1/namespaces/lr/pods?dryRun=All", big)
    assert st == 403
