"""The audit log backend: JSON lines from a writer thread, size rotation, queue modes."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import orjson
import pytest

from kybernetes.apiserver.audit.backend import (
    LogBackend,
    LogOptions,
    RotatingFile,
    backup_name,
    backups_to_remove,
)

T0 = 1_700_000_000.0   # 2023-11-14T22:13:20Z


def test_backup_name_is_lumberjack_style() -> None:
    assert backup_name(Path("/var/log/audit.log"), T0 + 0.123).name == "audit-2023-11-14T22-13-20.123.log"
    assert backup_name(Path("/var/log/audit"), T0).name == "audit-2023-11-14T22-13-20.000"


@pytest.mark.parametrize("max_backups,max_age_days,expected", [
    pytest.param(0, 0, [], id="keep-all"),
    pytest.param(2, 0, ["audit-2023-11-12T22-13-20.000.log"], id="count"),
    pytest.param(0, 1.5, ["audit-2023-11-12T22-13-20.000.log"], id="age"),
    pytest.param(1, 0, ["audit-2023-11-13T22-13-20.000.log", "audit-2023-11-12T22-13-20.000.log"], id="one"),
])
def test_backups_to_remove(max_backups: int, max_age_days: float, expected: list[str]) -> None:
    names = ["audit.log", "other.txt", "audit-2023-11-12T22-13-20.000.log",
             "audit-2023-11-14T22-13-20.000.log", "audit-2023-11-13T22-13-20.000.log"]
    got = backups_to_remove(names, Path("/x/audit.log"), max_backups=max_backups, max_age_days=max_age_days,
                            now=T0 + 60)
    assert got == expected


def test_rotating_file_rotates_by_size_and_prunes(tmp_path: Path) -> None:
    clock = iter(T0 + i for i in range(100))
    f = RotatingFile(str(tmp_path / "audit.log"), max_bytes=100, max_backups=2, clock=lambda: next(clock))
    line = b"x" * 39 + b"\n"  # 40 bytes: two fit, the third rotates
    for _ in range(9):
        f.write(line)
    f.flush()
    f.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "audit.log" in files
    backups = [n for n in files if n != "audit.log"]
    assert len(backups) == 2 and f.rotations == 4  # 9 lines → 5 files, pruned to 2 backups
    for name in files:
        data = (tmp_path / name).read_bytes()
        assert len(data) <= 100 and data.count(b"\n") in (1, 2)
    assert stat.S_IMODE(os.stat(tmp_path / "audit.log").st_mode) == 0o600


async def test_backend_writes_json_lines_and_flushes_on_close(tmp_path: Path) -> None:
    b = LogBackend(LogOptions(str(tmp_path / "sub" / "audit.log")))
    await b.start()
    for i in range(50):
        await b.emit({"kind": "Event", "i": i})
    await b.close()
    lines = (tmp_path / "sub" / "audit.log").read_bytes().splitlines()
    assert [orjson.loads(x)["i"] for x in lines] == list(range(50))
    assert b.statistics()["written"] == 50 and b.statistics()["dropped"] == 0


async def test_backend_rotates_by_megabytes(tmp_path: Path) -> None:
    b = LogBackend(LogOptions(str(tmp_path / "audit.log"), max_size_mb=1, max_backups=1))
    await b.start()
    pad = "p" * 1000
    for i in range(2500):  # ~2.5 MB
        await b.emit({"i": i, "pad": pad})
    await b.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and "audit.log" in names, names
    assert all((tmp_path / n).stat().st_size <= 1024 * 1024 for n in names)
    last = orjson.loads((tmp_path / "audit.log").read_bytes().splitlines()[-1])
    assert last["i"] == 2499
    assert b.statistics()["rotations"] >= 2


async def test_batch_mode_drops_and_counts_when_full(tmp_path: Path) -> None:
    b = LogBackend(LogOptions(str(tmp_path / "audit.log"), mode="batch", queue_size=3))
    # writer not started: nothing drains the queue
    for i in range(5):
        await b.emit({"i": i})
    assert b.statistics()["dropped"] == 2 and b.statistics()["queued"] == 3


async def test_blocking_mode_waits_for_room(tmp_path: Path) -> None:
    b = LogBackend(LogOptions(str(tmp_path / "audit.log"), queue_size=2))
    await b.start()
    try:
        await asyncio.gather(*(b.emit({"i": i}) for i in range(200)))
    finally:
        await b.close()
    assert b.statistics()["dropped"] == 0
    assert len((tmp_path / "audit.log").read_bytes().splitlines()) == 200


async def test_unwritable_path_fails_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    b = LogBackend(LogOptions(str(blocker / "audit.log")))
    with pytest.raises(OSError):
        await b.start()
