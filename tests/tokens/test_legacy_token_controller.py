"""controllers/satokens.py: token Secrets a user asks for are filled, work, and die with their
ServiceAccount (against an in-process API server; see tests/tokens/conftest.py)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from kybernetes.client import ApiClient as KubeClient
from kybernetes.client.resources import SECRETS
from kybernetes.controllers import satokens
from kybernetes.controllers.satokens import SA_NAME_ANNOTATION, SA_UID_ANNOTATION, TOKEN_TYPE, decide, filled
from kybernetes.pki import satoken
from tests.conftest import ApiClient
from tests.controllers.conftest import TEST_CA, running
from tests.harness import wait_for

from .test_token_api import NS, make_sa, status_with, whoami

SA = {"metadata": {"name": "bot", "namespace": NS, "uid": "u-1"}}


def token_secret(name: str = "bot-token", sa: str = "bot", **md: object) -> dict:
    return {"metadata": {"name": name, "namespace": NS, "annotations": {SA_NAME_ANNOTATION: sa}, **md},
            "type": TOKEN_TYPE}


@pytest.mark.parametrize(("secret", "sa", "action"), [
    pytest.param(token_secret(), SA, "fill", id="new"),
    pytest.param(token_secret(), None, "delete", id="no-service-account"),
    pytest.param({**token_secret(), "metadata": {**token_secret()["metadata"], "annotations": {
        SA_NAME_ANNOTATION: "bot", SA_UID_ANNOTATION: "u-0"}}}, SA, "delete", id="recreated-service-account"),
    pytest.param({**token_secret(), "type": "Opaque"}, SA, "ignore", id="other-type"),
    pytest.param(token_secret(deletionTimestamp="2026-01-01T00:00:00Z"), SA, "ignore", id="being-deleted"),
])
def test_decide(secret: dict, sa: dict | None, action: str) -> None:
    assert decide(secret, sa) == action


def test_filled_keeps_a_token_and_adds_ca_namespace_uid() -> None:
    out = filled(token_secret(), SA, token="t.o.k", ca=b"CA")
    assert base64.b64decode(out["data"]["token"]) == b"t.o.k"
    assert base64.b64decode(out["data"]["ca.crt"]) == b"CA"
    assert base64.b64decode(out["data"]["namespace"]) == NS.encode()
    assert out["metadata"]["annotations"][SA_UID_ANNOTATION] == "u-1"
    assert decide(out, SA) == "ok"
    again = filled({**out, "data": {**out["data"], "token": base64.b64encode(b"kept").decode()}}, SA, token="new", ca=b"CA")
    assert base64.b64decode(again["data"]["token"]) == b"kept"


@pytest.mark.integration
async def test_token_secret_filled_accepted_then_deleted_with_its_service_account(api: ApiClient) -> None:
    signer = await api.server.tokens.load()
    pem = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    client = KubeClient(api.base, timeout=10.0)
    try:
        async with running(client, satokens, service_account_private_key=pem):
            sa = await make_sa(api)
            st, doc, _ = await api.post(f"/api/v1/namespaces/{NS}/secrets", token_secret())
            assert st == 201, doc

            async def token() -> str:
                s = await client.get(SECRETS, "bot-token", NS)
                return base64.b64decode(s["data"]["token"]).decode() if (s.get("data") or {}).get("token") else ""

            await wait_for(token, timeout=10, what="the controller fills the token")
            tok = await token()
            assert tok
            s = await client.get(SECRETS, "bot-token", NS)
            assert base64.b64decode(s["data"]["ca.crt"]) == TEST_CA
            assert s["metadata"]["annotations"][SA_UID_ANNOTATION] == sa["metadata"]["uid"]
            claims = satoken.decode(tok, [signer.verification_key])
            assert claims is not None and claims["iss"] == "kubernetes/serviceaccount" and "exp" not in claims
            await wait_for(lambda: status_code_is(api, tok, 200), timeout=5, what="token accepted")
            _, me = await whoami(api, tok)
            assert me["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"

            # a Secret for a ServiceAccount that does not exist is removed
            st, _, _ = await api.post(f"/api/v1/namespaces/{NS}/secrets", token_secret("ghost-token", "ghost"))
            assert st == 201
            await wait_for(lambda: absent(client, "ghost-token"), timeout=10, what="orphan token secret deleted")

            # deleting the ServiceAccount removes its token Secret, and the token stops working
            st, _, _ = await api.delete(f"/api/v1/namespaces/{NS}/serviceaccounts/bot")
            assert st == 200
            await wait_for(lambda: absent(client, "bot-token"), timeout=10, what="token secret deleted with its SA")
            await wait_for(lambda: status_code_is(api, tok, 401), timeout=5, what="token rejected")
    finally:
        await client.close()


async def status_code_is(api: ApiClient, token: str, code: int) -> bool:
    return await status_with(api, token) == code


async def absent(client: KubeClient, name: str) -> bool:
    from kybernetes.client import NotFound
    try:
        await client.get(SECRETS, name, NS)
    except NotFound:
        return True
    return False


def test_not_started_without_a_key() -> None:
    class Ctx:
        options: dict = {}
    assert satokens.new(Ctx()) is None  # type: ignore[arg-type]
