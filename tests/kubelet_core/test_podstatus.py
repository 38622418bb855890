"""compute_pod_status: phases, container states, conditions (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.kubelet.podstatus import (
    active_deadline_remaining,
    compute_pod_status,
    get_phase,
    status_changed,
    status_patch,
)

from .helpers import EXITED, RUNNING, T0, container, cs, pod, sb, sidecar

NOW = dt.datetime.fromtimestamp(T0 + 1000, dt.UTC)
NOW_S = "2023-11-14T22:30:00Z"
T0_S = "2023-11-14T22:13:20Z"


def status(p: dict[str, Any], sandboxes: list[Any], containers: list[Any], **kw: Any) -> dict[str, Any]:
    return compute_pod_status(p, sandboxes=sandboxes, containers=containers, now=NOW, host_ip="192.0.2.10",
                              runtime_name="runc", **kw)


def conds(st: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", "")) for c in st["conditions"]}


def cstatus(st: dict[str, Any], name: str) -> dict[str, Any]:
    for key in ("containerStatuses", "initContainerStatuses"):
        for c in st.get(key) or ():
            if c["name"] == name:
                return c
    raise KeyError(name)


def test_times_used_in_these_tests() -> None:
    assert NOW.strftime("%Y-%m-%dT%H:%M:%SZ") == NOW_S
    assert dt.datetime.fromtimestamp(T0, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == T0_S


def test_new_pod_is_pending_with_container_creating() -> None:
    st = status(pod("app"), [], [])
    assert st["phase"] == "Pending" and st["startTime"] == NOW_S and st["qosClass"] == "BestEffort"
    assert st["hostIP"] == "192.0.2.10" and st["hostIPs"] == [{"ip": "192.0.2.10"}] and "podIP" not in st
    assert st["containerStatuses"] == [{
        "name": "app", "image": "busybox:app", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {}, "restartCount": 0, "started": False, "ready": False}]
    assert [c["type"] for c in st["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                     "ContainersReady", "PodScheduled"]
    c = conds(st)
    assert c["PodReadyToStartContainers"] == ("False", "", "")
    assert c["Initialized"] == ("True", "", "")
    assert c["Ready"] == ("False", "ContainersNotReady", "containers with unready status: [app]")
    assert c["ContainersReady"] == c["Ready"] and c["PodScheduled"] == ("True", "", "")
    assert all(x["lastTransitionTime"] == NOW_S for x in st["conditions"])


def test_init_containers_make_everything_pod_initializing() -> None:
    st = status(pod("app", inits=("one", "two")), [sb()], [cs("one", RUNNING)])
    assert st["phase"] == "Pending"
    assert cstatus(st, "app")["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert cstatus(st, "two")["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert "running" in cstatus(st, "one")["state"]
    assert [s["name"] for s in st["initContainerStatuses"]] == ["one", "two"]
    assert conds(st)["Initialized"] == ("False", "ContainersNotInitialized",
                                        "containers with incomplete status: [one two]")


def test_running_pod() -> None:
    c = cs("app", RUNNING, id="abc", started=T0, image="busybox", image_id="docker.io/library/busybox@sha256:1")
    st = status(pod("app"), [sb()], [c])
    assert st["phase"] == "Running" and st["podIP"] == "10.0.0.7" and st["podIPs"] == [{"ip": "10.0.0.7"}]
    got = cstatus(st, "app")
    assert got == {"name": "app", "image": "docker.io/library/busybox:latest",
                   "imageID": "docker.io/library/busybox@sha256:1", "containerID": "runc://abc",
                   "state": {"running": {"startedAt": T0_S}}, "lastState": {}, "restartCount": 0,
                   "started": True, "ready": True}
    assert all(x[0] == "True" for x in conds(st).values())


def test_volume_mounts_are_reported_for_created_containers() -> None:
    p = pod(container("app", volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                                           {"name": "data", "mountPath": "/data"}]))
    st = status(p, [sb()], [cs("app", RUNNING)])
    assert cstatus(st, "app")["volumeMounts"] == [
        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True, "recursiveReadOnly": "Disabled"},
        {"name": "data", "mountPath": "/data"}]


@pytest.mark.parametrize("probes, ready", [
    pytest.param({}, False, id="no-result-yet"),
    pytest.param({("c1", "readiness"): "Failure"}, False, id="failed"),
    pytest.param({("c1", "readiness"): "Success"}, True, id="passed"),
])
def test_readiness_probe(probes: dict[Any, str], ready: bool) -> None:
    p = pod(container("app", readinessProbe={"httpGet": {"port": 80}}))
    st = status(p, [sb()], [cs("app", RUNNING, id="c1")], probe_results=probes)
    assert st["phase"] == "Running" and cstatus(st, "app")["ready"] is ready
    assert cstatus(st, "app")["started"] is True
    assert conds(st)["Ready"][0] == ("True" if ready else "False")


def test_startup_probe_gates_started_and_ready() -> None:
    p = pod(container("app", startupProbe={"tcpSocket": {"port": 80}}))
    st = status(p, [sb()], [cs("app", RUNNING, id="c1")])
    assert cstatus(st, "app")["started"] is False and cstatus(st, "app")["ready"] is False
    st = status(p, [sb()], [cs("app", RUNNING, id="c1")], probe_results={("c1", "startup"): "Success"})
    assert cstatus(st, "app")["started"] is True and cstatus(st, "app")["ready"] is True


def test_crash_loop_back_off() -> None:
    older = cs("app", EXITED, attempt=1, exit_code=1, id="a1", started=T0, finished=T0 + 2)
    newest = cs("app", EXITED, attempt=2, exit_code=3, id="a2", started=T0 + 20, finished=T0 + 25)
    msg = "back-off 20s restarting failed container=app pod=web_default(uid-1)"
    st = status(pod("app"), [sb()], [older, newest], start_failures={"app": ("CrashLoopBackOff", msg)})
    got = cstatus(st, "app")
    assert got["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
    assert got["lastState"] == {"terminated": {
        "exitCode": 3, "reason": "Error", "startedAt": "2023-11-14T22:13:40Z",
        "finishedAt": "2023-11-14T22:13:45Z", "containerID": "runc://a2"}}
    assert got["restartCount"] == 2 and got["containerID"] == "runc://a2" and not got["ready"]
    assert st["phase"] == "Running"


def test_previous_instance_is_the_last_state() -> None:
    old = cs("app", EXITED, attempt=0, exit_code=137, id="a0", reason="OOMKilled")
    new = cs("app", RUNNING, attempt=1, id="a1")
    got = cstatus(status(pod("app"), [sb()], [old, new]), "app")
    assert "running" in got["state"] and got["restartCount"] == 1
    assert got["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert got["lastState"]["terminated"]["exitCode"] == 137


@pytest.mark.parametrize("policy, code, phase", [
    pytest.param("Never", 0, "Succeeded", id="never-ok"),
    pytest.param("Never", 1, "Failed", id="never-fail"),
    pytest.param("OnFailure", 0, "Succeeded", id="onfailure-ok"),
    pytest.param("OnFailure", 1, "Running", id="onfailure-fail-restarting"),
    pytest.param("Always", 0, "Running", id="always-restarting"),
])
def test_phase_after_exit(policy: str, code: int, phase: str) -> None:
    st = status(pod("app", restart=policy), [sb()], [cs("app", EXITED, exit_code=code)])
    assert st["phase"] == phase
    if phase == "Succeeded":
        c = conds(st)
        assert c["Ready"] == ("False", "PodCompleted", "") and c["ContainersReady"] == ("False", "PodCompleted", "")
        assert c["Initialized"] == ("True", "PodCompleted", "")
    if phase == "Failed":
        assert conds(st)["Ready"] == ("False", "PodFailed", "")


def test_terminated_state_carries_the_termination_message() -> None:
    c = cs("app", EXITED, exit_code=2, id="x", message="disk full\n")
    got = cstatus(status(pod("app", restart="Never"), [sb()], [c]), "app")
    assert got["state"]["terminated"]["message"] == "disk full\n"
    got = cstatus(status(pod("app", restart="Never"), [sb()], [c], messages={"x": "from logs"}), "app")
    assert got["state"]["terminated"]["message"] == "from logs"


@pytest.mark.parametrize("reason, message", [
    ("ErrImagePull", 'failed to pull and unpack image "docker.io/library/nope:latest": not found'),
    ("ImagePullBackOff", 'Back-off pulling image "nope"'),
    ("CreateContainerConfigError", 'configmap "cfg" not found'),
])
def test_start_failure_of_a_container_that_never_ran(reason: str, message: str) -> None:
    st = status(pod("app"), [sb()], [], start_failures={"app": (reason, message)})
    assert cstatus(st, "app")["state"] == {"waiting": {"reason": reason, "message": message}}
    assert st["phase"] == "Pending"


def test_active_deadline() -> None:
    p = pod("app", activeDeadlineSeconds=30, status={"startTime": T0_S, "phase": "Running"})
    assert active_deadline_remaining(p, NOW) == pytest.approx(30 - 1000)
    assert active_deadline_remaining(pod("app"), NOW) is None
    st = status(p, [sb()], [cs("app")], deadline_exceeded=True)
    assert (st["phase"], st["reason"], st["message"]) == (
        "Failed", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")


def test_terminal_phase_in_the_api_is_kept() -> None:
    p = pod("app", status={"phase": "Failed", "reason": "Evicted", "message": "low memory"})
    st = status(p, [sb()], [cs("app", RUNNING)])
    assert (st["phase"], st["reason"], st["message"]) == ("Failed", "Evicted", "low memory")


def test_transition_times_only_move_on_change() -> None:
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
           {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2019-01-01T00:00:00Z"},
           {"type": "Initialized", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    st = status(pod("app", status={"conditions": old}), [sb()], [cs("app")])
    times = {c["type"]: c["lastTransitionTime"] for c in st["conditions"]}
    assert times["Ready"] == "2020-01-01T00:00:00Z" and times["PodScheduled"] == "2019-01-01T00:00:00Z"
    assert times["Initialized"] == NOW_S


def test_other_conditions_are_kept_and_readiness_gates_apply() -> None:
    gate = {"type": "example.com/lb", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    p = pod("app", readinessGates=[{"conditionType": "example.com/lb"}, {"conditionType": "other"}],
            status={"conditions": [gate]})
    st = status(p, [sb()], [cs("app")])
    assert st["conditions"][0] == gate
    assert conds(st)["ContainersReady"][0] == "True"
    assert conds(st)["Ready"] == ("False", "ReadinessGatesNotReady",
                                  "the status of pod readiness gate \"example.com/lb\" is not \"True\", but False, "
                                  "corresponding condition of pod readiness gate \"other\" does not exist.")


def test_vanished_running_container() -> None:
    prev = {"containerStatuses": [{"name": "app", "state": {"running": {"startedAt": T0_S}},
                                   "restartCount": 2, "lastState": {}}]}
    got = cstatus(status(pod("app", status=prev), [sb()], []), "app")
    assert got["state"] == {"waiting": {"reason": "ContainerCreating"}} and got["restartCount"] == 3
    assert got["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert got["lastState"]["terminated"]["exitCode"] == 137


def test_finished_pod_keeps_its_terminated_status_and_ip_without_the_runtime() -> None:
    term = {"exitCode": 0, "reason": "Completed", "startedAt": T0_S, "finishedAt": T0_S,
            "containerID": "runc://gone"}
    prev = {"phase": "Succeeded", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}],
            "containerStatuses": [{"name": "app", "state": {"terminated": term}, "restartCount": 0,
                                   "lastState": {}, "image": "x", "imageID": "y", "containerID": "runc://gone"}]}
    st = status(pod("app", restart="Never", status=prev), [], [])
    assert st["phase"] == "Succeeded" and st["podIP"] == "10.0.0.9"
    assert cstatus(st, "app")["state"] == {"terminated": term}


def test_host_network_pod_uses_the_node_ip() -> None:
    st = status(pod("app", hostNetwork=True), [sb(ip=None)], [cs("app")])
    assert st["podIP"] == "192.0.2.10"


def test_deleted_running_pod_becomes_failed_when_terminal() -> None:
    st = status(pod("app"), [sb(state="notready")], [cs("app", EXITED, exit_code=143)], pod_is_terminal=True)
    assert st["phase"] == "Failed"
    assert conds(st)["PodReadyToStartContainers"][0] == "False"
    st = status(pod("app"), [sb(state="notready")], [cs("app", EXITED, exit_code=0)], pod_is_terminal=True)
    assert st["phase"] == "Succeeded"


def test_sidecar_running_before_the_app() -> None:
    p = pod("app", inits=(sidecar("proxy"),))
    st = status(p, [sb()], [cs("proxy", RUNNING)])
    assert st["phase"] == "Pending"
    assert cstatus(st, "proxy")["started"] is True and cstatus(st, "proxy")["ready"] is True
    assert conds(st)["Initialized"][0] == "True"
    assert conds(st)["ContainersReady"] == ("False", "ContainersNotReady", "containers with unready status: [app]")
    st = status(p, [sb()], [cs("proxy", RUNNING), cs("app", RUNNING)])
    assert st["phase"] == "Running" and conds(st)["Ready"][0] == "True"


def test_regular_init_container_is_ready_after_success() -> None:
    st = status(pod("app", inits=("one",)), [sb()], [cs("one", EXITED, exit_code=0), cs("app")])
    assert cstatus(st, "one")["ready"] is True and cstatus(st, "one")["started"] is False
    assert st["phase"] == "Running"


def test_failed_init_container_with_never_fails_the_pod() -> None:
    st = status(pod("app", inits=("one",), restart="Never"), [sb()], [cs("one", EXITED, exit_code=1)])
    assert st["phase"] == "Failed"


def test_get_phase_unknown_containers_stay_pending() -> None:
    assert get_phase(pod("app", "b"), [{"name": "app", "state": {"running": {}}}], pod_is_terminal=False,
                     has_initialized=True) == "Pending"


def test_status_patch_and_changed() -> None:
    cur = {"phase": "Pending", "reason": "X", "podIP": "1.2.3.4"}
    new = {"phase": "Running", "podIP": "1.2.3.4"}
    assert status_changed(cur, new) and not status_changed(cur, {"phase": "Pending"})
    assert status_patch(cur, new) == {"phase": "Running", "reason": None}
