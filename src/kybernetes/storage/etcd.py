"""etcd v3 backend, speaking gRPC through the stubs generated in ``aetcd.rpc``.

Why the raw stubs and not aetcd's high-level client: its range helpers take neither a revision
nor a limit (we need snapshot reads and paging), and its watch multiplexes every watch into one
stream feeding unbounded per-watch queues. Here each watch is its own gRPC stream on the shared
channel, so HTTP/2 flow control is the (bounded) buffer: a slow consumer slows only its stream.

Semantics map one to one onto etcd: conditional writes are single transactions comparing the
key's mod_revision (0 = absent), with a range on failure so a conflict carries the current value;
the store revision is etcd's; compaction is etcd's. The compacted revision is recorded in the key
``compact_rev_key`` (the key the Kubernetes API server uses for the same purpose), because etcd
offers no call that reports it.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, TypeVar
from urllib.parse import urlsplit

import grpc
from aetcd import rpc

from .errors import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
    StoreError,
    UnavailableError,
)
from .interface import Event, KeyValue, ListResult

T = TypeVar("T")

COMPACT_KEY = b"compact_rev_key"
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Reconnect quickly after an etcd restart; calls wait for readiness within their deadline.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with ``prefix``" (b"\\0" = to the end)."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"


def grpc_target(endpoints: list[str]) -> str:
    """A gRPC target for ``endpoints`` (``http://host:port``); several IPv4 hosts share one."""
    hosts = []
    for ep in endpoints:
        parts = urlsplit(ep if "//" in ep else f"//{ep}")
        hosts.append(f"{parts.hostname}:{parts.port or 2379}")
    if len(hosts) > 1 and all(h.split(":")[0].replace(".", "").isdigit() for h in hosts):
        return "ipv4:" + ",".join(hosts)
    return hosts[0]


def to_kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)


def to_event(ev: Any) -> Event:
    """Map an etcd watch event (with prev_kv) onto our Event."""
    prev = to_kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    if ev.type == rpc.Event.EventType.DELETE:
        value = prev.value if prev else b""
        crev = prev.create_revision if prev else 0
        return Event("DELETE", KeyValue(ev.kv.key.decode(), value, ev.kv.mod_revision, crev), prev)
    kv = to_kv(ev.kv)
    return Event("PUT", kv, None if kv.create_revision == kv.mod_revision else prev)


def map_error(exc: grpc.aio.AioRpcError, requested: int = 0) -> StoreError:
    code, details = exc.code(), exc.details() or ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return UnavailableError(f"etcd unavailable: {details}")
    if "required revision has been compacted" in details:
        return CompactedError(requested, 0)
    if "required revision is a future revision" in details:
        return FutureRevisionError(requested, 0)
    return StoreError(f"etcd error {code.name}: {details}")


