"""Unit tests: providers, the stored format, prefix selection, configuration validation."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kybernetes.apiserver.encryption import (
    EncryptionConfig,
    EncryptionConfigError,
    parse_encryption_config,
    resource_of_key,
)
from kybernetes.apiserver.encryption.transformers import ValueTransformError as TransformError

from .helpers import KEY1, KEY2, b64, config, config_doc, provider

KEY = b"/registry/secrets/default/db"
PLAIN = b'{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'


@pytest.mark.parametrize("kind,prefix", [
    pytest.param("aescbc", b"k8s:enc:aescbc:v1:key1:", id="aescbc"),
    pytest.param("aesgcm", b"k8s:enc:aesgcm:v1:key1:", id="aesgcm"),
    pytest.param("secretbox", b"k8s:enc:secretbox:v1:key1:", id="secretbox"),
])
def test_round_trip_per_provider(kind: str, prefix: bytes) -> None:
    t = config(provider(kind, ("key1", KEY1))).transformer_for("", "secrets")
    assert t is not None
    stored = t.to_storage(PLAIN, KEY)
    assert stored.startswith(prefix)
    assert PLAIN not in stored and b"aHVudGVyMg" not in stored
    assert t.from_storage(stored, KEY) == (PLAIN, False)
    # a fresh random IV / nonce every time
    assert t.to_storage(PLAIN, KEY) != stored


@pytest.mark.parametrize("kind", ["aescbc", "aesgcm", "secretbox"])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_round_trip_sizes(kind: str, size: int) -> None:
    t = config(provider(kind, ("k", KEY1))).transformer_for("", "secrets")
    assert t is not None
    data = os.urandom(size)
    assert t.from_storage(t.to_storage(data, KEY), KEY)[0] == data


def test_identity_round_trip_and_refuses_ciphertext() -> None:
    t = config(provider("identity")).transformer_for("", "secrets")
    assert t is not None
    assert t.to_storage(PLAIN, KEY) == PLAIN
    assert t.from_storage(PLAIN, KEY) == (PLAIN, False)
    with pytest.raises(TransformError, match="no matching prefix found"):
        t.from_storage(b"k8s:enc:aescbc:v1:key1:xxxx", KEY)


def test_aescbc_reads_upstream_layout() -> None:
    """Bytes laid out by hand as upstream writes them: prefix, IV, CBC of PKCS#7-padded data."""
    iv = os.urandom(16)
    pad = 16 - len(PLAIN) % 16
    enc = Cipher(algorithms.AES(KEY1), modes.CBC(iv)).encryptor()
    stored = b"k8s:enc:aescbc:v1:key1:" + iv + enc.update(PLAIN + bytes([pad]) * pad) + enc.finalize()
    t = config(provider("aescbc", ("key1", KEY1))).transformer_for("", "secrets")
    assert t is not None and t.from_storage(stored, KEY) == (PLAIN, False)


def test_aesgcm_reads_upstream_layout_with_key_as_additional_data() -> None:
    nonce = os.urandom(12)
    stored = b"k8s:enc:aesgcm:v1:key1:" + nonce + AESGCM(KEY1).encrypt(nonce, PLAIN, KEY)
    t = config(provider("aesgcm", ("key1", KEY1))).transformer_for("", "secrets")
    assert t is not None and t.from_storage(stored, KEY) == (PLAIN, False)


def test_aesgcm_binds_the_storage_key() -> None:
    """A ciphertext copied under another key does not decrypt (the key is authenticated)."""
    t = config(provider("aesgcm", ("key1", KEY1))).transformer_for("", "secrets")
    assert t is not None
    stored = t.to_storage(PLAIN, KEY)
    with pytest.raises(TransformError, match="message authentication failed"):
        t.from_storage(stored, b"/registry/secrets/default/other")


@pytest.mark.parametrize("kind,message", [
    pytest.param("aesgcm", "message authentication failed", id="aesgcm"),
    pytest.param("secretbox", "output array was not large enough", id="secretbox"),
])
def test_tampered_or_wrong_secret_fails(kind: str, message: str) -> None:
    good = config(provider(kind, ("key1", KEY1))).transformer_for("", "secrets")
    other = config(provider(kind, ("key1", KEY2))).transformer_for("", "secrets")
    assert good is not None and other is not None
    stored = good.to_storage(PLAIN, KEY)
    with pytest.raises(TransformError, match=message):
        other.from_storage(stored, KEY)
    flipped = stored[:-1] + bytes([stored[-1] ^ 1])
    with pytest.raises(TransformError, match=message):
        good.from_storage(flipped, KEY)


