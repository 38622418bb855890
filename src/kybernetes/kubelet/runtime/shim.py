"""The per-container supervisor ("shim"), in the spirit of conmon and containerd-shim.

    python -m kybernetes.kubelet.runtime.shim CONTAINER_DIR [--ready-fd N]   (default: stdout)
    python -m kybernetes.kubelet.runtime.shim --server SOCKET                 (the fork server)

The runtime starts one shim per container start. The shim forks once more and the first process
exits at once, so the shim is nobody's child but init's (or the nearest sub-reaper's) and lives
in its own session: containers keep running, logging and reporting their exit when the kubelet
dies. The shim:

1. reads ``CONTAINER_DIR/shim.spec`` (a ``marshal``-ed dict written by the runtime, keys
   listed below), makes itself a child sub-reaper and listens on
   ``CONTAINER_DIR/shim.sock``;
2. starts the container: ``runc run --detach`` (mode ``runc``; with ``--console-socket`` when
   ``tty``) or the ``argv`` directly (mode ``process``), with pipes (or a pty) for stdio that it
   keeps. The container's init is re-parented to the shim, which reaps it;
3. writes ``started.json`` and reports ``ok <pid>`` (or ``error <message>``) on ``--ready-fd``;
4. copies stdout/stderr into the log file in the CRI format
   (``<RFC3339Nano> <stdout|stderr> <F|P> <text>\\n``), rotating it by size
   (``<name>.1`` is the newest rotated file, ``log_max_files`` counts the live file too), and
   fans the raw output out to attached clients; forwards their stdin and window sizes;
5. when the container exits: drains its output (at most 2 s), reads the memory cgroup's
   ``oom_kill`` counter, writes ``exit.json`` atomically, tells attached clients, removes its
   socket and exits.

Files in CONTAINER_DIR (all written atomically: temp file + rename):

* ``shim.spec``     input (marshal): id, mode, argv, executable, env, cwd, uid, gid, groups,
  runc, runc_root, bundle, log_path, log_max_bytes, log_max_files, stdin, stdin_once, tty,
  memory_cgroup
* ``shim.sock``     attach socket (frame protocol below); gone when the shim exits
* ``started.json``  {"pid", "pid_start", "started_at", "shim_pid", "shim_start"}
  (``*_start`` = field 22 of /proc/<pid>/stat, to tell a live process from a reused pid)
* ``exit.json``     {"exit_code", "signal", "finished_at", "oom_killed", "reason", "message"};
  ``reason`` is "StartError" (exit code 128) when the process could not be started, else ""
* ``container.pid`` runc's pid file; ``runc.log`` runc's JSON log; ``shim.log`` the shim's stderr

Attach protocol on ``shim.sock``: frames of ``!cI`` (kind, payload length) + payload. The client
first sends ``H`` with ``stdin=0|1,output=0|1``; then ``I`` (stdin bytes), ``C`` (close stdin),
``R`` (``!HH`` columns, rows). The shim sends ``O`` (stdout), ``E`` (stderr) and finally ``X``
with the text of exit.json. A client that falls more than 8 MiB behind is dropped.

Fork server (``--server SOCKET``): starting a Python interpreter costs ~12 ms of CPU and the
imports more, on every container start. The runtime therefore keeps one resident server (its
child, single-threaded, this module already imported) listening on SOCKET: a client connects and
sends ``CONTAINER_DIR\n``; the server forks, the child forks the shim and exits (the server reaps
it at once), and the shim answers ``ok <pid>`` / ``error <message>`` on that connection, exactly
as on ``--ready-fd``. The shim's stderr goes to ``CONTAINER_DIR/shim.log``. The server exits when
its stdin (a pipe from the runtime) closes, so it never outlives the kubelet; the shims it forked
do, as shims always do.

The runtime runs a byte-compiled copy (``<root>/bin/shim-*.pyc``, ``python -S FILE``) to skip
compiling and package imports; ``python -m`` works the same. Only standard-library modules that
start fast are imported (no json, no subprocess): the shim
runs once per container start, on the pod start-up path, and stays resident for its lifetime.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import selectors
import signal
import socket
import struct
import sys
import time

SPEC_FILE = "shim.spec"
SOCKET_FILE = "shim.sock"
STARTED_FILE = "started.json"
EXIT_FILE = "exit.json"
PID_FILE = "container.pid"
RUNC_LOG = "runc.log"
SHIM_LOG = "shim.log"

# frame kinds
F_HELLO = b"H"
F_STDIN = b"I"
F_CLOSE = b"C"
F_RESIZE = b"R"
F_STDOUT = b"O"
F_STDERR = b"E"
F_EXIT = b"X"
HEADER = struct.Struct("!cI")
RESIZE = struct.Struct("!HH")
MAX_FRAME = 1 << 20

MAX_LINE = 16 * 1024            # longer lines are split into P(artial) records, as containerd does
CLIENT_BACKLOG = 8 << 20        # bytes queued for one attach client before it is dropped
STDIN_HIGH = 1 << 20            # pause reading clients while this much stdin is queued
DRAIN_SECONDS = 2.0             # how long to read output after the container exited
START_TIMEOUT = 60.0

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
PR_SET_CHILD_SUBREAPER = 36


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def hello_payload(*, stdin: bool, output: bool) -> bytes:
    return f"stdin={int(stdin)},output={int(output)}".encode()


def parse_hello(payload: bytes) -> dict[str, bool]:
    out = {"stdin": False, "output": True}
    for part in payload.decode(errors="replace").split(","):
        k, _, v = part.partition("=")
        if k in out:
            out[k] = v.strip() == "1"
    return out


# ---------------------------------------------------------------------------------------------
# small pure helpers (also used by the runtime and its tests)

_ts_cache: list = [None, ""]


def format_timestamp(ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, fixed width: ``2024-01-02T03:04:05.123456789Z``."""
    sec, frac = divmod(ns, 1_000_000_000)
    if _ts_cache[0] != sec:
        _ts_cache[0] = sec
        _ts_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_ts_cache[1]}.{frac:09d}Z"


