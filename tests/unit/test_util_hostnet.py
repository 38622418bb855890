"""The node's own address follows the default route, never a bridge some cluster left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kybernetes.util import hostnet

HEAD = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def route(*rows: str) -> str:
    return HEAD + "".join(r + "\n" for r in rows)


def test_default_route_with_a_gateway() -> None:
    text = route("kyb0\t0000F40A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
                 "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
                 "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0")
    assert hostnet.parse_route(text) == ("eth0", "192.0.2.1")


def test_lowest_metric_wins_and_down_routes_are_skipped() -> None:
    text = route("wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0",
                 "eth1\t00000000\t0101000A\t0002\t0\t0\t0\t00000000\t0\t0\t0",      # not RTF_UP
                 "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0")
    assert hostnet.parse_route(text) == ("eth0", "192.0.2.1")


def test_a_device_route_has_no_gateway_and_no_route_is_none() -> None:
    assert hostnet.parse_route(route("ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0")) == ("ppp0", None)
    assert hostnet.parse_route(route("eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0")) is None
    assert hostnet.parse_route("") is None


def test_interface_addresses() -> None:
    assert hostnet.interface_ipv4("lo") == "127.0.0.1"
    assert hostnet.interface_ipv4("no-such-if0") is None
    assert not hostnet.usable("127.0.0.1") and not hostnet.usable("169.254.1.1") and not hostnet.usable(None)
    assert hostnet.usable("192.0.2.2")


def test_node_ip_is_the_default_routes_source_address(tmp_path: Path) -> None:
    real = hostnet.parse_route(Path("/proc/net/route").read_text())
    if real is None or real[1] is None:
        pytest.skip("this host has no default gateway")
    got = hostnet.node_ip()
    assert got == hostnet.source_address(real[1])
    assert got == hostnet.interface_ipv4(real[0])


def test_without_a_default_route_our_own_interfaces_are_skipped(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "route").write_text(route())
    addrs = {"lo": "127.0.0.1", "kyb0": "10.244.0.1", "veth1a2b": "10.244.0.9", "eth0": "192.0.2.2"}
    monkeypatch.setattr(socket, "if_nameindex", lambda: list(enumerate(addrs, 1)))
    monkeypatch.setattr(hostnet, "interface_ipv4", addrs.get)
    assert hostnet.node_ip(tmp_path) == "192.0.2.2"
    del addrs["eth0"]
    assert hostnet.node_ip(tmp_path) == "127.0.0.1"
