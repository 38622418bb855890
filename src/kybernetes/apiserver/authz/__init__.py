"""Authorization: RBAC and the Node authorizer behind one object the API server wires in.

    authz = Authorization(api, registry, store, watch_cache, mode="RBAC,Node")
    await authz.start(spawn)                    # default policy, caches, aggregation controller
    authz.authorize_request(request, user)      # in the middleware: raises 403 Forbidden

Constructing it also installs escalation prevention as the first validating admission plugin
of ``api.admission``, and the CertificateSigningRequest plugins that ask the authorizer
(:mod:`..admission.certificates`).

``mode`` is ``--authorization-mode``: a comma-separated, ordered list of ``RBAC``, ``Node`` and
``AlwaysAllow``. Members of ``system:masters`` are always allowed first (upstream's
superuser). Modules: ``attributes`` (request → attributes, 403 text), ``policy`` (rule
matching and coverage), ``rbac`` (index and authorizer), ``node`` (graph and Node
authorizer), ``union`` (decisions, combination), ``bootstrap`` (default roles),
``aggregation`` (aggregated ClusterRoles), ``escalation``, ``reviews`` (access reviews),
``mirror`` (watch-fed caches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..admission import certificates as certificate_admission
from ..authn import UserInfo
from . import bootstrap
from .aggregation import AggregationController
from .attributes import Attributes, forbidden, from_request
from .escalation import EscalationAdmission, EscalationCheck
from .mirror import Mirror
from .node import NodeAuthorizer, NodeGraph
from .rbac import RbacAuthorizer, RbacIndex
from .union import SYSTEM_PRIVILEGED_GROUP, AlwaysAllow, Authorizer, PrivilegedGroup, Result, Union

if TYPE_CHECKING:
    from ...storage.interface import Store
    from ..registry import Registry
    from ..rest import ApiStore
    from ..watchcache import WatchCache

__all__ = ["Attributes", "Authorization", "Result", "parse_mode"]

log = logging.getLogger(__name__)
MODES = ("RBAC", "Node", "AlwaysAllow")
DEFAULT_MODE = "RBAC,Node"
RBAC_GROUP = "rbac.authorization.k8s.io"
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"


def parse_mode(mode: str) -> tuple[str, ...]:
    """``"RBAC,Node"`` -> ("RBAC", "Node"); raises ValueError for unknown or repeated modes."""
    out = tuple(m.strip() for m in mode.split(",") if m.strip())
    if not out:
        raise ValueError("authorization mode must not be empty")
    for m in out:
        if m not in MODES:
            raise ValueError(f'unknown authorization mode "{m}" (supported: {", ".join(MODES)})')
    if len(set(out)) != len(out):
        raise ValueError(f'authorization mode "{mode}" names a mode twice')
    return out


class Authorization:
    def __init__(self, api: "ApiStore", registry: "Registry", store: "Store", cache: "WatchCache",
                 mode: str = DEFAULT_MODE) -> None:
        self.api = api
        self.registry = registry
        self.modes = parse_mode(mode)
        self.index = RbacIndex()
        self.graph = NodeGraph()
        self.rbac = RbacAuthorizer(self.index)
        self.node = NodeAuthorizer(self.graph)
        members: list[Authorizer] = [PrivilegedGroup()]
        for m in self.modes:
            members.append(self.rbac if m == "RBAC" else self.node if m == "Node" else AlwaysAllow())
        self.authorizer = Union(members)
        self.escalation = EscalationCheck(self.authorizer, self.rbac, self.index, api, registry)
        EscalationAdmission(self.escalation).install(api.admission)
        certificate_admission.install(api.admission, self.authorizer)
        self.aggregation = AggregationController(self.index, api, registry)
        self.denials = 0
        from ..audit.auditor import annotate  # here: the audit package imports our attributes

        self._annotate = annotate

        def prefix(group: str, plural: str) -> str:
            info = registry.lookup(group, "v1", plural)
            assert info is not None
            return info.key_prefix(None)

        self.mirrors = [
            Mirror(store, cache, prefix(RBAC_GROUP, "clusterroles"), self.index.on_cluster_role),
            Mirror(store, cache, prefix(RBAC_GROUP, "roles"), self.index.on_role),
            Mirror(store, cache, prefix(RBAC_GROUP, "clusterrolebindings"), self.index.on_binding(False)),
            Mirror(store, cache, prefix(RBAC_GROUP, "rolebindings"), self.index.on_binding(True)),
        ]
        if "Node" in self.modes:
            self.mirrors += [Mirror(store, cache, prefix("", "pods"), self.graph.on_pod),
                             Mirror(store, cache, prefix("", "persistentvolumeclaims"), self.graph.on_claim)]

    async def start(self, spawn: Callable[[Any, str], None]) -> None:
        """Reconcile the default policy, fill the caches, settle aggregated roles, then keep
        everything current in background tasks started through ``spawn(coro, name)``."""
        writes = await bootstrap.ensure_policy(self.api, self.registry)
        if writes:
            log.info("bootstrap policy: %d default roles/bindings created or updated", writes)
        for m in self.mirrors:
            await m.start()
        await self.aggregation.sync_all()
        for m in self.mirrors:
            spawn(m.run(), f"authz-cache{m.prefix}")
        spawn(self.aggregation.run(), "clusterrole-aggregation-controller")

    def close(self) -> None:
        for m in self.mirrors:
            m.close()

    # -- the request path -----------------------------------------------------------------
    def authorize_request(self, request: web.Request, user: UserInfo) -> None:
        """Authorize an authenticated request; raise the 403 Status when it is not allowed. The
        decision and reason are recorded as the request's audit annotations, as upstream."""
        if SYSTEM_PRIVILEGED_GROUP in user.groups:
            self._annotate(request, DECISION_ANNOTATION, "allow")
            self._annotate(request, REASON_ANNOTATION, "")
            return
        attrs = from_request(user, request.method, request.path, request.query)
        res = self.authorizer.authorize(attrs)
        self._annotate(request, DECISION_ANNOTATION, "allow" if res.allowed else "forbid")
        self._annotate(request, REASON_ANNOTATION, res.reason)
        if not res.allowed:
            self.denials += 1
            log.debug("authorization: denied %s %s to %s (%s)", request.method, request.path_qs, user.name, res.reason)
            raise forbidden(attrs, res.reason)

    def authorize(self, attrs: Attributes) -> Result:
        return self.authorizer.authorize(attrs)

    def statistics(self) -> dict[str, Any]:
        return {**self.rbac.statistics(), "aggregation_writes": self.aggregation.writes,
                "nodes_with_pods": len(self.graph.refs), "relists": sum(m.relists for m in self.mirrors), "denials": self.denials}
