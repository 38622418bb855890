"""Container env and argv resolution (kubelet/envvars.py)."""

from __future__ import annotations

import pytest

from kybernetes.kubelet.envvars import (
    ConfigError,
    expand,
    mapping_for,
    merge_image_env,
    resolve_argv,
    resolve_env,
    service_env,
)

from .conftest import FakeSource, make_pod

CTX = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize("text, want", [
    pytest.param("$(VAR_A)", "A", id="whole"),
    pytest.param("___$(VAR_B)___", "___B___", id="middle"),
    pytest.param("$(VAR_A)-$(VAR_B)-$(VAR_C)", "A-B-C", id="several"),
    pytest.param("$(VAR_DOES_NOT_EXIST)", "$(VAR_DOES_NOT_EXIST)", id="undefined-kept"),
    pytest.param("$$(VAR_A)", "$(VAR_A)", id="escaped-reference"),
    pytest.param("$$$(VAR_A)", "$A", id="escape-then-reference"),
    pytest.param("$$$$(VAR_A)", "$$(VAR_A)", id="two-escapes"),
    pytest.param("$$", "$", id="escaped-operator"),
    pytest.param("$", "$", id="lone-operator-at-end"),
    pytest.param("foo$", "foo$", id="trailing-operator"),
    pytest.param("$VAR_A", "$VAR_A", id="no-parens"),
    pytest.param("$(VAR_A", "$(VAR_A", id="unclosed"),
    pytest.param("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)", id="unclosed-nested-name"),
    pytest.param("$()", "$()", id="empty-name"),
    pytest.param("$(VAR_REF)", "$(VAR_A)", id="no-recursive-expansion"),
    pytest.param("$(VAR_EMPTY)x", "x", id="defined-empty"),
    pytest.param("$(VAR_A)$(VAR_B)", "AB", id="adjacent"),
    pytest.param("(VAR_A)", "(VAR_A)", id="no-operator"),
    pytest.param("$(VAR_A))", "A)", id="extra-closer"),
    pytest.param("f$oo", "f$oo", id="dollar-letter"),
    pytest.param("héllo $(VAR_A) wörld", "héllo A wörld", id="unicode"),
])
def test_expand(text: str, want: str) -> None:
    assert expand(text, mapping_for(CTX)) == want


def test_expand_reads_contexts_in_order() -> None:
    assert expand("$(X)", mapping_for({"X": "1"}, {"X": "2"})) == "1"
    assert expand("$(Y)", mapping_for({"X": "1"}, {"Y": "2"})) == "2"


def svc(name: str, ns: str, ip: str, ports: list[dict]) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


KUBERNETES = svc("kubernetes", "default", "10.0.0.1", [{"name": "https", "port": 443, "protocol": "TCP"}])


def test_service_env_names() -> None:
    services = [KUBERNETES,
                svc("my-db-svc", "ns1", "10.0.0.7", [{"port": 5432}, {"name": "metrics-port", "port": 9187,
                                                                         "protocol": "UDP"}]),
                svc("headless", "ns1", "None", [{"port": 80}]),
                svc("noip", "ns1", "", [{"port": 80}]),
                svc("other", "ns2", "10.0.0.9", [{"port": 80}])]
    env = service_env(services, "ns1")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.0.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.0.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
    assert env["KUBERNETES_PORT_443_TCP_PORT"] == "443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.0.0.1"
    # dashes become underscores, names upper case; first port unnamed is allowed
    assert env["MY_DB_SVC_SERVICE_HOST"] == "10.0.0.7"
    assert env["MY_DB_SVC_SERVICE_PORT"] == "5432"
    assert env["MY_DB_SVC_SERVICE_PORT_METRICS_PORT"] == "9187"
    assert env["MY_DB_SVC_PORT"] == "tcp://10.0.0.7:5432"
    assert env["MY_DB_SVC_PORT_9187_UDP"] == "udp://10.0.0.7:9187"
    assert env["MY_DB_SVC_PORT_9187_UDP_PROTO"] == "udp"
    assert env["MY_DB_SVC_PORT_9187_UDP_ADDR"] == "10.0.0.7"
    assert not any(k.startswith(("HEADLESS_", "NOIP_", "OTHER_")) for k in env)
    assert len(env) == 8 + 12


def test_service_links_disabled_keeps_kubernetes() -> None:
    env = service_env([KUBERNETES, svc("db", "ns1", "10.0.0.7", [{"port": 1}])], "ns1",
                      enable_service_links=False)
    assert "KUBERNETES_SERVICE_HOST" in env and "DB_SERVICE_HOST" not in env


