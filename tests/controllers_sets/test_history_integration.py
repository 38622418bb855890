"""``create_revision`` against the real API server: identical data is reused, a clash is renamed."""

from __future__ import annotations

import pytest

from kybernetes.client.resources import CONTROLLERREVISIONS
from kybernetes.client.rest import ApiClient
from kybernetes.controllers import history

pytestmark = pytest.mark.integration


def _owner(image: str) -> dict:  # type: ignore[type-arg]
    return {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def test_create_revision_collision(client: ApiClient) -> None:
    data = history.template_patch(_owner("a:1"))
    rev = history.new_revision(_owner("a:1"), "StatefulSet", "apps/v1", data, 1, history.hash_data(data, 0))
    created, cc = await history.create_revision(client, rev, 0, lambda n: history.hash_data(data, n))
    assert (created["metadata"]["name"], cc) == (rev["metadata"]["name"], 0)
    # the same data again: the stored revision is returned
    again, cc = await history.create_revision(client, rev, 0, lambda n: history.hash_data(data, n))
    assert (again["metadata"]["uid"], cc) == (created["metadata"]["uid"], 0)
    # other data under the same name (a hash clash): the collision count goes up and the name changes
    other = history.template_patch(_owner("b:2"))
    clash = history.new_revision(_owner("b:2"), "StatefulSet", "apps/v1", other, 2, history.hash_data(data, 0))
    made, cc = await history.create_revision(client, clash, 0, lambda n: history.hash_data(other, n))
    assert cc == 1
    assert made["metadata"]["name"] == f"web-{history.hash_data(other, 1)}"
    assert made["metadata"]["labels"][history.CONTROLLER_REVISION_HASH_LABEL] == history.hash_data(other, 1)
    items, _ = await client.list_all(CONTROLLERREVISIONS, "default")
    assert len(items) == 2
