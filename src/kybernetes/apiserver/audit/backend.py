"""The audit log backend: JSON lines written by one thread, with size-based rotation.

The event loop never touches the file. ``emit`` serializes an event and puts the line on a
bounded queue; a writer thread drains the queue in batches, writes and flushes. What happens
when the queue is full depends on the mode (``--audit-log-mode``):

* ``blocking`` (the default, as upstream): the request waits (in a worker thread, never on the
  loop) until the writer makes room, for at most ``block_timeout`` seconds; only if the writer is
  stuck that long is the event dropped (counted, logged). A slow disk slows requests instead of
  losing audit events.
* ``batch``: never wait; a full queue drops the event (counted, logged at most once a minute).

Rotation (``RotatingFile``) follows lumberjack, which upstream uses: before a write would make
the file larger than ``max_bytes`` (``--audit-log-maxsize`` MB, default 100), the file is renamed
to ``<name>-<UTC time 2006-01-02T15-04-05.000><ext>`` and a new one started; backups beyond
``max_backups`` (``--audit-log-maxbackup``, 0 = keep all) or older than ``max_age_days``
(``--audit-log-maxage``, 0 = no limit) are removed. Files are created with mode 0600. The path
``-`` writes to standard output (no rotation).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import orjson

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 100
BACKUP_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S.%f"   # trimmed to milliseconds below
_STOP = object()
_WRITE_BATCH = 1000


def backup_name(path: Path, when: float) -> Path:
    """``/var/log/audit.log`` at some time → ``/var/log/audit-2024-05-01T10-00-00.123.log``."""
    stamp = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime(BACKUP_TIME_FORMAT)[:-3]
    return path.with_name(f"{path.stem}-{stamp}{path.suffix}")


def _backup_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(re.escape(path.stem) + r"-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})(?:\.\d+)?"
                      + re.escape(path.suffix) + "$")


def backups_to_remove(names: list[str], path: Path, *, max_backups: int, max_age_days: float,
                      now: float) -> list[str]:
    """Which backup file names to delete (pure): beyond the newest ``max_backups`` or older
    than ``max_age_days`` (0 disables either limit). Files that are not backups are kept."""
    pat = _backup_pattern(path)
    dated: list[tuple[float, str]] = []
    for name in names:
        m = pat.match(name)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=dt.timezone.utc)
        dated.append((t.timestamp(), name))
    dated.sort(reverse=True)
    drop: list[str] = []
    for i, (ts, name) in enumerate(dated):
        if (max_backups > 0 and i >= max_backups) or (max_age_days > 0 and now - ts > max_age_days * 86400):
            drop.append(name)
    return drop


class RotatingFile:
    """An append-only file that rotates by size (used from the writer thread only)."""

    def __init__(self, path: str, *, max_bytes: int, max_backups: int = 0, max_age_days: float = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.clock = clock
        self._f: IO[bytes] | None = None
        self.size = 0
        self.rotations = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._f = os.fdopen(fd, "ab")
        self.size = os.fstat(fd).st_size

    def write(self, line: bytes) -> None:
        if self._f is None:
            self.open()
        if self.max_bytes > 0 and self.size > 0 and self.size + len(line) > self.max_bytes:
            self.rotate()
        assert self._f is not None
        self._f.write(line)
        self.size += len(line)

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def rotate(self) -> None:
        self.close()
        target = backup_name(self.path, self.clock())
        n = 1
        while target.exists():  # two rotations within one millisecond
            target = target.with_name(f"{backup_name(self.path, self.clock()).stem}.{n}{self.path.suffix}")
            n += 1
        os.rename(self.path, target)
        self.rotations += 1
        self.open()
        self.prune()

    def prune(self) -> None:
        if self.max_backups <= 0 and self.max_age_days <= 0:
            return
        names = os.listdir(self.path.parent)
        for name in backups_to_remove(names, self.path, max_backups=self.max_backups,
                                      max_age_days=self.max_age_days, now=self.clock()):
            try:
                os.unlink(self.path.parent / name)
            except OSError as e:
                log.warning("audit: cannot remove old log %s: %s", name, e)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class _Stdout:
    def write(self, line: bytes) -> None:
        sys.stdout.buffer.write(line)

    def flush(self) -> None:
        sys.stdout.buffer.flush()

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.flush()


@dataclass(frozen=True)
class LogOptions:
    path: str                        # file, or "-" for standard output
    max_size_mb: int = 0             # 0: lumberjack's default, 100 MB
    max_backups: int = 0             # 0: keep every backup
    max_age_days: float = 0          # 0: no age limit
    mode: str = "blocking"           # blocking | batch
    queue_size: int = 10000
    block_timeout: float = 10.0      # blocking mode: longest wait for room in the queue


class LogBackend:
    """Writes audit events as JSON lines from a dedicated thread (see the module docstring)."""

    def __init__(self, opts: LogOptions, *, clock: Callable[[], float] = time.time) -> None:
        if opts.mode not in ("blocking", "batch"):
            raise ValueError(f"audit log mode {opts.mode!r}: want blocking or batch")
        self.opts = opts
        self._out: Any = _Stdout() if opts.path == "-" else RotatingFile(
            opts.path, max_bytes=(opts.max_size_mb or DEFAULT_MAX_SIZE_MB) * MB,
            max_backups=opts.max_backups, max_age_days=opts.max_age_days, clock=clock)
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max(1, opts.queue_size))
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self._last_drop_log = 0.0

    async def start(self) -> None:
        """Open the file (off the loop; an unusable path fails here) and start the writer."""
        await asyncio.to_thread(self._out.open)
        self._thread = threading.Thread(target=self._run, name="audit-log-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Write everything queued, then stop the writer and close the file."""
        if self._thread is None:
            return
        await asyncio.to_thread(self._q.put, _STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def statistics(self) -> dict[str, int]:
        rotations = getattr(self._out, "rotations", 0)
        return {"written": self.written, "dropped": self.dropped, "queued": self._q.qsize(),
                "write_errors": self.write_errors, "rotations": rotations}

    async def emit(self, event: dict[str, Any]) -> None:
        line = orjson.dumps(event) + b"\n"
        try:
            self._q.put_nowait(line)
            return
        except queue.Full:
            pass
        if self.opts.mode == "blocking" and self._thread is not None:
            try:
                await asyncio.to_thread(self._q.put, line, True, self.opts.block_timeout)
                return
            except queue.Full:
                pass
        self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log > 60:
            self._last_drop_log = now
            log.error("audit: the log queue is full; dropped %d events so far", self.dropped)

    # -- writer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._q.get()]
            while len(batch) < _WRITE_BATCH:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                for line in batch:
                    if line is _STOP:
                        stop = True
                        continue
                    self._out.write(line)
                    self.written += 1
                self._out.flush()
            except OSError as e:
                self.write_errors += 1
                log.error("audit: writing %s failed: %s", self.opts.path, e)
        try:
            self._out.close()
        except OSError as e:
            log.error("audit: closing %s failed: %s", self.opts.path, e)
