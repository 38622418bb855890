"""Container logs: CRI-format log files read the way ``kubectl logs`` expects them.

A container's log is its current file ``<attempt>.log`` plus the rotated ones ``<attempt>.log.1``
(newest) ... ``.5`` (oldest), all in the CRI format, one record per line::

    2025-01-01T10:00:00.123456789Z stdout F hello world
    <RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>      (P = partial: no newline follows)

``stream_logs(path, opts, is_running=...)`` yields the bytes to send: each record's content (plus
"\\n" for full records), prefixed with ``<RFC3339Nano UTC> `` when ``timestamps``; ``tail_lines``
counts records from the end across all files; records older than ``since_ns`` are skipped;
output stops after ``limit_bytes``. With ``follow`` it keeps reading the current file, survives
rotation (the open descriptor is drained, then the new file is opened) and truncation, and stops
once the container is no longer running and the file is drained. ``previous`` is the locator's
business (it picks the previous attempt's file); it only disables following.

All file access runs in worker threads (``asyncio.to_thread``); the parsing helpers are pure.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

READ_SIZE = 256 * 1024
BATCH = 64 * 1024
BACK_BLOCK = 64 * 1024
POLL_INTERVAL = 0.25
MAX_ROTATED = 9

_TS = re.compile(rb"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$")


class LogOptionsError(ValueError):
    """Invalid pods/log query parameters (reported as 400 BadRequest)."""


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None      # None = everything; 0 = nothing
    since_ns: int | None = None        # unix nanoseconds; older records are skipped
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True)
class CriRecord:
    ts_ns: int
    stream: str
    partial: bool
    content: bytes


# ---------------------------------------------------------------------------- pure helpers


def parse_rfc3339_ns(text: str | bytes) -> int:
    """Unix nanoseconds of an RFC 3339 timestamp (fractions up to nanoseconds, any offset)."""
    raw = text.encode() if isinstance(text, str) else text
    m = _TS.match(raw.strip())
    if m is None:
        raise ValueError(f"invalid RFC 3339 timestamp {raw!r}")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or b""
    nanos = int(frac.ljust(9, b"0")) if frac else 0
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    off = m.group(8)
    if off not in (b"Z", b"z"):
        sign = 1 if off[:1] == b"+" else -1
        secs -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return secs * 1_000_000_000 + nanos


def format_rfc3339_ns(ns: int) -> str:
    """``2025-01-01T10:00:00.123456789Z`` (UTC, always nine fraction digits)."""
    secs, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def parse_cri_line(line: bytes) -> CriRecord | None:
    """One CRI log record, or None when the line is not in the CRI format."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = parse_rfc3339_ns(parts[0])
    except ValueError:
        return None
    stream = parts[1].decode("ascii", "replace")
    if stream not in ("stdout", "stderr"):
        return None
    tag = parts[2].split(b":", 1)[0]
    if tag not in (b"P", b"F"):
        return None
    content = parts[3] if len(parts) > 3 else b""
    return CriRecord(ts, stream, tag == b"P", content)


def render(rec: CriRecord, timestamps: bool) -> bytes:
    body = rec.content if rec.partial else rec.content + b"\n"
    if timestamps:
        return format_rfc3339_ns(rec.ts_ns).encode() + b" " + body
    return body


def _flag(q: Mapping[str, str], name: str) -> bool:
    return (q.get(name) or "").strip().lower() in ("1", "true", "yes", "t", "y")


