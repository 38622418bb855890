"""Pod hostname, resolv.conf and /etc/hosts (kubelet/podfiles.py)."""

from __future__ import annotations

import pytest

from kybernetes.kubelet.podfiles import (
    PodFileError,
    hosts_file,
    parse_resolv_conf,
    pod_dns_config,
    pod_hostname,
    pod_hostname_and_domain,
    resolv_conf,
)

from .conftest import make_pod

HOST_RESOLV = """# generated
nameserver 192.168.1.1
nameserver 192.168.1.2
search corp.example. lab.example .
options timeout:2 ndots:2
"""


def test_hostname_rules() -> None:
    assert pod_hostname(make_pod(name="web-0")) == "web-0"
    assert pod_hostname(make_pod(name="web-0", hostname="box")) == "box"
    long = "a" * 60 + "-.-bcd"
    assert pod_hostname(make_pod(name=long)) == "a" * 60   # cut to 63, then no trailing - or .
    assert pod_hostname_and_domain(make_pod(name="p", ns="prod", hostname="h", subdomain="sub")) == \
        ("h", "sub.prod.svc.cluster.local")
    fqdn = make_pod(name="p", ns="prod", subdomain="sub", setHostnameAsFQDN=True)
    assert pod_hostname(fqdn, cluster_domain="k8s.local") == "p.sub.prod.svc.k8s.local"
    with pytest.raises(PodFileError, match='pod Hostname "Bad_Name" is not a valid DNS label'):
        pod_hostname(make_pod(hostname="Bad_Name"))
    with pytest.raises(PodFileError, match="is too long"):
        pod_hostname(make_pod(name="x" * 40, subdomain="y" * 20, setHostnameAsFQDN=True))


def test_parse_resolv_conf() -> None:
    assert parse_resolv_conf(HOST_RESOLV) == (["192.168.1.1", "192.168.1.2"],
                                              ["corp.example", "lab.example"],
                                              ["timeout:2", "ndots:2"])


def test_cluster_first() -> None:
    pod = make_pod(ns="shop")
    text = resolv_conf(pod, cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                       host_resolv=HOST_RESOLV)
    assert text == ("search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
                    "nameserver 10.96.0.10\n"
                    "options ndots:5\n")


def test_cluster_first_host_network_falls_back_to_default() -> None:
    pod = make_pod(hostNetwork=True)
    text = resolv_conf(pod, cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                       host_resolv=HOST_RESOLV)
    assert text == ("search corp.example lab.example\nnameserver 192.168.1.1\nnameserver 192.168.1.2\n"
                    "options timeout:2 ndots:2\n")
    pod["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet"
    assert "nameserver 10.96.0.10\n" in resolv_conf(pod, cluster_dns=["10.96.0.10"],
                                                    cluster_domain="cluster.local", host_resolv=HOST_RESOLV)


def test_default_policy_and_dns_config_merge() -> None:
    pod = make_pod(dnsPolicy="Default", dnsConfig={
        "nameservers": ["192.168.1.1", "1.1.1.1"], "searches": ["extra.example", "lab.example"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "edns0"}]})
    text = resolv_conf(pod, cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                       host_resolv=HOST_RESOLV)
    assert text == ("search corp.example lab.example extra.example\n"
                    "nameserver 192.168.1.1\nnameserver 192.168.1.2\nnameserver 1.1.1.1\n"
                    "options timeout:2 ndots:1 edns0\n")


def test_none_policy() -> None:
    pod = make_pod(dnsPolicy="None", dnsConfig={"nameservers": ["9.9.9.9"], "searches": ["a.b"]})
    assert resolv_conf(pod, cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                       host_resolv=HOST_RESOLV) == "search a.b\nnameserver 9.9.9.9\n"


def test_cluster_first_without_cluster_dns_falls_back() -> None:
    cfg = pod_dns_config(make_pod(), cluster_dns=[], cluster_domain="cluster.local", host_resolv=HOST_RESOLV)
    assert cfg.servers == ["192.168.1.1", "192.168.1.2"]
    assert cfg.warnings[0][0] == "MissingClusterDNS"
    cfg = pod_dns_config(make_pod(dnsPolicy="Default"), cluster_dns=[], cluster_domain="c",
                         host_resolv=None, node_ips=["10.0.0.2"])
    assert (cfg.servers, cfg.searches) == (["127.0.0.1"], ["."])


def test_limits() -> None:
    many = [f"s{i}.example" for i in range(40)]
    pod = make_pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
                                                "searches": many + ["x" * 254]})
    cfg = pod_dns_config(pod, cluster_dns=[], cluster_domain="cluster.local", host_resolv="")
    assert cfg.servers == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    assert cfg.searches == many[:32]
    assert [w[0] for w in cfg.warnings] == ["DNSConfigForming", "DNSConfigForming"]
    long = [("d" * 200) + f".{i}" for i in range(20)]   # 20 * 203 chars > 2048
    cfg = pod_dns_config(make_pod(dnsPolicy="None", dnsConfig={"searches": long}), cluster_dns=[],
                         cluster_domain="", host_resolv="")
    assert len(" ".join(cfg.searches)) <= 2048 and cfg.searches == long[:len(cfg.searches)]
    assert len(cfg.searches) == 10


def test_hosts_file() -> None:
    pod = make_pod(name="web", ns="prod", hostname="web-0", subdomain="nginx",
                   hostAliases=[{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                                {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}])
    assert hosts_file(pod, "10.244.1.5") == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        "10.244.1.5\tweb-0.nginx.prod.svc.cluster.local\tweb-0\n"
        "\n"
        "# Entries added by HostAliases.\n"
        "127.0.0.1\tfoo.local\tbar.local\n"
        "10.1.2.3\tfoo.remote\n")
    plain = hosts_file(make_pod(name="p"), ["10.0.0.1", "fd00::1"])
    assert plain.endswith("10.0.0.1\tp\nfd00::1\tp\n")
    assert "HostAliases" not in plain


def test_hosts_file_host_network() -> None:
    pod = make_pod(hostNetwork=True, hostAliases=[{"ip": "1.2.3.4", "hostnames": ["x"]}])
    text = hosts_file(pod, "192.168.1.9", host_hosts="127.0.0.1 localhost\n")
    assert text == ("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
                    "\n# Entries added by HostAliases.\n1.2.3.4\tx\n")