def test_missing_key_names_the_problem() -> None:
    old = config(provider("aescbc", ("key1", KEY1))).transformer_for("", "secrets")
    new = config(provider("aescbc", ("key2", KEY2))).transformer_for("", "secrets")
    assert old is not None and new is not None
    with pytest.raises(TransformError, match="no matching key was found for the provided AES transformer"):
        new.from_storage(old.to_storage(PLAIN, KEY), KEY)


def test_first_key_writes_every_key_reads_and_old_reads_are_stale() -> None:
    old = config(provider("aescbc", ("key1", KEY1))).transformer_for("", "secrets")
    both = config(provider("aescbc", ("key2", KEY2), ("key1", KEY1))).transformer_for("", "secrets")
    assert old is not None and both is not None
    assert both.to_storage(PLAIN, KEY).startswith(b"k8s:enc:aescbc:v1:key2:")
    assert both.from_storage(old.to_storage(PLAIN, KEY), KEY) == (PLAIN, True)
    assert both.from_storage(both.to_storage(PLAIN, KEY), KEY) == (PLAIN, False)


def test_identity_second_reads_plaintext_as_stale_and_identity_first_reads_ciphertext() -> None:
    enc_first = config(provider("aesgcm", ("k", KEY1)), provider("identity")).transformer_for("", "secrets")
    id_first = config(provider("identity"), provider("aesgcm", ("k", KEY1))).transformer_for("", "secrets")
    assert enc_first is not None and id_first is not None
    assert enc_first.from_storage(PLAIN, KEY) == (PLAIN, True)
    assert id_first.to_storage(PLAIN, KEY) == PLAIN  # decrypting away from encryption
    assert id_first.from_storage(enc_first.to_storage(PLAIN, KEY), KEY) == (PLAIN, True)


def test_two_providers_of_one_type_share_a_prefix() -> None:
    """Rotating aescbc key A → B written as two aescbc providers: a failure in the first
    (no such key name) must not stop the second from being tried."""
    a = config(provider("aescbc", ("a", KEY1))).transformer_for("", "secrets")
    ab = config(provider("aescbc", ("b", KEY2)), provider("aescbc", ("a", KEY1))).transformer_for("", "secrets")
    assert a is not None and ab is not None
    assert ab.from_storage(a.to_storage(PLAIN, KEY), KEY) == (PLAIN, True)


@pytest.mark.parametrize("key,expected", [
    pytest.param("/registry/secrets/default/db", ("", "secrets"), id="core-namespaced"),
    pytest.param("/registry/nodes/n1", ("", "nodes"), id="core-cluster"),
    pytest.param("/registry/apps/deployments/default/web", ("apps", "deployments"), id="apps"),
    pytest.param("/registry/batch/jobs/default/j", ("batch", "jobs"), id="batch"),
    pytest.param("/registry/rbac.authorization.k8s.io/clusterroles/admin", ("rbac.authorization.k8s.io", "clusterroles"), id="dotted-cluster"),
    pytest.param("/registry/stable.example.com/crontabs/default/c", ("stable.example.com", "crontabs"), id="custom"),
    pytest.param("/registry/events/default/e1", ("", "events"), id="events"),
    pytest.param("/registry/health", None, id="too-short"),
    pytest.param("/other/secrets/x", None, id="not-registry"),
])
def test_resource_of_key(key: str, expected: tuple[str, str] | None) -> None:
    assert resource_of_key(key) == expected


def test_resolution_exact_then_group_wildcard_then_everything() -> None:
    doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
        {"resources": ["events"], "providers": [provider("identity")]},
        {"resources": ["secrets", "deployments.apps"], "providers": [provider("aescbc", ("exact", KEY1))]},
        {"resources": ["*.apps"], "providers": [provider("aesgcm", ("apps", KEY1))]},
        {"resources": ["*.*"], "providers": [provider("secretbox", ("all", KEY2))]},
    ]}
    c = EncryptionConfig(parse_encryption_config(doc))

    def writes(group: str, resource: str) -> bytes:
        t = c.transformer_for(group, resource)
        assert t is not None
        return t.to_storage(b"{}", KEY)[:30]

    assert writes("", "secrets").startswith(b"k8s:enc:aescbc:v1:exact:")
    assert writes("apps", "deployments").startswith(b"k8s:enc:aescbc:v1:exact:")
    assert writes("apps", "statefulsets").startswith(b"k8s:enc:aesgcm:v1:apps:")
    assert writes("", "configmaps").startswith(b"k8s:enc:secretbox:v1:all:")
    assert writes("", "events") == b"{}"
    assert config(provider("aescbc", ("k", KEY1))).transformer_for("", "configmaps") is None


