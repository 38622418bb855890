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
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS = "system:bootstrappers"
DEFAULT_GROUP = "system:bootstrappers:kybernetes:default-node-token"
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
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)  # unparsable: treat as expired


def is_expired(data: Mapping[str, str], now: dt.datetime) -> bool:
    exp = expiration_of(data)
    return exp is not None and exp <= now


def identity(secret: Mapping[str, Any] | None, token_id: str, token_secret: str,
             now: dt.datetime) -> tuple[str, list[str]] | None:
    """(user, groups) the token proves against its Secret, or None (pure)."""
    if secret is None or secret.get("type") != SECRET_TYPE:
        return None
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    data = decoded_data(secret)
    if data.get("token-id") != token_id:
        return None
    if not hmac.compare_digest(data.get("token-secret", "").encode(), token_secret.encode()):
        return None
    if data.get("usage-bootstrap-authentication") != "true" or is_expired(data, now):
        return None
    groups = [BOOTSTRAPPERS]
    for g in (x.strip() for x in data.get("auth-extra-groups", "").split(",")):
        if not g:
            continue
        if not GROUP_RE.match(g):
            return None
        if g not in groups:
            groups.append(g)
    return USER_PREFIX + token_id, groups + ["system:authenticated"]


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
