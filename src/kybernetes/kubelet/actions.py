"""What the kubelet must do for one pod now, decided from the pod and what the runtime reports (pure).

    actions = compute_pod_actions(pod, sandboxes, containers, now=time, backoff_state=state,
                                  probe_results=results)
    # kill what must go, make a sandbox, start init containers / containers, record back-offs

This follows the kubelet's ``computePodActions`` (with sidecar containers on, as in 1.32):

* **Sandbox.** None yet, more than one ready, or the newest not ready → make a new one (and kill
  what is left of the old). A ``Never`` pod whose sandbox died after it ran is not given a new one,
  nor is a pod with nothing left to run.
* **Init containers** (``computeInitContainerActions``): walked from the last one back, so a
  pruned early init container does not make the pod initialize again. A regular init container
  that failed is restarted unless the restart policy is ``Never`` (then the pod is killed); one
  that succeeded lets the next start. A sidecar (``restartPolicy: Always`` on an init container)
  counts as done once it runs and its startup probe (if any) passed; it is restarted whenever it is
  not running, and when its liveness / startup probe fails.
* **Containers**, once initialized: a container that is not running is (re)started per the pod's
  restart policy (``Always``; ``OnFailure`` after a non-zero exit; never for ``Never``); a running
  one whose spec changed (``CONTAINER_HASH_LABEL``) is restarted whatever the policy; one that
  failed its liveness or startup probe is killed (and restarted per policy). When nothing is left
  running or to start, the pod is killed (its sidecars stopped).
* **CrashLoopBackOff**: before restarting a container whose last run exited, the back-off of that
  container is checked: 10 s after the first restart, doubling to 5 min; an entry untouched for
  10 min (twice the cap) is forgotten, so a container that ran that long restarts at once. The
  caller records ``backoff_next`` for every start that carries a ``backoff_key``.

Times are unix seconds (the runtime reports ``finished_at`` in unix seconds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..util.duration import go_duration
from .runtime.base import (
    LABEL_CONTAINER_ATTEMPT,
    ContainerState,
    ContainerStatus,
    SandboxStatus,
)

Obj = dict[str, Any]

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
SANDBOX_ATTEMPT_LABEL = "io.kybernetes.sandbox.attempt"
CONTAINER_HASH_LABEL = "io.kybernetes.container.hash"   # container_hash() of the spec it runs

# kill reasons (upstream containerKillReason)
REASON_LIVENESS = "LivenessProbe"
REASON_STARTUP = "StartupProbe"
REASON_UNKNOWN = "Unknown"
REASON_FAILED_POST_START = "FailedPostStartHook"

SUCCESS = "Success"
FAILURE = "Failure"

# (container id, probe kind) -> "Success" | "Failure"; a missing key means no result yet
ProbeResults = Mapping[tuple[str, str], str]


# -- back-off (client-go flowcontrol.Backoff, per key) --------------------------------------------
@dataclass(frozen=True)
class BackoffEntry:
    """The back-off of one key: the current delay and when it was last moved on (unix seconds)."""

    delay: float
    last_update: float


def backoff_expired(entry: BackoffEntry, now: float, maximum: float = BACKOFF_MAX) -> bool:
    """An entry not moved on for twice the cap is stale: the next failure starts from scratch."""
    return now - entry.last_update > 2 * maximum


def backoff_next(entry: BackoffEntry | None, now: float, *, initial: float = BACKOFF_INITIAL,
                 maximum: float = BACKOFF_MAX) -> BackoffEntry:
    """The entry after one more failure at ``now``: initial delay, or double the last (capped)."""
    if entry is None or backoff_expired(entry, now, maximum):
        return BackoffEntry(initial, now)
    return BackoffEntry(min(entry.delay * 2, maximum), now)


def backoff_remaining_since(entry: BackoffEntry | None, event_time: float, now: float,
                            maximum: float = BACKOFF_MAX) -> float:
    """Seconds left of the back-off counted from ``event_time`` (a container's exit); 0 = none."""
    if entry is None or backoff_expired(entry, now, maximum):
        return 0.0
    return max(0.0, entry.delay - (now - event_time))


def backoff_remaining_since_update(entry: BackoffEntry | None, now: float,
                                   maximum: float = BACKOFF_MAX) -> float:
    """Seconds left of the back-off counted from its last update (image pulls); 0 = none."""
    if entry is None or backoff_expired(entry, now, maximum):
        return 0.0
    return max(0.0, entry.delay - (now - entry.last_update))


def gc_backoff(state: Mapping[str, BackoffEntry], now: float,
               maximum: float = BACKOFF_MAX) -> dict[str, BackoffEntry]:
    """``state`` without stale entries (bounded memory)."""
    return {k: e for k, e in state.items() if not backoff_expired(e, now, maximum)}


def container_hash(container: Mapping[str, Any]) -> str:
    """A short stable hash of a container spec: a changed spec gets a fresh back-off."""
    blob = json.dumps(container, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def spec_changed(container: Mapping[str, Any], cs: ContainerStatus) -> bool:
    """The running container was made from another spec (e.g. a new image was set)."""
    h = cs.labels.get(CONTAINER_HASH_LABEL)
    return bool(h) and h != container_hash(container)


def container_backoff_key(pod: Obj, container: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    return (f"{md.get('name', '')}_{md.get('namespace', '')}_{md.get('uid', '')}_"
            f"{container.get('name', '')}_{container_hash(container)}")


def image_backoff_key(pod_uid: str, image: str) -> str:
    return f"{pod_uid}_{image}"


def format_pod(pod: Obj) -> str:
    """``name_namespace(uid)``: how the kubelet names a pod in messages."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def crash_loop_message(pod: Obj, name: str, delay: float) -> str:
    """The waiting message of a container held in CrashLoopBackOff."""
    return f"back-off {go_duration(delay)} restarting failed container={name} pod={format_pod(pod)}"


# -- the decision ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartContainer:
    """Start (a new instance of) a container."""

    name: str
    kind: str                 # "init" | "sidecar" | "regular"
    attempt: int              # the restart number of the new instance (status restartCount)
    backoff_key: str | None = None   # record backoff_next(key) when starting (a restart after exit)


@dataclass(frozen=True)
class KillContainer:
    """Stop a running container; ``message`` is the Killing event's text ("" = the default)."""

    container_id: str
    name: str
    message: str = ""
    reason: str = ""


@dataclass(frozen=True)
class BackOffWait:
    """A container that would be started but is in CrashLoopBackOff for ``remaining`` seconds."""

    name: str
    kind: str
    delay: float
    remaining: float
    message: str              # the status waiting message
    event: str                # the BackOff event message


@dataclass(frozen=True)
class PodActions:
    kill_pod: bool = False                 # stop every container and the sandbox(es)
    create_sandbox: bool = False
    sandbox_id: str | None = None          # the newest sandbox (to use, or the stale one when recreating)
    attempt: int = 0                       # the sandbox attempt to create / in use
    init_to_start: tuple[StartContainer, ...] = ()
    containers_to_start: tuple[StartContainer, ...] = ()
    containers_to_kill: tuple[KillContainer, ...] = ()
    containers_to_remove: tuple[str, ...] = ()  # created but never started leftovers (by id)
    backoff: tuple[BackOffWait, ...] = ()
    initialized: bool = False              # every init container done (or none)
    requeue_after: float | None = None     # look again then (end of the shortest back-off)

    @property
    def idle(self) -> bool:
        """Nothing to do right now (a back-off may still be pending)."""
        return not (self.kill_pod or self.create_sandbox or self.init_to_start
                    or self.containers_to_start or self.containers_to_kill
                    or self.containers_to_remove)


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """An init container with ``restartPolicy: Always`` (a restartable init container)."""
    return container.get("restartPolicy") == "Always"


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def should_restart_on_failure(pod: Obj) -> bool:
    return restart_policy(pod) != "Never"


def attempt_of(cs: ContainerStatus) -> int:
    try:
        return int(cs.labels.get(LABEL_CONTAINER_ATTEMPT, "0"))
    except ValueError:
        return 0


def newest_first(containers: Sequence[ContainerStatus]) -> list[ContainerStatus]:
    """Runtime containers, newest first (creation time, then attempt)."""
    return sorted(containers, key=lambda c: (c.created_at, attempt_of(c)), reverse=True)


def sandbox_attempt(sb: SandboxStatus) -> int:
    try:
        return int(sb.labels.get(SANDBOX_ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


def sandbox_changed(pod: Obj, sandboxes: Sequence[SandboxStatus]) -> tuple[bool, int, str | None]:
    """(needs a new sandbox, attempt for it, id of the newest existing sandbox)."""
    if not sandboxes:
        return True, 0, None
    ordered = sorted(sandboxes, key=lambda s: (s.created_at, sandbox_attempt(s)), reverse=True)
    newest = ordered[0]
    ready = sum(1 for s in ordered if s.state == "ready")
    if ready > 1 or newest.state != "ready":
        return True, sandbox_attempt(newest) + 1, newest.id
    return False, sandbox_attempt(newest), newest.id


class _View:
    """The runtime containers of a pod, by name, newest first."""

    def __init__(self, containers: Sequence[ContainerStatus]) -> None:
        self.by_name: dict[str, list[ContainerStatus]] = {}
        for c in newest_first(containers):
            self.by_name.setdefault(c.name, []).append(c)

    def latest(self, name: str) -> ContainerStatus | None:
        got = self.by_name.get(name)
        return got[0] if got else None


def _api_restart_count(pod: Obj, name: str) -> int | None:
    """restartCount of ``name`` in the stored API status, if that status saw the container run."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or ():
            if isinstance(cs, dict) and cs.get("name") == name and cs.get("containerID"):
                try:
                    return int(cs.get("restartCount") or 0)
                except (TypeError, ValueError):
                    return 0
    return None


def next_attempt(pod: Obj, view: _View, name: str) -> int:
    """The restart number for a new instance of ``name``: one more than the newest runtime one, or
    (when the runtime has none, e.g. after a reboot) one more than the API status recorded."""
    latest = view.latest(name)
    if latest is not None:
        return attempt_of(latest) + 1
    api = _api_restart_count(pod, name)
    return 0 if api is None else api + 1


def should_container_be_restarted(pod: Obj, name: str, view: _View) -> bool:
    """Upstream ``ShouldContainerBeRestarted`` for a regular container."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    cs = view.latest(name)
    if cs is None:
        return True
    if cs.state == ContainerState.RUNNING:
        return False
    if cs.state in (ContainerState.UNKNOWN, ContainerState.CREATED):
        return True
    policy = restart_policy(pod)
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return (cs.exit_code or 0) != 0
    return True


def _succeeded(cs: ContainerStatus | None) -> bool:
    return cs is not None and cs.state == ContainerState.EXITED and (cs.exit_code or 0) == 0


def _failed(cs: ContainerStatus) -> bool:
    """An init container that did not succeed (exited non-zero, or unknown)."""
    if cs.state == ContainerState.EXITED:
        return (cs.exit_code or 0) != 0
    return cs.state == ContainerState.UNKNOWN


@dataclass
class _Plan:
    """The mutable working copy of PodActions while deciding."""

    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: str | None = None
    attempt: int = 0
    init_idx: list[int] = field(default_factory=list)
    start_idx: list[int] = field(default_factory=list)
    kill: dict[str, KillContainer] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


def _find_next_init_done(pod: Obj, view: _View) -> bool:
    """Whether every (regular) init container finished successfully (``findNextInitContainerToRun``
    reporting done): the last init container with a status exited with 0 and is the last one."""
    inits = (pod.get("spec") or {}).get("initContainers") or []
    if not inits:
        return True
    for c in reversed(inits):
        cs = view.latest(c.get("name", ""))
        if cs is not None and _failed(cs):
            return False
    for i in range(len(inits) - 1, -1, -1):
        cs = view.latest(inits[i].get("name", ""))
        if cs is None:
            continue
        if cs.state == ContainerState.RUNNING:
            return False
        if cs.state == ContainerState.EXITED:
            return i == len(inits) - 1
    return False


def _init_actions(pod: Obj, view: _View, probes: ProbeResults, plan: _Plan) -> bool:
    """Upstream ``computeInitContainerActions``; returns whether the pod is initialized."""
    spec = pod.get("spec") or {}
    inits = spec.get("initContainers") or []
    if not inits:
        return True
    initialized = False
    for c in spec.get("containers") or ():
        cs = view.latest(c.get("name", ""))
        if cs is not None and cs.state in (ContainerState.CREATED, ContainerState.RUNNING):
            initialized = True
            break
    previously = initialized
    restart_on_failure = should_restart_on_failure(pod)
    for i in range(len(inits) - 1, -1, -1):
        c = inits[i]
        name = c.get("name", "")
        cs = view.latest(name)
        if cs is None:
            if previously and is_sidecar(c):
                plan.init_idx.append(i)
            continue
        if previously and not is_sidecar(c):
            continue  # after initialization only sidecars are kept running
        if cs.state == ContainerState.CREATED:
            plan.init_idx.append(i)  # created but never started (a crash in between): again
        elif cs.state == ContainerState.RUNNING:
            if is_sidecar(c) and _sidecar_started(c, cs, i, probes, plan):
                if i == len(inits) - 1:
                    initialized = True
                elif not previously:
                    plan.init_idx.append(i + 1)  # started for the first time: on to the next one
                if spec_changed(c, cs):
                    plan.kill[cs.id] = KillContainer(cs.id, name, f"Init container {name} definition changed")
                    plan.init_idx.append(i)
                elif c.get("livenessProbe") and probes.get((cs.id, "liveness")) == FAILURE:
                    plan.kill[cs.id] = KillContainer(
                        cs.id, name, f"Init container {name} failed liveness probe", REASON_LIVENESS)
                    plan.init_idx.append(i)
        elif cs.state == ContainerState.EXITED:
            if is_sidecar(c):
                plan.init_idx.append(i)
            elif _failed(cs):
                if not restart_on_failure:
                    plan.kill_pod = True
                    plan.init_idx = []
                    return False
                plan.init_idx.append(i)
            elif i == len(inits) - 1:
                initialized = True
            else:
                plan.init_idx.append(i + 1)
        else:  # unknown
            if not is_sidecar(c) and not restart_on_failure:
                plan.kill_pod = True
                plan.init_idx = []
                return False
            plan.kill[cs.id] = KillContainer(
                cs.id, name, f'Init container is in "{cs.state.value}" state, try killing it before restart',
                REASON_UNKNOWN)
            plan.init_idx.append(i)
        previously = True
    if not previously:
        plan.init_idx.append(0)
    plan.init_idx.reverse()
    return initialized


def _sidecar_started(c: Mapping[str, Any], cs: ContainerStatus, i: int, probes: ProbeResults,
                     plan: _Plan) -> bool:
    """Whether a running sidecar counts as started: no startup probe, or it passed. A failed
    startup probe kills and restarts it (recorded in ``plan``); no result yet means wait."""
    if not c.get("startupProbe"):
        return True
    startup = probes.get((cs.id, "startup"))
    if startup == SUCCESS:
        return True
    if startup == FAILURE:
        name = str(c.get("name", ""))
        plan.kill[cs.id] = KillContainer(cs.id, name, f"Init container {name} failed startup probe",
                                         REASON_STARTUP)
        plan.init_idx.append(i)
    return False


def compute_pod_actions(pod: Obj, sandboxes: Sequence[SandboxStatus],
                        containers: Sequence[ContainerStatus], *, now: float,
                        backoff_state: Mapping[str, BackoffEntry],
                        probe_results: ProbeResults | None = None) -> PodActions:
    """Decide what to do for ``pod`` (see the module docstring). Pure: nothing is changed.

    ``sandboxes`` / ``containers``: everything the runtime has for this pod (any sandbox);
    ``now``: unix seconds; ``backoff_state``: container back-offs by ``container_backoff_key``;
    ``probe_results``: latest liveness / startup results by (container id, kind).
    """
    probes = probe_results or {}
    spec = pod.get("spec") or {}
    regular = list(spec.get("containers") or [])
    inits = list(spec.get("initContainers") or [])
    view = _View(containers)
    create, attempt, sandbox_id = sandbox_changed(pod, sandboxes)
    plan = _Plan(kill_pod=create, create_sandbox=create, sandbox_id=sandbox_id, attempt=attempt)
    initialized = False

    if create:
        if not should_restart_on_failure(pod) and attempt != 0 and containers:
            plan.create_sandbox = False  # a Never pod that already ran: just make sure it is dead
            return _finish(pod, plan, view, now, backoff_state, initialized)
        to_start = [i for i, c in enumerate(regular)
                    if not (restart_policy(pod) == "OnFailure"
                            and _succeeded(view.latest(c.get("name", ""))))]
        if not to_start and _find_next_init_done(pod, view):
            plan.create_sandbox = False
            return _finish(pod, plan, view, now, backoff_state, initialized)
        if inits:
            plan.init_idx = [0]
        else:
            plan.start_idx = to_start
            initialized = True
        return _finish(pod, plan, view, now, backoff_state, initialized)

    initialized = _init_actions(pod, view, probes, plan)
    if plan.kill_pod or not initialized:
        return _finish(pod, plan, view, now, backoff_state, initialized)

    keep = 0
    for idx, c in enumerate(regular):
        name = c.get("name", "")
        cs = view.latest(name)
        if cs is None or cs.state != ContainerState.RUNNING:
            if should_container_be_restarted(pod, name, view):
                plan.start_idx.append(idx)
                if cs is not None and cs.state == ContainerState.UNKNOWN:
                    plan.kill[cs.id] = KillContainer(
                        cs.id, name, f'Container is in "{cs.state.value}" state, try killing it before restart',
                        REASON_UNKNOWN)
                elif cs is not None and cs.state == ContainerState.CREATED:
                    plan.remove.append(cs.id)
            continue
        restart = should_restart_on_failure(pod)
        if spec_changed(c, cs):
            message, reason, restart = f"Container {name} definition changed", "", True
        elif c.get("livenessProbe") and probes.get((cs.id, "liveness")) == FAILURE:
            message, reason = f"Container {name} failed liveness probe", REASON_LIVENESS
        elif c.get("startupProbe") and probes.get((cs.id, "startup")) == FAILURE:
            message, reason = f"Container {name} failed startup probe", REASON_STARTUP
        else:
            keep += 1
            continue
        if restart:
            message += ", will be restarted"
            plan.start_idx.append(idx)
        plan.kill[cs.id] = KillContainer(cs.id, name, message, reason)

    if keep == 0 and not plan.start_idx:
        plan.kill_pod = True
        plan.init_idx = []  # sidecars must not keep a finished pod alive
    return _finish(pod, plan, view, now, backoff_state, initialized)


def _finish(pod: Obj, plan: _Plan, view: _View, now: float,
            backoff_state: Mapping[str, BackoffEntry], initialized: bool) -> PodActions:
    """Turn container indexes into start actions, holding back those in CrashLoopBackOff."""
    spec = pod.get("spec") or {}
    inits = list(spec.get("initContainers") or [])
    regular = list(spec.get("containers") or [])
    waits: list[BackOffWait] = []
    init_starts: list[StartContainer] = []
    starts: list[StartContainer] = []

    def gate(c: Mapping[str, Any], kind: str) -> StartContainer | None:
        name = str(c.get("name", ""))
        latest = view.latest(name)
        key = None
        if latest is not None and latest.state == ContainerState.EXITED and plan.kill.get(latest.id) is None:
            key = container_backoff_key(pod, c)
            entry = backoff_state.get(key)
            finished = latest.finished_at if latest.finished_at is not None else now
            remaining = backoff_remaining_since(entry, finished, now)
            if remaining > 0 and entry is not None:
                waits.append(BackOffWait(
                    name, kind, entry.delay, remaining, crash_loop_message(pod, name, entry.delay),
                    f"Back-off restarting failed container {name} in pod {format_pod(pod)}"))
                return None
        return StartContainer(name, kind, next_attempt(pod, view, name), key)

    seen: set[int] = set()
    for i in plan.init_idx:
        if i in seen or i >= len(inits):
            continue
        seen.add(i)
        c = inits[i]
        got = gate(c, "sidecar" if is_sidecar(c) else "init")
        if got is not None:
            init_starts.append(got)
        elif not is_sidecar(c):
            break  # a regular init container in back-off blocks the ones after it
    for i in dict.fromkeys(plan.start_idx):
        got = gate(regular[i], "regular")
        if got is not None:
            starts.append(got)
    requeue = min((w.remaining for w in waits), default=None)
    return PodActions(
        kill_pod=plan.kill_pod, create_sandbox=plan.create_sandbox, sandbox_id=plan.sandbox_id,
        attempt=plan.attempt, init_to_start=tuple(init_starts), containers_to_start=tuple(starts),
        containers_to_kill=tuple(plan.kill.values()), containers_to_remove=tuple(plan.remove),
        backoff=tuple(waits), initialized=initialized, requeue_after=requeue)
