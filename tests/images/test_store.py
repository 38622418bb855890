"""The local image store without a registry: build, import, get/list, remove, Never, GC."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kybernetes.kubelet.images import (ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, INVALID_IMAGE_NAME,
                                       DiskUsage, ImageError, ImageNotFound, ImagePullError,
                                       ImageStore)
from tests.registry_server import build_busybox_rootfs, busybox_available

from .helpers import image_blobs, make_tar, sha, write_oci_archive

needs_busybox = pytest.mark.skipif(not busybox_available(), reason="busybox-static not installed")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def blob_files(store: ImageStore) -> set[str]:
    d = store.root / "blobs" / "sha256"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def layer_dirs(store: ImageStore) -> set[str]:
    d = store.root / "layers" / "sha256"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


@needs_busybox
def test_build_stores_a_runnable_image(store: ImageStore, tmp_path: Path) -> None:
    rootfs = build_busybox_rootfs(tmp_path / "rootfs", files={"www/index.html": "hi"})
    img = store.build(rootfs, "busybox-httpd", entrypoint="/bin/httpd", cmd="-f -p 8080 -h /www",
                      env=["GREETING=hello world"], workdir="/www", user="65534")
    assert img.repo_tags == ["docker.io/library/busybox-httpd:latest"]
    assert img.config.entrypoint == ["/bin/httpd"]
    assert img.config.cmd == ["-f", "-p", "8080", "-h", "/www"]
    assert img.config.env[0].startswith("PATH=") and "GREETING=hello world" in img.config.env
    assert (img.config.working_dir, img.config.user) == ("/www", "65534")
    assert len(img.layer_dirs) == 1
    layer = Path(img.layer_dirs[0])
    assert (layer / "bin/busybox").read_bytes() == Path("/usr/bin/busybox").read_bytes()
    assert os.readlink(layer / "bin/httpd") == "busybox"
    assert (layer / "www/index.html").read_text() == "hi"
    assert store.get("busybox-httpd") == img
    assert store.get("docker.io/library/busybox-httpd:latest") == img
    assert store.get(img.id) == img and store.get(img.id[7:19]) == img
    assert img.size == sum(p.stat().st_size for p in (store.root / "blobs/sha256").iterdir()
                           if p.name != img.manifest_digest[7:])
    # the built manifest and config are what the blobs say
    manifest = json.loads((store.root / "blobs/sha256" / img.manifest_digest[7:]).read_bytes())
    assert manifest["config"]["digest"] == img.id
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_build_rejects_bad_input(store: ImageStore, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a directory"):
        store.build(tmp_path / "missing", "x")
    (tmp_path / "r").mkdir()
    with pytest.raises(ImageError):
        store.build(tmp_path / "r", "Bad Name")
    with pytest.raises(ImageError, match="absolute"):
        store.build(tmp_path / "r", "x", workdir="rel")
    with pytest.raises(ImageError, match="KEY=VALUE"):
        store.build(tmp_path / "r", "x", env=["NOEQUALS"])


async def test_never_and_if_not_present_use_the_local_image(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "f").write_text("x")
    # 127.0.0.1:1 refuses connections: any registry contact would fail the call
    img = store.build(tmp_path / "r", "127.0.0.1:1/local:1")
    assert await store.ensure("127.0.0.1:1/local:1", policy="Never") == img
    got = await store.ensure("127.0.0.1:1/local:1", policy="IfNotPresent")
    assert got.id == img.id and got.last_used >= img.last_used
    with pytest.raises(ImagePullError) as ei:
        await store.ensure("127.0.0.1:1/missing:1", policy="Never")
    assert ei.value.reason == ERR_IMAGE_NEVER_PULL
    assert ei.value.message == 'Container image "127.0.0.1:1/missing:1" is not present with pull policy of Never'
    with pytest.raises(ImagePullError) as ei:
        await store.ensure("127.0.0.1:1/local:1", policy="Always")
    assert ei.value.reason == ERR_IMAGE_PULL and "Connection refused" in ei.value.message
    with pytest.raises(ImagePullError) as ei:
        await store.ensure("Busybox:1", policy="IfNotPresent")
    assert ei.value.reason == INVALID_IMAGE_NAME
    assert ei.value.message == ('Failed to apply default image tag "Busybox:1": couldn\'t parse image '
                                'name "Busybox:1": repository name must be lowercase')


def test_import_oci_archive(store: ImageStore, tmp_path: Path) -> None:
    l1 = make_tar([("file", "etc/passwd", b"root:x:0:0::/:/bin/sh\n"), ("file", "bin/a", b"A")])
    l2 = make_tar([("file", "bin/b", b"B")])
    one = image_blobs([l1, l2], cmd=["/bin/a"])
    two = image_blobs([l1], cmd=["/bin/other"])
    entries = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": one["manifest_digest"],
         "size": len(one["manifest"]),
         "annotations": {"io.containerd.image.name": "127.0.0.1:5000/app:1",
                         "org.opencontainers.image.ref.name": "1"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": two["manifest_digest"],
         "size": len(two["manifest"]), "annotations": {"org.opencontainers.image.ref.name": "v2"}},
    ]
    archive = write_oci_archive(tmp_path / "app.tar", entries, {**one["blobs"], **two["blobs"]},
                                gzip_archive=True)
    images = store.import_archive(archive, name="example.com/other")
    assert [i.repo_tags for i in images] == [["127.0.0.1:5000/app:1"], ["example.com/other:v2"]]
    app = store.get("127.0.0.1:5000/app:1")
    assert app is not None and app.id == one["config_digest"] and app.config.cmd == ["/bin/a"]
    assert [Path(d).name for d in app.layer_dirs] == [sha(l1)[7:], sha(l2)[7:]]
    assert (Path(app.layer_dirs[1]) / "bin/b").read_bytes() == b"B"
    other = store.get("example.com/other:v2")
    assert other is not None and other.layer_dirs[0] == app.layer_dirs[0]   # shared layer, one dir
    assert len(layer_dirs(store)) == 2


def test_import_oci_index_picks_our_platform(store: ImageStore, tmp_path: Path) -> None:
    amd = image_blobs([make_tar([("file", "arch", b"amd64")])], arch="amd64")
    arm = image_blobs([make_tar([("file", "arch", b"arm64")])], arch="arm64")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": arm["manifest_digest"], "size": len(arm["manifest"]),
                             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": amd["manifest_digest"], "size": len(amd["manifest"]),
                             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    blobs = {**amd["blobs"], **arm["blobs"], sha(index): index}
    archive = write_oci_archive(tmp_path / "multi.tar", [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(index), "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/multi:1"}}], blobs)
    from kybernetes.kubelet.images import Platform

    (img,) = store.import_archive(archive)
    assert img.repo_tags == ["docker.io/library/multi:1"] and img.id == amd["config_digest"]
    arm_store = ImageStore(tmp_path / "arm", platform=Platform("linux", "arm64", "v8"))
    (arm_img,) = arm_store.import_archive(archive)
    assert (Path(arm_img.layer_dirs[0]) / "arch").read_bytes() == b"arm64"


def test_import_rejects_corrupt_blob(store: ImageStore, tmp_path: Path) -> None:
    img = image_blobs([make_tar([("file", "a", b"a")])])
    blobs = dict(img["blobs"])
    layer_digest = json.loads(img["manifest"])["layers"][0]["digest"]
    blobs[layer_digest] = gzip.compress(make_tar([("file", "a", b"tampered")]), mtime=0)
    archive = write_oci_archive(tmp_path / "bad.tar", [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img["manifest_digest"],
         "size": len(img["manifest"]), "annotations": {"io.containerd.image.name": "bad:1"}}], blobs)
    with pytest.raises(ImageError, match="hashes to"):
        store.import_archive(archive)
    assert store.list() == [] and layer_digest[7:] not in blob_files(store)
    with pytest.raises(ImageError, match="neither an OCI image layout"):
        (tmp_path / "empty.tar").write_bytes(b"")
        with tarfile.open(tmp_path / "empty.tar", "w"):
            pass
        store.import_archive(tmp_path / "empty.tar")


def test_import_docker_save_archive(store: ImageStore, tmp_path: Path) -> None:
    layer = make_tar([("file", "hello", b"world")])
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    files = {"manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": ["saved:2"],
                                           "Layers": ["abc/layer.tar"]}]).encode(),
             "cfg.json": config, "abc/layer.tar": layer}
    with tarfile.open(tmp_path / "saved.tar", "w") as tf:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    (img,) = store.import_archive(tmp_path / "saved.tar")
    assert img.repo_tags == ["docker.io/library/saved:2"] and img.id == sha(config)
    assert (Path(img.layer_dirs[0]) / "hello").read_bytes() == b"world"


def _two_images(store: ImageStore, tmp_path: Path) -> tuple[str, str]:
    shared = make_tar([("file", "shared", b"s")])
    a = image_blobs([shared, make_tar([("file", "a", b"a")])])
    b = image_blobs([shared, make_tar([("file", "b", b"b")])])
    entries = [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": x["manifest_digest"],
                "size": len(x["manifest"]), "annotations": {"io.containerd.image.name": n}}
               for x, n in ((a, "img-a:1"), (b, "img-b:1"))]
    store.import_archive(write_oci_archive(tmp_path / "two.tar", entries, {**a["blobs"], **b["blobs"]}))
    return a["config_digest"], b["config_digest"]


def test_remove_untags_and_collects_unshared_content(store: ImageStore, tmp_path: Path) -> None:
    a_id, b_id = _two_images(store, tmp_path)
    assert len(layer_dirs(store)) == 3 and len(blob_files(store)) == 2 * 2 + 3
    # a second tag for A: removing one tag keeps the image
    store._commit(manifest=store.disk.read_blob(store.get(a_id).manifest_digest),  # type: ignore[union-attr]
                  manifest_digest=store.get(a_id).manifest_digest, media_type="",  # type: ignore[union-attr]
                  tags=["docker.io/library/img-a:alias"], repo_digest=None, touch=False)
    store.remove("img-a:1")
    assert store.get(a_id) is not None and store.get("img-a:1") is None
    store.remove("img-a:alias")
    assert store.get(a_id) is None
    assert len(layer_dirs(store)) == 2           # the shared layer stays for B
    assert len(blob_files(store)) == 2 + 2       # left: B manifest, config, 2 layers
    store.remove(b_id[:20])                      # by id prefix
    assert store.list() == [] and layer_dirs(store) == set() and blob_files(store) == set()
    with pytest.raises(ImageNotFound):
        store.remove("img-b:1")


def test_gc_removes_least_recently_used_until_below_low(tmp_path: Path) -> None:
    clock = [1000.0]
    used = {"extra": 0}

    def usage(root: Path) -> DiskUsage:
        # a 200 kB "disk" holding the store's blobs (~21 kB per image) plus what the test adds
        size = sum(p.stat().st_size for p in (root / "blobs" / "sha256").iterdir())
        u = size + used["extra"]
        return DiskUsage(200_000, u, 200_000 - u)

    store = ImageStore(tmp_path / "images", disk_usage=usage, clock=lambda: clock[0])
    ids = []
    for i in range(4):
        clock[0] += 10
        layer = make_tar([("file", "data", os.urandom(9000) + bytes([i]))])
        img = image_blobs([layer], compress=False)
        (im,) = store.import_archive(write_oci_archive(
            tmp_path / f"{i}.tar", [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                     "digest": img["manifest_digest"], "size": len(img["manifest"]),
                                     "annotations": {"io.containerd.image.name": f"gc{i}:1"}}],
            img["blobs"]))
        ids.append(im.id)
    stale = store.root / "tmp" / "blob-interrupted"
    stale.write_bytes(b"partial download")
    os.utime(stale, (0, 0))
    fresh = store.root / "tmp" / "blob-in-progress"
    fresh.write_bytes(b"another pull is writing this")
    clock[0] += 10
    store.touch(ids[0])                       # image 0 used recently: it is now the newest
    used["extra"] = 90_000                    # ~87% used
    assert store.gc(high_percent=95, low_percent=60, in_use=set()) == []   # below high: nothing
    removed = store.gc(high_percent=85, low_percent=70, in_use={"gc1:1"})
    # LRU order is 1 (in use: skipped), 2, 3, 0; two removals bring usage under 70%
    assert removed == [ids[2], ids[3]]
    assert {i.id for i in store.list()} == {ids[0], ids[1]}
    assert usage(store.root).used <= 140_000
    assert not stale.exists() and fresh.exists()      # leftovers of interrupted pulls go too
    with pytest.raises(ValueError):
        store.gc(high_percent=50, low_percent=60, in_use=set())


_NON_ROOT_SCRIPT = r"""
import os, sys
from pathlib import Path
from kybernetes.kubelet.images import ImageStore
from tests.images.helpers import image_blobs, make_tar, write_oci_archive
work = Path(sys.argv[1])
os.setgid(65534)
os.setuid(65534)
rootfs = work / "rootfs"
(rootfs / "ro" / "sub").mkdir(parents=True)
(rootfs / "ro" / "sub" / "f").write_text("x")
os.chmod(rootfs / "ro" / "sub", 0o555)
os.chmod(rootfs / "ro", 0o555)
store = ImageStore(work / "store")
img = store.build(rootfs, "x:1", cmd="sh")
assert oct(os.stat(Path(img.layer_dirs[0]) / "ro").st_mode & 0o777) == "0o555"
b = image_blobs([make_tar([("file", "a", b"a")]),
                 make_tar([("file", ".wh.a", b""), ("file", "d/.wh..wh..opq", b"")])])
write_oci_archive(work / "w.tar", [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": b["manifest_digest"], "size": len(b["manifest"]),
                  "annotations": {"io.containerd.image.name": "w:1"}}], b["blobs"])
(w,) = store.import_archive(work / "w.tar")
assert (Path(w.layer_dirs[1]) / "d").is_dir()
store.remove("x:1")
store.remove("w:1")
for d in ("layers/sha256", "blobs/sha256", "tmp"):
    assert os.listdir(work / "store" / d) == [], d
print("ok")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="drops privileges from root to nobody")
def test_build_import_remove_as_non_root() -> None:
    """``kyb image build`` also works for users without root (read-only dirs, no opaque xattrs)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="kyb-nonroot-", dir="/tmp"))
    try:
        os.chown(work, 65534, 65534)
        repo = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=f"{repo / 'src'}:{repo}")
        p = subprocess.run([sys.executable, "-c", _NON_ROOT_SCRIPT, str(work)], capture_output=True,
                           text=True, env=env, timeout=60, cwd="/")
        assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
