"""The API status of a pod from the pod, the runtime's view of it and the probe results (pure).

    status = compute_pod_status(pod, sandboxes=sbs, containers=cs, now=wall, host_ip="10.0.0.5",
                                runtime_name="runc", probe_results=results,
                                start_failures={"app": ("CrashLoopBackOff", "back-off 10s ...")})
    if status_changed(pod.get("status"), status): PATCH pods/<name>/status {"status": status}

Upstream semantics (``generateAPIPodStatus``, ``convertToAPIContainerStatuses``, ``getPhase``,
the probe manager's ``UpdatePodStatus``, ``status/generate.go`` and the status manager's transition
times):

* every container of the spec has a status; without a runtime container it is *waiting* with
  ``ContainerCreating`` (``PodInitializing`` when the pod has init containers), carrying over the
  restart count and last state the API already had (a terminated one is kept as it was);
* runtime containers, newest first: the newest gives ``state``, ``restartCount``, ``containerID``
  (``<runtime>://<id>``), ``image`` and ``imageID``; the one before gives ``lastState``;
* a container that will be restarted and whose last start failed shows that failure as *waiting*
  (``CrashLoopBackOff``, ``ErrImagePull``, ``ImagePullBackOff``, ``CreateContainerConfigError`` ...)
  and its terminated state moves to ``lastState``;
* ``started`` = running and the startup probe passed (or there is none); ``ready`` = started and
  the readiness probe passed (or there is none); a regular init container is ready once it
  exited with 0;
* the phase follows ``getPhase``; a terminal phase in the API is never left; an exceeded
  ``activeDeadlineSeconds`` makes the pod Failed with reason ``DeadlineExceeded``;
* conditions: the ones other components own first (kept as they are), then
  PodReadyToStartContainers, Initialized, Ready (with readiness gates), ContainersReady and
  PodScheduled; ``lastTransitionTime`` changes only when a condition's status does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..api import meta as m
from .actions import (
    SUCCESS,
    ProbeResults,
    attempt_of,
    is_sidecar,
    newest_first,
    sandbox_changed,
)
from .runtime.base import ContainerState, ContainerStatus, SandboxStatus
from .status import _go_list, _readiness_gates, normalize_image, qos_class

Obj = dict[str, Any]

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
STATUS_UNKNOWN = "ContainerStatusUnknown"
DEADLINE_REASON = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                      "PodScheduled")
TERMINAL = ("Succeeded", "Failed")


def _ts(t: float | None) -> str | None:
    if t is None or t <= 0:
        return None
    return m.now_rfc3339(dt.datetime.fromtimestamp(t, dt.UTC))


def _prune(obj: Any) -> Any:
    """Drop None values (they mean "unset" on the wire and a merge patch would delete them)."""
    if isinstance(obj, dict):
        return {k: _prune(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_prune(v) for v in obj]
    return obj


def active_deadline_remaining(pod: Obj, now: dt.datetime) -> float | None:
    """Seconds until ``activeDeadlineSeconds`` passes (<= 0: passed); None when not set/started."""
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    start = m.parse_time((pod.get("status") or {}).get("startTime"))
    if deadline is None or start is None:
        return None
    return float(deadline) - (now - start).total_seconds()


# -- container statuses -------------------------------------------------------------------------------
def _old_statuses(pod: Obj, key: str) -> dict[str, Obj]:
    return {s.get("name"): s for s in (pod.get("status") or {}).get(key) or () if isinstance(s, dict)}


def _volume_mounts(container: Mapping[str, Any]) -> list[Obj] | None:
    out = []
    for vm in container.get("volumeMounts") or ():
        entry: Obj = {"name": vm.get("name"), "mountPath": vm.get("mountPath")}
        if vm.get("readOnly"):
            entry["readOnly"] = True
            entry["recursiveReadOnly"] = "Disabled"
        out.append(entry)
    return out or None


def _runtime_state(cs: ContainerStatus, cid: str, old: Obj | None,
                   message: str | None) -> tuple[Obj, int]:
    """(API state, restart count) of one runtime container (``convertContainerStatus``)."""
    restarts = attempt_of(cs)
    if cs.state == ContainerState.RUNNING:
        return {"running": {"startedAt": _ts(cs.started_at)}}, restarts
    if cs.state == ContainerState.EXITED:
        code = cs.exit_code or 0
        reason = cs.reason or ("Completed" if code == 0 else "Error")
        msg = message if message is not None else cs.message
        return {"terminated": {"exitCode": code, "reason": reason, "message": msg or None,
                               "startedAt": _ts(cs.started_at), "finishedAt": _ts(cs.finished_at),
                               "containerID": cid}}, restarts
    if cs.state == ContainerState.UNKNOWN and old and (old.get("state") or {}).get("running"):
        return {"terminated": {"exitCode": 137, "reason": STATUS_UNKNOWN,
                               "message": "The container could not be located when the pod was terminated"}
                }, int(old.get("restartCount") or 0) + 1
    return {"waiting": {}}, restarts


def _should_restart(pod: Obj, latest: ContainerStatus | None) -> bool:
    """Upstream ``ShouldContainerBeRestarted`` on the newest runtime container of a name."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if latest is None:
        return True
    if latest.state == ContainerState.RUNNING:
        return False
    if latest.state in (ContainerState.UNKNOWN, ContainerState.CREATED):
        return True
    policy = str((pod.get("spec") or {}).get("restartPolicy") or "Always")
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return (latest.exit_code or 0) != 0
    return True


