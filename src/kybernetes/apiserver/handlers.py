"""HTTP handlers: parse the request, call the generic store, render JSON / Tables / watch streams.

One dispatcher serves every resource path (``/api/v1/...`` and ``/apis/<g>/<v>/...``), so adding
a resource to the registry is all it takes to serve it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiohttp import web

from ..api import errors, tables
from ..api import meta as m
from ..api.fields import parse_field_selector
from ..api.labels import parse_selector
from ..api.resources import ResourceInfo
from ..storage.errors import CompactedError
from . import eviction
from .rest import ListOptions, WriteOptions, _parse_rv
from .watchcache import CachedEvent

if TYPE_CHECKING:
    from .app import ApiServer

log = logging.getLogger(__name__)
Obj = dict[str, Any]

JSON_CT = "application/json"
PROTOBUF_CT = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
BOOKMARK_INTERVAL = 30.0
# Kinds whose DELETE answers with the deleted object instead of a Status (as upstream).
RETURNS_DELETED_OBJECT = {("", "Pod"), ("", "Service"), ("", "ServiceAccount"), ("", "PersistentVolume"),
                          ("", "PersistentVolumeClaim"), ("storage.k8s.io", "StorageClass")}
DEFAULT_WATCH_TIMEOUT = 1800


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None, pretty: bool = False) -> web.Response:
    body = orjson.dumps(obj, option=orjson.OPT_INDENT_2 if pretty else 0)
    return web.Response(body=body, status=status, content_type=JSON_CT, headers=headers)


def status_response(err: errors.StatusError) -> web.Response:
    return json_response(err.to_status(), status=err.code, headers=err.headers or None)


def success_status(code: int = 200, details: Obj | None = None) -> Obj:
    st: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        st["details"] = details
    if code != 200:
        st["code"] = code
    return st


def _media_type(ct: str | None) -> str:
    return (ct or "").split(";", 1)[0].strip().lower()


@dataclass
class Target:
    info: ResourceInfo
    namespace: str        # "" for cluster-scoped or all-namespaces
    name: str             # "" for collections
    subresource: str


def wants_table(accept: str) -> str | None:
    for part in accept.split(","):
        if "as=Table" in part and "g=meta.k8s.io" in part:
            return "meta.k8s.io/v1beta1" if "v=v1beta1" in part else "meta.k8s.io/v1"
    return None


def _bool(q: Any, key: str) -> bool:
    v = q.get(key)
    return v is not None and v.lower() in ("true", "1", "")


_MISSING = object()
WATCH_MAX_BUFFERED = 4 * 1024 * 1024  # bytes queued for one watch client before it counts as too slow


class ChunkWriter:
    """Synchronous writes of HTTP/1.1 chunks to a prepared, chunked StreamResponse's connection.

    aiohttp's ``StreamResponse.write`` is a coroutine; calling it per watcher per event needs a
    task wakeup each time. The watch cache instead hands batches to every watcher in one loop
    pass, so watch bodies are framed here and written straight to the transport. A client that
    stops reading fills the transport buffer; past ``WATCH_MAX_BUFFERED`` the write is refused
    and the watch ends (the client re-watches), as upstream ends watchers that fall behind.
    """

    def __init__(self, request: web.Request) -> None:
        self.transport = request.transport

    def alive(self) -> bool:
        t = self.transport
        return t is not None and not t.is_closing()

    def write(self, data: bytes) -> bool:
        t = self.transport
        if t is None or t.is_closing() or t.get_write_buffer_size() > WATCH_MAX_BUFFERED:
            return False
        t.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True


class Handlers:
    def __init__(self, server: "ApiServer") -> None:
        self.s = server

    # -----------------------------------------------------------------------------------
    # routing
    def resolve(self, group: str, version: str, rest: list[str]) -> Target:
        reg = self.s.registry
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            ns = rest[1]
            rest = rest[2:]
        if not rest or len(rest) > 3:
            raise errors.path_not_found()
        info = reg.lookup(group, version, rest[0])
        if info is None:
            raise errors.path_not_found()
        if ns and not info.namespaced:
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and info.subresource(sub) is None:
            raise errors.path_not_found()
        if info.namespaced and name and not ns:
            raise errors.path_not_found()
        return Target(info, ns, name, sub)

    async def resource(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        t = self.resolve(group, version, rest)
        method = request.method
        info = t.info
        q = request.query
        verb_ok = info.verbs
        if t.subresource:
            return await self.subresource(request, t)
        if not t.name:
            if method == "GET":
                if _bool(q, "watch") and q.get("watch") not in ("false", "0"):
                    return await self.watch(request, t)
                return await self.list(request, t)
            if method == "POST":
                if "create" not in verb_ok:
                    raise errors.method_not_allowed("the server does not allow this method on the requested resource")
                return await self.create(request, t)
            if method == "DELETE":
                return await self.delete_collection(request, t)
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if "get" not in verb_ok:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if method == "GET":
            obj = await self.s.api.get(info, t.namespace, t.name, q.get("resourceVersion"))
            return self.render_object(request, info, obj)
        if method == "PUT":
            return await self.update(request, t)
        if method == "PATCH":
            return await self.patch(request, t)
        if method == "DELETE":
            return await self.delete(request, t)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # -----------------------------------------------------------------------------------
    # bodies
    async def read_body(self, request: web.Request, info: ResourceInfo | None, *, patch: bool = False) -> tuple[Any, bytes]:
        raw = await request.read()
        ct = _media_type(request.headers.get("Content-Type"))
        if not raw.strip():
            raise errors.bad_request("the request body is empty" if not patch else "the body of the request was empty")
        if ct == PROTOBUF_CT:
            from ..api import protobuf

            try:
                return protobuf.decode(raw), raw
            except protobuf.ProtobufError as e:
                raise errors.bad_request(f"unable to decode protobuf body: {e}")
        if ct in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            try:
                return yaml.safe_load(raw.decode("utf-8")), raw
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                raise errors.bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}")
        if ct not in ("", JSON_CT, "*/*", "text/plain") and ct not in PATCH_TYPES:
            raise errors.unsupported_media_type(ct)
        try:
            return orjson.loads(raw), raw
        except orjson.JSONDecodeError as e:
            # a YAML body without Content-Type (some clients do that)
            if ct == "":
                try:
                    doc = yaml.safe_load(raw.decode("utf-8"))
                    if isinstance(doc, (dict, list)):
                        return doc, raw
                except Exception:  # noqa: BLE001
                    pass
            raise errors.bad_request(f"couldn't decode the request body as JSON: {e}")

    def write_options(self, request: web.Request) -> WriteOptions:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid dryRun value: "{d}": valid values are "All"')
        fv = q.get("fieldValidation", "")
        if fv and fv not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f"fieldValidation: Unsupported value: \"{fv}\": supported values: \"Ignore\", \"Strict\", \"Warn\"")
        fm = q.get("fieldManager", "")
        if len(fm) > 128:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.too_long("fieldManager", fm, 128)])
        if not fm:
            fm = _manager_from_user_agent(request.headers.get("User-Agent", ""))
        # Without an explicit fieldValidation upstream warns (kubectl always sends Strict).
        return WriteOptions(dry_run=bool(dry), field_manager=fm, field_validation=fv or "Warn",
                            force=_bool(q, "force"))

    def check_body_type(self, info: ResourceInfo, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request must be a JSON object (a {info.kind}), not {type(body).__name__}")
        av = body.get("apiVersion")
        kind = body.get("kind")
        if av is not None and av != info.api_version:
            raise errors.bad_request(f"the API version in the data ({av}) does not match the expected API version ({info.api_version})")
        if kind is not None and kind != info.kind:
            raise errors.bad_request(f'{kind} in version "{info.version}" cannot be handled as a {info.kind}: the kind in the data ({kind}) does not match the expected kind ({info.kind})')
        md = body.get("metadata")
        if md is not None and not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        body["apiVersion"] = info.api_version
        body["kind"] = info.kind
        return body

    def finish_write(self, request: web.Request, info: ResourceInfo, obj: Obj, code: int, opts: WriteOptions) -> web.Response:
        headers = {}
        if opts.warnings:
            # aiohttp needs multiple Warning headers as a multidict
            resp = self.render_object(request, info, obj, status=code)
            for w in opts.warnings:
                resp.headers.add("Warning", '299 - "' + _header_safe(w) + '"')
            return resp
        return self.render_object(request, info, obj, status=code, headers=headers or None)

    # -----------------------------------------------------------------------------------
    # verbs
    async def create(self, request: web.Request, t: Target) -> web.Response:
        info = t.info
        if info.group in ("authentication.k8s.io", "authorization.k8s.io"):
            return await self.review(request, t)
        body, raw = await self.read_body(request, info)
        opts = self.write_options(request)
        if info.namespaced and not t.namespace:
            raise errors.path_not_found()
        obj = self.check_body_type(info, body)
        if opts.field_validation == "Strict" and raw[:1] == b"{":
            from ..api.validation import find_duplicate_fields

            dups = find_duplicate_fields(raw)
            if dups:
                raise errors.bad_request("strict decoding error: " + ", ".join(f'duplicate field "{d}"' for d in dups))
        if (info.group, info.kind) == ("", "Binding"):
            return await self.bind(request, t.namespace, m.name_of(obj), obj)
        out = await self.s.api.create(info, t.namespace, obj, opts)
        return self.finish_write(request, info, out, 201, opts)

    async def update(self, request: web.Request, t: Target, subresource: str = "") -> web.Response:
        info = t.info
        body, raw = await self.read_body(request, info)
        opts = self.write_options(request)
        obj = self.check_body_type(info, body)
        out, created = await self.s.api.update(info, t.namespace, t.name, obj, opts, subresource)
        return self.finish_write(request, info, out, 201 if created else 200, opts)

    async def patch(self, request: web.Request, t: Target, subresource: str = "") -> web.Response:
        info = t.info
        ct = _media_type(request.headers.get("Content-Type"))
        if ct not in PATCH_TYPES:
            raise errors.StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: {", ".join(PATCH_TYPES)}')
        body, _ = await self.read_body(request, info, patch=True)
        opts = self.write_options(request)
        if ct == "application/apply-patch+yaml" and not request.query.get("fieldManager"):
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
        if ct == "application/apply-patch+yaml":
            opts.field_manager = request.query["fieldManager"]
        out, created = await self.s.api.patch(info, t.namespace, t.name, ct, body, opts, subresource)
        return self.finish_write(request, info, out, 201 if created else 200, opts)

    async def delete_options(self, request: web.Request) -> tuple[Obj, bool]:
        raw = await request.read()
        options: Obj = {}
        if raw.strip():
            ct = _media_type(request.headers.get("Content-Type"))
            if ct == PROTOBUF_CT:
                from ..api import protobuf

                try:
                    options = protobuf.decode(raw)
                except protobuf.ProtobufError as e:
                    raise errors.bad_request(f"unable to decode DeleteOptions: {e}")
            else:
                try:
                    options = orjson.loads(raw)
                except orjson.JSONDecodeError as e:
                    raise errors.bad_request(f"couldn't decode DeleteOptions: {e}")
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be an object")
        q = request.query
        if "gracePeriodSeconds" in q:
            try:
                options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise errors.bad_request("gracePeriodSeconds must be an integer")
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            options["orphanDependents"] = q["orphanDependents"] == "true"
        dry = list(q.getall("dryRun", [])) + list(options.get("dryRun") or [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid dryRun value: "{d}": valid values are "All"')
        return options, bool(dry)

    async def delete(self, request: web.Request, t: Target) -> web.Response:
        info = t.info
        options, dry = await self.delete_options(request)
        obj, now = await self.s.api.delete(info, t.namespace, t.name, options, dry)
        if not now:
            return self.render_object(request, info, obj, status=200)
        if (info.group, info.kind) in RETURNS_DELETED_OBJECT:
            return self.render_object(request, info, obj)
        md = obj.get("metadata") or {}
        return json_response(success_status(200, {"name": t.name, "group": info.group, "kind": info.plural, "uid": md.get("uid")}))

    async def delete_collection(self, request: web.Request, t: Target) -> web.Response:
        info = t.info
        if "deletecollection" not in info.verbs:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        options, dry = await self.delete_options(request)
        lopts = self.list_options(request)
        items, list_meta = await self.s.api.delete_collection(info, t.namespace, lopts, options, dry)
        return json_response({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta, "items": items})

    def list_options(self, request: web.Request) -> ListOptions:
        q = request.query
        lo = ListOptions()
        if q.get("labelSelector"):
            lo.label_selector = parse_selector(q["labelSelector"])
        if q.get("fieldSelector"):
            lo.field_selector = parse_field_selector(q["fieldSelector"])
        if q.get("limit"):
            try:
                lo.limit = max(0, int(q["limit"]))
            except ValueError:
                raise errors.bad_request(f"limit: Invalid value: {q['limit']!r}: must be an integer")
        lo.continue_token = q.get("continue") or None
        lo.resource_version = q.get("resourceVersion")
        lo.resource_version_match = q.get("resourceVersionMatch")
        return lo

    async def list(self, request: web.Request, t: Target) -> web.Response:
        info = t.info
        lopts = self.list_options(request)
        if info.namespaced and t.namespace:
            pass
        if "list" not in info.verbs:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        items, list_meta = await self.s.api.list(info, t.namespace, lopts)
        table_v = wants_table(request.headers.get("Accept", ""))
        if table_v:
            return json_response(self.to_table(request, info, items, list_meta, table_v))
        return json_response({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta, "items": items},
                             pretty=_bool(request.query, "pretty"))

    # -----------------------------------------------------------------------------------
    # rendering
    def to_table(self, request: web.Request, info: ResourceInfo, objs: list[Obj], list_meta: Obj, table_v: str, with_headers: bool = True) -> Obj:
        include = request.query.get("includeObject", "Metadata")
        if include not in ("None", "Metadata", "Object"):
            raise errors.bad_request(f'includeObject: Unsupported value: "{include}": supported values: "Metadata", "None", "Object"')
        return tables.to_table(
            info.group, info.kind, objs, dt.datetime.now(dt.timezone.utc),
            include_object=include, list_metadata=list_meta, api_version=table_v,
            printer_columns=list(info.printer_columns) if info.custom else None, custom=info.custom,
            with_headers=with_headers,
        )

    def render_object(self, request: web.Request, info: ResourceInfo, obj: Obj, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        table_v = wants_table(request.headers.get("Accept", "")) if request.method == "GET" else None
        if table_v:
            md = obj.get("metadata") or {}
            return json_response(self.to_table(request, info, [obj], {"resourceVersion": md.get("resourceVersion", "")}, table_v), status, headers)
        return json_response(obj, status, headers, pretty=_bool(request.query, "pretty"))

    # -----------------------------------------------------------------------------------
    # watch
    async def watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        info = t.info
        q = request.query
        lopts = self.list_options(request)
        if lopts.field_selector is not None:
            from ..api.fields import check_supported

            check_supported(lopts.field_selector, info.group, info.kind)
        if _bool(q, "sendInitialEvents"):
            if q.get("resourceVersionMatch") != "NotOlderThan" or not _bool(q, "allowWatchBookmarks"):
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and resourceVersionMatch is NotOlderThan and allowWatchBookmarks is true")])
        bookmarks = _bool(q, "allowWatchBookmarks")
        timeout = DEFAULT_WATCH_TIMEOUT
        if q.get("timeoutSeconds"):
            try:
                timeout = max(0, int(q["timeoutSeconds"]))
            except ValueError:
                raise errors.bad_request("timeoutSeconds must be an integer")
        table_v = wants_table(request.headers.get("Accept", ""))
        rv = q.get("resourceVersion")
        prefix = info.key_prefix(t.namespace if info.namespaced else None)
        if info.storage_group is not None and info.storage_group != info.group:
            prefix = info.key_prefix(t.namespace if info.namespaced else None)
        initial: list[Obj] = []
        send_initial = _bool(q, "sendInitialEvents") or rv in (None, "", "0")
        if send_initial:
            items, list_meta = await self.s.api.list(info, t.namespace, ListOptions(lopts.label_selector, lopts.field_selector))
            initial = items
            start = int(list_meta["resourceVersion"])
        else:
            start = _parse_rv(rv or "")
        cache = self.s.cache
        watcher = None
        store_iter = None
        if not send_initial:
            compacted = await cache.store.compacted_revision()
            if start < compacted:
                raise errors.expired(f"too old resource version: {start} ({compacted})")
        if cache.covers(start):
            watcher = cache.watch(prefix, start)
        else:
            store_iter = cache.store_watch(prefix, start)
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON_CT, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent_headers = False

        def encode_event(typ: str, obj: Obj) -> bytes:
            nonlocal sent_headers
            if table_v and typ in ("ADDED", "MODIFIED", "DELETED"):
                md = obj.get("metadata") or {}
                tbl = self.to_table(request, info, [obj], {"resourceVersion": md.get("resourceVersion", "")}, table_v, with_headers=not sent_headers)
                sent_headers = True
                return orjson.dumps({"type": typ, "object": tbl}) + b"\n"
            return orjson.dumps({"type": typ, "object": obj}) + b"\n"

        def matches(obj: Obj) -> bool:
            if lopts.label_selector is not None and not lopts.label_selector.matches((obj.get("metadata") or {}).get("labels")):
                return False
            if lopts.field_selector is not None and not lopts.field_selector.matches(info.group, info.kind, obj):
                return False
            return True

        # Events are shared by every watcher: memoise "filtered + encoded" per event and per
        # (version, selectors), so a thousand identical watches encode and filter each event once.
        memo_key = None if table_v else ("watch", info.api_version, info.kind, q.get("labelSelector"), q.get("fieldSelector"))

        def encode_cached(ev: CachedEvent) -> bytes | None:
            if memo_key is not None:
                hit = ev.encoded.get(memo_key, _MISSING)
                if hit is not _MISSING:
                    return hit  # type: ignore[return-value]
            b = _encode_cached(ev)
            if memo_key is not None:
                ev.encoded[memo_key] = b
            return b

        def _encode_cached(ev: CachedEvent) -> bytes | None:
            obj = ev.obj
            if obj.get("apiVersion") != info.api_version or obj.get("kind") != info.kind:
                if info.custom or info.storage_version or info.storage_group is not None:
                    obj = self.s.api._out(info, obj)
                else:
                    return None
            if (lopts.label_selector or lopts.field_selector) and not matches(obj):
                return None
            if table_v:
                return encode_event(ev.type, obj)
            key = (ev.type, info.api_version)
            b = ev.encoded.get(key)
            if b is None:
                b = orjson.dumps({"type": ev.type, "object": obj}) + b"\n"
                ev.encoded[key] = b
            return b

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_rv = start
        try:
            if initial:
                await resp.write(b"".join(encode_event("ADDED", o) for o in initial))
            if _bool(q, "sendInitialEvents"):
                await resp.write(orjson.dumps({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(start), "annotations": {"k8s.io/initial-events-end": "true"}}}}) + b"\n")
            if store_iter is not None:
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        async for ev in store_iter:
                            b = encode_cached(ev)
                            last_rv = ev.revision
                            if b:
                                await resp.write(b)
                except CompactedError as e:
                    await resp.write(orjson.dumps({"type": "ERROR", "object": errors.expired(f"too old resource version: {start} ({e.compacted})").to_status()}) + b"\n")
                except TimeoutError:
                    pass
                return resp
            assert watcher is not None
            # From here on the cache delivers batches synchronously; everything before this
            # point was written (and drained) through aiohttp, so the stream stays in order.
            out = ChunkWriter(request)

            def deliver(batch: list[CachedEvent]) -> bool:
                nonlocal last_rv
                last_rv = batch[-1].revision
                data = b"".join(b for b in map(encode_cached, batch) if b)
                return out.write(data) if data else out.alive()

            watcher.start(deliver)
            while loop.time() < deadline and out.alive():
                if await watcher.wait_closed(min(deadline - loop.time(), BOOKMARK_INTERVAL)):
                    break  # overflow, slow client or shutdown: the client re-watches from its last RV
                if bookmarks and loop.time() < deadline:
                    out.write(orjson.dumps({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(max(last_rv, cache.revision))}}}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError) as e:
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            if watcher is not None:
                watcher.close()
        return resp

    # -----------------------------------------------------------------------------------
    # subresources
    async def subresource(self, request: web.Request, t: Target) -> web.StreamResponse:
        info, sub, method = t.info, t.subresource, request.method
        if sub in ("status", "approval"):
            if method == "GET":
                return self.render_object(request, info, await self.s.api.get(info, t.namespace, t.name))
            if method == "PUT":
                return await self.update(request, t, sub)
            if method == "PATCH":
                return await self.patch(request, t, sub)
        elif sub == "scale":
            return await self.scale(request, t)
        elif sub == "binding" and method == "POST":
            body, _ = await self.read_body(request, None)
            if not isinstance(body, dict):
                raise errors.bad_request("Binding must be an object")
            return await self.bind(request, t.namespace, t.name, body)
        elif sub == "eviction" and method == "POST":
            body, _ = await self.read_body(request, None)
            pdbs = self.s.registry.lookup("policy", "v1", "poddisruptionbudgets")
            assert pdbs is not None
            await eviction.evict(self.s.api, info, pdbs, t.namespace, t.name, body, request.query.getall("dryRun", []))
            return json_response(success_status(201), status=201)
        elif sub == "finalize" and method == "PUT":
            body, _ = await self.read_body(request, info)
            obj = self.check_body_type(info, body)
            fins = (obj.get("spec") or {}).get("finalizers")

            def set_finalizers(cur: Obj | None) -> Obj:
                assert cur is not None
                cur.setdefault("spec", {})["finalizers"] = fins or []
                return cur

            out, _ = await self.s.api.guaranteed_update(info, t.namespace, t.name, set_finalizers, self.write_options(request))
            return self.render_object(request, info, out)
        elif sub in ("log", "exec", "attach", "portforward"):
            from . import nodeproxy

            pod = await self.s.api.get(info, t.namespace, t.name)
            return await nodeproxy.proxy(self.s, request, pod, sub)
        elif sub == "ephemeralcontainers":
            if method == "GET":
                return self.render_object(request, info, await self.s.api.get(info, t.namespace, t.name))
            if method == "PATCH":
                return await self.patch(request, t, "ephemeralcontainers")
            if method == "PUT":
                return await self.update(request, t, "ephemeralcontainers")
        elif sub == "token" and info.kind == "ServiceAccount":
            from . import tokens

            return await tokens.create_token(self, request, t)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    async def bind(self, request: web.Request, ns: str, name: str, body: Obj) -> web.Response:
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid("Binding", "", name, [errors.required("target.name")])
        pods = self.s.registry.lookup("", "v1", "pods")
        assert pods is not None

        def set_node(cur: Obj | None) -> Obj:
            assert cur is not None
            spec = cur.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict("pods", "", name, f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
            if (cur.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.conflict("pods", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
            spec["nodeName"] = node
            conds = (cur.setdefault("status", {})).get("conditions") or []
            cur["status"]["conditions"] = m.set_condition(conds, {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": m.now_rfc3339()})
            return cur

        opts = self.write_options(request)
        # as upstream (the binding storage updates the pod below the field manager): a binding
        # records no managedFields entry; it also spares the scheduler's hot path that cost
        await self.s.api.guaranteed_update(pods, ns, name, set_node, opts, subresource="binding",
                                           record_managed=False)
        return json_response(success_status(201), status=201)

    async def scale(self, request: web.Request, t: Target) -> web.Response:
        info = t.info
        method = request.method
        spec_path, status_path, selector_path = info.scale_paths or (".spec.replicas", ".status.replicas", None)

        def to_scale(obj: Obj) -> Obj:
            md = obj.get("metadata") or {}
            replicas = _jp(obj, spec_path) or 0
            st = {"replicas": _jp(obj, status_path) or 0}
            sel = None
            if selector_path:
                sel = _jp(obj, selector_path)
            else:
                from ..api.labels import format_label_selector

                ls = (obj.get("spec") or {}).get("selector")
                if isinstance(ls, dict) and info.kind != "ReplicationController":
                    sel = format_label_selector(ls)
                elif isinstance(ls, dict):
                    sel = ",".join(f"{k}={v}" for k, v in sorted(ls.items()))
            if sel:
                st["selector"] = sel
            return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {"name": md.get("name"), "namespace": md.get("namespace"), "uid": md.get("uid"),
                                 "resourceVersion": md.get("resourceVersion"), "creationTimestamp": md.get("creationTimestamp")},
                    "spec": {"replicas": replicas}, "status": st}

        if method == "GET":
            return json_response(to_scale(await self.s.api.get(info, t.namespace, t.name)))
        if method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        body, _ = await self.read_body(request, None, patch=method == "PATCH")
        ct = _media_type(request.headers.get("Content-Type"))
        opts = self.write_options(request)

        def try_update(cur: Obj | None) -> Obj:
            assert cur is not None
            scale = to_scale(cur)
            if method == "PUT":
                new_scale = body if isinstance(body, dict) else {}
            else:
                from ..api import patch as patchlib

                if ct == "application/json-patch+json":
                    new_scale = patchlib.json_patch(scale, body)
                elif ct in ("application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"):
                    new_scale = patchlib.merge_patch(scale, body)
                else:
                    raise errors.unsupported_media_type(ct)
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != (cur.get("metadata") or {}).get("resourceVersion"):
                raise errors.conflict(info.plural, info.group, t.name, errors.MODIFIED_DETAIL)
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid("Scale", "autoscaling", t.name, [errors.invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")])
            _jp_set(cur, spec_path, replicas)
            return cur

        out, _ = await self.s.api.guaranteed_update(info, t.namespace, t.name, try_update, opts)
        return json_response(to_scale(out))

    # -----------------------------------------------------------------------------------
    # review APIs (authentication.k8s.io, authorization.k8s.io)
    async def review(self, request: web.Request, t: Target) -> web.Response:
        body, _ = await self.read_body(request, t.info)
        if not isinstance(body, dict):
            raise errors.bad_request("review must be an object")
        from .app import USER_KEY

        user = request.get(USER_KEY) or {}
        out = {"kind": t.info.kind, "apiVersion": t.info.api_version, "metadata": {"creationTimestamp": None}}
        if t.info.kind == "SelfSubjectReview":
            info = {"username": user.get("name", ""), "groups": list(user.get("groups", []))}
            if user.get("uid"):
                info["uid"] = user["uid"]
            if user.get("extra"):
                info["extra"] = user["extra"]
            out["status"] = {"userInfo": info}
        elif t.info.group == "authorization.k8s.io":  # access and rules reviews: authz/reviews.py
            from .authn import USER_INFO_KEY, UserInfo
            from .authz.reviews import review as authorization_review

            requester = request.get(USER_INFO_KEY) or UserInfo.from_dict(user)
            return json_response(authorization_review(self.s.authz, t.info.kind, requester, body, t.namespace), 201)
        else:
            raise errors.method_not_allowed(f"{t.info.kind} is not supported yet")
        return json_response(out, 201)


def _jp(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.strip(".").split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _jp_set(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


def _header_safe(text: str) -> str:
    """A warning text as a header value: quotes escaped, control and non-ASCII characters as \\uXXXX."""
    out = []
    for ch in text.replace("\\", "\\\\").replace('"', '\\"'):
        out.append(ch if 32 <= ord(ch) < 127 else f"\\u{ord(ch):04x}")
    return "".join(out)


def _manager_from_user_agent(ua: str) -> str:
    """Upstream default field manager: the user agent's program name (``kubectl``, ``OpenAPI-Generator``)."""
    if not ua:
        return "unknown"
    return ua.split("/", 1)[0][:128] or "unknown"

