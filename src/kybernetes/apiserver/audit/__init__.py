"""Auditing (``--audit-policy-file``, ``--audit-log-*``), as upstream kube-apiserver does it.

    config = AuditConfig(policy=load_policy(path), log=LogOptions("/var/log/kyb/audit.log", max_size_mb=100))
    auditor = Auditor(config)          # ApiServer: middlewares [auditor.outer, ..., auditor.inner]
    annotate(request, "authorization.k8s.io/decision", "allow")

* ``policy``: the audit.k8s.io/v1 Policy and the first-matching-rule evaluation (pure).
* ``event``: audit.k8s.io/v1 Event documents per level and stage (pure).
* ``backend``: JSON lines written by a thread, bounded queue, size rotation.
* ``auditor``: the aiohttp middlewares and signal that tie them to requests.
"""

from __future__ import annotations

from .auditor import AUDIT_ID_HEADER, AUDIT_KEY, AuditConfig, Auditor, annotate, audit_id_of
from .backend import LogBackend, LogOptions
from .policy import AuditPolicyError, Policy, evaluate, load_policy, parse_policy

__all__ = [
    "AUDIT_ID_HEADER",
    "AUDIT_KEY",
    "AuditConfig",
    "AuditPolicyError",
    "Auditor",
    "LogBackend",
    "LogOptions",
    "Policy",
    "annotate",
    "audit_id_of",
    "evaluate",
    "load_policy",
    "parse_policy",
]
