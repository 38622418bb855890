"""Pull and push against a real registry (Debian's docker-registry on loopback), plus a fake
registry for the failure modes a real one will not produce (corrupt content, stalls)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from kybernetes.kubelet.images import (ERR_IMAGE_PULL, ImagePullError, ImageStore, Platform,
                                       RegistryAuth, RegistryError, auths_from_dockerconfig,
                                       parse_reference)
from kybernetes.kubelet.images.registry import RegistryClient
from tests.registry_server import (RegistryServer, busybox_available, busybox_image, free_port,
                                   registry_available, registry_fixture)

from .helpers import image_blobs, make_tar, sha
from .tokenauth import TokenServer

pytestmark = pytest.mark.skipif(not (registry_available() and busybox_available()),
                                reason="needs docker-registry and busybox-static")

registry = registry_fixture(scope="module")
auth_registry = registry_fixture(scope="module", htpasswd={"alice": "wonder land"})


def tree(root: str | Path) -> dict[str, Any]:
    """Everything about a directory tree that a container would see."""
    out: dict[str, Any] = {}
    root = Path(root)
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = p.relative_to(root).as_posix()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


def blob_count(store: ImageStore) -> int:
    d = store.root / "blobs" / "sha256"
    return len(list(d.iterdir())) if d.is_dir() else 0


async def test_build_push_remove_pull_round_trip(registry: RegistryServer, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "a")
    ref = f"{registry.host}/busybox-httpd:1"
    built = busybox_image(store, ref, tmp_path, files={"www/index.html": "<h1>hi</h1>"},
                          entrypoint="/bin/httpd", cmd="-f -p 8080 -h /www", env={"MODE": "test"},
                          workdir="/www", user="65534:65534")
    before = tree(built.layer_dirs[0])
    digest = await store.push(ref)
    assert digest == built.manifest_digest
    assert store.get(ref).repo_digests == [f"{registry.host}/busybox-httpd@{digest}"]  # type: ignore[union-attr]
    store.remove(ref)
    assert store.list() == [] and blob_count(store) == 0
    assert not any((store.root / "layers" / "sha256").iterdir())

    pulled = await store.ensure(ref, policy="IfNotPresent")
    assert pulled.id == built.id and pulled.manifest_digest == built.manifest_digest
    assert pulled.config == built.config
    assert pulled.config.entrypoint == ["/bin/httpd"] and pulled.config.user == "65534:65534"
    assert pulled.repo_tags == [ref] and pulled.repo_digests == [f"{registry.host}/busybox-httpd@{digest}"]
    assert tree(pulled.layer_dirs[0]) == before
    # by digest, into another store: the same image, found again by that digest
    other = ImageStore(tmp_path / "b")
    by_digest = await other.pull(f"{registry.host}/busybox-httpd@{digest}")
    assert by_digest.id == built.id and by_digest.repo_tags == []
    assert other.get(f"{registry.host}/busybox-httpd@{digest}") == by_digest


async def test_concurrent_ensures_share_one_pull(registry: RegistryServer, tmp_path: Path) -> None:
    """Pods starting together with the same image: one store, both succeed, one copy on disk."""
    src = ImageStore(tmp_path / "src")
    ref = f"{registry.host}/shared:1"
    built = busybox_image(src, ref, tmp_path)
    await src.push(ref)
    node = ImageStore(tmp_path / "node")
    results = await asyncio.gather(*(node.ensure(ref) for _ in range(4)))
    assert {r.id for r in results} == {built.id}
    assert len(list((node.root / "layers" / "sha256").iterdir())) == 1
    assert blob_count(node) == 3 and list((node.root / "tmp").iterdir()) == []


async def test_chunked_push(registry: RegistryServer, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "a", push_chunk_size=256 * 1024)
    ref = f"{registry.host}/chunked/busybox:2"
    built = busybox_image(store, ref, tmp_path, cmd="sh")
    assert built.size > 3 * 256 * 1024 // 2          # busybox: several chunks
    await store.push(ref)
    pulled = await ImageStore(tmp_path / "b").pull(ref)
    assert pulled.id == built.id and tree(pulled.layer_dirs[0]) == tree(built.layer_dirs[0])


async def _put_manifest(host: str, repo: str, tag: str, body: bytes, media_type: str) -> str:
    r = parse_reference(f"{host}/{repo}:{tag}")
    async with RegistryClient() as c:
        return await c.put_manifest(r, tag, body, media_type)


async def test_image_index_with_two_platforms_picks_ours(registry: RegistryServer, tmp_path: Path) -> None:
    src = ImageStore(tmp_path / "src")
    amd = busybox_image(src, f"{registry.host}/multi:amd64", tmp_path, files={"arch": "amd64"})
    arm = busybox_image(src, f"{registry.host}/multi:arm64", tmp_path, files={"arch": "arm64"})
    for tag in ("amd64", "arm64"):
        await src.push(f"{registry.host}/multi:{tag}")

    def entry(img: Any, arch: str, variant: str = "") -> dict[str, Any]:
        data = src.disk.read_blob(img.manifest_digest)
        plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.manifest_digest,
                "size": len(data), "platform": plat}

    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [entry(arm, "arm64", "v8"), entry(amd, "amd64")]}).encode()
    index_digest = await _put_manifest(registry.host, "multi", "1", index,
                                       "application/vnd.oci.image.index.v1+json")
    assert index_digest == sha(index)

    store = ImageStore(tmp_path / "amd", platform=Platform("linux", "amd64"))
    img = await store.ensure(f"{registry.host}/multi:1")
    assert img.id == amd.id and (Path(img.layer_dirs[0]) / "arch").read_text() == "amd64"
    assert img.repo_digests == [f"{registry.host}/multi@{index_digest}"]   # what the tag resolved to
    assert img.manifest_digest == amd.manifest_digest
    arm_store = ImageStore(tmp_path / "arm", platform=Platform("linux", "arm64", "v8"))
    img = await arm_store.ensure(f"{registry.host}/multi:1")
    assert img.id == arm.id and (Path(img.layer_dirs[0]) / "arch").read_text() == "arm64"
    with pytest.raises(ImagePullError, match="no matching manifest for linux/s390x"):
        await ImageStore(tmp_path / "s390x", platform=Platform("linux", "s390x")).pull(
            f"{registry.host}/multi:1")


async def test_docker_media_types(registry: RegistryServer, tmp_path: Path) -> None:
    """A Docker schema 2 manifest inside a Docker manifest list pulls like the OCI forms."""
    src = ImageStore(tmp_path / "src")
    oci = busybox_image(src, f"{registry.host}/dockerish:oci", tmp_path, cmd="sh")
    await src.push(f"{registry.host}/dockerish:oci")
    m = json.loads(src.disk.read_blob(oci.manifest_digest))
    m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    for layer in m["layers"]:
        layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    manifest = json.dumps(m).encode()
    await _put_manifest(registry.host, "dockerish", "v2", manifest, m["mediaType"])
    mlist = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": [{"mediaType": m["mediaType"], "digest": sha(manifest),
                                       "size": len(manifest),
                                       "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    await _put_manifest(registry.host, "dockerish", "list", mlist,
                        "application/vnd.docker.distribution.manifest.list.v2+json")
    store = ImageStore(tmp_path / "dst", platform=Platform("linux", "amd64"))
    img = await store.pull(f"{registry.host}/dockerish:list")
    assert img.id == oci.id and img.manifest_digest == sha(manifest)
    assert tree(img.layer_dirs[0]) == tree(oci.layer_dirs[0])


async def test_pull_policies_and_always_re_resolves(registry: RegistryServer, tmp_path: Path) -> None:
    builder = ImageStore(tmp_path / "builder")
    ref = f"{registry.host}/moving"            # :latest
    v1 = busybox_image(builder, ref, tmp_path, files={"version": "1"})
    await builder.push(ref)
    node = ImageStore(tmp_path / "node")
    assert (await node.ensure(ref, policy="IfNotPresent")).id == v1.id
    v2 = busybox_image(builder, ref, tmp_path, files={"version": "2"})
    assert v2.id != v1.id
    await builder.push(ref)
    assert (await node.ensure(ref, policy="IfNotPresent")).id == v1.id    # present: no pull
    assert (await node.ensure(ref, policy="Never")).id == v1.id
    got = await node.ensure(ref, policy="Always")                        # re-resolves the tag
    assert got.id == v2.id and (Path(got.layer_dirs[-1]) / "version").read_text() == "2"
    assert node.get(ref).id == v2.id                                      # type: ignore[union-attr]
    old = node.get(v1.id)                                                 # dangling, still stored
    assert old is not None and old.repo_tags == [] and all(Path(d).is_dir() for d in old.layer_dirs)
    # Always with nothing new: same image, blobs not fetched again
    n = blob_count(node)
    assert (await node.ensure(ref, policy="Always")).id == v2.id and blob_count(node) == n


async def test_missing_image_and_unreachable_registry(registry: RegistryServer, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "s", connect_timeout=2, request_timeout=5)
    with pytest.raises(ImagePullError) as ei:
        await store.ensure(f"{registry.host}/does-not-exist:1")
    assert ei.value.reason == ERR_IMAGE_PULL
    assert ei.value.message == (f'failed to pull and unpack image "{registry.host}/does-not-exist:1": '
                                f"{registry.host}/does-not-exist:1: not found")
    port = free_port()   # nothing listens there
    with pytest.raises(ImagePullError) as ei:
        await store.ensure(f"127.0.0.1:{port}/x:1", policy="Always")
    assert ei.value.reason == ERR_IMAGE_PULL
    assert f"failed to connect to registry 127.0.0.1:{port}" in ei.value.message
    assert "Connection refused" in ei.value.message
    assert store.list() == []


async def test_basic_auth_registry_with_pull_secret(auth_registry: RegistryServer, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "a")
    ref = f"{auth_registry.host}/private/busybox:1"
    busybox_image(store, ref, tmp_path, cmd="sh")
    with pytest.raises(RegistryError, match="unauthorized"):
        await store.push(ref)
    with pytest.raises(RegistryError, match="unauthorized"):
        await store.push(ref, auths=[RegistryAuth(auth_registry.host, "alice", "wrong")])
    await store.push(ref, auths=[RegistryAuth(auth_registry.host, "alice", "wonder land")])
    node = ImageStore(tmp_path / "node")
    with pytest.raises(ImagePullError, match="unauthorized") as ei:
        await node.ensure(ref)
    assert ei.value.reason == ERR_IMAGE_PULL
    secret = {".dockerconfigjson": json.dumps({"auths": {f"http://{auth_registry.host}": {
        "auth": base64.b64encode(b"alice:wonder land").decode()}}}).encode()}
    img = await node.ensure(ref, auths=auths_from_dockerconfig(secret))
    assert img.repo_tags == [ref]


@pytest.fixture
async def token_registry(tmp_path: Path) -> AsyncIterator[tuple[RegistryServer, TokenServer]]:
    ts = TokenServer({"bob": "builder"})
    await ts.start()
    reg = None
    try:
        bundle = ts.write_bundle(tmp_path / "token-ca.pem")
        reg = await asyncio.to_thread(RegistryServer, tmp_path, auth=ts.registry_auth(bundle))
        yield reg, ts
    finally:
        if reg is not None:
            await asyncio.to_thread(reg.stop)
        await ts.stop()


async def test_bearer_token_auth(token_registry: tuple[RegistryServer, TokenServer], tmp_path: Path) -> None:
    reg, ts = token_registry
    store = ImageStore(tmp_path / "a")
    ref = f"{reg.host}/team/app:1"
    built = busybox_image(store, ref, tmp_path, cmd="sh")
    with pytest.raises(RegistryError, match="unauthorized"):
        await store.push(ref, auths=[RegistryAuth(reg.host, "bob", "nope")])
    await store.push(ref, auths=[RegistryAuth(reg.host, "bob", "builder")])
    assert {"user": "bob", "scope": "repository:team/app:pull,push", "service": "kyb-test-registry",
            "authorization": True} in ts.requests
    ts.requests.clear()
    node = ImageStore(tmp_path / "node")
    with pytest.raises(ImagePullError, match="unauthorized"):
        await node.pull(ref)
    img = await node.pull(ref, auths=[RegistryAuth(reg.host, "bob", "builder")])
    assert img.id == built.id
    assert [r["scope"] for r in ts.requests if r["user"] == "bob"] == ["repository:team/app:pull"]


# -- a fake registry for corrupt content and stalls --------------------------------------------

@pytest.fixture
async def fake_registry() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A registry serving whatever the test puts in ``routes``: {path: (status, headers, body)}."""
    routes: dict[str, Any] = {}
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        spec = routes.get(request.path)
        if spec is None:
            return web.json_response({"errors": [{"code": "NOT_FOUND", "message": "nope"}]}, status=404)
        if spec == "hang":
            await release.wait()
            raise web.HTTPServiceUnavailable()
        status, headers, body = spec
        return web.Response(status=status, headers=headers, body=body if request.method != "HEAD" else None)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{port}", routes
    finally:
        release.set()
        await runner.cleanup()


