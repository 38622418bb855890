"""Service-account tokens on the API server: TokenRequest and OIDC discovery.

* ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`` takes an
  ``authentication.k8s.io/v1`` TokenRequest (``spec.audiences``, ``spec.expirationSeconds``,
  ``spec.boundObjectRef``) and answers 201 with ``status.token`` and
  ``status.expirationTimestamp``, as upstream's ``TokenREST``: audiences default to the API
  server's, the expiry defaults to 3600 s and must be within [600 s, 2^32 s] (422 otherwise), an
  optional cap shortens it with a warning, a bound Pod/Secret/Node must exist (and match a given
  uid: 409), a Pod must run as that service account (400), and the kubelet's 3607 s pod-bound
  projected token is extended to a year with ``warnafter`` (``--service-account-extend-token-
  expiration``, on by default).
* ``/.well-known/openid-configuration`` and ``/openid/v1/jwks`` publish the issuer and public
  keys, so other systems can verify our tokens (served to authenticated users, as upstream's
  default RBAC does).

:class:`ServiceAccountTokens` holds one server's keys and issuer settings. Keys load lazily
(file reads and RSA key generation in a thread): from ``TokenOptions.signing_key_file`` (the
cluster's ``pki/sa.key``), or, when none is configured (in-process test servers), from a key
generated in memory for the life of the process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from aiohttp import web

from ..api import errors, validation
from ..api import meta as m
from ..pki import satoken
from .handlers import _header_safe, json_response

if TYPE_CHECKING:
    from .app import ApiServer
    from .handlers import Handlers, Target

Obj = dict[str, Any]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
GROUP, VERSION, KIND = "authentication.k8s.io", "v1", "TokenRequest"
OIDC_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
BINDABLE_KINDS = ("Pod", "Secret", "Node")


@dataclass
class TokenOptions:
    """Service-account settings of one API server (upstream flag in brackets)."""

    # [--service-account-issuer] the first signs; every one is accepted when verifying
    issuers: tuple[str, ...] = (DEFAULT_ISSUER,)
    # [--api-audiences] audiences the API server accepts; default: the issuers
    api_audiences: tuple[str, ...] = ()
    # [--service-account-signing-key-file] RSA private key; None: an in-memory key per process
    signing_key_file: str | None = None
    # [--service-account-key-file] more public (or private) keys accepted when verifying
    key_files: tuple[str, ...] = ()
    # [--service-account-max-token-expiration] 0: no cap
    max_expiration_seconds: int = 0
    # [--service-account-extend-token-expiration]
    extend_expiration: bool = True
    # [--service-account-jwks-uri] default: https://<advertised address>/openid/v1/jwks
    jwks_uri: str | None = None
    # ServiceAccount admission: reject pods whose service account does not exist (upstream).
    # False admits them without the token volume (in-process test servers run no controllers).
    require_service_account: bool = False
    # leeway for exp/nbf/iat and for deletion timestamps of bound objects
    leeway_seconds: int = satoken.DEFAULT_LEEWAY_SECONDS

    @property
    def audiences(self) -> tuple[str, ...]:
        return self.api_audiences or self.issuers


class ServiceAccountTokens:
    """One API server's token keys and settings: signs TokenRequests, verifies bearer tokens."""

    def __init__(self, options: TokenOptions | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.options = options or TokenOptions()
        if not self.options.issuers:
            raise ValueError("at least one service-account issuer is required")
        self.clock = clock
        self._signer: satoken.Signer | None = None
        self._keys: tuple[satoken.VerificationKey, ...] = ()
        self._lock = asyncio.Lock()

    @property
    def issuer(self) -> str:
        return self.options.issuers[0]

    @property
    def audiences(self) -> tuple[str, ...]:
        return self.options.audiences

    @property
    def keys(self) -> tuple[satoken.VerificationKey, ...]:
        """Keys accepted for verification (empty until :meth:`load` ran)."""
        return self._keys

    @property
    def loaded(self) -> bool:
        return self._signer is not None

    async def load(self) -> satoken.Signer:
        """Load (once) the signing key and the verification keys; returns the signer."""
        if self._signer is not None:
            return self._signer
        async with self._lock:
            if self._signer is None:
                signer, keys = await asyncio.to_thread(_load_keys, self.options)
                self._keys = keys
                self._signer = signer
        return self._signer

    def use_signing_key(self, private_key: Any) -> None:
        """Install a signing key directly (tests; also the first verification key)."""
        signer = satoken.Signer.of(private_key)
        self._signer = signer
        self._keys = (signer.verification_key, *[k for k in self._keys if k.kid != signer.kid])

    async def sign(self, claims: Obj) -> str:
        return (await self.load()).sign(claims)

    def jwks_uri(self, external_address: str) -> str:
        return self.options.jwks_uri or f"https://{external_address}{JWKS_PATH}"


def _load_keys(opts: TokenOptions) -> tuple[satoken.Signer, tuple[satoken.VerificationKey, ...]]:
    """Blocking: read key files (or generate an in-memory key)."""
    if opts.signing_key_file:
        signer = satoken.Signer.of(satoken.load_private_key(Path(opts.signing_key_file).read_bytes()))
    else:
        signer = satoken.Signer.of(satoken.generate_private_key())
    keys = [signer.verification_key]
    for f in opts.key_files:
        for pub in satoken.load_public_keys(Path(f).read_bytes()):
            k = satoken.VerificationKey.of(pub)
            if all(k.kid != have.kid for have in keys):
                keys.append(k)
    return signer, tuple(keys)


# --------------------------------------------------------------------------- TokenRequest (pure)


@dataclass(frozen=True)
class BoundRef:
    kind: str
    api_version: str
    name: str
    uid: str


@dataclass(frozen=True)
class TokenSpec:
    """A checked TokenRequest spec (audiences still empty when the client sent none)."""

    audiences: tuple[str, ...]
    expiration_seconds: int
    bound: BoundRef | None
    request_meta: Obj = field(default_factory=dict)


def parse_token_request(body: Any, namespace: str, name: str) -> TokenSpec:
    """Decode and check a TokenRequest body (400 for wrong types, 422 for a name/namespace that
    does not match the URL). The expiry range is checked later (:func:`validate_expiration`),
    after the service account lookup, as upstream orders it."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a TokenRequest object")
    av, kind = body.get("apiVersion"), body.get("kind")
    if av not in (None, "", f"{GROUP}/{VERSION}") or kind not in (None, "", KIND):
        raise errors.bad_request(f"the body must be a {KIND} of {GROUP}/{VERSION}, not {kind} of {av}")
    res = validation.check_schema(GROUP, VERSION, KIND, {**body, "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND})
    if res.type_errors:
        c = res.type_errors[0]
        raise errors.bad_request(f"{c.field}: {c.message}" if c.field else c.message, res.type_errors)
    md = body.get("metadata") or {}
    if md.get("name") and md["name"] != name:
        raise errors.invalid(KIND, GROUP, name, [errors.invalid_value("metadata.name", md["name"], "must match the service account name if specified")])
    if md.get("namespace") and md["namespace"] != namespace:
        raise errors.invalid(KIND, GROUP, name, [errors.invalid_value("metadata.namespace", md["namespace"], "must match the service account namespace if specified")])
    spec = body.get("spec") or {}
    exp = spec.get("expirationSeconds")
    ref = spec.get("boundObjectRef")
    bound = None
    if isinstance(ref, dict):
        bound = BoundRef(kind=ref.get("kind") or "", api_version=ref.get("apiVersion") or "",
                         name=ref.get("name") or "", uid=ref.get("uid") or "")
    return TokenSpec(
        audiences=tuple(spec.get("audiences") or ()),
        expiration_seconds=DEFAULT_EXPIRATION_SECONDS if exp is None else int(exp),
        bound=bound,
        request_meta={k: md[k] for k in ("labels", "annotations") if md.get(k)},
    )


def validate_expiration(seconds: int) -> None:
    """422 unless ``seconds`` is within upstream's [10 minutes, 2^32 s]."""
    causes = []
    if seconds < MIN_EXPIRATION_SECONDS:
        causes.append(errors.invalid_value("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"))
    if seconds > MAX_EXPIRATION_SECONDS:
        causes.append(errors.invalid_value("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"))
    if causes:
        raise errors.invalid(KIND, GROUP, "", causes)


@dataclass(frozen=True)
class ExpirationPlan:
    spec_seconds: int         # what the response reports (after the cap)
    token_seconds: int        # the token's real lifetime
    warn_after_seconds: int   # 0 unless extended
    warning: str = ""


def plan_expiration(requested: int, *, max_seconds: int, extend: bool, pod_bound: bool,
                    audiences: Sequence[str], api_audiences: Sequence[str]) -> ExpirationPlan:
    """Apply the max-expiration cap and the 3607 s → one year extension of pod-bound tokens
    for the API server's own audiences (upstream's safe rollout of bound tokens)."""
    warning = ""
    spec = requested
    if max_seconds > 0 and spec > max_seconds:
        warning = f"requested expiration of {spec} seconds shortened to {max_seconds} seconds"
        spec = max_seconds
    if (extend and pod_bound and spec == satoken.WARN_ONLY_EXPIRATION_SECONDS
            and set(audiences) <= set(api_audiences)):
        return ExpirationPlan(spec, max(satoken.EXTENDED_EXPIRATION_SECONDS, max_seconds), spec, warning)
    return ExpirationPlan(spec, spec, 0, warning)


def _rfc3339(ts: float) -> str:
    return m.now_rfc3339(dt.datetime.fromtimestamp(ts, dt.timezone.utc))


# --------------------------------------------------------------------------- TokenRequest (I/O)


async def create_token(handlers: "Handlers", request: web.Request, t: "Target") -> web.Response:
    """Serve ``POST .../serviceaccounts/{name}/token``."""
    if request.method != "POST":
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    server = handlers.s
    body, _ = await handlers.read_body(request, None)
    out, warnings = await issue_token(server, t.namespace, t.name, body)
    resp = json_response(out, status=201)
    for w in warnings:
        resp.headers.add("Warning", '299 - "' + _header_safe(w) + '"')
    return resp


async def issue_token(server: "ApiServer", namespace: str, name: str, body: Any) -> tuple[Obj, list[str]]:
    """Check the request, look up the service account and bound object, sign the token.
    Returns the TokenRequest to answer with and the warnings to send."""
    svc = server.tokens
    spec = parse_token_request(body, namespace, name)
    sa = await _get(server, "serviceaccounts", namespace, name)
    sa_md = sa.get("metadata") or {}
    audiences = spec.audiences or svc.audiences
    validate_expiration(spec.expiration_seconds)
    pod = secret = node = None
    if spec.bound is not None:
        pod, secret, node = await _bound_object(server, namespace, name, spec.bound)
    await _node_restriction(server, namespace, name, spec.bound)
    plan = plan_expiration(spec.expiration_seconds, max_seconds=svc.options.max_expiration_seconds,
                           extend=svc.options.extend_expiration, pod_bound=pod is not None,
                           audiences=audiences, api_audiences=svc.audiences)
    now = svc.clock()
    claims = satoken.bound_claims(
        issuer=svc.issuer, audiences=audiences, namespace=namespace,
        service_account=satoken.Ref(name, str(sa_md.get("uid") or "")), now=now,
        expiration_seconds=plan.token_seconds, pod=pod, secret=secret, node=node,
        warn_after_seconds=plan.warn_after_seconds,
    )
    token = await svc.sign(claims)
    out_spec: Obj = {"audiences": list(audiences), "expirationSeconds": plan.spec_seconds}
    if spec.bound is not None:
        out_spec["boundObjectRef"] = {k: v for k, v in (("kind", spec.bound.kind), ("apiVersion", spec.bound.api_version),
                                                         ("name", spec.bound.name), ("uid", spec.bound.uid)) if v}
    out = {
        "kind": KIND, "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {"name": name, "namespace": namespace, "uid": sa_md.get("uid"),
                     "creationTimestamp": _rfc3339(now), **spec.request_meta},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(int(now) + plan.spec_seconds)},
    }
    return out, [plan.warning] if plan.warning else []


