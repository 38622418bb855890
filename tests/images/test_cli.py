"""``kyb image ...``: the subcommands end to end against a real registry."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kybernetes.cli import image as image_cli
from kybernetes.kubelet.images import ImageStore
from tests.registry_server import (RegistryServer, build_busybox_rootfs, busybox_available,
                                   registry_available, registry_fixture)

from .helpers import image_blobs, make_tar, write_oci_archive

pytestmark = pytest.mark.skipif(not (registry_available() and busybox_available()),
                                reason="needs docker-registry and busybox-static")

registry = registry_fixture()


def kyb(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kyb")
    sub = parser.add_subparsers(dest="command")
    image_cli.add_parser(sub)
    args = parser.parse_args(list(argv))
    assert args.command == "image"
    return image_cli.run(args)


def test_image_root() -> None:
    assert image_cli.image_root("/x") == Path("/x/kubelet/images")
    assert image_cli.human_size(1_034_070) == "1.034MB" and image_cli.human_size(999) == "999B"


def test_cli_build_ls_push_rm_pull(registry: RegistryServer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    rootfs = build_busybox_rootfs(tmp_path / "rootfs", files={"www/index.html": "hi"})
    ref = f"{registry.host}/busybox-httpd:1"
    assert kyb("image", "build", str(rootfs), "-t", ref, "--entrypoint", "/bin/httpd",
               "--cmd", "-f -p 8080 -h '/www'", "--env", "A=1", "--env", "B=two words",
               "--workdir", "/www", "--user", "65534", "--data-dir", data) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"built {ref} (sha256:")
    store = ImageStore(image_cli.image_root(data))
    img = store.get(ref)
    assert img is not None
    assert img.config.entrypoint == ["/bin/httpd"] and img.config.cmd == ["-f", "-p", "8080", "-h", "/www"]
    assert "B=two words" in img.config.env and img.config.user == "65534"

    assert kyb("image", "ls", "--data-dir", data) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert lines[1].split() == [f"{registry.host}/busybox-httpd", "1", img.id[7:20],
                                image_cli.human_size(img.size)]

    assert kyb("image", "push", ref, "--data-dir", data) == 0
    assert f"pushed {ref} (sha256:" in capsys.readouterr().out
    assert kyb("image", "rm", ref, "--data-dir", data) == 0
    assert kyb("image", "ls", "-q", "--data-dir", data) == 0
    assert capsys.readouterr().out.splitlines() == [f"removed {ref}"]
    assert kyb("image", "pull", ref, "--data-dir", data) == 0
    assert capsys.readouterr().out.strip() == f"pulled {ref} ({img.id})"
    assert store.get(ref).id == img.id  # type: ignore[union-attr]


def test_cli_import_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    img = image_blobs([make_tar([("file", "x", b"x")])])
    archive = write_oci_archive(tmp_path / "a.tar", [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img["manifest_digest"],
         "size": len(img["manifest"]), "annotations": {"org.opencontainers.image.ref.name": "3"}}],
        img["blobs"])
    assert kyb("image", "import", str(archive), "--name", "tools", "--data-dir", data) == 0
    assert capsys.readouterr().out.startswith("imported docker.io/library/tools:3 (sha256:")

    assert kyb("image", "rm", "nope:1", "--data-dir", data) == 1
    err = capsys.readouterr().err
    assert err == "error: no such image: nope:1\n"
    assert kyb("image", "build", str(tmp_path / "missing"), "-t", "x", "--data-dir", data) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert kyb("image", "push", "tools:3", "--creds", "nocolon", "--data-dir", data) == 1
    assert "USER:PASSWORD" in capsys.readouterr().err
    assert kyb("image", "import", str(tmp_path / "missing.tar"), "--data-dir", data) == 1
    assert "not a readable tar archive" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["import", "ls", "rm", "pull", "push", "build"])
def test_every_subcommand_has_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        kyb("image", sub, "--help")
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "--data-dir" in out and len(out.splitlines()) > 3


def test_python_dash_m(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    p = subprocess.run([sys.executable, "-m", "kybernetes.cli.image", "image", "ls", "--data-dir",
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
