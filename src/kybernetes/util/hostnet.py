"""The host's own address: the IPv4 address a node reports as its InternalIP.

Like the upstream kubelet, the choice follows the default route: the address this host would send
from towards its default gateway (or of the default route's interface when it has no gateway). Only
without a default route does it fall back to the first address of an interface that is not ours
(``kyb*`` bridges, ``veth*`` pod ends, ``cni*``) nor loopback: a bridge another cluster left on the
host must never become the node's address, since it may vanish with that cluster.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

RTF_UP = 0x1
RTF_GATEWAY = 0x2
SIOCGIFADDR = 0x8915
OURS = ("kyb", "veth", "cni", "lo")


def parse_route(text: str) -> tuple[str, str | None] | None:
    """The default route of ``/proc/net/route`` as (interface, gateway or None); None if absent.

    Of several default routes, the one with the lowest metric wins (as the kernel picks it).
    """
    best: tuple[int, str, str | None] | None = None
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest, gateway, flags, metric, mask = int(f[1], 16), int(f[2], 16), int(f[3], 16), int(f[6]), int(f[7], 16)
        except ValueError:
            continue
        if dest != 0 or mask != 0 or not flags & RTF_UP:
            continue
        gw = socket.inet_ntoa(struct.pack("<I", gateway)) if flags & RTF_GATEWAY and gateway else None
        if best is None or metric < best[0]:
            best = (metric, f[0], gw)
    return None if best is None else (best[1], best[2])


def interface_ipv4(name: str) -> str | None:
    """The primary IPv4 address of interface ``name`` (None: none, or no such interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(raw[20:24])


def source_address(gateway: str) -> str | None:
    """The address the kernel would send from towards ``gateway`` (connecting UDP sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((gateway, 9))
        except OSError:
            return None
        return str(s.getsockname()[0])


def usable(addr: str | None) -> bool:
    if not addr:
        return False
    ip = ipaddress.ip_address(addr)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def node_ip(proc_net: Path = Path("/proc/net")) -> str:
    """This host's IPv4 address for other nodes to reach it (``127.0.0.1`` when it has none)."""
    try:
        route = parse_route((proc_net / "route").read_text())
    except OSError:
        route = None
    if route is not None:
        iface, gateway = route
        addr = source_address(gateway) if gateway else None
        if not usable(addr):
            addr = interface_ipv4(iface)
        if usable(addr):
            return str(addr)
    for _, name in socket.if_nameindex():
        if name.startswith(OURS):
            continue
        addr = interface_ipv4(name)
        if usable(addr):
            return str(addr)
    return "127.0.0.1"