def _int(q: Mapping[str, str], name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise LogOptionsError(f"{name}: Invalid value: {v!r}: must be an integer") from None


def parse_log_options(query: Mapping[str, str], *, now: float) -> LogOptions:
    """LogOptions from pods/log query parameters; ``now`` (unix seconds) resolves sinceSeconds."""
    tail = _int(query, "tailLines")
    limit = _int(query, "limitBytes")
    since_s = _int(query, "sinceSeconds")
    since_t = query.get("sinceTime") or None
    if tail is not None and tail < 0:
        raise LogOptionsError(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
    if limit is not None and limit < 1:
        raise LogOptionsError(f"limitBytes: Invalid value: {limit}: must be greater than 0")
    if since_s is not None and since_s < 1:
        raise LogOptionsError(f"sinceSeconds: Invalid value: {since_s}: must be greater than 0")
    if since_s is not None and since_t is not None:
        raise LogOptionsError("at most one of `sinceTime` or `sinceSeconds` may be specified")
    since_ns: int | None = None
    if since_s is not None:
        since_ns = int((now - since_s) * 1_000_000_000)
    elif since_t is not None:
        try:
            since_ns = parse_rfc3339_ns(since_t)
        except ValueError:
            raise LogOptionsError(f"sinceTime: Invalid value: {since_t!r}: must be an RFC3339 timestamp") from None
    previous = _flag(query, "previous")
    return LogOptions(follow=_flag(query, "follow") and not previous, previous=previous, tail_lines=tail,
                      since_ns=since_ns, timestamps=_flag(query, "timestamps"), limit_bytes=limit)


def log_files(path: str) -> list[str]:
    """The existing rotated files of ``path``, oldest first (``.5`` ... ``.1``)."""
    out = [f"{path}.{i}" for i in range(MAX_ROTATED, 0, -1)]
    return [p for p in out if os.path.isfile(p)]


# ---------------------------------------------------------------------------- file reading


def _complete_end(fd: int, size: int) -> int:
    """Offset just after the last newline below ``size`` (0 if there is none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - BACK_BLOCK)
        block = os.pread(fd, pos - start, start)
        i = block.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _tail_in_file(fd: int, end: int, n: int) -> tuple[int | None, int]:
    """Start offset of the last ``n`` lines in ``[0, end)``; (None, lines) if the file has fewer."""
    if end <= 0:
        return None, 0
    scan_end = end - 1 if os.pread(fd, 1, end - 1) == b"\n" else end
    count = 0
    pos = scan_end
    while pos > 0:
        start = max(0, pos - BACK_BLOCK)
        block = os.pread(fd, pos - start, start)
        i = len(block)
        while True:
            i = block.rfind(b"\n", 0, i)
            if i < 0:
                break
            count += 1
            if count == n:
                return start + i + 1, count
        pos = start
    return None, count + 1


class _LogReader:
    """Blocking reader state; every method is called through ``asyncio.to_thread``."""

    def __init__(self, path: str, opts: LogOptions) -> None:
        self.path = path
        self.opts = opts
        self.segments: list[list[int]] = []     # [fd, pos, end] in reading order
        self.seg_index = 0
        self.cur_fd: int | None = None          # the current file, for following
        self.cur_pos = 0
        self.carry = b""                        # an incomplete line
        self.remaining = opts.limit_bytes
        self.done = False                       # the byte limit was reached
        self._fds: list[int] = []

    def _open(self, p: str) -> int | None:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        self._fds.append(fd)
        return fd

    def open(self) -> None:
        for p in log_files(self.path):
            fd = self._open(p)
            if fd is not None:
                self.segments.append([fd, 0, os.fstat(fd).st_size])
        fd = self._open(self.path)
        if fd is not None:
            end = _complete_end(fd, os.fstat(fd).st_size)
            self.segments.append([fd, 0, end])
            self.cur_fd, self.cur_pos = fd, end
        if self.opts.tail_lines is not None:
            self._apply_tail(self.opts.tail_lines)

    def _apply_tail(self, n: int) -> None:
        if n == 0:
            self.seg_index = len(self.segments)
            return
        need = n
        for i in range(len(self.segments) - 1, -1, -1):
            fd, _pos, end = self.segments[i]
            off, lines = _tail_in_file(fd, end, need)
            if off is not None:
                self.segments[i][1] = off
                self.seg_index = i
                return
            need -= lines
            if need <= 0:
                self.seg_index = i
                return
        self.seg_index = 0

    def _emit_line(self, line: bytes, out: list[bytes]) -> None:
        if self.done:
            return
        rec = parse_cri_line(line)
        if rec is None:
            return
        if self.opts.since_ns is not None and rec.ts_ns < self.opts.since_ns:
            return
        chunk = render(rec, self.opts.timestamps)
        if self.remaining is not None:
            if len(chunk) >= self.remaining:
                chunk = chunk[: self.remaining]
                self.done = True
            self.remaining -= len(chunk)
        out.append(chunk)

    def _emit_data(self, data: bytes, out: list[bytes]) -> None:
        lines = (self.carry + data).split(b"\n")
        self.carry = lines.pop()
        for line in lines:
            self._emit_line(line, out)

    def read_batch(self) -> tuple[bytes, bool]:
        """The next output of the existing content; (bytes, finished)."""
        out: list[bytes] = []
        size = 0
        while self.seg_index < len(self.segments) and size < BATCH and not self.done:
            seg = self.segments[self.seg_index]
            fd, pos, end = seg
            if pos >= end:
                if self.carry:   # a rotated file that does not end with a newline
                    line, self.carry = self.carry, b""
                    self._emit_line(line, out)
                self.seg_index += 1
                continue
            data = os.pread(fd, min(READ_SIZE, end - pos), pos)
            if not data:      # truncated under us
                seg[1] = end
                continue
            seg[1] = pos + len(data)
            before = len(out)
            self._emit_data(data, out)
            size += sum(len(c) for c in out[before:])
        finished = self.done or self.seg_index >= len(self.segments)
        return b"".join(out), finished

    def follow_step(self) -> tuple[bytes, bool]:
        """New output of the current file, and whether it was read to its end.

        Handles rotation (drain the old descriptor, open the new file) and truncation.
        """
        out: list[bytes] = []
        if self.cur_fd is None:
            self.cur_fd = self._open(self.path)
            self.cur_pos = 0
            if self.cur_fd is None:
                return b"", True
        if not self._drain(out):
            return b"".join(out), False
        try:
            st_path = os.stat(self.path)
        except FileNotFoundError:
            return b"".join(out), True    # mid-rotation: the new file is not there yet
        st_fd = os.fstat(self.cur_fd)
        if (st_path.st_ino, st_path.st_dev) != (st_fd.st_ino, st_fd.st_dev):
            if not self._drain(out):   # what was written before the rename
                return b"".join(out), False
            if self.carry:
                line, self.carry = self.carry, b""
                self._emit_line(line, out)
            self._close_fd(self.cur_fd)
            self.cur_fd = self._open(self.path)
            self.cur_pos = 0
            return b"".join(out), False   # read the new file on the next step
        if st_fd.st_size < self.cur_pos:   # truncated in place
            self.cur_pos = 0
            self.carry = b""
            return b"".join(out), False
        return b"".join(out), True

    def _drain(self, out: list[bytes]) -> bool:
        """Read the current file onwards (bounded per call); True when its end was reached."""
        assert self.cur_fd is not None
        size = 0
        while not self.done:
            if size >= 4 * READ_SIZE:
                return False
            data = os.pread(self.cur_fd, READ_SIZE, self.cur_pos)
            if not data:
                return True
            self.cur_pos += len(data)
            self._emit_data(data, out)
            size += len(data)
        return True

    def _close_fd(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.remove(fd)
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()


async def stream_logs(path: str, opts: LogOptions, *, is_running: Callable[[], Awaitable[bool]],
                      poll_interval: float = POLL_INTERVAL) -> AsyncIterator[bytes]:
    """Yield the log output of the container whose current log file is ``path`` (see module doc)."""
    r = _LogReader(path, opts)
    try:
        await asyncio.to_thread(r.open)
        while True:
            data, finished = await asyncio.to_thread(r.read_batch)
            if data:
                yield data
            if finished:
                break
        if not opts.follow or opts.previous or r.done:
            return
        while not r.done:
            data, at_end = await asyncio.to_thread(r.follow_step)
            if data:
                yield data
            if not at_end:
                continue
            if not await is_running():
                # the container is gone: drain what it wrote before it exited, then stop
                while not r.done:
                    data, at_end = await asyncio.to_thread(r.follow_step)
                    if data:
                        yield data
                    if at_end:
                        return
                return
            await asyncio.sleep(poll_interval)
    finally:
        r.close()
