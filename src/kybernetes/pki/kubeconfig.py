"""Write and read kubeconfig files (the format kubectl and the Python client read).

Credentials are embedded as ``*-data`` fields (base64 of the PEM text); files are mode 0600.
``client_ssl_context_from_kubeconfig`` is for our own tools and tests: it turns the current
context into (server URL, ``ssl.SSLContext``, extra headers).
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    user: str = "admin",
    cluster: str = "kybernetes",
    context: str = "kybernetes",
    namespace: str | None = None,
) -> dict[str, Any]:
    """The kubeconfig document as a dict (pure)."""
    if (cert_pem is None) != (key_pem is None):
        raise ValueError("cert_pem and key_pem must be given together")
    creds: dict[str, Any] = {}
    if cert_pem is not None and key_pem is not None:
        creds["client-certificate-data"] = _b64(cert_pem)
        creds["client-key-data"] = _b64(key_pem)
    if token is not None:
        creds["token"] = token
    ctx: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path | str,
    *,
    server: str,
    ca_pem: bytes,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    user: str = "admin",
    cluster: str = "kybernetes",
    context: str = "kybernetes",
    namespace: str | None = None,
) -> Path:
    """Write a single-context kubeconfig (YAML, mode 0600) and return its path."""
    doc = build_kubeconfig(
        server=server, ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem, token=token,
        user=user, cluster=cluster, context=context, namespace=namespace,
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return p


def load_kubeconfig(path: Path | str) -> dict[str, Any]:
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: kubeconfig is not a mapping")
    return doc


def _named(doc: dict[str, Any], section: str, name: str | None, field: str) -> dict[str, Any]:
    for entry in doc.get(section) or ():
        if entry.get("name") == name:
            return dict(entry.get(field) or {})
    raise ValueError(f"kubeconfig: no {section[:-1]} named {name!r}")


def resolve_context(
    doc: dict[str, Any], context: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(context, cluster, user) entries for ``context`` (default: current-context)."""
    ctx = _named(doc, "contexts", context or doc.get("current-context"), "context")
    cluster = _named(doc, "clusters", ctx.get("cluster"), "cluster")
    user = _named(doc, "users", ctx.get("user"), "user") if ctx.get("user") else {}
    return ctx, cluster, user


def _data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """``<key>-data`` (base64) or ``<key>`` (a path relative to the kubeconfig's directory)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / entry[key]).read_bytes()
    return None


def load_client_cert(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a client certificate and key (PEM) into ``ctx`` (blocking: writes a private temp dir)."""
    # ssl can only load a certificate chain from files: use a private temp dir, removed at once.
    with tempfile.TemporaryDirectory(prefix="kyb-kubeconfig-") as d:
        cert_file, key_file = Path(d, "tls.crt"), Path(d, "tls.key")
        cert_file.write_bytes(cert)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        ctx.load_cert_chain(cert_file, key_file)


def client_ssl_context_from_kubeconfig(
    path: Path | str, context: str | None = None
) -> tuple[str, ssl.SSLContext, dict[str, str]]:
    """(server URL, client SSL context, headers) for a kubeconfig context.

    Honours certificate-authority(-data), insecure-skip-tls-verify, tls-server-name is not
    supported (the URL host is verified), client-certificate/key(-data), token and tokenFile.
    """
    p = Path(path)
    _ctx, cluster, user = resolve_context(load_kubeconfig(p), context)
    base = p.parent
    sslctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    sslctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cluster.get("insecure-skip-tls-verify"):
        sslctx.check_hostname = False
        sslctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _data(cluster, "certificate-authority", base)
        if ca is not None:
            sslctx.load_verify_locations(cadata=ca.decode("ascii"))
    cert = _data(user, "client-certificate", base)
    key = _data(user, "client-key", base)
    if cert is not None and key is not None:
        load_client_cert(sslctx, cert, key)
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return str(cluster["server"]), sslctx, headers
