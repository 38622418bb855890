"""Pure parts of the image subsystem: references, pull policy, credentials, challenges, platforms."""

from __future__ import annotations

import base64
import json

import pytest

from kybernetes.kubelet.images import (InvalidReference, RegistryAuth, auths_from_dockerconfig,
                                       default_pull_policy, is_loopback_registry, normalize_ref,
                                       parse_reference, should_pull)
from kybernetes.kubelet.images.auth import find_auth, normalize_registry_key, parse_challenges
from kybernetes.kubelet.images.manifest import (DOCKER_LIST, OCI_INDEX, Descriptor, Platform,
                                                media_type_of, parse_config, select_platform)
from kybernetes.kubelet.images.reference import looks_like_id

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("ref,want", [
    pytest.param("busybox", "docker.io/library/busybox:latest", id="short"),
    pytest.param("busybox:1.36", "docker.io/library/busybox:1.36", id="tag"),
    pytest.param("library/busybox", "docker.io/library/busybox:latest", id="library"),
    pytest.param("user/app", "docker.io/user/app:latest", id="hub-user"),
    pytest.param("index.docker.io/busybox", "docker.io/library/busybox:latest", id="legacy-hub"),
    pytest.param("docker.io/busybox:1", "docker.io/library/busybox:1", id="hub-domain"),
    pytest.param("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest", id="loopback-port"),
    pytest.param("localhost/a/b/c:v1.2-rc_3", "localhost/a/b/c:v1.2-rc_3", id="localhost-deep"),
    pytest.param("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", id="domain"),
    pytest.param(f"busybox@{D}", f"docker.io/library/busybox@{D}", id="digest-no-tag"),
    pytest.param(f"quay.io/a/b:1@{D}", f"quay.io/a/b:1@{D}", id="tag-and-digest"),
    pytest.param("a__b-c/d.e_f", "docker.io/a__b-c/d.e_f:latest", id="separators"),
    pytest.param("a_b.example/x", None, id="domain-underscore-invalid"),
    pytest.param("[::1]:5000/x:y", "[::1]:5000/x:y", id="ipv6"),
])
def test_normalize(ref: str, want: str | None) -> None:
    if want is None:
        with pytest.raises(InvalidReference):
            normalize_ref(ref)
    else:
        assert normalize_ref(ref) == want


@pytest.mark.parametrize("ref", [
    pytest.param("", id="empty"),
    pytest.param("Busybox", id="upper-repo"),
    pytest.param("busybox:", id="empty-tag"),
    pytest.param("busybox:-bad", id="bad-tag"),
    pytest.param("busybox@sha256:abc", id="short-digest"),
    pytest.param("a//b", id="empty-component"),
    pytest.param(" busybox", id="space"),
    pytest.param("busy box", id="inner-space"),
    pytest.param("-x/y", id="leading-dash"),
    pytest.param("x" * 300, id="too-long"),
])
def test_invalid(ref: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(ref)


def test_reference_parts() -> None:
    r = parse_reference("127.0.0.1:5000/team/app:v1")
    assert (r.domain, r.path, r.tag, r.digest) == ("127.0.0.1:5000", "team/app", "v1", "")
    assert r.name == "127.0.0.1:5000/team/app"
    assert r.tagged == "127.0.0.1:5000/team/app:v1"
    assert r.pull_target == "v1"
    assert r.with_digest(D) == f"127.0.0.1:5000/team/app@{D}"
    assert parse_reference(f"x@{D}").pull_target == D
    assert parse_reference(f"x@{D}").tagged == ""


@pytest.mark.parametrize("image,policy", [
    pytest.param("busybox", "Always", id="no-tag"),
    pytest.param("busybox:latest", "Always", id="latest"),
    pytest.param("127.0.0.1:5000/busybox", "Always", id="port-no-tag"),
    pytest.param("127.0.0.1:5000/busybox:1", "IfNotPresent", id="port-tag"),
    pytest.param("busybox:1.36", "IfNotPresent", id="tag"),
    pytest.param(f"busybox@{D}", "IfNotPresent", id="digest"),
    pytest.param(f"busybox:latest@{D}", "IfNotPresent", id="latest-with-digest"),
])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


@pytest.mark.parametrize("policy,present,want", [
    ("Always", True, True), ("Always", False, True),
    ("IfNotPresent", True, False), ("IfNotPresent", False, True),
    ("Never", True, False), ("Never", False, False),
])
def test_should_pull(policy: str, present: bool, want: bool) -> None:
    assert should_pull(policy, present) is want


@pytest.mark.parametrize("domain,loop", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True),
    ("[::1]:5000", True), ("docker.io", False), ("10.0.0.1:5000", False), ("localhost.example", False),
])
def test_loopback(domain: str, loop: bool) -> None:
    assert is_loopback_registry(domain) is loop