def _serve_image(routes: dict[str, Any], repo: str, tag: str, img: dict[str, Any],
                 override: dict[str, bytes] | None = None) -> None:
    mt = "application/vnd.oci.image.manifest.v1+json"
    routes[f"/v2/{repo}/manifests/{tag}"] = (200, {"Content-Type": mt}, img["manifest"])
    routes[f"/v2/{repo}/manifests/{img['manifest_digest']}"] = (200, {"Content-Type": mt}, img["manifest"])
    for digest, data in img["blobs"].items():
        routes[f"/v2/{repo}/blobs/{digest}"] = (200, {}, (override or {}).get(digest, data))


async def test_blob_digest_mismatch_is_rejected(fake_registry: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    host, routes = fake_registry
    img = image_blobs([make_tar([("file", "a", b"genuine")])], compress=False)
    layer = json.loads(img["manifest"])["layers"][0]
    tampered = make_tar([("file", "a", b"evil!!!")])
    assert len(tampered) == layer["size"]      # same size: only the digest can catch it
    _serve_image(routes, "app", "1", img, {layer["digest"]: tampered})
    store = ImageStore(tmp_path / "s")
    with pytest.raises(ImagePullError, match="digest mismatch") as ei:
        await store.pull(f"{host}/app:1")
    assert ei.value.reason == ERR_IMAGE_PULL
    assert store.list() == [] and not (store.root / "blobs/sha256" / layer["digest"][7:]).exists()
    assert list((store.root / "tmp").iterdir()) == []
    # wrong size
    _serve_image(routes, "app", "1", img, {layer["digest"]: tampered + b"x"})
    with pytest.raises(ImagePullError, match="declared size"):
        await store.pull(f"{host}/app:1")


async def test_manifest_digest_mismatch_is_rejected(fake_registry: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    host, routes = fake_registry
    img = image_blobs([make_tar([("file", "a", b"a")])])
    other = image_blobs([make_tar([("file", "b", b"b")])])
    _serve_image(routes, "app", "1", img)
    mt = "application/vnd.oci.image.manifest.v1+json"
    # asked by digest, served something else
    routes[f"/v2/app/manifests/{img['manifest_digest']}"] = (200, {"Content-Type": mt}, other["manifest"])
    store = ImageStore(tmp_path / "s")
    with pytest.raises(ImagePullError, match="manifest digest mismatch"):
        await store.pull(f"{host}/app@{img['manifest_digest']}")
    # asked by tag, the registry's Docker-Content-Digest disagrees with the content
    routes["/v2/app/manifests/1"] = (200, {"Content-Type": mt, "Docker-Content-Digest": other["manifest_digest"]},
                                     img["manifest"])
    with pytest.raises(ImagePullError, match="manifest digest mismatch"):
        await store.pull(f"{host}/app:1")
    assert store.list() == []
    # and the honest version pulls
    routes["/v2/app/manifests/1"] = (200, {"Content-Type": mt}, img["manifest"])
    assert (await store.pull(f"{host}/app:1")).id == img["config_digest"]


async def test_stalled_registry_times_out(fake_registry: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    host, routes = fake_registry
    routes["/v2/slow/manifests/1"] = "hang"
    store = ImageStore(tmp_path / "s", request_timeout=0.5, read_timeout=0.5)
    with pytest.raises(ImagePullError, match="timed out") as ei:
        await store.pull(f"{host}/slow:1")
    assert ei.value.reason == ERR_IMAGE_PULL


async def test_registry_client_reports_registry_errors(fake_registry: tuple[str, dict[str, Any]]) -> None:
    host, routes = fake_registry
    routes["/v2/x/manifests/1"] = (500, {}, json.dumps({"errors": [{"code": "UNKNOWN", "message": "boom"}]}).encode())
    async with RegistryClient() as c:
        with pytest.raises(RegistryError, match="registry answered 500: unknown: boom"):
            await c.get_manifest(parse_reference(f"{host}/x:1"))
    # plain HTTP for loopback, HTTPS elsewhere
    c = RegistryClient(insecure_registries={"10.0.0.5:5000"})
    assert str(c.base_url(parse_reference(f"{host}/x"))).startswith("http://")
    assert str(c.base_url(parse_reference("10.0.0.5:5000/x"))).startswith("http://")
    assert str(c.base_url(parse_reference("quay.io/x"))) == "https://quay.io"
    assert str(c.base_url(parse_reference("busybox"))) == "https://registry-1.docker.io"
