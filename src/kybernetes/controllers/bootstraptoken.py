"""The token cleaner: deletes bootstrap-token Secrets once they expire (upstream's
``tokencleaner``). Keys are ``kube-system/<secret>``; a token that has not expired yet is looked at
again when it does.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from ..apiserver import bootstraptoken as bt
from ..client import Conflict, Controller, NotFound, ObjectKey, split_key
from ..client.resources import SECRETS

if TYPE_CHECKING:
    from .manager import ControllerContext

log = logging.getLogger(__name__)

NAME = "token-cleaner"
ALIASES = ("tokencleaner",)


class TokenCleaner(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(NAME, ctx.client, workers=1, factory=ctx.factory, clock=ctx.clock)
        self.secrets = self.informer(SECRETS, field_selector=f"type={bt.SECRET_TYPE}")

    async def sync(self, key: ObjectKey) -> None:
        ns, name = split_key(key)
        secret = self.secrets.lister().get(name, ns)
        if secret is None or ns != bt.NAMESPACE:
            return
        data = bt.decoded_data(secret)
        exp = bt.expiration_of(data)
        if exp is None:
            return
        left = (exp - dt.datetime.fromtimestamp(self.clock.wall().timestamp(), dt.UTC)).total_seconds()
        if left > 0:
            self.enqueue_after(key, left + 0.5)
            return
        log.info("deleting expired bootstrap token %s", data.get("token-id", name))
        uid = str((secret.get("metadata") or {}).get("uid") or "")
        try:
            await self.client.delete(SECRETS, name, ns, preconditions={"uid": uid} if uid else None)
        except (NotFound, Conflict):
            pass


def new(ctx: ControllerContext) -> TokenCleaner:
    return TokenCleaner(ctx)
