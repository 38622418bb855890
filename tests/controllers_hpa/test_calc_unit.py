"""The replica calculator (pure), table-driven over upstream's cases and rules."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.controllers.hpa_calc import (
    Config,
    MetricError,
    group_pods,
    pod_requests,
    raw_resource_replicas,
    resource_replicas,
    utilization_ratio,
)

from .builders import NOW, pod, sample

Obj = dict[str, Any]
UNREADY = pod("a", ready="False", started=60, transition=40)     # initializing and not ready


def run(pods: list[Obj], values: dict[str, int], target: int, current: int | None = None,
        resource: str = "cpu", age: float = 0.0, window: float = 30.0, container: str = "") -> tuple[int, int, int]:
    cur = len(pods) if current is None else current
    return resource_replicas(cur, target, resource, pods, sample(values, age=age, window=window).pods, NOW,
                             Config(), container)


@pytest.mark.parametrize(("pods", "values", "target", "want"), [
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 300, "b": 500, "c": 700}, 30, (5, 50, 500),
                 id="scale-up"),
    pytest.param([pod("a"), pod("b"), pod("c"), pod("d"), pod("e")],
                 {"a": 100, "b": 300, "c": 500, "d": 250, "e": 250}, 50, (3, 28, 280), id="scale-down"),
    pytest.param([pod("a"), pod("b")], {"a": 540, "b": 540}, 50, (2, 54, 540), id="within-tolerance"),
    pytest.param([pod("a"), pod("b")], {"a": 550, "b": 560}, 50, (3, 55, 555), id="just-past-tolerance"),
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 300, "b": 500, "c": 700}, 300, (1, 50, 500),
                 id="target-above-100"),
    pytest.param([UNREADY, pod("b"), pod("c")], {"a": 300, "b": 500, "c": 700}, 30, (4, 60, 600),
                 id="scale-up-unready-counts-zero"),
    pytest.param([UNREADY, pod("b"), pod("c")], {"a": 100, "b": 600, "c": 600}, 50, (3, 60, 600),
                 id="scale-up-unready-flips-direction-keeps"),
    pytest.param([UNREADY, pod("b"), pod("c")], {"a": 100, "b": 100, "c": 100}, 50, (1, 10, 100),
                 id="scale-down-drops-unready"),
    pytest.param([pod("a", ready="False"), pod("b"), pod("c")], {"a": 100, "b": 100, "c": 100}, 50, (1, 10, 100),
                 id="long-running-once-ready-pod-counts"),
    pytest.param([pod("a", phase="Pending"), pod("b"), pod("c")], {"b": 1000, "c": 1000}, 50, (4, 100, 1000),
                 id="pending-counts-zero-on-scale-up"),
    pytest.param([pod("a", phase="Failed"), pod("b", deleting=True), pod("c"), pod("d")],
                 {"a": 1000, "b": 1000, "c": 1000, "d": 1000}, 50, (4, 100, 1000), id="failed-and-deleted-ignored"),
    pytest.param([pod("a"), pod("b"), pod("c"), pod("d")], {"a": 400, "b": 400, "c": 400}, 50, (4, 40, 400),
                 id="missing-on-scale-down-counts-full-request"),
    pytest.param([pod("a"), pod("b"), pod("c"), pod("d")], {"a": 1000, "b": 1000, "c": 1000}, 50, (6, 100, 1000),
                 id="missing-on-scale-up-counts-zero"),
    pytest.param([pod("a"), pod("b")], {"a": 1000}, 60, (2, 100, 1000),
                 id="missing-rebalance-flips-direction-keeps"),
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 200, "b": 200}, 300, (2, 20, 200),
                 id="missing-fallback-is-target-when-above-100"),
    pytest.param([pod("a"), pod("b")], {"a": 500, "b": 500, "zombie": 900}, 50, (2, 50, 500),
                 id="extraneous-sample-ignored"),
])
def test_resource_replicas(pods: list[Obj], values: dict[str, int], target: int, want: tuple[int, int, int]) -> None:
    assert run(pods, values, target) == want


def test_extraneous_sample_counts_in_the_rebalanced_length() -> None:
    """As upstream: a sample of a pod not listed has no request (left out of the ratio) but is
    counted in ``len(metrics)`` once missing pods are rebalanced: ceil(1.32 * 4) = 6."""
    pods = [pod("a"), pod("b"), pod("c")]
    assert run(pods, {"a": 1000, "b": 1000, "zombie": 1000}, 50) == (6, 100, 1000)


def test_missing_pod_on_scale_down_can_hold_replicas() -> None:
    """3 pods at 40% of target 50 and one without a sample: 0.8 -> rebalanced 1.1 (within tolerance)."""
    pods = [pod(n, cpu="100m") for n in "abcd"]
    assert run(pods, {"a": 40, "b": 40, "c": 40}, 50) == (4, 40, 40)
    assert run(pods[:3], {"a": 40, "b": 40, "c": 40}, 50) == (3, 40, 40)   # ceil(0.8 * 3) = 3, as before
    assert run(pods[:3], {"a": 30, "b": 30, "c": 30}, 50) == (2, 30, 30)   # without the missing pod
    assert run(pods, {"a": 30, "b": 30, "c": 30}, 50) == (4, 30, 30)       # 0.6 -> rebalanced 0.95: hold


@pytest.mark.parametrize(("p", "age", "window", "unready"), [
    pytest.param(pod("a", started=60, transition=10), 0, 30, True, id="initializing-sample-before-ready+window"),
    pytest.param(pod("a", started=60, transition=40), 0, 30, False, id="initializing-sample-after-ready+window"),
    pytest.param(pod("a", started=60, ready="False", transition=40), 0, 30, True, id="initializing-not-ready"),
    pytest.param(pod("a", started=60, ready="Unknown", transition=40), 0, 30, False, id="initializing-unknown"),
    pytest.param(pod("a", started=600, ready="False", transition=590), 0, 30, True, id="never-became-ready"),
    pytest.param(pod("a", started=600, ready="False", transition=60), 0, 30, False, id="was-ready-once"),
    pytest.param(pod("a", started=600, transition=1), 0, 30, False, id="initialized-ready"),
    pytest.param(pod("a", started=None), 0, 30, True, id="no-start-time"),
    pytest.param(pod("a", ready=None), 0, 30, True, id="no-ready-condition"),
])
def test_cpu_readiness_rules(p: Obj, age: float, window: float, unready: bool) -> None:
    groups = group_pods([p], sample({"a": 100}, age=age, window=window).pods, "cpu", NOW)
    assert (groups.unready == {"a"}) is unready
    assert groups.ready == (0 if unready else 1)


def test_memory_ignores_readiness() -> None:
    p = pod("a", memory="100Mi", ready="False", started=60, transition=10)
    groups = group_pods([p], sample({"a": 1}).pods, "memory", NOW)
    assert (groups.ready, groups.unready) == (1, frozenset())


def test_cpu_initialization_period_is_configurable() -> None:
    p = pod("a", started=60, transition=10)
    assert group_pods([p], sample({"a": 1}).pods, "cpu", NOW).unready == {"a"}
    cfg = Config(cpu_initialization_period=30)
    assert group_pods([p], sample({"a": 1}).pods, "cpu", NOW, cfg).ready == 1


def test_groups() -> None:
    ps = [pod("ready"), pod("pending", phase="Pending"), pod("failed", phase="Failed"),
          pod("gone", deleting=True), pod("nometrics"), pod("unready", ready="False", started=60, transition=40)]
    g = group_pods(ps, sample({"ready": 1, "unready": 1, "failed": 1}).pods, "cpu", NOW)
    assert g.ready == 1
    assert g.unready == {"pending", "unready"}
    assert g.missing == {"nometrics"}
    assert g.ignored == {"failed", "gone"}


def test_requests() -> None:
    sidecar = {"name": "side", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}}
    plain_init = {"name": "init", "image": "x"}
    p = pod("a", containers=[{"name": "app", "resources": {"requests": {"cpu": "1"}}},
                             {"name": "log", "resources": {"requests": {"cpu": "500m"}}}],
            init_containers=[sidecar, plain_init])
    assert pod_requests([p], "cpu") == {"a": 1750}
    assert pod_requests([p], "cpu", "log") == {"a": 500}
    assert pod_requests([p], "cpu", "side") == {"a": 250}
    assert pod_requests([p], "cpu", "other") == {"a": 0}
    with pytest.raises(MetricError, match="^missing request for memory in container app of Pod a$"):
        pod_requests([p], "memory")


def test_container_resource_uses_that_containers_request() -> None:
    p = pod("a", containers=[{"name": "app", "resources": {"requests": {"cpu": "1"}}},
                             {"name": "log", "resources": {"requests": {"cpu": "100m"}}}])
    # 100m of the log container's 100m request: 100% of a 50% target -> 2 replicas
    assert run([p], {"a": 100}, 50, container="log") == (2, 100, 100)


@pytest.mark.parametrize(("pods", "values", "message"), [
    pytest.param([], {"a": 1}, "no pods returned by selector while calculating replica count", id="no-pods"),
    pytest.param([UNREADY], {"a": 1},
                 "did not receive metrics for targeted pods (pods might be unready)", id="only-unready"),
    pytest.param([pod("a")], {}, "did not receive metrics for targeted pods (pods might be unready)",
                 id="no-samples"),
    pytest.param([pod("a", cpu=None, memory="1Gi")], {"a": 5},
                 "missing request for cpu in container app of Pod a", id="no-request"),
    pytest.param([pod("a", cpu="0")], {"a": 5}, "no metrics returned matched known pods", id="zero-requests"),
])
def test_errors(pods: list[Obj], values: dict[str, int], message: str) -> None:
    with pytest.raises(MetricError) as e:
        run(pods, values, 50, current=1)
    assert str(e.value) == message


def test_utilization_is_integer_percent() -> None:
    # 100/300 -> 33 (not 33.3): the ratio is computed from the truncated percent, as upstream
    ratio, pct, raw = utilization_ratio({"a": 100}, {"a": 300}, 50)
    assert (pct, raw) == (33, 100)
    assert ratio == 33 / 50


@pytest.mark.parametrize(("pods", "values", "target", "want"), [
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 300, "b": 500, "c": 700}, 250, (6, 500), id="up"),
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 100, "b": 100, "c": 100}, 300, (1, 100), id="down"),
    pytest.param([pod("a"), pod("b")], {"a": 310, "b": 290}, 300, (2, 300), id="tolerance"),
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 100, "b": 100}, 300, (2, 100),
                 id="missing-counts-target-on-down"),
    pytest.param([pod("a"), pod("b"), pod("c")], {"a": 900, "b": 900}, 300, (6, 900),
                 id="missing-counts-zero-on-up"),
])
def test_average_value(pods: list[Obj], values: dict[str, int], target: int, want: tuple[int, int]) -> None:
    assert raw_resource_replicas(len(pods), target, "cpu", pods, sample(values).pods, NOW) == want
