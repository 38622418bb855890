"""The root-CA publisher: the pure part and against a real server."""

from __future__ import annotations

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import CONFIGMAPS, NAMESPACES
from kybernetes.controllers import rootcacert
from kybernetes.controllers.rootcacert import (
    CONFIGMAP_NAME,
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    repaired,
)

from .conftest import TEST_CA, get_or_none, gone, running, wait_for

CA = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"
GOOD = {"metadata": {"name": CONFIGMAP_NAME, "namespace": "a", "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
        "data": {"ca.crt": CA}}


@pytest.mark.parametrize(("cm", "changed"), [
    pytest.param(GOOD, False, id="correct"),
    pytest.param({**GOOD, "data": {"ca.crt": "other"}}, True, id="edited-ca"),
    pytest.param({**GOOD, "data": {"ca.crt": CA, "extra": "1"}}, True, id="extra-key"),
    pytest.param({"metadata": {"name": CONFIGMAP_NAME}, "data": {"ca.crt": CA}}, True, id="no-annotation"),
])
def test_rootca_repaired(cm, changed) -> None:  # type: ignore[no-untyped-def]
    out = repaired(cm, CA)
    assert (out is not None) == changed
    if out is not None:
        assert out["data"] == {"ca.crt": CA}
        assert out["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION
        assert out is not cm


def test_repaired_does_not_touch_input() -> None:
    cm = {"metadata": {"name": CONFIGMAP_NAME}, "data": {"ca.crt": "old"}}
    repaired(cm, CA)
    assert cm == {"metadata": {"name": CONFIGMAP_NAME}, "data": {"ca.crt": "old"}}


@pytest.mark.integration
async def test_root_ca_configmap_created_and_repaired(client: ApiClient) -> None:
    async with running(client, rootcacert):
        await client.create(NAMESPACES, {"metadata": {"name": "team-b"}})
        await wait_for(lambda: get_or_none(client, CONFIGMAPS, CONFIGMAP_NAME, "team-b"), what="root CA cm")
        cm = await client.get(CONFIGMAPS, CONFIGMAP_NAME, "team-b")
        assert cm["data"] == {"ca.crt": TEST_CA.decode()}
        assert cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION
        await client.patch(CONFIGMAPS, CONFIGMAP_NAME, {"data": {"ca.crt": "tampered", "x": "y"}}, "team-b")

        async def repaired_again() -> bool:
            now = await client.get(CONFIGMAPS, CONFIGMAP_NAME, "team-b")
            return now["data"] == {"ca.crt": TEST_CA.decode()}

        await wait_for(repaired_again, what="root CA cm repaired")
        await client.delete(CONFIGMAPS, CONFIGMAP_NAME, "team-b")
        await wait_for(lambda: get_or_none(client, CONFIGMAPS, CONFIGMAP_NAME, "team-b"), what="root CA cm recreated")
        assert not await gone(client, CONFIGMAPS, CONFIGMAP_NAME, "default")
