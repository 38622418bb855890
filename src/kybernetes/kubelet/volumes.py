"""Pod volumes on the node: set up before the containers start, kept fresh, torn down after.

Layout (``root`` is the kubelet's pods directory, ``<data-dir>/pods``)::

    <root>/<pod uid>/volumes/<plugin>/<volume name>
        plugin = kubernetes.io~empty-dir | kubernetes.io~configmap | kubernetes.io~secret
               | kubernetes.io~downward-api | kubernetes.io~projected

Volume types, with upstream semantics:

* ``emptyDir``: a directory (mode 0777). ``medium: Memory`` mounts a tmpfs there, sized as upstream
  does: the smallest positive of ``sizeLimit``, the pod's memory limit and the node's allocatable
  memory (no ``size=`` option when none is known: the kernel default). Unmounted on teardown.
* ``hostPath``: the host path itself, checked (and created) per ``type``: ``DirectoryOrCreate``
  (mkdir 0755), ``Directory``, ``FileOrCreate`` (empty file 0644, parent must exist), ``File``,
  ``Socket``, ``CharDevice``, ``BlockDevice``; ``""`` checks nothing. Paths with ``..`` are refused.
* ``configMap``, ``secret``, ``downwardAPI``, ``projected``: files written by the ``AtomicWriter``
  (Kubernetes' scheme: the data lives in a hidden ``..<timestamp>`` directory, ``..data`` is a
  symlink to it swapped by ``rename(2)``, and each top-level name is a symlink ``name ->
  ..data/name``), so ``refresh`` can change the contents under running containers atomically.
  ``items`` select keys (``key``/``path``/``mode``), ``defaultMode`` defaults to 0644, ``optional``
  tolerates a missing object or key. Secrets and projected volumes live on a tmpfs when the kubelet
  is root (as upstream, so they never touch the disk), else in a 0700 directory. These volumes are
  always mounted read-only into containers (upstream ``ReadOnlyAPIDataVolumes``).
* ``projected`` sources: configMap, secret, downwardAPI and serviceAccountToken (``audience``,
  ``expirationSeconds`` default 3600, ``path``) through ``ObjectSource.request_token``. A token is
  requested again by ``refresh`` once 80 % of its lifetime has passed, or 24 h after it was issued
  (upstream token manager, with its up-to-10 s jitter).
* ``persistentVolumeClaim`` (and generic ``ephemeral`` volumes, whose claim is
  ``<pod>-<volume>``): the bound PV's ``hostPath`` (type-checked as above) or ``local`` path.

Failures raise ``VolumeError`` (reason ``FailedMount``, message as the upstream event:
``MountVolume.SetUp failed for volume "v" : configmap "x" not found``).
``container_mounts`` turns a container's ``volumeMounts`` into runtime ``Mount``s (``readOnly``,
``subPath`` / ``subPathExpr`` created inside the volume without following symlinks out of it,
``mountPropagation``); its errors carry reason ``CreateContainerConfigError`` as upstream.

Blocking file system work runs in threads. Disk phases of one pod (setup, refresh, teardown) are
serialized with a per-pod lock that is never held across a call to the ``ObjectSource``.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import random
import shutil
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kybernetes.api.quantity import int_value
from kybernetes.kubelet import envvars
from kybernetes.kubelet.envvars import ConfigError
from kybernetes.kubelet.runtime.base import Mount

Obj = dict[str, Any]

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_EXPIRATION = 3600
TOKEN_MAX_TTL = 24 * 3600
TOKEN_MAX_JITTER = 10
DATA_DIR = "..data"
DATA_DIR_TMP = "..data_tmp"
MAX_FILE_NAME_LENGTH = 255
MAX_PATH_LENGTH = 4096

PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
API_KINDS = ("configMap", "secret", "downwardAPI", "projected")
_KNOWN_KINDS = ("emptyDir", "hostPath", "persistentVolumeClaim", "ephemeral") + API_KINDS
# every volume source key in core/v1 (to tell "no plugin" from a volume with no source at all)
_ALL_SOURCES = _KNOWN_KINDS + (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc", "flexVolume",
    "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "image", "iscsi", "nfs",
    "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos",
    "vsphereVolume")


class ObjectSource(Protocol):
    """Where the kubelet's volume and env code reads API objects (the kubelet implements it)."""

    async def get_configmap(self, ns: str, name: str) -> dict | None: ...
    async def get_secret(self, ns: str, name: str) -> dict | None: ...
    async def get_pvc(self, ns: str, name: str) -> dict | None: ...
    async def get_pv(self, name: str) -> dict | None: ...
    async def list_services(self, ns: str) -> list[dict]: ...
    async def request_token(self, ns: str, service_account: str, *, audiences: list[str],
                            expiration_seconds: int, pod_name: str,
                            pod_uid: str) -> tuple[str, float]: ...