class EtcdStore:
    """The Store protocol on etcd v3 (tested against etcd 3.4)."""

    def __init__(self, endpoints: list[str], *, timeout: float = 5.0) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._kv: Any = None
        self._watch: Any = None

    async def start(self) -> None:
        if self._channel is not None:
            return
        self._channel = rpc.insecure_channel(grpc_target(self.endpoints), options=_CHANNEL_OPTIONS)
        self._kv = rpc.KVStub(self._channel)
        self._watch = rpc.WatchStub(self._channel)

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> "EtcdStore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing ------------------------------------------------------------------------------
    async def _call(self, method: str, request: Any, requested: int = 0) -> Any:
        if self._channel is None:
            raise StoreClosedError("store is closed")
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                return await getattr(self._kv, method)(request, timeout=self.timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            err = map_error(exc, requested)
        except TimeoutError:
            err = UnavailableError(f"etcd {method} timed out after {self.timeout}s")
        if isinstance(err, CompactedError):
            err = CompactedError(requested, await self._compacted_or(requested + 1))
        elif isinstance(err, FutureRevisionError):
            err = FutureRevisionError(requested, await self._best_effort(self.current_revision(), 0))
        raise err

    async def _best_effort(self, aw: Awaitable[T], default: T) -> T:
        try:
            return await aw
        except StoreError:
            return default

    async def _compacted_or(self, default: int) -> int:
        return max(default, await self._best_effort(self.compacted_revision(), 0))

    @staticmethod
    def _txn(compare: Any, success: Any, failure: Any) -> Any:
        return rpc.TxnRequest(compare=[compare], success=[success], failure=[failure])

    @staticmethod
    def _mod_compare(key: bytes, expected: int) -> Any:
        """mod_revision == expected, or "key exists" (mod_revision > 0) when expected is 0."""
        op = rpc.Compare.EQUAL if expected else rpc.Compare.GREATER
        return rpc.Compare(key=key, target=rpc.Compare.MOD, result=op, mod_revision=expected)

    @staticmethod
    def _conflict(key: str, expected: int, resp: Any) -> StoreError:
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            return KeyNotFoundError(key)
        return ConflictError(key, expected, to_kv(kvs[0]))

    # -- writes --------------------------------------------------------------------------------
    async def create(self, key: str, value: bytes) -> KeyValue:
        k = key.encode()
        req = self._txn(
            rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=0),
            rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value)),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True)),
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            raise KeyExistsError(key)
        rev = resp.header.revision
        return KeyValue(key, bytes(value), rev, rev)

    async def update(self, key: str, value: bytes, *, expected_revision: int = 0) -> KeyValue:
        k = key.encode()
        req = self._txn(
            self._mod_compare(k, expected_revision),
            rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, prev_kv=True)),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=k)),
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            raise self._conflict(key, expected_revision, resp)
        prev = resp.responses[0].response_put.prev_kv
        return KeyValue(key, bytes(value), resp.header.revision, prev.create_revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        k = key.encode()
        req = self._txn(
            self._mod_compare(k, expected_revision),
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True)),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=k)),
        )
        resp = await self._call("Txn", req)
        if not resp.succeeded:
            raise self._conflict(key, expected_revision, resp)
        prev = resp.responses[0].response_delete_range.prev_kvs[0]
        return KeyValue(key, prev.value, resp.header.revision, prev.create_revision)

    async def compact(self, revision: int) -> None:
        target = min(revision, await self.current_revision())
        stored = await self._call("Range", rpc.RangeRequest(key=COMPACT_KEY))
        if target <= (int(stored.kvs[0].value) if stored.kvs else 0):
            return
        try:
            await self._call("Compact", rpc.CompactionRequest(revision=target))
        except CompactedError:
            pass  # someone compacted further already
        await self._record_compacted(target)

    async def _record_compacted(self, target: int) -> None:
        """Raise the recorded compacted revision to ``target`` (compare-and-swap on its version)."""
        while True:
            stored = await self._call("Range", rpc.RangeRequest(key=COMPACT_KEY))
            version = stored.kvs[0].version if stored.kvs else 0
            if stored.kvs and int(stored.kvs[0].value) >= target:
                return
            req = rpc.TxnRequest(
                compare=[rpc.Compare(key=COMPACT_KEY, target=rpc.Compare.VERSION,
                                     result=rpc.Compare.EQUAL, version=version)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=COMPACT_KEY, value=str(target).encode()))],
            )
            if (await self._call("Txn", req)).succeeded:
                return

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        resp = await self._call("Range", rpc.RangeRequest(key=key.encode(), revision=revision), revision)
        return to_kv(resp.kvs[0]) if resp.kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str | None = None,
        count_remaining: bool = False,
    ) -> ListResult:
        p = prefix.encode()
        start = p if start_after is None or start_after < prefix else start_after.encode() + b"\0"
        req = rpc.RangeRequest(key=start or b"\0", range_end=prefix_range_end(p), revision=revision, limit=limit)
        resp = await self._call("Range", req, revision)
        items = [to_kv(kv) for kv in resp.kvs]
        rev = revision or resp.header.revision
        return ListResult(items, rev, bool(resp.more), resp.count - len(items) if count_remaining else None)

    async def count(self, prefix: str) -> int:
        p = prefix.encode()
        req = rpc.RangeRequest(key=p or b"\0", range_end=prefix_range_end(p), count_only=True)
        resp = await self._call("Range", req)
        n: int = resp.count
        return n

    async def current_revision(self) -> int:
        resp = await self._call("Range", rpc.RangeRequest(key=COMPACT_KEY, count_only=True))
        rev: int = resp.header.revision
        return rev

    async def compacted_revision(self) -> int:
        resp = await self._call("Range", rpc.RangeRequest(key=COMPACT_KEY))
        return int(resp.kvs[0].value) if resp.kvs else 0

    # -- watch ---------------------------------------------------------------------------------
    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]:
        if self._channel is None:
            raise StoreClosedError("store is closed")
        p = prefix.encode()
        create = rpc.WatchCreateRequest(
            key=p or b"\0", range_end=prefix_range_end(p), start_revision=from_revision + 1, prev_kv=True
        )
        call = self._watch.Watch(wait_for_ready=True)
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await call.write(rpc.WatchRequest(create_request=create))
                    first = await call.read()
                self._check_watch_response(first, from_revision)
                while True:
                    resp = await call.read()
                    events = self._check_watch_response(resp, from_revision)
                    if events:
                        yield events
            except grpc.aio.AioRpcError as exc:
                raise map_error(exc, from_revision) from exc
            except TimeoutError:
                raise UnavailableError("etcd watch was not created in time") from None
        finally:
            call.cancel()

    @staticmethod
    def _check_watch_response(resp: Any, from_revision: int) -> list[Event]:
        if resp is grpc.aio.EOF:
            raise UnavailableError("etcd closed the watch stream")
        if resp.compact_revision:
            raise CompactedError(from_revision, resp.compact_revision)
        if resp.canceled:
            raise StoreError(f"etcd canceled the watch: {resp.cancel_reason}")
        return [to_event(ev) for ev in resp.events]
