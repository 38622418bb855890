"""``kyb kubelet --runtime runc|process``: assemble a real node agent from its parts.

    runtime   RuncRuntime (namespaces, overlayfs, cgroups; CNI bridge network) or ProcessRuntime
    images    ImageStore at D/images
    volumes   VolumeManager at D/pods
    server    KubeletServer (HTTPS :10250): logs, exec, attach, port-forward, /stats/summary
    stats     StatsProvider (cgroups and /proc), sampled in the background
    agent     Kubelet: registers the Node, renews its Lease, runs the pods bound to it

The fake runtime (simulated nodes) lives in ``fake.py``; ``kyb kubelet --runtime fake`` runs it.
Containers keep running when this process stops: a restarted kubelet adopts them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..client.rest import ApiClient
from ..pki.kubeconfig import load_kubeconfig, resolve_context
from ..util import hostnet

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_DOMAIN = "cluster.local"


@dataclass
class KubeletOptions:
    kubeconfig: str
    runtime: str = "runc"                       # runc | process
    node_name: str | None = None                # default: the host name
    data_dir: str = "/var/lib/kybernetes/kubelet"
    node_ip: str | None = None                  # default: the first non-loopback address
    address: str = "0.0.0.0"                    # where the kubelet server listens
    port: int = 10250
    network: str = "cni"                        # cni | none (runc only; none = loopback-only pods)
    bridge: str = "kyb0"
    cgroup_root: str = "kybernetes"
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    pod_manifest_path: str | None = None
    client_ca_file: str | None = None           # CA for clients of the kubelet server (default: the kubeconfig's)
    insecure_registries: list[str] = field(default_factory=list)
    node_labels: dict[str, str] = field(default_factory=dict)
    rotate_certificates: bool = False           # renew the kubeconfig's client certificate by CSR


def default_node_ip() -> str:
    """The default route's address (not merely the first one: that may be another cluster's bridge)."""
    return hostnet.node_ip()


def default_node_name() -> str:
    return socket.gethostname().lower()


class LazyCniNetwork:
    """The CNI bridge network, created on first use from the node's pod CIDR.

    The pod CIDR is assigned by the node IPAM controller after the Node registers, so the network
    cannot be built before the kubelet runs; ``pod_cidr()`` is asked at each pod's set-up.
    """

    def __init__(self, pod_cidr: Callable[[], str | None], *, bridge: str, state_dir: Path) -> None:
        self._pod_cidr = pod_cidr
        self.bridge = bridge
        self.state_dir = state_dir
        self._net: Any = None
        self._cidr: str | None = None

    def _network(self) -> Any:
        from .network.cni import CniNetwork

        cidr = self._pod_cidr()
        if not cidr:
            raise RuntimeError("the node has no pod CIDR yet (is the controller manager running?)")
        if self._net is None or cidr != self._cidr:
            # the runc runtime brings lo up itself; one masquerade chain for the node, not one per pod
            self._net = CniNetwork(pod_cidr=cidr, bridge=self.bridge, state_dir=str(self.state_dir),
                                   masquerade="node", loopback=False)
            self._cidr = cidr
        return self._net

    async def setup(self, netns_path: str, sandbox_id: str, *, port_mappings: list[dict] | None = None) -> str:
        ip: str = await self._network().setup(netns_path, sandbox_id, port_mappings=port_mappings or [])
        return ip

    async def teardown(self, netns_path: str, sandbox_id: str) -> None:
        if self._net is None and not self._pod_cidr():
            return
        await self._network().teardown(netns_path, sandbox_id)


def _kubeconfig_ca(path: str) -> bytes | None:
    import base64

    doc = load_kubeconfig(path)
    try:
        _, cluster, _ = resolve_context(doc, None)
    except Exception:  # noqa: BLE001 - a kubeconfig without contexts simply has no CA to offer
        return None
    data = cluster.get("certificate-authority-data")
    if data:
        return base64.b64decode(data)
    ca = cluster.get("certificate-authority")
    if ca:
        p = Path(ca)
        if not p.is_absolute():
            p = Path(path).parent / p
        return p.read_bytes()
    return None


async def run_kubelet(opts: KubeletOptions) -> None:
    """Run a node agent until cancelled."""
    from .agent import Kubelet
    from .images import ImageStore
    from .server import KubeletServer, ensure_kubelet_serving_cert, kubelet_server_ssl_context
    from .stats import StatsProvider
    from .volumes import VolumeManager

    data = Path(opts.data_dir).absolute()
    data.mkdir(parents=True, exist_ok=True)
    node_name = opts.node_name or default_node_name()
    node_ip = opts.node_ip or default_node_ip()
    holder: dict[str, Any] = {}

    if opts.runtime == "runc":
        if os.geteuid() != 0:
            raise PermissionError("the runc runtime needs root; use --runtime process")
        from .runtime.runc import RuncRuntime

        network = None
        if opts.network == "cni":
            network = LazyCniNetwork(lambda: holder["kubelet"].current_pod_cidr(), bridge=opts.bridge,
                                     state_dir=data / "network")
        runtime: Any = RuncRuntime(data / "runtime", cgroup_root=opts.cgroup_root, network=network,
                                   log_root=data / "logs")
    elif opts.runtime == "process":
        from .runtime.process import ProcessRuntime

        runtime = ProcessRuntime(data / "runtime", log_root=data / "logs")
    else:
        raise ValueError(f"unknown runtime {opts.runtime!r}")

    cert, key = await asyncio.to_thread(ensure_kubelet_serving_cert, data / "pki", node_name,
                                        sorted({node_ip, "127.0.0.1"}))
    if opts.client_ca_file:
        client_ca: Any = opts.client_ca_file
    else:
        ca = _kubeconfig_ca(opts.kubeconfig)
        client_ca = ca.decode() if ca else None

    if opts.runtime == "runc":
        from .nodeinfo import runc_version

        runtime_version = f"runc://{await runc_version() or 'unknown'}"
    else:
        from importlib.metadata import version

        runtime_version = f"process://{version('kybernetes')}"

    async with ApiClient.from_kubeconfig(opts.kubeconfig) as client:
        images = ImageStore(data / "images")
        kubelet = Kubelet(
            client, node_name=node_name, data_dir=data, runtime=runtime, images=images,
            volumes=lambda source: VolumeManager(data / "pods", source), node_ip=node_ip,
            cluster_dns=opts.cluster_dns, cluster_domain=opts.cluster_domain, server_port=opts.port,
            pod_manifest_path=opts.pod_manifest_path, insecure_registries=set(opts.insecure_registries),
            node_labels=opts.node_labels, runtime_version=runtime_version)
        holder["kubelet"] = kubelet
        stats = StatsProvider(runtime, kubelet.pods, node_name)
        server = KubeletServer(kubelet, runtime, stats=stats.summary,
                               ssl_context=kubelet_server_ssl_context(cert, key), host=opts.address,
                               port=opts.port, client_ca=client_ca)
        await server.start()
        log.info("kubelet %s (%s runtime) serving on %s:%d", node_name, opts.runtime, opts.address, opts.port)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(kubelet.run(), name="kubelet")
                tg.create_task(stats.run(), name="kubelet/stats")
                if opts.rotate_certificates:
                    from .bootstrap import rotate_client_certificate

                    tg.create_task(rotate_client_certificate(client, opts.kubeconfig, node_name),
                                   name="kubelet/certificate-rotation")
        finally:
            await server.stop()
            await runtime.close()