class VolumeError(Exception):
    """A volume cannot be set up or mounted. ``reason`` is the event / waiting reason
    (``FailedMount``, or ``CreateContainerConfigError`` from ``container_mounts``), ``message`` the
    text shown to users, ``volume`` the volume's name when known, ``cause`` the bare error."""

    def __init__(self, message: str, *, reason: str = "FailedMount", volume: str | None = None,
                 cause: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.volume = volume
        self.cause = cause if cause is not None else message


class _Failure(Exception):
    """Internal: a volume-level error whose text becomes the cause of a ``VolumeError``."""


def _aggregate(errors: Sequence[str]) -> str:
    """Go's ``utilerrors.NewAggregate(...).Error()``: one message, or ``[a, b]`` (duplicates once)."""
    uniq = list(dict.fromkeys(errors))
    return uniq[0] if len(uniq) == 1 else "[" + ", ".join(uniq) + "]"


def _go_os_error(op: str, path: str, e: OSError) -> str:
    msg = os.strerror(e.errno) if e.errno else str(e)
    return f"{op} {path}: {msg[:1].lower()}{msg[1:]}"


# ---------------------------------------------------------------------------------------------
# pure decisions


def volume_kind(vol: Obj) -> str | None:
    """Which source a pod volume uses (``emptyDir``, ``hostPath``, ...), or None if it names none."""
    for k in _ALL_SOURCES:
        if vol.get(k) is not None:
            return k
    return None


def validate_path_no_backsteps(path: str) -> str | None:
    return "must not contain '..'" if ".." in path.split("/") else None


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int


def configmap_payload(items: Sequence[Obj] | None, cm: Obj, default_mode: int,
                      optional: bool) -> dict[str, FileProjection]:
    """Files of a configMap volume (upstream ``configmap.MakePayload``); ValueError on a missing key."""
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    binary = envvars.configmap_binary(cm)
    if not items:
        out = {k: FileProjection(v, default_mode) for k, v in data.items()}
        out.update({k: FileProjection(v, default_mode) for k, v in binary.items()})
        return out
    out = {}
    for ktp in items:
        key = ktp.get("key", "")
        if key in data:
            content = data[key]
        elif key in binary:
            content = binary[key]
        elif optional:
            continue
        else:
            raise ValueError(f"configmap references non-existent config key: {key}")
        mode = ktp.get("mode")
        out[ktp.get("path", "")] = FileProjection(content, default_mode if mode is None else int(mode))
    return out


def secret_payload(items: Sequence[Obj] | None, secret: Obj, default_mode: int,
                   optional: bool) -> dict[str, FileProjection]:
    """Files of a secret volume (upstream ``secret.MakePayload``); ValueError on a missing key."""
    data = envvars.secret_data(secret)
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in data.items()}
    out = {}
    for ktp in items:
        key = ktp.get("key", "")
        if key not in data:
            if optional:
                continue
            raise ValueError(f"references non-existent secret key: {key}")
        mode = ktp.get("mode")
        out[ktp.get("path", "")] = FileProjection(data[key], default_mode if mode is None else int(mode))
    return out


def downward_payload(items: Sequence[Obj] | None, pod: Obj, default_mode: int,
                     allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
    """Files of a downwardAPI volume (upstream ``downwardapi.CollectData``): fieldRef (metadata
    name/namespace/uid/labels/annotations, subscripted labels/annotations) and resourceFieldRef
    (``containerName`` + ``divisor``, unset limits defaulting to node allocatable). ValueError
    carries every failing item's error (aggregated)."""
    out: dict[str, FileProjection] = {}
    errors: list[str] = []
    for item in items or []:
        path = os.path.normpath(item.get("path", ""))
        mode = item.get("mode")
        mode = default_mode if mode is None else int(mode)
        value = ""
        try:
            if item.get("fieldRef") is not None:
                value = envvars.extract_field_path(pod, item["fieldRef"].get("fieldPath", ""))
            elif item.get("resourceFieldRef") is not None:
                value = envvars.resource_ref_value(item["resourceFieldRef"], pod, None, allocatable)
        except ValueError as e:
            errors.append(str(e))
        out[path] = FileProjection(value.encode(), mode)
    if errors:
        raise ValueError(_aggregate(errors))
    return out


def token_requires_refresh(now: float, expiry: float, expiration_seconds: int, *,
                           jitter: float = 0.0, max_ttl: float = TOKEN_MAX_TTL) -> bool:
    """Upstream token manager: refresh 24 h after issue, or when less than 20 % of the requested
    lifetime is left (both moved earlier by ``jitter`` seconds)."""
    issued = expiry - expiration_seconds
    if now > issued + max_ttl - jitter:
        return True
    return now > expiry - (expiration_seconds * 20) // 100 - jitter


def pod_memory_limit(pod: Obj) -> int | None:
    """The pod-level memory limit the pod cgroup gets, or None when some container has none:
    max(sum of regular and sidecar containers, largest init container)."""
    spec = pod.get("spec") or {}

    def limit(c: Obj) -> int | None:
        v = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        return int_value(v) if v not in (None, "") else None

    total = 0
    init_max = 0
    for c in spec.get("containers") or []:
        v = limit(c)
        if v is None:
            return None
        total += v
    for c in spec.get("initContainers") or []:
        v = limit(c)
        if v is None:
            return None
        if c.get("restartPolicy") == "Always":
            total += v
        else:
            init_max = max(init_max, v)
    overhead = ((spec.get("overhead") or {}).get("memory"))
    return max(total, init_max) + (int_value(overhead) if overhead else 0)


def emptydir_memory_size(pod: Obj, source: Obj, allocatable: Mapping[str, Any] | None) -> int | None:
    """tmpfs size of a memory-backed emptyDir (upstream ``calculateEmptyDirMemorySize``): node
    allocatable memory, lowered to the pod's memory limit and then to ``sizeLimit`` when those are
    positive and smaller. None: unknown (mount without ``size=``)."""
    size = int_value(allocatable["memory"]) if allocatable and allocatable.get("memory") else None
    pod_limit = pod_memory_limit(pod)
    if pod_limit and pod_limit > 0 and (size is None or pod_limit <= size):
        size = pod_limit
    limit = source.get("sizeLimit")
    if limit not in (None, "", 0):
        v = int_value(limit)
        if v > 0 and (size is None or v <= size):
            size = v
    return size


def translate_propagation(mode: str | None, privileged: bool) -> str:
    if mode in (None, "", "None"):
        return "private"
    if mode == "HostToContainer":
        return "rslave"
    if mode == "Bidirectional":
        if not privileged:
            raise ValueError("Bidirectional mount propagation is available only to privileged containers")
        return "rshared"
    raise ValueError(f'invalid MountPropagation mode: "{mode}"')


def expand_subpath_expr(expr: str, env: Sequence[tuple[str, str]]) -> str:
    """``subPathExpr`` with ``$(VAR)`` from the container env; every reference must be set."""
    envmap = dict(env)
    missing: set[str] = set()

    def lookup(name: str) -> str:
        value = envmap.get(name, "")
        if not value:
            missing.add(name)
        return value

    out = envvars.expand(expr, lookup)
    if missing:
        raise ValueError(f"missing value for {', '.join(sorted(missing))}")
    return out


# ---------------------------------------------------------------------------------------------
# host path type checks (blocking)


def _file_type(path: str) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f'path "{path}" does not exist') from None
    except OSError as e:
        raise ValueError(_go_os_error("stat", path, e)) from None
    m = st.st_mode
    if stat.S_ISDIR(m):
        return "Directory"
    if stat.S_ISSOCK(m):
        return "Socket"
    if stat.S_ISCHR(m):
        return "CharDevice"
    if stat.S_ISBLK(m):
        return "BlockDevice"
    if stat.S_ISREG(m):
        return "File"
    raise ValueError("only recognise file, directory, socket, block device and character device")


