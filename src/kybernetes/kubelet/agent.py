"""The kubelet: registers its Node, keeps its Lease fresh, and runs the pods bound to it through a
container runtime.

    kubelet = Kubelet(client, node_name="node-1", data_dir="/var/lib/kyb/kubelet", runtime=runtime,
                      images=ImageStore(data_dir / "images"),
                      volumes=lambda source: VolumeManager(data_dir / "pods", source),
                      node_ip="10.0.0.5", cluster_dns=["10.96.0.10"], server_port=10250)
    await kubelet.run()          # until cancelled; containers keep running after it returns

Loops (one TaskGroup):

* **registration** (at start, retried): the Node with the machine's capacity, allocatable,
  addresses, nodeInfo and conditions (``nodeinfo.py``); an existing Node gets our labels and a
  fresh status. ``spec.podCIDR`` set by the IPAM controller is used when none was given.
* **lease** every 10 s (``lease.renew_lease``); **node status** every 10 s, posted when it changed
  (memory / disk pressure, runtime health) or every 5 min.
* **pods**: an informer over ``spec.nodeName=<node>`` feeds the pod workers (``podworker.py``),
  which drive ``podsync.PodSyncer``; mirror pods are not run but tracked for the static pods.
* **PLEG** (every ``relist_period``, 1 s): list the runtime's sandboxes and containers and wake the
  worker of every pod whose containers changed (a container that exited is noticed within a second).
* **housekeeping** (every 2 s): runtime sandboxes of pods the kubelet does not know (deleted while
  it was down) are stopped and removed with their volumes; mirror pods are created / deleted for
  the static pods; stale back-off entries are dropped.
* **static pods** from ``pod_manifest_path`` (re-read every ``static_check_interval``).

Restart safety: nothing about running pods is kept in memory only. A new Kubelet on the same data
dir finds the sandboxes and containers through their labels (the runtime persists them), so a
pod's worker sees its containers running and starts nothing; restart counts come from the
containers' attempt labels (the API status when the runtime has none).

``Kubelet`` is also the streaming server's ``PodLocator`` and the volume manager's
``ObjectSource``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..api import meta as m
from ..client.errors import AlreadyExists, ApiError, ClientError, Conflict, NotFound
from ..client.events import EventRecorder
from ..client.informer import InformerFactory, SharedInformer
from ..client.keys import DeletedFinalStateUnknown, tombstone_object
from ..client.resources import NODES, PODS, SERVICES
from ..client.rest import ApiClient
from ..util.clock import Clock, RealClock
from . import lease as leases
from .actions import gc_backoff, newest_first
from .node import heartbeat_deadline, node_status_changed, registration_patch
from .nodeinfo import (
    MAX_PODS,
    MachineInfo,
    build_real_node,
    node_config,
    read_machine_info,
    read_pressure,
    real_node_status,
    with_pod_cidr,
)
from .podstatus import KUBELET_CONDITIONS
from .podsync import PodSyncer
from .podworker import PodWorkers
from .prober import ProbeManager, ProbeTarget
from .startslots import StartSlots
from .runtime.base import (
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    Runtime,
    SandboxStatus,
)
from .server import Located, StreamError
from .source import ApiObjectSource
from .static import is_mirror, load_static_pods, mirror_actions, mirror_pod

log = logging.getLogger(__name__)
Obj = dict[str, Any]

STATUS_REPORT_INTERVAL = 300.0
ORPHAN_GRACE = 2.0


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _package_version() -> str:
    """This kybernetes' version (what a runtime without one of its own reports)."""
    try:
        return importlib.metadata.version("kybernetes")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


_VOLATILE_META = ("resourceVersion", "managedFields", "generation")


