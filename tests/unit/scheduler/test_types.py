from __future__ import annotations

import pytest

from kybernetes.scheduler.framework.types import (
    NodeInfo,
    PodInfo,
    Resource,
    compute_pod_requests,
    default_normalize_score,
    tolerates,
)
from tests.builders import make_node, make_pod

MI = 1024 * 1024


def c(cpu: str | None = None, mem: str | None = None, restart: str | None = None) -> dict:
    reqs = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    out: dict = {"name": "x", "resources": {"requests": reqs}}
    if restart:
        out["restartPolicy"] = restart
    return out


@pytest.mark.parametrize("containers,init,overhead,want,nz", [
    pytest.param([c("1", "1Gi")], None, None, (1000, 1024 * MI), (1000, 1024 * MI), id="one"),
    pytest.param([c("500m"), c("250m", "1Mi")], None, None, (750, MI), (750, 201 * MI), id="sum+nonzero-mem"),
    pytest.param([{"name": "x"}], None, None, (0, 0), (100, 200 * MI), id="best-effort-nonzero"),
    pytest.param([c("1")], [c("3")], None, (3000, 0), (3000, 200 * MI), id="init-max"),
    pytest.param([c("1")], [c("500m")], None, (1000, 0), (1000, 200 * MI), id="init-smaller"),
    pytest.param([c("1")], [c("1", restart="Always"), c("2500m")], None, (3500, 0),
                 (3500, 400 * MI), id="sidecar-adds-and-raises-init"),
    pytest.param([c("1")], None, {"cpu": "250m", "memory": "10Mi"}, (1250, 10 * MI),
                 (1250, 210 * MI), id="overhead"),
    pytest.param([c("0", "0")], None, None, (0, 0), (0, 0), id="explicit-zero-stays-zero"),
])
def test_compute_pod_requests(containers, init, overhead, want, nz) -> None:
    pod = make_pod(containers=containers, init_containers=init, overhead=overhead)
    r, nz_cpu, nz_mem = compute_pod_requests(pod)
    assert (r.milli_cpu, r.memory) == want
    assert (nz_cpu, nz_mem) == nz


def test_extended_resources_and_storage() -> None:
    pod = make_pod(requests={"nvidia.com/gpu": "2", "ephemeral-storage": "1Gi"})
    r, _, _ = compute_pod_requests(pod)
    assert r.scalar == {"nvidia.com/gpu": 2} and r.ephemeral_storage == 1024 * MI


@pytest.mark.parametrize("tol,taint,want", [
    pytest.param({"key": "a", "value": "b", "effect": "NoSchedule"},
                 {"key": "a", "value": "b", "effect": "NoSchedule"}, True, id="exact"),
    pytest.param({"key": "a", "value": "c"}, {"key": "a", "value": "b", "effect": "NoSchedule"},
                 False, id="value-differs"),
    pytest.param({"key": "a", "operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoExecute"},
                 True, id="exists-any-effect"),
    pytest.param({"operator": "Exists"}, {"key": "z", "effect": "NoSchedule"}, True, id="wildcard"),
    pytest.param({"key": "a", "operator": "Exists", "effect": "NoExecute"},
                 {"key": "a", "effect": "NoSchedule"}, False, id="effect-differs"),
    pytest.param({"key": "a"}, {"key": "a", "effect": "NoSchedule"}, True, id="equal-empty-value"),
    pytest.param({"key": "a", "operator": "Bogus"}, {"key": "a", "effect": "NoSchedule"}, False, id="bad-op"),
])
def test_tolerates(tol, taint, want) -> None:
    assert tolerates(tol, taint) is want


def test_node_info_add_remove_is_incremental() -> None:
    ni = NodeInfo(make_node("n1"))
    a = make_pod("a", node="n1", requests={"cpu": "1", "memory": "1Gi"}, host_ports=[80])
    b = make_pod("b", node="n1", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"x": "y"}}, "topologyKey": "zone"}]}})
    g0 = ni.generation
    ni.add_pod(a)
    ni.add_pod(b)
    assert ni.generation > g0
    assert ni.requested == Resource(1000, 1024 * MI)
    assert ni.non_zero_requested.milli_cpu == 1100
    assert ni.used_ports == {("0.0.0.0", "TCP", 80): 1}
    assert [p.name for p in ni.pods_with_required_anti_affinity] == ["b"]
    clone = ni.clone()
    assert ni.remove_pod(PodInfo(a).key) is not None
    assert ni.requested == Resource() and ni.used_ports == {}
    assert ni.remove_pod("missing") is None
    assert clone.requested == Resource(1000, 1024 * MI)  # the clone is independent
    ni.remove_pod(PodInfo(b).key)
    assert ni.pods_with_affinity == [] and ni.non_zero_requested == Resource()


def test_allocatable_parsed() -> None:
    ni = NodeInfo(make_node("n", cpu="3500m", memory="2Gi", pods=7))
    assert (ni.allocatable.milli_cpu, ni.allocatable.memory, ni.allocatable.allowed_pods) == (
        3500, 2048 * MI, 7)


@pytest.mark.parametrize("scores,reverse,want", [
    pytest.param([0, 5, 10], False, [0, 50, 100], id="scale"),
    pytest.param([0, 5, 10], True, [100, 50, 0], id="reverse"),
    pytest.param([0, 0], True, [100, 100], id="all-zero-reverse"),
    pytest.param([0, 0], False, [0, 0], id="all-zero"),
])
def test_default_normalize(scores, reverse, want) -> None:
    default_normalize_score(100, reverse, scores)
    assert scores == want