def test_looks_like_id() -> None:
    assert looks_like_id(D) and looks_like_id("a" * 12) and not looks_like_id("a" * 11)
    assert not looks_like_id("busybox")


def test_auths_from_dockerconfigjson() -> None:
    blob = base64.b64encode(b"carol:pa:ss").decode()
    data = {".dockerconfigjson": json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": blob},
        "http://127.0.0.1:5000": {"username": "u", "password": "p"},
        "reg.example.com/team": {"identitytoken": "refresh-me"},
    }}).encode()}
    auths = {a.registry: a for a in auths_from_dockerconfig(data)}
    assert set(auths) == {"docker.io", "127.0.0.1:5000", "reg.example.com/team"}
    assert auths["docker.io"].basic() == ("carol", "pa:ss")
    assert auths["127.0.0.1:5000"].basic() == ("u", "p")
    assert auths["reg.example.com/team"].identity_token == "refresh-me"
    assert auths["reg.example.com/team"].basic() is None


def test_auths_from_dockercfg_and_garbage() -> None:
    data = {".dockercfg": json.dumps({"quay.io": {"username": "a", "password": "b"}})}
    assert auths_from_dockerconfig(data) == [RegistryAuth("quay.io", "a", "b", None, None)]
    assert auths_from_dockerconfig({".dockerconfigjson": b"not json"}) == []
    assert auths_from_dockerconfig({}) == []


def test_find_auth_longest_prefix() -> None:
    host = RegistryAuth("reg.example.com", "host", "x")
    team = RegistryAuth("reg.example.com/team", "team", "x")
    hub = RegistryAuth("https://index.docker.io/v1/", "hub", "x")
    auths = [host, team, hub]
    assert find_auth(auths, "reg.example.com", "team/app") is team
    assert find_auth(auths, "reg.example.com", "teamother/app") is host
    assert find_auth(auths, "docker.io", "library/busybox") is hub
    assert find_auth(auths, "other.io", "x") is None
    assert normalize_registry_key("HTTPS://Reg.Example.com:443/") == "reg.example.com:443"


def test_parse_challenges() -> None:
    ch = parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                          'scope="repository:a/b:pull,push", Basic realm="x"')
    assert [c.scheme for c in ch] == ["bearer", "basic"]
    assert ch[0].params == {"realm": "https://auth.example/token", "service": "registry.example",
                            "scope": "repository:a/b:pull,push"}
    assert ch[1].params == {"realm": "x"}
    assert parse_challenges('Basic realm="kyb-test"')[0].scheme == "basic"
    assert parse_challenges("") == []


def _desc(os_: str, arch: str, variant: str = "", n: str = "1") -> Descriptor:
    return Descriptor("m", "sha256:" + n * 64, 1, Platform(os_, arch, variant))


def test_select_platform() -> None:
    entries = [_desc("linux", "arm64", "v8", "1"), _desc("unknown", "unknown", "", "2"),
               _desc("linux", "amd64", "", "3"), _desc("linux", "arm", "v6", "4"),
               _desc("linux", "arm", "v7", "5")]
    assert select_platform(entries, Platform("linux", "amd64")).digest.endswith("3" * 64)
    assert select_platform(entries, Platform("linux", "arm", "v7")).digest.endswith("5" * 64)
    assert select_platform(entries, Platform("linux", "arm64", "v8")).digest.endswith("1" * 64)
    with pytest.raises(Exception, match="no matching manifest for linux/s390x"):
        select_platform(entries, Platform("linux", "s390x"))


def test_media_type_guess() -> None:
    assert media_type_of(b'{"manifests": []}') == OCI_INDEX
    assert media_type_of(b'{"manifests": []}', DOCKER_LIST) == DOCKER_LIST
    assert media_type_of(b'{"mediaType": "x", "manifests": []}', DOCKER_LIST) == "x"


def test_parse_config() -> None:
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": None, "Env": ["A=1"], "WorkingDir": "/w",
        "User": "1000:1000", "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [D]}}).encode()
    info = parse_config(cfg)
    assert info.entrypoint == ["/bin/sh", "-c"] and info.cmd is None
    assert info.env == ["A=1"] and info.working_dir == "/w" and info.user == "1000:1000"
    assert info.exposed_ports == ["53/udp", "80/tcp"] and info.diff_ids == [D]