def _only_kubelet_status_changed(old: Obj, new: Obj) -> bool:
    """Whether ``new`` differs from ``old`` only in what the kubelet itself writes (its status
    fields and conditions), so that it is the echo of a status write."""
    if old.get("spec") != new.get("spec"):
        return False
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    if {k: v for k, v in om.items() if k not in _VOLATILE_META} != {
            k: v for k, v in nm.items() if k not in _VOLATILE_META}:
        return False

    def foreign(pod: Obj) -> list[Any]:
        return [c for c in (pod.get("status") or {}).get("conditions") or ()
                if c.get("type") not in KUBELET_CONDITIONS]
    return foreign(old) == foreign(new) and (old.get("status") or {}).get("phase") not in (
        "Succeeded", "Failed") and (new.get("status") or {}).get("phase") == (old.get("status") or {}).get("phase")


class Kubelet:
    """A node agent over a real runtime (see the module docstring).

    Keyword arguments:

    * ``node_name``, ``node_ip``: the Node to register and its InternalIP (also the pods' hostIP).
    * ``data_dir``: the kubelet's directory (capacity of ``ephemeral-storage`` is its filesystem).
    * ``runtime``: a ``runtime.base.Runtime``; ``runtime_version`` is reported as
      ``nodeInfo.containerRuntimeVersion`` (default ``<runtime.name>://<runtime.version>``, else
      the kybernetes version; for runc pass ``f"runc://{await nodeinfo.runc_version()}"``).
    * ``images``: the image store; used as ``await asyncio.to_thread(images.get, ref)`` (an
      ``Image`` or None) and ``await images.pull(ref, auths=..., insecure_registries=...)``.
    * ``volumes``: a factory ``(ObjectSource) -> VolumeManager`` (the kubelet passes itself), or a
      ready VolumeManager.
      Used: ``setup(pod, node)``, ``refresh(pod, node)``, ``teardown(uid)``,
      ``prepare_mounts(pod, container, paths, env=...)``.
    * ``cluster_dns``, ``cluster_domain``: for the pods' resolv.conf (ClusterFirst).
    * ``pod_cidr``: the node's pod range when known up front (else the Node's ``spec.podCIDR``).
    * ``server_port``: the kubelet server's port, reported in ``daemonEndpoints``.
    * ``pod_manifest_path``: a directory of static pod manifests (None: no static pods).
    * ``insecure_registries``: registries pulled from over plain HTTP (loopback ones always are).
    * ``node_labels``: extra labels for the Node; ``max_pods`` (110).
    * ``clock``: injected time (tests); intervals: ``relist_period`` (1 s), ``resync_interval``
      (60 s), ``volume_refresh_interval`` (10 s: configMap / secret / token updates),
      ``static_check_interval`` (20 s), ``node_status_interval`` (10 s), ``lease_interval`` (10 s),
      ``housekeeping_interval`` (2 s).
    * ``host_resolv_conf``: the host resolv.conf the pods' DNS falls back to / extends.
    * ``recorder``: an EventRecorder (default: one of our own, run by ``run()``).
    """

    def __init__(self, client: ApiClient, *, node_name: str, data_dir: str | Path, runtime: Runtime,
                 images: Any, volumes: Callable[[Any], Any], node_ip: str,
                 cluster_dns: Sequence[str] = (), cluster_domain: str = "cluster.local",
                 pod_cidr: str | None = None, clock: Clock | None = None, server_port: int = 10250,
                 runtime_version: str | None = None, pod_manifest_path: str | Path | None = None,
                 insecure_registries: set[str] | None = None,
                 node_labels: Mapping[str, str] | None = None, max_pods: int = MAX_PODS,
                 relist_period: float = 1.0, resync_interval: float = 60.0,
                 volume_refresh_interval: float = 10.0, static_check_interval: float = 20.0,
                 node_status_interval: float = 10.0, lease_interval: float = leases.RENEW_INTERVAL,
                 housekeeping_interval: float = 2.0, host_resolv_conf: str | None = "/etc/resolv.conf",
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.node_name = node_name
        self.data_dir = Path(data_dir)
        self.runtime = runtime
        self.runtime_name = str(getattr(runtime, "name", "runtime"))
        self.runtime_version = runtime_version or (
            f"{self.runtime_name}://{getattr(runtime, 'version', None) or _package_version()}")
        self.images = images
        self.node_ip = node_ip
        self.cluster_dns = list(cluster_dns)
        self.cluster_domain = cluster_domain
        self._pod_cidr = pod_cidr
        self.clock: Clock = clock or RealClock()
        self.server_port = server_port
        self.pod_manifest_path = Path(pod_manifest_path) if pod_manifest_path else None
        self.insecure_registries = set(insecure_registries or ())
        self.node_labels = dict(node_labels or {})
        self.max_pods = max_pods
        self.relist_period = relist_period
        self.volume_refresh_interval = volume_refresh_interval
        self.static_check_interval = static_check_interval
        self.node_status_interval = node_status_interval
        self.lease_interval = lease_interval
        self.housekeeping_interval = housekeeping_interval
        self.host_resolv_conf = host_resolv_conf
        self.host_resolv: str | None = None
        self.host_hosts: str | None = None

        self.factory = InformerFactory(client, clock=self.clock)
        self.pod_informer: SharedInformer = self.factory.informer(
            PODS, field_selector=f"spec.nodeName={node_name}")
        self.node_informer: SharedInformer = self.factory.informer(
            NODES, field_selector=f"metadata.name={node_name}")
        self.service_informer: SharedInformer = self.factory.informer(SERVICES)
        self.source = ApiObjectSource(client, services=self.service_informer, clock=self.clock)
        # a factory taking the ObjectSource (this kubelet), or a ready VolumeManager
        self.volumes = volumes if hasattr(volumes, "setup") else volumes(self)
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client, "kubelet", host=node_name, clock=self.clock)
        self.probes = ProbeManager(runtime, status_of=self.status_of, on_change=self._probe_changed,
                                   event=self._probe_event, target_of=self.probe_target, clock=self.clock)
        self.syncer = PodSyncer(self)
        self.workers = PodWorkers(self.syncer, clock=self.clock, resync_interval=resync_interval)

        # per-pod state (all rebuilt from the runtime and the API after a restart)
        self.statuses: dict[str, Obj] = {}          # last computed status, by uid
        self.written: dict[str, Obj] = {}           # last status written to the API, by uid
        self.synced: set[str] = set()               # pods synced at least once (podsync's first status)
        self.reasons: dict[str, dict[str, tuple[str, str]]] = {}   # start failures (reason cache)
        self.start_slots = StartSlots()     # CPU-heavy start steps: a few at a time, oldest pod first
        self.backoff: dict[str, Any] = {}           # container back-offs (actions.BackoffEntry)
        self.image_backoff: dict[str, Any] = {}
        self.messages: dict[str, str] = {}          # FallbackToLogsOnError messages by container id
        self.volume_paths: dict[str, dict[str, str]] = {}
        self.volume_refreshed: dict[str, float] = {}
        self.runtime_pods: dict[str, tuple[list[SandboxStatus], list[ContainerStatus]]] = {}
        self.static_pods: dict[str, Obj] = {}       # uid -> static pod
        self.mirrors: dict[tuple[str, str], Obj] = {}
        self._fingerprints: dict[str, tuple[Any, ...]] = {}
        self._orphans_seen: dict[str, float] = {}

        self.info: MachineInfo | None = None
        self.node_uid: str | None = None
        self.runtime_ok = True
        self._last_status_post: float | None = None
        self.registered = asyncio.Event()
        self.ready = asyncio.Event()
        self._static_loaded = self.pod_manifest_path is None
        self.status_writes = 0
        self.deletes = 0
        self.relists = 0
        self.orphans_removed = 0

        self.pod_informer.add_event_handler(on_add=self._on_pod, on_update=self._on_pod_update,
                                            on_delete=self._on_pod_delete)

    # -- informer handlers (no I/O) -------------------------------------------------------------------
    def _on_pod(self, pod: Obj) -> None:
        if is_mirror(pod):
            key = (m.namespace_of(pod), m.name_of(pod))
            old = self.mirrors.get(key)
            self.mirrors[key] = pod
            if old is None or _uid(old) != _uid(pod):  # a new mirror: give it the static pod's status
                static_uid = (pod["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror", "")
                self.written.pop(static_uid, None)
                self.workers.sync(static_uid)
            return
        self.workers.update(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if is_mirror(new) or not _only_kubelet_status_changed(old, new):
            self._on_pod(new)
        else:  # the echo of our own status write: keep the newest object, no need to look again
            self.workers.update(new, wake=False)

    def _on_pod_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = tombstone_object(obj)
        if is_mirror(pod):
            key = (m.namespace_of(pod), m.name_of(pod))
            if self.mirrors.get(key, {}).get("metadata", {}).get("uid") == _uid(pod):
                del self.mirrors[key]
            return
        self.workers.remove(_uid(pod), pod)

    def _probe_changed(self, uid: str) -> None:
        self.workers.sync(uid)

    # -- state the syncer and others read --------------------------------------------------------------
    def status_of(self, uid: str) -> Obj | None:
        return self.statuses.get(uid)

    def pods(self) -> list[Obj]:
        """Every pod this kubelet runs (API and static), for the stats provider."""
        return self.workers.pods()

    def node_obj(self) -> Obj | None:
        return self.node_informer.lister().get(self.node_name)

    def current_pod_cidr(self) -> str | None:
        if self._pod_cidr:
            return self._pod_cidr
        node = self.node_obj() or {}
        return (node.get("spec") or {}).get("podCIDR") or None

    def pod_exists(self, uid: str) -> bool:
        """Whether the pod (or the mirror of a static pod) is still in the API."""
        if uid in self.static_pods:
            pod = self.static_pods[uid]
            return (m.namespace_of(pod), m.name_of(pod)) in self.mirrors
        return any(_uid(p) == uid for p in self.pod_informer.lister().list())

    def is_static(self, pod: Obj) -> bool:
        return _uid(pod) in self.static_pods

    def mirror_exists(self, pod: Obj) -> bool:
        mirror = self.mirrors.get((m.namespace_of(pod), m.name_of(pod)))
        return mirror is not None and (mirror["metadata"].get("annotations") or {}).get(
            "kubernetes.io/config.mirror") == _uid(pod)

    def remember_runtime(self, uid: str, sandboxes: list[SandboxStatus],
                         containers: list[ContainerStatus]) -> None:
        self.runtime_pods[uid] = (list(sandboxes), list(containers))

    def remember_sandbox(self, uid: str, sb: SandboxStatus) -> None:
        sbs, cs = self.runtime_pods.get(uid, ([], []))
        self.runtime_pods[uid] = ([s for s in sbs if s.id != sb.id] + [sb], cs)

    def sandbox_of(self, uid: str) -> SandboxStatus | None:
        """The newest ready sandbox of ``uid`` (from the last look at the runtime)."""
        sbs = [s for s in self.runtime_pods.get(uid, ([], []))[0] if s.state == "ready"]
        return max(sbs, key=lambda s: s.created_at) if sbs else None

    def forget_pod(self, uid: str) -> None:
        for d in (self.statuses, self.written, self.reasons, self.volume_paths, self.volume_refreshed,
                  self.runtime_pods, self._fingerprints):
            d.pop(uid, None)
        self.synced.discard(uid)
        self.start_slots.forget(uid)
        for key in [k for k in self.image_backoff if k.startswith(f"{uid}_")]:
            del self.image_backoff[key]
        for key in [k for k in self.backoff if f"_{uid}_" in k]:
            del self.backoff[key]

    def probe_target(self, uid: str, container_id: str, container: Mapping[str, Any]) -> ProbeTarget | None:
        sb = self.sandbox_of(uid)
        if sb is None:
            return None
        pod = next((p for p in self.workers.pods() if _uid(p) == uid), None)
        host_net = bool(((pod or {}).get("spec") or {}).get("hostNetwork"))
        return ProbeTarget(self.runtime, container_id, sb.id, self.node_ip if host_net else sb.ip, container)

    # -- events ---------------------------------------------------------------------------------------------
    def pod_event(self, pod: Obj, type_: str, reason: str, message: str,
                  container: str | None = None) -> None:
        md = pod.get("metadata") or {}
        ref: Obj = {"kind": "Pod", "apiVersion": "v1", "name": md.get("name"),
                    "namespace": md.get("namespace"), "uid": md.get("uid")}
        if md.get("resourceVersion"):
            ref["resourceVersion"] = md["resourceVersion"]
        if container is not None:
            init = any(c.get("name") == container for c in (pod.get("spec") or {}).get("initContainers") or ())
            ref["fieldPath"] = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
        self.recorder.event(ref, type_, reason, message)

    def _probe_event(self, pod: Obj, container: Mapping[str, Any], type_: str, reason: str,
                     message: str) -> None:
        self.pod_event(pod, type_, reason, message, str(container.get("name", "")))

    # -- ObjectSource (for volumes and env) -------------------------------------------------------------
    async def get_configmap(self, ns: str, name: str) -> Obj | None:
        return await self.source.get_configmap(ns, name)

    async def get_secret(self, ns: str, name: str) -> Obj | None:
        return await self.source.get_secret(ns, name)

    async def get_pvc(self, ns: str, name: str) -> Obj | None:
        return await self.source.get_pvc(ns, name)

    async def get_pv(self, name: str) -> Obj | None:
        return await self.source.get_pv(name)

    async def list_services(self, ns: str) -> list[Obj]:
        return await self.source.list_services(ns)

    async def request_token(self, ns: str, service_account: str, *, audiences: list[str],
                            expiration_seconds: int, pod_name: str, pod_uid: str) -> tuple[str, float]:
        return await self.source.request_token(ns, service_account, audiences=audiences,
                                               expiration_seconds=expiration_seconds,
                                               pod_name=pod_name, pod_uid=pod_uid)

    # -- PodLocator (for the streaming server) ----------------------------------------------------------
    def _find_pod(self, ns: str, name: str) -> Obj | None:
        found = None
        for pod in self.workers.pods():
            if m.namespace_of(pod) == ns and m.name_of(pod) == name:
                if found is None or not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    found = pod
        return found

    def locate(self, ns: str, pod: str, container: str | None, *, previous: bool = False) -> Located:
        """Where ``container`` of pod ``ns/pod`` runs (``container`` None: the pod's sandbox)."""
        p = self._find_pod(ns, pod)
        if p is None:
            raise StreamError(404, "NotFound", f'pods "{pod}" not found')
        uid = _uid(p)
        sandboxes, containers = self.runtime_pods.get(uid, ([], []))
        if container is None:
            sb = self.sandbox_of(uid)
            if sb is None:
                raise StreamError(400, "BadRequest", f'pod "{pod}" does not have a running sandbox')
            return Located(container_id="", sandbox_id=sb.id, log_path="", pod_uid=uid)
        spec = p.get("spec") or {}
        specs = {c.get("name"): c for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or ()}
        c = specs.get(container)
        if c is None:
            raise StreamError(400, "BadRequest", f"container {container} is not valid for pod {pod}")
        instances = [cs for cs in newest_first(containers) if cs.name == container]
        if previous:
            prev = next((cs for cs in instances[1:] if cs.state == ContainerState.EXITED), None)
            if prev is None:
                raise StreamError(400, "BadRequest",
                                  f'previous terminated container "{container}" in pod "{pod}" not found')
            cs = prev
        else:
            if not instances:
                raise StreamError(400, "BadRequest", self._waiting_message(uid, container, pod))
            cs = instances[0]
        return Located(container_id=cs.id, sandbox_id=cs.sandbox_id, log_path=cs.log_path, pod_uid=uid,
                       tty=bool(c.get("tty")), stdin=bool(c.get("stdin")))

    def _waiting_message(self, uid: str, container: str, pod: str) -> str:
        reason = "ContainerCreating"
        status = self.statuses.get(uid) or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            if cs.get("name") == container:
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or reason
        text = {"ErrImagePull": "image can't be pulled",
                "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        return f'container "{container}" in pod "{pod}" is waiting to start: {text}'

    # -- node registration and heartbeats --------------------------------------------------------------------
    def _node_config(self) -> Any:
        assert self.info is not None
        return node_config(self.info, name=self.node_name, internal_ip=self.node_ip,
                           runtime_version=self.runtime_version, pod_cidr=self.current_pod_cidr(),
                           labels=self.node_labels, max_pods=self.max_pods)

    async def register(self) -> None:
        """Create our Node (or bring an existing one up to date); retried until it works."""
        delay = 0.5
        while True:
            try:
                await self._register_once()
                self.registered.set()
                return
            except ClientError as e:
                log.warning("registering node %s failed: %s; retrying in %.1fs", self.node_name, e, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _register_once(self) -> None:
        assert self.info is not None
        cfg = self._node_config()
        now = self.clock.wall()
        try:
            created = await self.client.create(NODES, build_real_node(cfg, self.info, now, port=self.server_port))
            self.node_uid = created["metadata"].get("uid")
            existing = created
        except AlreadyExists:
            existing = await self.client.get(NODES, self.node_name)
            self.node_uid = existing["metadata"].get("uid")
            patch = registration_patch(existing, cfg)
            if patch:
                await self.client.patch(NODES, self.node_name, patch)
            if not self._pod_cidr and (existing.get("spec") or {}).get("podCIDR"):
                cfg = with_pod_cidr(cfg, existing["spec"]["podCIDR"])
            status = real_node_status(cfg, self.info, existing.get("status"), now, port=self.server_port,
                                      ready=self.runtime_ok)
            await self.client.patch_status(NODES, self.node_name, {"status": status})
        if not self._pod_cidr and (existing.get("spec") or {}).get("podCIDR"):
            log.info("node %s: pod CIDR %s", self.node_name, existing["spec"]["podCIDR"])
        self._last_status_post = self.clock.monotonic()

    async def _lease_loop(self) -> None:
        while True:
            try:
                await leases.renew_lease(self.client, self.node_name, self.node_uid, self.clock.wall())
            except ClientError as e:
                log.warning("renewing the lease of %s failed: %s", self.node_name, e)
            await self.clock.sleep(self.lease_interval)

    async def update_node_status(self) -> bool:
        """Post the node status when it changed (or is due); True when posted."""
        assert self.info is not None
        node = self.node_obj()
        if node is None:
            try:
                node = await self.client.get(NODES, self.node_name)
            except NotFound:
                await self._register_once()
                return True
        pressure = await asyncio.to_thread(read_pressure, self.data_dir)
        status = real_node_status(self._node_config(), self.info, node.get("status"), self.clock.wall(),
                                  port=self.server_port, pressure=pressure, ready=self.runtime_ok)
        mono = self.clock.monotonic()
        if node_status_changed(node.get("status"), status) or heartbeat_deadline(
                self._last_status_post, mono, STATUS_REPORT_INTERVAL):
            await self.client.patch_status(NODES, self.node_name, {"status": status})
            self._last_status_post = mono
            return True
        return False

    async def _node_status_loop(self) -> None:
        while True:
            await self.clock.sleep(self.node_status_interval)
            try:
                await self.update_node_status()
            except (ClientError, OSError) as e:
                log.warning("updating the status of node %s failed: %s", self.node_name, e)

    # -- PLEG ------------------------------------------------------------------------------------------------
    async def relist(self) -> set[str]:
        """Look at everything the runtime has; wake the workers of pods that changed. Returns
        the uids that changed."""
        try:
            sandboxes = await self.runtime.list_sandboxes()
            containers = await self.runtime.list_containers()
        except Exception as e:
            if self.runtime_ok:
                log.warning("relisting the runtime failed: %r", e)
            self.runtime_ok = False
            return set()
        self.runtime_ok = True
        self.relists += 1
        by_uid: dict[str, tuple[list[SandboxStatus], list[ContainerStatus]]] = {}
        sandbox_uid = {}
        for s in sandboxes:
            uid = s.labels.get(LABEL_POD_UID, "")
            sandbox_uid[s.id] = uid
            by_uid.setdefault(uid, ([], []))[0].append(s)
        for c in containers:
            uid = c.labels.get(LABEL_POD_UID) or sandbox_uid.get(c.sandbox_id, "")
            by_uid.setdefault(uid, ([], []))[1].append(c)
        changed = set()
        for uid, (sbs, cs) in by_uid.items():
            fp = (tuple(sorted((s.id, s.state) for s in sbs)),
                  tuple(sorted((c.id, c.state.value, c.exit_code) for c in cs)))
            if self._fingerprints.get(uid) != fp:
                changed.add(uid)
                self._fingerprints[uid] = fp
            self.runtime_pods[uid] = (sbs, cs)
        for uid in set(self._fingerprints) - set(by_uid):
            del self._fingerprints[uid]
            self.runtime_pods.pop(uid, None)
            changed.add(uid)
        for uid in changed:
            self.workers.sync(uid)
        return changed

    async def _pleg_loop(self) -> None:
        while True:
            await self.clock.sleep(self.relist_period)
            await self.relist()

    # -- housekeeping -----------------------------------------------------------------------------------------
    async def cleanup_orphans(self) -> list[str]:
        """Stop and remove runtime sandboxes of pods no worker knows (deleted while we were away)."""
        if not (self.pod_informer.has_synced and self._static_loaded):
            return []
        known = self.workers.uids()
        now = self.clock.monotonic()
        removed = []
        for uid, (sbs, css) in list(self.runtime_pods.items()):
            if not uid or uid in known or not sbs:
                self._orphans_seen.pop(uid, None)
                continue
            first = self._orphans_seen.setdefault(uid, now)
            if now - first < ORPHAN_GRACE:
                continue  # seen once: a worker may be about to start (informer event in flight)
            labels = sbs[0].labels
            log.info("removing orphaned pod %s/%s (%s)", labels.get(LABEL_POD_NAMESPACE),
                     labels.get(LABEL_POD_NAME), uid)
            live = [c for c in css if c.state == ContainerState.RUNNING]
            await asyncio.gather(*(self.runtime.stop_container(c.id, ORPHAN_GRACE) for c in live),
                                 return_exceptions=True)  # SIGTERM, a short grace, SIGKILL
            for sb in sbs:
                with contextlib.suppress(Exception):
                    await self.runtime.stop_sandbox(sb.id)
                with contextlib.suppress(Exception):
                    await self.runtime.remove_sandbox(sb.id)
            with contextlib.suppress(Exception):
                await self.volumes.teardown(uid)
            self.forget_pod(uid)
            self._orphans_seen.pop(uid, None)
            self.orphans_removed += 1
            removed.append(uid)
        now_wall = self.clock.wall().timestamp()
        self.backoff = gc_backoff(self.backoff, now_wall)
        self.image_backoff = gc_backoff(self.image_backoff, now_wall)
        live = {cs.id for _sbs, css in self.runtime_pods.values() for cs in css}
        for cid in [c for c in self.messages if c not in live]:
            del self.messages[cid]
        return removed

    async def _housekeeping_loop(self) -> None:
        while True:
            await self.clock.sleep(self.housekeeping_interval)
            try:
                await self.cleanup_orphans()
                await self.sync_mirrors()
            except (ClientError, OSError) as e:
                log.warning("housekeeping failed: %s", e)
            except Exception:
                log.exception("housekeeping failed")

    # -- static pods -----------------------------------------------------------------------------------------
    async def load_static(self) -> None:
        """Read the manifest directory; start new static pods, stop removed ones."""
        if self.pod_manifest_path is None:
            return
        pods = await asyncio.to_thread(load_static_pods, self.pod_manifest_path, node_name=self.node_name,
                                       seen=self.clock.wall())
        current = {_uid(p): p for p in pods}
        for uid, pod in current.items():
            if uid not in self.static_pods:
                self.static_pods[uid] = pod
                self.workers.update(pod)
        for uid in list(self.static_pods):
            if uid not in current:
                pod = self.static_pods[uid]
                self.workers.remove(uid, pod)
        self._static_loaded = True

    def _static_gone(self, uid: str) -> bool:
        return uid in self.static_pods and not self.workers.known(uid)

    async def sync_mirrors(self) -> None:
        """Create missing mirror pods, delete stale ones (pure decision in ``static.mirror_actions``)."""
        if not self.pod_informer.has_synced or self.pod_manifest_path is None:
            return
        for uid in [u for u in self.static_pods if self._static_gone(u)]:
            del self.static_pods[uid]
        live = {(m.namespace_of(p), m.name_of(p)): p for uid, p in self.static_pods.items()
                if self.workers.state(uid) == "syncing"}
        create, delete = mirror_actions(live, dict(self.mirrors))
        for mirror in delete:
            try:
                await self.client.delete(PODS, m.name_of(mirror), m.namespace_of(mirror),
                                         grace_period_seconds=0, preconditions={"uid": _uid(mirror)})
            except (NotFound, Conflict):
                pass
        for pod in create:
            try:
                await self.client.create(PODS, mirror_pod(pod, node_uid=self.node_uid), m.namespace_of(pod))
            except AlreadyExists:
                pass
            except ApiError as e:
                log.warning("creating the mirror of static pod %s failed: %s", m.name_of(pod), e)

    async def _static_loop(self) -> None:
        while True:
            await self.clock.sleep(self.static_check_interval)
            try:
                await self.load_static()
            except OSError as e:
                log.warning("reading static pods failed: %s", e)

    # -- running -------------------------------------------------------------------------------------------------
    async def _read_host_files(self) -> None:
        def read(path: str | None) -> str | None:
            if not path:
                return None
            try:
                return Path(path).read_text()
            except OSError:
                return None

        self.host_resolv = await asyncio.to_thread(read, self.host_resolv_conf)
        self.host_hosts = await asyncio.to_thread(read, "/etc/hosts")

    async def run(self) -> None:
        """Register, then run everything until cancelled (containers are left running)."""
        self.info = await asyncio.to_thread(read_machine_info, self.data_dir)
        await self._read_host_files()
        try:
            async with asyncio.TaskGroup() as tg:
                if self._own_recorder:
                    tg.create_task(self.recorder.run(), name="kubelet/events")
                await self.register()
                tg.create_task(self.factory.run(), name="kubelet/informers")
                tg.create_task(self._lease_loop(), name="kubelet/lease")
                await self.relist()
                await self.load_static()
                await self.pod_informer.wait_for_sync()
                await self.node_informer.wait_for_sync()
                tg.create_task(self._node_status_loop(), name="kubelet/node-status")
                tg.create_task(self._pleg_loop(), name="kubelet/pleg")
                tg.create_task(self._housekeeping_loop(), name="kubelet/housekeeping")
                if self.pod_manifest_path is not None:
                    tg.create_task(self._static_loop(), name="kubelet/static-pods")
                self.ready.set()
                log.info("kubelet %s ready (runtime %s)", self.node_name, self.runtime_version)
        finally:
            await self.workers.stop()
            await self.probes.stop()

    def statistics(self) -> dict[str, Any]:
        return {"node": self.node_name, "pods": len(self.workers.uids()), "status_writes": self.status_writes,
                "deletes": self.deletes, "relists": self.relists, "orphans_removed": self.orphans_removed,
                "workers": self.workers.statistics(), "probes": self.probes.statistics(),
                "events": self.recorder.statistics(), "source": self.source.statistics()}

