"""The files the kubelet writes for every pod: its hostname, ``/etc/resolv.conf`` and ``/etc/hosts``.

Pure functions over the pod object (the host's files are passed in as text), after upstream
``GeneratePodHostNameAndDomain``, ``pkg/kubelet/network/dns`` (``GetPodDNS``) with containerd's
resolv.conf rendering, and ``managedHostsFileContent`` / ``nodeHostsFileContent``.

resolv.conf by ``dnsPolicy``:

* ``ClusterFirst`` (the default; for a hostNetwork pod it falls back to ``Default``) and
  ``ClusterFirstWithHostNet``: nameservers = the cluster DNS IPs; search =
  ``<ns>.svc.<domain> svc.<domain> <domain>`` + the host's searches; options ``ndots:5``. Without
  cluster DNS IPs the pod falls back to ``Default`` (event ``MissingClusterDNS``).
* ``Default``: the host's nameservers, searches and options.
* ``None``: nothing but ``spec.dnsConfig``.

``spec.dnsConfig`` is then merged: nameservers and searches appended without duplicates, options
merged by name (the pod's value wins). Limits: 3 nameservers, 32 search domains, 2048 characters
of search line, search domains over 253 characters dropped (event ``DNSConfigForming``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

HOSTNAME_MAX_LEN = 63
FQDN_MAX_LEN = 64
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
DNS1123_SUBDOMAIN_MAX_LEN = 253
DEFAULT_DNS_OPTIONS = ("ndots:5",)
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class PodFileError(ValueError):
    """The pod's hostname, subdomain or FQDN cannot be used (upstream fails the pod sync)."""


def _label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                    "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',"
                    "  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    return errs


def _truncate_hostname(name: str) -> str:
    if len(name) <= HOSTNAME_MAX_LEN:
        return name
    # at most 63 characters, and not ending with '-' or '.'
    return name[:HOSTNAME_MAX_LEN].rstrip("-.")