def _type_matched(path: str, expected: str, description: str) -> None:
    if not os.path.exists(path):
        raise ValueError(f"hostPath {path} doesn't exist")
    try:
        actual = _file_type(path)
    except ValueError as e:
        raise ValueError(f"hostPath type check failed, {path} is not a {description}, unable to "
                         f"determine its type: {e}") from None
    if actual != expected:
        raise ValueError(f"hostPath type check failed: {path} is not a {description}, it's a {actual}")


def check_host_path(path: str, path_type: str | None) -> None:
    """Upstream hostPath ``SetUp``: refuse ``..``, then check / create per ``type``. Blocking.
    Raises ValueError with the upstream message."""
    err = validate_path_no_backsteps(path)
    if err:
        raise ValueError(f"invalid HostPath `{path}`: {err}")
    t = path_type or ""
    if t == "":
        return
    if t == "DirectoryOrCreate":
        if not os.path.exists(path):
            try:
                os.makedirs(path, 0o755, exist_ok=True)
            except FileExistsError:
                pass
            except OSError as e:
                raise ValueError(_go_os_error("mkdir", path, e)) from None
            return
        return _type_matched(path, "Directory", "directory")
    if t == "Directory":
        return _type_matched(path, "Directory", "directory")
    if t == "FileOrCreate":
        if not os.path.exists(path):
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            except FileExistsError:
                pass
            except OSError as e:
                raise ValueError(_go_os_error("open", path, e)) from None
            return
        return _type_matched(path, "File", "file")
    if t == "File":
        return _type_matched(path, "File", "file")
    if t == "Socket":
        return _type_matched(path, "Socket", "socket file")
    if t == "CharDevice":
        return _type_matched(path, "CharDevice", "character device")
    if t == "BlockDevice":
        return _type_matched(path, "BlockDevice", "block device")
    raise ValueError(f"{t} is an invalid volume type")


# ---------------------------------------------------------------------------------------------
# the atomic writer (blocking; callers serialize writes to one directory)


