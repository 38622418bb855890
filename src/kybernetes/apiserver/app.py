"""The API server: wiring of store, watch cache, registry, handlers and the aiohttp app."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import ssl
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..api import crd as crdlib
from ..api import errors
from ..api import meta as m
from ..storage.interface import Store
from . import discovery
from . import metrics as metrics_api
from .admission.chain import request_annotator, request_user
from .audit.auditor import annotate as annotate_audit
from .handlers import Handlers, json_response, status_response
from .registry import Registry
from .rest import KUBERNETES_SERVICE_IP, ApiStore, ListOptions, WriteOptions
from . import authn
from .tokens import TokenOptions
from .watchcache import WatchCache

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-kyb",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-22T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
USER_KEY = web.RequestKey("user", dict)
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz")
# what --anonymous-auth opens to requests without credentials (upstream's configurable anonymous
# endpoints); the health checks above need no credentials at all
ANONYMOUS_PATHS = frozenset({"/version", "/version/"})
ANONYMOUS_USER = {"name": "system:anonymous", "groups": ["system:unauthenticated"]}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_UNKNOWN = object()


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str | None = None
    ssl_context: ssl.SSLContext | None = None
    kubelet_client: Any = None            # a kubeletclient.KubeletClient (pods/log, exec, attach, portforward)
    anonymous_auth: bool = False          # True only for plain-HTTP test servers (anonymous = admin)
    anonymous_public: bool = False        # --anonymous-auth: requests without credentials to
                                          # ANONYMOUS_PATHS act as system:anonymous (RBAC decides)
    compaction_interval: float = 300.0
    extra: dict[str, Any] = field(default_factory=dict)
    service_accounts: TokenOptions = field(default_factory=TokenOptions)  # issuer, keys, admission
    authorization_mode: str = "RBAC,Node"  # --authorization-mode: ordered RBAC, Node, AlwaysAllow
    encryption: Any = None                # encryption.EncryptionConfig (--encryption-provider-config)
    audit: Any = None                     # audit.AuditConfig (--audit-policy-file, --audit-log-*)
    static_tokens: Mapping[str, Any] | None = None  # --token-auth-file: token -> authn.UserInfo


def default_advertise_address(host: str) -> str:
    if host not in ("0.0.0.0", "::", ""):
        return host
    from ..util.hostnet import node_ip

    return node_ip()


class ApiServer:
    def __init__(self, store: Store, config: ServerConfig) -> None:
        if config.encryption is not None:  # encryption at rest: everything above sees plaintext
            from .encryption import EncryptingStore

            store = EncryptingStore(store, config.encryption)
        from .audit import Auditor

        self.audit = Auditor(config.audit)
        self.store = store
        self.config = config
        self.registry = Registry()
        self.cache = WatchCache(store)
        self.api = ApiStore(store, self.registry, self.cache)
        self.api.on_crd_change = self._on_crd_change
        self.handlers = Handlers(self)
        from .authz import Authorization  # RBAC + Node authorizers; escalation checks join admission

        self.authz = Authorization(self.api, self.registry, self.store, self.cache, config.authorization_mode)
        from . import tokens

        self.tokens = tokens.ServiceAccountTokens(config.service_accounts)
        self.authn = authn.TokenAuthenticator(self.tokens, self.registry, store, self.cache,
                                              static_tokens=config.static_tokens)
        self.api.service_account_admission.require_service_account = config.service_accounts.require_service_account
        # metrics.k8s.io (kubectl top, HPA); the kubelet client sets metrics.fetch_summary
        self.metrics = metrics_api.MetricsApi(metrics_api.StoreReader(self.api, self.registry),
                                              fetch_summary=config.extra.get("metrics_fetch_summary"))
        if self.metrics.fetch_summary is None and config.kubelet_client is not None:
            kubelets = config.kubelet_client
            self.metrics.fetch_summary = lambda node: kubelets.get_json(node, "/stats/summary")
        self._openapi: Any = None
        self._openapi_gen = -1
        self._tasks: set[asyncio.Task[Any]] = set()
        # verified client identity per TLS connection (the SSL object lives as long as it)
        self._tls_identities: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self.ready = False
        self.started_at = time.time()

    # ---------------------------------------------------------------------------------------
    # lifecycle
    async def start(self) -> None:
        """Start background work (watch cache, compactor) and bootstrap system objects."""
        await self.audit.start()
        self._spawn(self.cache.run(), "watch-cache")
        await self.cache.wait_ready()
        await self._load_crds()
        freed = await self.api.repair_allocations()
        if freed:
            log.info("freed %d service IP / node port claims left without a Service", freed)
        await self._bootstrap()
        await self.authz.start(self._spawn)  # default RBAC policy, authorization caches
        if self.config.compaction_interval > 0:
            from ..storage.compactor import run_compactor

            self._spawn(run_compactor(self.store, interval=self.config.compaction_interval), "compactor")
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self.authz.close()
        self.cache.close_all()
        await self.metrics.cache.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await self.audit.close()  # writes what is queued

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s crashed", name, exc_info=t.exception())

        task.add_done_callback(done)

    async def _bootstrap(self) -> None:
        ns_info = self.registry.lookup("", "v1", "namespaces")
        assert ns_info is not None
        opts = WriteOptions(field_manager="kube-apiserver", field_validation="Ignore")
        for ns in SYSTEM_NAMESPACES:
            try:
                await self.api.create(ns_info, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))
            except errors.StatusError as e:
                if e.code != 409:
                    raise
        await self._ensure_kubernetes_service(opts)
        await self.api.admission.bootstrap()  # system PriorityClasses

    async def _ensure_kubernetes_service(self, opts: WriteOptions) -> None:
        svc_info = self.registry.lookup("", "v1", "services")
        ep_info = self.registry.lookup("", "v1", "endpoints")
        eps_info = self.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
        assert svc_info and ep_info and eps_info
        port = self.config.port
        addr = self.config.advertise_address or default_advertise_address(self.config.host)
        svc = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": KUBERNETES_SERVICE_IP, "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        }
        try:
            await self.api.create(svc_info, "default", svc, WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))
        except errors.StatusError as e:
            if e.code != 409:
                raise
        ep = {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }
        eps = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [addr], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
        for info, obj in ((ep_info, ep), (eps_info, eps)):
            name = obj["metadata"]["name"]
            try:
                cur = await self.api.get(info, "default", name)
            except errors.StatusError:
                await self.api.create(info, "default", obj, WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))
                continue
            if ("subsets" in obj and cur.get("subsets") != obj["subsets"]) or ("endpoints" in obj and cur.get("endpoints") != obj["endpoints"]):
                def upd(c: dict[str, Any] | None, obj: dict[str, Any] = obj) -> dict[str, Any]:
                    assert c is not None
                    c.update({k: v for k, v in obj.items() if k != "metadata"})
                    return c

                await self.api.guaranteed_update(info, "default", name, upd, WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))

    # ---------------------------------------------------------------------------------------
    # custom resources
    async def _load_crds(self) -> None:
        info = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        items, _ = await self.api.list(info, "", ListOptions())
        for crd in items:
            await self._on_crd_change(crd, "terminating" if (crd.get("metadata") or {}).get("deletionTimestamp") else "upsert")

    async def _on_crd_change(self, crd: dict[str, Any] | None, what: str) -> None:
        if crd is None:
            return
        name = m.name_of(crd)
        if what == "deleted":
            self.registry.remove_custom(name)
            return
        resources = crdlib.resources_for_crd(crd)
        self.registry.set_custom(name, resources)
        if what == "terminating" or (crd.get("metadata") or {}).get("deletionTimestamp"):
            self._spawn(self._cleanup_crd(crd), f"crd-cleanup-{name}")

    async def _cleanup_crd(self, crd: dict[str, Any]) -> None:
        """Delete every object of a terminating CRD, then drop its cleanup finalizer."""
        name = m.name_of(crd)
        resources = crdlib.resources_for_crd(crd)
        if resources:
            r = resources[0]
            prefix = r.key_prefix(None)
            while True:
                page = await self.store.list(prefix, limit=500)
                for kv in page.items:
                    try:
                        await self.store.delete(kv.key)
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                if not page.more:
                    break
        info = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None

        def drop(cur: dict[str, Any] | None) -> dict[str, Any]:
            assert cur is not None
            md = cur["metadata"]
            md["finalizers"] = [f for f in md.get("finalizers") or [] if f != CRD_FINALIZER]
            return cur

        try:
            await self.api.guaranteed_update(info, "", name, drop, WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))
        except errors.StatusError as e:
            if e.code != 404:
                raise
        self.registry.remove_custom(name)

    # ---------------------------------------------------------------------------------------
    # OpenAPI
    def openapi(self) -> Any:
        from .openapi import OpenAPIBuilder

        if self._openapi is None or self._openapi_gen != self.registry.generation:
            self._openapi = OpenAPIBuilder(list(self.registry.all()))
            self._openapi_gen = self.registry.generation
        return self._openapi

    # ---------------------------------------------------------------------------------------
    # HTTP
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.audit.outer, self._middleware, self.audit.inner])
        self.audit.install(app)  # Audit-Id header, ResponseStarted of watches
        app.router.add_route("*", "/{tail:.*}", self._route)
        return app

    def _identify(self, request: web.Request) -> dict[str, Any] | None:
        transport = request.transport
        sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
        if sslobj is not None:
            ident = self._tls_identities.get(sslobj, _UNKNOWN)
            if ident is _UNKNOWN:
                # Parsing the certificate costs more than serving a GET: once per connection.
                from ..pki import identity_from_ssl_object

                ident = self._tls_identities[sslobj] = identity_from_ssl_object(sslobj)
            if ident is not None:
                user, groups = ident
                return {"name": user, "groups": list(groups) + ["system:authenticated"]}
        if self.config.anonymous_auth and authn.bearer_token(request.headers.get("Authorization")) is None:
            return {"name": "system:anonymous", "groups": ["system:unauthenticated", "system:masters"]}
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            path = request.path
            if not path.startswith(PUBLIC_PATHS):
                user = self._identify(request)
                if user is None:  # no client certificate: a service-account bearer token?
                    info = await self.authn.authenticate_request(request)
                    user = info.as_dict() if info is not None else None
                if (user is None and self.config.anonymous_public and path in ANONYMOUS_PATHS
                        and not request.headers.get("Authorization")):
                    user = dict(ANONYMOUS_USER)
                if user is None:
                    raise errors.unauthorized()
                request[USER_KEY] = user
                request_user.set(user)  # admission (webhook userInfo) reads it
                request_annotator.set(functools.partial(annotate_audit, request))  # admission's audit annotations
                request[authn.USER_INFO_KEY] = authn.UserInfo.from_dict(user)  # for an authorizer
                if not self.ready and path != "/version":
                    raise errors.unavailable("the API server is starting")
                self.authz.authorize_request(request, request[authn.USER_INFO_KEY])  # 403 when denied
            return await handler(request)  # type: ignore[no-any-return]
        except errors.StatusError as e:
            return status_response(e)
        except web.HTTPRequestEntityTooLarge:
            return status_response(errors.too_large())
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - the one place that turns bugs into a Status
            log.exception("internal error serving %s %s", request.method, request.path)
            return status_response(errors.internal(f"{type(e).__name__}: {e}"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        method = request.method
        accept = request.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            if path.startswith("/readyz") and not self.ready:
                return web.Response(text="[-]kybernetes-ready failed: not ready\nreadyz check failed", status=500)
            if request.query.get("verbose") is not None:
                return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{path.strip('/')} check passed\n")
            return web.Response(text="ok")
        if path in ("/.well-known/openid-configuration", "/openid/v1/jwks"):
            from . import tokens

            return await tokens.discovery(self, path)
        if path == "/version":
            return json_response(VERSION)
        if method != "GET" and (len(parts) < 3 or parts[0] not in ("api", "apis")):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if path == "/api":
            agg = discovery.wants_aggregated(accept)
            if agg:
                doc = discovery.aggregated(self.registry, core=True, api_version="apidiscovery.k8s.io/" + ("v2" if agg == discovery.AGGREGATED_CT else "v2beta1"))
                return json_response_ct(doc, agg)
            addr = f"{self.config.advertise_address or default_advertise_address(self.config.host)}:{self.config.port}"
            return json_response(discovery.api_versions(addr))
        if path == "/apis":
            agg = discovery.wants_aggregated(accept)
            if agg:
                doc = discovery.aggregated(self.registry, core=False, api_version="apidiscovery.k8s.io/" + ("v2" if agg == discovery.AGGREGATED_CT else "v2beta1"))
                doc = metrics_api.aggregated_with_metrics(doc)
                return json_response_ct(doc, agg)
            return json_response(metrics_api.group_list_with_metrics(discovery.api_group_list(self.registry)))
        if parts[:1] == ["openapi"]:
            return await self._openapi_route(request, parts)
        if parts[:1] == ["api"] and len(parts) >= 2:
            if len(parts) == 2:
                doc = discovery.api_resource_list(self.registry, "", parts[1])
                if doc is None:
                    raise errors.path_not_found()
                return json_response(doc)
            return await self.handlers.resource(request, "", parts[1], parts[2:])
        if parts[:2] == ["apis", metrics_api.GROUP]:
            return await self.metrics.handle(request, parts[2:])
        if parts[:1] == ["apis"] and len(parts) >= 2:
            if len(parts) == 2:
                doc = discovery.api_group(self.registry, parts[1])
                if doc is None:
                    raise errors.path_not_found()
                return json_response(doc)
            if len(parts) == 3:
                doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
                if doc is None:
                    raise errors.path_not_found()
                return json_response(doc)
            return await self.handlers.resource(request, parts[1], parts[2], parts[3:])
        if path == "/":
            return json_response({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3", "/readyz", "/version"]})
        raise errors.path_not_found()

    async def _openapi_route(self, request: web.Request, parts: list[str]) -> web.Response:
        builder = self.openapi()
        if parts == ["openapi", "v2"]:
            return web.Response(body=await asyncio.to_thread(builder.v2_document), content_type="application/json")
        if parts == ["openapi", "v3"]:
            return json_response(await asyncio.to_thread(builder.v3_index))
        if len(parts) > 2 and parts[1] == "v3":
            gv = "/".join(parts[2:])
            try:
                doc = await asyncio.to_thread(builder.v3_document, gv)
            except KeyError:
                raise errors.path_not_found()
            if doc is None:
                raise errors.path_not_found()
            want = request.query.get("hash")
            current = builder.v3_hash(gv)
            if want and want != current:
                raise web.HTTPMovedPermanently(location=f"/openapi/v3/{gv}?hash={current}")
            headers = {"Etag": f'"{current}"', "Vary": "Accept"}
            if want:
                headers["Cache-Control"] = "public, immutable"
                headers["Expires"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 365 * 86400))
            return web.Response(body=doc, content_type="application/json", headers=headers)
        raise errors.path_not_found()


def json_response_ct(obj: Any, content_type: str) -> web.Response:
    import orjson

    resp = web.Response(body=orjson.dumps(obj))
    resp.headers["Content-Type"] = content_type
    return resp


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Once per process: collect, then exempt everything alive after startup (modules, the
    OpenAPI definitions behind validation and defaulting, ...) from future collections. Full
    collections scan every tracked object; without this each one re-walks those ~50,000
    long-lived objects, which shows up as a pause in watch delivery latency."""
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()
    # and collect far less often: a write allocates hundreds of short-lived containers, and with
    # the default (700, 10, 10) the collector ran several times per request under load
    gc.set_threshold(*(max(c, t) for c, t in zip(gc.get_threshold(), (50_000, 20, 20))))


