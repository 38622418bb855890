"""Unit tests of pki/satoken.py: RS256 JWTs, upstream key ids and claims, strict parsing."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from kybernetes.pki import satoken
from kybernetes.pki.satoken import Ref

ISSUER = "https://kubernetes.default.svc.cluster.local"
SA = Ref("bot", "0b6d2b3c-1111-4f1e-9a7e-5d2a7c1f0001")
POD = Ref("web-0", "0b6d2b3c-2222-4f1e-9a7e-5d2a7c1f0002")
NOW = 1_800_000_000


@pytest.fixture(scope="module")
def signer() -> satoken.Signer:
    return satoken.Signer.of(satoken.generate_private_key())


@pytest.fixture(scope="module")
def other() -> satoken.Signer:
    return satoken.Signer.of(satoken.generate_private_key())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**kw: object) -> dict:
    args: dict = dict(issuer=ISSUER, audiences=[ISSUER], namespace="team", service_account=SA, now=NOW,
                      expiration_seconds=3600)
    args.update(kw)
    return satoken.bound_claims(**args)


def segments(token: str) -> list[str]:
    return token.split(".")


# --------------------------------------------------------------------------- round trip


def test_round_trip_and_upstream_shape(signer: satoken.Signer) -> None:
    token = signer.sign(claims(pod=POD, node=Ref("node-1", "n-uid"), warn_after_seconds=3607, jti="j-1"))
    header = json.loads(base64.urlsafe_b64decode(segments(token)[0] + "=="))
    assert header == {"alg": "RS256", "kid": signer.kid}
    payload = satoken.decode(token, [signer.verification_key])
    assert payload == {
        "aud": [ISSUER], "exp": NOW + 3600, "iat": NOW, "nbf": NOW, "iss": ISSUER, "jti": "j-1",
        "sub": "system:serviceaccount:team:bot",
        "kubernetes.io": {"namespace": "team", "serviceaccount": {"name": "bot", "uid": SA.uid},
                          "pod": {"name": "web-0", "uid": POD.uid}, "node": {"name": "node-1", "uid": "n-uid"},
                          "warnafter": NOW + 3607},
    }
    c = satoken.parse_claims(payload)
    assert c is not None and not c.legacy
    assert (c.username, c.namespace, c.service_account, c.pod, c.node, c.secret) == (
        "system:serviceaccount:team:bot", "team", SA, POD, Ref("node-1", "n-uid"), None)
    assert (c.expires_at, c.not_before, c.issued_at, c.warn_after, c.audiences, c.jti) == (
        NOW + 3600, NOW, NOW, NOW + 3607, (ISSUER,), "j-1")


def test_key_id_is_upstreams_sha256_of_der_public_key(signer: satoken.Signer) -> None:
    der = signer.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    assert signer.kid == b64(hashlib.sha256(der).digest())
    assert len(signer.kid) == 43 and "=" not in signer.kid


def test_signature_is_pkcs1v15_sha256_verifiable_by_anyone(signer: satoken.Signer) -> None:
    token = signer.sign(claims())
    h, p, s = segments(token)
    signer.private_key.public_key().verify(base64.urlsafe_b64decode(s + "=="), f"{h}.{p}".encode(),
                                           padding.PKCS1v15(), hashes.SHA256())


def test_jti_is_a_fresh_uuid_per_token() -> None:
    a, b = claims()["jti"], claims()["jti"]
    assert a != b and len(a) == 36


def test_jwks_publishes_the_modulus_and_exponent(signer: satoken.Signer) -> None:
    doc = satoken.jwks([signer.verification_key, signer.verification_key])
    assert len(doc["keys"]) == 1
    k = doc["keys"][0]
    assert (k["use"], k["kty"], k["alg"], k["kid"], k["e"]) == ("sig", "RSA", "RS256", signer.kid, "AQAB")
    n = int.from_bytes(base64.urlsafe_b64decode(k["n"] + "=="), "big")
    assert n == signer.private_key.public_key().public_numbers().n


def test_load_keys_from_pem_files(signer: satoken.Signer, other: satoken.Signer) -> None:
    priv = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
    pub = other.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    assert satoken.key_id(satoken.load_private_key(priv).public_key()) == signer.kid
    keys = satoken.load_public_keys(priv + b"\n" + pub)
    assert [satoken.key_id(k) for k in keys] == [signer.kid, other.kid]
    with pytest.raises(ValueError):
        satoken.load_public_keys(b"not a key")
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError):
        satoken.load_private_key(ec_pem)


def test_key_rotation_tries_every_key_without_kid(signer: satoken.Signer, other: satoken.Signer) -> None:
    token = other.sign(claims())
    keys = [signer.verification_key, other.verification_key]
    assert satoken.decode(token, keys) is not None
    assert satoken.decode(token, [signer.verification_key]) is None  # kid unknown -> invalid
    h, p, s = segments(token)
    no_kid = b64(json.dumps({"alg": "RS256"}).encode())
    sig = other.private_key.sign(f"{no_kid}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert satoken.decode(f"{no_kid}.{p}.{b64(sig)}", keys) is not None


# --------------------------------------------------------------------------- tampering


def _flip(text: str, i: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c = text[i]
    return text[:i] + alphabet[(alphabet.index(c) + 1) % 64] + text[i + 1:]


def test_every_single_character_change_is_rejected(signer: satoken.Signer) -> None:
    token = signer.sign(claims())
    keys = [signer.verification_key]
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        assert satoken.decode(_flip(token, i), keys) is None, f"flip at {i} accepted"


@pytest.mark.parametrize("make", [
    pytest.param(lambda t, s: t + ".", id="four-segments"),
    pytest.param(lambda t, s: ".".join(t.split(".")[:2]), id="two-segments"),
    pytest.param(lambda t, s: t[:-1], id="truncated"),
    pytest.param(lambda t, s: t + "A", id="extended"),
    pytest.param(lambda t, s: t + "==", id="padded"),
    pytest.param(lambda t, s: t.replace("-", "+").replace("_", "/"), id="std-alphabet"),
    pytest.param(lambda t, s: " " + t, id="leading-space"),
    pytest.param(lambda t, s: t.split(".")[0] + "." + t.split(".")[1] + ".", id="no-signature"),
    pytest.param(lambda t, s: b64(b'{"alg":"none"}') + "." + t.split(".")[1] + ".", id="alg-none"),
    pytest.param(lambda t, s: _resign_header(t, s, {"alg": "RS256", "kid": s.kid, "crit": ["exp"]}), id="crit-header"),
    pytest.param(lambda t, s: _resign_header(t, s, {"alg": "RS512", "kid": s.kid}), id="other-alg-label"),
    pytest.param(lambda t, s: _hs256_with_public_key(t, s), id="hs256-key-confusion"),
    pytest.param(lambda t, s: _swap_payload(t), id="swapped-payload"),
    pytest.param(lambda t, s: "x" * (satoken.MAX_TOKEN_LENGTH + 1), id="oversized"),
    pytest.param(lambda t, s: t.replace("e", "é", 1), id="non-ascii"),
    pytest.param(lambda t, s: None, id="none"),
    pytest.param(lambda t, s: b"bytes", id="bytes"),
])
def test_tampered_or_malformed_tokens_are_invalid(signer: satoken.Signer, make) -> None:  # type: ignore[no-untyped-def]
    token = signer.sign(claims())
    assert satoken.decode(make(token, signer), [signer.verification_key]) is None


def _resign_header(token: str, s: satoken.Signer, header: dict) -> str:
    h = b64(json.dumps(header).encode())
    p = token.split(".")[1]
    sig = s.private_key.sign(f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{h}.{p}.{b64(sig)}"


def _hs256_with_public_key(token: str, s: satoken.Signer) -> str:
    h = b64(json.dumps({"alg": "HS256", "kid": s.kid}).encode())
    p = token.split(".")[1]
    key = s.private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(f"{h}.{p}".encode())
    return f"{h}.{p}.{b64(mac.finalize())}"


def _swap_payload(token: str) -> str:
    h, _, s = token.split(".")
    evil = dict(claims(), sub="system:serviceaccount:kube-system:admin")
    return f"{h}.{b64(json.dumps(evil).encode())}.{s}"


def test_signed_by_another_key_is_invalid(signer: satoken.Signer, other: satoken.Signer) -> None:
    forged = satoken.Signer(other.private_key, signer.kid)  # claims our kid, signed with another key
    assert satoken.decode(forged.sign(claims()), [signer.verification_key]) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 st.lists(st.text(alphabet="ABCabc012-_=+/.", max_size=60), min_size=1, max_size=5).map(".".join)))
def test_decode_never_raises(text: str) -> None:
    key = satoken.VerificationKey.of(_FUZZ_KEY.public_key())
    assert satoken.decode(text, [key]) is None
    assert satoken.parse_claims(text) is None


_FUZZ_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_b64url_is_strict_and_canonical() -> None:
    assert satoken.b64url_decode("AQAB") == b"\x01\x00\x01"
    for bad in ("AQAB=", "AQ+B", "AQB", "A", "", "AQ B", "AR"):  # "AR": stray bits in the last char
        with pytest.raises(ValueError):
            satoken.b64url_decode(bad)
    assert satoken.b64url_decode("AQ") == b"\x01"


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda c: c.pop("exp"), id="no-exp"),
    pytest.param(lambda c: c.update(exp="soon"), id="exp-string"),
    pytest.param(lambda c: c.update(exp=True), id="exp-bool"),
    pytest.param(lambda c: c.update(exp=float("nan")), id="exp-nan"),
    pytest.param(lambda c: c.update(nbf=-5), id="nbf-negative"),
    pytest.param(lambda c: c.pop("iss"), id="no-iss"),
    pytest.param(lambda c: c.update(aud=[1]), id="aud-not-strings"),
    pytest.param(lambda c: c.update(jti=7), id="jti-int"),
    pytest.param(lambda c: c.update(sub="system:serviceaccount:other:bot"), id="sub-disagrees"),
    pytest.param(lambda c: c.pop("kubernetes.io"), id="no-private-claim"),
    pytest.param(lambda c: c["kubernetes.io"].update(namespace=""), id="empty-namespace"),
    pytest.param(lambda c: c["kubernetes.io"]["serviceaccount"].pop("uid"), id="sa-without-uid"),
    pytest.param(lambda c: c["kubernetes.io"].update(pod={"name": "p"}), id="pod-without-uid"),
    pytest.param(lambda c: c["kubernetes.io"].update(pod="p"), id="pod-not-object"),
    pytest.param(lambda c: c["kubernetes.io"].update(secret={"name": "s", "uid": "u"}, pod={"name": "p", "uid": "u"}),
                 id="pod-and-secret"),
    pytest.param(lambda c: c["kubernetes.io"].update(warnafter="later"), id="warnafter-string"),
])
def test_bound_claims_are_parsed_strictly(mutate) -> None:  # type: ignore[no-untyped-def]
    c = claims()
    assert satoken.parse_claims(c) is not None
    mutate(c)
    assert satoken.parse_claims(c) is None


def test_audience_may_be_a_single_string() -> None:
    c = claims()
    c["aud"] = "api"
    parsed = satoken.parse_claims(c)
    assert parsed is not None and parsed.audiences == ("api",)


def test_legacy_claims_round_trip_and_strictness(signer: satoken.Signer) -> None:
    lc = satoken.legacy_claims(namespace="team", service_account=SA, secret_name="bot-token")
    assert lc == {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "team",
        "kubernetes.io/serviceaccount/secret.name": "bot-token",
        "kubernetes.io/serviceaccount/service-account.name": "bot",
        "kubernetes.io/serviceaccount/service-account.uid": SA.uid,
        "sub": "system:serviceaccount:team:bot",
    }
    parsed = satoken.parse_claims(satoken.decode(signer.sign(lc), [signer.verification_key]))
    assert parsed is not None and parsed.legacy and parsed.secret == Ref("bot-token", "") and parsed.expires_at is None
    for key in list(lc):
        broken = dict(lc)
        broken.pop(key)
        if key != "iss":
            assert satoken.parse_claims(broken) is None, key
    assert satoken.parse_claims(dict(lc, sub="system:serviceaccount:team:other")) is None


def test_time_checks_use_leeway() -> None:
    c = satoken.parse_claims(claims())
    assert c is not None
    assert satoken.check_time(c, NOW) is None
    assert satoken.check_time(c, NOW + 3600 + 60) is None
    assert satoken.check_time(c, NOW + 3600 + 61) == "service account token has expired"
    assert satoken.check_time(c, NOW - 61) == "service account token is not valid yet"
    assert satoken.check_time(c, NOW - 60) is None


def test_usernames() -> None:
    assert satoken.make_username("ns", "sa") == "system:serviceaccount:ns:sa"
    assert satoken.split_username("system:serviceaccount:ns:sa") == ("ns", "sa")
    for bad in ("system:serviceaccount:ns", "system:serviceaccount::sa", "admin", "system:serviceaccount:a:b:c"):
        assert satoken.split_username(bad) is None


def test_a_token_binds_to_one_object_type() -> None:
    with pytest.raises(ValueError):
        claims(pod=POD, secret=Ref("s", "u"))