def container_statuses(pod: Obj, specs: Sequence[Mapping[str, Any]], containers: Sequence[ContainerStatus],
                       *, init: bool, runtime_name: str,
                       start_failures: Mapping[str, tuple[str, str]],
                       messages: Mapping[str, str]) -> list[Obj]:
    """API statuses of the ``specs`` containers, in spec order (``convertToAPIContainerStatuses``)."""
    spec = pod.get("spec") or {}
    has_inits = bool(spec.get("initContainers"))
    default_reason = POD_INITIALIZING if has_inits else CONTAINER_CREATING
    old = _old_statuses(pod, "initContainerStatuses" if init else "containerStatuses")
    names = [str(c.get("name", "")) for c in specs]
    by_spec = {str(c.get("name", "")): c for c in specs}
    statuses: dict[str, Obj] = {}
    for c in specs:
        name = str(c.get("name", ""))
        st: Obj = {"name": name, "image": c.get("image", ""), "imageID": "",
                   "state": {"waiting": {"reason": default_reason}}, "lastState": {},
                   "restartCount": 0}
        prev = old.get(name)
        if prev is not None:
            if (prev.get("state") or {}).get("terminated"):
                st = {k: v for k, v in prev.items()}
            else:
                st["restartCount"] = int(prev.get("restartCount") or 0)
                st["lastState"] = prev.get("lastState") or {}
        statuses[name] = st

    ordered = newest_first([c for c in containers if c.name in statuses])
    present = {c.name for c in ordered}
    for name in names:  # a container that was running and vanished from the runtime
        prev = old.get(name)
        if name in present or prev is None:
            continue
        pstate = prev.get("state") or {}
        if pstate.get("terminated") or not pstate.get("running"):
            continue
        st = statuses[name]
        if (st["state"].get("waiting") or {}).get("reason") != default_reason:
            continue
        if (st.get("lastState") or {}).get("terminated"):
            continue
        st["lastState"] = {"terminated": {
            "exitCode": 137, "reason": STATUS_UNKNOWN,
            "message": "The container could not be located when the pod was deleted.  "
                       "The container used to be Running"}}
        if not (pod.get("metadata") or {}).get("deletionTimestamp"):
            st["restartCount"] = int(st.get("restartCount") or 0) + 1

    seen: dict[str, int] = {}
    for cs in ordered:
        n = seen.get(cs.name, 0)
        if n >= 2:
            continue
        cid = f"{runtime_name}://{cs.id}"
        state, restarts = _runtime_state(cs, cid, old.get(cs.name), messages.get(cs.id))
        if n == 0:
            st = {"name": cs.name, "image": normalize_image(cs.image) if cs.image else
                  by_spec[cs.name].get("image", ""),
                  "imageID": cs.image_id, "containerID": cid, "state": state, "lastState": {},
                  "restartCount": restarts, "volumeMounts": _volume_mounts(by_spec[cs.name])}
            statuses[cs.name] = st
        else:
            statuses[cs.name]["lastState"] = state
        seen[cs.name] = n + 1

    latest = {name: next((c for c in ordered if c.name == name), None) for name in names}
    for name in names:
        cs = latest[name]
        if init and cs is not None and cs.state == ContainerState.EXITED and (cs.exit_code or 0) == 0:
            continue
        if not _should_restart(pod, cs):
            continue
        failure = start_failures.get(name)
        if failure is None:
            continue
        st = statuses[name]
        if (st.get("state") or {}).get("terminated"):
            st["lastState"] = st["state"]
        reason, message = failure
        st["state"] = {"waiting": {"reason": reason, "message": message or None}}
    return [statuses[n] for n in names]


