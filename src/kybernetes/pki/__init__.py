"""Cluster PKI (CA, serving and client certificates, service-account keys) and kubeconfig files."""

from kybernetes.pki.certs import (
    ADMIN_CN,
    ADMIN_GROUPS,
    Pki,
    ensure_pki,
    identity_from_peercert,
    identity_from_ssl_object,
    issue_client_cert,
    server_ssl_context,
)
from kybernetes.pki.kubeconfig import (
    client_ssl_context_from_kubeconfig,
    load_kubeconfig,
    write_kubeconfig,
)

__all__ = [
    "ADMIN_CN",
    "ADMIN_GROUPS",
    "Pki",
    "client_ssl_context_from_kubeconfig",
    "ensure_pki",
    "identity_from_peercert",
    "identity_from_ssl_object",
    "issue_client_cert",
    "load_kubeconfig",
    "server_ssl_context",
    "write_kubeconfig",
]
