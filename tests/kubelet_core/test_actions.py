"""compute_pod_actions and the back-off arithmetic (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from kybernetes.kubelet.actions import (
    BACKOFF_MAX,
    FAILURE,
    SUCCESS,
    BackoffEntry,
    PodActions,
    backoff_next,
    backoff_remaining_since,
    backoff_remaining_since_update,
    compute_pod_actions,
    container_backoff_key,
    crash_loop_message,
    gc_backoff,
    go_duration,
)

from .helpers import CREATED, EXITED, RUNNING, T0, UNKNOWN, container, cs, pod, sb, sidecar

NOW = T0 + 1000


def decide(p: dict[str, Any], sandboxes: list[Any], containers: list[Any], *, now: float = NOW,
           backoff: dict[str, BackoffEntry] | None = None,
           probes: dict[tuple[str, str], str] | None = None) -> PodActions:
    return compute_pod_actions(p, sandboxes, containers, now=now, backoff_state=backoff or {},
                               probe_results=probes or {})


def starts(a: PodActions) -> list[tuple[str, int]]:
    return [(s.name, s.attempt) for s in a.containers_to_start]


def init_starts(a: PodActions) -> list[str]:
    return [s.name for s in a.init_to_start]


# -- sandbox -------------------------------------------------------------------------------------------
def test_new_pod_gets_a_sandbox_and_all_containers() -> None:
    a = decide(pod("app", "side"), [], [])
    assert a.create_sandbox and a.attempt == 0 and a.sandbox_id is None
    assert starts(a) == [("app", 0), ("side", 0)]
    assert all(s.kind == "regular" and s.backoff_key is None for s in a.containers_to_start)
    assert a.initialized and not a.containers_to_kill


def test_new_pod_with_init_containers_starts_only_the_first_init() -> None:
    a = decide(pod("app", inits=("one", "two")), [], [])
    assert a.create_sandbox and init_starts(a) == ["one"] and not a.containers_to_start
    assert a.init_to_start[0].kind == "init"


def test_running_pod_is_left_alone() -> None:
    a = decide(pod("app"), [sb()], [cs("app", RUNNING)])
    assert a.idle and not a.kill_pod and a.sandbox_id == "sb1" and a.requeue_after is None


def test_dead_sandbox_is_recreated_with_the_next_attempt() -> None:
    a = decide(pod("app"), [sb(state="notready", attempt=2)], [cs("app", EXITED, attempt=4, exit_code=137)])
    assert a.create_sandbox and a.kill_pod and a.attempt == 3 and a.sandbox_id == "sb1"
    assert starts(a) == [("app", 5)]


def test_two_ready_sandboxes_mean_a_new_one() -> None:
    a = decide(pod("app"), [sb("a", created=T0), sb("b", created=T0 + 5)], [cs("app")])
    assert a.create_sandbox and a.sandbox_id == "b"


def test_never_pod_that_ran_gets_no_new_sandbox() -> None:
    a = decide(pod("app", restart="Never"), [sb(state="notready", attempt=1)], [cs("app", EXITED, exit_code=1)])
    assert not a.create_sandbox and a.kill_pod and not a.containers_to_start


def test_onfailure_pod_that_succeeded_gets_no_new_sandbox() -> None:
    a = decide(pod("app", restart="OnFailure"), [sb(state="notready")], [cs("app", EXITED, exit_code=0)])
    assert not a.create_sandbox and not a.containers_to_start


# -- restart policy --------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy, code, restarted", [
    pytest.param("Always", 0, True, id="always-success"),
    pytest.param("Always", 1, True, id="always-failure"),
    pytest.param("OnFailure", 0, False, id="onfailure-success"),
    pytest.param("OnFailure", 2, True, id="onfailure-failure"),
    pytest.param("Never", 0, False, id="never-success"),
    pytest.param("Never", 1, False, id="never-failure"),
])
def test_restart_policy_of_an_exited_container(policy: str, code: int, restarted: bool) -> None:
    a = decide(pod("app", restart=policy), [sb()], [cs("app", EXITED, exit_code=code, attempt=3)])
    if restarted:
        assert starts(a) == [("app", 4)] and not a.kill_pod
        assert a.containers_to_start[0].backoff_key == container_backoff_key(pod("app"), container("app"))
    else:
        assert not a.containers_to_start and a.kill_pod  # nothing left running: stop the sandbox


def test_a_running_container_keeps_the_pod_alive() -> None:
    a = decide(pod("app", "job", restart="Never"), [sb()], [cs("app"), cs("job", EXITED, exit_code=0)])
    assert a.idle and not a.kill_pod


def test_deleted_pod_restarts_nothing() -> None:
    p = pod("app")
    p["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    a = decide(p, [sb()], [cs("app", EXITED, exit_code=1)])
    assert not a.containers_to_start and a.kill_pod


# -- CrashLoopBackOff ---------------------------------------------------------------------------------------
def test_container_in_backoff_waits_with_the_upstream_message() -> None:
    p = pod("app")
    key = container_backoff_key(p, p["spec"]["containers"][0])
    c = cs("app", EXITED, exit_code=1, attempt=2, finished=NOW - 3)
    a = decide(p, [sb()], [c], backoff={key: BackoffEntry(10.0, NOW - 20)})
    assert not a.containers_to_start and not a.kill_pod
    (w,) = a.backoff
    assert w.name == "app" and w.remaining == pytest.approx(7.0) and a.requeue_after == pytest.approx(7.0)
    assert w.message == "back-off 10s restarting failed container=app pod=web_default(uid-1)"
    assert w.event == "Back-off restarting failed container app in pod web_default(uid-1)"


def test_container_restarts_once_the_backoff_passed() -> None:
    p = pod("app")
    key = container_backoff_key(p, p["spec"]["containers"][0])
    c = cs("app", EXITED, exit_code=1, attempt=2, finished=NOW - 11)
    a = decide(p, [sb()], [c], backoff={key: BackoffEntry(10.0, NOW - 20)})
    assert starts(a) == [("app", 3)] and a.containers_to_start[0].backoff_key == key and not a.backoff


def test_backoff_older_than_ten_minutes_is_forgotten() -> None:
    p = pod("app")
    key = container_backoff_key(p, p["spec"]["containers"][0])
    c = cs("app", EXITED, exit_code=1, finished=NOW - 1)
    a = decide(p, [sb()], [c], backoff={key: BackoffEntry(300.0, NOW - 2 * BACKOFF_MAX - 1)})
    assert starts(a) == [("app", 1)]


def test_changed_container_spec_gets_a_fresh_backoff_key() -> None:
    p1, p2 = pod("app"), pod(container("app", args=["new"]))
    assert container_backoff_key(p1, p1["spec"]["containers"][0]) != container_backoff_key(
        p2, p2["spec"]["containers"][0])


def test_backoff_doubles_to_five_minutes_and_resets() -> None:
    e = None
    delays = []
    t = T0
    for _ in range(8):
        e = backoff_next(e, t)
        delays.append(e.delay)
        t += e.delay + 1
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert backoff_next(e, t + 601).delay == 10  # untouched for 10 minutes: from scratch


def test_backoff_remaining() -> None:
    e = BackoffEntry(20.0, T0)
    assert backoff_remaining_since(e, T0 + 5, T0 + 10) == pytest.approx(15.0)
    assert backoff_remaining_since(e, T0, T0 + 25) == 0.0
    assert backoff_remaining_since(None, T0, T0) == 0.0
    assert backoff_remaining_since_update(e, T0 + 5) == pytest.approx(15.0)
    assert gc_backoff({"a": e, "b": BackoffEntry(10.0, T0 + 700)}, T0 + 701) == {"b": BackoffEntry(10.0, T0 + 700)}


@pytest.mark.parametrize("seconds, text", [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (1.5, "1.5s"),
                                           (3725, "1h2m5s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_crash_loop_message() -> None:
    assert crash_loop_message(pod("x"), "x", 40) == "back-off 40s restarting failed container=x pod=web_default(uid-1)"


# -- probes -----------------------------------------------------------------------------------------------------
def test_liveness_failure_kills_and_restarts() -> None:
    p = pod(container("app", livenessProbe={"exec": {"command": ["false"]}}))
    c = cs("app", RUNNING, attempt=1)
    a = decide(p, [sb()], [c], probes={(c.id, "liveness"): FAILURE})
    (k,) = a.containers_to_kill
    assert k.container_id == c.id and k.reason == "LivenessProbe"
    assert k.message == "Container app failed liveness probe, will be restarted"
    assert starts(a) == [("app", 2)] and a.containers_to_start[0].backoff_key is None


def test_liveness_failure_with_never_kills_without_restart() -> None:
    p = pod(container("app", livenessProbe={"exec": {"command": ["false"]}}), restart="Never")
    c = cs("app", RUNNING)
    a = decide(p, [sb()], [c], probes={(c.id, "liveness"): FAILURE})
    assert a.containers_to_kill[0].message == "Container app failed liveness probe"
    assert not a.containers_to_start and a.kill_pod


def test_startup_failure_kills() -> None:
    p = pod(container("app", startupProbe={"tcpSocket": {"port": 80}}))
    c = cs("app", RUNNING)
    a = decide(p, [sb()], [c], probes={(c.id, "startup"): FAILURE})
    assert a.containers_to_kill[0].message == "Container app failed startup probe, will be restarted"
    assert a.containers_to_kill[0].reason == "StartupProbe"


def test_probe_result_without_a_probe_in_the_spec_is_ignored() -> None:
    c = cs("app", RUNNING)
    assert decide(pod("app"), [sb()], [c], probes={(c.id, "liveness"): FAILURE}).idle


def test_readiness_failure_changes_nothing() -> None:
    p = pod(container("app", readinessProbe={"exec": {"command": ["false"]}}))
    c = cs("app", RUNNING)
    assert decide(p, [sb()], [c], probes={(c.id, "readiness"): FAILURE}).idle


# -- odd container states --------------------------------------------------------------------------------------
def test_created_but_never_started_container_is_replaced() -> None:
    c = cs("app", CREATED, attempt=0)
    a = decide(pod("app"), [sb()], [c])
    assert a.containers_to_remove == (c.id,) and starts(a) == [("app", 1)]


def test_unknown_container_is_killed_before_restart() -> None:
    c = cs("app", UNKNOWN)
    a = decide(pod("app"), [sb()], [c])
    assert a.containers_to_kill[0].container_id == c.id and a.containers_to_kill[0].reason == "Unknown"
    assert starts(a) == [("app", 1)]


def test_restart_count_comes_from_the_api_when_the_runtime_lost_the_containers() -> None:
    st = {"containerStatuses": [{"name": "app", "restartCount": 3, "containerID": "runc://old"}]}
    a = decide(pod("app", status=st), [], [])
    assert starts(a) == [("app", 4)]


# -- init containers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("containers, expected_inits, initialized", [
    pytest.param(lambda: [cs("one", EXITED, exit_code=0)], ["two"], False, id="first-done-next"),
    pytest.param(lambda: [cs("one", RUNNING)], [], False, id="first-running-wait"),
    pytest.param(lambda: [cs("one", EXITED, exit_code=0), cs("two", RUNNING)], [], False, id="second-running"),
    pytest.param(lambda: [cs("one", EXITED, exit_code=1)], ["one"], False, id="failed-restart"),
    pytest.param(lambda: [cs("one", EXITED, exit_code=0), cs("two", EXITED, exit_code=0)], [], True,
                 id="all-done"),
    pytest.param(lambda: [cs("two", EXITED, exit_code=0)], [], True, id="earlier-pruned"),
    pytest.param(lambda: [cs("app", RUNNING)], [], True, id="regular-running-means-initialized"),
])
def test_init_container_progress(containers: Any, expected_inits: list[str], initialized: bool) -> None:
    p = pod("app", inits=("one", "two"))
    a = decide(p, [sb()], containers())
    assert init_starts(a) == expected_inits
    assert a.initialized == initialized
    if initialized and not any(c.name == "app" for c in containers()):
        assert starts(a) == [("app", 0)]


def test_failed_init_container_with_never_kills_the_pod() -> None:
    a = decide(pod("app", inits=("one",), restart="Never"), [sb()], [cs("one", EXITED, exit_code=1)])
    assert a.kill_pod and not a.init_to_start and not a.containers_to_start


def test_failed_init_container_in_backoff_blocks() -> None:
    p = pod("app", inits=("one",))
    key = container_backoff_key(p, p["spec"]["initContainers"][0])
    a = decide(p, [sb()], [cs("one", EXITED, exit_code=1, finished=NOW - 1)],
               backoff={key: BackoffEntry(10.0, NOW - 5)})
    assert not a.init_to_start and a.backoff[0].name == "one" and a.backoff[0].kind == "init"


# -- sidecars -----------------------------------------------------------------------------------------------------------
def test_running_sidecar_lets_the_next_init_container_start() -> None:
    p = pod("app", inits=(sidecar("proxy"), "setup"))
    a = decide(p, [sb()], [cs("proxy", RUNNING)])
    assert init_starts(a) == ["setup"] and not a.initialized


def test_sidecar_waits_for_its_startup_probe() -> None:
    p = pod("app", inits=(sidecar("proxy", startupProbe={"exec": {"command": ["true"]}}),))
    c = cs("proxy", RUNNING)
    assert decide(p, [sb()], [c]).idle
    a = decide(p, [sb()], [c], probes={(c.id, "startup"): SUCCESS})
    assert a.initialized and starts(a) == [("app", 0)]


def test_last_sidecar_started_initializes_the_pod() -> None:
    p = pod("app", inits=("setup", sidecar("proxy")))
    a = decide(p, [sb()], [cs("setup", EXITED, exit_code=0), cs("proxy", RUNNING)])
    assert a.initialized and starts(a) == [("app", 0)] and not a.init_to_start


def test_exited_sidecar_is_restarted_while_the_app_runs() -> None:
    p = pod("app", inits=(sidecar("proxy"),))
    a = decide(p, [sb()], [cs("proxy", EXITED, exit_code=1), cs("app", RUNNING)])
    assert init_starts(a) == ["proxy"] and a.init_to_start[0].kind == "sidecar" and not a.kill_pod


def test_sidecar_does_not_keep_a_finished_pod_alive() -> None:
    p = pod("app", inits=(sidecar("proxy"),), restart="Never")
    a = decide(p, [sb()], [cs("proxy", RUNNING), cs("app", EXITED, exit_code=0)])
    assert a.kill_pod and not a.init_to_start


def test_sidecar_liveness_failure_restarts_it() -> None:
    p = pod("app", inits=(sidecar("proxy", livenessProbe={"exec": {"command": ["false"]}}),))
    side = cs("proxy", RUNNING)
    a = decide(p, [sb()], [side, cs("app", RUNNING)], probes={(side.id, "liveness"): FAILURE})
    assert a.containers_to_kill[0].message == "Init container proxy failed liveness probe"
    assert init_starts(a) == ["proxy"]
