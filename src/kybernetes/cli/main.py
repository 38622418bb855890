"""``kyb``: the kybernetes command line.

    kyb up           a whole single-node cluster on this machine (foreground)
    kyb apiserver    the API server alone
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "/var/lib/kybernetes" if os.geteuid() == 0 else str(Path.home() / ".kybernetes")


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=f"state directory (default {DEFAULT_DATA_DIR})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443)")
    p.add_argument("--advertise-address", default=None, help="address other hosts and pods use to reach the API server")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kyb", description="kybernetes: a small, readable, Kubernetes-compatible orchestrator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="start a single-node cluster in the foreground",
                        description="Start a single-node cluster (for now the API server) in the foreground. "
                                    "Writes DATA_DIR/admin.kubeconfig. Stops cleanly on Ctrl-C / SIGTERM.")
    _add_server_args(up)
    up.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite", help="storage backend (default sqlite)")
    up.add_argument("--etcd-servers", default="", help="comma-separated etcd client URLs (with --store etcd)")
    up.add_argument("--runtime", choices=("none", "runc", "process", "fake"), default="none",
                    help="node runtime: 'runc' runs a kubelet with real containers (root), 'process' runs "
                         "containers as plain host processes (no isolation), 'fake' adds simulated nodes "
                         "(kwok-style); 'none' runs no kubelet (default)")
    up.add_argument("--nodes", type=int, default=1, help="simulated nodes with --runtime fake (sim-1, sim-2, ...)")
    from .secrets import add_server_security_args  # --encryption-provider-config, --audit-*

    add_server_security_args(up)
    up.add_argument("--node-name", default=None, help="the local node's name with --runtime runc|process (default: host name)")
    up.add_argument("--kubelet-port", type=int, default=10250, help="the kubelet server's port (default 10250)")

    api = sub.add_parser("apiserver", help="run the API server alone",
                         description="Run the kybernetes API server (HTTPS, Kubernetes REST API).")
    _add_server_args(api)
    api.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite", help="storage backend (default sqlite)")
    api.add_argument("--etcd-servers", default="", help="comma-separated etcd client URLs (with --store etcd)")
    api.add_argument("--compaction-interval", type=float, default=300.0, help="seconds between store compactions (0: off)")
    api.add_argument("--authorization-mode", default="RBAC,Node", metavar="MODES",
                     help="ordered authorizers: RBAC, Node, AlwaysAllow (default RBAC,Node; system:masters is always allowed)")
    api.add_argument("--service-account-issuer", action="append", default=None, metavar="URL",
                     help="issuer of service-account tokens; repeat to also accept older issuers "
                          "(default https://kubernetes.default.svc.cluster.local)")
    add_server_security_args(api)
    cm = sub.add_parser("controller-manager", help="run the controller manager",
                        description="Run the controllers that keep the cluster in its desired state.")
    cm.add_argument("--kubeconfig", required=True, help="kubeconfig to reach the API server")
    cm.add_argument("--controllers", default="*", help="controllers to run: '*', names, '-name' to disable (default '*')")
    cm.add_argument("--leader-elect", default="true", choices=("true", "false"), help="use leader election (default true)")
    cm.add_argument("--root-ca-file", default=None, help="cluster CA published as kube-root-ca.crt in every namespace")
    cm.add_argument("--service-account-private-key-file", default=None, metavar="FILE",
                    help="key that signs the legacy tokens of kubernetes.io/service-account-token Secrets "
                         "(without it, such Secrets are not filled)")
    cm.add_argument("--cluster-signing-cert-file", default=None, metavar="FILE",
                    help="CA certificate that signs approved CertificateSigningRequests")
    cm.add_argument("--cluster-signing-key-file", default=None, metavar="FILE",
                    help="its private key (without both, no CertificateSigningRequest is signed)")
    cm.add_argument("--cluster-signing-duration", default="8760h", metavar="DURATION",
                    help="longest validity of a signed certificate, a Go duration (default 8760h, one year)")
    cm.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    kl = sub.add_parser("kubelet", help="run a node agent",
                        description="Run the node agent. --runtime fake simulates nodes whose pods go Running "
                                    "without processes (kwok-style), for trying the control plane at scale.")
    kl.add_argument("--kubeconfig", required=True, help="kubeconfig to reach the API server")
    kl.add_argument("--bootstrap-kubeconfig", default=None, metavar="F",
                    help="kubeconfig with a bootstrap token: when --kubeconfig is missing or its certificate "
                         "expires within a day, get a client certificate through a CertificateSigningRequest "
                         "and write --kubeconfig")
    kl.add_argument("--runtime", choices=("runc", "process", "fake"), default="runc",
                    help="container runtime: runc (isolated containers, root), process (host processes, "
                         "no isolation), fake (simulated nodes) (default runc)")
    kl.add_argument("--node-name", default=None, help="node name (default: the host name; one node)")
    kl.add_argument("--node-ip", default=None, help="the node's InternalIP (default: the address of the default route's interface)")
    kl.add_argument("--address", default="0.0.0.0", help="address of the kubelet server (default 0.0.0.0)")
    kl.add_argument("--port", type=int, default=10250, help="port of the kubelet server (default 10250)")
    kl.add_argument("--network", choices=("cni", "none"), default="cni",
                    help="pod network with runc: cni (a bridge over the node's pod CIDR) or none (loopback only)")
    kl.add_argument("--bridge", default="kyb0", help="the CNI bridge's name (default kyb0)")
    kl.add_argument("--cgroup-root", default="kybernetes", help="cgroup under which pods run (default kybernetes)")
    kl.add_argument("--cluster-dns", default="", help="comma-separated cluster DNS addresses for pods' resolv.conf")
    kl.add_argument("--cluster-domain", default="cluster.local", help="cluster domain (default cluster.local)")
    kl.add_argument("--pod-manifest-path", default=None, help="directory of static pod manifests")
    kl.add_argument("--rotate-certificates", action="store_true",
                    help="renew the --kubeconfig client certificate through a CertificateSigningRequest at "
                         "70-90%% of its life (kyb up turns it on)")
    kl.add_argument("--client-ca-file", default=None,
                    help="CA that signs clients of the kubelet server (default: the kubeconfig's CA)")
    kl.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                    help="registry reached over plain HTTP (loopback registries always are)")
    kl.add_argument("--nodes", type=int, default=1, help="number of simulated nodes (fake runtime)")
    kl.add_argument("--node-name-prefix", default="sim-", help="simulated node names: PREFIX1, PREFIX2, ...")
    kl.add_argument("--capacity", action="append", default=[], metavar="RESOURCE=QUANTITY",
                    help="node capacity override, e.g. --capacity cpu=8 --capacity pods=20")
    kl.add_argument("--data-dir", default=None,
                    help=f"node state directory (default {DEFAULT_DATA_DIR}/kubelet; unused by the fake runtime)")
    kl.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    sc = sub.add_parser("scheduler", help="run the scheduler",
                        description="Run the scheduler: binds pending pods to nodes.")
    sc.add_argument("--kubeconfig", required=True, help="kubeconfig to reach the API server")
    sc.add_argument("--leader-elect", default="true", choices=("true", "false"), help="use leader election (default true)")
    sc.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    from .image import add_parser as add_image_parser

    add_image_parser(sub)
    from .secrets import add_parser as add_secrets_parser

    add_secrets_parser(sub, DEFAULT_DATA_DIR)
    from .token import add_parser as add_token_parser

    add_token_parser(sub, DEFAULT_DATA_DIR)
    return parser


def component_kubeconfig(data_dir: Path, name: str, user: str, groups: list[str], server: str) -> Path:
    """A kubeconfig with its own client certificate for one component (written once)."""
    from ..pki import ensure_pki, issue_client_cert
    from ..pki.kubeconfig import write_kubeconfig

    path = data_dir / f"{name}.kubeconfig"
    if path.exists():
        return path
    pki = ensure_pki(data_dir / "pki", hosts=[])
    cert, key = issue_client_cert(pki, user, groups, days=3650)
    write_kubeconfig(path, server=server, ca_pem=Path(pki.ca_cert).read_bytes(), cert_pem=cert, key_pem=key, user=name)
    return path


def _server_url(host: str, port: int) -> str:
    h = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in h:
        h = f"[{h}]"
    return f"https://{h}:{port}"


def prepare_data_dir(data_dir: Path, host: str, port: int, advertise: str | None) -> Path:
    """Create PKI and the admin kubeconfig; return the kubeconfig path."""
    from ..pki import ensure_pki
    from ..pki.kubeconfig import write_kubeconfig

    data_dir.mkdir(parents=True, exist_ok=True)
    hosts = [h for h in (host, advertise) if h and h not in ("0.0.0.0", "::")]
    pki = ensure_pki(data_dir / "pki", hosts=hosts)
    kc = data_dir / "admin.kubeconfig"
    write_kubeconfig(
        kc,
        server=_server_url(host, port),
        ca_pem=Path(pki.ca_cert).read_bytes(),
        cert_pem=Path(pki.admin_cert).read_bytes(),
        key_pem=Path(pki.admin_key).read_bytes(),
        user="admin",
    )
    return kc


def _authorization_mode(mode: str) -> str:
    from ..apiserver.authz import parse_mode

    try:
        return ",".join(parse_mode(mode))
    except ValueError as e:
        raise CliError(str(e))


async def run_apiserver(args: argparse.Namespace) -> None:
    from ..apiserver.app import ApiServer, ServerConfig, serve
    from ..apiserver.kubeletclient import KubeletClient
    from ..apiserver.tokens import DEFAULT_ISSUER, TokenOptions
    from ..pki import ensure_pki, server_ssl_context
    from ..storage import open_store

    data_dir = Path(args.data_dir)
    prepare_data_dir(data_dir, args.host, args.port, args.advertise_address)
    pki = ensure_pki(data_dir / "pki", hosts=[h for h in (args.host, args.advertise_address) if h and h not in ("0.0.0.0", "::")])
    if args.store == "etcd":
        endpoints = [e.strip() for e in args.etcd_servers.split(",") if e.strip()]
        if not endpoints:
            raise CliError("--store etcd needs --etcd-servers")
        store = open_store("etcd", endpoints=endpoints)
    else:
        (data_dir / "db").mkdir(parents=True, exist_ok=True)
        store = open_store("sqlite", path=str(data_dir / "db" / "state.db"))
    from .secrets import load_server_security

    try:
        encryption, audit, static_tokens = await load_server_security(args)
    except ValueError as e:  # an invalid --encryption-provider-config / --audit-policy-file / --token-auth-file
        raise CliError(str(e))
    await store.start()
    config = ServerConfig(
        host=args.host, port=args.port, advertise_address=args.advertise_address,
        ssl_context=server_ssl_context(pki), compaction_interval=args.compaction_interval,
        authorization_mode=_authorization_mode(args.authorization_mode),
        kubelet_client=KubeletClient.from_pki(pki),
        service_accounts=TokenOptions(
            issuers=tuple(args.service_account_issuer or (DEFAULT_ISSUER,)),
            signing_key_file=str(pki.sa_key), key_files=(str(pki.sa_pub),), require_service_account=True),
        anonymous_public=args.anonymous_auth, static_tokens=static_tokens,
    )
    config.encryption, config.audit = encryption, audit
    server = ApiServer(store, config)
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    try:
        task = asyncio.ensure_future(serve(server, sock_ready=ready))
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        logging.getLogger("kyb").info("API server listening on %s", _server_url(args.host, ready.result()))
        await task
    finally:
        await store.close()


def _run_async(coro: Any) -> int:
    """Run ``coro`` until it finishes or SIGINT/SIGTERM cancels it."""

    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    from ..util.loop import use_fast_event_loop

    use_fast_event_loop()
    asyncio.run(main())
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Run the cluster's components (API server, controller manager, scheduler, simulated nodes)
    under one supervisor."""
    from .supervisor import Component, Supervisor

    data_dir = Path(args.data_dir).absolute()
    print(f"kyb: preparing {data_dir} ...", flush=True)
    kc = prepare_data_dir(data_dir, args.host, args.port, args.advertise_address)
    me = [sys.executable, "-m", "kybernetes.cli.main"]
    api = me + ["apiserver", "--data-dir", str(data_dir), "--host", args.host, "--port", str(args.port), "--store", args.store]
    if args.etcd_servers:
        api += ["--etcd-servers", args.etcd_servers]
    if args.advertise_address:
        api += ["--advertise-address", args.advertise_address]
    from .secrets import server_security_passthrough

    api += server_security_passthrough(args)
    if args.verbose:
        api.append("-v")
    url = _server_url(args.host, args.port)
    components = [Component("apiserver", api, ready=lambda p: _wait_ready(url, kc, p))]
    verbose = ["-v"] if args.verbose else []
    cm_kc = component_kubeconfig(data_dir, "controller-manager", "system:kube-controller-manager", [], url)
    components.append(Component("controller-manager", me + [
        "controller-manager", "--kubeconfig", str(cm_kc), "--root-ca-file", str(data_dir / "pki" / "ca.crt"),
        "--service-account-private-key-file", str(data_dir / "pki" / "sa.key"),
        "--cluster-signing-cert-file", str(data_dir / "pki" / "ca.crt"),
        "--cluster-signing-key-file", str(data_dir / "pki" / "ca.key"), *verbose]))
    sched_kc = component_kubeconfig(data_dir, "scheduler", "system:kube-scheduler", [], url)
    components.append(Component("scheduler", me + ["scheduler", "--kubeconfig", str(sched_kc), *verbose]))
    if args.runtime in ("runc", "process"):
        from ..kubelet.main import default_node_name

        node = args.node_name or default_node_name()
        kl_kc = component_kubeconfig(data_dir, f"kubelet-{node}", f"system:node:{node}", ["system:nodes"], url)
        components.append(Component("kubelet", me + [
            "kubelet", "--runtime", args.runtime, "--kubeconfig", str(kl_kc), "--node-name", node,
            "--data-dir", str(data_dir / "kubelet"), "--port", str(args.kubelet_port),
            "--client-ca-file", str(data_dir / "pki" / "ca.crt"), "--rotate-certificates", *verbose]))
    if args.runtime == "fake":
        # one process simulates every node, so it acts for many nodes: it gets its own admin identity
        kl_kc = component_kubeconfig(data_dir, "fake-kubelet", "kybernetes:fake-kubelet", ["system:masters"], url)
        components.append(Component("kubelet", me + ["kubelet", "--runtime", "fake", "--kubeconfig", str(kl_kc),
                                                     "--nodes", str(args.nodes), *verbose]))

    def announce() -> None:
        print(f"kyb: cluster is up at {url}\n"
              f"kyb: kubeconfig: {kc}\n"
              f"kyb:   export KUBECONFIG={kc}\n"
              f"kyb:   kubectl get namespaces\n"
              f"kyb: press Ctrl-C to stop", flush=True)

    return Supervisor(components, on_ready=announce).run()


