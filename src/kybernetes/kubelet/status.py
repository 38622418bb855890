"""Pod status for simulated ("fake") pods, computed from the pod and the time alone (pure).

A fake pod starts when its kubelet first sees it (``started``, rounded up to a whole second) and then
follows a timeline that depends only on its spec and annotations:

* restartPolicy Always: runs (and is Ready) until deleted;
* Never / OnFailure: runs for ``kybernetes.io/fake-duration`` (default 1 s), then exits with
  ``kybernetes.io/fake-exit-code`` (default 0): Succeeded, or Failed for Never;
* OnFailure with a non-zero exit code: restarts like a crash-looping container (first restart
  at once, then back-off 10 s, 20 s ... capped at 5 min), the pod stays Running.

Because the status is a function of ``(pod, started, now)``, a restarted kubelet that re-adopts a
pod (``started`` = its ``status.startTime``) computes exactly the status already stored, so it
writes nothing. ``compute_fake_pod_action`` is the whole per-pod decision of the fake kubelet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from ..api import meta as m
from ..util.duration import go_duration, parse_seconds

Obj = dict[str, Any]

FAKE_DURATION_ANNOTATION = "kybernetes.io/fake-duration"
FAKE_EXIT_CODE_ANNOTATION = "kybernetes.io/fake-exit-code"
DEFAULT_RUN_SECONDS = 1.0
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0


# -- simulation parameters ------------------------------------------------------------------------


def parse_duration(text: str | None) -> float | None:
    """Seconds from a Go-style duration ("1.5s", "2m", "1h30m", "500ms") or a bare number of
    seconds ("3"); None when absent or unparsable."""
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    try:
        value = float(s)
    except ValueError:
        value = parse_seconds(s)  # type: ignore[assignment]
    return value if value is not None and value >= 0 else None


@dataclass(frozen=True)
class FakeRun:
    """How a fake pod's containers behave."""

    restart_policy: str = "Always"
    duration: float = DEFAULT_RUN_SECONDS
    exit_code: int = 0

    @property
    def finishes(self) -> bool:
        return self.restart_policy in ("Never", "OnFailure")

    @property
    def crash_loops(self) -> bool:
        return self.restart_policy == "OnFailure" and self.exit_code != 0


def fake_run_for(pod: Obj, default_duration: float = DEFAULT_RUN_SECONDS) -> FakeRun:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    duration = parse_duration(annotations.get(FAKE_DURATION_ANNOTATION))
    try:
        exit_code = int(annotations.get(FAKE_EXIT_CODE_ANNOTATION, 0))
    except (TypeError, ValueError):
        exit_code = 0
    policy = str((pod.get("spec") or {}).get("restartPolicy") or "Always")
    return FakeRun(policy, default_duration if duration is None else duration, exit_code)


# -- the timeline ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timeline:
    """Where a fake pod's containers are ``elapsed`` seconds after start (offsets in seconds)."""

    state: str                          # "running" | "backoff" | "done"
    restarts: int                       # restartCount
    run_started: float                  # start of the current (or, when done, last) run
    last_exit: tuple[float, float] | None   # (start, end) of the previous failed run
    back_off: float = 0.0               # current back-off delay (state "backoff")
    changed_at: float = 0.0             # when the current state began
    next_change: float | None = None    # offset of the next state change (None: never)


def restart_delay(restarts_done: int) -> float:
    """Back-off before restart number ``restarts_done + 1``: at once, then 10 s doubling to 5 min."""
    if restarts_done <= 0:
        return 0.0
    return min(BACKOFF_INITIAL * 2 ** (restarts_done - 1), BACKOFF_MAX)