@pytest.mark.parametrize("mutate,message", [
    pytest.param(lambda d: d.update(kind="Other"), 'no kind "Other"', id="kind"),
    pytest.param(lambda d: d.update(resources=[]), "at least one resources is required", id="no-entries"),
    pytest.param(lambda d: d["resources"][0].update(resources=[]), "at least one resources[0].resources is required", id="no-resources"),
    pytest.param(lambda d: d["resources"][0].update(providers=[]), "at least one resources[0].providers is required", id="no-providers"),
    pytest.param(lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(secret=b64(b"short")),
                 "secret is not of the expected length, got 5, expected one of [16 24 32]", id="aes-size"),
    pytest.param(lambda d: d["resources"][0]["providers"].__setitem__(0, provider("secretbox", ("k", b"x" * 16))),
                 "got 16, expected one of [32]", id="secretbox-size"),
    pytest.param(lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(secret="!!notbase64"),
                 "secrets must be base64 encoded", id="base64"),
    pytest.param(lambda d: d["resources"][0]["providers"][0]["aescbc"]["keys"][0].update(name=""),
                 "name is a mandatory field for a key", id="key-name"),
    pytest.param(lambda d: d["resources"][0]["providers"][0]["aescbc"].update(keys=[]),
                 "at least one keys is required", id="no-keys"),
    pytest.param(lambda d: d["resources"][0]["providers"][0].update(identity={}),
                 "more than one provider specified in a single element", id="two-in-one"),
    pytest.param(lambda d: d["resources"][0]["providers"].__setitem__(0, {"kms": {"name": "x"}}),
                 "no KMS plugin support", id="kms"),
    pytest.param(lambda d: d["resources"][0].update(resources=["Secrets"]), "should not contain capital letters", id="capital"),
    pytest.param(lambda d: d["resources"][0].update(resources=["*"]), "use '*.' to encrypt all", id="star"),
    pytest.param(lambda d: d["resources"][0].update(resources=["secrets", "*."]), "overlapping resources", id="overlap"),
    pytest.param(lambda d: d["resources"][0].update(resources=["secrets", "secrets"]), "cannot be specified multiple times", id="dup"),
    pytest.param(lambda d: d["resources"][0].update(resources=["events.events.k8s.io"]), "Use 'events' instead", id="events-group"),
    pytest.param(lambda d: d["resources"][0].update(resources=["secrets.*"]), "across groups is not supported", id="across-groups"),
    pytest.param(lambda d: d["resources"][0].update(resources=["serviceipallocations"]), "do not have REST API", id="non-rest"),
    pytest.param(lambda d: d.update(extra=1), 'unknown field "extra"', id="unknown-field"),
])
def test_config_validation(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = config_doc(provider("aescbc", ("key1", KEY1)))
    mutate(doc)
    with pytest.raises(EncryptionConfigError) as ei:
        EncryptionConfig(parse_encryption_config(doc))
    assert message in str(ei.value)


def test_masked_by_earlier_wildcard() -> None:
    doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
        {"resources": ["*.*"], "providers": [provider("aescbc", ("a", KEY1))]},
        {"resources": ["secrets"], "providers": [provider("aescbc", ("b", KEY2))]},
    ]}
    with pytest.raises(EncryptionConfigError, match="resource 'secrets' is masked by earlier rule '\\*.\\*'"):
        EncryptionConfig(parse_encryption_config(doc))


def test_load_file_errors_name_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kybernetes.apiserver.encryption import load_encryption_config

    missing = tmp_path / "nope.yaml"
    with pytest.raises(EncryptionConfigError, match="nope.yaml"):
        load_encryption_config(missing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(EncryptionConfigError, match="empty"):
        load_encryption_config(empty)
