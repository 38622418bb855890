"""Service-account tokens: RS256 JSON Web Tokens signed with the cluster's service-account key.

Two token shapes exist, as upstream:

* **bound tokens** (TokenRequest, projected volumes): issuer = the API server's
  ``--service-account-issuer``, an audience list, ``exp``/``iat``/``nbf``/``jti``, and the private
  claim ``kubernetes.io``: ``{namespace, serviceaccount{name,uid}, pod|secret|node{name,uid},
  warnafter}``;
* **legacy tokens** (secret-based, long-lived): issuer ``kubernetes/serviceaccount``, no audience
  and no expiry, flat private claims ``kubernetes.io/serviceaccount/{namespace,secret.name,
  service-account.name,service-account.uid}``.

The header is ``{"alg":"RS256","kid":<key id>}`` where the key id is the unpadded base64url
SHA-256 of the public key's DER (SubjectPublicKeyInfo) encoding, so relying parties pick the
right key from the JWKS document.

Parsing is strict and total: :func:`decode` and :func:`parse_claims` return ``None`` for anything
malformed, tampered, oversized or signed with an unknown key; they never raise. Base64url
segments must be canonical (no padding, no stray bits), so a changed character always changes
the decoded bytes. Signing and verification are CPU work of well under a millisecond and run on
the caller's thread; key generation and file reads belong in ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "RS256"
LEGACY_ISSUER = "kubernetes/serviceaccount"
USER_PREFIX = "system:serviceaccount:"
PRIVATE_CLAIM = "kubernetes.io"
LEGACY_NAMESPACE = "kubernetes.io/serviceaccount/namespace"
LEGACY_SECRET_NAME = "kubernetes.io/serviceaccount/secret.name"
LEGACY_SA_NAME = "kubernetes.io/serviceaccount/service-account.name"
LEGACY_SA_UID = "kubernetes.io/serviceaccount/service-account.uid"

# The projected-volume token (3607 s) that upstream silently extends to a year (``warnafter``).
WARN_ONLY_EXPIRATION_SECONDS = 60 * 60 + 7
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 60 * 60
DEFAULT_LEEWAY_SECONDS = 60          # go-jose's jwt.DefaultLeeway, used by upstream
MAX_TOKEN_LENGTH = 16 * 1024         # longer bearer tokens are refused before any parsing
RSA_KEY_BITS = 2048

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- base64url


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: raises ValueError on any other alphabet, padding or a
    non-canonical final character."""
    if not isinstance(text, str) or not _SEGMENT.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError("not canonical base64url") from e
    if b64url_encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