def _wait_ready(url: str, kubeconfig: Path, child: "subprocess.Popen[bytes]", timeout: float = 60.0) -> bool:
    import ssl
    import urllib.request

    from ..pki.kubeconfig import client_ssl_context_from_kubeconfig

    _, ctx, _ = client_ssl_context_from_kubeconfig(str(kubeconfig))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(url + "/readyz", context=ctx, timeout=2) as r:
                if r.status == 200:
                    return True
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    return False


def _kubelet_tls_bootstrap(args: argparse.Namespace) -> None:
    """``kyb kubelet --bootstrap-kubeconfig``: make ``--kubeconfig`` first if it needs to be
    (kubelet/bootstrap.py). The fake runtime bootstraps its one node (``--nodes 1``)."""
    from ..client.errors import ApiError, TransportError
    from ..kubelet.bootstrap import BootstrapError, bootstrap

    if args.runtime == "fake":
        if args.nodes != 1:
            raise CliError("--bootstrap-kubeconfig gets one node's identity: use --nodes 1")
        node = args.node_name or f"{args.node_name_prefix}1"
    else:
        from ..kubelet.main import default_node_name

        node = args.node_name or default_node_name()
    outcome: list[str] = []  # "" when done, else the error; empty when interrupted

    async def run() -> None:
        try:
            await bootstrap(args.bootstrap_kubeconfig, args.kubeconfig, node)
            outcome.append("")
        except (BootstrapError, ApiError, TransportError) as e:
            outcome.append(str(e) or type(e).__name__)

    _run_async(run())
    if not outcome or outcome[0]:
        raise CliError(f"TLS bootstrap: {outcome[0] if outcome else 'interrupted'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    _setup_logging(getattr(args, "verbose", False))
    try:
        if args.command == "up":
            return cmd_up(args)
        if args.command == "apiserver":
            return _run_async(run_apiserver(args))
        if args.command == "image":
            from .image import run as run_image

            return run_image(args)
        if args.command == "secrets":
            from .secrets import run as run_secrets

            return run_secrets(args)
        if args.command == "token":
            from .token import run as run_token

            return run_token(args)
        if args.command == "kubelet" and args.bootstrap_kubeconfig:
            _kubelet_tls_bootstrap(args)
        if args.command == "kubelet" and args.runtime != "fake":
            from ..kubelet.main import KubeletOptions, run_kubelet

            opts = KubeletOptions(
                kubeconfig=args.kubeconfig, runtime=args.runtime, node_name=args.node_name,
                data_dir=args.data_dir or str(Path(DEFAULT_DATA_DIR) / "kubelet"), node_ip=args.node_ip,
                address=args.address, port=args.port, network=args.network, bridge=args.bridge,
                cgroup_root=args.cgroup_root,
                cluster_dns=[a.strip() for a in args.cluster_dns.split(",") if a.strip()],
                cluster_domain=args.cluster_domain, pod_manifest_path=args.pod_manifest_path,
                client_ca_file=args.client_ca_file, insecure_registries=args.insecure_registry,
                rotate_certificates=args.rotate_certificates)
            return _run_async(run_kubelet(opts))
        if args.command == "kubelet":
            from ..kubelet.fake import _parse_capacity, run_fake_kubelet

            if args.node_name and args.nodes != 1:
                raise CliError("--node-name and --nodes > 1 exclude each other")
            return _run_async(run_fake_kubelet(args.kubeconfig, nodes=args.nodes, node_name=args.node_name,
                                               node_name_prefix=args.node_name_prefix,
                                               capacity=_parse_capacity(args.capacity) or None))
        if args.command == "scheduler":
            from ..scheduler.main import run_scheduler

            return _run_async(run_scheduler(args.kubeconfig, leader_elect=args.leader_elect == "true"))
        if args.command == "controller-manager":
            from ..controllers.manager import run_manager

            ca = Path(args.root_ca_file).read_bytes() if args.root_ca_file else b""
            options: dict[str, Any] = {}
            if args.service_account_private_key_file:
                options["service_account_private_key"] = Path(args.service_account_private_key_file).read_bytes()
            if args.cluster_signing_cert_file and args.cluster_signing_key_file:
                options["cluster_signing_cert"] = Path(args.cluster_signing_cert_file).read_bytes()
                options["cluster_signing_key"] = Path(args.cluster_signing_key_file).read_bytes()
            from ..util.duration import parse_seconds

            signing = parse_seconds(args.cluster_signing_duration)
            if signing is None or signing < 600:
                raise CliError(f"--cluster-signing-duration {args.cluster_signing_duration!r}: "
                               "want a duration of at least 10m, such as 8760h")
            options["cluster_signing_duration"] = int(signing)
            return _run_async(run_manager(args.kubeconfig, controllers=args.controllers,
                                          leader_elect=args.leader_elect == "true", cluster_ca=ca,
                                          options=options))
    except CliError as e:
        print(f"kyb: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"kyb: error: {e}", file=sys.stderr)
        return 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