def pod_hostname_and_domain(pod: Obj, cluster_domain: str = "cluster.local") -> tuple[str, str]:
    """(hostname, domain): ``spec.hostname`` or the pod name, truncated to 63 characters; the domain
    is ``<subdomain>.<ns>.svc.<cluster domain>`` when ``spec.subdomain`` is set, else ``""``."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = meta.get("name", "")
    hostname = name
    if spec.get("hostname"):
        errs = _label_errors(spec["hostname"])
        if errs:
            raise PodFileError(f'pod Hostname "{spec["hostname"]}" is not a valid DNS label: '
                               + ";".join(errs))
        hostname = spec["hostname"]
    hostname = _truncate_hostname(hostname)
    if not hostname:
        raise PodFileError(f'hostname for pod "{name}" was invalid: "{spec.get("hostname") or name}"')
    domain = ""
    if spec.get("subdomain"):
        errs = _label_errors(spec["subdomain"])
        if errs:
            raise PodFileError(f'pod Subdomain "{spec["subdomain"]}" is not a valid DNS label: '
                               + ";".join(errs))
        domain = f"{spec['subdomain']}.{meta.get('namespace') or 'default'}.svc.{cluster_domain}"
    return hostname, domain


def pod_hostname(pod: Obj, *, cluster_domain: str = "cluster.local") -> str:
    """The hostname the pod's UTS namespace gets: as ``pod_hostname_and_domain``, or the FQDN when
    ``spec.setHostnameAsFQDN`` is true and there is a domain (at most 64 characters)."""
    hostname, domain = pod_hostname_and_domain(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        fqdn = f"{hostname}.{domain}"
        if len(fqdn) > FQDN_MAX_LEN:
            raise PodFileError(f"failed to construct FQDN from pod hostname and cluster domain, FQDN "
                               f"{fqdn} is too long ({FQDN_MAX_LEN} characters is the max, "
                               f"{len(fqdn)} characters requested)")
        return fqdn
    return hostname


# ---------------------------------------------------------------------------------------------
# resolv.conf


@dataclass
class DNSConfig:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (event reason, message)


def _merge_options(existing: Sequence[str], new: Sequence[str]) -> list[str]:
    """Options by name; a later option with the same name replaces the earlier one in place."""
    out: dict[str, str] = {}
    for op in list(existing) + list(new):
        out[op.split(":", 1)[0]] = op
    return list(out.values())


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf: nameservers accumulate, the last
    ``search`` line wins (trailing dots stripped, ``.`` dropped), options merge by name."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("#"):
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            options = _merge_options(options, fields[1:])
    return servers, searches, options


def _dedup(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _dns_type(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst":
        return "host" if spec.get("hostNetwork") else "cluster"
    if policy == "Default":
        return "host"
    return "cluster"  # rejected by validation; upstream logs and uses ClusterFirst


def _fit_searches(searches: list[str], warnings: list[tuple[str, str]]) -> list[str]:
    exceeded = False
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        searches, exceeded = searches[:MAX_DNS_SEARCH_PATHS], True
    kept = [s for s in searches if len(s) <= DNS1123_SUBDOMAIN_MAX_LEN]
    exceeded = exceeded or len(kept) != len(searches)
    searches = kept
    line_len = len(" ".join(searches))
    if line_len > MAX_DNS_SEARCH_LIST_CHARS:
        cut_num = cut_len = 0
        for s in reversed(searches):
            cut_len += len(s) + 1
            cut_num += 1
            if line_len - cut_len <= MAX_DNS_SEARCH_LIST_CHARS:
                break
        searches, exceeded = searches[:len(searches) - cut_num], True
    if exceeded:
        warnings.append(("DNSConfigForming", "Search Line limits were exceeded, some search paths have "
                         f"been omitted, the applied search line is: {' '.join(searches)}"))
    return searches


def pod_dns_config(pod: Obj, *, cluster_dns: Sequence[str], cluster_domain: str,
                   host_resolv: str | None, node_ips: Sequence[str] = ()) -> DNSConfig:
    """The pod's DNS settings (upstream ``GetPodDNS``). ``host_resolv`` is the text of the host's
    resolv.conf; ``None`` means the kubelet has none configured (``--resolv-conf=""``: the host
    policy then points at the local resolver ``127.0.0.1``/``::1`` with search ``.``)."""
    if host_resolv is None:
        cfg = DNSConfig()
    else:
        cfg = DNSConfig(*parse_resolv_conf(host_resolv))
    kind = _dns_type(pod)
    meta = pod.get("metadata") or {}
    if kind == "none":
        cfg = DNSConfig()
    elif kind == "cluster" and cluster_dns:
        cfg.servers = list(cluster_dns)
        if cluster_domain:
            ns = meta.get("namespace") or "default"
            cluster = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
            cfg.searches = _dedup(cluster + cfg.searches)
        cfg.options = list(DEFAULT_DNS_OPTIONS)
    else:
        if kind == "cluster":
            msg = ('kubelet does not have ClusterDNS IP configured and cannot create Pod using '
                   '"ClusterFirst" policy. Falling back to "Default" policy.')
            cfg.warnings.append(("MissingClusterDNS", msg))
        if host_resolv is None:
            cfg.servers = ["::1" if ":" in ip else "127.0.0.1" for ip in node_ips] or ["127.0.0.1"]
            cfg.searches = ["."]
    dns_config = (pod.get("spec") or {}).get("dnsConfig")
    if dns_config:
        cfg.servers = _dedup(cfg.servers + list(dns_config.get("nameservers") or []))
        cfg.searches = _dedup(cfg.searches + list(dns_config.get("searches") or []))
        pod_opts = []
        for op in dns_config.get("options") or []:
            value = op.get("value")
            pod_opts.append(f"{op.get('name', '')}:{value}" if value else op.get("name", ""))
        cfg.options = _merge_options(cfg.options, pod_opts)
    if len(cfg.servers) > MAX_DNS_NAMESERVERS:
        cfg.servers = cfg.servers[:MAX_DNS_NAMESERVERS]
        cfg.warnings.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers "
                             "have been omitted, the applied nameserver line is: "
                             + " ".join(cfg.servers)))
    cfg.searches = _fit_searches(cfg.searches, cfg.warnings)
    return cfg


def render_resolv_conf(cfg: DNSConfig) -> str:
    """resolv.conf text as containerd writes it: ``search``, ``nameserver`` lines, ``options``."""
    out = ""
    if cfg.searches:
        out += f"search {' '.join(cfg.searches)}\n"
    for server in cfg.servers:
        out += f"nameserver {server}\n"
    if cfg.options:
        out += f"options {' '.join(cfg.options)}\n"
    return out


def resolv_conf(pod: Obj, *, cluster_dns: list[str], cluster_domain: str, host_resolv: str | None,
                node_ips: Sequence[str] = ()) -> str:
    """The pod's ``/etc/resolv.conf``. When the settings come out empty the runtime copies the host
    file (containerd does), so that is what is returned then."""
    cfg = pod_dns_config(pod, cluster_dns=cluster_dns, cluster_domain=cluster_domain,
                         host_resolv=host_resolv, node_ips=node_ips)
    text = render_resolv_conf(cfg)
    return text if text else (host_resolv or "")


# ---------------------------------------------------------------------------------------------
# /etc/hosts


def _host_alias_entries(pod: Obj) -> str:
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if not aliases:
        return ""
    out = "\n# Entries added by HostAliases.\n"
    for alias in aliases:
        out += f"{alias.get('ip', '')}\t{chr(9).join(alias.get('hostnames') or [])}\n"
    return out


def hosts_file(pod: Obj, pod_ip: str | Sequence[str] | None, *, cluster_domain: str = "cluster.local",
               host_hosts: str | None = None) -> str:
    """The pod's ``/etc/hosts``.

    Normal pods get the managed file: the header, localhost and IPv6 entries, one line per pod IP
    (``<ip>\\t<hostname>.<domain>\\t<hostname>`` with a subdomain, else ``<ip>\\t<hostname>``) and
    the ``hostAliases``. hostNetwork pods get the host's hosts file (``host_hosts``, its text; read
    from ``/etc/hosts`` when not given — callers on the event loop should pass it) under the
    host-network header, plus the aliases.
    """
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        if host_hosts is None:
            with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
                host_hosts = f.read()
        return MANAGED_HOSTS_HEADER_HOST_NETWORK + host_hosts + _host_alias_entries(pod)
    if pod_ip is None:
        ips: list[str] = []
    elif isinstance(pod_ip, str):
        ips = [pod_ip] if pod_ip else []
    else:
        ips = [ip for ip in pod_ip if ip]
    hostname, domain = pod_hostname_and_domain(pod, cluster_domain)
    out = (MANAGED_HOSTS_HEADER
           + "127.0.0.1\tlocalhost\n"
           + "::1\tlocalhost ip6-localhost ip6-loopback\n"
           + "fe00::0\tip6-localnet\n"
           + "fe00::0\tip6-mcastprefix\n"
           + "fe00::1\tip6-allnodes\n"
           + "fe00::2\tip6-allrouters\n")
    for ip in ips:
        out += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    return out + _host_alias_entries(pod)
