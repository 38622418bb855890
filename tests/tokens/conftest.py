"""Service-account token tests check *authentication*: their servers allow every authenticated
request (``AlwaysAllow``), so a valid token shows as 200 and an invalid one as 401. What a token's
identity may do under RBAC is tested in tests/authz."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest

from tests.conftest import ApiClient, start_test_server


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    from kybernetes.storage import open_store

    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    server, task, port = await start_test_server(store, authorization_mode="AlwaysAllow")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            yield ApiClient(f"http://127.0.0.1:{port}", session, server)
        finally:
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - the server task ends cancelled
                pass
            await store.close()


from tests.e2e.conftest import cluster  # noqa: E402,F401 - `kyb token` is tested against kyb up
