"""--token-auth-file: static bearer tokens (off by default). The CSV format as upstream's, then a TLS
API server with RBAC driven by the real kubectl holding such a token, and the CLI's refusal of a
bad file."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from kybernetes.apiserver.authn import UserInfo
from kybernetes.apiserver.tokenfile import TokenFileError, load_token_file, parse_token_file
from kybernetes.pki.kubeconfig import write_kubeconfig
from tests.conftest import free_port

from .conftest import SecureServer, secure_server

ALICE = "3f2b8c1d9e7a4b6c8d0e2f4a6b8c0d1e"
ROOT = "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"
FILE = f'''{ALICE},alice,1001
{ROOT},root-op,1002,"ops,system:masters"

,nobody,1003
'''


def test_the_csv_format() -> None:
    tokens = parse_token_file(FILE, "tokens.csv")
    assert tokens == {
        ALICE: UserInfo(name="alice", uid="1001", groups=("system:authenticated",)),
        ROOT: UserInfo(name="root-op", uid="1002", groups=("ops", "system:masters", "system:authenticated")),
    }


def test_a_repeated_token_keeps_its_last_line_and_an_empty_one_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        tokens = parse_token_file("t1,a,1\n,b,2\nt1,c,3,system:authenticated\n", "f.csv")
    assert tokens == {"t1": UserInfo(name="c", uid="3", groups=("system:authenticated",))}
    assert "empty token has been found in token file 'f.csv', record number '2'" in caplog.text
    assert "duplicate token has been found in token file 'f.csv', record number '3'" in caplog.text


@pytest.mark.parametrize("text", ["t1,alice\n", "t1\n"])
def test_fewer_than_three_columns_is_an_error(text: str) -> None:
    with pytest.raises(TokenFileError, match=r"^token file 'f.csv' must have at least 3 columns \(token, user name, "
                                             r"user uid\), found \d$"):
        parse_token_file(text, "f.csv")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="^token file '.*nope.csv': .*No such file"):
        load_token_file(str(tmp_path / "nope.csv"))


async def _kubectl(s: SecureServer, token: str, *args: str) -> tuple[int, str, str]:
    kc = write_kubeconfig(s.dir / f"token-{token[:4]}.kubeconfig", server=s.base, ca_pem=s.pki.ca_cert.read_bytes(),
                          token=token, user="t")
    return await s.kubectl_with(kc, *args)


@pytest.mark.integration
async def test_kubectl_with_a_static_token(tmp_path: Path) -> None:
    async with secure_server(tmp_path, static_tokens=parse_token_file(FILE)) as s:
        rc, out, err = await _kubectl(s, ALICE, "auth", "whoami", "-o", "jsonpath={.status.userInfo}")
        assert rc == 0, err
        assert '"username":"alice"' in out and '"uid":"1001"' in out and '"groups":["system:authenticated"]' in out
        # RBAC decides what the user may do: nothing is bound to alice
        rc, out, err = await _kubectl(s, ALICE, "get", "pods", "-n", "default")
        assert rc != 0 and ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
                            'namespace "default"') in err
        rc, out, err = await _kubectl(s, ROOT, "get", "namespaces", "-o", "name")
        assert rc == 0 and "namespace/default" in out, err
        # an unknown token is 401
        rc, out, err = await _kubectl(s, "b" * 32, "get", "pods")
        assert rc != 0 and "error: You must be logged in to the server (Unauthorized)" in err, err


@pytest.mark.integration
async def test_no_token_file_by_default(secure: SecureServer) -> None:
    rc, _, err = await _kubectl(secure, ALICE, "auth", "whoami")
    assert rc != 0 and "Unauthorized" in err


def test_the_apiserver_refuses_a_bad_token_file(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.csv"
    bad.write_text("only,two\n")
    r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "apiserver", "--data-dir", str(tmp_path / "d"),
                        "--port", str(free_port()), "--token-auth-file", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"kyb: error: token file '{bad}' must have at least 3 columns (token, user name, user uid), found 2")