def test_service_in_own_namespace_wins_over_master() -> None:
    own = svc("kubernetes", "ns1", "10.0.0.50", [{"port": 8443}])
    for order in ([KUBERNETES, own], [own, KUBERNETES]):
        assert service_env(order, "ns1")["KUBERNETES_SERVICE_HOST"] == "10.0.0.50"
    assert service_env([own, KUBERNETES], "default")["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"


def test_ipv6_service_port_url() -> None:
    env = service_env([svc("v6", "ns", "fd00::1", [{"port": 80}])], "ns")
    assert env["V6_PORT"] == "tcp://[fd00::1]:80"


async def test_resolve_env_full(source: FakeSource) -> None:
    source.add_configmap("cfg", {"LOG": "debug", "1bad": "x", "mode": "fast"})
    source.add_secret("sec", {"PASSWORD": b"s3cret", "TOKEN": b"t"})
    pod = make_pod(name="api", ns="default", uid="u-9", labels={"app": "api"},
                   annotations={"a/b": "c"}, nodeName="node-1", serviceAccountName="robot")
    pod["spec"]["containers"] = [{
        "name": "main",
        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}, "prefix": "S_"}],
        "env": [
            {"name": "FIRST", "value": "one"},
            {"name": "SECOND", "value": "$(FIRST)-two"},
            {"name": "ESC", "value": "$$(FIRST)"},
            {"name": "FWD", "value": "$(LATER)"},
            {"name": "LATER", "value": "late"},
            {"name": "FROM_CM", "value": "$(LOG)"},
            {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST)"},
            {"name": "LOG", "value": "override"},
            {"name": "CM_KEY", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "SEC_KEY", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PASSWORD"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope",
                                                             "optional": True}}},
            {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "ANN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['a/b']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
            {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu",
                                                                 "divisor": "1m"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                     "divisor": "1Mi"}}},
            {"name": "MEM_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}},
            {"name": "EMPTY"},
        ]}]
    events: list[tuple[str, str]] = []
    env = await resolve_env(pod, pod["spec"]["containers"][0], source, services=[KUBERNETES],
                            node_ip="192.168.1.5", pod_ip="10.244.0.7",
                            pod_ips=["10.244.0.7", "fd00::7"],
                            node_allocatable={"cpu": "2", "memory": "4Gi"}, events=events)
    d = dict(env)
    assert len(d) == len(env)  # no duplicates
    assert d["FIRST"] == "one" and d["SECOND"] == "one-two"
    assert d["ESC"] == "$(FIRST)"
    assert d["FWD"] == "$(LATER)"          # defined later: left as written
    assert d["FROM_CM"] == "debug"          # from envFrom, before the override below
    assert d["LOG"] == "override"           # later wins
    assert d["SVC"] == "10.0.0.1"
    assert d["mode"] == "fast" and "1bad" not in d
    assert d["S_PASSWORD"] == "s3cret" and d["S_TOKEN"] == "t"
    assert d["CM_KEY"] == "fast" and d["SEC_KEY"] == "s3cret"
    assert "OPT" not in d and "OPT2" not in d
    assert (d["POD_NAME"], d["POD_NS"], d["POD_UID"]) == ("api", "default", "u-9")
    assert d["APP"] == "api" and d["ANN"] == "c"
    assert d["NODE"] == "node-1" and d["SA"] == "robot"
    assert d["HOST_IP"] == "192.168.1.5"
    assert d["POD_IP"] == "10.244.0.7" and d["POD_IPS"] == "10.244.0.7,fd00::7"
    assert d["CPU_M"] == "500" and d["CPU"] == "1"       # ceil(0.5)
    assert d["MEM_LIMIT"] == "4096"                      # unset limit -> node allocatable
    assert d["MEM_REQ"] == str(64 * 1024 * 1024)
    assert d["EMPTY"] == ""
    # service variables come first, then envFrom, then env
    names = [k for k, _ in env]
    assert names[0].startswith("KUBERNETES_")
    assert names.index("LOG") < names.index("S_PASSWORD") < names.index("FIRST")
    assert events == [("InvalidEnvironmentVariableNames",
                       "Keys [1bad] from the EnvFrom configMap default/cfg were skipped since they "
                       "are considered invalid environment variable names.")]