GIL_SWITCH_INTERVAL = 0.0005  # seconds (CPython's default is 0.005)


def shorten_gil_switch_interval() -> None:
    """Let the store's threads take the GIL back sooner (never lengthens the interval).

    The SQLite writer thread releases the GIL inside every statement and must take it back from
    the event loop thread, which under load always holds it: with the default 5 ms interval each
    of the writer's several statements per write could wait up to 5 ms, so writes queued behind
    the writer (pod creates took ~300 ms with 64 in flight) while the loop had CPU to spare. The
    loop's own point reads (``SqliteStore.get``) wait the same way for the writer.
    """
    import sys

    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))


async def serve(server: ApiServer, *, sock_ready: "asyncio.Future[int] | None" = None) -> None:
    """Run the HTTP(S) server until cancelled."""
    app = server.make_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, server.config.host, server.config.port, ssl_context=server.config.ssl_context, backlog=1024, reuse_address=True)
    await site.start()
    port = server.config.port
    if port == 0 and site._server is not None:  # type: ignore[attr-defined]
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        server.config.port = port
    try:
        await server.start()
        freeze_startup_heap()
        shorten_gil_switch_interval()
        if sock_ready is not None and not sock_ready.done():
            sock_ready.set_result(port)
        await asyncio.Event().wait()
    finally:
        await server.stop()
        await runner.cleanup()

