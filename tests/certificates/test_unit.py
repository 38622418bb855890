"""The pure parts: bootstrap-token identity, CSR validation and update strategies, the built-in
signers' rules, the approver's recognisers, signing, the cleaner's deadlines and the kubelet's
TLS-bootstrap decisions. No sockets, no event loop."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kybernetes.api import csr as C
from kybernetes.apiserver import bootstraptoken as bt
from kybernetes.controllers import certificates as ctl
from kybernetes.kubelet import bootstrap as kb
from kybernetes.pki.certs import make_ca, make_client_cert
from kybernetes.pki.kubeconfig import write_kubeconfig

from .conftest import csr, request_pem

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
Obj = dict[str, Any]
NODE_REQ, NODE_KEY = request_pem("system:node:n1", ("system:nodes",))
ALICE_REQ, _ = request_pem("alice", ("devs",))


def cert_b64() -> str:
    ca, key = make_ca()
    cert, _ = make_client_cert(ca, key, "x", [], 1)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


CERT = cert_b64()


def with_status(obj: Obj, *conds: tuple[str, str], certificate: str | None = None) -> Obj:
    out = {**obj, "status": {"conditions": [{"type": t, "status": s} for t, s in conds]}}
    if certificate:
        out["status"]["certificate"] = certificate
    return out


# --------------------------------------------------------------------------- bootstrap tokens


def token_data(**over: str) -> dict[str, str]:
    d = {"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
         "expiration": "2026-11-22T13:00:00Z", "auth-extra-groups": "system:bootstrappers:kybernetes:default-node-token"}
    d.update(over)
    return {k: v for k, v in d.items() if v != "-"}


@pytest.mark.parametrize("data, secret, ok", [
    pytest.param(token_data(), "0123456789abcdef", True, id="valid"),
    pytest.param(token_data(), "0123456789abcdee", False, id="wrong-secret"),
    pytest.param(token_data(**{"token-id": "zzzzzz"}), "0123456789abcdef", False, id="id-mismatch"),
    pytest.param(token_data(expiration="2026-11-22T11:59:59Z"), "0123456789abcdef", False, id="expired"),
    pytest.param(token_data(expiration="tomorrow"), "0123456789abcdef", False, id="unparsable-expiry"),
    pytest.param(token_data(expiration="2026-11-23T00:00:00"), "0123456789abcdef", False, id="expiry-without-zone"),
    pytest.param(token_data(expiration="-"), "0123456789abcdef", True, id="no-expiry"),
    pytest.param(token_data(**{"usage-bootstrap-authentication": "-"}), "0123456789abcdef", False, id="no-usage"),
    pytest.param(token_data(**{"usage-bootstrap-authentication": "false"}), "0123456789abcdef", False, id="usage-false"),
    pytest.param(token_data(**{"auth-extra-groups": "system:masters"}), "0123456789abcdef", False, id="bad-group"),
])
def test_bootstrap_identity(data: dict[str, str], secret: str, ok: bool) -> None:
    found = bt.identity_from_data(data, "abcdef", secret, NOW)
    assert (found is not None) == ok
    if ok:
        assert found is not None and found[0] == "system:bootstrap:abcdef"
        assert found[1][0] == "system:bootstrappers" and found[1][-1] == "system:authenticated"


def test_bootstrap_groups_are_deduplicated_and_secret_shape_enforced() -> None:
    groups = "system:bootstrappers:a, system:bootstrappers:a,"
    found = bt.identity_from_data(token_data(**{"auth-extra-groups": groups}), "abcdef", "0123456789abcdef", NOW)
    assert found == ("system:bootstrap:abcdef",
                     ["system:bootstrappers", "system:bootstrappers:a", "system:authenticated"])
    s = bt.token_secret("abcdef.0123456789abcdef", ttl_seconds=60, now=NOW)
    assert s["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert bt.decoded_data(s)["expiration"] == "2026-11-22T12:01:00Z"
    assert bt.identity({**s, "type": "Opaque"}, "abcdef", "0123456789abcdef", NOW) is None
    with pytest.raises(ValueError):
        bt.token_secret("ABCDEF.0123456789abcdef")


# --------------------------------------------------------------------------- CSR validation


def fields(obj: Obj, old: Obj | None = None) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in C.validate_csr(obj, old)]


def tampered() -> str:
    pem = bytearray(base64.b64decode(NODE_REQ))
    der_start = pem.index(b"\n") + 1
    pem[der_start + 60] = ord("A") if pem[der_start + 60] != ord("A") else ord("B")
    return base64.b64encode(bytes(pem)).decode()


@pytest.mark.parametrize("obj, field, message", [
    pytest.param(csr("a", "aGVsbG8="), "spec.request", "CERTIFICATE REQUEST", id="not-pem"),
    pytest.param(csr("a", tampered()), "spec.request", "", id="tampered"),
    pytest.param(csr("a", NODE_REQ, signer="kubernetes.io/legacy-unknown"), "spec.signerName",
                 "the legacy signerName is not allowed via this API version", id="legacy-signer"),
    pytest.param(csr("a", NODE_REQ, signer=""), "spec.signerName", "Required value", id="no-signer"),
    pytest.param(csr("a", NODE_REQ, signer="kubelet"), "spec.signerName", "example.com/signer-name", id="no-slash"),
    pytest.param(csr("a", NODE_REQ, signer="example/x"), "spec.signerName", "at least two segments", id="one-label"),
    pytest.param(csr("a", NODE_REQ, signer="Example.com/x"), "spec.signerName", "validating label", id="upper-case"),
    pytest.param(csr("a", NODE_REQ, usages=()), "spec.usages", "Required value", id="no-usages"),
    pytest.param(csr("a", NODE_REQ, usages=("client auth", "bogus")), "spec.usages[1]", "Unsupported value",
                 id="unknown-usage"),
    pytest.param(csr("a", NODE_REQ, usages=("client auth", "client auth")), "spec.usages[1]", "Duplicate value",
                 id="duplicate-usage"),
    pytest.param(csr("a", NODE_REQ, expirationSeconds=599), "spec.expirationSeconds",
                 "may not specify a duration less than 600 seconds (10 minutes)", id="short-expiration"),
    pytest.param(with_status(csr("a", NODE_REQ), ("Approved", "True"), ("Denied", "True")),
                 "status.conditions[1].type", "Approved and Denied conditions are mutually exclusive",
                 id="approved-and-denied"),
    pytest.param(with_status(csr("a", NODE_REQ), ("Approved", "False")), "status.conditions[0].status",
                 'supported values: "True"', id="approved-false"),
    pytest.param(with_status(csr("a", NODE_REQ), ("Failed", "True"), ("Failed", "True")),
                 "status.conditions[1].type", "Duplicate value", id="duplicate-condition"),
    pytest.param(with_status(csr("a", NODE_REQ), ("", "True")), "status.conditions[0].type", "Required value",
                 id="condition-without-type"),
    pytest.param(with_status(csr("a", NODE_REQ), certificate=CERT), "status.certificate",
                 "only be set once the request is approved", id="certificate-before-approval"),
    pytest.param(with_status(csr("a", NODE_REQ), ("Approved", "True"), certificate="aGVsbG8="), "status.certificate",
                 "CERTIFICATE PEM block", id="certificate-not-pem"),
])
def test_validation_errors(obj: Obj, field: str, message: str) -> None:
    found = fields(obj)
    assert any(f == field and message in msg for f, msg in found), found


def test_valid_objects_and_tolerated_legacy_problems() -> None:
    assert fields(csr("a", NODE_REQ)) == []
    assert fields(csr("a", NODE_REQ, expirationSeconds=600, signer="example.com/my-signer")) == []
    assert fields(with_status(csr("a", NODE_REQ), ("Approved", "True"), certificate=CERT)) == []
    both = with_status(csr("a", NODE_REQ), ("Approved", "True"), ("Denied", "True"))
    assert fields(both, both) == [], "already stored that way: tolerated"
    legacy = csr("a", NODE_REQ, signer="kubernetes.io/legacy-unknown")
    assert fields(legacy, legacy) == []


def test_update_rules() -> None:
    approved = with_status(csr("a", NODE_REQ), ("Approved", "True"))
    issued = with_status(csr("a", NODE_REQ), ("Approved", "True"), certificate=CERT)
    assert ("status.conditions", 'Forbidden: updates may not remove a condition of type "Approved"') in \
        fields(csr("a", NODE_REQ), approved)
    assert fields(issued, approved) == []
    other = cert_b64()
    assert ("status.certificate", "Forbidden: updates may not modify existing certificate content") in \
        fields(with_status(csr("a", NODE_REQ), ("Approved", "True"), certificate=other), issued)


def test_update_strategies_keep_what_a_path_may_not_change() -> None:
    old = with_status(csr("a", NODE_REQ), ("Approved", "True"))
    old["metadata"] = {"name": "a", "resourceVersion": "5", "labels": {"x": "1"}}
    # the object itself: only metadata changes
    new = with_status(csr("a", ALICE_REQ, signer="example.com/x"), ("Denied", "True"), certificate=CERT)
    new["metadata"] = {"name": "a", "labels": {"x": "2"}}
    C.prepare_for_update(new, old, "", "2026-11-22T12:00:00Z")
    assert new["spec"] == old["spec"] and new["status"] == old["status"] and new["metadata"]["labels"] == {"x": "2"}
    # /status: the certificate and other conditions, never Approved/Denied
    new = with_status(csr("a", ALICE_REQ), ("Denied", "True"), ("Failed", "True"), certificate=CERT)
    new["metadata"] = {"name": "a", "resourceVersion": "5", "labels": {"y": "1"}}
    C.prepare_for_update(new, old, "status", "2026-11-22T12:00:00Z")
    assert new["spec"] == old["spec"] and new["status"]["certificate"] == CERT
    assert [(c["type"], c.get("lastUpdateTime")) for c in new["status"]["conditions"]] == [
        ("Approved", None), ("Failed", "2026-11-22T12:00:00Z")]
    assert new["metadata"] == {**old["metadata"], "resourceVersion": "5"}
    # /approval: only the conditions
    new = with_status(csr("a", ALICE_REQ), ("Approved", "True"), ("Denied", "True"), certificate=CERT)
    new["status"]["conditions"][0]["lastUpdateTime"] = "2020-01-01T00:00:00Z"
    C.prepare_for_update(new, with_status(csr("a", NODE_REQ)), "approval", "2026-11-22T12:00:00Z")
    assert "certificate" not in new["status"] and new["spec"]["request"] == NODE_REQ
    assert [c["lastUpdateTime"] for c in new["status"]["conditions"]] == ["2020-01-01T00:00:00Z", "2026-11-22T12:00:00Z"]


def test_requester_replaces_what_the_client_sent() -> None:
    obj = csr("a", NODE_REQ, username="system:admin", groups=["system:masters"], uid="x", extra={"k": ["v"]})
    C.set_requester(obj, {"name": "system:bootstrap:abcdef", "groups": ["system:bootstrappers"]})
    assert {k: obj["spec"].get(k) for k in ("username", "groups", "uid", "extra")} == {
        "username": "system:bootstrap:abcdef", "groups": ["system:bootstrappers"], "uid": None, "extra": None}


@pytest.mark.parametrize("conds, cert, summary", [
    pytest.param((), None, "Pending", id="pending"),
    pytest.param((("Approved", "True"),), None, "Approved", id="approved"),
    pytest.param((("Approved", "True"),), CERT, "Approved,Issued", id="issued"),
    pytest.param((("Denied", "True"),), None, "Denied", id="denied"),
    pytest.param((("Approved", "True"), ("Failed", "True")), None, "Approved,Failed", id="failed"),
])
def test_condition_column(conds: tuple[tuple[str, str], ...], cert: str | None, summary: str) -> None:
    assert C.condition_summary(with_status(csr("a", NODE_REQ), *conds, certificate=cert)) == summary


# --------------------------------------------------------------------------- signers and approver


def req(b64: str) -> Any:
    return C.decode_request(b64)


@pytest.mark.parametrize("signer, request_b64, usages, problem", [
    pytest.param(C.KUBELET_CLIENT, NODE_REQ, ["digital signature", "client auth"], None, id="kubelet-client"),
    pytest.param(C.KUBELET_CLIENT, NODE_REQ, ["digital signature", "key encipherment", "client auth"], None,
                 id="kubelet-client-rsa-usages"),
    pytest.param(C.KUBELET_CLIENT, NODE_REQ, ["client auth"], "usages did not match", id="kubelet-client-usages"),
    pytest.param(C.KUBELET_CLIENT, request_pem("system:node:n1", ("system:masters",))[0], ["digital signature", "client auth"],
                 "subject organization is not system:nodes", id="kubelet-client-org"),
    pytest.param(C.KUBELET_CLIENT, request_pem("alice", ("system:nodes",))[0], ["digital signature", "client auth"],
                 "subject common name does not begin with system:node:", id="kubelet-client-cn"),
    pytest.param(C.KUBELET_CLIENT, request_pem("system:node:n1", ("system:nodes",), dns=("n1",))[0],
                 ["digital signature", "client auth"], "DNS subjectAltNames are not allowed", id="kubelet-client-san"),
    pytest.param(C.KUBELET_SERVING, request_pem("system:node:n1", ("system:nodes",), ips=("10.0.0.1",))[0],
                 ["digital signature", "server auth"], None, id="kubelet-serving"),
    pytest.param(C.KUBELET_SERVING, NODE_REQ, ["digital signature", "server auth"],
                 "DNS or IP subjectAltName is required", id="kubelet-serving-no-san"),
    pytest.param(C.KUBE_APISERVER_CLIENT, ALICE_REQ, ["client auth"], None, id="apiserver-client"),
    pytest.param(C.KUBE_APISERVER_CLIENT, ALICE_REQ, ["server auth", "client auth"],
                 "invalid usage for client certificate: server auth", id="apiserver-client-server-usage"),
    pytest.param(C.KUBE_APISERVER_CLIENT, ALICE_REQ, ["digital signature"],
                 "missing required usage for client certificate: client auth", id="apiserver-client-no-client-auth"),
])
def test_signer_rules(signer: str, request_b64: str, usages: list[str], problem: str | None) -> None:
    found = C.signer_error(signer, req(request_b64), usages)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_recognizers() -> None:
    new_node = csr("a", NODE_REQ, username="system:bootstrap:abcdef")
    assert [r.subresource for r in ctl.recognize(new_node, req(NODE_REQ))] == ["nodeclient"]
    renewal = csr("a", NODE_REQ, username="system:node:n1")
    assert [r.subresource for r in ctl.recognize(renewal, req(NODE_REQ))] == ["selfnodeclient", "nodeclient"]
    assert ctl.recognize(csr("a", NODE_REQ, signer=C.KUBE_APISERVER_CLIENT), req(NODE_REQ)) == []
    assert ctl.recognize(csr("a", NODE_REQ, usages=("client auth", "server auth")), req(NODE_REQ)) == []
    review = ctl.subject_access_review({"username": "u", "groups": ["g"]}, "nodeclient")
    assert review["spec"]["resourceAttributes"]["subresource"] == "nodeclient" and review["spec"]["user"] == "u"


def test_signing() -> None:
    ca, ca_key = make_ca()
    now = ca.not_valid_before_utc + dt.timedelta(days=1)
    key = ec.generate_private_key(ec.SECP256R1())
    request = req(request_pem("system:node:n1", ("system:nodes",), key=key)[0])

    def signed(spec: Obj, max_seconds: int = 86400 * 365) -> x509.Certificate:
        return x509.load_pem_x509_certificate(ctl.sign(request, spec, ca, ca_key, max_seconds=max_seconds, now=now))

    short = signed({"usages": ["digital signature", "client auth"], "expirationSeconds": 3600})
    assert short.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    assert short.issuer == ca.subject
    assert short.not_valid_before_utc == now - dt.timedelta(minutes=5)
    assert short.not_valid_after_utc == now + dt.timedelta(hours=1), "short-lived: not shortened by the backdate"
    assert short.public_key().public_numbers() == key.public_key().public_numbers()
    ku = short.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment and not ku.key_cert_sign
    assert short.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert short.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    capped = signed({"usages": ["client auth"], "expirationSeconds": 10 ** 9}, max_seconds=86400)
    assert capped.not_valid_after_utc == now + dt.timedelta(days=1, minutes=-5)
    default = signed({"usages": ["client auth"]}, max_seconds=86400 * 2)
    assert default.not_valid_after_utc == now + dt.timedelta(days=2, minutes=-5)
    assert signed({"usages": ["client auth"]}, max_seconds=86400 * 10 ** 5).not_valid_after_utc == ca.not_valid_after_utc
    with pytest.raises(x509.ExtensionNotFound):
        signed({"usages": ["client auth"]}).extensions.get_extension_for_class(x509.KeyUsage)
    with pytest.raises(ValueError, match="expired"):
        ctl.sign(request, {"usages": ["client auth"]}, ca, ca_key, max_seconds=60, now=ca.not_valid_after_utc)
    serving = req(request_pem("system:node:n1", ("system:nodes",), dns=("n1.example",), ips=("10.0.0.1",))[0])
    cert = x509.load_pem_x509_certificate(ctl.sign(serving, {"usages": ["server auth", "key encipherment"]}, ca,
                                                   ca_key, max_seconds=3600, now=now))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["n1.example"]
    assert [ctl.certificate_seconds(x, 3600) for x in (None, 10, 1800, 7200)] == [3600, 600, 1800, 3600]


def at(minutes: int) -> str:
    return (NOW + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def aged(conds: list[Obj], cert: str | None = None) -> Obj:
    obj = csr("a", NODE_REQ)
    obj["metadata"]["creationTimestamp"] = at(0)
    obj["status"] = {"conditions": conds}
    if cert:
        obj["status"]["certificate"] = cert
    return obj


@pytest.mark.parametrize("obj, deadline", [
    pytest.param(aged([]), NOW + dt.timedelta(hours=24), id="pending-24h"),
    pytest.param(aged([{"type": "Denied", "status": "True", "lastUpdateTime": at(10)}]),
                 NOW + dt.timedelta(minutes=70), id="denied-1h"),
    pytest.param(aged([{"type": "Approved", "status": "True", "lastUpdateTime": at(10)},
                       {"type": "Failed", "status": "True", "lastUpdateTime": at(20)}]),
                 NOW + dt.timedelta(minutes=80), id="failed-1h"),
    pytest.param(aged([{"type": "Approved", "status": "True", "lastUpdateTime": at(10)}]),
                 NOW + dt.timedelta(minutes=10, hours=24), id="approved-unissued-24h"),
    pytest.param(aged([{"type": "Approved", "status": "True", "lastUpdateTime": at(10)}], CERT),
                 NOW + dt.timedelta(minutes=70), id="issued-1h"),
    pytest.param(aged([{"type": "Approved", "status": "True"}]), None, id="no-times"),
])
def test_cleanup_deadlines(obj: Obj, deadline: dt.datetime | None) -> None:
    assert ctl.cleanup_deadline(obj) == deadline


def test_cleanup_of_an_expired_certificate() -> None:
    ca, key = make_ca()
    cert, _ = make_client_cert(ca, key, "x", [], 1)
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
    obj = aged([{"type": "Approved", "status": "True", "lastUpdateTime": "2099-01-01T00:00:00Z"}], b64)
    assert ctl.cleanup_deadline(obj) == cert.not_valid_after_utc


# --------------------------------------------------------------------------- kubelet TLS bootstrap


def test_kubelet_request_and_its_name() -> None:
    pem, key = kb.make_request("n1")
    again, same_key = kb.make_request("n1", key)
    assert same_key == key and again != pem, "ECDSA signatures differ; the name must not"
    assert kb.request_name(pem) == kb.request_name(again)
    assert kb.request_name(kb.make_request("n2", key)[0]) != kb.request_name(pem)
    assert kb.request_name(kb.make_request("n1")[0]) != kb.request_name(pem)
    name = kb.request_name(pem)
    obj = kb.csr_object(name, pem)
    assert name.startswith("node-csr-") and C.node_client_name(obj, C.decode_request(obj["spec"]["request"])) == "n1"
    assert kb.compatible(kb.csr_object(name, again), obj)
    assert not kb.compatible(kb.csr_object(name, kb.make_request("n1")[0]), obj)


def test_kubelet_outcome() -> None:
    pem, key = kb.make_request("n1")
    obj = kb.csr_object("node-csr-x", pem)
    assert kb.outcome(obj, key) is None
    denied = with_status(obj, ("Denied", "True"))
    denied["status"]["conditions"][0].update(reason="NoWay", message="not you")
    with pytest.raises(kb.BootstrapError, match="node-csr-x denied, reason: NoWay, message: not you"):
        kb.outcome(denied, key)
    ca, ca_key = make_ca()
    cert = ctl.sign(C.decode_request(obj["spec"]["request"]), obj["spec"], ca, ca_key, max_seconds=3600,
                    now=dt.datetime.now(dt.UTC))
    issued = with_status(obj, ("Approved", "True"), certificate=base64.b64encode(cert).decode())
    assert kb.outcome(issued, key) == cert
    with pytest.raises(kb.BootstrapError, match="not for our key"):
        kb.outcome(issued, kb.new_key_pem())


def test_kubelet_needs_bootstrap(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    assert kb.needs_bootstrap(tmp_path / "missing", now)
    (tmp_path / "junk").write_text("::: not yaml {")
    assert kb.needs_bootstrap(tmp_path / "junk", now)
    ca, key = make_ca()
    cert, ckey = make_client_cert(ca, key, "system:node:n1", ["system:nodes"], 30)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    kpem = ckey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    kc = write_kubeconfig(tmp_path / "k", server="https://127.0.0.1:1", ca_pem=ca_pem, cert_pem=pem, key_pem=kpem)
    assert not kb.needs_bootstrap(kc, now)
    assert kb.needs_bootstrap(kc, now + dt.timedelta(days=29, hours=1)), "renewed a day before it expires"
    tok = write_kubeconfig(tmp_path / "t", server="https://127.0.0.1:1", ca_pem=ca_pem, token="abcdef.0123456789abcdef")
    assert kb.needs_bootstrap(tok, now), "a token is not a node identity"
