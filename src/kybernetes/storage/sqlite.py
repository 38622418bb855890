"""SQLite backend: a kine-style revision log in one table, written by one thread.

Layout (cf. kine's ``kine`` table): every write appends a row whose ``id`` is the global
revision. The row with the highest id per ``name`` is the key's current state; a delete appends a
tombstone (``deleted=1``, ``value`` = the last value); ``create_revision`` is carried forward;
``prev_revision`` points at the row replaced and ``old_value`` copies its value so watchers get the
previous value. The compacted revision lives in the small ``meta`` table.

Threads:

* one writer thread owns the only writing connection. Writes queued while it commits are applied
  together in one transaction (group commit) and made durable by one fsync (WAL,
  ``synchronous=FULL``). Each op checks its own precondition inside the transaction, so a failing
  op fails only itself. After COMMIT the writer hands results and events to the event loop with
  ``call_soon_threadsafe``;
* reads run in a small thread pool, each thread with its own connection (WAL readers never block
  the writer). Every read is one read transaction, i.e. one consistent snapshot. Point reads of
  the current state (``get`` at revision 0, the current and compacted revisions) are a single
  indexed SELECT of microseconds: they run on the event loop's own connection instead, which is
  cheaper than the hop to a pool thread and back; if that connection is ever busy (SQLite returns
  SQLITE_BUSY rather than waiting there) the read falls back to the pool.

Watchers subscribe on the loop thread, then replay history from the table, then continue with
live events, skipping revisions already sent. Each subscriber buffers at most ``watch_buffer``
events; a subscriber that falls further behind is dropped with WatchLaggedError.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Literal, TypeVar

from .errors import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
    StoreError,
    WatchLaggedError,
)
from .interface import Event, KeyValue, ListResult

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision ON kine (name, prev_revision);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

_ROW = "id, name, created, deleted, create_revision, prev_revision, value, old_value"
_LATEST = "SELECT id, deleted, create_revision, value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1"
_INSERT = (
    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value, old_value)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_CURRENT = "SELECT seq FROM sqlite_sequence WHERE name = 'kine'"
_COMPACTED = "SELECT v FROM meta WHERE k = 'compacted'"
MAX_BATCH = 512          # ops per group-commit transaction
HISTORY_PAGE = 500       # rows per history read when a watch replays


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound)."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


def _range_sql(prefix: str, start_after: str | None) -> tuple[str, list[Any]]:
    """A WHERE fragment selecting names that start with ``prefix`` (and sort after start_after)."""
    clauses: list[str] = []
    args: list[Any] = []
    if start_after is not None and start_after >= prefix:
        clauses.append("name > ?")
        args.append(start_after)
    else:
        clauses.append("name >= ?")
        args.append(prefix)
    end = prefix_end(prefix)
    if end is not None:
        clauses.append("name < ?")
        args.append(end)
    return " AND ".join(clauses), args


def row_event(row: tuple[Any, ...]) -> Event:
    """Turn one log row into the watch event it represents (pure)."""
    rid, name, created, deleted, crev, prev, value, old = row
    if deleted:
        return Event("DELETE", KeyValue(name, value, rid, crev), KeyValue(name, value, prev, crev))
    kv = KeyValue(name, value, rid, crev)
    if created or old is None:
        return Event("PUT", kv, None)
    return Event("PUT", kv, KeyValue(name, old, prev, crev))


@dataclass(slots=True)
class _Op:
    kind: Literal["create", "update", "delete", "compact", "stop"]
    key: str = ""
    value: bytes = b""
    expected: int = 0               # update/delete: expected mod revision; compact: target
    future: asyncio.Future[Any] | None = None


@dataclass(slots=True)
class _Outcome:
    op: _Op
    result: Any = None              # KeyValue (writes) or None (compact)
    error: BaseException | None = None
    event: Event | None = None
    revision: int = 0               # store revision after this op


# -- watch fan-out (loop thread only) ----------------------------------------------------------
@dataclass(eq=False)
class _Subscriber:
    prefix: str
    limit: int
    pending: collections.deque[list[Event]] = field(default_factory=collections.deque)
    size: int = 0
    lagged: bool = False
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, events: list[Event]) -> bool:
        """Queue matching events; False when this subscriber overflowed and must be dropped."""
        batch = [e for e in events if e.kv.key.startswith(self.prefix)]
        if not batch:
            return True
        if self.size + len(batch) > self.limit:
            self.lagged = True
            self.pending.clear()
            self.wake.set()
            return False
        self.pending.append(batch)
        self.size += len(batch)
        self.wake.set()
        return True

    async def next(self) -> list[Event] | None:
        """The next batch; None when the store closed; raises _Lagged when dropped."""
        while not self.pending:
            if self.lagged:
                raise _Lagged()
            if self.closed:
                return None
            self.wake.clear()
            await self.wake.wait()
        batch = self.pending.popleft()
        self.size -= len(batch)
        return batch


class _Lagged(Exception):
    pass


class _Hub:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.subs: set[_Subscriber] = set()

    def subscribe(self, prefix: str) -> _Subscriber:
        sub = _Subscriber(prefix, self.limit)
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        self.subs.discard(sub)

    def publish(self, events: list[Event]) -> None:
        for sub in list(self.subs):
            if not sub.offer(events):
                self.subs.discard(sub)

    def close(self) -> None:
        for sub in self.subs:
            sub.closed = True
            sub.wake.set()
        self.subs.clear()


# -- the store ---------------------------------------------------------------------------------
class SqliteStore:
    """The Store protocol on SQLite. ``path`` is the database file (created when missing)."""

    def __init__(self, path: str, *, readers: int = 4, watch_buffer: int = 10_000) -> None:
        self.path = path
        self._readers = readers
        self._hub = _Hub(watch_buffer)
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._loop_conn: sqlite3.Connection | None = None  # fast point reads on the loop thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rev = 0            # last revision delivered to the loop
        self._w_rev = 0          # writer thread only
        self._w_compacted = 0    # writer thread only
        self._open = False
        self._commits = 0        # write transactions committed (writer thread)
        self._committed_ops = 0  # successful writes inside them (writer thread)

    def statistics(self) -> dict[str, int]:
        """Counters: group-commit transactions and the writes they carried."""
        return {"commits": self._commits, "writes": self._committed_ops, "revision": self._rev,
                "watchers": len(self._hub.subs)}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._open:
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main, args=(ready,), name=f"sqlite-writer:{self.path}", daemon=True
        )
        self._thread.start()
        self._rev = await ready
        self._pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sqlite-reader")
        self._loop_conn = self._connect(busy_timeout_ms=0)
        self._open = True

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._queue.put(_Op("stop"))
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.sleep(0)  # let the writer's last deliveries run
        self._hub.close()
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown, True)
        with self._conns_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    async def __aenter__(self) -> "SqliteStore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreClosedError("store is closed")

    # -- writer thread ---------------------------------------------------------------------------
    def _connect(self, busy_timeout_ms: int = 30000) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        return conn

    def _writer_main(self, ready: asyncio.Future[int]) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            conn = self._connect()
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(SCHEMA)
            self._w_rev, self._w_compacted = _read_revisions(conn)
        except Exception as exc:  # report start failures to start()
            loop.call_soon_threadsafe(_set_exception, ready, exc)
            return
        loop.call_soon_threadsafe(_set_result, ready, self._w_rev)
        try:
            self._writer_loop(conn)
        finally:
            conn.close()

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            ops = [self._queue.get()]
            while len(ops) < MAX_BATCH:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(op.kind == "stop" for op in ops)
            try:
                outcomes = self._process(conn, ops)
            except Exception as exc:  # a bug must not leave callers waiting forever
                _rollback(conn)
                self._w_rev, self._w_compacted = _read_revisions(conn)
                outcomes = [_Outcome(op, error=StoreError(f"sqlite writer failed: {exc!r}")) for op in ops]
            if outcomes:
                self._deliver_threadsafe(outcomes)

    def _process(self, conn: sqlite3.Connection, ops: list[_Op]) -> list[_Outcome]:
        writes = [op for op in ops if op.kind in ("create", "update", "delete")]
        outcomes = self._commit_writes(conn, writes) if writes else []
        outcomes += [self._compact(conn, op) for op in ops if op.kind == "compact"]
        return outcomes

    def _deliver_threadsafe(self, outcomes: list[_Outcome]) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._deliver, outcomes)
        except RuntimeError:  # the loop is gone: nobody is waiting any more
            pass

    def _commit_writes(self, conn: sqlite3.Connection, ops: list[_Op]) -> list[_Outcome]:
        """Apply ``ops`` in one transaction; each op's precondition failure fails only it."""
        outcomes: list[_Outcome] = []
        rev = self._w_rev
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                try:
                    event = self._apply(conn, op, rev + 1)
                except StoreError as exc:
                    outcomes.append(_Outcome(op, error=exc))
                    continue
                rev += 1
                outcomes.append(_Outcome(op, result=event.kv, event=event, revision=rev))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            self._w_rev, self._w_compacted = _read_revisions(conn)
            err = StoreError(f"sqlite commit failed: {exc}")
            return [_Outcome(op, error=err) for op in ops]
        self._w_rev = rev
        self._commits += 1
        self._committed_ops += sum(1 for o in outcomes if o.event is not None)
        return outcomes

    @staticmethod
    def _apply(conn: sqlite3.Connection, op: _Op, rev: int) -> Event:
        row = conn.execute(_LATEST, (op.key,)).fetchone()
        live = row is not None and not row[1]
        if op.kind == "create":
            if live:
                raise KeyExistsError(op.key)
            prev_id = row[0] if row is not None else 0
            conn.execute(_INSERT, (rev, op.key, 1, 0, rev, prev_id, op.value, None))
            return Event("PUT", KeyValue(op.key, op.value, rev, rev))
        if not live:
            raise KeyNotFoundError(op.key)
        cur = KeyValue(op.key, row[3], row[0], row[2])
        if op.expected and op.expected != cur.mod_revision:
            raise ConflictError(op.key, op.expected, cur)
        if op.kind == "update":
            conn.execute(_INSERT, (rev, op.key, 0, 0, cur.create_revision, cur.mod_revision, op.value, cur.value))
            return Event("PUT", KeyValue(op.key, op.value, rev, cur.create_revision), cur)
        conn.execute(_INSERT, (rev, op.key, 0, 1, cur.create_revision, cur.mod_revision, cur.value, None))
        return Event("DELETE", KeyValue(op.key, cur.value, rev, cur.create_revision), cur)

    def _compact(self, conn: sqlite3.Connection, op: _Op) -> _Outcome:
        target = min(op.expected, self._w_rev)
        if target <= self._w_compacted:
            return _Outcome(op, revision=self._w_rev)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "DELETE FROM kine WHERE id <= :rev AND (deleted = 1 OR id IN"
                " (SELECT prev_revision FROM kine WHERE id <= :rev AND prev_revision > 0))",
                {"rev": target},
            )
            conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('compacted', ?)", (target,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            return _Outcome(op, error=StoreError(f"sqlite compaction failed: {exc}"))
        self._w_compacted = target
        return _Outcome(op, revision=self._w_rev)

    # -- loop thread: results and events -------------------------------------------------------
    def _deliver(self, outcomes: list[_Outcome]) -> None:
        events = [o.event for o in outcomes if o.event is not None]
        if events:
            self._rev = max(self._rev, events[-1].revision)
            self._hub.publish(events)
        for o in outcomes:
            fut = o.op.future
            if fut is None or fut.done():
                continue
            if o.error is not None:
                fut.set_exception(o.error)
            else:
                fut.set_result(o.result)

    async def _submit(self, op: _Op) -> Any:
        self._check_open()
        assert self._loop is not None
        op.future = self._loop.create_future()
        self._queue.put(op)
        return await op.future

    async def create(self, key: str, value: bytes) -> KeyValue:
        kv: KeyValue = await self._submit(_Op("create", key, bytes(value)))
        return kv

    async def update(self, key: str, value: bytes, *, expected_revision: int = 0) -> KeyValue:
        kv: KeyValue = await self._submit(_Op("update", key, bytes(value), expected_revision))
        return kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        kv: KeyValue = await self._submit(_Op("delete", key, b"", expected_revision))
        return kv

    async def compact(self, revision: int) -> None:
        await self._submit(_Op("compact", expected=revision))

    # -- reads (worker threads) ----------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._read_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, self._in_snapshot, fn, args)

    def _in_snapshot(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")

    @staticmethod
    def _snapshot_rev(conn: sqlite3.Connection, revision: int) -> int:
        """The revision to read at; raises for compacted or future revisions."""
        current, compacted = _read_revisions(conn)
        if revision > current:
            raise FutureRevisionError(revision, current)
        if revision == 0:
            return current
        if revision < compacted:
            raise CompactedError(revision, compacted)
        return revision

    @classmethod
    def _r_get(cls, conn: sqlite3.Connection, key: str, revision: int) -> KeyValue | None:
        rev = cls._snapshot_rev(conn, revision)
        row = conn.execute(
            "SELECT id, deleted, create_revision, value FROM kine WHERE name = ? AND id <= ?"
            " ORDER BY id DESC LIMIT 1",
            (key, rev),
        ).fetchone()
        if row is None or row[1]:
            return None
        return KeyValue(key, row[3], row[0], row[2])

    @classmethod
    def _r_list(
        cls, conn: sqlite3.Connection, prefix: str, revision: int, limit: int, start_after: str | None,
        count_remaining: bool = False,
    ) -> ListResult:
        rev = cls._snapshot_rev(conn, revision)
        want = limit + 1 if limit else 0  # one extra row tells whether there are more
        rows: list[tuple[Any, ...]] = []
        after = start_after
        while True:
            # The latest row per name, names in order. With a limit the inner GROUP BY walks the
            # (name, id) index only as far as needed (tombstoned names are skipped, so a short
            # chunk may need another round) instead of grouping the whole rest of the range.
            where, args = _range_sql(prefix, after)
            need = want - len(rows)
            chunk = conn.execute(
                f"SELECT k.id, m.name, k.create_revision, k.value, k.deleted FROM"
                f" (SELECT name, MAX(id) AS mid FROM kine WHERE {where} AND id <= ? GROUP BY name"
                f" ORDER BY name{' LIMIT ?' if want else ''}) m JOIN kine k ON k.id = m.mid ORDER BY m.name",
                [*args, rev] + ([need] if want else []),
            ).fetchall()
            rows.extend(r for r in chunk if not r[4])
            if not want or len(chunk) < need or len(rows) >= want:
                break
            after = chunk[-1][1]
        more = bool(limit) and len(rows) > limit
        rows = rows[:limit] if more else rows
        items = [KeyValue(r[1], r[3], r[0], r[2]) for r in rows]
        remaining: int | None = 0 if count_remaining else None
        if more and count_remaining:  # a GROUP BY over the rest of the range: only when asked
            where2, args2 = _range_sql(prefix, items[-1].key)
            remaining = conn.execute(
                f"SELECT COUNT(*) FROM kine k JOIN (SELECT MAX(id) AS mid FROM kine WHERE {where2}"
                f" AND id <= ? GROUP BY name) m ON k.id = m.mid WHERE k.deleted = 0",
                [*args2, rev],
            ).fetchone()[0]
        return ListResult(items, rev, more, remaining)

    @staticmethod
    def _r_count(conn: sqlite3.Connection, prefix: str) -> int:
        where, args = _range_sql(prefix, None)
        n: int = conn.execute(
            f"SELECT COUNT(*) FROM kine k JOIN (SELECT MAX(id) AS mid FROM kine WHERE {where}"
            f" GROUP BY name) m ON k.id = m.mid WHERE k.deleted = 0",
            args,
        ).fetchone()[0]
        return n

    @staticmethod
    def _r_history(conn: sqlite3.Connection, prefix: str, after: int) -> list[Event]:
        _, compacted = _read_revisions(conn)
        if after < compacted:
            raise CompactedError(after, compacted)
        where, args = _range_sql(prefix, None)
        rows = conn.execute(
            f"SELECT {_ROW} FROM kine WHERE id > ? AND {where} ORDER BY id LIMIT ?",
            [after, *args, HISTORY_PAGE],
        ).fetchall()
        return [row_event(r) for r in rows]

    def _fast_read(self, sql: str, args: tuple[Any, ...]) -> list[Any] | None:
        """One SELECT on the loop thread's connection (an implicit read transaction, i.e. one
        snapshot); None when SQLite reports the database busy: the caller then uses the pool."""
        self._check_open()
        assert self._loop_conn is not None
        try:
            return self._loop_conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return None

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        if revision == 0:
            rows = self._fast_read(_LATEST, (key,))
            if rows is not None:
                if not rows or rows[0][1]:
                    return None
                rid, _, crev, value = rows[0]
                return KeyValue(key, value, rid, crev)
        return await self._read(self._r_get, key, revision)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str | None = None,
        count_remaining: bool = False,
    ) -> ListResult:
        return await self._read(self._r_list, prefix, revision, limit, start_after, count_remaining)

    async def count(self, prefix: str) -> int:
        return await self._read(self._r_count, prefix)

    async def current_revision(self) -> int:
        rows = self._fast_read(_CURRENT, ())
        if rows is not None:
            return int(rows[0][0]) if rows else 0
        current, _ = await self._read(_read_revisions)
        return current

    async def compacted_revision(self) -> int:
        rows = self._fast_read(_COMPACTED, ())
        if rows is not None:
            return int(rows[0][0]) if rows else 0
        _, compacted = await self._read(_read_revisions)
        return compacted

    # -- watch ---------------------------------------------------------------------------------
    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]:
        self._check_open()
        sub = self._hub.subscribe(prefix)  # first subscribe, then read history: no gap
        try:
            last = from_revision
            while True:
                history = await self._read(self._r_history, prefix, last)
                if history:
                    last = history[-1].revision
                    yield history
                if len(history) < HISTORY_PAGE:
                    break
            while True:
                try:
                    batch = await sub.next()
                except _Lagged:
                    raise WatchLaggedError(last) from None
                if batch is None:
                    return
                fresh = [e for e in batch if e.revision > last]  # skip what history already sent
                if fresh:
                    last = fresh[-1].revision
                    yield fresh
        finally:
            self._hub.unsubscribe(sub)


def _read_revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current revision, compacted revision) as stored."""
    row = conn.execute(_CURRENT).fetchone()
    comp = conn.execute(_COMPACTED).fetchone()
    return (int(row[0]) if row else 0, int(comp[0]) if comp else 0)


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _set_result(fut: asyncio.Future[T], value: T) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
