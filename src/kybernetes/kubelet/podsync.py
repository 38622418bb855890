"""What a pod worker does to one pod: the kubelet's ``SyncPod`` / ``SyncTerminatingPod`` /
``SyncTerminatedPod`` over the runtime protocol.

    syncer = PodSyncer(kubelet)
    result = await syncer.sync_pod(pod)               # status, volumes, actions, status again
    await syncer.sync_terminating_pod(pod, grace)     # preStop, SIGTERM ... SIGKILL, final status
    await syncer.sync_terminated_pod(pod, removed=False)

``sync_pod``: look at the runtime, write the status (when changed), stop here if the pod is
finished (or past ``activeDeadlineSeconds``: Failed/DeadlineExceeded), set up volumes (waiting for
configMaps and secrets: ``FailedMount`` events, retried by the worker), decide with
``actions.compute_pod_actions`` and carry the decision out, then write the status again:

* sandbox: ``SandboxConfig`` with the pod's hostname, resolv.conf (cluster DNS), hostPorts;
  ``FailedCreatePodSandBox`` on failure;
* start a container: back-off bookkeeping, image (policy, ``Pulling``/``Pulled``/``Failed``
  events, ``ErrImagePull`` → ``ImagePullBackOff`` with back-off), environment and command line
  (``envvars``; a missing reference is ``CreateContainerConfigError``), mounts (volume manager),
  user, resources, ``Created``/``Started`` events, then the postStart hook (a failure kills the
  container: ``FailedPostStartHook``); older exited instances beyond the last one are removed;
* kill a container: ``Killing`` event, preStop hook within the grace period, then the runtime's
  SIGTERM → grace → SIGKILL (at least 2 s after a preStop hook, as upstream);
* start failures are remembered per container (the reason cache) and shown as *waiting* reasons.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api import meta as m
from ..api.quantity import int_value, milli_value
from ..client.errors import Conflict, Forbidden, NotFound
from ..client.resources import PODS
from . import podfiles
from .actions import (
    CONTAINER_HASH_LABEL,
    REASON_FAILED_POST_START,
    REASON_LIVENESS,
    REASON_STARTUP,
    SANDBOX_ATTEMPT_LABEL,
    PodActions,
    StartContainer,
    backoff_next,
    backoff_remaining_since_update,
    compute_pod_actions,
    container_hash,
    image_backoff_key,
    is_sidecar,
    newest_first,
)
from .envvars import ConfigError, merge_image_env, resolve_argv, resolve_env
from .hooks import HookError, run_hook, run_pre_stop
from .images import ImagePullError, auths_from_dockerconfig, default_pull_policy
from .podstatus import (
    KUBELET_CONDITIONS,
    TERMINAL,
    active_deadline_remaining,
    compute_pod_status,
    status_patch,
)
from .podworker import SyncResult
from .prober import ProbeTarget
from .runtime.base import (
    LABEL_POD_UID,
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    NotFoundError,
    Resources,
    SandboxConfig,
    SandboxStatus,
    labels_for,
)
from .status import normalize_image
from .volumes import VolumeError

if TYPE_CHECKING:
    from .agent import Kubelet

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MIN_GRACE = 2.0
START_RETRY = 10.0        # a container that failed to start (config, runtime) is tried again then
POST_START_TIMEOUT = 120.0
MAX_TERMINATION_LOG_LINES = 80
MAX_TERMINATION_LOG_BYTES = 2048
API_VOLUME_KEYS = ("configMap", "secret", "projected", "downwardAPI")
# A new pod's first status (Pending, ContainerCreating) waits this long for its start: a pod that
# starts sooner is reported once, already Running, which saves the API server a write and every
# pod watcher an event. Slower starts (image pulls, queued behind other starts) show Pending then.
FIRST_STATUS_GRACE = 1.0


# -- small pure helpers ----------------------------------------------------------------------------------
def find_container(pod: Obj, name: str) -> tuple[Obj | None, bool]:
    """(container spec, is an init container)."""
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or ():
        if c.get("name") == name:
            return c, False
    for c in spec.get("initContainers") or ():
        if c.get("name") == name:
            return c, True
    return None, False


def field_path(name: str, init: bool) -> str:
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


def container_resources(c: Mapping[str, Any]) -> Resources:
    """cgroup settings from requests and limits (shares from the CPU request, quota from the
    limit; a missing request defaults to the limit, as the API does)."""
    res = c.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    r = Resources()
    cpu_req = req.get("cpu", lim.get("cpu"))
    if cpu_req is not None:
        r.cpu_shares = max(2, milli_value(cpu_req) * 1024 // 1000)
    if lim.get("cpu") is not None:
        r.cpu_quota_us = max(1000, milli_value(lim["cpu"]) * r.cpu_period_us // 1000)
    if lim.get("memory") is not None:
        r.memory_limit_bytes = int_value(lim["memory"])
    return r


def container_grace(pod: Obj, c: Mapping[str, Any] | None, reason: str) -> float:
    """Upstream ``setTerminationGracePeriod``."""
    md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if md.get("deletionGracePeriodSeconds") is not None:
        return float(md["deletionGracePeriodSeconds"])
    if spec.get("terminationGracePeriodSeconds") is not None:
        probe = None
        if c is not None and reason == REASON_LIVENESS:
            probe = c.get("livenessProbe")
        elif c is not None and reason == REASON_STARTUP:
            probe = c.get("startupProbe")
        if probe and probe.get("terminationGracePeriodSeconds") is not None:
            return float(probe["terminationGracePeriodSeconds"])
        return float(spec["terminationGracePeriodSeconds"])
    return MIN_GRACE


def go_seconds(seconds: float) -> str:
    """A Go-like duration for the Pulled event (``523ms``, ``1.234s``)."""
    if seconds < 1:
        return f"{max(seconds * 1000, 0.001):.3f}".rstrip("0").rstrip(".") + "ms"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def parse_cri_log(data: bytes) -> list[str]:
    """The text lines of a CRI-format log chunk (partial lines joined)."""
    out: list[str] = []
    partial = ""
    for raw in data.decode(errors="replace").splitlines():
        parts = raw.split(" ", 3)
        if len(parts) < 3:
            continue
        text = parts[3] if len(parts) > 3 else ""
        if parts[2] == "P":
            partial += text
            continue
        out.append(partial + text)
        partial = ""
    if partial:
        out.append(partial)
    return out


def tail_log_message(path: str) -> str:
    """The last 80 lines / 2048 bytes of a container log (FallbackToLogsOnError). Blocking."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError as e:
        return f"Error on reading termination message from logs: {e}"
    lines = parse_cri_log(data)[-MAX_TERMINATION_LOG_LINES:]
    text = "".join(line + "\n" for line in lines)
    return text.encode()[-MAX_TERMINATION_LOG_BYTES:].decode(errors="replace")


