"""Thin wrappers over Linux system calls the runtime needs (mount, umount2, setns, unshare), via ctypes.

Every function here blocks; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable, Mapping

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MNT_DETACH = 0x2
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
NS_FLAGS = {"net": CLONE_NEWNET, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC}
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                       data.encode() if data else None), f"mount {fstype} on {target}")


def bind_mount(source: str, target: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind {source} on {target}")


def umount(target: str, *, detach: bool = False) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH if detach else 0), f"umount {target}")


def mount_overlay(lower: list[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay of ``lower`` (topmost first, as overlayfs wants) on ``target``."""
    opts = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(opts) >= 4096:
        raise OSError(errno.E2BIG, f"overlay options too long ({len(opts)} bytes, {len(lower)} layers)")
    mount("overlay", target, "overlay", 0, opts)


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountpoints(mountinfo: str) -> list[str]:
    """The mount points listed in a /proc/<pid>/mountinfo text (pure)."""
    points = []
    for line in mountinfo.splitlines():
        parts = line.split(" ")
        if len(parts) > 4:
            points.append(_unescape(parts[4]))
    return points


def mountpoints_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in our mount namespace, deepest first."""
    with open("/proc/self/mountinfo") as f:
        points = parse_mountpoints(f.read())
    path = os.path.abspath(path).rstrip("/")
    hits = {p for p in points if p == path or p.startswith(path + "/")}
    return sorted(hits, key=lambda p: p.count("/"), reverse=True)


def unmount_all_under(path: str) -> None:
    """Unmount everything mounted at or below ``path`` (lazily if busy); repeat for stacked mounts."""
    for _ in range(8):
        points = mountpoints_under(path)
        if not points:
            return
        for p in points:
            try:
                umount(p)
            except OSError as e:
                if e.errno == errno.EBUSY:
                    umount(p, detach=True)
                elif e.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
    if mountpoints_under(path):
        raise OSError(errno.EBUSY, f"mounts remain under {path}")


def socket_in_netns(netns_path: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket created inside the network namespace at ``netns_path``.

    ``setns`` changes only the calling thread, so it runs in a throwaway thread that never
    returns to a pool; the socket stays in the namespace it was created in.
    """
    def work() -> socket.socket:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns_path}")
        finally:
            os.close(fd)
        return socket.socket(family, socket.SOCK_STREAM)

    sock = _in_throwaway_thread("netns-socket", work)
    assert isinstance(sock, socket.socket)
    return sock


def _in_throwaway_thread(name: str, work: Callable[[], object]) -> object:
    """Run ``work`` in a new thread that ends afterwards: namespace changes made with ``unshare``
    or ``setns`` affect only the calling thread, which must therefore never return to a pool."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result.append(e)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    t.join()
    r = result[0]
    if isinstance(r, BaseException):
        raise r
    return r


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req + bytes(22))[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP) + bytes(22))


def create_namespaces(paths: Mapping[str, str], hostname: str = "") -> None:
    """New ``net``/``uts``/``ipc`` namespaces (the keys of ``paths``) kept alive by bind mounts on
    the (existing, empty) files ``paths[kind]``: a pod sandbox without a pause process.

    The new network namespace gets ``lo`` up and the UTS namespace ``hostname``. Nothing is
    started: one thread unshares, configures and mounts, then ends. On failure the mounts made so
    far are undone.
    """
    unknown = set(paths) - set(NS_FLAGS)
    if unknown:
        raise ValueError(f"unsupported namespace kinds: {sorted(unknown)}")
    flags = 0
    for kind in paths:
        flags |= NS_FLAGS[kind]

    def work() -> None:
        _check(_libc.unshare(flags), "unshare")
        if "uts" in paths and hostname:
            name = hostname.encode()
            _check(_libc.sethostname(name, len(name)), "sethostname")
        if "net" in paths:
            _loopback_up()
        task = f"/proc/self/task/{threading.get_native_id()}/ns"
        done: list[str] = []
        try:
            for kind, target in paths.items():
                bind_mount(f"{task}/{kind}", target)
                done.append(target)
        except BaseException:
            for target in done:
                umount(target, detach=True)
            raise

    _in_throwaway_thread("create-namespaces", work)