async def test_env_overrides_service_variable(source: FakeSource) -> None:
    pod = make_pod()
    c = {"name": "c", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"}]}
    env = await resolve_env(pod, c, source, services=[KUBERNETES], node_ip="1.1.1.1", pod_ip=None)
    assert [v for k, v in env if k == "KUBERNETES_SERVICE_HOST"] == ["mine"]


async def test_enable_service_links_false(source: FakeSource) -> None:
    pod = make_pod(ns="ns1", enableServiceLinks=False)
    env = dict(await resolve_env(pod, {"name": "c"}, source, node_ip="", pod_ip=None,
                                 services=[KUBERNETES, svc("db", "ns1", "10.0.0.3", [{"port": 1}])]))
    assert "KUBERNETES_SERVICE_HOST" in env and "DB_SERVICE_HOST" not in env


@pytest.mark.parametrize("entry, message", [
    pytest.param({"valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}},
                 'configmap "x" not found', id="cm-missing"),
    pytest.param({"valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "y"}}},
                 "couldn't find key y in ConfigMap ns1/cfg", id="cm-key-missing"),
    pytest.param({"valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}},
                 'secret "x" not found', id="secret-missing"),
    pytest.param({"valueFrom": {"secretKeyRef": {"name": "sec", "key": "y"}}},
                 "couldn't find key y in Secret ns1/sec", id="secret-key-missing"),
    pytest.param({"valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}},
                 "unsupported fieldPath: spec.bogus", id="bad-field"),
    pytest.param({"valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "containerName": "zz"}}},
                 "container zz not found", id="bad-container"),
])
async def test_missing_required_reference(source: FakeSource, entry: dict, message: str) -> None:
    source.add_configmap("cfg", {"k": "v"}, ns="ns1")
    source.add_secret("sec", {"k": b"v"}, ns="ns1")
    pod = make_pod(ns="ns1")
    with pytest.raises(ConfigError) as err:
        await resolve_env(pod, {"name": "c", "env": [{"name": "X", **entry}]}, source, services=[],
                          node_ip="", pod_ip=None)
    assert err.value.message == message
    assert err.value.reason == "CreateContainerConfigError"


@pytest.mark.parametrize("ref, message", [
    pytest.param({"configMapRef": {"name": "nope"}}, 'configmap "nope" not found', id="cm"),
    pytest.param({"secretRef": {"name": "nope"}}, 'secret "nope" not found', id="secret"),
])
async def test_env_from_missing(source: FakeSource, ref: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await resolve_env(make_pod(), {"name": "c", "envFrom": [ref]}, source, services=[],
                          node_ip="", pod_ip=None)
    opt = {k: {**v, "optional": True} for k, v in ref.items()}
    assert await resolve_env(make_pod(), {"name": "c", "envFrom": [opt]}, source, services=[],
                             node_ip="", pod_ip=None) == []


async def test_resource_field_ref_other_container(source: FakeSource) -> None:
    pod = make_pod(containers=[{"name": "a", "resources": {"limits": {"memory": "128Mi"}}},
                               {"name": "b"}])
    c = {"name": "b", "env": [{"name": "M", "valueFrom": {"resourceFieldRef": {
        "containerName": "a", "resource": "limits.memory", "divisor": "1Mi"}}}]}
    assert dict(await resolve_env(pod, c, source, services=[], node_ip="", pod_ip=None))["M"] == "128"


class Img:
    def __init__(self, entrypoint: list[str] | None, cmd: list[str] | None) -> None:
        self.entrypoint, self.cmd = entrypoint, cmd


@pytest.mark.parametrize("command, args, image, want", [
    pytest.param(None, None, Img(["/ep"], ["c1", "c2"]), ["/ep", "c1", "c2"], id="image-only"),
    pytest.param(["/bin/x"], None, Img(["/ep"], ["c1"]), ["/bin/x"], id="command-drops-cmd"),
    pytest.param(None, ["a1"], Img(["/ep"], ["c1"]), ["/ep", "a1"], id="args-replace-cmd"),
    pytest.param(["/bin/x"], ["a1", "a2"], Img(["/ep"], ["c1"]), ["/bin/x", "a1", "a2"], id="both"),
    pytest.param(None, None, Img(None, ["sh"]), ["sh"], id="cmd-only-image"),
    pytest.param(None, ["sh", "-c"], Img(None, None), ["sh", "-c"], id="args-no-image"),
    pytest.param(None, None, Img([""], ["sh"]), ["sh"], id="empty-entrypoint-reset"),
    pytest.param(None, None, {"Entrypoint": ["/e"], "Cmd": ["x"]}, ["/e", "x"], id="dict-config"),
])
def test_resolve_argv(command: list[str] | None, args: list[str] | None, image: object,
                      want: list[str]) -> None:
    c: dict = {"name": "c"}
    if command is not None:
        c["command"] = command
    if args is not None:
        c["args"] = args
    assert resolve_argv(c, image, []) == want


def test_resolve_argv_expansion_and_empty() -> None:
    c = {"command": ["echo", "$(MSG)", "$$(MSG)", "$(NOPE)"], "args": ["$(MSG)!"]}
    assert resolve_argv(c, Img(None, None), [("MSG", "hi")]) == ["echo", "hi", "$(MSG)", "$(NOPE)", "hi!"]
    with pytest.raises(ConfigError, match="no command specified"):
        resolve_argv({"name": "c"}, Img(None, None), [])


def test_merge_image_env() -> None:
    merged = merge_image_env(["PATH=/opt/bin:/bin", "LANG=C", "KEEP=1"],
                             [("LANG", "en_US.UTF-8"), ("NEW", "x")], hostname="web")
    assert merged == [("PATH", "/opt/bin:/bin"), ("HOSTNAME", "web"), ("LANG", "en_US.UTF-8"),
                      ("KEEP", "1"), ("NEW", "x")]
    assert merge_image_env([], [])[0][0] == "PATH"