def validate_payload_path(path: str) -> None:
    """Upstream ``validatePath``: relative, no ``..`` element, not starting with ``..``, length limits."""
    if path == "":
        raise ValueError(f'invalid path: must not be empty: "{path}"')
    if path.startswith("/"):
        raise ValueError(f"invalid path: must be relative path: {path}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise ValueError(f"invalid path: must not contain '..': {path}")
        if len(item) > MAX_FILE_NAME_LENGTH:
            raise ValueError("invalid path: filenames must be less than or equal to "
                             f"{MAX_FILE_NAME_LENGTH} characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise ValueError(f"invalid path: must not start with '..': {path}")


class AtomicWriter:
    """Projects a payload (relative path -> ``FileProjection``) into ``target_dir`` atomically.

    Kubernetes' algorithm: validate; read the current ``..data`` target; find paths of the old
    version that the new payload drops; if nothing changed, only make sure the user-visible links
    exist; else write everything into a new ``..<UTC timestamp>.<random>`` directory (mode 0755, files
    chmod-ed to their exact mode), run ``set_perms`` on it, point a ``..data_tmp`` symlink at it and
    ``rename`` that over ``..data`` (atomic), create the top-level ``name -> ..data/name`` links,
    remove the top-level links of dropped names, and delete the previous timestamped directory.
    A reader that resolves ``..data`` once and reads through the result sees one consistent version.
    """

    def __init__(self, target_dir: str | Path) -> None:
        self.target = str(target_dir)

    def write(self, payload: Mapping[str, FileProjection],
              set_perms: Callable[[str], None] | None = None) -> bool:
        """Write ``payload``; True if a new version was written. ValueError for invalid paths."""
        clean: dict[str, FileProjection] = {}
        for p, proj in payload.items():
            validate_payload_path(p)
            clean[os.path.normpath(p)] = proj
        data_link = os.path.join(self.target, DATA_DIR)
        try:
            old_ts = os.readlink(data_link)
        except FileNotFoundError:
            old_ts = ""
        old_ts_path = os.path.join(self.target, old_ts) if old_ts else ""
        to_remove: set[str] = set()
        should_write = True
        if old_ts and os.path.isdir(old_ts_path):
            to_remove = self._paths_to_remove(clean, old_ts_path)
            should_write = bool(to_remove) or self._changed(clean, old_ts_path)
        if should_write:
            ts_dir = self._new_ts_dir()
            try:
                self._write_payload(clean, ts_dir)
                if set_perms is not None:
                    set_perms(ts_dir)
                tmp_link = os.path.join(self.target, DATA_DIR_TMP)
                if os.path.lexists(tmp_link):
                    os.unlink(tmp_link)
                os.symlink(os.path.basename(ts_dir), tmp_link)
                os.rename(tmp_link, data_link)
            except BaseException:
                shutil.rmtree(ts_dir, ignore_errors=True)
                with _suppress_os():
                    os.unlink(os.path.join(self.target, DATA_DIR_TMP))
                raise
        self._create_user_visible(clean)
        for p in to_remove:
            if "/" in p:
                continue
            with _suppress_os():
                os.unlink(os.path.join(self.target, p))
        if should_write:
            self._remove_stale_ts_dirs(keep=os.readlink(data_link))
        return should_write

    @staticmethod
    def _paths_to_remove(payload: Mapping[str, FileProjection], old_ts_path: str) -> set[str]:
        present: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(old_ts_path):
            rel = os.path.relpath(dirpath, old_ts_path)
            for n in dirnames + filenames:
                present.add(n if rel == "." else f"{rel}/{n}")
        new: set[str] = set()
        for p in payload:
            while p:
                new.add(p)
                p = os.path.dirname(p)
        return present - new

    @staticmethod
    def _changed(payload: Mapping[str, FileProjection], old_ts_path: str) -> bool:
        for p, proj in payload.items():
            full = os.path.join(old_ts_path, p)
            try:
                with open(full, "rb") as f:
                    if f.read() != proj.data:
                        return True
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return True
        return False

    def _new_ts_dir(self) -> str:
        prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        for _ in range(100):
            path = os.path.join(self.target, f"{prefix}{random.randrange(1 << 32)}")
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            os.chmod(path, 0o755)
            return path
        raise OSError(errno.EEXIST, "could not create a unique timestamped directory", self.target)

    @staticmethod
    def _write_payload(payload: Mapping[str, FileProjection], ts_dir: str) -> None:
        for p, proj in payload.items():
            full = os.path.join(ts_dir, p)
            os.makedirs(os.path.dirname(full), 0o777, exist_ok=True)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                         proj.mode & 0o7777)
            try:
                view = memoryview(proj.data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fchmod(fd, proj.mode & 0o7777)
            finally:
                os.close(fd)

    def _create_user_visible(self, payload: Mapping[str, FileProjection]) -> None:
        for p in payload:
            top = p.split("/", 1)[0]
            visible = os.path.join(self.target, top)
            if not os.path.lexists(visible):
                os.symlink(os.path.join(DATA_DIR, top), visible)

    def _remove_stale_ts_dirs(self, keep: str) -> None:
        for name in os.listdir(self.target):
            if name.startswith("..") and name not in (keep, DATA_DIR, DATA_DIR_TMP):
                path = os.path.join(self.target, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        return et is not None and issubclass(et, OSError)


# ---------------------------------------------------------------------------------------------
# mounts (blocking)

_libc: Any = None
MNT_DETACH = 2


def _libc_call() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def mount_tmpfs(path: str, size: int | None) -> None:
    options = f"size={size}" if size else None
    libc = _libc_call()
    if libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options.encode() if options else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount tmpfs at {path}: {os.strerror(e)}", path)


def unmount(path: str) -> None:
    """Unmount ``path``; a busy mount is detached lazily. Not mounted / missing is fine."""
    libc = _libc_call()
    if libc.umount2(path.encode(), 0) == 0:
        return
    e = ctypes.get_errno()
    if e in (errno.EINVAL, errno.ENOENT):
        return
    if e == errno.EBUSY and libc.umount2(path.encode(), MNT_DETACH) == 0:
        return
    raise OSError(e, f"unmount {path}: {os.strerror(e)}", path)


def _unescape_mountinfo(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        digits = s[i + 1:i + 4]
        if s[i] == "\\" and len(digits) == 3 and all(c in "01234567" for c in digits):
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (from ``/proc/self/mountinfo``)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [_unescape_mountinfo(line.split(" ")[4]) for line in lines if len(line.split(" ")) > 4]


def mounts_under(path: str) -> list[str]:
    real = os.path.realpath(path)
    return [m for m in mount_points() if m == real or m.startswith(real.rstrip("/") + "/")]


def _apply_fs_group(path: str, gid: int, readonly: bool) -> None:
    """Upstream ``SetVolumeOwnership``: group-own everything by ``gid``; files get g+r (read-only
    volumes) or g+rw, directories also g+x and setgid. Symlinks are only re-owned."""
    mask = 0o440 if readonly else 0o660
    for dirpath, dirnames, filenames in os.walk(path):
        entries = [dirpath] + [os.path.join(dirpath, n) for n in filenames]
        entries += [os.path.join(dirpath, n) for n in dirnames if os.path.islink(os.path.join(dirpath, n))]
        for full in entries:
            st = os.lstat(full)
            os.lchown(full, -1, gid)
            if stat.S_ISLNK(st.st_mode):
                continue
            m = stat.S_IMODE(st.st_mode) | mask
            if stat.S_ISDIR(st.st_mode):
                m |= stat.S_ISGID | 0o110
            os.chmod(full, m)


# ---------------------------------------------------------------------------------------------
# subPath (blocking)


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def safe_make_dir(volume_path: str, sub_path: str, perm: int) -> None:
    """Create ``sub_path`` inside ``volume_path`` one component at a time (``openat`` with
    ``O_NOFOLLOW``), following an existing symlink only when it resolves inside the volume."""
    base = os.path.realpath(volume_path)
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(base, flags)
    current = base
    try:
        for part in parts:
            try:
                nfd = os.open(part, flags, dir_fd=fd)
                current = os.path.join(current, part)
            except FileNotFoundError:
                os.mkdir(part, perm & 0o7777, dir_fd=fd)
                nfd = os.open(part, flags, dir_fd=fd)
                os.fchmod(nfd, perm & 0o7777)
                current = os.path.join(current, part)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                target = os.path.realpath(os.path.join(current, part))
                if not _within(target, base):
                    raise ValueError(f"pathname {os.path.join(current, part)} is not within {base}") from None
                nfd = os.open(target, flags)
                current = target
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)


def prepare_subpath(volume_path: str, sub_path: str, *, mount_name: str, container_name: str) -> str:
    """The host path to bind for ``subPath``: created when missing (with the volume's mode), and
    resolved so that it cannot point outside the volume. Raises VolumeError."""
    if sub_path.startswith("/"):
        raise _config_error(f"error SubPath `{sub_path}` must not be an absolute path")
    err = validate_path_no_backsteps(sub_path)
    if err:
        raise _config_error(f"unable to provision SubPath `{sub_path}`: {err}")
    host = os.path.join(volume_path, sub_path)
    if not os.path.lexists(host):
        try:
            safe_make_dir(volume_path, sub_path, stat.S_IMODE(os.stat(volume_path).st_mode))
        except (OSError, ValueError):
            raise _config_error(f'failed to create subPath directory for volumeMount "{mount_name}" '
                                f'of container "{container_name}"') from None
    base = os.path.realpath(volume_path)
    real = os.path.realpath(host)
    if not _within(real, base) or not os.path.exists(real):
        raise _config_error(f'failed to prepare subPath for volumeMount "{mount_name}" of container '
                            f'"{container_name}"')
    return real


def _config_error(message: str) -> VolumeError:
    return VolumeError(message, reason="CreateContainerConfigError")


# ---------------------------------------------------------------------------------------------
# the manager


@dataclass
class _Token:
    token: str
    expiry: float
    expiration_seconds: int


class VolumeManager:
    """Sets up, refreshes and tears down the volumes of the pods on this node.

    ``root`` is the pods directory (``<data-dir>/pods``). ``clock`` gives unix seconds (token
    refresh). ``use_tmpfs`` (default: running as root) puts secret and projected volumes on tmpfs;
    memory-backed emptyDirs always need it (and therefore root).
    """

    def __init__(self, root: str | Path, source: ObjectSource, *, clock: Callable[[], float] = time.time,
                 use_tmpfs: bool | None = None, token_jitter: float = TOKEN_MAX_JITTER) -> None:
        self.root = Path(root)
        self.source = source
        self.clock = clock
        self.use_tmpfs = (os.geteuid() == 0) if use_tmpfs is None else use_tmpfs
        self.token_jitter = token_jitter
        self._locks: dict[str, asyncio.Lock] = {}
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    # paths ------------------------------------------------------------------------------------

    def pod_dir(self, pod_uid: str) -> Path:
        return self.root / pod_uid

    def volume_dir(self, pod_uid: str, kind: str, name: str) -> Path:
        return self.root / pod_uid / "volumes" / PLUGIN_DIRS[kind] / name

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    # public API -------------------------------------------------------------------------------

    async def setup(self, pod: Obj, node: dict | None = None) -> dict[str, str]:
        """Make every volume of ``pod`` ready; returns volume name -> host path. Idempotent (a second
        call re-checks and rewrites only what changed). Raises VolumeError for the first failure."""
        uid = pod["metadata"]["uid"]
        allocatable = _allocatable(node)
        paths: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            paths[vol["name"]] = await self._setup_volume(uid, pod, vol, allocatable)
        return paths

    async def refresh(self, pod: Obj, node: dict | None = None) -> None:
        """Re-project configMap, secret, downwardAPI and projected volumes that are set up (the
        atomic ``..data`` swap; unchanged volumes are not touched) and renew service-account tokens
        that are due. Every volume is tried; the first failure is raised afterwards as VolumeError
        (the old contents stay in place, as upstream)."""
        uid = pod["metadata"]["uid"]
        allocatable = _allocatable(node)
        failures: list[VolumeError] = []
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            kind = volume_kind(vol)
            if kind not in API_KINDS:
                continue
            d = self.volume_dir(uid, kind, vol["name"])
            if not await asyncio.to_thread(os.path.isdir, d):
                continue
            try:
                await self._setup_api_volume(uid, pod, vol, kind, allocatable, refresh=True)
            except VolumeError as e:
                failures.append(e)
        if failures:
            raise failures[0]

    async def teardown(self, pod_uid: str) -> None:
        """Unmount and remove every volume directory of the pod (idempotent; works after a partial
        setup or a kubelet restart, since it reads the mount table rather than memory). Raises
        VolumeError if a mount cannot be removed (nothing is deleted under a live mount)."""
        async with self._lock(pod_uid):
            try:
                await asyncio.to_thread(self._teardown_sync, pod_uid)
            except OSError as e:
                raise VolumeError(f"UnmountVolume.TearDown failed for pod {pod_uid}: {e}",
                                  cause=str(e)) from e
        for key in [k for k in self._tokens if k[0] == pod_uid]:
            del self._tokens[key]
        self._locks.pop(pod_uid, None)

    def container_mounts(self, pod: Obj, container: dict, volume_paths: dict[str, str], *,
                         env: Sequence[tuple[str, str]] = ()) -> list[Mount]:
        """Runtime mounts for ``container``'s ``volumeMounts`` (upstream ``makeMounts``). Blocking
        (it may create subPath directories): call it in a thread, or use ``prepare_mounts``.
        ``env`` is the container environment, for ``subPathExpr``. Raises VolumeError with reason
        ``CreateContainerConfigError``."""
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        privileged = bool((container.get("securityContext") or {}).get("privileged"))
        cname = container.get("name", "")
        out: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            name = vm.get("name", "")
            host = volume_paths.get(name)
            if host is None or name not in volumes:
                raise _config_error(f'cannot find volume "{name}" to mount into container "{cname}"')
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                try:
                    sub = expand_subpath_expr(vm["subPathExpr"], env)
                except ValueError as e:
                    raise _config_error(str(e)) from None
            if sub:
                host = prepare_subpath(host, sub, mount_name=name, container_name=cname)
            try:
                propagation = translate_propagation(vm.get("mountPropagation"), privileged)
            except ValueError as e:
                raise _config_error(str(e)) from None
            path = vm.get("mountPath", "")
            if not path.startswith("/"):
                path = "/" + path
            read_only = bool(vm.get("readOnly")) or _volume_read_only(volumes[name])
            out.append(Mount(host_path=host, container_path=path, read_only=read_only,
                             propagation=propagation))
        return out

    async def prepare_mounts(self, pod: Obj, container: dict, volume_paths: dict[str, str], *,
                             env: Sequence[tuple[str, str]] = ()) -> list[Mount]:
        """``container_mounts`` run in a thread."""
        return await asyncio.to_thread(self.container_mounts, pod, container, volume_paths, env=env)

    # setup per kind ---------------------------------------------------------------------------

    async def _setup_volume(self, uid: str, pod: Obj, vol: Obj, allocatable: Mapping[str, Any] | None) -> str:
        name = vol.get("name", "")
        kind = volume_kind(vol)
        try:
            if kind == "hostPath":
                src = vol["hostPath"]
                await asyncio.to_thread(_host_path_checked, src.get("path", ""), src.get("type"))
                return src.get("path", "")
            if kind == "emptyDir":
                return await self._setup_emptydir(uid, pod, vol, allocatable)
            if kind in API_KINDS:
                return await self._setup_api_volume(uid, pod, vol, kind, allocatable, refresh=False)
        except _Failure as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}', volume=name,
                              cause=str(e)) from None
        if kind in ("persistentVolumeClaim", "ephemeral"):
            return await self._setup_claim(pod, vol, kind)
        raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : no volume plugin matched',
                          volume=name, cause="no volume plugin matched")

    async def _setup_emptydir(self, uid: str, pod: Obj, vol: Obj, allocatable: Mapping[str, Any] | None) -> str:
        src = vol["emptyDir"] or {}
        medium = src.get("medium") or ""
        if medium not in ("", "Memory"):
            raise _Failure(f"unsupported medium {medium!r} for emptyDir")
        size = emptydir_memory_size(pod, src, allocatable) if medium == "Memory" else None
        d = self.volume_dir(uid, "emptyDir", vol["name"])
        fs_group, policy = _fs_group(pod)
        async with self._lock(uid):
            await asyncio.to_thread(_prepare_emptydir, d, medium == "Memory", size, fs_group, policy)
        return str(d)

    async def _setup_api_volume(self, uid: str, pod: Obj, vol: Obj, kind: str,
                                allocatable: Mapping[str, Any] | None, *, refresh: bool) -> str:
        name = vol["name"]
        try:
            payload = await self._collect(uid, pod, vol, kind, allocatable)
        except (ValueError, ConfigError) as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}', volume=name,
                              cause=str(e)) from None
        d = self.volume_dir(uid, kind, name)
        memory = self.use_tmpfs and kind in ("secret", "projected")
        private = kind in ("secret", "projected") and not self.use_tmpfs
        size = emptydir_memory_size(pod, {}, allocatable) if memory else None
        fs_group, _ = _fs_group(pod)
        async with self._lock(uid):
            try:
                await asyncio.to_thread(_write_api_volume, d, payload, memory=memory, size=size,
                                        private=private, fs_group=fs_group, only_existing=refresh)
            except (OSError, ValueError) as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}', volume=name,
                                  cause=str(e)) from None
        return str(d)

    async def _collect(self, uid: str, pod: Obj, vol: Obj, kind: str,
                       allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
        ns = pod["metadata"].get("namespace") or "default"
        src = vol[kind] or {}
        default_mode = src.get("defaultMode")
        default_mode = DEFAULT_MODE if default_mode is None else int(default_mode)
        if kind == "configMap":
            return await self._configmap_files(ns, src, default_mode)
        if kind == "secret":
            return await self._secret_files(ns, {**src, "name": src.get("secretName", "")}, default_mode)
        if kind == "downwardAPI":
            return downward_payload(src.get("items"), pod, default_mode, allocatable)
        # projected
        payload: dict[str, FileProjection] = {}
        errors: list[str] = []
        fs_group, _ = _fs_group(pod)
        for source in src.get("sources") or []:
            try:
                if source.get("secret") is not None:
                    payload.update(await self._secret_files(ns, source["secret"], default_mode))
                elif source.get("configMap") is not None:
                    payload.update(await self._configmap_files(ns, source["configMap"], default_mode))
                elif source.get("downwardAPI") is not None:
                    payload.update(downward_payload(source["downwardAPI"].get("items"), pod,
                                                    default_mode, allocatable))
                elif source.get("serviceAccountToken") is not None:
                    tp = source["serviceAccountToken"]
                    token = await self._token(uid, pod, vol["name"], tp)
                    mode = 0o600 if fs_group is not None else default_mode
                    payload[tp.get("path", "")] = FileProjection(token.encode(), mode)
                elif source.get("clusterTrustBundle") is not None:
                    raise ValueError("clusterTrustBundle projections are not supported")
            except (ValueError, ConfigError) as e:
                errors.append(str(e))
        if errors:
            raise ValueError(_aggregate(errors))
        return payload

    async def _configmap_files(self, ns: str, src: Obj, default_mode: int) -> dict[str, FileProjection]:
        name = src.get("name", "")
        optional = bool(src.get("optional"))
        cm = await self._get(self.source.get_configmap, ns, name)
        if cm is None:
            if not optional:
                raise ValueError(envvars.configmap_not_found(name))
            cm = {}
        return configmap_payload(src.get("items"), cm, default_mode, optional)

    async def _secret_files(self, ns: str, src: Obj, default_mode: int) -> dict[str, FileProjection]:
        name = src.get("name", "")
        optional = bool(src.get("optional"))
        secret = await self._get(self.source.get_secret, ns, name)
        if secret is None:
            if not optional:
                raise ValueError(envvars.secret_not_found(name))
            secret = {}
        return secret_payload(src.get("items"), secret, default_mode, optional)

    @staticmethod
    async def _get(getter: Callable[..., Any], *args: Any) -> Obj | None:
        try:
            return await getter(*args)
        except (ValueError, ConfigError):
            raise
        except Exception as e:  # an API failure surfaces as the volume's error (retried later)
            raise ValueError(str(e) or type(e).__name__) from e

    async def _token(self, uid: str, pod: Obj, vol_name: str, tp: Obj) -> str:
        key = (uid, vol_name, tp.get("path", ""))
        exp_s = int(tp.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION)
        cached = self._tokens.get(key)
        now = self.clock()
        jitter = float(int(random.random() * self.token_jitter))
        if cached and not token_requires_refresh(now, cached.expiry, cached.expiration_seconds,
                                                 jitter=jitter):
            return cached.token
        meta, spec = pod["metadata"], pod.get("spec") or {}
        audiences = [tp["audience"]] if tp.get("audience") else []
        try:
            token, expiry = await self.source.request_token(
                meta.get("namespace") or "default", spec.get("serviceAccountName") or "default",
                audiences=audiences, expiration_seconds=exp_s, pod_name=meta.get("name", ""),
                pod_uid=uid)
        except Exception as e:
            raise ValueError(str(e) or type(e).__name__) from e
        self._tokens[key] = _Token(token, float(expiry), exp_s)
        return token

    async def _setup_claim(self, pod: Obj, vol: Obj, kind: str) -> str:
        name = vol["name"]
        meta = pod["metadata"]
        ns = meta.get("namespace") or "default"
        # (the claim's readOnly flag is applied by container_mounts)
        if kind == "ephemeral":
            claim = f"{meta.get('name', '')}-{name}"
        else:
            claim = vol[kind].get("claimName", "")

        def fail(msg: str) -> VolumeError:
            text = f"error processing PVC {ns}/{claim}: {msg}"
            return VolumeError(text, volume=name, cause=text)

        pvc = await self._get_or_fail(self.source.get_pvc, fail, ns, claim)
        if pvc is None:
            raise fail(f'failed to fetch PVC from API server: persistentvolumeclaims "{claim}" not found')
        if kind == "ephemeral":
            owners = (pvc.get("metadata") or {}).get("ownerReferences") or []
            if not any(o.get("uid") == meta.get("uid") and o.get("controller") for o in owners):
                raise fail(f"PVC {ns}/{claim} was not created for pod {ns}/{meta.get('name', '')} "
                           "(pod is not owner)")
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            raise fail("PVC is being deleted")
        pv_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if (pvc.get("status") or {}).get("phase") != "Bound" or not pv_name:
            raise fail("PVC is not bound")
        pv = await self._get_or_fail(self.source.get_pv, fail, pv_name)
        if pv is None:
            raise fail(f'failed to fetch PV {pv_name} from API server: persistentvolumes "{pv_name}" '
                       "not found")
        claim_ref = (pv.get("spec") or {}).get("claimRef")
        if not claim_ref:
            raise fail(f"found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is "
                       "not yet bound to the claim")
        pvc_uid = (pvc.get("metadata") or {}).get("uid")
        if claim_ref.get("uid") and pvc_uid and claim_ref["uid"] != pvc_uid:
            raise fail(f"found PV object {pv_name} but its pv.Spec.ClaimRef.UID {claim_ref['uid']} does "
                       f"not point to claim.UID {pvc_uid}")
        spec = pv.get("spec") or {}
        try:
            if spec.get("hostPath") is not None:
                hp = spec["hostPath"]
                await asyncio.to_thread(_host_path_checked, hp.get("path", ""), hp.get("type"))
                return hp.get("path", "")
            if spec.get("local") is not None:
                path = spec["local"].get("path", "")
                await asyncio.to_thread(_local_path_checked, path)
                return path
        except _Failure as e:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{pv_name}" : {e}', volume=name,
                              cause=str(e)) from None
        raise VolumeError(f'MountVolume.SetUp failed for volume "{pv_name}" : no volume plugin matched',
                          volume=name, cause="no volume plugin matched")

    @staticmethod
    async def _get_or_fail(getter: Callable[..., Any], fail: Callable[[str], VolumeError],
                           *args: Any) -> Obj | None:
        try:
            return await getter(*args)
        except Exception as e:
            raise fail(f"failed to fetch from API server: {e}") from e

    # teardown ---------------------------------------------------------------------------------

    def _teardown_sync(self, uid: str) -> None:
        pod_dir = self.pod_dir(uid)
        vols = pod_dir / "volumes"
        if os.path.lexists(vols):
            for mp in sorted(mounts_under(str(vols)), key=len, reverse=True):
                unmount(mp)
            left = mounts_under(str(vols))
            if left:
                raise OSError(errno.EBUSY, f"still mounted: {', '.join(left)}")
            try:
                shutil.rmtree(vols)
            except FileNotFoundError:
                pass
        with _suppress_os():
            os.rmdir(pod_dir)  # only when the kubelet left nothing else there


