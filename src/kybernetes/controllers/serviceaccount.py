"""The service-account controller: a ``default`` ServiceAccount in every active namespace.

Keys are namespace names. A namespace event enqueues the namespace; a ``default`` ServiceAccount
event (the informer watches only that name) enqueues its namespace, so a deleted one is recreated.
Namespaces that are not ``Active`` (terminating) are left alone, as upstream.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from ..client import AlreadyExists, Controller, Forbidden, NotFound, ObjectKey
from ..client.resources import NAMESPACES, SERVICEACCOUNTS

if TYPE_CHECKING:
    from .manager import ControllerContext

NAME = "serviceaccount-controller"
ALIASES = ("serviceaccount",)
DEFAULT_SERVICE_ACCOUNTS: tuple[str, ...] = ("default",)

Obj = dict[str, Any]


def is_active(ns: Obj | None) -> bool:
    """A namespace that exists, is not being deleted and whose phase is Active (or not yet set)."""
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (ns.get("status") or {}).get("phase", "Active") == "Active"


def missing_service_accounts(
    ns: Obj | None, existing: Collection[str], wanted: Iterable[str] = DEFAULT_SERVICE_ACCOUNTS
) -> list[str]:
    """The ServiceAccounts to create in ``ns`` (none unless the namespace is active)."""
    if not is_active(ns):
        return []
    return [n for n in wanted if n not in existing]


def service_account(namespace: str, name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


class ServiceAccountController(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(
            NAME,
            ctx.client,
            workers=int(ctx.options.get("serviceaccount_workers", 2)),
            factory=ctx.factory,
            clock=ctx.clock,
        )
        self.wanted: tuple[str, ...] = tuple(
            ctx.options.get("service_accounts", DEFAULT_SERVICE_ACCOUNTS)
        )
        self.namespaces = self.informer(NAMESPACES)
        selector = f"metadata.name={self.wanted[0]}" if len(self.wanted) == 1 else None
        self.accounts = self.informer(
            SERVICEACCOUNTS,
            field_selector=selector,
            mapper=lambda sa: [str((sa.get("metadata") or {}).get("namespace") or "")],
        )

    async def sync(self, key: ObjectKey) -> None:
        ns = self.namespaces.lister().get_by_key(key)
        lister = self.accounts.lister()
        existing = {n for n in self.wanted if lister.get(n, key) is not None}
        for name in missing_service_accounts(ns, existing, self.wanted):
            try:
                await self.client.create(SERVICEACCOUNTS, service_account(key, name), key)
            except AlreadyExists:
                pass
            except (NotFound, Forbidden):  # the namespace is gone or terminating
                return


def new(ctx: ControllerContext) -> ServiceAccountController:
    return ServiceAccountController(ctx)
