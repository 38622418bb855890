"""The service-account token controller: fills legacy token Secrets that a user asks for.

Since Kubernetes 1.24 no token Secret is made for every ServiceAccount; pods get short-lived bound
tokens (TokenRequest). A user who still wants a long-lived token creates a Secret of type
``kubernetes.io/service-account-token`` with the annotation
``kubernetes.io/service-account.name: <sa>``, and this controller (upstream's ``TokensController``)
completes it:

* the ServiceAccount exists → ``data.token`` (a legacy JWT signed with the service-account key:
  issuer ``kubernetes/serviceaccount``, no expiry, naming the Secret and the ServiceAccount's
  uid), ``data["ca.crt"]`` (the cluster CA), ``data.namespace``, and the annotation
  ``kubernetes.io/service-account.uid``;
* the ServiceAccount does not exist (asked live, not only the cache), or has another uid than the
  Secret records → the Secret is deleted, as upstream;
* a ServiceAccount is deleted → its token Secrets are enqueued and so deleted.

Such a token stops working as soon as its Secret or ServiceAccount is gone (the authenticator
checks both). Keys are ``namespace/secret-name``; the Secret informer watches only this type.
Needs the service-account private key (``kyb controller-manager
--service-account-private-key-file``); without it the controller is not started.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from ..client import Conflict, Controller, NotFound, ObjectKey, split_key
from ..client.lister import copy_obj
from ..client.resources import SECRETS, SERVICEACCOUNTS
from ..pki import satoken

if TYPE_CHECKING:
    from .manager import ControllerContext

log = logging.getLogger(__name__)

NAME = "serviceaccount-token-controller"
ALIASES = ("serviceaccount-token",)
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"

Obj = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    try:
        return base64.b64decode(str(text or ""), validate=True)
    except ValueError:
        return b""


def decide(secret: Obj, sa: Obj | None) -> str:
    """What to do with a token Secret given its ServiceAccount (pure): ``"ignore"`` (not ours or
    being deleted), ``"delete"`` (no such ServiceAccount, or another one by that name), ``"fill"``
    (token, CA or namespace missing or stale), or ``"ok"``."""
    md = secret.get("metadata") or {}
    if secret.get("type") != TOKEN_TYPE or md.get("deletionTimestamp"):
        return "ignore"
    annotations = md.get("annotations") or {}
    if not annotations.get(SA_NAME_ANNOTATION):
        return "ignore"  # validation requires it; nothing to do without it
    if sa is None:
        return "delete"
    sa_uid = str((sa.get("metadata") or {}).get("uid") or "")
    recorded = annotations.get(SA_UID_ANNOTATION)
    if recorded and recorded != sa_uid:
        return "delete"
    data = secret.get("data") or {}
    if not recorded or not data.get("token") or not data.get("ca.crt") or not data.get("namespace"):
        return "fill"
    return "ok"


def filled(secret: Obj, sa: Obj, *, token: str, ca: bytes) -> Obj:
    """A copy of ``secret`` with the token, CA, namespace and the ServiceAccount's uid."""
    new = copy_obj(secret)
    md = new.setdefault("metadata", {})
    md.setdefault("annotations", {})[SA_UID_ANNOTATION] = str((sa.get("metadata") or {}).get("uid") or "")
    data = dict(new.get("data") or {})
    if not data.get("token"):
        data["token"] = _b64(token.encode("ascii"))
    if ca:
        data["ca.crt"] = _b64(ca)
    data["namespace"] = _b64(str(md.get("namespace") or "").encode())
    new["data"] = data
    return new


class TokensController(Controller):
    def __init__(self, ctx: ControllerContext, signer: satoken.Signer) -> None:
        super().__init__(NAME, ctx.client, workers=int(ctx.options.get("satoken_workers", 2)),
                         factory=ctx.factory, clock=ctx.clock)
        self.signer = signer
        self.ca = ctx.cluster_ca
        self.secrets = self.informer(SECRETS, field_selector=f"type={TOKEN_TYPE}")
        self.accounts = self.informer(SERVICEACCOUNTS, mapper=self._token_secrets_of)

    def _token_secrets_of(self, sa: Obj) -> list[str]:
        md = sa.get("metadata") or {}
        ns, name = str(md.get("namespace") or ""), str(md.get("name") or "")
        return [f"{ns}/{s['metadata']['name']}" for s in self.secrets.lister().list(ns)
                if ((s.get("metadata") or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION) == name]

    async def _service_account(self, ns: str, name: str) -> Obj | None:
        sa = self.accounts.lister().get(name, ns)
        if sa is not None:
            return sa
        try:  # the cache may lag behind a ServiceAccount created just before its Secret
            return await self.client.get(SERVICEACCOUNTS, name, ns)
        except NotFound:
            return None

    async def sync(self, key: ObjectKey) -> None:
        ns, name = split_key(key)
        secret = self.secrets.lister().get(name, ns)
        if secret is None:
            return
        sa_name = str(((secret.get("metadata") or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION) or "")
        sa = await self._service_account(ns, sa_name) if sa_name else None
        action = decide(secret, sa)
        if action == "delete":
            log.info("deleting token secret %s/%s: service account %r does not exist", ns, name, sa_name)
            uid = str((secret.get("metadata") or {}).get("uid") or "")
            try:
                await self.client.delete(SECRETS, name, ns, preconditions={"uid": uid} if uid else None)
            except (NotFound, Conflict):
                pass
        elif action == "fill":
            assert sa is not None
            sa_ref = satoken.Ref(sa_name, str(sa["metadata"].get("uid") or ""))
            token = self.signer.sign(satoken.legacy_claims(namespace=ns, service_account=sa_ref, secret_name=name))
            try:
                await self.client.update(SECRETS, filled(secret, sa, token=token, ca=self.ca), ns)
            except (NotFound, Conflict):
                self.enqueue(key)  # changed or gone meanwhile: look again


def new(ctx: ControllerContext) -> Controller | None:
    pem = ctx.options.get("service_account_private_key")
    if not pem:
        log.info("%s: no --service-account-private-key-file; not started", NAME)
        return None
    return TokensController(ctx, satoken.Signer.of(satoken.load_private_key(pem)))
