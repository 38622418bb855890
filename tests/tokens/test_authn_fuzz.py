"""Fuzzing the Authorization header: garbage, garbled, truncated, tampered or re-signed tokens
always get exactly the no-credentials 401 Status — never a 500, never access.

The server runs with anonymous access off (as `kyb apiserver` does) on its own event loop in a
background thread, so hypothesis drives it with plain blocking HTTP requests.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kybernetes.apiserver.app import ApiServer, ServerConfig, serve
from kybernetes.apiserver.tokens import DEFAULT_ISSUER
from kybernetes.pki import satoken

pytestmark = pytest.mark.integration

UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
PATHS = ("/api/v1/namespaces", "/api/v1/namespaces/default/secrets", "/apis", "/version",
         "/.well-known/openid-configuration")


class ThreadServer:
    """An API server (sqlite in ``tmp``) serving on its own loop in a thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.server: ApiServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        from kybernetes.storage import open_store

        store = open_store("sqlite", path=str(self.tmp / "state.db"))
        await store.start()
        self.store = store
        self.server = ApiServer(store, ServerConfig(host="127.0.0.1", port=0, anonymous_auth=False, compaction_interval=0,
                                                         authorization_mode="AlwaysAllow"))
        ready: asyncio.Future[int] = self.loop.create_future()
        self._task = asyncio.ensure_future(serve(self.server, sock_ready=ready))
        self.port = await ready

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._task is not None
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            await self.store.close()

        try:
            if self._task is not None:
                self.call(_stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def request(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            return r.status, json.loads(body) if body[:1] == b"{" else body
        finally:
            conn.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    s = ThreadServer(tmp_path_factory.mktemp("fuzz"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def valid(srv: ThreadServer) -> dict[str, Any]:
    """A service account, a pod bound token for it, and the signer."""
    from kybernetes.apiserver.tokens import issue_token
    from kybernetes.apiserver.rest import WriteOptions

    async def setup() -> dict[str, Any]:
        s = srv.server
        assert s is not None
        sa_info = s.registry.lookup("", "v1", "serviceaccounts")
        pod_info = s.registry.lookup("", "v1", "pods")
        assert sa_info and pod_info
        sa = await s.api.create(sa_info, "default", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}}, WriteOptions())
        await s.api.create(pod_info, "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                                 "spec": {"serviceAccountName": "bot", "containers": [{"name": "c", "image": "x"}]}}, WriteOptions())
        out, _ = await issue_token(s, "default", "bot", {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}}})
        return {"token": out["status"]["token"], "uid": sa["metadata"]["uid"], "signer": await s.tokens.load()}

    return srv.call(setup())  # type: ignore[no-any-return]


def assert_refused(srv: ThreadServer, header: str, path: str = "/api/v1/namespaces") -> None:
    status, body = srv.request(path, {"Authorization": header})
    assert status == 401, (header[:120], status, body)
    assert body == UNAUTHORIZED


def test_controls(srv: ThreadServer, valid: dict[str, Any]) -> None:
    assert srv.request("/api/v1/namespaces", {})[0] == 401
    assert srv.request("/api/v1/namespaces", {})[1] == UNAUTHORIZED
    assert srv.request("/healthz", {})[0] == 200
    for path in PATHS:
        assert srv.request(path, {"Authorization": f"Bearer {valid['token']}"})[0] == 200, path
    assert srv.request("/api/v1/namespaces", {"Authorization": f"bearer {valid['token']}"})[0] == 200


HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=400)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(header=st.one_of(HEADER_TEXT.map(lambda t: "Bearer " + t.strip()), HEADER_TEXT.map(lambda t: "Bearer " + t + " x")),
       path=st.sampled_from(PATHS))
def test_random_bearer_tokens(srv: ThreadServer, header: str, path: str) -> None:
    assume(header.split(" ", 2)[1:2] != [""])  # an empty token is "no token": also 401 here, tested below
    assert_refused(srv, header, path)


@FUZZ
@given(header=HEADER_TEXT)
def test_random_authorization_headers(srv: ThreadServer, header: str) -> None:
    assert_refused(srv, header)


def _mutations(token: str) -> st.SearchStrategy[str]:
    n = len(token)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
    return st.one_of(
        st.integers(0, n - 1).map(lambda i: token[:i]),                                            # truncated
        st.tuples(st.integers(0, n - 1), st.sampled_from(alphabet)).map(lambda a: token[:a[0]] + a[1] + token[a[0] + 1:]),
        st.tuples(st.integers(0, n), st.sampled_from(alphabet)).map(lambda a: token[:a[0]] + a[1] + token[a[0]:]),
        st.integers(0, n - 1).map(lambda i: token[:i] + token[i + 1:]),                           # a char dropped
        st.permutations(token.split(".")).map(".".join),                                          # segments shuffled
        st.text(alphabet=alphabet, max_size=80).map(lambda t: token + t),                          # garbage appended
    )


@FUZZ
@given(data=st.data())
def test_tampered_tokens(srv: ThreadServer, valid: dict[str, Any], data: st.DataObject) -> None:
    token = valid["token"]
    bad = data.draw(_mutations(token))
    assume(bad != token and bad.strip() != token and bad.split(" ")[0] != token)
    assert_refused(srv, f"Bearer {bad}")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids, max_size=3),
                    max_leaves=8)


@FUZZ
@given(data=st.data())
def test_signed_but_wrong_claims(srv: ThreadServer, valid: dict[str, Any], data: st.DataObject) -> None:
    """Correctly signed tokens whose claims are garbled field by field never grant access."""
    now = int(time.time())
    base = satoken.bound_claims(issuer=DEFAULT_ISSUER, audiences=[DEFAULT_ISSUER], namespace="default",
                                service_account=satoken.Ref("bot", valid["uid"]), now=now, expiration_seconds=600)
    field = data.draw(st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "kubernetes.io", "namespace",
                                       "serviceaccount", "whole"]))
    value = data.draw(JSON)
    claims: Any = dict(base)
    if field == "whole":
        claims = value if isinstance(value, dict) else {"x": value}
    elif field in ("namespace", "serviceaccount"):
        claims["kubernetes.io"] = {**base["kubernetes.io"], field: value}
    else:
        claims[field] = value
    assume(claims != base and not _still_valid(claims, base, now))
    assert_refused(srv, "Bearer " + valid["signer"].sign(claims))


def _still_valid(claims: Any, base: dict[str, Any], now: int) -> bool:
    """Mutations that keep a token legitimately valid (e.g. a later exp, aud as a string)."""
    if not isinstance(claims, dict):
        return False
    c = satoken.parse_claims(claims)
    if c is None or c.issuer != DEFAULT_ISSUER or DEFAULT_ISSUER not in c.audiences:
        return False
    b = satoken.parse_claims(base)
    assert b is not None
    return (satoken.check_time(c, now) is None and (c.namespace, c.service_account) == (b.namespace, b.service_account)
            and c.pod is None and c.secret is None and c.node is None)


def test_reencoded_payload_with_stray_bits_is_refused(srv: ThreadServer, valid: dict[str, Any]) -> None:
    h, p, s = valid["token"].split(".")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == s
    for ch in "ABCDEFGHIJKLMNOP":  # same bytes, different trailing bits: never accepted unless identical
        alt = s[:-1] + ch
        if alt != s:
            assert_refused(srv, f"Bearer {h}.{p}.{alt}")
