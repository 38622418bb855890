"""The service-account controller: the pure part and against a real server."""

from __future__ import annotations

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import NAMESPACES, SERVICEACCOUNTS
from kybernetes.controllers import serviceaccount
from kybernetes.controllers.serviceaccount import missing_service_accounts

from .conftest import get_or_none, running, wait_for

ACTIVE = {"metadata": {"name": "a"}, "status": {"phase": "Active"}}
TERMINATING = {"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"},
               "status": {"phase": "Terminating"}}


@pytest.mark.parametrize(("ns", "existing", "want"), [
    pytest.param(ACTIVE, set(), ["default"], id="active-missing"),
    pytest.param(ACTIVE, {"default"}, [], id="active-present"),
    pytest.param(TERMINATING, set(), [], id="terminating"),
    pytest.param(None, set(), [], id="gone"),
    pytest.param({"metadata": {"name": "a"}}, set(), ["default"], id="no-phase-yet"),
])
def test_missing_service_accounts(ns, existing, want) -> None:  # type: ignore[no-untyped-def]
    assert missing_service_accounts(ns, existing) == want


@pytest.mark.integration
async def test_default_service_account_created_and_recreated(client: ApiClient) -> None:
    async with running(client, serviceaccount):
        await client.create(NAMESPACES, {"metadata": {"name": "team-a"}})
        await wait_for(lambda: get_or_none(client, SERVICEACCOUNTS, "default", "team-a"), what="default SA")
        sa = await client.get(SERVICEACCOUNTS, "default", "team-a")
        await client.delete(SERVICEACCOUNTS, "default", "team-a")

        async def recreated() -> bool:
            now = await get_or_none(client, SERVICEACCOUNTS, "default", "team-a")
            return now is not None and now["metadata"]["uid"] != sa["metadata"]["uid"]

        await wait_for(recreated, what="default SA recreated")
        # pre-existing namespaces get one too
        assert await get_or_none(client, SERVICEACCOUNTS, "default", "kube-system") is not None
