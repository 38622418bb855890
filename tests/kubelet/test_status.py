"""Pure fake-pod status and decisions: table-driven, no loop, no sockets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.kubelet.status import (
    FAKE_DURATION_ANNOTATION,
    FAKE_EXIT_CODE_ANNOTATION,
    FakePodAction,
    FakeRun,
    IPPool,
    PoolExhausted,
    compute_fake_pod_action,
    compute_fake_pod_status,
    compute_timeline,
    fake_run_for,
    go_duration,
    image_id,
    next_whole_second,
    normalize_image,
    parse_duration,
    qos_class,
    restart_delay,
)
from tests.builders import make_pod

T0 = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
HOST, POD_IP = "10.96.0.2", "10.128.1.2"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def fake_pod(restart: str = "Always", annotations: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    p = make_pod("p", node="sim-1", uid="u-1", restartPolicy=restart, **kw)
    p["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    if annotations:
        p["metadata"]["annotations"] = annotations
    return p


def status_at(pod: dict[str, Any], seconds: float) -> tuple[dict[str, Any], float | None]:
    return compute_fake_pod_status(pod, started=T0, now=at(seconds), host_ip=HOST, pod_ip=POD_IP)


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}


@pytest.mark.parametrize(("text", "seconds"), [
    pytest.param("1s", 1.0, id="seconds"), pytest.param("1.5s", 1.5, id="fraction"),
    pytest.param("2m", 120.0, id="minutes"), pytest.param("1h30m", 5400.0, id="compound"),
    pytest.param("500ms", 0.5, id="millis"), pytest.param("3", 3.0, id="bare-number"),
    pytest.param("", None, id="empty"), pytest.param(None, None, id="absent"),
    pytest.param("soon", None, id="garbage"), pytest.param("5x", None, id="bad-unit"),
    pytest.param("-1", None, id="negative"), pytest.param("1s junk", None, id="trailing"),
])
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("restart", "annotations", "want"), [
    pytest.param("Always", {}, FakeRun("Always", 1.0, 0), id="service-pod"),
    pytest.param("Never", {}, FakeRun("Never", 1.0, 0), id="job-default"),
    pytest.param("Never", {FAKE_DURATION_ANNOTATION: "30s", FAKE_EXIT_CODE_ANNOTATION: "3"},
                 FakeRun("Never", 30.0, 3), id="job-annotated"),
    pytest.param("OnFailure", {FAKE_EXIT_CODE_ANNOTATION: "x"}, FakeRun("OnFailure", 1.0, 0), id="bad-exit-code"),
])
def test_fake_run_for(restart: str, annotations: dict[str, str], want: FakeRun) -> None:
    assert fake_run_for(fake_pod(restart, annotations)) == want


@pytest.mark.parametrize(("run", "elapsed", "state", "restarts", "next_change"), [
    pytest.param(FakeRun("Always"), 1e6, "running", 0, None, id="always-runs-forever"),
    pytest.param(FakeRun("Never", 2.0), 1.5, "running", 0, 2.0, id="job-running"),
    pytest.param(FakeRun("Never", 2.0), 2.0, "done", 0, None, id="job-done"),
    pytest.param(FakeRun("Never", 2.0, 1), 9.0, "done", 0, None, id="job-failed-no-restart"),
    pytest.param(FakeRun("OnFailure", 2.0, 0), 3.0, "done", 0, None, id="onfailure-success"),
    pytest.param(FakeRun("OnFailure", 1.0, 1), 0.5, "running", 0, 1.0, id="crash-first-run"),
    pytest.param(FakeRun("OnFailure", 1.0, 1), 1.5, "running", 1, 2.0, id="crash-immediate-restart"),
    pytest.param(FakeRun("OnFailure", 1.0, 1), 2.5, "backoff", 1, 12.0, id="crash-backoff-10s"),
    pytest.param(FakeRun("OnFailure", 1.0, 1), 12.5, "running", 2, 13.0, id="crash-second-restart"),
    pytest.param(FakeRun("OnFailure", 1.0, 1), 14.0, "backoff", 2, 33.0, id="crash-backoff-20s"),
])
def test_compute_timeline(run: FakeRun, elapsed: float, state: str, restarts: int,
                          next_change: float | None) -> None:
    tl = compute_timeline(run, elapsed)
    assert (tl.state, tl.restarts, tl.next_change) == (state, restarts, next_change)


def _slow_timeline(run: FakeRun, elapsed: float) -> tuple[str, int]:
    start, k = 0.0, 0
    while True:
        if elapsed < start + run.duration:
            return "running", k
        nxt = start + run.duration + restart_delay(k)
        if elapsed < nxt:
            return "backoff", k
        start, k = nxt, k + 1


@pytest.mark.parametrize("elapsed", [0.0, 100.0, 1000.0, 2345.6, 7200.0, 86_400.0])
def test_crash_loop_jump_ahead_matches_step_by_step(elapsed: float) -> None:
    run = FakeRun("OnFailure", 2.0, 1)
    tl = compute_timeline(run, elapsed)
    assert (tl.state, tl.restarts) == _slow_timeline(run, elapsed)
    assert restart_delay(50) == 300.0


def test_running_pod_status_is_complete() -> None:
    st, wait = status_at(fake_pod(), 5)
    assert wait is None
    assert st["phase"] == "Running" and st["startTime"] == "2025-01-01T12:00:00Z"
    assert (st["hostIP"], st["podIP"], st["podIPs"]) == (HOST, POD_IP, [{"ip": POD_IP}])
    assert conds(st) == {"PodReadyToStartContainers": ("True", None), "Initialized": ("True", None),
                         "Ready": ("True", None), "ContainersReady": ("True", None),
                         "PodScheduled": ("True", None)}
    (c,) = st["containerStatuses"]
    assert c["state"] == {"running": {"startedAt": "2025-01-01T12:00:00Z"}}
    assert c["ready"] and c["started"] and c["restartCount"] == 0 and c["lastState"] == {}
    assert c["containerID"].startswith("fake://") and c["imageID"].startswith("docker.io/library/busybox@sha256:")


@pytest.mark.parametrize(("code", "phase", "reason", "ready_reason", "init_reason"), [
    pytest.param(0, "Succeeded", "Completed", "PodCompleted", "PodCompleted", id="succeeded"),
    pytest.param(3, "Failed", "Error", "PodFailed", None, id="failed"),
])
def test_finished_job_pod(code: int, phase: str, reason: str, ready_reason: str, init_reason: str | None) -> None:
    pod = fake_pod("Never", {FAKE_EXIT_CODE_ANNOTATION: str(code), FAKE_DURATION_ANNOTATION: "2s"})
    running, wait = status_at(pod, 0.5)
    assert running["phase"] == "Running" and wait == 1.5
    st, wait = status_at(pod, 2.0)
    assert st["phase"] == phase and wait is None
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (code, reason)
    assert (term["startedAt"], term["finishedAt"]) == ("2025-01-01T12:00:00Z", "2025-01-01T12:00:02Z")
    c = conds(st)
    assert c["Ready"] == ("False", ready_reason) and c["ContainersReady"] == ("False", ready_reason)
    assert c["Initialized"] == ("True", init_reason) and c["PodReadyToStartContainers"] == ("False", None)


def test_crash_loop_status() -> None:
    pod = fake_pod("OnFailure", {FAKE_EXIT_CODE_ANNOTATION: "1"})
    st, wait = status_at(pod, 2.5)   # run 0 failed at 1 s, run 1 failed at 2 s, back-off 10 s
    assert st["phase"] == "Running" and wait == pytest.approx(9.5)
    (c,) = st["containerStatuses"]
    assert c["restartCount"] == 1 and c["ready"] is False
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert c["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=c pod=p_default(u-1)")
    assert c["lastState"]["terminated"]["exitCode"] == 1
    assert c["lastState"]["terminated"]["containerID"] == c["containerID"]
    assert conds(st)["Ready"] == ("False", "ContainersNotReady")
    assert "containers with unready status: [c]" in next(x["message"] for x in st["conditions"] if x["type"] == "Ready")
    again, _ = status_at(pod, 12.5)  # restarted
    (c2,) = again["containerStatuses"]
    assert c2["ready"] and c2["restartCount"] == 2 and c2["lastState"]["terminated"]["finishedAt"] == "2025-01-01T12:00:02Z"


def test_containers_sorted_init_and_sidecar_statuses() -> None:
    pod = fake_pod(containers=[{"name": "z", "image": "nginx"}, {"name": "a", "image": "redis:7"}],
                   init_containers=[{"name": "setup", "image": "busybox"},
                                    {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}])
    st, _ = status_at(pod, 1)
    assert [c["name"] for c in st["containerStatuses"]] == ["a", "z"]
    setup, proxy = st["initContainerStatuses"]
    assert setup["state"]["terminated"]["reason"] == "Completed" and setup["ready"]
    assert "running" in proxy["state"] and proxy["ready"]
    assert conds(st)["Ready"] == ("True", None)


def test_readiness_gates_and_foreign_conditions_are_respected() -> None:
    pod = fake_pod(readinessGates=[{"conditionType": "example.com/lb"}])
    pod["status"]["conditions"] = [{"type": "example.com/lb", "status": "False"},
                                   {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-12-31T00:00:00Z"}]
    st, _ = status_at(pod, 1)
    c = {x["type"]: x for x in st["conditions"]}
    assert c["Ready"]["reason"] == "ReadinessGatesNotReady" and c["ContainersReady"]["status"] == "True"
    assert c["example.com/lb"]["status"] == "False"
    assert c["PodScheduled"]["lastTransitionTime"] == "2024-12-31T00:00:00Z"


def test_status_is_a_function_of_start_so_readoption_writes_nothing() -> None:
    pod = fake_pod()
    first, _ = status_at(pod, 0.2)
    pod["status"] = first
    action = compute_fake_pod_action(pod, started=T0, now=at(3600), host_ip=HOST, pod_ip=POD_IP)
    assert action.status is None and not action.delete


@pytest.mark.parametrize(("grace", "deleting_for", "delete", "requeue"), [
    pytest.param(30, 0.0, False, 0.2, id="long-grace-short-stop"),
    pytest.param(30, 0.25, True, None, id="stop-time-passed"),
    pytest.param(0.1, 0.0, False, 0.1, id="grace-shorter-than-stop"),
    pytest.param(0, 0.0, True, None, id="no-grace"),
])
def test_deletion_decision(grace: float, deleting_for: float, delete: bool, requeue: float | None) -> None:
    pod = fake_pod()
    pod["metadata"].update(deletionTimestamp="2025-01-01T12:00:30Z", deletionGracePeriodSeconds=grace)
    action = compute_fake_pod_action(pod, started=T0, now=at(1), host_ip=HOST, pod_ip=POD_IP,
                                     deleting_for=deleting_for, stop_seconds=0.2)
    assert action.delete is delete and action.status is None
    assert action.requeue_after == (pytest.approx(requeue) if requeue is not None else None)


@pytest.mark.parametrize(("pod", "want_patch", "requeue"), [
    pytest.param(fake_pod(), True, None, id="new-service-pod"),
    pytest.param(fake_pod("Never"), True, 1.0, id="new-job-pod-requeues-at-finish"),
])
def test_first_sight_writes_status(pod: dict[str, Any], want_patch: bool, requeue: float | None) -> None:
    action = compute_fake_pod_action(pod, started=T0, now=T0, host_ip=HOST, pod_ip=POD_IP)
    assert (action.status is not None) is want_patch and action.requeue_after == requeue


def test_terminal_pod_is_left_alone() -> None:
    pod = fake_pod("Never")
    pod["status"] = {"phase": "Succeeded"}
    action = compute_fake_pod_action(pod, started=T0, now=at(100), host_ip=HOST, pod_ip=POD_IP)
    assert action == FakePodAction()


@pytest.mark.parametrize(("image", "normalized"), [
    pytest.param("busybox", "docker.io/library/busybox:latest", id="bare"),
    pytest.param("nginx:1.27", "docker.io/library/nginx:1.27", id="tag"),
    pytest.param("bitnami/redis", "docker.io/bitnami/redis:latest", id="org"),
    pytest.param("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", id="registry"),
    pytest.param("localhost:5000/app", "localhost:5000/app:latest", id="registry-port"),
    pytest.param("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc", id="digest"),
])
def test_normalize_image(image: str, normalized: str) -> None:
    assert normalize_image(image) == normalized


@pytest.mark.parametrize(("image", "prefix"), [
    pytest.param("nginx:1.27", "docker.io/library/nginx@sha256:", id="tagged"),
    pytest.param("localhost:5000/app", "localhost:5000/app@sha256:", id="registry-port"),
])
def test_image_id(image: str, prefix: str) -> None:
    assert image_id(image).startswith(prefix) and len(image_id(image)) == len(prefix) + 64
    assert image_id(image) != image_id("other")


@pytest.mark.parametrize(("resources", "qos"), [
    pytest.param(None, "BestEffort", id="none"),
    pytest.param({"requests": {"cpu": "1"}}, "Burstable", id="requests-only"),
    pytest.param({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed", id="limits-imply-requests"),
    pytest.param({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                 "Burstable", id="unequal"),
])
def test_qos_class(resources: dict[str, Any] | None, qos: str) -> None:
    c: dict[str, Any] = {"name": "c", "image": "x"}
    if resources:
        c["resources"] = resources
    assert qos_class(make_pod(containers=[c])) == qos


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (3725, "1h2m5s")])
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text


def test_ip_pool_allocates_reserves_and_releases() -> None:
    pool = IPPool("10.128.1.0/29")  # hosts .1-.6; .1 and .6 are left out
    a, b = pool.allocate("a"), pool.allocate("b")
    assert (a, b) == ("10.128.1.2", "10.128.1.3") and pool.allocate("a") == a
    assert pool.reserve("c", "10.128.1.5") and not pool.reserve("d", "10.128.1.5")
    assert not pool.reserve("e", "192.168.0.1")
    assert pool.allocate("f") == "10.128.1.4"
    with pytest.raises(PoolExhausted):
        pool.allocate("g")
    pool.release("a")
    assert pool.allocate("g") == a and len(pool) == 4


@pytest.mark.parametrize(("t", "want"), [
    pytest.param(T0, T0, id="already-whole"),
    pytest.param(T0 + dt.timedelta(microseconds=1), at(1), id="just-after"),
    pytest.param(T0 + dt.timedelta(seconds=2.999), at(3), id="just-before"),
])
def test_next_whole_second(t: dt.datetime, want: dt.datetime) -> None:
    assert next_whole_second(t) == want
