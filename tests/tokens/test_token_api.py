"""TokenRequest and bearer-token authentication through an in-process API server.

The ``api`` fixture's server lets requests *without* credentials act as admin (test servers
are anonymous); a request with a bearer token is authenticated by that token alone, so an
invalid token gets 401 even there, exactly as upstream's union authenticator behaves.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from kybernetes.apiserver.tokens import DEFAULT_ISSUER
from kybernetes.pki import satoken
from tests.conftest import ApiClient
from tests.harness import wait_for

pytestmark = pytest.mark.integration

NS = "default"
BOUND_YEAR = 365 * 24 * 3600


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def header_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def ts(s: str) -> int:
    return int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


async def make_sa(api: ApiClient, name: str = "bot", ns: str = NS, **extra: Any) -> dict[str, Any]:
    st, doc, _ = await api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}, **extra})
    assert st == 201, doc
    return doc  # type: ignore[no-any-return]


async def request_token(api: ApiClient, sa: str = "bot", ns: str = NS, **spec: Any) -> tuple[int, Any, Any]:
    return await api.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})


async def token_for(api: ApiClient, sa: str = "bot", **spec: Any) -> str:
    st, doc, _ = await request_token(api, sa, **spec)
    assert st == 201, doc
    return doc["status"]["token"]  # type: ignore[no-any-return]


async def whoami(api: ApiClient, token: str) -> tuple[int, Any]:
    st, doc, _ = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                                headers={"Authorization": f"Bearer {token}"})
    return st, doc


async def status_with(api: ApiClient, token: str, path: str = "/api/v1/namespaces") -> int:
    st, _, _ = await api.get(path, headers={"Authorization": f"Bearer {token}"})
    return st


async def make_pod(api: ApiClient, name: str, sa: str = "bot", node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"serviceAccountName": sa, "containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    st, doc, _ = await api.post(f"/api/v1/namespaces/{NS}/pods", {"metadata": {"name": name}, "spec": spec})
    assert st == 201, doc
    return doc  # type: ignore[no-any-return]


async def gone(api: ApiClient, token: str) -> bool:
    return await status_with(api, token) == 401


# --------------------------------------------------------------------------- TokenRequest


async def test_token_request_defaults(api: ApiClient) -> None:
    sa = await make_sa(api)
    st, doc, _ = await request_token(api)
    assert st == 201, doc
    assert doc["kind"] == "TokenRequest" and doc["apiVersion"] == "authentication.k8s.io/v1"
    assert doc["metadata"]["name"] == "bot" and doc["metadata"]["namespace"] == NS
    assert doc["spec"] == {"audiences": [DEFAULT_ISSUER], "expirationSeconds": 3600}
    token = doc["status"]["token"]
    assert ts(doc["status"]["expirationTimestamp"]) - ts(doc["metadata"]["creationTimestamp"]) == 3600
    h, c = header_of(token), claims_of(token)
    await api.server.tokens.load()
    assert h == {"alg": "RS256", "kid": api.server.tokens.keys[0].kid}
    assert c["iss"] == DEFAULT_ISSUER and c["aud"] == [DEFAULT_ISSUER] and c["sub"] == "system:serviceaccount:default:bot"
    assert c["exp"] - c["iat"] == 3600 and c["nbf"] == c["iat"] and len(c["jti"]) == 36
    assert c["kubernetes.io"] == {"namespace": NS, "serviceaccount": {"name": "bot", "uid": sa["metadata"]["uid"]}}
    st, me = await whoami(api, token)
    assert st == 201
    assert me["status"]["userInfo"] == {
        "username": "system:serviceaccount:default:bot", "uid": sa["metadata"]["uid"],
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={c['jti']}"]},
    }
    assert await status_with(api, token) == 200


@pytest.mark.parametrize(("seconds", "message"), [
    pytest.param(599, "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes", id="short"),
    pytest.param(2**32 + 1, "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds", id="long"),
])
async def test_expiration_bounds(api: ApiClient, seconds: int, message: str) -> None:
    await make_sa(api)
    st, doc, _ = await request_token(api, expirationSeconds=seconds)
    assert st == 422 and doc["reason"] == "Invalid"
    assert doc["message"] == f'TokenRequest.authentication.k8s.io "" is invalid: {message}'
    st, doc, _ = await request_token(api, expirationSeconds=600)
    assert st == 201 and doc["spec"]["expirationSeconds"] == 600


async def test_max_expiration_caps_with_a_warning(api: ApiClient) -> None:
    await make_sa(api)
    api.server.tokens.options.max_expiration_seconds = 1000
    st, doc, headers = await request_token(api, expirationSeconds=5000)
    assert st == 201 and doc["spec"]["expirationSeconds"] == 1000
    c = claims_of(doc["status"]["token"])
    assert c["exp"] - c["iat"] == 1000
    assert headers.getall("Warning") == ['299 - "requested expiration of 5000 seconds shortened to 1000 seconds"']


async def test_request_errors(api: ApiClient) -> None:
    st, doc, _ = await request_token(api, "ghost")
    assert st == 404 and doc["message"] == 'serviceaccounts "ghost" not found'
    await make_sa(api)
    st, doc, _ = await api.post(f"/api/v1/namespaces/{NS}/serviceaccounts/bot/token",
                                {"metadata": {"name": "other"}, "spec": {}})
    assert st == 422 and "metadata.name: Invalid value: \"other\": must match the service account name if specified" in doc["message"]
    st, doc, _ = await request_token(api, audiences="not-a-list")
    assert st == 400
    st, doc, _ = await api.request("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/bot/token")
    assert st == 405


async def test_bound_pod_token_dies_with_the_pod(api: ApiClient) -> None:
    sa = await make_sa(api)
    st, node, _ = await api.post("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    assert st == 201
    pod = await make_pod(api, "web", node="node-1")
    st, doc, _ = await request_token(api, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"})
    assert st == 201, doc
    assert doc["spec"]["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "web"}
    token = doc["status"]["token"]
    assert claims_of(token)["kubernetes.io"] == {
        "namespace": NS, "serviceaccount": {"name": "bot", "uid": sa["metadata"]["uid"]},
        "pod": {"name": "web", "uid": pod["metadata"]["uid"]},
        "node": {"name": "node-1", "uid": node["metadata"]["uid"]},
    }
    st, me = await whoami(api, token)
    assert st == 201
    extra = me["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["web"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert extra["authentication.kubernetes.io/node-name"] == ["node-1"]
    assert extra["authentication.kubernetes.io/node-uid"] == [node["metadata"]["uid"]]
    # a pod on a node is deleted gracefully: the token lives while the pod terminates ...
    st, _, _ = await api.delete(f"/api/v1/namespaces/{NS}/pods/web")
    assert st == 200 and await status_with(api, token) == 200
    # ... and dies once the pod object is gone
    st, _, _ = await api.delete(f"/api/v1/namespaces/{NS}/pods/web", {"gracePeriodSeconds": 0})
    assert st == 200
    await wait_for(lambda: gone(api, token), timeout=5, what="token of a deleted pod rejected")
    await make_pod(api, "web")  # same name, new uid: still dead
    assert await status_with(api, token) == 401


async def test_projected_token_extension_for_3607_seconds(api: ApiClient) -> None:
    await make_sa(api)
    await make_pod(api, "web")
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web"}
    st, doc, _ = await request_token(api, expirationSeconds=3607, boundObjectRef=ref)
    assert st == 201
    c = claims_of(doc["status"]["token"])
    assert c["exp"] - c["iat"] == BOUND_YEAR and c["kubernetes.io"]["warnafter"] - c["iat"] == 3607
    assert ts(doc["status"]["expirationTimestamp"]) - ts(doc["metadata"]["creationTimestamp"]) == 3607
    # not for other audiences, not for unbound tokens, not when switched off
    for spec in ({"expirationSeconds": 3607, "boundObjectRef": ref, "audiences": ["vault"]},
                 {"expirationSeconds": 3607}):
        c = claims_of(await token_for(api, **spec))
        assert c["exp"] - c["iat"] == 3607 and "warnafter" not in c["kubernetes.io"]
    api.server.tokens.options.extend_expiration = False
    c = claims_of(await token_for(api, expirationSeconds=3607, boundObjectRef=ref))
    assert c["exp"] - c["iat"] == 3607


async def test_bound_secret_and_node_tokens(api: ApiClient) -> None:
    await make_sa(api)
    st, secret, _ = await api.post(f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert st == 201
    st, node, _ = await api.post("/api/v1/nodes", {"metadata": {"name": "node-2"}})
    assert st == 201
    t_secret = await token_for(api, boundObjectRef={"kind": "Secret", "apiVersion": "v1", "name": "s"})
    t_node = await token_for(api, boundObjectRef={"kind": "Node", "apiVersion": "v1", "name": "node-2",
                                                  "uid": node["metadata"]["uid"]})
    assert claims_of(t_secret)["kubernetes.io"]["secret"] == {"name": "s", "uid": secret["metadata"]["uid"]}
    assert claims_of(t_node)["kubernetes.io"]["node"] == {"name": "node-2", "uid": node["metadata"]["uid"]}
    assert await status_with(api, t_secret) == 200 and await status_with(api, t_node) == 200
    await api.delete(f"/api/v1/namespaces/{NS}/secrets/s")
    await api.delete("/api/v1/nodes/node-2")
    await wait_for(lambda: gone(api, t_secret), timeout=5, what="secret-bound token rejected")
    await wait_for(lambda: gone(api, t_node), timeout=5, what="node-bound token rejected")


@pytest.mark.parametrize(("ref", "code", "message"), [
    pytest.param({"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}, 400,
                 "cannot bind token to object of type /v1, Kind=ConfigMap", id="unsupported-kind"),
    pytest.param({"kind": "Pod", "apiVersion": "apps/v1", "name": "web"}, 400,
                 "cannot bind token to object of type apps/v1, Kind=Pod", id="wrong-group"),
    pytest.param({"kind": "Pod", "apiVersion": "v1", "name": "nope"}, 404, 'pods "nope" not found', id="missing-pod"),
    pytest.param({"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}, 400,
                 'cannot bind token for serviceaccount "bot" to pod running with different serviceaccount name.', id="pod-of-another-sa"),
    pytest.param({"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "0000"}, 409,
                 'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (0000) does not match '
                 "the UID in record. The object might have been deleted and then recreated", id="uid-mismatch"),
])
async def test_bound_object_errors(api: ApiClient, ref: dict[str, Any], code: int, message: str) -> None:
    await make_sa(api)
    await make_sa(api, "other")
    await make_pod(api, "web")
    await make_pod(api, "other-sa", sa="other")
    st, doc, _ = await request_token(api, boundObjectRef=ref)
    assert (st, doc["message"]) == (code, message)


# --------------------------------------------------------------------------- authentication


async def test_deleted_or_recreated_service_account_invalidates_tokens(api: ApiClient) -> None:
    await make_sa(api)
    token = await token_for(api)
    assert await status_with(api, token) == 200
    st, _, _ = await api.delete(f"/api/v1/namespaces/{NS}/serviceaccounts/bot")
    assert st == 200
    await wait_for(lambda: gone(api, token), timeout=5, what="token of a deleted service account rejected")
    await make_sa(api)  # same name, new uid
    assert await status_with(api, token) == 401
    assert await status_with(api, await token_for(api)) == 200


async def test_expiry_with_an_injected_clock(api: ApiClient) -> None:
    now = [1_900_000_000.0]
    api.server.tokens.clock = lambda: now[0]
    await make_sa(api)
    token = await token_for(api, expirationSeconds=600)
    assert claims_of(token)["exp"] == 1_900_000_600
    now[0] += 600 + 59          # within the 60 s leeway
    assert await status_with(api, token) == 200
    now[0] += 2
    assert await status_with(api, token) == 401
    now[0] = 1_900_000_000 - 61  # before nbf - leeway
    assert await status_with(api, token) == 401


async def test_crafted_tokens(api: ApiClient) -> None:
    sa = await make_sa(api)
    signer = await api.server.tokens.load()
    ref = satoken.Ref("bot", sa["metadata"]["uid"])
    import time

    def craft(**kw: Any) -> str:
        args: dict[str, Any] = dict(issuer=DEFAULT_ISSUER, audiences=[DEFAULT_ISSUER], namespace=NS,
                                    service_account=ref, now=time.time(), expiration_seconds=600)
        args.update(kw)
        return signer.sign(satoken.bound_claims(**args))

    assert await status_with(api, craft()) == 200                                     # control
    assert await status_with(api, craft(now=time.time() - 3600)) == 401               # expired an hour ago
    assert await status_with(api, craft(issuer="https://evil.example")) == 401        # foreign issuer
    assert await status_with(api, craft(audiences=["vault"])) == 401                  # not for the API server
    assert await status_with(api, craft(audiences=["vault", DEFAULT_ISSUER])) == 200  # one matching audience
    assert await status_with(api, craft(service_account=satoken.Ref("bot", "wrong-uid"))) == 401
    assert await status_with(api, craft(namespace="kube-system")) == 401              # no such service account
    other = satoken.Signer.of(satoken.generate_private_key())
    assert await status_with(api, other.sign(claims_of(craft()))) == 401             # signed by another key
    # an additional issuer is accepted once configured
    api.server.tokens.options.issuers = (DEFAULT_ISSUER, "https://old.example")
    assert await status_with(api, craft(issuer="https://old.example")) == 200


async def test_tampered_token_is_401_with_the_plain_unauthorized_status(api: ApiClient) -> None:
    await make_sa(api)
    token = await token_for(api)
    h, p, s = token.split(".")
    evil = dict(claims_of(token), sub="system:serviceaccount:kube-system:default")
    forged = f"{h}.{base64.urlsafe_b64encode(json.dumps(evil).encode()).rstrip(b'=').decode()}.{s}"
    st, doc, _ = await api.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {forged}"})
    assert st == 401
    assert doc == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert await status_with(api, flipped) == 401
    # other schemes and empty bearer tokens are "no token" (anonymous applies on this test server)
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer ", "Bearer"):
        st, _, _ = await api.get("/api/v1/namespaces", headers={"Authorization": header})
        assert st == 200, header


async def test_legacy_secret_based_token(api: ApiClient) -> None:
    sa = await make_sa(api)
    signer = await api.server.tokens.load()
    token = signer.sign(satoken.legacy_claims(namespace=NS, service_account=satoken.Ref("bot", sa["metadata"]["uid"]),
                                              secret_name="bot-token"))
    assert await status_with(api, token) == 401   # no secret holds it yet
    secret = {"metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}},
              "type": "kubernetes.io/service-account-token",
              "data": {"token": base64.b64encode(token.encode()).decode()}}
    st, doc, _ = await api.post(f"/api/v1/namespaces/{NS}/secrets", secret)
    assert st == 201, doc
    await wait_for(lambda: status_with_is(api, token, 200), timeout=5, what="legacy token accepted")
    st, me = await whoami(api, token)
    assert me["status"]["userInfo"]["username"] == "system:serviceaccount:default:bot"
    st, _, _ = await api.patch(f"/api/v1/namespaces/{NS}/secrets/bot-token",
                               {"metadata": {"labels": {"kubernetes.io/legacy-token-invalid-since": "2026-01-01"}}})
    assert st == 200
    await wait_for(lambda: gone(api, token), timeout=5, what="invalidated legacy token rejected")


async def status_with_is(api: ApiClient, token: str, code: int) -> bool:
    return await status_with(api, token) == code


async def test_lookups_are_cached_and_invalidated_by_watch(api: ApiClient) -> None:
    await make_sa(api)
    await make_pod(api, "web")
    token = await token_for(api, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"})
    assert await status_with(api, token) == 200
    reads = api.server.authn.objects.reads
    for _ in range(20):
        assert await status_with(api, token) == 200
    assert api.server.authn.objects.reads == reads  # served from the cache
    st, _, _ = await api.patch(f"/api/v1/namespaces/{NS}/pods/web", {"metadata": {"labels": {"a": "b"}}})
    assert st == 200

    async def reread() -> bool:
        assert await status_with(api, token) == 200
        return api.server.authn.objects.reads > reads

    await wait_for(reread, timeout=5, what="a changed pod is read again")


async def test_openid_discovery_lets_a_relying_party_verify_tokens(api: ApiClient) -> None:
    await make_sa(api)
    token = await token_for(api, audiences=["vault"])
    st, cfg, headers = await api.get("/.well-known/openid-configuration")
    assert st == 200
    assert cfg["issuer"] == DEFAULT_ISSUER and cfg["jwks_uri"].endswith("/openid/v1/jwks")
    assert cfg["id_token_signing_alg_values_supported"] == ["RS256"] and cfg["response_types_supported"] == ["id_token"]
    assert headers["Cache-Control"] == "public, max-age=3600"
    st, jwks, headers = await api.get("/openid/v1/jwks")
    assert st == 200 and headers["Content-Type"].startswith("application/jwk-set+json")
    from cryptography.hazmat.primitives.asymmetric import rsa

    (k,) = jwks["keys"]
    assert k["kid"] == header_of(token)["kid"]

    def num(s: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

    pub = rsa.RSAPublicNumbers(num(k["e"]), num(k["n"])).public_key()
    payload = satoken.decode(token, [satoken.VerificationKey(pub, k["kid"])])
    assert payload is not None and payload["aud"] == ["vault"]


async def test_discovery_is_off_for_a_non_https_issuer(api: ApiClient) -> None:
    api.server.tokens.options.issuers = ("kybernetes",)
    st, _, _ = await api.get("/.well-known/openid-configuration")
    assert st == 404