def _lookup_user(layer_dirs: Sequence[str], user: str, group: str | None) -> tuple[int, int]:
    """Resolve an image USER (names via the image's /etc/passwd and /etc/group). Blocking."""
    def read(rel: str) -> list[list[str]]:
        for d in reversed(list(layer_dirs)):
            p = Path(d) / rel
            if p.is_file():
                return [line.split(":") for line in p.read_text(errors="replace").splitlines()
                        if line and not line.startswith("#")]
        return []

    passwd = read("etc/passwd")
    if user.isdigit():
        uid = int(user)
        entry = next((e for e in passwd if len(e) > 3 and e[2] == user), None)
    else:
        entry = next((e for e in passwd if e and e[0] == user), None)
        if entry is None or len(entry) < 4:
            raise ConfigError(f"unable to find user {user}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and len(entry) > 3 and entry[3].isdigit() else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in read("etc/group") if e and e[0] == group), None)
            if g is None or len(g) < 3:
                raise ConfigError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    return uid, gid


class PodSyncer:
    """The kubelet's per-pod operations (see the module docstring); state lives on the Kubelet."""

    def __init__(self, kl: Kubelet) -> None:
        self.kl = kl
        self._cleaned: set[str] = set()

    # -- runtime view ---------------------------------------------------------------------------------
    async def inspect(self, uid: str) -> tuple[list[SandboxStatus], list[ContainerStatus]]:
        """Every sandbox and container the runtime has for ``uid``."""
        rt = self.kl.runtime
        sandboxes = await rt.list_sandboxes({LABEL_POD_UID: uid})
        containers: list[ContainerStatus] = []
        for s in sandboxes:
            containers.extend(await rt.list_containers(s.id))
        self.kl.remember_runtime(uid, sandboxes, containers)
        return sandboxes, containers

    # -- events ------------------------------------------------------------------------------------------
    def event(self, pod: Obj, type_: str, reason: str, message: str, container: str | None = None) -> None:
        self.kl.pod_event(pod, type_, reason, message, container)

    # -- status ------------------------------------------------------------------------------------------
    def known_pod(self, pod: Obj) -> Obj:
        """``pod`` with the kubelet-owned parts of its status replaced by what was last written
        (the informer may lag behind our own writes)."""
        uid = str(pod["metadata"].get("uid") or "")
        written = self.kl.written.get(uid)
        if not written:
            return pod
        st = dict(pod.get("status") or {})
        api_conditions = st.get("conditions") or []
        for k, v in written.items():
            if k == "conditions":
                st[k] = [c for c in api_conditions if c.get("type") not in KUBELET_CONDITIONS] + [
                    c for c in v if c.get("type") in KUBELET_CONDITIONS]
            else:
                st[k] = v
        return {**pod, "status": st}

    async def _messages(self, pod: Obj, containers: Sequence[ContainerStatus]) -> dict[str, str]:
        """FallbackToLogsOnError termination messages (cached per exited container)."""
        cache = self.kl.messages
        out: dict[str, str] = {}
        for cs in containers:
            if cs.state != ContainerState.EXITED or (cs.exit_code or 0) == 0 or cs.message:
                continue
            if cs.reason == "ContainerCannotRun" or not cs.log_path:
                continue
            c, _init = find_container(pod, cs.name)
            if c is None or c.get("terminationMessagePolicy") != "FallbackToLogsOnError":
                continue
            if cs.id not in cache:
                cache[cs.id] = await asyncio.to_thread(tail_log_message, cs.log_path)
            out[cs.id] = cache[cs.id]
        return out

    async def make_status(self, pod: Obj, sandboxes: Sequence[SandboxStatus],
                          containers: Sequence[ContainerStatus], *, terminal: bool = False,
                          deadline_exceeded: bool = False) -> Obj:
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        ids = {c.id for c in containers}
        status = compute_pod_status(
            self.known_pod(pod), sandboxes=sandboxes, containers=containers, now=kl.clock.wall(),
            host_ip=kl.node_ip, runtime_name=kl.runtime_name,
            probe_results={k: v for k, v in kl.probes.results.items() if k[0] in ids},
            start_failures=kl.reasons.get(uid, {}), messages=await self._messages(pod, containers),
            pod_is_terminal=terminal, deadline_exceeded=deadline_exceeded)
        kl.statuses[uid] = status
        return status

    async def write_status(self, pod: Obj, status: Obj) -> None:
        """PATCH pods/<name>/status when ``status`` differs from what the API / we last had."""
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        if kl.written.get(uid) == status:
            return
        # against what the API has as far as we know: the informer's copy may not show our last write
        patch = status_patch(self.known_pod(pod).get("status") or {}, status)
        if not patch:
            kl.written[uid] = status
            return
        ns, name = m.namespace_of(pod), m.name_of(pod)
        if kl.is_static(pod) and not kl.mirror_exists(pod):
            return  # the mirror pod is created by the housekeeping; its status comes next sync
        try:
            await kl.client.patch_status(PODS, name, {"status": patch}, ns)
        except NotFound:
            return
        kl.written[uid] = status
        kl.status_writes += 1

    # -- sync ---------------------------------------------------------------------------------------------
    async def sync_pod(self, pod: Obj) -> SyncResult:
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        kl.probes.add_pod(pod)
        kl.probes.update_pod(pod)
        sandboxes, containers = await self.inspect(uid)
        wall = kl.clock.wall()
        known = self.known_pod(pod)
        remaining = active_deadline_remaining(known, wall)
        exceeded = remaining is not None and remaining <= 0
        status = await self.make_status(pod, sandboxes, containers, deadline_exceeded=exceeded)
        if exceeded and (known.get("status") or {}).get("phase") not in TERMINAL:
            self.event(pod, "Normal", "DeadlineExceeded", status.get("message", ""))
        if status.get("phase") in TERMINAL:
            await self._write_terminal(pod, status, containers)
            return SyncResult(terminal=True)
        # the first status goes out while the pod starts (upstream's status manager writes in the
        # background too), for a new pod only if the start takes longer than FIRST_STATUS_GRACE;
        # once sent it is awaited before the next write, so writes stay in order
        delay = FIRST_STATUS_GRACE if uid not in kl.written and uid not in kl.synced else 0.0
        sent: list[bool] = [] if delay else [True]
        kl.synced.add(uid)   # a sync that failed (a volume not there yet...) reports at once next time
        first_write = asyncio.ensure_future(self._write_status_after(delay, sent, pod, status))
        try:
            paths = await self.ensure_volumes(pod)
            auths = await self.pull_auths(pod)
            known = self.known_pod(pod)
            ids = {c.id for c in containers}
            actions = compute_pod_actions(
                known, sandboxes, containers, now=wall.timestamp(), backoff_state=kl.backoff,
                probe_results={k: v for k, v in kl.probes.results.items() if k[0] in ids})
            retry: float | None = None
            if not actions.idle or actions.backoff:
                retry = await self.execute(pod, actions, sandboxes, containers, paths, auths)
                sandboxes, containers = await self.inspect(uid)
                status = await self.make_status(pod, sandboxes, containers)
                await self._settle_first_write(first_write, sent)
                if status.get("phase") in TERMINAL:
                    await self._write_terminal(pod, status, containers)
                    return SyncResult(terminal=True)
                await self.write_status(pod, status)
            else:
                await self._settle_first_write(first_write, sent)
                await self.write_status(pod, status)   # nothing to start: no reason to wait
        except asyncio.CancelledError:
            first_write.cancel()
            raise
        except BaseException:
            # the next sync writes the status again (at once); a write on its way lands first
            if not sent:
                first_write.cancel()
            await asyncio.wait([first_write])
            if not first_write.cancelled():
                first_write.exception()
            raise
        self._trigger_missing_readiness(pod, status)
        if status.get("phase") == "Running":
            kl.start_slots.forget(uid)   # a later restart queues as a new arrival
        waits = [w for w in (actions.requeue_after, retry, remaining, self._refresh_due(pod))
                 if w is not None]
        return SyncResult(requeue_after=max(0.05, min(waits)) if waits else None)

    async def _write_status_after(self, delay: float, sent: list[bool], pod: Obj, status: Obj) -> None:
        if not sent:
            await self.kl.clock.sleep(delay)
            sent.append(True)
        await self.write_status(pod, status)

    @staticmethod
    async def _settle_first_write(task: asyncio.Future[None], sent: list[bool]) -> None:
        """Drop the first write if it is still waiting for its grace; else let it finish (a
        request on its way must land before the next write, or the API could see them swapped)."""
        if not sent:
            task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _write_terminal(self, pod: Obj, status: Obj, containers: Sequence[ContainerStatus]) -> None:
        """A terminal phase is reported only once nothing runs any more (upstream
        ``mergePodStatus``); otherwise termination writes it after stopping the containers."""
        if not any(c.state in (ContainerState.RUNNING, ContainerState.CREATED, ContainerState.UNKNOWN)
                   for c in containers):
            await self.write_status(pod, status)

    def _trigger_missing_readiness(self, pod: Obj, status: Obj) -> None:
        """A running container whose readiness has no result yet: probe it now."""
        for cs in status.get("containerStatuses") or ():
            if cs.get("started") and not cs.get("ready"):
                self.kl.probes.trigger(str(pod["metadata"].get("uid") or ""))
                return

    # -- volumes and secrets ---------------------------------------------------------------------------
    def _has_api_volumes(self, pod: Obj) -> bool:
        return any(any(k in v for k in API_VOLUME_KEYS) for v in (pod.get("spec") or {}).get("volumes") or ())

    def _refresh_due(self, pod: Obj) -> float | None:
        if not self._has_api_volumes(pod):
            return None
        uid = str(pod["metadata"].get("uid") or "")
        last = self.kl.volume_refreshed.get(uid)
        if last is None:
            return None
        return max(0.0, last + self.kl.volume_refresh_interval - self.kl.clock.monotonic())

    async def ensure_volumes(self, pod: Obj) -> dict[str, str]:
        """Volume paths of the pod: set up once, then refreshed every ``volume_refresh_interval``."""
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        paths = kl.volume_paths.get(uid)
        now = kl.clock.monotonic()
        try:
            if paths is None:
                paths = await kl.volumes.setup(pod, kl.node_obj())
                kl.volume_paths[uid] = paths
                kl.volume_refreshed[uid] = now
            elif self._has_api_volumes(pod) and now - kl.volume_refreshed.get(uid, 0.0) >= kl.volume_refresh_interval:
                kl.volume_refreshed[uid] = now
                await kl.volumes.refresh(pod, kl.node_obj())
        except VolumeError as e:
            self.event(pod, "Warning", e.reason or "FailedMount", e.message)
            if paths is None:
                raise
        return paths

    async def pull_auths(self, pod: Obj) -> list[Any]:
        ns = m.namespace_of(pod)
        auths: list[Any] = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or ():
            name = (ref or {}).get("name")
            if not name:
                continue
            secret = await self.kl.source.get_secret(ns, name)
            if secret is None:
                continue
            data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
            try:
                auths.extend(auths_from_dockerconfig(data))
            except Exception as e:  # a malformed pull secret: skip it, as upstream does
                log.warning("pod %s: pull secret %s/%s unusable: %s", m.name_of(pod), ns, name, e)
        return auths

    # -- carrying actions out -------------------------------------------------------------------------------
    async def execute(self, pod: Obj, actions: PodActions, sandboxes: Sequence[SandboxStatus],
                      containers: Sequence[ContainerStatus], paths: dict[str, str],
                      auths: list[Any]) -> float | None:
        """Do what ``actions`` says; returns when to look again for a pending image back-off."""
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        reasons = kl.reasons.setdefault(uid, {})
        if actions.create_sandbox and actions.sandbox_id:
            self.event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
        if actions.kill_pod:
            await self.kill_pod(pod, sandboxes, containers, None)
        else:
            for k in actions.containers_to_kill:
                await self.kill_container(pod, k.container_id, k.name, k.message, k.reason)
        for cid in actions.containers_to_remove:
            with contextlib.suppress(NotFoundError):
                await kl.runtime.remove_container(cid)
        if actions.init_to_start:
            await self.prune_init_containers(pod, containers)
        sandbox = next((s for s in sandboxes if s.id == actions.sandbox_id and s.state == "ready"), None)
        if actions.create_sandbox:
            sandbox = await self.create_sandbox(pod, actions.attempt, sandboxes)
        for b in actions.backoff:
            self.event(pod, "Warning", "BackOff", b.event, b.name)
            reasons[b.name] = ("CrashLoopBackOff", b.message)
        if sandbox is None:
            return None
        retry: list[float] = []
        for s in actions.init_to_start:
            ok = await self.start_container(pod, s, sandbox, paths, auths, retry)
            if not ok and s.kind == "init":
                break
        else:
            for s in actions.containers_to_start:
                await self.start_container(pod, s, sandbox, paths, auths, retry)
        return min(retry) if retry else None

    async def create_sandbox(self, pod: Obj, attempt: int, old: Sequence[SandboxStatus]) -> SandboxStatus:
        kl = self.kl
        md, spec = pod["metadata"], pod.get("spec") or {}
        uid, ns, name = str(md.get("uid") or ""), m.namespace_of(pod), m.name_of(pod)
        try:
            hostname = podfiles.pod_hostname(pod, cluster_domain=kl.cluster_domain)
            dns = podfiles.pod_dns_config(pod, cluster_dns=kl.cluster_dns, cluster_domain=kl.cluster_domain,
                                          host_resolv=kl.host_resolv, node_ips=[kl.node_ip])
            for reason, message in dns.warnings:
                self.event(pod, "Warning", reason, message)
            resolv = podfiles.render_resolv_conf(dns) or (kl.host_resolv or "")
            hosts = ""
            if spec.get("hostNetwork") or spec.get("hostAliases"):
                hosts = podfiles.hosts_file(pod, None, cluster_domain=kl.cluster_domain,
                                            host_hosts=kl.host_hosts)
        except podfiles.PodFileError as e:
            self.event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            raise
        ports = []
        for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            for p in c.get("ports") or ():
                if p.get("hostPort"):
                    ports.append({"containerPort": p.get("containerPort"), "hostPort": p["hostPort"],
                                  "protocol": p.get("protocol") or "TCP", "hostIP": p.get("hostIP") or ""})
        labels = {**labels_for(uid, ns, name), SANDBOX_ATTEMPT_LABEL: str(attempt)}
        cfg = SandboxConfig(
            pod_uid=uid, namespace=ns, name=name, hostname=hostname, labels=labels,
            host_network=bool(spec.get("hostNetwork")), host_ipc=bool(spec.get("hostIPC")),
            host_pid=bool(spec.get("hostPID")), resolv_conf=resolv, hosts=hosts,
            pod_cidr=kl.current_pod_cidr(), port_mappings=ports,
            annotations=dict(md.get("annotations") or {}))
        try:
            async with kl.start_slots.slot(uid):
                sb = await kl.runtime.run_sandbox(cfg)
        except Exception as e:
            self.event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            raise
        for s in old:  # containers of the old sandbox were stopped with it; drop them
            if s.id != sb.id:
                with contextlib.suppress(Exception):
                    await kl.runtime.remove_sandbox(s.id)
        kl.remember_sandbox(uid, sb)
        return sb

    async def ensure_image(self, pod: Obj, c: Mapping[str, Any], auths: list[Any],
                           retry: list[float]) -> Any:
        """The image of ``c`` per its pull policy, with the pull events and back-off."""
        kl = self.kl
        uid, name = str(pod["metadata"].get("uid") or ""), str(c.get("name", ""))
        ref = str(c.get("image") or "")
        policy = str(c.get("imagePullPolicy") or default_pull_policy(ref))
        try:
            present = await asyncio.to_thread(kl.images.get, ref)
        except Exception:
            present = None
        if policy == "Never" and present is None:
            msg = f'Container image "{ref}" is not present with pull policy of Never'
            self.event(pod, "Warning", "ErrImageNeverPull", msg, name)
            raise ImagePullError(msg, "ErrImageNeverPull")
        if present is not None and policy != "Always":
            self.event(pod, "Normal", "Pulled", f'Container image "{ref}" already present on machine', name)
            return present
        key = image_backoff_key(uid, ref)
        now = kl.clock.wall().timestamp()
        left = backoff_remaining_since_update(kl.image_backoff.get(key), now)
        if left > 0:
            msg = f'Back-off pulling image "{ref}"'
            self.event(pod, "Normal", "BackOff", msg, name)
            retry.append(left)
            raise ImagePullError(msg, "ImagePullBackOff")
        self.event(pod, "Normal", "Pulling", f'Pulling image "{ref}"', name)
        start = kl.clock.monotonic()
        try:
            image = await kl.images.pull(ref, auths=auths, insecure_registries=kl.insecure_registries)
        except Exception as e:
            msg = getattr(e, "message", None) or str(e)
            reason = getattr(e, "reason", None) or "ErrImagePull"
            self.event(pod, "Warning", "Failed", f'Failed to pull image "{ref}": {msg}', name)
            entry = backoff_next(kl.image_backoff.get(key), kl.clock.wall().timestamp())
            kl.image_backoff[key] = entry
            retry.append(entry.delay)
            raise ImagePullError(msg, reason) from e
        took = go_seconds(kl.clock.monotonic() - start)
        kl.image_backoff.pop(key, None)
        self.event(pod, "Normal", "Pulled",
                   f'Successfully pulled image "{ref}" in {took} ({took} including waiting). '
                   f"Image size: {getattr(image, 'size', 0)} bytes.", name)
        return image

    async def _user(self, pod: Obj, c: Mapping[str, Any], image: Any) -> tuple[int, int, list[int]]:
        psc = (pod.get("spec") or {}).get("securityContext") or {}
        csc = c.get("securityContext") or {}
        run_uid = csc.get("runAsUser", psc.get("runAsUser"))
        run_gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        groups = [int(g) for g in psc.get("supplementalGroups") or ()]
        if psc.get("fsGroup") is not None:
            groups.append(int(psc["fsGroup"]))
        config = getattr(image, "config", None)
        img_user = str(getattr(config, "user", "") or "")
        if run_uid is not None:
            uid, gid = int(run_uid), 0
            if run_gid is None and img_user:
                _u, _sep, grp = img_user.partition(":")
                if grp.isdigit():
                    gid = int(grp)
        elif img_user:
            user, _sep, grp = img_user.partition(":")
            uid, gid = await asyncio.to_thread(_lookup_user, list(getattr(image, "layer_dirs", []) or []),
                                               user, grp or None)
        else:
            uid, gid = 0, 0
        if run_gid is not None:
            gid = int(run_gid)
        return uid, gid, groups

    async def container_config(self, pod: Obj, c: Mapping[str, Any], s: StartContainer,
                               sandbox: SandboxStatus, image: Any, paths: dict[str, str]) -> ContainerConfig:
        kl = self.kl
        md = pod["metadata"]
        ns = m.namespace_of(pod)
        services = list(await kl.source.list_services(ns))
        if ns != "default":
            services += await kl.source.list_services("default")
        node = kl.node_obj() or {}
        pod_ip = kl.node_ip if (pod.get("spec") or {}).get("hostNetwork") else sandbox.ip
        warnings: list[tuple[str, str]] = []
        env = await resolve_env(pod, dict(c), kl.source, services=services, node_ip=kl.node_ip,
                                pod_ip=pod_ip, node_allocatable=(node.get("status") or {}).get("allocatable"),
                                events=warnings)
        for reason, message in warnings:
            self.event(pod, "Warning", reason, message, s.name)
        config = getattr(image, "config", None)
        argv = resolve_argv(dict(c), config, env)
        mounts = await kl.volumes.prepare_mounts(pod, dict(c), paths, env=env)
        hostname = podfiles.pod_hostname(pod, cluster_domain=kl.cluster_domain)
        merged = merge_image_env(list(getattr(config, "env", []) or []), env, hostname=hostname)
        full_env = list(merged.items()) if isinstance(merged, dict) else list(merged)
        uid, gid, groups = await self._user(pod, c, image)
        sc = c.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        return ContainerConfig(
            name=s.name, image=normalize_image(str(c.get("image") or "")),
            image_id=str(getattr(image, "image_ref", "") or getattr(image, "id", "")),
            rootfs_layers=list(getattr(image, "layer_dirs", []) or []), argv=argv, env=full_env,
            working_dir=str(c.get("workingDir") or getattr(config, "working_dir", "") or "/"),
            uid=uid, gid=gid, supplemental_gids=groups, mounts=mounts,
            labels={**labels_for(str(md.get("uid") or ""), ns, m.name_of(pod), s.name, s.attempt, s.kind),
                    CONTAINER_HASH_LABEL: container_hash(c)},
            resources=container_resources(c), stdin=bool(c.get("stdin")),
            stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
            privileged=bool(sc.get("privileged")), read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")),
            capabilities_add=list(caps.get("add") or []), capabilities_drop=list(caps.get("drop") or []),
            termination_message_path=str(c.get("terminationMessagePath") or "/dev/termination-log"))

    async def start_container(self, pod: Obj, s: StartContainer, sandbox: SandboxStatus,
                              paths: dict[str, str], auths: list[Any], retry: list[float]) -> bool:
        """Start one container (see the module docstring); False when it did not start."""
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        reasons = kl.reasons.setdefault(uid, {})
        c, _init = find_container(pod, s.name)
        if c is None:
            return False
        if s.backoff_key:
            kl.backoff[s.backoff_key] = backoff_next(kl.backoff.get(s.backoff_key), kl.clock.wall().timestamp())
        try:
            image = await self.ensure_image(pod, c, auths, retry)
        except ImagePullError as e:
            reasons[s.name] = (e.reason, e.message)
            self.event(pod, "Warning", "Failed", f"Error: {e.reason}", s.name)
            return False
        try:
            config = await self.container_config(pod, c, s, sandbox, image, paths)
        except (ConfigError, VolumeError, podfiles.PodFileError) as e:
            msg = getattr(e, "message", None) or str(e)
            reasons[s.name] = ("CreateContainerConfigError", msg)
            self.event(pod, "Warning", "Failed", f"Error: {msg}", s.name)
            retry.append(START_RETRY)
            return False
        async with kl.start_slots.slot(uid):
            step = "CreateContainerError"
            try:
                cid = await kl.runtime.create_container(sandbox.id, config)
                self.event(pod, "Normal", "Created", f"Created container: {s.name}", s.name)
                step = "RunContainerError"
                await kl.runtime.start_container(cid)
            except Exception as e:
                reasons[s.name] = (step, str(e))
                self.event(pod, "Warning", "Failed", f"Error: {e}", s.name)
                retry.append(START_RETRY)
                return False
        self.event(pod, "Normal", "Started", f"Started container {s.name}", s.name)
        reasons.pop(s.name, None)
        hook = (c.get("lifecycle") or {}).get("postStart")
        if hook:
            target = ProbeTarget(kl.runtime, cid, sandbox.id, self._pod_ip(pod, sandbox), c)
            try:
                await run_hook(hook, target, pod=pod, timeout=POST_START_TIMEOUT, clock=kl.clock)
            except HookError as e:
                log.info("pod %s: postStart of %s failed: %s", m.name_of(pod), s.name, e.message)
                self.event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed", s.name)
                await self.kill_container(pod, cid, s.name, "FailedPostStartHook", REASON_FAILED_POST_START)
                reasons[s.name] = ("PostStartHookError", e.message)
                return False
        await self.gc_instances(uid, s.name, keep=cid)
        return True

    def _pod_ip(self, pod: Obj, sandbox: SandboxStatus | None) -> str | None:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.kl.node_ip
        return sandbox.ip if sandbox is not None else None

    async def gc_instances(self, uid: str, name: str, *, keep: str) -> None:
        """Remove exited instances of ``name`` except the newest one before ``keep``."""
        _sbs, containers = await self.inspect(uid)
        exited = [c for c in newest_first(containers)
                  if c.name == name and c.id != keep and c.state == ContainerState.EXITED]
        for c in exited[1:]:
            with contextlib.suppress(Exception):
                await self.kl.runtime.remove_container(c.id)

    async def prune_init_containers(self, pod: Obj, containers: Sequence[ContainerStatus]) -> None:
        """Keep only the newest exited instance of each init container (``pruneInitContainersBeforeStart``)."""
        names = {str(c.get("name", "")) for c in (pod.get("spec") or {}).get("initContainers") or ()}
        seen: set[str] = set()
        for c in newest_first(containers):
            if c.name not in names or c.state not in (ContainerState.EXITED, ContainerState.UNKNOWN):
                continue
            if c.name not in seen:
                seen.add(c.name)
                continue
            with contextlib.suppress(Exception):
                await self.kl.runtime.remove_container(c.id)

    # -- killing ---------------------------------------------------------------------------------------------
    async def kill_container(self, pod: Obj, cid: str, name: str, message: str = "", reason: str = "",
                             grace: float | None = None) -> None:
        """Killing event, preStop hook, then stop (SIGTERM, grace, SIGKILL)."""
        kl = self.kl
        c, _init = find_container(pod, name)
        override = grace is not None
        g = grace if grace is not None else container_grace(pod, c, reason)
        self.event(pod, "Normal", "Killing", message or f"Stopping container {name}", name)
        hook = ((c or {}).get("lifecycle") or {}).get("preStop")
        if hook and g > 0:
            sb = kl.sandbox_of(str(pod["metadata"].get("uid") or ""))
            target = ProbeTarget(kl.runtime, cid, sb.id if sb else "", self._pod_ip(pod, sb), c or {})
            used, err = await run_pre_stop(hook, target, pod=pod, grace=g, clock=kl.clock)
            if err is not None:
                log.info("pod %s: preStop of %s failed: %s", m.name_of(pod), name, err.message)
                self.event(pod, "Warning", "FailedPreStopHook", "PreStopHook failed", name)
            g -= used
        if not override:
            g = max(g, MIN_GRACE)  # always a short window before SIGKILL, as upstream
        try:
            await kl.runtime.stop_container(cid, max(0.0, g))
        except NotFoundError:
            pass

    async def kill_pod(self, pod: Obj, sandboxes: Sequence[SandboxStatus],
                       containers: Sequence[ContainerStatus], grace: float | None) -> None:
        """Stop every live container (regular ones first, then sidecars in reverse order) and
        every sandbox of the pod."""
        kl = self.kl
        live = [c for c in containers if c.state in (ContainerState.RUNNING, ContainerState.CREATED,
                                                      ContainerState.UNKNOWN)]
        inits = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("initContainers") or ()
                 if is_sidecar(c)]
        sidecars = sorted((c for c in live if c.name in inits), key=lambda c: -inits.index(c.name))
        regular = [c for c in live if c.name not in inits]
        start = kl.clock.monotonic()
        if regular:
            await asyncio.gather(*(self.kill_container(pod, c.id, c.name, grace=grace) for c in regular))
        for c in sidecars:
            left = None if grace is None else max(0.0, grace - (kl.clock.monotonic() - start))
            await self.kill_container(pod, c.id, c.name, grace=left)
        for sb in sandboxes:
            if sb.state == "ready":
                await kl.runtime.stop_sandbox(sb.id)

    # -- termination ---------------------------------------------------------------------------------------
    async def sync_terminating_pod(self, pod: Obj, grace: float) -> None:
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        kl.probes.update_pod(pod)
        sandboxes, containers = await self.inspect(uid)
        await self.kill_pod(pod, sandboxes, containers, grace)
        sandboxes, containers = await self.inspect(uid)
        if kl.pod_exists(uid):
            remaining = active_deadline_remaining(self.known_pod(pod), kl.clock.wall())
            status = await self.make_status(pod, sandboxes, containers, terminal=True,
                                            deadline_exceeded=remaining is not None and remaining <= 0)
            await self.write_status(pod, status)

    async def sync_terminated_pod(self, pod: Obj, *, removed: bool) -> None:
        kl = self.kl
        uid = str(pod["metadata"].get("uid") or "")
        if uid not in self._cleaned:
            await kl.probes.remove_pod(uid)
            await kl.volumes.teardown(uid)
            kl.volume_paths.pop(uid, None)
            self._cleaned.add(uid)
        if removed:
            sandboxes, _containers = await self.inspect(uid)
            for sb in sandboxes:
                await kl.runtime.remove_sandbox(sb.id)
            kl.forget_pod(uid)
            self._cleaned.discard(uid)
            return
        md = pod.get("metadata") or {}
        # the final delete; not again once the informer saw the pod go (the Node authorizer
        # forbids touching a pod that is no longer bound to us, where the API would say 404)
        if md.get("deletionTimestamp") and not kl.is_static(pod) and kl.pod_exists(uid):
            try:
                await kl.client.delete(PODS, m.name_of(pod), m.namespace_of(pod), grace_period_seconds=0,
                                       preconditions={"uid": uid})
                kl.deletes += 1
            except (NotFound, Conflict):
                pass
            except Forbidden:
                if kl.pod_exists(uid):
                    raise