async def _node_restriction(server: "ApiServer", namespace: str, sa_name: str, bound: "BoundRef | None") -> None:
    """NodeRestriction for TokenRequests: a kubelet gets tokens only for pods on its node."""
    from .admission.chain import request_user, user_info
    from .admission.noderestriction import node_name_of, token_request_needs_pod, token_request_problem

    node = node_name_of(user_info(request_user.get()))
    if node is None:
        return
    ref = None if bound is None else {"apiVersion": bound.api_version, "kind": bound.kind, "name": bound.name,
                                      "uid": bound.uid}
    pod = await _get(server, "pods", namespace, bound.name) if bound is not None and token_request_needs_pod(ref) else None
    problem = token_request_problem(node, ref, pod)
    if problem:
        raise errors.StatusError(403, "Forbidden", f'serviceaccounts "{sa_name}" is forbidden: {problem}',
                                 {"name": sa_name, "kind": "serviceaccounts"})


async def _get(server: "ApiServer", plural: str, namespace: str, name: str) -> Obj:
    info = server.registry.lookup("", "v1", plural)
    assert info is not None
    return await server.api.get(info, namespace if info.namespaced else "", name)


async def _bound_object(server: "ApiServer", namespace: str, sa_name: str,
                        ref: BoundRef) -> tuple[satoken.Ref | None, satoken.Ref | None, satoken.Ref | None]:
    """(pod, secret, node) refs for the token's claims; raises the upstream errors."""
    group, _, version = ref.api_version.rpartition("/")
    if group != "" or ref.kind not in BINDABLE_KINDS:
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={ref.kind}")
    plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}[ref.kind]
    obj = await _get(server, plural, namespace, ref.name)
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    pod = secret = node = None
    if ref.kind == "Pod":
        if (obj.get("spec") or {}).get("serviceAccountName") != sa_name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with different serviceaccount name.')
        pod = satoken.Ref(ref.name, uid)
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            try:
                n = await _get(server, "nodes", "", node_name)
                node = satoken.Ref(node_name, str((n.get("metadata") or {}).get("uid") or ""))
            except errors.StatusError as e:
                if e.code != 404:
                    raise
                node = satoken.Ref(node_name, "")
    elif ref.kind == "Secret":
        secret = satoken.Ref(ref.name, uid)
    else:
        node = satoken.Ref(ref.name, uid)
    if ref.uid and ref.uid != uid:
        raise errors.conflict(ref.kind, "", ref.name, f"the UID in the bound object reference ({ref.uid}) does not match the UID in record. The object might have been deleted and then recreated")
    return pod, secret, node


# --------------------------------------------------------------------------- OIDC discovery


def openid_configuration(issuer: str, jwks_uri: str) -> Obj:
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [satoken.ALGORITHM],
    }


def discovery_enabled(issuer: str) -> bool:
    """Upstream serves discovery only for an https issuer URL (tokens name it in ``iss``)."""
    u = urlparse(issuer)
    return u.scheme == "https" and bool(u.netloc) and not u.query and not u.fragment


async def discovery(server: "ApiServer", path: str) -> web.Response:
    """Serve ``/.well-known/openid-configuration`` or ``/openid/v1/jwks``."""
    svc = server.tokens
    if not discovery_enabled(svc.issuer):
        raise errors.path_not_found()
    await svc.load()
    headers = {"Cache-Control": "public, max-age=3600"}
    if path == OIDC_CONFIG_PATH:
        from .app import default_advertise_address

        addr = f"{server.config.advertise_address or default_advertise_address(server.config.host)}:{server.config.port}"
        return json_response(openid_configuration(svc.issuer, svc.jwks_uri(addr)), headers=headers)
    resp = json_response(satoken.jwks(svc.keys), headers=headers)
    resp.content_type = "application/jwk-set+json"
    return resp