_JSON_ESC = {i: f"\\u{i:04x}" for i in range(32)}
_JSON_ESC.update({ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t"})


def to_json(obj: object) -> str:
    """A tiny JSON encoder for the shim's flat records (json imports re: too slow to start)."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, str):
        return '"' + obj.translate(_JSON_ESC) + '"'
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{to_json(str(k))}: {to_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in obj) + "]"
    raise TypeError(type(obj))


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def runc_error(log_path: str) -> str:
    """The last error message in runc's JSON log (``{"level":"error","msg":"...","time":...}``)."""
    try:
        with open(log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if '"level":"error"' not in line:
            continue
        _, _, rest = line.partition('"msg":"')
        msg = rest.rsplit('","time"', 1)[0] if '","time"' in rest else rest.rstrip('"}')
        return msg.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return ""


class CriLogWriter:
    """Writes container output as CRI log records and rotates the file by size.

    Complete lines become ``F`` records; a line longer than ``MAX_LINE`` is cut into ``P``
    records followed by an ``F``; an unterminated tail is held until its newline, or written as
    ``F`` at ``close`` (end of stream), as containerd does.
    """

    def __init__(self, path: str, *, max_bytes: int = 10 << 20, max_files: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max(1, max_files)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size
        self.pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o640)
        except FileNotFoundError:   # the log directory was removed under us: recreate it
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                return os.open(self.path, flags, 0o640)
            except OSError as e:
                print(f"shim: cannot open {self.path}: {e}", file=sys.stderr)
        except OSError as e:
            print(f"shim: cannot open {self.path}: {e}", file=sys.stderr)
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)   # keep supervising regardless

    def write(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream]
        buf += data
        prefix = f"{format_timestamp(time.time_ns())} {stream} "
        records: list[bytes] = []
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            self._split(records, prefix, bytes(buf[:i]))
            del buf[:i + 1]
        while len(buf) >= MAX_LINE:
            records.append(prefix.encode() + b"P " + bytes(buf[:MAX_LINE]) + b"\n")
            del buf[:MAX_LINE]
        self._emit(records)

    @staticmethod
    def _split(records: list[bytes], prefix: str, line: bytes) -> None:
        p = prefix.encode()
        while len(line) > MAX_LINE:
            records.append(p + b"P " + line[:MAX_LINE] + b"\n")
            line = line[MAX_LINE:]
        records.append(p + b"F " + line + b"\n")

    def _emit(self, records: list[bytes]) -> None:
        chunk = bytearray()
        for rec in records:
            if self.size + len(chunk) + len(rec) > self.max_bytes and self.size + len(chunk) > 0:
                self._write(chunk)
                chunk = bytearray()
                self._rotate()
            chunk += rec
        self._write(chunk)

    def _write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        try:
            os.write(self.fd, data)
            self.size += len(data)
        except OSError as e:  # a full disk must not kill the container's supervisor
            print(f"shim: log write failed: {e}", file=sys.stderr)

    def _rotate(self) -> None:
        os.close(self.fd)
        keep = self.max_files - 1
        try:
            if keep <= 0:
                os.unlink(self.path)
            else:
                for i in range(keep, 0, -1):
                    src = self.path if i == 1 else f"{self.path}.{i - 1}"
                    if os.path.exists(src):
                        os.replace(src, f"{self.path}.{i}")
        except OSError as e:
            print(f"shim: log rotation failed: {e}", file=sys.stderr)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def close(self) -> None:
        prefix = f"{format_timestamp(time.time_ns())} "
        records: list[bytes] = []
        for stream, buf in self.pending.items():
            if buf:
                self._split(records, prefix + stream + " ", bytes(buf))
                buf.clear()
        self._emit(records)
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# process start (fork + exec with an error pipe; the shim is single-threaded, so fork is safe)

def spawn(argv: list[str], *, executable: str | None = None, env: dict[str, str] | None = None,
          cwd: str | None = None, stdio: tuple[int, int, int], setsid: bool = False,
          ctty: bool = False, uid: int | None = None, gid: int | None = None,
          groups: list[int] | None = None) -> int:
    """Start ``argv`` with ``stdio`` as fds 0-2; raise OSError if it could not be executed."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            for sig in (signal.SIGPIPE, signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT,
                        signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            if setsid:
                os.setsid()
            for target, fd in enumerate(stdio):
                os.dup2(fd, target, inheritable=True)
            os.closerange(3, w)
            os.closerange(w + 1, 1 << 16)
            if ctty:
                fcntl.ioctl(0, TIOCSCTTY, 0)
            if groups is not None:
                os.setgroups(groups)
            if gid is not None:
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)
            if cwd:
                os.chdir(cwd)
            os.execve(executable or argv[0], argv, env if env is not None else os.environ)
        except BaseException as e:  # noqa: BLE001 - report anything to the parent, then die
            try:
                os.write(w, f"{getattr(e, 'errno', 0) or 0}:{e}".encode(errors="replace"))
            finally:
                os._exit(127)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    if chunks:
        os.waitpid(pid, 0)
        code, _, msg = b"".join(chunks).decode(errors="replace").partition(":")
        raise OSError(int(code) if code.isdigit() else 0, msg)
    return pid


# ---------------------------------------------------------------------------------------------

class StartError(Exception):
    pass


class Client:
    __slots__ = ("sock", "inbuf", "outbuf", "hello", "stdin", "output", "paused")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.hello = False
        self.stdin = False
        self.output = False
        self.paused = False


class Shim:
    def __init__(self, cdir: str, spec: dict, ready_fd: int | None) -> None:
        self.cdir = cdir
        self.spec = spec
        self.ready_fd = ready_fd
        self.sel = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.pid = 0
        self.exit_status: int | None = None
        self.finished_at = 0.0
        self.outputs: dict[int, str] = {}       # fd -> stream name
        self.stdin_fd: int | None = None         # container stdin (pipe write end or pty master)
        self.stdin_buf = bytearray()
        self.stdin_owner: Client | None = None   # the stdin_once claimant
        self.stdin_closed = False
        self.master: int | None = None           # the pty master when tty
        self.log: CriLogWriter | None = None

    # -- start ---------------------------------------------------------------------------------
    def run(self) -> None:
        os.chdir(self.cdir)
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError) as e:
            print(f"shim: cannot become a sub-reaper: {e}", file=sys.stderr)
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        wr, ww = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(ww)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake_r = wr

        try:
            os.unlink(SOCKET_FILE)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(SOCKET_FILE)
        os.chmod(SOCKET_FILE, 0o600)
        self.listener.listen(64)
        self.listener.setblocking(False)

        spec = self.spec
        self.log = CriLogWriter(spec["log_path"], max_bytes=spec.get("log_max_bytes", 10 << 20),
                                max_files=spec.get("log_max_files", 5))
        try:
            self.pid = self._start()
        except StartError as e:
            self._start_failed(str(e))
            return
        except Exception as e:   # a bug or a resource shortage: still record why it did not run
            self._start_failed(f"{type(e).__name__}: {e}")
            return
        started = {"pid": self.pid, "pid_start": proc_starttime(self.pid),
                   "started_at": time.time(), "shim_pid": os.getpid(),
                   "shim_start": proc_starttime(os.getpid())}
        write_atomic(STARTED_FILE, to_json(started) + "\n")
        self._ready(f"ok {self.pid}")
        self._loop()
        self._finish()

    def _ready(self, msg: str) -> None:
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, msg.encode(errors="replace") + b"\n")
        except OSError:
            pass
        os.close(self.ready_fd)
        self.ready_fd = None

    def _start_failed(self, message: str) -> None:
        print(f"shim: start failed: {message}", file=sys.stderr)
        if self.log is not None:
            self.log.close()
        status = {"exit_code": 128, "signal": 0, "finished_at": time.time(), "oom_killed": False,
                  "reason": "StartError", "message": message}
        write_atomic(EXIT_FILE, to_json(status) + "\n")
        self._ready("error " + message.replace("\n", " "))
        self._close_listener()

    def _stdio(self) -> tuple[int, int, int, list[int]]:
        """Pipes for the container: (stdin, stdout, stderr) child ends and our ends to close."""
        spec = self.spec
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.outputs = {out_r: "stdout", err_r: "stderr"}
        if spec.get("stdin"):
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            self.stdin_fd = in_w
        else:
            in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return in_r, out_w, err_w, [in_r, out_w, err_w]

    def _start(self) -> int:
        if self.spec["mode"] == "runc":
            return self._start_runc()
        return self._start_process()

    def _start_process(self) -> int:
        spec = self.spec
        if spec.get("tty"):
            master, slave = os.openpty()
            os.set_inheritable(master, False)
            self.master = master
            self.outputs = {master: "stdout"}
            if spec.get("stdin"):
                self.stdin_fd = master
            stdio, close = (slave, slave, slave), [slave]
        else:
            i, o, e, close = self._stdio()
            stdio = (i, o, e)
        uid = spec.get("uid")
        gid = spec.get("gid")
        groups = spec.get("groups")
        if os.geteuid() != 0:   # only root can change identity: documented for the process runtime
            uid = gid = groups = None
        try:
            pid = spawn(spec["argv"], executable=spec.get("executable") or None,
                        env=dict(e.split("=", 1) for e in spec.get("env", []) if "=" in e),
                        cwd=spec.get("cwd") or None, stdio=stdio, setsid=True,
                        ctty=bool(spec.get("tty")), uid=uid, gid=gid, groups=groups)
        except OSError as e:
            raise StartError(f"failed to start {spec['argv'][0]!r}: {e.strerror or e}") from None
        finally:
            for fd in close:
                os.close(fd)
        return pid

    def _start_runc(self) -> int:
        spec = self.spec
        cmd = [spec["runc"], "--root", spec["runc_root"], "--log", os.path.join(self.cdir, RUNC_LOG),
               "--log-format", "json", "run", "--detach", "--pid-file", os.path.join(self.cdir, PID_FILE),
               "--bundle", spec["bundle"]]
        console = None
        if spec.get("tty"):
            cdir = f"/tmp/kyb-console-{os.getpid()}-{time.monotonic_ns()}"
            os.mkdir(cdir, 0o700)
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            console.bind(cdir + "/c.sock")
            console.listen(1)
            cmd += ["--console-socket", cdir + "/c.sock"]
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            stdio, close = (devnull, devnull, 2), [devnull]
        else:
            i, o, e, close = self._stdio()
            stdio = (i, o, e)
        cmd.append(spec["id"])
        try:
            try:
                runc_pid = spawn(cmd, stdio=stdio)
            finally:
                for fd in close:
                    os.close(fd)
            if console is not None:
                self._receive_console(console, runc_pid)
            _, status = os.waitpid(runc_pid, 0)
        except OSError as e:
            raise StartError(f"runc: {e}") from None
        finally:
            if console is not None:
                console.close()
                for p in (cdir + "/c.sock", cdir):
                    try:
                        os.unlink(p) if p.endswith(".sock") else os.rmdir(p)
                    except OSError:
                        pass
        if os.waitstatus_to_exitcode(status) != 0:
            msg = runc_error(RUNC_LOG) or f"runc run failed with status {os.waitstatus_to_exitcode(status)}"
            raise StartError(msg)
        if spec.get("tty") and self.master is None:
            raise StartError("runc did not send the console")
        try:
            with open(PID_FILE) as f:
                return int(f.read().strip())
        except (OSError, ValueError) as e:
            raise StartError(f"cannot read runc's pid file: {e}") from None

    def _receive_console(self, console: socket.socket, runc_pid: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        console.settimeout(0.02)
        while time.monotonic() < deadline:
            try:
                conn, _ = console.accept()
            except socket.timeout:
                done, _ = os.waitpid(runc_pid, os.WNOHANG)
                if done:  # runc failed before sending the console; its status is lost: rebuild
                    raise StartError(runc_error(RUNC_LOG) or "runc exited before sending the console")
                continue
            with conn:
                conn.settimeout(5)
                _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
            if not fds:
                raise StartError("runc sent no console fd")
            self.master = fds[0]
            os.set_inheritable(self.master, False)
            self.outputs = {self.master: "stdout"}
            if self.spec.get("stdin"):
                self.stdin_fd = self.master
            return
        raise StartError("timed out waiting for runc's console")

    # -- main loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        sel = self.sel
        sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        sel.register(self.listener, selectors.EVENT_READ, "accept")
        for fd in self.outputs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "out")
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.set_blocking(self.stdin_fd, False)
        self._reap()
        deadline: float | None = None
        while True:
            if self.exit_status is not None:
                if deadline is None:
                    deadline = time.monotonic() + DRAIN_SECONDS
                if not self.outputs or time.monotonic() >= deadline:
                    break
                timeout: float | None = max(0.0, deadline - time.monotonic())
            else:
                timeout = None
            for key, ev in sel.select(timeout):
                what = key.data
                if what == "wake":
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()
                elif what == "accept":
                    self._accept()
                elif what == "out":
                    if ev & selectors.EVENT_READ:
                        self._read_output(key.fd)
                    if ev & selectors.EVENT_WRITE and key.fd == self.stdin_fd:
                        self._flush_stdin()
                elif what == "stdin":
                    self._flush_stdin()
                elif isinstance(what, Client):
                    if ev & selectors.EVENT_READ:
                        self._client_read(what)
                    if ev & selectors.EVENT_WRITE and what.sock.fileno() >= 0:
                        self._client_flush(what)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and self.exit_status is None:
                self.exit_status = status
                self.finished_at = time.time()
                if self.spec["mode"] == "process":   # no pid namespace: end the rest of the group
                    try:
                        os.killpg(self.pid, signal.SIGKILL)
                    except OSError:
                        pass

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty's other side is closed
            data = b""
        if not data:
            self.sel.unregister(fd)
            self.outputs.pop(fd)
            if fd != self.master:
                os.close(fd)
            return
        stream = self.outputs[fd]
        assert self.log is not None
        self.log.write(stream, data)
        kind = F_STDOUT if stream == "stdout" else F_STDERR
        msg = frame(kind, data)
        for c in list(self.clients.values()):
            if c.output:
                self._send(c, msg)

    # -- clients ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                print(f"shim: accept: {e}", file=sys.stderr)
                return
            sock.setblocking(False)
            c = Client(sock)
            self.clients[sock.fileno()] = c
            self.sel.register(sock, selectors.EVENT_READ, c)

    def _events(self, c: Client) -> None:
        ev = 0 if c.paused else selectors.EVENT_READ
        if c.outbuf:
            ev |= selectors.EVENT_WRITE
        registered = c.sock in self.sel.get_map()
        if ev and registered:
            self.sel.modify(c.sock, ev, c)
        elif ev:
            self.sel.register(c.sock, ev, c)
        elif registered:
            self.sel.unregister(c.sock)

    def _send(self, c: Client, data: bytes) -> None:
        if len(c.outbuf) + len(data) > CLIENT_BACKLOG:
            self._drop(c)
            return
        had = bool(c.outbuf)
        c.outbuf += data
        if not had:
            self._client_flush(c)

    def _client_flush(self, c: Client) -> None:
        try:
            while c.outbuf:
                n = c.sock.send(c.outbuf)
                del c.outbuf[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(c)
            return
        self._events(c)

    def _client_read(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(c)
            return
        c.inbuf += data
        while len(c.inbuf) >= HEADER.size:
            kind, n = HEADER.unpack_from(c.inbuf)
            if n > MAX_FRAME:
                self._drop(c)
                return
            if len(c.inbuf) < HEADER.size + n:
                break
            payload = bytes(c.inbuf[HEADER.size:HEADER.size + n])
            del c.inbuf[:HEADER.size + n]
            self._client_frame(c, kind, payload)
            if c.sock.fileno() < 0:
                return

    def _client_frame(self, c: Client, kind: bytes, payload: bytes) -> None:
        if kind == F_HELLO:
            h = parse_hello(payload)
            c.hello, c.output = True, h["output"]
            if h["stdin"] and self.stdin_fd is not None and not self.stdin_closed:
                if self.spec.get("stdin_once"):
                    if self.stdin_owner is None:
                        self.stdin_owner = c
                        c.stdin = True
                else:
                    c.stdin = True
        elif kind == F_STDIN and c.stdin and not self.stdin_closed:
            self.stdin_buf += payload
            self._flush_stdin()
        elif kind == F_CLOSE and c.stdin:
            c.stdin = False
            if c is self.stdin_owner:
                self._close_stdin()
        elif kind == F_RESIZE and self.master is not None and len(payload) == RESIZE.size:
            cols, rows = RESIZE.unpack(payload)
            try:
                fcntl.ioctl(self.master, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            except OSError as e:
                print(f"shim: resize: {e}", file=sys.stderr)

    def _drop(self, c: Client) -> None:
        fd = c.sock.fileno()
        if fd >= 0:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            self.clients.pop(fd, None)
            c.sock.close()
        if c is self.stdin_owner:
            self._close_stdin()

    # -- container stdin -------------------------------------------------------------------------
    def _flush_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            self.stdin_buf.clear()
            return
        try:
            while self.stdin_buf:
                n = os.write(fd, self.stdin_buf)
                del self.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:  # the container closed its stdin or exited
            self.stdin_buf.clear()
            self._close_stdin()
            return
        self._want_stdin_writable(fd, bool(self.stdin_buf))
        self._pause_clients(len(self.stdin_buf) > STDIN_HIGH)
        if not self.stdin_buf and self.stdin_closed and fd != self.master:
            self._really_close_stdin()

    def _want_stdin_writable(self, fd: int, want: bool) -> None:
        registered = fd in self.sel.get_map()
        if fd == self.master:          # also our output: add or drop write interest
            if fd in self.outputs:
                self.sel.modify(fd, selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0), "out")
            elif want:                 # the terminal is gone: nobody will read this input
                self.stdin_buf.clear()
        elif want and not registered:
            self.sel.register(fd, selectors.EVENT_WRITE, "stdin")
        elif not want and registered:
            self.sel.unregister(fd)

    def _pause_clients(self, pause: bool) -> None:
        for c in self.clients.values():
            if c.stdin and c.paused != pause:
                c.paused = pause
                self._events(c)

    def _close_stdin(self) -> None:
        if self.stdin_closed or self.stdin_fd is None:
            return
        self.stdin_closed = True
        if self.stdin_fd == self.master:   # a tty has no half-close: send end-of-file (^D)
            try:
                os.write(self.master, b"\x04")
            except OSError:
                pass
        elif not self.stdin_buf:
            self._really_close_stdin()

    def _really_close_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None or fd == self.master:
            return
        if fd in self.sel.get_map():
            self.sel.unregister(fd)
        os.close(fd)
        self.stdin_fd = None

    # -- exit ------------------------------------------------------------------------------------
    def _finish(self) -> None:
        assert self.exit_status is not None and self.log is not None
        for fd in list(self.outputs):
            self.sel.unregister(fd)
            if fd != self.master:
                os.close(fd)
        self.outputs.clear()
        self.log.close()
        status = self.exit_status
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = 128 + sig if sig else os.WEXITSTATUS(status)
        result = {"exit_code": code, "signal": sig, "finished_at": self.finished_at,
                  "oom_killed": self._oom_killed(), "reason": "", "message": ""}
        text = to_json(result)
        write_atomic(EXIT_FILE, text + "\n")
        self._close_listener()
        msg = frame(F_EXIT, text.encode())
        deadline = time.monotonic() + 1.0
        for c in list(self.clients.values()):
            c.outbuf += msg
            c.sock.setblocking(True)
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                c.sock.sendall(c.outbuf)
            except OSError:
                pass
            c.sock.close()
        self.clients.clear()

    def _oom_killed(self) -> bool:
        path = self.spec.get("memory_cgroup")
        if not path:
            return False
        try:
            with open(os.path.join(path, "memory.oom_control")) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == "oom_kill" and int(v) > 0:
                        return True
        except (OSError, ValueError):
            pass
        return False

    def _close_listener(self) -> None:
        try:
            self.listener.close()
            os.unlink(os.path.join(self.cdir, SOCKET_FILE))
        except OSError:
            pass


def exec_in_new_session(args: list[str]) -> None:
    """``--exec EXECUTABLE ARGV0 ARGS...``: become a session leader with stdin as the controlling
    terminal, then exec (the process runtime's ``exec`` with a tty)."""
    exe, argv = args[0], args[1:]
    os.setsid()
    try:
        fcntl.ioctl(0, TIOCSCTTY, 0)
    except OSError as e:
        print(f"shim: no controlling terminal: {e}", file=sys.stderr)
    try:
        os.execv(exe, argv)
    except OSError as e:
        print(f"exec {argv[0]}: {e.strerror}", file=sys.stderr)
        os._exit(127)


def _become_shim(cdir: str, conn: socket.socket, listener: socket.socket, sel_fd: int) -> None:
    """In the fork server's child: fork the shim for ``cdir`` (reporting on ``conn``) and exit."""
    try:
        listener.close()
        os.close(sel_fd)   # closes our copy only; the server's epoll set is unchanged
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        err = os.open(os.path.join(cdir, SHIM_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(err, 1)
        os.dup2(err, 2)
        os.close(null)
        os.close(err)
        ready_fd = os.dup(conn.fileno())
        conn.close()
        with open(os.path.join(cdir, SPEC_FILE), "rb") as f:
            spec = marshal.load(f)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        shim = Shim(cdir, spec, ready_fd)
    except BaseException as e:  # noqa: BLE001 - the child must never return into the server loop
        try:
            conn.sendall(f"error shim set-up failed: {e}\n".encode(errors="replace"))
        except OSError:
            pass
        os._exit(1)
    try:
        shim.run()
    except Exception as e:
        import traceback
        traceback.print_exc()
        shim._ready(f"error shim failed: {e}")
        os._exit(1)
    os._exit(0)


def serve(sock_path: str) -> None:
    """The fork server (see the module docstring); returns when stdin reaches end of file."""
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(128)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(0, selectors.EVENT_READ, "stdin")
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "stdin":
                    if not os.read(0, 4096):
                        return
                    continue
                try:
                    conn, _addr = listener.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        line = b""
                        while not line.endswith(b"\n") and len(line) < 4096:
                            chunk = conn.recv(4096 - len(line))
                            if not chunk:
                                break
                            line += chunk
                    except OSError:
                        continue
                    cdir = line.decode(errors="replace").strip()
                    if not cdir.startswith("/") or not os.path.isdir(cdir):
                        try:
                            conn.sendall(f"error no container directory {cdir!r}\n".encode())
                        except OSError:
                            pass
                        continue
                    pid = os.fork()
                    if pid == 0:
                        _become_shim(cdir, conn, listener, sel.fileno())
                    os.waitpid(pid, 0)
    finally:
        listener.close()
        try:
            os.unlink(sock_path)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--exec"] and len(args) >= 3:
        exec_in_new_session(args[1:])
        return
    if args[:1] == ["--server"] and len(args) == 2:
        serve(args[1])
        return
    ready_fd = None
    if "--ready-fd" in args:
        i = args.index("--ready-fd")
        ready_fd = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print("usage: python -m kybernetes.kubelet.runtime.shim CONTAINER_DIR [--ready-fd N]",
              file=sys.stderr)
        sys.exit(2)
    if ready_fd is None:     # readiness goes to our stdout; stray output from then on to stderr
        ready_fd = os.dup(1)
        os.dup2(2, 1)
    cdir = os.path.abspath(args[0])
    with open(os.path.join(cdir, SPEC_FILE), "rb") as f:
        spec = marshal.load(f)
    if os.fork() > 0:        # the launcher exits; the shim is re-parented and outlives the kubelet
        os._exit(0)
    os.setsid()
    shim = Shim(cdir, spec, ready_fd)
    try:
        shim.run()
    except Exception as e:   # last resort: tell the runtime rather than leave it waiting
        import traceback
        traceback.print_exc()
        shim._ready(f"error shim failed: {e}")
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
