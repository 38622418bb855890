"""Pure cores of the Deployment controller: fenceposts, rolling steps, proportional scaling, hash,
annotations, cleanup, status and conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.controllers.deployment import progress
from kybernetes.controllers.deployment.recreate import old_pods_running, scale_down_old_for_recreate
from kybernetes.controllers.deployment.rolling import plan_rolling
from kybernetes.controllers.deployment.sync import (
    is_scaling_event,
    new_replica_set,
    plan_cleanup,
    plan_scale,
)
from kybernetes.controllers.deployment.util import (
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    compute_hash,
    equal_ignore_hash,
    find_new_replica_set,
    fnv32a,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    resolve_fenceposts,
    safe_encode,
    scaled_value,
    set_new_rs_annotations,
)

Obj = dict[str, Any]
NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v2"}]}}


def ts(ago: float) -> str:
    return (NOW - dt.timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deploy(replicas: int = 10, surge: int | str = "25%", unavailable: int | str = "25%", *,
           strategy: str = "RollingUpdate", status: Obj | None = None, **spec: Any) -> Obj:
    st: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 2},
            "spec": {"replicas": replicas, "strategy": st, "selector": {"matchLabels": {"app": "web"}},
                     "template": TEMPLATE, "progressDeadlineSeconds": 600, **spec},
            "status": status or {}}


def rset(name: str, replicas: int, available: int | None = None, *, ago: float = 100, rev: int = 1,
         max_replicas: int | None = None, desired: int | None = None, actual: int | None = None,
         image: str = "v1") -> Obj:
    ann = {REVISION: str(rev)}
    if max_replicas is not None:
        ann[MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        ann["deployment.kubernetes.io/desired-replicas"] = str(desired)
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": ts(ago), "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas, "template": {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": replicas if actual is None else actual,
                       "availableReplicas": replicas if available is None else available,
                       "readyReplicas": replicas if available is None else available, "observedGeneration": 1}}


@pytest.mark.parametrize("value,total,up,expected", [
    pytest.param(3, 10, True, 3, id="int"),
    pytest.param("25%", 10, True, 3, id="pct-up"),
    pytest.param("25%", 10, False, 2, id="pct-down"),
    pytest.param("50%", 5, True, 3, id="half-up"),
    pytest.param("50%", 5, False, 2, id="half-down"),
    pytest.param("0%", 7, True, 0, id="zero"),
    pytest.param("100%", 3, False, 3, id="all"),
    pytest.param(None, 3, False, 0, id="none"),
])
def test_scaled_value(value: Any, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, up) == expected


def test_scaled_value_rejects_non_percent_strings() -> None:
    with pytest.raises(ValueError):
        scaled_value("abc", 10, True)


@pytest.mark.parametrize("surge,unavail,desired,expected", [
    pytest.param("25%", "25%", 10, (3, 2), id="defaults"),
    pytest.param(0, 0, 10, (0, 1), id="both-zero"),
    pytest.param("10%", "10%", 3, (1, 0), id="rounding"),
    pytest.param("0%", "10%", 3, (0, 1), id="rounds-to-both-zero"),
    pytest.param(2, "50%", 4, (2, 2), id="acceptance"),
])
def test_resolve_fenceposts(surge: Any, unavail: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavail, desired) == expected


def test_max_surge_and_unavailable() -> None:
    assert (max_surge(deploy(10)), max_unavailable(deploy(10))) == (3, 2)
    assert max_unavailable(deploy(2, 0, 5)) == 2            # capped at replicas
    assert max_unavailable(deploy(0)) == 0
    assert (max_surge(deploy(strategy="Recreate")), max_unavailable(deploy(strategy="Recreate"))) == (0, 0)


@pytest.mark.parametrize("d,all_counts,new_count,expected", [
    pytest.param(deploy(10, 3), [10, 0], 0, 3, id="surge-3"),
    pytest.param(deploy(10, 3), [10, 3], 3, 3, id="at-max"),
    pytest.param(deploy(10, 3), [5, 3], 3, 8, id="limited-by-total"),
    pytest.param(deploy(10, 3), [0, 8], 8, 10, id="limited-by-replicas"),
    pytest.param(deploy(10, strategy="Recreate"), [10, 0], 0, 10, id="recreate"),
])
def test_new_rs_new_replicas(d: Obj, all_counts: list[int], new_count: int, expected: int) -> None:
    new = rset("new", new_count)
    rss = [rset("old", all_counts[0]), new]
    assert new_rs_new_replicas(d, rss, new) == expected


@pytest.mark.parametrize("d,old,new,expected", [
    pytest.param(deploy(10, 2, 2), [rset("old", 10)], rset("new", 0, ago=1), {"new": 2}, id="scale-up-new"),
    pytest.param(deploy(10, 2, 2), [rset("old", 10)], rset("new", 12, ago=1), {"new": 10}, id="new-too-big"),
    pytest.param(deploy(10, 2, 2), [rset("old", 10)], rset("new", 2, 0, ago=1), {"old": 8},
                 id="scale-down-old-by-available-margin"),
    pytest.param(deploy(10, 2, 2), [rset("old", 10, 8)], rset("new", 2, 0, ago=1), {"old": 8},
                 id="unhealthy-old-first"),
    pytest.param(deploy(10, 2, 2), [rset("old", 8, 8)], rset("new", 4, 0, ago=1), {}, id="blocked-by-min-available"),
    pytest.param(deploy(10, 2, 2), [rset("old", 8)], rset("new", 4, 4, ago=1), {"old": 4}, id="continue"),
    pytest.param(deploy(4, 2, "50%"), [rset("old", 4)], rset("new", 2, 0, ago=1), {"old": 2}, id="pct-unavailable"),
    pytest.param(deploy(10, 2, 2), [rset("a", 3, ago=300), rset("b", 5, ago=200)], rset("new", 4, 4, ago=1),
                 {"a": 0, "b": 4}, id="oldest-first"),
    pytest.param(deploy(10, 2, 2), [], rset("new", 10, 10), {}, id="done"),
])
def test_plan_rolling(d: Obj, old: list[Obj], new: Obj, expected: dict[str, int]) -> None:
    assert plan_rolling(d, new, old) == expected


def test_plan_rolling_invariants_over_a_whole_rollout() -> None:
    """Simulate instant pods: every step keeps total <= replicas+surge and available >= replicas-unavail."""
    for replicas, surge, unavail in [(10, "25%", "25%"), (4, 2, "50%"), (7, 0, 1), (5, 3, 0), (1, 1, 0)]:
        d = deploy(replicas, surge, unavail)
        s, u = resolve_fenceposts(surge, unavail, replicas)
        old, new = rset("old", replicas, ago=100), rset("new", 0, 0, ago=1)
        for _ in range(100):
            scales = plan_rolling(d, new, [old])
            if not scales:
                break
            if "new" in scales:
                new = rset("new", scales["new"], scales["new"], ago=1)
            if "old" in scales:
                old = rset("old", scales["old"], ago=100)
            assert old["spec"]["replicas"] + new["spec"]["replicas"] <= replicas + s
            assert old["spec"]["replicas"] + new["status"]["availableReplicas"] >= replicas - u
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, replicas)


def test_proportional_scale_up_and_down() -> None:
    # before: 10 replicas, surge 3 -> 13 pods spread 8 (old) / 5 (new); scaled to 20 (surge 5)
    d = deploy(20, "25%", "25%", status={"replicas": 13})
    old, new = rset("old", 8, ago=100, max_replicas=13), rset("new", 5, ago=1, max_replicas=13)
    assert plan_scale(d, new, [old]) == {"old": 15, "new": 10}
    d = deploy(10, "25%", "25%", status={"replicas": 25})
    old, new = rset("old", 15, ago=100, max_replicas=25), rset("new", 10, ago=1, max_replicas=25)
    assert plan_scale(d, new, [old]) == {"old": 8, "new": 5}


def test_plan_scale_single_active_and_saturated() -> None:
    assert plan_scale(deploy(10), rset("new", 3, ago=1), [rset("old", 0)]) == {"new": 10}
    assert plan_scale(deploy(3), rset("new", 3, ago=1), []) == {}
    saturated = rset("new", 10, 10, ago=1, desired=10)
    assert plan_scale(deploy(10), saturated, [rset("old", 2)]) == {"old": 0}


def test_is_scaling_event() -> None:
    assert is_scaling_event(deploy(10), rset("new", 3, desired=3), [])
    assert not is_scaling_event(deploy(3), rset("new", 3, desired=3), [rset("old", 0, desired=1)])


def test_hash() -> None:
    assert fnv32a(b"") == 0x811C9DC5 and fnv32a(b"a") == 0xE40C292C
    assert safe_encode("123") == "567"
    h = compute_hash(TEMPLATE)
    assert h == compute_hash({"spec": TEMPLATE["spec"], "metadata": TEMPLATE["metadata"]})   # key order
    assert h != compute_hash(TEMPLATE, 1) and compute_hash(TEMPLATE, 1) != compute_hash(TEMPLATE, 2)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10


def test_new_replica_set_and_find() -> None:
    d = deploy(10, 3, 2, status={"collisionCount": 0})
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", REVISION: "1",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    rs = new_replica_set(d, [rset("old", 10)], 2)
    h = rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    assert h == compute_hash(TEMPLATE, 0) and rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["replicas"] == 3 and rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    assert rs["metadata"]["annotations"] == {"kubernetes.io/change-cause": "v2", REVISION: "2",
                                             "deployment.kubernetes.io/desired-replicas": "10",
                                             MAX_REPLICAS: "13"}
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert equal_ignore_hash(rs["spec"]["template"], d["spec"]["template"])
    rs["metadata"]["creationTimestamp"] = ts(1)
    assert find_new_replica_set(d, [rset("old", 10), rs]) is rs


def test_revision_bump_keeps_history() -> None:
    rs = rset("old", 0, rev=1)
    rs["metadata"]["annotations"][REVISION_HISTORY] = "0"
    assert set_new_rs_annotations(deploy(), rs, 4, exists=True)
    assert rs["metadata"]["annotations"][REVISION] == "4"
    assert rs["metadata"]["annotations"][REVISION_HISTORY] == "0,1"
    assert not set_new_rs_annotations(deploy(), rs, 4, exists=True)


def test_plan_cleanup() -> None:
    old = [rset("r1", 0, rev=1), rset("r2", 0, rev=2), rset("r3", 1, rev=3), rset("r4", 0, rev=4)]
    assert [r["metadata"]["name"] for r in plan_cleanup(deploy(revisionHistoryLimit=1), old)] == ["r1", "r2"]
    assert plan_cleanup(deploy(revisionHistoryLimit=10), old) == []


def test_recreate_helpers() -> None:
    assert scale_down_old_for_recreate([rset("a", 2), rset("b", 0)]) == {"a": 0}
    new = rset("new", 0)
    assert old_pods_running(new, [rset("a", 0, actual=1)], {})
    running = {"uid-a": [{"status": {"phase": "Running"}}]}
    assert old_pods_running(new, [rset("a", 0, actual=0)], running)
    done = {"uid-a": [{"status": {"phase": "Succeeded"}}], "uid-new": [{"status": {"phase": "Running"}}]}
    assert not old_pods_running(new, [rset("a", 0, actual=0)], done)


def test_status_and_conditions() -> None:
    d = deploy(3, 1, 1)
    new = rset("new", 3, 3)
    st = progress.rollout_status(d, [new], new, NOW)
    assert (st["replicas"], st["updatedReplicas"], st["availableReplicas"], st["observedGeneration"]) == (3, 3, 3, 2)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Progressing"]["message"] == 'ReplicaSet "new" has successfully progressed.'
    assert progress.requeue_after(d, st, NOW) is None
    # stuck: condition last updated 700 s ago, deadline 600 s -> timed out
    stuck_status = {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 0, "observedGeneration": 2,
                    "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                    "lastUpdateTime": ts(700), "lastTransitionTime": ts(700)}]}
    d = deploy(3, 1, 1, status=stuck_status)
    new, old = rset("new", 1, 0, ago=1), rset("old", 2, 0)
    st = progress.rollout_status(d, [old, new], new, NOW)
    prog = {c["type"]: c for c in st["conditions"]}["Progressing"]
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert {c["type"]: c for c in st["conditions"]}["Available"]["status"] == "False"
    # not yet stuck: requeue right after the deadline
    stuck_status["conditions"][0]["lastUpdateTime"] = ts(100)
    st = progress.rollout_status(deploy(3, 1, 1, status=stuck_status), [old, new], new, NOW)
    assert progress.requeue_after(deploy(3, 1, 1, status=stuck_status), st, NOW) == pytest.approx(500.1)


def test_paused_condition() -> None:
    d = deploy(3, paused=True)
    st = progress.paused_condition_status(d, NOW)
    assert st is not None and st["conditions"][0]["reason"] == "DeploymentPaused"
    d = deploy(3, status=st)
    st2 = progress.paused_condition_status(d, NOW)
    assert st2 is not None and st2["conditions"][0]["reason"] == "DeploymentResumed"
    assert progress.paused_condition_status(deploy(3, status=st2), NOW) is None


def test_template_with_null_creation_timestamp_matches_and_hashes_the_same() -> None:
    from kybernetes.controllers.deployment import util

    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    undone = {"metadata": {"creationTimestamp": None, "labels": {"app": "web", util.POD_TEMPLATE_HASH: "x"}},
              "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert util.equal_ignore_hash(t, undone)
    assert util.compute_hash(t) == util.compute_hash(util.template_without_hash(undone))
