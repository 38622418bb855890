"""Pod networks through the standard CNI plugins (Debian ``containernetworking-plugins``).

What a pod gets, as with containerd's CRI plugin and a bridge conflist:

* ``lo`` up, by the ``loopback`` plugin (its own one-plugin network, interface ``lo``), unless the
  runtime brings it up itself (``loopback=False``; the runc runtime does, one program less per pod);
* ``eth0``: a veth pair whose host end joins the node bridge (``bridge`` plugin: ``isGateway`` gives
  the bridge the first address of the pod CIDR and the pod a default route through it,
  ``hairpinMode`` lets a pod reach itself through a Service), its address from ``host-local`` IPAM
  over the node's pod CIDR;
* masquerading of traffic that leaves the pod CIDR (``masquerade``): ``"plugin"`` is the bridge
  plugin's ``ipMasq``, a chain per pod made with nine ``iptables`` runs at every pod start and
  stop; ``"node"`` (what the kubelet uses) is one chain for the whole pod CIDR, ``KYB-MASQ-<bridge>``,
  installed at the first pod's set-up (``masquerade_commands``), as flannel and kubenet do;
* hostPort mappings by the ``portmap`` plugin (``capabilities.portMappings``, passed as
  ``runtimeConfig.portMappings``).

The plugins are run as the CNI specification describes: the executable ``<bin_dir>/<type>``, the
network configuration as JSON on stdin, the parameters in ``CNI_COMMAND`` (ADD / DEL / CHECK),
``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_PATH``; a list is run in order for ADD,
each plugin receiving the previous one's result as ``prevResult``, and in reverse order for DEL.
Like libcni, the ADD result (with the exact configuration and port mappings used) is cached under
``state_dir/results`` so DEL and CHECK get the same input even if the node's settings changed.

Teardown is idempotent. One gap of the plugins is closed here: when the network namespace is
already gone, ``bridge`` DEL frees the address but cannot learn it, so it leaves its masquerade
chain behind; teardown then removes every nat rule tagged with this network's name and the
sandbox id, and the chains they jump to (``purge_commands``).

What stays after the last pod is gone (the plugins share it between pods): the bridge itself and
the node masquerade chain (``remove_bridge`` removes both), portmap's top-level chains ``CNI-HOSTPORT-{DNAT,SETMARK,MASQ}`` and their
jumps (``remove_portmap_chains``, only when no mapping is left), the host-local data directory
(lock and last-reserved files), and ``net.ipv4.ip_forward=1`` which the bridge plugin turns on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DEFAULT_BIN_DIR = "/usr/lib/cni"
DEFAULT_TIMEOUT = 60.0
POD_IFNAME = "eth0"
LOOPBACK_NAME = "cni-loopback"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PORTMAP_CHAINS = ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ")
MASQUERADE_MODES = ("plugin", "node", "none")
MULTICAST = "224.0.0.0/4"


class CniError(Exception):
    """A plugin failed: ``code`` and ``msg`` from its error result (spec §Error), or ours."""

    def __init__(self, msg: str, *, code: int = 999, details: str = "", plugin: str = "", command: str = "") -> None:
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin
        self.command = command
        where = f"plugin type={plugin!r} {command}: " if plugin else ""
        super().__init__(f"{where}{msg}" + (f": {details}" if details else ""))


# --------------------------------------------------------------------------- pure configuration
def network_config(*, name: str, cni_version: str, bridge: str, pod_cidr: str, ipam_dir: str,
                   ip_masq: bool = True) -> Obj:
    """The network configuration list (conflist) for pods on this node."""
    ipaddress.ip_network(pod_cidr)  # ValueError on a bad CIDR, before any plugin runs
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": ip_masq,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def _needed(plugins: list[Obj], port_mappings: list[Obj]) -> list[Obj]:
    """The plugins a sandbox needs: ``portmap`` only when it maps host ports (each plugin run is
    a process, and the pod start waits for them one after another)."""
    return [p for p in plugins if p.get("type") != "portmap" or port_mappings]


def loopback_config(cni_version: str) -> Obj:
    return {"cniVersion": cni_version, "name": LOOPBACK_NAME, "type": "loopback"}


def plugin_input(conflist: Obj, plugin: Obj, *, prev_result: Obj | None = None,
                 runtime_config: Mapping[str, Any] | None = None) -> Obj:
    """What one plugin of a list reads on stdin: its own object plus the list's ``name`` and
    ``cniVersion``, ``runtimeConfig`` limited to the capabilities it declares, ``prevResult``."""
    conf: Obj = {**plugin, "cniVersion": conflist["cniVersion"], "name": conflist["name"]}
    caps = {k for k, v in (plugin.get("capabilities") or {}).items() if v}
    rc = {k: v for k, v in (runtime_config or {}).items() if k in caps and v not in (None, [], {})}
    if rc:
        conf["runtimeConfig"] = rc
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


def cni_port_mappings(port_mappings: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """Kubernetes-style ``{containerPort, hostPort, protocol, hostIP}`` -> CNI ``portMappings``
    (only entries with a host port; protocol lower-case, TCP by default)."""
    out: list[Obj] = []
    for pm in port_mappings:
        host = int(pm.get("hostPort") or 0)
        if host <= 0:
            continue
        entry: Obj = {"hostPort": host, "containerPort": int(pm.get("containerPort") or host),
                      "protocol": str(pm.get("protocol") or "TCP").lower()}
        if pm.get("hostIP"):
            entry["hostIP"] = str(pm["hostIP"])
        out.append(entry)
    return out


def pod_ips(result: Mapping[str, Any], ifname: str = POD_IFNAME) -> list[str]:
    """The addresses (without prefix length) a result gives the pod's ``ifname``, IPv4 first.

    Entries whose ``interface`` index names another interface (the bridge, the host veth) are
    skipped; entries without an index are taken."""
    ifaces = result.get("interfaces") or []
    found: list[str] = []
    for ip in result.get("ips") or []:
        idx = ip.get("interface")
        if isinstance(idx, int) and 0 <= idx < len(ifaces) and ifaces[idx].get("name") != ifname:
            continue
        addr = str(ip.get("address") or "")
        if addr:
            found.append(str(ipaddress.ip_interface(addr).ip))
    return sorted(found, key=lambda a: ipaddress.ip_address(a).version)


def chain_name(network: str, container_id: str, prefix: str = "") -> str:
    """The iptables chain the plugins name after a network and container (``CNI-<hash>``,
    ``CNI-DN-<hash>`` for portmap): 28 characters of ``CNI-<prefix>`` + sha512 hex."""
    digest = hashlib.sha512((network + container_id).encode()).hexdigest()
    return f"CNI-{prefix}{digest}"[:28]


def plugin_comment(network: str, container_id: str) -> str:
    return f'name: "{network}" id: "{container_id}"'


def purge_commands(nat_save: str, network: str, container_id: str) -> list[str]:
    """``iptables-restore --noflush`` lines that delete this sandbox's nat rules and chains.

    ``nat_save`` is ``iptables-save -t nat``. Removed: every rule whose comment names this network
    and container, every rule in or jumping to the chains named after them (``chain_name``), and
    those chains. Empty when nothing is left."""
    own = {chain_name(network, container_id), chain_name(network, container_id, "DN-"),
           chain_name(network, container_id, "SN-")}
    comment = plugin_comment(network, container_id).replace('"', '\\"')
    existing: set[str] = set()
    rules: list[str] = []
    for line in nat_save.splitlines():
        if line.startswith(":"):
            existing.add(line[1:].split()[0])
            continue
        if not line.startswith("-A "):
            continue
        parts = line.split()
        chain = parts[1]
        target = parts[parts.index("-j") + 1] if "-j" in parts else ""
        if chain in own:
            continue  # flushed with the chain
        if comment in line or target in own:
            rules.append("-D " + line[3:])
    chains = sorted(c for c in own if c in existing)
    if not rules and not chains:
        return []
    return ["*nat", *rules, *(f"-F {c}" for c in chains), *(f"-X {c}" for c in chains), "COMMIT"]


def portmap_cleanup_commands(nat_save: str) -> list[str]:
    """Lines removing portmap's shared chains when no hostPort mapping uses them any more
    (``CNI-HOSTPORT-DNAT`` holds no rule); empty otherwise."""
    existing = {line[1:].split()[0] for line in nat_save.splitlines() if line.startswith(":")}
    present = [c for c in PORTMAP_CHAINS if c in existing]
    if not present:
        return []
    if any(line.startswith("-A CNI-HOSTPORT-DNAT ") for line in nat_save.splitlines()):
        return []
    jumps = []
    for line in nat_save.splitlines():
        parts = line.split()
        if line.startswith("-A ") and parts[1] not in PORTMAP_CHAINS and "-j" in parts \
                and parts[parts.index("-j") + 1] in PORTMAP_CHAINS:
            jumps.append("-D " + line[3:])
    return ["*nat", *jumps, *(f"-F {c}" for c in present), *(f"-X {c}" for c in present), "COMMIT"]


def masquerade_chain(bridge: str) -> str:
    return f"KYB-MASQ-{bridge}"[:28]


def _masquerade_comment(bridge: str) -> str:
    return f"kybernetes pod masquerade {bridge}"


def _chain_rules(nat_save: str, chain: str) -> list[str]:
    return [line for line in nat_save.splitlines() if line.startswith(f"-A {chain} ")]


def _jumps_to(nat_save: str, chain: str) -> list[str]:
    return [line for line in nat_save.splitlines()
            if line.startswith("-A ") and line.split()[1] != chain and f" -j {chain}" in f"{line} "
            and line.split()[line.split().index("-j") + 1] == chain]


def masquerade_commands(nat_save: str, bridge: str, pod_cidr: str) -> list[str]:
    """``iptables-restore --noflush`` lines that make the node masquerade what pods on ``bridge``
    send outside ``pod_cidr`` (multicast excepted, as the bridge plugin's ``ipMasq``); empty when
    ``nat_save`` (``iptables-save -t nat``) already has exactly that. A changed pod CIDR replaces
    the old rules."""
    net = str(ipaddress.ip_network(pod_cidr))
    chain = masquerade_chain(bridge)
    rules = [f"-A {chain} -d {net} -j RETURN", f"-A {chain} -d {MULTICAST} -j RETURN",
             f"-A {chain} -j MASQUERADE"]
    jump = (f'-A POSTROUTING -s {net} -m comment --comment "{_masquerade_comment(bridge)}" '
            f"-j {chain}")
    exists = any(line.startswith(f":{chain} ") for line in nat_save.splitlines())
    have_rules, have_jumps = _chain_rules(nat_save, chain), _jumps_to(nat_save, chain)
    if exists and have_rules == rules and have_jumps == [jump]:
        return []
    out = ["*nat"]
    out.append(f"-F {chain}" if exists else f":{chain} - [0:0]")
    out += rules
    out += ["-D " + line[3:] for line in have_jumps if line != jump]
    if jump not in have_jumps:
        out.append(jump)
    out.append("COMMIT")
    return out


def masquerade_cleanup_commands(nat_save: str, bridge: str) -> list[str]:
    """Lines removing ``bridge``'s masquerade chain and the jumps to it; empty when absent."""
    chain = masquerade_chain(bridge)
    exists = any(line.startswith(f":{chain} ") for line in nat_save.splitlines())
    jumps = _jumps_to(nat_save, chain)
    if not exists and not jumps:
        return []
    out = ["*nat", *("-D " + line[3:] for line in jumps)]
    if exists:
        out += [f"-F {chain}", f"-X {chain}"]
    return [*out, "COMMIT"]


# --------------------------------------------------------------------------- running plugins
async def exec_plugin(bin_dir: str, plugin_type: str, command: str, *, container_id: str,
                      netns: str, ifname: str, stdin: Obj, timeout: float = DEFAULT_TIMEOUT,
                      cni_args: str = "") -> Obj | None:
    """Run one plugin; its parsed stdout (None when empty). Raises ``CniError``."""
    path = Path(bin_dir) / plugin_type
    if "/" in plugin_type or not path.is_file():
        raise CniError(f'failed to find plugin "{plugin_type}" in path [{bin_dir}]',
                       plugin=plugin_type, command=command)
    env = {
        "CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
        "CNI_IFNAME": ifname, "CNI_PATH": bin_dir, "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
    }
    if cni_args:
        env["CNI_ARGS"] = cni_args
    # in a worker thread: subprocess spawns with vfork there, where the event loop's spawn forks
    # the whole kubelet (page tables and all) on its own thread, twice per pod start
    try:
        proc = await asyncio.to_thread(
            subprocess.run, [str(path)], env=env, input=json.dumps(stdin).encode(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CniError(f"timed out after {timeout:g}s", plugin=plugin_type, command=command) from None
    out, err = proc.stdout, proc.stderr
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0:
        try:
            e = json.loads(text) if text else {}
        except ValueError:
            e = {}
        raise CniError(str(e.get("msg") or text or err.decode(errors="replace").strip() or
                           f"exit status {proc.returncode}"),
                       code=int(e.get("code") or 999), details=str(e.get("details") or ""),
                       plugin=plugin_type, command=command)
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CniError(f"unparsable result: {e}", plugin=plugin_type, command=command) from None
    return doc if isinstance(doc, dict) else None


async def _run(*argv: str, stdin: bytes | None = None, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def nat_table() -> str:
    """``iptables-save -t nat`` (empty when iptables is missing)."""
    try:
        code, out, err = await _run("iptables-save", "-t", "nat")
    except FileNotFoundError:
        return ""
    if code != 0:
        raise CniError(f"iptables-save failed: {err.strip()}")
    return out


async def _restore(lines: list[str]) -> None:
    code, _, err = await _run("iptables-restore", "--noflush", stdin=("\n".join(lines) + "\n").encode())
    if code != 0:
        raise CniError(f"iptables-restore failed: {err.strip()}")


async def remove_bridge(name: str) -> bool:
    """Delete the node bridge the plugins created (they never remove it) and its node masquerade
    rules; False if the bridge was absent."""
    lines = masquerade_cleanup_commands(await nat_table(), name)
    if lines:
        await _restore(lines)
    code, _, err = await _run("ip", "link", "delete", name, "type", "bridge")
    if code == 0:
        return True
    if "Cannot find device" in err or "does not exist" in err:
        return False
    raise CniError(f"ip link delete {shlex.quote(name)}: {err.strip()}")


async def remove_portmap_chains() -> bool:
    """Remove portmap's shared nat chains if no hostPort mapping is left; True if removed."""
    lines = portmap_cleanup_commands(await nat_table())
    if not lines:
        return False
    await _restore(lines)
    return True


# --------------------------------------------------------------------------- the plugin
class CniNetwork:
    """The runtime's network plugin (see the module docstring)."""

    def __init__(self, *, pod_cidr: str, bridge: str = "kyb0", bin_dir: str = DEFAULT_BIN_DIR,
                 state_dir: str | Path, network_name: str = "kybernetes", cni_version: str = "1.0.0",
                 masquerade: str = "plugin", loopback: bool = True,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if masquerade not in MASQUERADE_MODES:
            raise ValueError(f"masquerade must be one of {MASQUERADE_MODES}, not {masquerade!r}")
        self.bin_dir = str(bin_dir)
        self.state_dir = Path(state_dir)
        self.network_name = network_name
        self.cni_version = cni_version
        self.timeout = timeout
        self.bridge = bridge
        self.pod_cidr = pod_cidr
        self.masquerade = masquerade
        self.loopback = loopback
        self._masquerade_ready = False
        self._masquerade_lock = asyncio.Lock()
        self.conflist = network_config(name=network_name, cni_version=cni_version, bridge=bridge,
                                       pod_cidr=pod_cidr, ipam_dir=str(self.state_dir / "ipam"),
                                       ip_masq=masquerade == "plugin")

    # -- the cache of ADD results -------------------------------------------------------------
    def _cache_path(self, sandbox_id: str) -> Path:
        return self.state_dir / "results" / f"{self.network_name}-{sandbox_id}-{POD_IFNAME}.json"

    def _write_cache(self, sandbox_id: str, entry: Obj) -> None:
        path = self._cache_path(sandbox_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)

    def _read_cache(self, sandbox_id: str) -> Obj | None:
        try:
            doc = json.loads(self._cache_path(sandbox_id).read_text())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def cached_result(self, sandbox_id: str) -> Obj | None:
        """The cached ADD result of a sandbox (blocking read; small file)."""
        entry = self._read_cache(sandbox_id)
        return entry.get("result") if entry else None

    # -- the verbs ----------------------------------------------------------------------------
    async def setup(self, netns_path: str, sandbox_id: str, *, port_mappings: list[dict] = []) -> str:  # noqa: B006
        """ADD: wire the namespace at ``netns_path``; the pod's IP. Undoes itself on failure."""
        _check_id(sandbox_id)
        pms = cni_port_mappings(port_mappings)
        try:
            if self.loopback:
                await self._call("loopback", "ADD", sandbox_id, netns_path, "lo", loopback_config(self.cni_version))
            await self.ensure_masquerade()
            result = await self._add_list(self.conflist, sandbox_id, netns_path, pms)
            ips = pod_ips(result)
            if not ips:
                raise CniError(f"the network result gives {POD_IFNAME} no address: {json.dumps(result)}")
            entry = {"kind": "cniCacheV1", "containerId": sandbox_id, "ifName": POD_IFNAME,
                     "networkName": self.network_name, "netns": netns_path, "config": self.conflist,
                     "portMappings": pms, "loopback": self.loopback, "result": result}
            await asyncio.to_thread(self._write_cache, sandbox_id, entry)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._del(netns_path, sandbox_id, self.conflist, pms, None,
                                               loopback=self.loopback))
            raise
        return ips[0]

    async def ensure_masquerade(self) -> None:
        """Install the node masquerade rules (``masquerade="node"``) once per network object."""
        if self.masquerade != "node" or self._masquerade_ready:
            return
        async with self._masquerade_lock:
            if self._masquerade_ready:
                return
            lines = masquerade_commands(await nat_table(), self.bridge, self.pod_cidr)
            if lines:
                log.info("installing the pod masquerade rules for %s (%s)", self.bridge, self.pod_cidr)
                await _restore(lines)
            self._masquerade_ready = True

    async def teardown(self, netns_path: str, sandbox_id: str) -> None:
        """DEL: release the address and the rules of the sandbox. Safe to repeat, and to call
        after the namespace is gone."""
        _check_id(sandbox_id)
        entry = await asyncio.to_thread(self._read_cache, sandbox_id)
        conflist = (entry or {}).get("config") or self.conflist
        pms = (entry or {}).get("portMappings") or []
        prev = (entry or {}).get("result")
        netns_gone = not netns_path or not await asyncio.to_thread(os.path.exists, netns_path)
        await self._del("" if netns_gone else netns_path, sandbox_id, conflist, pms, prev,
                        loopback=bool(entry.get("loopback", True)) if entry else self.loopback)
        if netns_gone or entry is None:
            lines = purge_commands(await nat_table(), conflist["name"], sandbox_id)
            if lines:
                log.info("removing nat rules left by sandbox %s", sandbox_id)
                await _restore(lines)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._cache_path(sandbox_id).unlink)

    async def check(self, netns_path: str, sandbox_id: str) -> None:
        """CHECK: ask every plugin whether the sandbox's network is still as set up; raises
        ``CniError`` if not (or if the sandbox was never set up)."""
        _check_id(sandbox_id)
        entry = await asyncio.to_thread(self._read_cache, sandbox_id)
        if entry is None:
            raise CniError(f"no cached result for sandbox {sandbox_id}")
        conflist = entry["config"]
        pms = entry.get("portMappings") or []
        ipv6 = any(":" in ip for ip in pod_ips(entry["result"]))
        for plugin in _needed(conflist["plugins"], pms):
            stdin = plugin_input(conflist, plugin, prev_result=entry["result"],
                                 runtime_config={"portMappings": pms})
            try:
                await self._call(plugin["type"], "CHECK", sandbox_id, netns_path, POD_IFNAME, stdin)
            except CniError:
                if plugin["type"] != "portmap" or ipv6:
                    raise
                # portmap 1.1.1's CHECK also looks for its chain in the IPv6 nat table and so
                # fails for IPv4-only pods; check the IPv4 chain and rules ourselves instead.
                await self._check_portmap(conflist["name"], sandbox_id, pms)

    async def _check_portmap(self, network: str, sandbox_id: str, pms: list[Obj]) -> None:
        if not pms:
            return
        chain = chain_name(network, sandbox_id, "DN-")
        save = await nat_table()
        if f":{chain} " not in save:
            raise CniError(f"chain {chain} not found in iptables table nat", plugin="portmap", command="CHECK")
        for pm in pms:
            if not re.search(rf"^-A {re.escape(chain)} .*--dport {pm['hostPort']} ", save, re.M):
                raise CniError(f"no DNAT rule for host port {pm['hostPort']} in {chain}",
                               plugin="portmap", command="CHECK")

    # -- helpers --------------------------------------------------------------------------------
    async def _add_list(self, conflist: Obj, sandbox_id: str, netns: str, pms: list[Obj]) -> Obj:
        prev: Obj | None = None
        for plugin in _needed(conflist["plugins"], pms):
            stdin = plugin_input(conflist, plugin, prev_result=prev, runtime_config={"portMappings": pms})
            prev = await self._call(plugin["type"], "ADD", sandbox_id, netns, POD_IFNAME, stdin) or prev
        if prev is None:
            raise CniError("the network configuration produced no result")
        return prev

    async def _del(self, netns: str, sandbox_id: str, conflist: Obj, pms: list[Obj], prev: Obj | None, *,
                   loopback: bool) -> None:
        errors: list[CniError] = []
        for plugin in reversed(_needed(conflist["plugins"], pms)):
            stdin = plugin_input(conflist, plugin, prev_result=prev, runtime_config={"portMappings": pms})
            try:
                await self._call(plugin["type"], "DEL", sandbox_id, netns, POD_IFNAME, stdin)
            except CniError as e:
                errors.append(e)
        if loopback:
            try:
                await self._call("loopback", "DEL", sandbox_id, netns, "lo", loopback_config(conflist["cniVersion"]))
            except CniError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    async def _call(self, plugin_type: str, command: str, sandbox_id: str, netns: str, ifname: str,
                    stdin: Obj) -> Obj | None:
        return await exec_plugin(self.bin_dir, plugin_type, command, container_id=sandbox_id,
                                 netns=netns, ifname=ifname, stdin=stdin, timeout=self.timeout)


def _check_id(sandbox_id: str) -> None:
    if not _SAFE_ID.match(sandbox_id):
        raise CniError(f"invalid container id {sandbox_id!r}")