def _allocatable(node: dict | None) -> dict[str, Any] | None:
    if not node:
        return None
    return (node.get("status") or {}).get("allocatable") or None


def _fs_group(pod: Obj) -> tuple[int | None, str | None]:
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    g = sc.get("fsGroup")
    return (int(g) if g is not None else None), sc.get("fsGroupChangePolicy")


def _volume_read_only(vol: Obj) -> bool:
    kind = volume_kind(vol)
    if kind in API_KINDS:
        return True
    if kind == "persistentVolumeClaim":
        return bool(vol[kind].get("readOnly"))
    return False


def _host_path_checked(path: str, path_type: str | None) -> None:
    try:
        check_host_path(path, path_type)
    except ValueError as e:
        raise _Failure(str(e)) from None


def _local_path_checked(path: str) -> None:
    if not os.path.exists(path):
        raise _Failure(f'path "{path}" does not exist')


def _prepare_dir(d: Path, *, memory: bool, size: int | None, mode: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    if memory and not os.path.ismount(d):
        mount_tmpfs(str(d), size)
    os.chmod(d, mode)


def _prepare_emptydir(d: Path, memory: bool, size: int | None, fs_group: int | None,
                      policy: str | None) -> None:
    try:
        _prepare_dir(d, memory=memory, size=size, mode=0o777)
        if fs_group is not None:
            st = os.stat(d)
            if not (policy == "OnRootMismatch" and st.st_gid == fs_group and st.st_mode & stat.S_ISGID):
                _apply_fs_group(str(d), fs_group, readonly=False)
    except OSError as e:
        raise _Failure(str(e)) from None


def _write_api_volume(d: Path, payload: Mapping[str, FileProjection], *, memory: bool,
                      size: int | None, private: bool, fs_group: int | None,
                      only_existing: bool) -> bool:
    if only_existing and not d.is_dir():
        return False
    _prepare_dir(d, memory=memory, size=size, mode=0o700 if private else 0o777)
    set_perms = None
    if fs_group is not None:
        def set_perms(ts_dir: str) -> None:
            _apply_fs_group(ts_dir, fs_group, readonly=True)
            os.lchown(d, -1, fs_group)
    return AtomicWriter(d).write(payload, set_perms)
