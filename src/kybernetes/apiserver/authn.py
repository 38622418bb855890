"""Bearer-token authentication of service accounts (the JWT half of upstream's authenticators).

Client certificates are checked first by the app (``ApiServer._identify``); a request without
one that carries ``Authorization: Bearer <token>`` comes here. A token is accepted when

1. it is an RS256 JWS signed by one of the server's service-account keys (``pki.satoken``);
2. its issuer is one of ``--service-account-issuer`` (bound tokens, whose audiences must meet
   the API server's audiences) or ``kubernetes/serviceaccount`` (legacy secret-based tokens,
   which must equal the ``token`` of their still-existing Secret);
3. ``exp``/``nbf``/``iat`` hold at the server's clock with 60 s of leeway;
4. the service account still exists with the token's uid, and so does the bound Pod, Secret
   or Node (an object whose deletionTimestamp passed more than the leeway ago counts as gone).

The user is ``system:serviceaccount:<ns>:<name>`` with uid = the service account's uid, groups
``system:serviceaccounts``, ``system:serviceaccounts:<ns>``, ``system:authenticated`` and, for
pod-bound tokens, extra ``authentication.kubernetes.io/pod-name``/``pod-uid`` (``node-name``/
``node-uid`` when recorded, ``credential-id`` = ``JTI=<jti>``). Any failure means "invalid
token": the middleware answers 401 exactly as for a request without credentials (also when
anonymous access is on, as upstream). Nothing here raises to the caller.

Cost per request: verified tokens are memoised (signature checked once per token), and the
existence lookups go through :class:`LiveObjects`, a point-read cache that the watch cache
invalidates key by key, so a steady stream of requests does no store reads at all while a
deleted pod's token stops working as soon as the deletion reaches the watch cache.

A token listed in ``--token-auth-file`` (``tokenfile.py``, none by default) is checked first and
names its user directly.

A token of the form ``<6>.<16>`` lower-case alphanumerics is a *bootstrap token* instead
(``bootstraptoken.py``): its ``kube-system/bootstrap-token-<id>`` Secret decides, looked up
through the same :class:`LiveObjects` cache (which keeps such Secrets' decoded data).

The result is a :class:`UserInfo` (kept on the request under ``USER_INFO_KEY``; its dict form
under the app's ``USER_KEY``) so an authorizer can be added later without touching this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..api import meta as m
from ..pki import satoken
from . import bootstraptoken
from .watchcache import CachedEvent, WatchCache, Watcher, decode_value

if TYPE_CHECKING:
    from ..storage.interface import Store
    from .registry import Registry
    from .tokens import ServiceAccountTokens

log = logging.getLogger(__name__)

ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
AUTHENTICATED_GROUP = "system:authenticated"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
LEGACY_INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
VERIFIED_CACHE_SIZE = 4096
OBJECT_CACHE_SIZE = 20000


@dataclass(frozen=True)
class UserInfo:
    """Who made a request (upstream's ``user.Info``)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The app's request-user dict: name, groups (+ uid, extra when set)."""
        d: dict[str, Any] = {"name": self.name, "groups": list(self.groups)}
        if self.uid:
            d["uid"] = self.uid
        if self.extra:
            d["extra"] = {k: list(v) for k, v in self.extra.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UserInfo:
        return cls(name=str(d.get("name") or ""), uid=str(d.get("uid") or ""),
                   groups=tuple(d.get("groups") or ()),
                   extra={k: tuple(v) for k, v in (d.get("extra") or {}).items()})


USER_INFO_KEY = web.RequestKey("user_info", UserInfo)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None (absent,
    another scheme, or an empty token: upstream treats those as "no token")."""
    if not authorization:
        return None
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


def service_account_user(claims: satoken.TokenClaims) -> UserInfo:
    """The user a validated token stands for."""
    extra: dict[str, tuple[str, ...]] = {}
    if claims.pod is not None and claims.pod.uid:
        extra[EXTRA_POD_NAME] = (claims.pod.name,)
        extra[EXTRA_POD_UID] = (claims.pod.uid,)
    if claims.node is not None:
        extra[EXTRA_NODE_NAME] = (claims.node.name,)
        if claims.node.uid:
            extra[EXTRA_NODE_UID] = (claims.node.uid,)
    if claims.jti:
        extra[EXTRA_CREDENTIAL_ID] = (f"JTI={claims.jti}",)
    return UserInfo(
        name=claims.username, uid=claims.service_account.uid,
        groups=(ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{claims.namespace}", AUTHENTICATED_GROUP),
        extra=extra,
    )


# --------------------------------------------------------------------------- live objects


@dataclass(frozen=True, slots=True)
class Seen:
    """What token validation needs to know about one stored object."""

    uid: str
    deleted_at: float | None = None      # deletionTimestamp (unix seconds)
    token: bytes | None = None           # Secrets: data.token, decoded
    legacy_invalid: bool = False         # Secrets: the legacy-token-invalid-since label is set
    bootstrap: Mapping[str, str] | None = None  # bootstrap-token Secrets: their decoded data


def summarize(obj: Mapping[str, Any]) -> Seen:
    md = obj.get("metadata") or {}
    ts = m.parse_time(md.get("deletionTimestamp"))
    token = None
    raw = (obj.get("data") or {}).get("token") if obj.get("kind") == "Secret" else None
    if isinstance(raw, str):
        try:
            token = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            token = None
    bootstrap = None
    if obj.get("kind") == "Secret" and obj.get("type") == bootstraptoken.SECRET_TYPE:
        bootstrap = bootstraptoken.decoded_data(obj)
    return Seen(uid=str(md.get("uid") or ""), deleted_at=ts.timestamp() if ts else None, token=token,
                legacy_invalid=bool((md.get("labels") or {}).get(LEGACY_INVALID_SINCE_LABEL)),
                bootstrap=bootstrap)


_MISSING = object()


class LiveObjects:
    """Cached point reads of storage keys, each entry dropped when the watch cache reports a
    change under its key (so lookups are free in the steady state and never stale for long).

    One watcher per prefix feeds invalidations; if a watcher ends (overflow, compaction), the
    whole cache is dropped and watching restarts at the next lookup. A lookup whose key changes
    while its read is in flight is answered but not cached.
    """

    def __init__(self, store: "Store", cache: WatchCache, prefixes: tuple[str, ...], *,
                 max_entries: int = OBJECT_CACHE_SIZE) -> None:
        self.store = store
        self.cache = cache
        self.prefixes = prefixes
        self.max_entries = max_entries
        self._entries: dict[str, Seen | None] = {}
        self._watchers: list[Watcher] = []
        self._pending: dict[str, int] = {}
        self._stale: set[str] = set()
        self.reads = 0

    def _ensure_watching(self) -> None:
        if self._watchers and not any(w.closed for w in self._watchers):
            return
        for w in self._watchers:
            w.close()
        self._entries.clear()
        self._stale.update(self._pending)
        rev = self.cache.revision
        self._watchers = [self.cache.watch(p, rev) for p in self.prefixes]
        for w in self._watchers:
            w.start(self._on_events)

    def _on_events(self, batch: list[CachedEvent]) -> bool:
        for ev in batch:
            self._entries.pop(ev.key, None)
            if ev.key in self._pending:
                self._stale.add(ev.key)
        return True

    async def get(self, key: str, *, fresh: bool = False) -> Seen | None:
        """The object at ``key`` (None when it does not exist); ``fresh`` skips the cache."""
        return (await self.lookup(key, fresh=fresh))[0]

    async def lookup(self, key: str, *, fresh: bool = False) -> tuple[Seen | None, bool]:
        """(object or None, whether it came from the cache)."""
        self._ensure_watching()
        hit = self._entries.get(key, _MISSING) if not fresh else _MISSING
        if hit is not _MISSING:
            return hit, True  # type: ignore[return-value]
        self._pending[key] = self._pending.get(key, 0) + 1
        try:
            self.reads += 1
            kv = await self.store.get(key)
        finally:
            left = self._pending[key] - 1
            if left:
                self._pending[key] = left
            else:
                del self._pending[key]
        seen = summarize(decode_value(kv.value, kv.mod_revision)) if kv is not None else None
        if key in self._stale:
            if key not in self._pending:
                self._stale.discard(key)
        else:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = seen
        return seen, False

    def close(self) -> None:
        for w in self._watchers:
            w.close()
        self._watchers = []
        self._entries.clear()


# --------------------------------------------------------------------------- the authenticator


class TokenAuthenticator:
    """Authenticates ``Authorization: Bearer`` service-account tokens (see the module doc)."""

    def __init__(self, tokens: "ServiceAccountTokens", registry: "Registry", store: "Store", cache: WatchCache,
                 *, clock: Callable[[], float] | None = None,
                 static_tokens: Mapping[str, UserInfo] | None = None) -> None:
        self.tokens = tokens
        self.static_tokens = dict(static_tokens or {})
        self.registry = registry
        self._clock = clock
        self._keyfn: dict[str, Callable[[str, str], str]] = {}
        prefixes = []
        for plural in ("serviceaccounts", "pods", "secrets", "nodes"):
            info = registry.lookup("", "v1", plural)
            assert info is not None
            self._keyfn[plural] = info.key
            prefixes.append(info.key_prefix(None))
        self.objects = LiveObjects(store, cache, tuple(prefixes))
        self._verified: dict[str, satoken.TokenClaims] = {}
        self.bootstrap = bootstraptoken.BootstrapTokenAuthenticator(
            self.objects, self._keyfn["secrets"], lambda: (self._clock or self.tokens.clock)())

    async def authenticate_request(self, request: web.Request) -> UserInfo | None:
        """The user of the request's bearer token; None without one or when it is invalid."""
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        return await self.authenticate_token(token)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The service-account user ``token`` proves, or None. Never raises (but lets
        cancellation through)."""
        try:
            return await self._authenticate(token)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - an unexpected failure is an invalid token, never a 500
            log.warning("service-account token check failed unexpectedly", exc_info=True)
            return None

    def verify(self, token: str) -> satoken.TokenClaims | None:
        """Signature, issuer and audience checks (no clock, no lookups); memoised per token."""
        hit = self._verified.get(token)
        if hit is not None:
            return hit
        payload = satoken.decode(token, self.tokens.keys)
        claims = satoken.parse_claims(payload) if payload is not None else None
        if claims is None:
            return None
        if claims.legacy:
            pass  # no audience: implicitly the API server's, as upstream
        elif claims.issuer not in self.tokens.options.issuers:
            return None
        elif not set(claims.audiences) & set(self.tokens.audiences):
            return None
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = claims
        return claims

    async def _authenticate(self, token: str) -> UserInfo | None:
        static = self.static_tokens.get(token)
        if static is not None:
            return static
        if bootstraptoken.parse_token(token) is not None:  # <id>.<secret>: never a JWT
            found = await self.bootstrap.authenticate(token)
            return UserInfo(name=found[0], groups=tuple(found[1])) if found else None
        if not self.tokens.loaded:
            await self.tokens.load()
        claims = self.verify(token)
        if claims is None:
            return None
        now = (self._clock or self.tokens.clock)()
        if satoken.check_time(claims, now, self.tokens.options.leeway_seconds) is not None:
            return None
        if claims.legacy:
            ok = await self._check_legacy(token, claims)
        else:
            ok = await self._check_bound(claims, now)
        return service_account_user(claims) if ok else None

    async def _alive(self, plural: str, namespace: str, ref: satoken.Ref, now: float) -> bool:
        """Whether the object still exists with the token's uid. A "no" from the cache is
        re-read from the store (as upstream's getter falls back to a live GET), so an object
        created a moment ago is never refused because its watch event is still on its way."""
        key = self._keyfn[plural](namespace, ref.name)
        seen, cached = await self.objects.lookup(key)
        if not self._ok(seen, ref, now) and cached:
            seen, _ = await self.objects.lookup(key, fresh=True)
        return self._ok(seen, ref, now)

    def _ok(self, seen: Seen | None, ref: satoken.Ref, now: float) -> bool:
        if seen is None or seen.uid != ref.uid:
            return False
        return seen.deleted_at is None or seen.deleted_at >= now - self.tokens.options.leeway_seconds

    async def _check_bound(self, c: satoken.TokenClaims, now: float) -> bool:
        if not await self._alive("serviceaccounts", c.namespace, c.service_account, now):
            return False
        if c.secret is not None and not await self._alive("secrets", c.namespace, c.secret, now):
            return False
        if c.pod is not None:
            return await self._alive("pods", c.namespace, c.pod, now)
        if c.node is not None:  # bound to the Node itself
            return await self._alive("nodes", "", c.node, now)
        return True

    async def _check_legacy(self, token: str, c: satoken.TokenClaims) -> bool:
        assert c.secret is not None
        raw = token.encode("ascii")

        def secret_ok(s: Seen | None) -> bool:
            return (s is not None and s.deleted_at is None and not s.legacy_invalid and s.token is not None
                    and hmac.compare_digest(s.token, raw))

        def sa_ok(s: Seen | None) -> bool:
            return s is not None and s.deleted_at is None and s.uid == c.service_account.uid

        for key, ok in ((self._keyfn["secrets"](c.namespace, c.secret.name), secret_ok),
                        (self._keyfn["serviceaccounts"](c.namespace, c.service_account.name), sa_ok)):
            seen, cached = await self.objects.lookup(key)
            if not ok(seen) and cached:
                seen, _ = await self.objects.lookup(key, fresh=True)
            if not ok(seen):
                return False
        return True

    def close(self) -> None:
        self.objects.close()