def _apply_probe_results(specs: Sequence[Mapping[str, Any]], statuses: list[Obj], probes: ProbeResults,
                         *, init: bool) -> None:
    """Set ``started`` and ``ready`` (the probe manager's ``UpdatePodStatus``)."""
    by_name = {str(c.get("name", "")): c for c in specs}
    for st in statuses:
        c = by_name.get(st["name"], {})
        state = st.get("state") or {}
        cid = str(st.get("containerID") or "").partition("://")[2]
        running = bool(state.get("running"))
        started = running and (not c.get("startupProbe") or probes.get((cid, "startup")) == SUCCESS)
        st["started"] = started
        if init and not is_sidecar(c):
            term = state.get("terminated")
            st["ready"] = bool(term) and (term.get("exitCode") or 0) == 0
            continue
        st["ready"] = started and (not c.get("readinessProbe")
                                   or probes.get((cid, "readiness")) == SUCCESS)


# -- phase ------------------------------------------------------------------------------------------------
def _status_of(statuses: Sequence[Obj], name: str) -> Obj | None:
    return next((s for s in statuses if s.get("name") == name), None)


def get_phase(pod: Obj, statuses: Sequence[Obj], *, pod_is_terminal: bool,
              has_initialized: bool) -> str:
    """Upstream ``getPhase`` over the API container statuses (init and regular together)."""
    spec = pod.get("spec") or {}
    policy = str(spec.get("restartPolicy") or "Always")
    pending_init = failed_init = pending_sidecars = 0
    unknown = running = waiting = stopped = succeeded = 0
    for c in spec.get("initContainers") or ():
        st = _status_of(statuses, str(c.get("name", "")))
        if is_sidecar(c):
            if st is None:
                unknown += 1
                continue
            state, last = st.get("state") or {}, st.get("lastState") or {}
            if state.get("running"):
                if not st.get("started"):
                    pending_sidecars += 1
                running += 1
            elif state.get("terminated"):
                pass
            elif "waiting" in state:
                if not last.get("terminated"):
                    pending_sidecars += 1
                    waiting += 1
            else:
                pending_sidecars += 1
                unknown += 1
            continue
        if st is None:
            pending_init += 1
            continue
        state, last = st.get("state") or {}, st.get("lastState") or {}
        if state.get("running"):
            pending_init += 1
        elif state.get("terminated"):
            if (state["terminated"].get("exitCode") or 0) != 0:
                failed_init += 1
        elif "waiting" in state:
            if last.get("terminated"):
                if (last["terminated"].get("exitCode") or 0) != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    for c in spec.get("containers") or ():
        st = _status_of(statuses, str(c.get("name", "")))
        if st is None:
            unknown += 1
            continue
        state, last = st.get("state") or {}, st.get("lastState") or {}
        if state.get("running"):
            running += 1
        elif state.get("terminated"):
            stopped += 1
            if (state["terminated"].get("exitCode") or 0) == 0:
                succeeded += 1
        elif "waiting" in state:
            if last.get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_init > 0 or (pending_sidecars > 0 and not has_initialized) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if pod_is_terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


