"""Registry credentials: pull secrets, credential lookup and WWW-Authenticate challenges (pure).

Kubernetes hands the kubelet ``kubernetes.io/dockerconfigjson`` (``.dockerconfigjson``: ``{"auths":
{registry: entry}}``) and legacy ``kubernetes.io/dockercfg`` (``.dockercfg``: ``{registry: entry}``)
secrets; an entry has ``username``/``password`` and/or ``auth`` (base64 of ``user:password``) and
possibly an ``identitytoken`` (an OAuth2 refresh token). Keys may be URLs
(``https://index.docker.io/v1/``) or ``host[:port][/path]``; a key with a path only matches
repositories under that path, and the longest matching key wins (as the kubelet's keyring does).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .reference import DEFAULT_DOMAIN

_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry key (``host[:port][/path]``, normalised)."""

    registry: str
    username: str | None = None
    password: str | None = None
    auth: str | None = None
    identity_token: str | None = None

    def basic(self) -> tuple[str, str] | None:
        """(username, password) from the fields or the ``auth`` blob; None when there are none."""
        if self.username is not None and self.password is not None and (self.username or self.password):
            return self.username, self.password
        if self.auth:
            try:
                user, _, pw = base64.b64decode(self.auth).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user, pw
        return None


def normalize_registry_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://host:5000/ns/`` -> ``host:5000/ns``."""
    k = key.strip()
    k = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", k)
    k = k.rstrip("/")
    host, _, path = k.partition("/")
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = DEFAULT_DOMAIN
        if path in ("v1", "v2"):
            path = ""
    return f"{host}/{path}" if path else host


def _text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode()
    return str(v)


def _entries_to_auths(entries: Mapping[str, Any]) -> list[RegistryAuth]:
    out: list[RegistryAuth] = []
    for key, e in entries.items():
        if not isinstance(e, dict):
            continue
        out.append(RegistryAuth(
            registry=normalize_registry_key(key),
            username=e.get("username") or None, password=e.get("password") or None,
            auth=e.get("auth") or None, identity_token=e.get("identitytoken") or None))
    return out


def auths_from_dockerconfig(secret_data: Mapping[str, bytes | str]) -> list[RegistryAuth]:
    """Credentials from a pull secret's (already base64-decoded) data. Malformed JSON is ignored,
    as the kubelet ignores unusable pull secrets."""
    out: list[RegistryAuth] = []
    for key in (".dockerconfigjson", ".dockercfg"):
        raw = secret_data.get(key)
        if raw is None:
            continue
        try:
            doc = json.loads(_text(raw))
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(doc, dict):
            continue
        if key == ".dockerconfigjson":
            doc = doc.get("auths") or {}
            if not isinstance(doc, dict):
                continue
        out.extend(_entries_to_auths(doc))
    return out


def find_auth(auths: list[RegistryAuth], domain: str, path: str) -> RegistryAuth | None:
    """The credential for repository ``domain/path``: the longest key that is the domain or a
    path prefix of ``domain/path`` (component-wise)."""
    target = f"{normalize_registry_key(domain)}/{path}"
    best: RegistryAuth | None = None
    for a in auths:
        key = normalize_registry_key(a.registry)
        if target == key or target.startswith(key + "/"):
            if best is None or len(key) > len(normalize_registry_key(best.registry)):
                best = a
    return best


@dataclass(frozen=True)
class Challenge:
    scheme: str                 # "bearer" | "basic" (lower case)
    params: dict[str, str]


_PARAM = re.compile(r'\s*([a-zA-Z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (``Bearer realm="...",service="...",scope="..."``)."""
    out: list[Challenge] = []
    s = header.strip()
    while s:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", s)
        if not m:
            break
        scheme = m.group(1).lower()
        s = s[m.end():]
        params: dict[str, str] = {}
        while True:
            pm = _PARAM.match(s)
            if not pm:
                break
            # a following "scheme param=" starts the next challenge; a bare word stops the params
            val = pm.group(2) if pm.group(2) is not None else pm.group(3)
            params[pm.group(1).lower()] = re.sub(r"\\(.)", r"\1", val or "")
            s = s[pm.end():]
        out.append(Challenge(scheme, params))
        s = s.lstrip(", ")
    return out
