"""CRI log files: parsing, options, tail/since/timestamps/limit across rotation, follow."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kybernetes.kubelet import logs
from kybernetes.kubelet.logs import LogOptions, LogOptionsError
from tests.harness import wait_for

from .localruntime import cri_line

T0 = "2025-01-01T10:00:00.000000001Z"


def ts(i: int) -> str:
    return f"2025-01-01T10:00:{i:02d}.123456789Z"


@pytest.mark.parametrize("text,ns", [
    pytest.param("1970-01-01T00:00:00Z", 0, id="epoch"),
    pytest.param("2025-01-01T10:00:00.000000001Z", 1735725600_000_000_001, id="nanos"),
    pytest.param("2025-01-01T12:00:00.5+02:00", 1735725600_500_000_000, id="offset"),
    pytest.param("2025-01-01T05:30:00-04:30", 1735725600_000_000_000, id="negative-offset"),
])
def test_parse_rfc3339(text: str, ns: int) -> None:
    assert logs.parse_rfc3339_ns(text) == ns


def test_format_rfc3339_has_nine_digits_and_z() -> None:
    assert logs.format_rfc3339_ns(1735725600_000_000_001) == "2025-01-01T10:00:00.000000001Z"
    assert logs.format_rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"
    with pytest.raises(ValueError):
        logs.parse_rfc3339_ns("yesterday")


@pytest.mark.parametrize("line,expect", [
    pytest.param(b"2025-01-01T10:00:00Z stdout F hello world", ("stdout", False, b"hello world"), id="full"),
    pytest.param(b"2025-01-01T10:00:00Z stderr P part", ("stderr", True, b"part"), id="partial"),
    pytest.param(b"2025-01-01T10:00:00Z stdout F ", ("stdout", False, b""), id="empty"),
    pytest.param(b"2025-01-01T10:00:00Z stdout F", ("stdout", False, b""), id="empty-no-space"),
    pytest.param(b"2025-01-01T10:00:00Z stdout F  two  spaces ", ("stdout", False, b" two  spaces "), id="spaces-kept"),
])
def test_parse_cri_line(line: bytes, expect: tuple[str, bool, bytes]) -> None:
    rec = logs.parse_cri_line(line)
    assert rec is not None and (rec.stream, rec.partial, rec.content) == expect


@pytest.mark.parametrize("line", [b"", b"garbage", b"2025 stdout F x", b"2025-01-01T10:00:00Z stdlog F x",
                                  b"2025-01-01T10:00:00Z stdout X x"])
def test_parse_cri_line_rejects(line: bytes) -> None:
    assert logs.parse_cri_line(line) is None


def test_parse_log_options() -> None:
    o = logs.parse_log_options({"follow": "true", "tailLines": "2", "timestamps": "1", "sinceSeconds": "10",
                                "limitBytes": "100"}, now=1000.0)
    assert o == LogOptions(follow=True, tail_lines=2, timestamps=True, since_ns=990 * 10**9, limit_bytes=100)
    assert logs.parse_log_options({"sinceTime": "1970-01-01T00:00:05Z"}, now=0).since_ns == 5 * 10**9
    prev = logs.parse_log_options({"previous": "true", "follow": "true"}, now=0)
    assert prev.previous and not prev.follow


@pytest.mark.parametrize("query,msg", [
    pytest.param({"tailLines": "-1"}, "tailLines", id="tail"),
    pytest.param({"limitBytes": "0"}, "limitBytes", id="limit"),
    pytest.param({"sinceSeconds": "0"}, "sinceSeconds", id="since"),
    pytest.param({"sinceSeconds": "1", "sinceTime": "2025-01-01T00:00:00Z"}, "at most one", id="both-since"),
    pytest.param({"sinceTime": "soon"}, "sinceTime", id="bad-time"),
    pytest.param({"tailLines": "x"}, "integer", id="not-int"),
])
def test_parse_log_options_rejects(query: dict[str, str], msg: str) -> None:
    with pytest.raises(LogOptionsError, match=msg):
        logs.parse_log_options(query, now=0)


# ------------------------------------------------------------------------------ reading files


async def collect(path: Path, opts: LogOptions, running: bool = False) -> bytes:
    async def is_running() -> bool:
        return running

    out = b""
    async for chunk in logs.stream_logs(str(path), opts, is_running=is_running):
        out += chunk
    return out


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    """0.log with lines 0..9 spread over .2 (oldest), .1 and the current file."""
    p = tmp_path / "0.log"
    (tmp_path / "0.log.2").write_text("".join(cri_line(ts(i), f"line{i}") for i in range(0, 3)))
    (tmp_path / "0.log.1").write_text("".join(cri_line(ts(i), f"line{i}") for i in range(3, 6)))
    p.write_text("".join(cri_line(ts(i), f"line{i}", "stderr" if i % 2 else "stdout") for i in range(6, 10)))
    return p


async def test_all_files_in_order(rotated: Path) -> None:
    out = await collect(rotated, LogOptions())
    assert out.decode().splitlines() == [f"line{i}" for i in range(10)]


@pytest.mark.parametrize("n,first", [(1, 9), (4, 6), (5, 5), (7, 3), (8, 2), (10, 0), (50, 0)])
async def test_tail_across_rotated_files(rotated: Path, n: int, first: int) -> None:
    out = await collect(rotated, LogOptions(tail_lines=n))
    assert out.decode().splitlines() == [f"line{i}" for i in range(first, 10)]


async def test_tail_zero_is_nothing(rotated: Path) -> None:
    assert await collect(rotated, LogOptions(tail_lines=0)) == b""


async def test_timestamps_since_and_limit(rotated: Path) -> None:
    out = await collect(rotated, LogOptions(timestamps=True, tail_lines=1))
    assert out == f"{ts(9)} line9\n".encode()
    since = logs.parse_rfc3339_ns(ts(7))
    assert (await collect(rotated, LogOptions(since_ns=since))).decode().splitlines() == ["line7", "line8", "line9"]
    assert await collect(rotated, LogOptions(limit_bytes=8)) == b"line0\nli"


async def test_partial_records_are_joined_and_garbage_skipped(tmp_path: Path) -> None:
    p = tmp_path / "1.log"
    p.write_text(cri_line(T0, "hel", partial=True) + cri_line(T0, "lo") + "not a cri line\n"
                 + cri_line(T0, "") + cri_line(T0, "tail-without-newline").rstrip("\n"))
    # the incomplete last line is still being written: not shown until its newline arrives
    assert await collect(p, LogOptions()) == b"hello\n\n"


async def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert await collect(tmp_path / "nope.log", LogOptions()) == b""


async def test_big_file_in_many_batches(tmp_path: Path) -> None:
    p = tmp_path / "0.log"
    p.write_text("".join(cri_line(T0, f"{i:06d}" + "x" * 100) for i in range(5000)))
    out = (await collect(p, LogOptions())).decode().splitlines()
    assert len(out) == 5000 and out[-1].startswith("004999")
    assert (await collect(p, LogOptions(tail_lines=3))).decode().splitlines()[0].startswith("004997")


async def test_follow_survives_rotation_and_stops_when_the_container_exits(tmp_path: Path) -> None:
    p = tmp_path / "0.log"
    p.write_text(cri_line(ts(0), "before"))
    running = True

    async def is_running() -> bool:
        return running

    got: list[bytes] = []

    async def reader() -> None:
        async for chunk in logs.stream_logs(str(p), LogOptions(follow=True, tail_lines=1), is_running=is_running,
                                            poll_interval=0.02):
            got.append(chunk)

    task = asyncio.ensure_future(reader())
    try:
        await wait_for(lambda: b"".join(got) == b"before\n", timeout=5, what="initial line")
        with p.open("a") as f:
            f.write(cri_line(ts(1), "one"))
            f.write(cri_line(ts(2), "two", partial=True))
        await wait_for(lambda: b"".join(got).endswith(b"one\ntwo"), timeout=5, what="appended lines")
        # rotate: the writer finishes the old file, renames it, then writes a new one
        with p.open("a") as f:
            f.write(cri_line(ts(3), "-end-of-old"))
        os.rename(p, tmp_path / "0.log.1")
        p.write_text(cri_line(ts(4), "new-file"))
        await wait_for(lambda: b"".join(got).endswith(b"new-file\n"), timeout=5, what="line after rotation")
        with p.open("a") as f:
            f.write(cri_line(ts(5), "last words"))
        running = False
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    assert b"".join(got) == b"before\none\ntwo-end-of-old\nnew-file\nlast words\n"


async def test_follow_waits_for_the_file_and_handles_truncation(tmp_path: Path) -> None:
    p = tmp_path / "0.log"
    running = True

    async def is_running() -> bool:
        return running

    got: list[bytes] = []

    async def reader() -> None:
        async for chunk in logs.stream_logs(str(p), LogOptions(follow=True), is_running=is_running, poll_interval=0.02):
            got.append(chunk)

    task = asyncio.ensure_future(reader())
    try:
        await asyncio.sleep(0.1)
        p.write_text(cri_line(ts(1), "appeared") + cri_line(ts(2), "x" * 50))
        await wait_for(lambda: b"appeared\n" in b"".join(got), timeout=5, what="file appeared")
        await wait_for(lambda: b"".join(got).endswith(b"x" * 50 + b"\n"), timeout=5, what="second line")
        p.write_text(cri_line(ts(3), "after truncate"))
        await wait_for(lambda: b"".join(got).endswith(b"after truncate\n"), timeout=5, what="after truncation")
        running = False
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()


async def test_follow_of_a_stopped_container_returns_at_once(rotated: Path) -> None:
    out = await asyncio.wait_for(collect(rotated, LogOptions(follow=True, tail_lines=2), running=False), 5)
    assert out == b"line8\nline9\n"