# -- conditions ----------------------------------------------------------------------------------------------
def _cond(ctype: str, status: str, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": ctype, "status": status}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _terminal_ready(ctype: str, phase: str) -> Obj:
    return _cond(ctype, "False", "PodCompleted" if phase == "Succeeded" else "PodFailed")


def containers_ready_condition(pod: Obj, statuses: Sequence[Obj], phase: str) -> Obj:
    spec = pod.get("spec") or {}
    unknown: list[str] = []
    unready: list[str] = []
    wanted = [c for c in spec.get("initContainers") or () if is_sidecar(c)]
    wanted += list(spec.get("containers") or ())
    for c in wanted:
        name = str(c.get("name", ""))
        st = _status_of(statuses, name)
        if st is None:
            unknown.append(name)
        elif not st.get("ready"):
            unready.append(name)
    if (phase == "Succeeded" and not unknown) or phase == "Failed":
        return _terminal_ready("ContainersReady", phase)
    msgs = []
    if unknown:
        msgs.append(f"containers with unknown status: {_go_list(unknown)}")
    if unready:
        msgs.append(f"containers with unready status: {_go_list(unready)}")
    if msgs:
        return _cond("ContainersReady", "False", "ContainersNotReady", ", ".join(msgs))
    return _cond("ContainersReady", "True")


def ready_condition(pod: Obj, statuses: Sequence[Obj], phase: str, conditions: Sequence[Obj]) -> Obj:
    cr = containers_ready_condition(pod, statuses, phase)
    if cr["status"] != "True":
        return {**cr, "type": "Ready"}
    existing = {c.get("type"): c for c in conditions}
    gate = _readiness_gates(pod, existing, "")
    return {k: v for k, v in gate.items() if k != "lastTransitionTime"}


def initialized_condition(pod: Obj, statuses: Sequence[Obj], phase: str) -> Obj:
    spec = pod.get("spec") or {}
    unknown: list[str] = []
    incomplete: list[str] = []
    for c in spec.get("initContainers") or ():
        name = str(c.get("name", ""))
        st = _status_of(statuses, name)
        if st is None:
            unknown.append(name)
            continue
        term = (st.get("state") or {}).get("terminated")
        if is_sidecar(c):
            if not st.get("started"):
                incomplete.append(name)
        elif not term or (term.get("exitCode") or 0) != 0:
            incomplete.append(name)
    if phase == "Succeeded" and not unknown:
        return _cond("Initialized", "True", "PodCompleted")
    for c in spec.get("containers") or ():
        st = _status_of(statuses, str(c.get("name", "")))
        state = (st or {}).get("state") or {}
        if state.get("running") or state.get("terminated"):
            return _cond("Initialized", "True")
    msgs = []
    if unknown:
        msgs.append(f"containers with unknown status: {_go_list(unknown)}")
    if incomplete:
        msgs.append(f"containers with incomplete status: {_go_list(incomplete)}")
    if msgs:
        return _cond("Initialized", "False", "ContainersNotInitialized", ", ".join(msgs))
    return _cond("Initialized", "True")


def _with_transition_times(conditions: list[Obj], old: Sequence[Obj], now: str) -> list[Obj]:
    prev = {c.get("type"): c for c in old if isinstance(c, dict)}
    out = []
    for c in conditions:
        p = prev.get(c["type"])
        since = p.get("lastTransitionTime") if p and p.get("status") == c["status"] else None
        out.append({**c, "lastTransitionTime": since or now})
    return out


# -- the whole status -------------------------------------------------------------------------------------
def _has_active_regular_started(pod: Obj, sandboxes: Sequence[SandboxStatus],
                                containers: Sequence[ContainerStatus]) -> bool:
    """A regular container of the newest sandbox has started (upstream
    ``HasAnyActiveRegularContainerStarted``)."""
    if not sandboxes:
        return False
    newest = max(sandboxes, key=lambda s: s.created_at).id
    names = {str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or ()}
    return any(c.sandbox_id == newest and c.name in names and c.started_at is not None
               for c in containers)


def pod_ips(pod: Obj, sandboxes: Sequence[SandboxStatus], host_ip: str) -> list[str]:
    """The pod's IPs: the node's for hostNetwork pods (and for sandboxes without a network
    namespace of their own), else the newest ready sandbox's, else what the API already had (a
    finished pod keeps its address). A loopback-only sandbox gives none."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return [host_ip]
    ready = [s for s in sandboxes if s.state == "ready"]
    if ready:
        newest = max(ready, key=lambda s: s.created_at)
        if newest.ip:
            return [newest.ip]
        if newest.netns_path is None:
            return [host_ip]  # a runtime without pod networks (process): the pod is on the host's
    with_ip = [s for s in sandboxes if s.ip]
    if with_ip:
        return [max(with_ip, key=lambda s: s.created_at).ip or ""]
    old = pod.get("status") or {}
    ips = [p.get("ip") for p in old.get("podIPs") or () if isinstance(p, dict) and p.get("ip")]
    if ips:
        return ips
    return [old["podIP"]] if old.get("podIP") else []


def compute_pod_status(pod: Obj, *, sandboxes: Sequence[SandboxStatus],
                       containers: Sequence[ContainerStatus], now: dt.datetime, host_ip: str,
                       runtime_name: str, probe_results: ProbeResults | None = None,
                       start_failures: Mapping[str, tuple[str, str]] | None = None,
                       messages: Mapping[str, str] | None = None, pod_is_terminal: bool = False,
                       deadline_exceeded: bool = False) -> Obj:
    """The status the kubelet reports for ``pod`` (see the module docstring).

    ``start_failures``: the last failed start of each container by name (reason, message), as the
    kubelet's reason cache; ``messages``: termination messages by container id that replace the
    runtime's (FallbackToLogsOnError); ``pod_is_terminal``: the pod is being / has been stopped
    for good, so stopped containers make it Succeeded or Failed whatever the restart policy.
    """
    probes = probe_results or {}
    failures = start_failures or {}
    msgs = messages or {}
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    inits = list(spec.get("initContainers") or [])
    regular = list(spec.get("containers") or [])
    init_st = container_statuses(pod, inits, containers, init=True, runtime_name=runtime_name,
                                 start_failures=failures, messages=msgs)
    reg_st = container_statuses(pod, regular, containers, init=False, runtime_name=runtime_name,
                                start_failures=failures, messages=msgs)
    reg_st.sort(key=lambda s: s["name"])

    for st in init_st:  # getPhase runs before the probe results are applied: started unknown
        st.pop("started", None)
    phase = get_phase(pod, init_st + reg_st, pod_is_terminal=pod_is_terminal,
                      has_initialized=_has_active_regular_started(pod, sandboxes, containers))
    old_phase = old.get("phase")
    if phase not in TERMINAL and old_phase in TERMINAL:
        phase = old_phase
    reason, message = None, None
    if phase == old_phase:
        reason, message = old.get("reason"), old.get("message")
    if deadline_exceeded and old_phase not in TERMINAL:
        phase, reason, message = "Failed", DEADLINE_REASON, DEADLINE_MESSAGE

    _apply_probe_results(inits, init_st, probes, init=True)
    _apply_probe_results(regular, reg_st, probes, init=False)

    keep = [c for c in old.get("conditions") or ()
            if isinstance(c, dict) and c.get("type") not in KUBELET_CONDITIONS]
    ready_to_start = "False" if sandbox_changed(pod, sandboxes)[0] else "True"
    everything = init_st + reg_st
    ours = [_cond("PodReadyToStartContainers", ready_to_start),
            initialized_condition(pod, everything, phase),
            ready_condition(pod, everything, phase, keep),
            containers_ready_condition(pod, everything, phase),
            _cond("PodScheduled", "True")]
    ts = m.now_rfc3339(now)
    ours = _with_transition_times(ours, old.get("conditions") or (), ts)
    ips = pod_ips(pod, sandboxes, host_ip)
    status: Obj = {
        "phase": phase,
        "conditions": keep + ours,
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": ips[0] if ips else None, "podIPs": [{"ip": ip} for ip in ips] or None,
        "startTime": old.get("startTime") or ts,
        "qosClass": old.get("qosClass") or qos_class(pod),
        "containerStatuses": reg_st,
        "initContainerStatuses": init_st or None,
        "reason": reason, "message": message,
        "nominatedNodeName": old.get("nominatedNodeName"),
    }
    return _prune(status)


def status_changed(current: Obj | None, desired: Obj) -> bool:
    """Whether writing ``desired`` (a merge patch of whole top-level fields) changes ``current``."""
    cur = current or {}
    return any(cur.get(k) != v for k, v in desired.items())


def status_patch(current: Obj | None, desired: Obj) -> Obj:
    """The merge patch from ``current`` to ``desired``: changed fields, and null for fields the
    kubelet owns that ``desired`` no longer has (podIP of a gone sandbox is kept, never nulled)."""
    cur = current or {}
    patch: Obj = {k: v for k, v in desired.items() if cur.get(k) != v}
    for k in ("reason", "message", "initContainerStatuses"):
        if k in cur and k not in desired:
            patch[k] = None
    return patch
