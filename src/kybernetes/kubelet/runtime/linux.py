"""Thin wrappers over Linux system calls the runtime needs (mount, umount2, setns), via ctypes.

Every function here blocks; async callers run them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                       data.encode() if data else None), f"mount {fstype} on {target}")


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
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns_path}")
            finally:
                os.close(fd)
            result.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result.append(e)

    t = threading.Thread(target=work, name="netns-socket", daemon=True)
    t.start()
    t.join()
    r = result[0]
    if isinstance(r, BaseException):
        raise r
    return r
