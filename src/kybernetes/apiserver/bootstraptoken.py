"""Bootstrap tokens: short-lived bearer tokens for joining nodes (upstream's bootstrap token
authenticator and ``k8s.io/cluster-bootstrap``).

A token is ``<id>.<secret>`` (``[a-z0-9]{6}.[a-z0-9]{16}``). It lives as the Secret
``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token`` with the data keys
``token-id``, ``token-secret``, ``expiration`` (RFC 3339, optional), ``description``,
``usage-bootstrap-authentication`` (must be ``"true"`` to authenticate) and
``auth-extra-groups`` (comma-separated, each ``system:bootstrappers:...``).

A valid token authenticates as ``system:bootstrap:<id>`` in ``system:bootstrappers``, the extra
groups and ``system:authenticated``. Anything else — unknown id, wrong secret (compared in
constant time), expired, being deleted, usage not enabled, a malformed extra group — is not
authenticated (401), as upstream. ``kyb token create|list|delete`` manage them (cli/token.py);
the controller manager's token cleaner deletes expired ones (controllers/bootstraptoken.py).

The pure rules (``parse_token``, ``identity_from_data``, ``token_secret``) are separate from the
one piece of I/O, :class:`BootstrapTokenAuthenticator`, which the API server's token
authenticator (authn.py) calls for bearer tokens of this form; it reads Secrets through the
server's watch-invalidated object cache rather than a cache of its own.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Protocol

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS = "system:bootstrappers"
DEFAULT_GROUP = "system:bootstrappers:kybernetes:default-node-token"
AUTHENTICATED = "system:authenticated"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed bootstrap token, else None."""
    m = TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def new_token() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(6)) + "." + \
        "".join(secrets.choice(ALPHABET) for _ in range(16))


def secret_name(token_id: str) -> str:
    return SECRET_PREFIX + token_id


def decoded_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """The Secret's ``data`` decoded as text (undecodable values are dropped)."""
    out = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(str(v), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            continue
    return out


def expiration_of(data: Mapping[str, str]) -> dt.datetime | None:
    raw = data.get("expiration")
    if not raw:
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:  # not RFC 3339: treated as expired, as upstream
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return parsed


def is_expired(data: Mapping[str, str], now: dt.datetime) -> bool:
    exp = expiration_of(data)
    return exp is not None and exp <= now


def identity_from_data(data: Mapping[str, str], token_id: str, token_secret: str,
                       now: dt.datetime) -> tuple[str, list[str]] | None:
    """(user, groups) a token proves against its Secret's decoded ``data``, or None (pure).

    The order of the checks follows upstream's authenticator: secret (constant time), id,
    expiry, usage, groups. Any failure is "not authenticated"; the caller answers 401."""
    if not hmac.compare_digest(data.get("token-secret", "").encode(), token_secret.encode()):
        return None
    if data.get("token-id") != token_id:
        return None
    if is_expired(data, now) or data.get("usage-bootstrap-authentication") != "true":
        return None
    groups = [BOOTSTRAPPERS]
    for g in (x.strip() for x in data.get("auth-extra-groups", "").split(",")):
        if not g:
            continue
        if not GROUP_RE.match(g):
            return None
        if g not in groups:
            groups.append(g)
    return USER_PREFIX + token_id, groups + [AUTHENTICATED]


def identity(secret: Mapping[str, Any] | None, token_id: str, token_secret: str,
             now: dt.datetime) -> tuple[str, list[str]] | None:
    """(user, groups) the token proves against its Secret object, or None (pure)."""
    if secret is None or secret.get("type") != SECRET_TYPE:
        return None
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return identity_from_data(decoded_data(secret), token_id, token_secret, now)


class Seen(Protocol):
    """What the API server's live-object cache keeps of a Secret (``authn.Seen``)."""

    deleted_at: float | None
    bootstrap: Mapping[str, str] | None


class Objects(Protocol):
    """The API server's watch-invalidated point-read cache (``authn.LiveObjects``)."""

    async def lookup(self, key: str, *, fresh: bool = False) -> tuple[Any, bool]: ...


class BootstrapTokenAuthenticator:
    """Authenticates ``<id>.<secret>`` bearer tokens against their Secrets.

    Secrets are read through the same watch-invalidated cache that service-account tokens use
    (``authn.LiveObjects``), so a steady stream of requests costs no store reads while a deleted
    Secret stops authenticating as soon as its deletion reaches the watch cache. A cached "no"
    is re-read from the store once, so a token created a moment ago works at once.
    """

    def __init__(self, objects: Objects, secret_key: Callable[[str, str], str],
                 clock: Callable[[], float]) -> None:
        self.objects = objects
        self.secret_key = secret_key
        self.clock = clock

    def _check(self, seen: Seen | None, token_id: str, token_secret: str) -> tuple[str, list[str]] | None:
        if seen is None or seen.bootstrap is None or seen.deleted_at is not None:
            return None
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        return identity_from_data(seen.bootstrap, token_id, token_secret, now)

    async def authenticate(self, token: str) -> tuple[str, list[str]] | None:
        """(user, groups) for a well-formed bootstrap token that its Secret accepts, else None."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        tid, tsecret = parsed
        key = self.secret_key(NAMESPACE, secret_name(tid))
        seen, cached = await self.objects.lookup(key)
        found = self._check(seen, tid, tsecret)
        if found is None and cached:
            seen, _ = await self.objects.lookup(key, fresh=True)
            found = self._check(seen, tid, tsecret)
        return found


def token_secret(token: str, *, ttl_seconds: float | None = None, description: str = "",
                 groups: tuple[str, ...] = (DEFAULT_GROUP,), now: dt.datetime | None = None) -> dict[str, Any]:
    """The Secret for ``token`` (usable for authentication and signing, as kubeadm makes them)."""
    parsed = parse_token(token)
    if parsed is None:
        raise ValueError("a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}")
    for g in groups:
        if not GROUP_RE.match(g):
            raise ValueError(f"group {g!r} must match system:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]")
    tid, tsecret = parsed
    data = {"token-id": tid, "token-secret": tsecret, "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true", "auth-extra-groups": ",".join(groups)}
    if description:
        data["description"] = description
    if ttl_seconds:
        exp = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=ttl_seconds)
        data["expiration"] = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": secret_name(tid), "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
