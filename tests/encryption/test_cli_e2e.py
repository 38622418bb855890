"""End to end: `kyb up --encryption-provider-config ... --audit-*`, the real kubectl, and
`kyb secrets rotate` through the whole key-rotation procedure."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kybernetes.cli.main import build_parser
from kybernetes.cli.secrets import server_security_passthrough
from tests.conftest import free_port

from .helpers import KEY1, KEY2, config_doc, provider, random_plaintext, sqlite_bytes

AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
                          {"level": "None"}]}


def test_up_passes_the_flags_to_its_apiserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args([
        "up", "--token-auth-file", "tokens.csv", "--encryption-provider-config", "enc.yaml",
        "--audit-policy-file", "policy.yaml",
        "--audit-log-path", "logs/audit.log", "--audit-log-maxsize", "5", "--audit-log-maxbackup", "3",
        "--audit-log-mode", "batch"])
    assert server_security_passthrough(args) == [
        "--token-auth-file", str(tmp_path / "tokens.csv"),
        "--encryption-provider-config", str(tmp_path / "enc.yaml"),
        "--audit-policy-file", str(tmp_path / "policy.yaml"),
        "--audit-log-path", str(tmp_path / "logs" / "audit.log"),
        "--audit-log-maxsize", "5", "--audit-log-maxbackup", "3", "--audit-log-mode", "batch"]
    # and the apiserver accepts exactly those
    build_parser().parse_args(["apiserver", *server_security_passthrough(args)])


def test_apiserver_refuses_an_invalid_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "enc.yaml"
    doc = config_doc(provider("aescbc", ("key1", b"short")))
    bad.write_text(yaml.safe_dump(doc))
    r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(tmp_path / "d"),
                        "--port", str(free_port()), "--encryption-provider-config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "kyb: error:" in r.stderr and "secret is not of the expected length, got 5" in r.stderr


@pytest.mark.e2e
def test_kubectl_secrets_are_encrypted_and_rotated(tmp_path: Path) -> None:
    from tests.e2e.conftest import KUBECTL, Cluster

    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    enc = tmp_path / "encryption.yaml"
    enc.write_text(yaml.safe_dump(config_doc(provider("aescbc", ("key1", KEY1)), provider("identity"))))
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    audit_log = tmp_path / "audit" / "audit.log"
    flags = ["--encryption-provider-config", str(enc), "--audit-policy-file", str(policy),
             "--audit-log-path", str(audit_log)]
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(tmp_path / "data", free_port(), home)
    db = c.data_dir / "db" / "state.db"
    value = random_plaintext()
    try:
        c.start(*flags)
        c.kubectl("create", "secret", "generic", "db-pass", f"--from-literal=password={value}")
        got = c.kjson("get", "secret", "db-pass")
        assert base64.b64decode(got["data"]["password"]).decode() == value
        raw = sqlite_bytes(db)
        assert value.encode() not in raw and base64.b64encode(value.encode()) not in raw
        assert b"k8s:enc:aescbc:v1:key1:" in raw
        c.stop()

        # rotation: key2 first (step 1, adding it second, needs no data change), then rotate
        enc.write_text(yaml.safe_dump(config_doc(provider("aescbc", ("key2", KEY2), ("key1", KEY1)))))
        c.start(*flags)
        r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "secrets", "rotate", "--data-dir", str(c.data_dir)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "secrets/default/db-pass: rewritten" in r.stdout, r.stdout
        c.stop()
        with sqlite3.connect(db) as conn:
            (stored,) = conn.execute("SELECT value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1",
                                     ("/registry/secrets/default/db-pass",)).fetchone()
        assert bytes(stored).startswith(b"k8s:enc:aescbc:v1:key2:")

        # the old key removed: still readable
        enc.write_text(yaml.safe_dump(config_doc(provider("aescbc", ("key2", KEY2)))))
        c.start(*flags)
        got = c.kjson("get", "secret", "db-pass")
        assert base64.b64decode(got["data"]["password"]).decode() == value
    finally:
        c.stop()
    events = [json.loads(line) for line in audit_log.read_text().splitlines()]
    creates = [e for e in events if e["verb"] == "create" and e["objectRef"]["resource"] == "secrets"]
    assert creates and creates[0]["stage"] == "ResponseComplete" and creates[0]["objectRef"]["name"] == "db-pass"
    assert creates[0]["userAgent"].startswith("kubectl")
    assert {e["level"] for e in events} == {"Metadata"}
    assert value not in audit_log.read_text()