# --------------------------------------------------------------------------- keys


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """Upstream's key id: base64url (unpadded) of SHA-256 over the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url_encode(hashlib.sha256(der).digest())


@dataclass(frozen=True)
class VerificationKey:
    """A public key that tokens may be signed with, and its key id."""

    public_key: rsa.RSAPublicKey
    kid: str

    @classmethod
    def of(cls, public_key: rsa.RSAPublicKey) -> VerificationKey:
        return cls(public_key, key_id(public_key))


@dataclass(frozen=True)
class Signer:
    """The private key tokens are signed with (RS256) and its key id."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def of(cls, private_key: rsa.RSAPrivateKey) -> Signer:
        return cls(private_key, key_id(private_key.public_key()))

    @property
    def verification_key(self) -> VerificationKey:
        return VerificationKey(self.private_key.public_key(), self.kid)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS over ``claims``: ``header.payload.signature``."""
        header = b64url_encode(orjson.dumps({"alg": ALGORITHM, "kid": self.kid}))
        payload = b64url_encode(orjson.dumps(dict(claims)))
        signing_input = f"{header}.{payload}".encode("ascii")
        sig = self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{b64url_encode(sig)}"


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key (blocking: ~0.1 s of CPU)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """The RSA private key in ``pem`` (PKCS#1 or PKCS#8); ValueError for anything else."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"not a PEM private key: {e}") from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service-account signing keys must be RSA (RS256)")
    return key


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def load_public_keys(pem: bytes) -> list[rsa.RSAPublicKey]:
    """Every RSA key in a PEM file: public keys, or the public half of private keys (upstream's
    ``--service-account-key-file`` accepts both, several per file). ValueError if none."""
    keys: list[rsa.RSAPublicKey] = []
    for m in _PEM_BLOCK.finditer(pem):
        block, kind = m.group(0), m.group(1)
        try:
            if b"PRIVATE" in kind:
                priv = serialization.load_pem_private_key(block, password=None)
                pub: Any = priv.public_key()
            else:
                pub = serialization.load_pem_public_key(block)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(pub, rsa.RSAPublicKey):
            keys.append(pub)
    if not keys:
        raise ValueError("no RSA keys found")
    return keys


def jwks(keys: Iterable[VerificationKey]) -> dict[str, Any]:
    """The JSON Web Key Set document (``/openid/v1/jwks``) for ``keys``."""
    out = []
    seen: set[str] = set()
    for k in keys:
        if k.kid in seen:
            continue
        seen.add(k.kid)
        nums = k.public_key.public_numbers()
        out.append({
            "use": "sig", "kty": "RSA", "kid": k.kid, "alg": ALGORITHM,
            "n": b64url_encode(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
            "e": b64url_encode(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")),
        })
    return {"keys": out}


# --------------------------------------------------------------------------- compact JWS


def decode(token: Any, keys: Sequence[VerificationKey]) -> dict[str, Any] | None:
    """The payload of ``token`` if it is a well-formed RS256 JWS signed by one of ``keys``.

    As upstream, a ``kid`` header selects the keys with that id (none → invalid); without
    one every key is tried. Anything else — wrong segment count, non-canonical base64url,
    non-JSON or non-object header/payload, another algorithm, a ``crit`` header, a bad
    signature, a too-long token — gives None. Never raises.
    """
    try:
        return _decode(token, keys)
    except Exception:  # noqa: BLE001 - parsing untrusted input is total by contract
        return None


def _decode(token: Any, keys: Sequence[VerificationKey]) -> dict[str, Any] | None:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header_raw, payload_raw, sig = (b64url_decode(p) for p in parts)
    except ValueError:
        return None
    header = _json_object(header_raw)
    if header is None or header.get("alg") != ALGORITHM or "crit" in header:
        return None
    kid = header.get("kid", "")
    if not isinstance(kid, str) or ("typ" in header and not isinstance(header["typ"], str)):
        return None
    candidates = [k for k in keys if k.kid == kid] if kid else list(keys)
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    for k in candidates:
        if len(sig) != (k.public_key.key_size + 7) // 8:
            continue
        try:
            k.public_key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return _json_object(payload_raw)
    return None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Ref:
    """A (name, uid) reference inside the private claims."""

    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    """The claims of a verified token, in one shape for bound and legacy tokens."""

    issuer: str
    subject: str
    namespace: str
    service_account: Ref
    audiences: tuple[str, ...] = ()
    expires_at: int | None = None
    not_before: int | None = None
    issued_at: int | None = None
    jti: str = ""
    pod: Ref | None = None
    secret: Ref | None = None      # bound: the Secret bound to; legacy: the token Secret (uid "")
    node: Ref | None = None
    warn_after: int | None = None
    legacy: bool = False

    @property
    def username(self) -> str:
        return make_username(self.namespace, self.service_account.name)


def make_username(namespace: str, name: str) -> str:
    return f"{USER_PREFIX}{namespace}:{name}"


def split_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``; None for other users."""
    if not username.startswith(USER_PREFIX):
        return None
    parts = username[len(USER_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def bound_claims(
    *,
    issuer: str,
    audiences: Sequence[str],
    namespace: str,
    service_account: Ref,
    now: float,
    expiration_seconds: int,
    pod: Ref | None = None,
    secret: Ref | None = None,
    node: Ref | None = None,
    warn_after_seconds: int = 0,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims of a bound token (what upstream's TokenRequest signs). ``node`` with ``pod``
    records where the pod runs; ``node`` alone binds the token to the Node."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("a token can only be bound to one object type")
    t = int(now)
    k8s: dict[str, Any] = {"namespace": namespace,
                           "serviceaccount": {"name": service_account.name, "uid": service_account.uid}}
    if pod is not None:
        k8s["pod"] = {"name": pod.name, "uid": pod.uid}
    if secret is not None:
        k8s["secret"] = {"name": secret.name, "uid": secret.uid}
    if node is not None:
        k8s["node"] = {"name": node.name, **({"uid": node.uid} if node.uid else {})}
    if warn_after_seconds:
        k8s["warnafter"] = t + int(warn_after_seconds)
    return {
        "aud": list(audiences),
        "exp": t + int(expiration_seconds),
        "iat": t,
        "iss": issuer,
        "jti": jti if jti is not None else str(uuid.uuid4()),
        PRIVATE_CLAIM: k8s,
        "nbf": t,
        "sub": make_username(namespace, service_account.name),
    }


def legacy_claims(*, namespace: str, service_account: Ref, secret_name: str) -> dict[str, Any]:
    """The claims of a legacy secret-based token (no audience, no expiry)."""
    return {
        "iss": LEGACY_ISSUER,
        LEGACY_NAMESPACE: namespace,
        LEGACY_SECRET_NAME: secret_name,
        LEGACY_SA_NAME: service_account.name,
        LEGACY_SA_UID: service_account.uid,
        "sub": make_username(namespace, service_account.name),
    }


def parse_claims(payload: Any) -> TokenClaims | None:
    """Claims of a verified payload, or None when a required claim is missing or mistyped.

    Bound tokens need ``exp`` and a ``kubernetes.io`` claim whose namespace and service account
    agree with ``sub``; legacy tokens (issuer ``kubernetes/serviceaccount``) need all four
    ``kubernetes.io/serviceaccount/...`` claims, also agreeing with ``sub``. Never raises.
    """
    try:
        return _parse_claims(payload)
    except Exception:  # noqa: BLE001 - untrusted input
        return None


def _parse_claims(p: Any) -> TokenClaims | None:
    if not isinstance(p, dict):
        return None
    iss, sub = p.get("iss"), p.get("sub")
    if not _nonempty_str(iss) or not _nonempty_str(sub):
        return None
    if iss == LEGACY_ISSUER:
        return _parse_legacy(p, iss, sub)
    aud = _audiences(p.get("aud"))
    times = [_numeric_date(p, k) for k in ("exp", "nbf", "iat")]
    if aud is None or any(t is False for t in times) or times[0] is None:
        return None
    exp, nbf, iat = (t if isinstance(t, int) and not isinstance(t, bool) else None for t in times)
    jti = p.get("jti", "")
    if not isinstance(jti, str):
        return None
    k8s = p.get(PRIVATE_CLAIM)
    if not isinstance(k8s, dict):
        return None
    ns = k8s.get("namespace")
    sa = _ref(k8s.get("serviceaccount"), need_uid=True)
    if not _nonempty_str(ns) or sa is None or sub != make_username(ns, sa.name):
        return None
    refs: dict[str, Ref | None] = {}
    for kind in ("pod", "secret", "node"):
        raw = k8s.get(kind)
        if raw is None:
            refs[kind] = None
            continue
        ref = _ref(raw, need_uid=kind != "node")
        if ref is None:
            return None
        refs[kind] = ref
    if refs["secret"] is not None and (refs["pod"] is not None or refs["node"] is not None):
        return None
    warn = _numeric_date(k8s, "warnafter")
    if warn is False:
        return None
    return TokenClaims(
        issuer=iss, subject=sub, namespace=ns, service_account=sa, audiences=aud,
        expires_at=exp, not_before=nbf, issued_at=iat, jti=jti,
        pod=refs["pod"], secret=refs["secret"], node=refs["node"],
        warn_after=warn if isinstance(warn, int) and not isinstance(warn, bool) else None,
    )


def _parse_legacy(p: dict[str, Any], iss: str, sub: str) -> TokenClaims | None:
    vals = [p.get(k) for k in (LEGACY_NAMESPACE, LEGACY_SECRET_NAME, LEGACY_SA_NAME, LEGACY_SA_UID)]
    if not all(_nonempty_str(v) for v in vals):
        return None
    ns, secret, name, uid = vals
    if split_username(sub) != (ns, name):
        return None
    return TokenClaims(issuer=iss, subject=sub, namespace=ns, service_account=Ref(name, uid),
                       secret=Ref(secret, ""), legacy=True)


def check_time(claims: TokenClaims, now: float, leeway: float = DEFAULT_LEEWAY_SECONDS) -> str | None:
    """Why the token is not valid at ``now`` (with ``leeway`` seconds of clock skew), or None."""
    if claims.expires_at is not None and now - leeway > claims.expires_at:
        return "service account token has expired"
    if claims.not_before is not None and now + leeway < claims.not_before:
        return "service account token is not valid yet"
    if claims.issued_at is not None and now + leeway < claims.issued_at:
        return "service account token is issued in the future"
    return None


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _audiences(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(a, str) for a in v):
        return tuple(v)
    return None


def _numeric_date(d: dict[str, Any], key: str) -> int | None | bool:
    """An int for a valid NumericDate, None when absent, False when malformed."""
    if key not in d:
        return None
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, float) and not math.isfinite(v):
        return False
    iv = int(v)
    if not (0 <= iv < 1 << 62):
        return False
    return iv


def _ref(v: Any, *, need_uid: bool) -> Ref | None:
    if not isinstance(v, dict):
        return None
    name, uid = v.get("name"), v.get("uid", "")
    if not _nonempty_str(name) or not isinstance(uid, str) or (need_uid and not uid):
        return None
    return Ref(name, uid)