def compute_timeline(run: FakeRun, elapsed: float) -> Timeline:
    elapsed = max(0.0, elapsed)
    if not run.finishes:
        return Timeline("running", 0, 0.0, None)
    d = run.duration
    if not run.crash_loops:
        if elapsed < d:
            return Timeline("running", 0, 0.0, None, next_change=d)
        return Timeline("done", 0, 0.0, None, changed_at=d)
    start, k, prev = 0.0, 0, None
    while True:
        end = start + d
        if elapsed < end:
            return Timeline("running", k, start, prev, changed_at=start, next_change=end)
        delay = restart_delay(k)
        nxt = end + delay
        if elapsed < nxt:
            return Timeline("backoff", k, start, (start, end), back_off=delay, changed_at=end,
                            next_change=nxt)
        if delay >= BACKOFF_MAX:  # steady period from here on: jump ahead
            period = d + BACKOFF_MAX
            skip = int((elapsed - start) // period) - 1
            if skip > 0:
                start += skip * period
                k += skip
                prev = (start - period, start - BACKOFF_MAX)
                continue
        prev = (start, end)
        start, k = nxt, k + 1


# -- status building blocks -----------------------------------------------------------------------
def normalize_image(image: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest`` (the reference a runtime reports)."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def image_id(image: str) -> str:
    ref = normalize_image(image)
    repo = ref.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: repo.rfind(":")]
    return f"{repo}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


def container_id(pod_uid: str, name: str, restart: int) -> str:
    return "fake://" + hashlib.sha256(f"{pod_uid}/{name}/{restart}".encode()).hexdigest()


def qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or bool(req) or bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass(frozen=True)
class _Ctx:
    pod: Obj
    uid: str
    started: dt.datetime
    timeline: Timeline
    run: FakeRun

    def ts(self, offset: float) -> str:
        return m.now_rfc3339(self.started + dt.timedelta(seconds=offset))


def _terminated(ctx: _Ctx, name: str, restart: int, span: tuple[float, float], code: int) -> Obj:
    return {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
            "startedAt": ctx.ts(span[0]), "finishedAt": ctx.ts(span[1]),
            "containerID": container_id(ctx.uid, name, restart)}


def _container_status(ctx: _Ctx, c: Obj) -> Obj:
    name, tl = str(c.get("name") or ""), ctx.timeline
    image = str(c.get("image") or "")
    st: Obj = {"name": name, "image": image, "imageID": image_id(image), "restartCount": tl.restarts}
    last: Obj = {}
    if tl.last_exit is not None:
        last = {"terminated": _terminated(ctx, name, tl.restarts - (tl.state == "running"),
                                          tl.last_exit, ctx.run.exit_code)}
    if tl.state == "running":
        st.update(ready=True, started=True, containerID=container_id(ctx.uid, name, tl.restarts),
                  state={"running": {"startedAt": ctx.ts(tl.run_started)}})
    elif tl.state == "backoff":
        msg = (f"back-off {go_duration(tl.back_off)} restarting failed container={name} "
               f"pod={m.name_of(ctx.pod)}_{m.namespace_of(ctx.pod)}({ctx.uid})")
        st.update(ready=False, started=False, containerID=container_id(ctx.uid, name, tl.restarts),
                  state={"waiting": {"reason": "CrashLoopBackOff", "message": msg}})
    else:
        span = (tl.run_started, tl.changed_at)
        st.update(ready=False, started=False, containerID=container_id(ctx.uid, name, tl.restarts),
                  state={"terminated": _terminated(ctx, name, tl.restarts, span, ctx.run.exit_code)})
    st["lastState"] = last
    return st


def _init_container_status(ctx: _Ctx, c: Obj) -> Obj:
    name, image = str(c.get("name") or ""), str(c.get("image") or "")
    st: Obj = {"name": name, "image": image, "imageID": image_id(image), "restartCount": 0,
               "containerID": container_id(ctx.uid, name, 0), "lastState": {}}
    sidecar = c.get("restartPolicy") == "Always"
    if sidecar and ctx.timeline.state != "done":
        st.update(ready=True, started=True, state={"running": {"startedAt": ctx.ts(0)}})
    else:
        end = ctx.timeline.changed_at if sidecar else 0.0
        st.update(ready=not sidecar, started=False,
                  state={"terminated": _terminated(ctx, name, 0, (0.0, end), 0)})
    return st


def _go_list(names: list[str]) -> str:
    return "[" + " ".join(names) + "]"


def _cond(ctype: str, status: str, at: str, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": ctype, "status": status, "lastTransitionTime": at}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _pod_conditions(ctx: _Ctx, phase: str, statuses: list[Obj]) -> list[Obj]:
    tl = ctx.timeline
    start = ctx.ts(0)
    existing = {c.get("type"): c for c in (ctx.pod.get("status") or {}).get("conditions") or ()
                if isinstance(c, dict)}
    sched = existing.get("PodScheduled")
    scheduled = sched if sched and sched.get("status") == "True" else _cond("PodScheduled", "True", start)
    if phase in ("Succeeded", "Failed"):
        end = ctx.ts(tl.changed_at)
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        initialized = _cond("Initialized", "True", start, "PodCompleted" if phase == "Succeeded" else "")
        return [_cond("PodReadyToStartContainers", "False", end), initialized,
                _cond("Ready", "False", end, reason), _cond("ContainersReady", "False", end, reason),
                scheduled]
    unready = [s["name"] for s in statuses if not s.get("ready")]
    if unready:
        at = ctx.ts(tl.changed_at)
        msg = f"containers with unready status: {_go_list(unready)}"
        ready = _cond("Ready", "False", at, "ContainersNotReady", msg)
        containers_ready = _cond("ContainersReady", "False", at, "ContainersNotReady", msg)
    else:
        at = ctx.ts(tl.run_started)
        containers_ready = _cond("ContainersReady", "True", at)
        ready = _readiness_gates(ctx.pod, existing, at)
    return [_cond("PodReadyToStartContainers", "True", start), _cond("Initialized", "True", start),
            ready, containers_ready, scheduled]


def _readiness_gates(pod: Obj, existing: dict[Any, Obj], at: str) -> Obj:
    msgs = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or ():
        ctype = gate.get("conditionType")
        c = existing.get(ctype)
        if c is None:
            msgs.append(f"corresponding condition of pod readiness gate \"{ctype}\" does not exist.")
        elif c.get("status") != "True":
            msgs.append(f"the status of pod readiness gate \"{ctype}\" is not \"True\", but {c.get('status')}")
    if msgs:
        return _cond("Ready", "False", at, "ReadinessGatesNotReady", ", ".join(msgs))
    return _cond("Ready", "True", at)


def compute_fake_pod_status(pod: Obj, *, started: dt.datetime, now: dt.datetime, host_ip: str,
                            pod_ip: str, run: FakeRun | None = None) -> tuple[Obj, float | None]:
    """The status of fake ``pod`` at ``now`` and the seconds until it next changes (None: never).

    Conditions other components own (anything but the five kubelet ones) are kept.
    """
    run = run or fake_run_for(pod)
    elapsed = (now - started).total_seconds()
    tl = compute_timeline(run, elapsed)
    ctx = _Ctx(pod, str((pod.get("metadata") or {}).get("uid") or ""), started, tl, run)
    spec = pod.get("spec") or {}
    phase = "Running"
    if tl.state == "done":
        phase = "Succeeded" if run.exit_code == 0 else "Failed"
    statuses = sorted((_container_status(ctx, c) for c in spec.get("containers") or ()),
                      key=lambda s: s["name"])
    inits = [_init_container_status(ctx, c) for c in spec.get("initContainers") or ()]
    sidecars = [s for s in inits if s.get("started")]
    conditions = _pod_conditions(ctx, phase, sidecars + statuses)
    ours = {c["type"] for c in conditions}
    conditions += [c for c in (pod.get("status") or {}).get("conditions") or ()
                   if isinstance(c, dict) and c.get("type") not in ours]
    current = pod.get("status") or {}
    status: Obj = {
        "phase": phase, "conditions": conditions,
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": ctx.ts(0),
        "qosClass": current.get("qosClass") or qos_class(pod),
        "containerStatuses": statuses,
    }
    if inits:
        status["initContainerStatuses"] = inits
    wait = None if tl.next_change is None else max(0.0, tl.next_change - elapsed)
    return status, wait


def status_differs(current: Obj | None, desired: Obj) -> bool:
    """Whether writing ``desired`` (a merge patch of whole fields) would change ``current``."""
    cur = current or {}
    return any(cur.get(k) != v for k, v in desired.items())


def start_time_of(pod: Obj) -> dt.datetime | None:
    """The start a previous run of a kubelet recorded (re-adoption after a restart)."""
    return m.parse_time((pod.get("status") or {}).get("startTime"))


def next_whole_second(t: dt.datetime) -> dt.datetime:
    """``t`` rounded up to a whole second: API times have second precision, and rounding up keeps
    a simulated run at least as long as asked for."""
    return t if t.microsecond == 0 else t.replace(microsecond=0) + dt.timedelta(seconds=1)


# -- the per-pod decision -------------------------------------------------------------------------
@dataclass(frozen=True)
class FakePodAction:
    """What the fake kubelet does for one pod now."""

    status: Obj | None = None          # write this status (merge patch of whole fields)
    delete: bool = False               # finish a graceful deletion (DELETE grace 0, uid precondition)
    requeue_after: float | None = None


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def compute_fake_pod_action(pod: Obj, *, started: dt.datetime, now: dt.datetime, host_ip: str,
                            pod_ip: str, deleting_for: float | None = None,
                            stop_seconds: float = 0.2,
                            default_duration: float = DEFAULT_RUN_SECONDS) -> FakePodAction:
    """Decide for one fake pod.

    ``deleting_for``: seconds since this kubelet first saw the pod's deletionTimestamp. A deleted
    pod is "stopped" for min(grace period, ``stop_seconds``) and then removed for good.
    """
    md = pod.get("metadata") or {}
    if md.get("deletionTimestamp"):
        grace = float(md.get("deletionGracePeriodSeconds") or 0)
        remaining = min(grace, stop_seconds) - (deleting_for or 0.0)
        if remaining <= 0:
            return FakePodAction(delete=True)
        return FakePodAction(requeue_after=remaining)
    if is_terminal(pod):
        return FakePodAction()
    desired, wait = compute_fake_pod_status(pod, started=started, now=now, host_ip=host_ip,
                                            pod_ip=pod_ip, run=fake_run_for(pod, default_duration))
    patch = desired if status_differs(pod.get("status"), desired) else None
    return FakePodAction(status=patch, requeue_after=wait)


# -- pod addresses --------------------------------------------------------------------------------
class PoolExhausted(Exception):
    """No free pod address left in a node's range."""


class IPPool:
    """Pod addresses of one node's range (first and last two hosts are left out), by pod uid."""

    def __init__(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        hosts = list(net.hosts())
        self._free = [str(h) for h in reversed(hosts[1:-1] or hosts)]
        self._by_uid: dict[str, str] = {}

    def allocate(self, uid: str) -> str:
        if uid in self._by_uid:
            return self._by_uid[uid]
        if not self._free:
            raise PoolExhausted(f"no free pod address for {uid}")
        ip = self._free.pop()
        self._by_uid[uid] = ip
        return ip

    def reserve(self, uid: str, ip: str) -> bool:
        """Adopt ``ip`` for ``uid`` (after a restart); False if it is not free in this pool."""
        if self._by_uid.get(uid) == ip:
            return True
        if ip not in self._free:
            return False
        self._free.remove(ip)
        self._by_uid[uid] = ip
        return True

    def release(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._free.append(ip)

    def __len__(self) -> int:
        return len(self._by_uid)
