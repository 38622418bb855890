"""Table printers (wire contract §2): cells, columns, custom columns and the Table document."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kybernetes.api import tables
from kybernetes.api.resources import BUILTIN

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", age: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": "u-" + name, "resourceVersion": "7",
            "creationTimestamp": ago(age), **extra}


def running(name: str = "c", ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}}


def pod(statuses: list[dict[str, Any]] | None = None, *, containers: int = 1, phase: str = "Running",
        init: list[dict[str, Any]] | None = None, init_statuses: list[dict[str, Any]] | None = None,
        conditions: list[dict[str, Any]] | None = None, **meta_extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    status: dict[str, Any] = {"phase": phase, "containerStatuses": statuses or []}
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta("p", **meta_extra), "spec": spec, "status": status}


# ---------------------------------------------------------------------------------- §2.5 ages

@pytest.mark.parametrize(("seconds", "expected"), [
    pytest.param(-5, "<invalid>", id="future"),
    pytest.param(-1.5, "0s", id="slightly-future"),
    pytest.param(0, "0s", id="zero"),
    pytest.param(59, "59s", id="seconds"),
    pytest.param(119, "119s", id="under-2m"),
    pytest.param(120, "2m", id="2m"),
    pytest.param(150, "2m30s", id="2m30s"),
    pytest.param(600, "10m", id="10m"),
    pytest.param(179 * 60 + 59, "179m", id="under-3h"),
    pytest.param(3 * 3600, "3h", id="3h"),
    pytest.param(3 * 3600 + 300, "3h5m", id="3h5m"),
    pytest.param(8 * 3600 + 300, "8h", id="8h-drops-minutes"),
    pytest.param(47 * 3600, "47h", id="47h"),
    pytest.param(48 * 3600, "2d", id="2d"),
    pytest.param(50 * 3600, "2d2h", id="2d2h"),
    pytest.param(8 * 86400 + 3600, "8d", id="8d"),
    pytest.param(729 * 86400, "729d", id="under-2y"),
    pytest.param(730 * 86400, "2y", id="2y"),
    pytest.param(735 * 86400, "2y5d", id="2y5d"),
    pytest.param(8 * 365 * 86400 + 86400 * 10, "8y", id="8y"),
])
def test_human_duration(seconds: float, expected: str) -> None:
    assert tables.human_duration(seconds) == expected


def test_translate_timestamp() -> None:
    assert tables.translate_timestamp(None, NOW) == "<unknown>"
    assert tables.translate_timestamp("", NOW) == "<unknown>"
    assert tables.translate_timestamp("garbage", NOW) == "<unknown>"
    assert tables.translate_timestamp(ago(90), NOW) == "90s"
    assert tables.translate_timestamp("2025-01-01T11:59:00.123456Z", NOW) == "59s"  # MicroTime


def test_label_and_selector_formatting() -> None:
    assert tables.format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert tables.format_labels({}) == "<none>"
    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                {"key": "env", "operator": "DoesNotExist"}]}
    assert tables.selector_string(sel) == "app=web,!env,tier in (a,b)"
    assert tables.format_selector(None) == "<none>"
    assert tables.format_selector({}) == "<none>"


# ---------------------------------------------------------------------------------- pods

@pytest.mark.parametrize(("obj", "ready", "status", "restarts"), [
    pytest.param(pod([running()]), "1/1", "Running", "0", id="running"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"waiting": {"reason": "ContainerCreating"}}}], phase="Pending"),
                 "0/1", "ContainerCreating", "0", id="container-creating"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 4,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}}]),
                 "0/1", "CrashLoopBackOff", "4 (2m ago)", id="crashloop"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}], phase="Succeeded"),
                 "0/1", "Completed", "0", id="completed"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 137}}}], phase="Failed"),
                 "0/1", "ExitCode:137", "0", id="exit-code"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "signal": 9}}}], phase="Failed"),
                 "0/1", "Signal:9", "0", id="signal"),
    pytest.param(pod([], phase="Pending", init=[{"name": "i", "image": "busybox"}],
                     init_statuses=[{"name": "i", "ready": False, "restartCount": 0,
                                     "state": {"waiting": {"reason": "PodInitializing"}}}]),
                 "0/1", "Init:0/1", "0", id="init-0-of-1"),
    pytest.param(pod([], phase="Pending", init=[{"name": "i", "image": "busybox"}],
                     init_statuses=[{"name": "i", "ready": False, "restartCount": 2,
                                     "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
                 "0/1", "Init:Error", "2", id="init-error"),
    pytest.param(pod([], phase="Pending", init=[{"name": "i", "image": "busybox"}],
                     init_statuses=[{"name": "i", "ready": False, "restartCount": 0,
                                     "state": {"terminated": {"exitCode": 3}}}]),
                 "0/1", "Init:ExitCode:3", "0", id="init-exit-code"),
    pytest.param(pod([], phase="Pending", init=[{"name": "i", "image": "x"}],
                     init_statuses=[{"name": "i", "ready": False, "restartCount": 0,
                                     "state": {"waiting": {"reason": "ImagePullBackOff"}}}]),
                 "0/1", "Init:ImagePullBackOff", "0", id="init-waiting-reason"),
    pytest.param(pod([running()], deletionTimestamp=ago(1)), "1/1", "Terminating", "0", id="terminating"),
    pytest.param(pod([running()], phase="Succeeded", deletionTimestamp=ago(1)),
                 "1/1", "Succeeded", "0", id="terminal-phase-not-terminating"),
    pytest.param({**pod([running()], deletionTimestamp=ago(1)),
                  "status": {"phase": "Running", "reason": "NodeLost", "containerStatuses": [running()]}},
                 "1/1", "Unknown", "0", id="node-lost"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("c1")],
                     containers=2, conditions=[{"type": "Ready", "status": "False"}]),
                 "1/2", "NotReady", "0", id="completed-with-running-not-ready"),
    pytest.param(pod([{"name": "c0", "ready": False, "restartCount": 0,
                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("c1")],
                     containers=2, conditions=[{"type": "Ready", "status": "True"}]),
                 "1/2", "Running", "0", id="completed-with-running-ready"),
    pytest.param(pod([running()], phase="Pending",
                     conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
                 "1/1", "SchedulingGated", "0", id="scheduling-gated"),
    pytest.param(pod([running(restarts=1), running("c1", restarts=2)], containers=2),
                 "2/2", "Running", "3", id="restarts-summed"),
    pytest.param(pod([running("c0")], init=[{"name": "side", "image": "x", "restartPolicy": "Always"}],
                     init_statuses=[{"name": "side", "ready": True, "started": True, "restartCount": 1,
                                     "state": {"running": {}}}],
                     conditions=[{"type": "Initialized", "status": "True"}]),
                 "2/2", "Running", "1", id="sidecar-counts"),
])
def test_pod_cells(obj: dict[str, Any], ready: str, status: str, restarts: str) -> None:
    cells = tables.row_cells("", "Pod", obj, NOW)
    assert cells[:4] == ["p", ready, status, restarts]
    assert cells[4] == "5m"


def test_pod_wide_cells() -> None:
    p = pod([running()])
    p["spec"].update(nodeName="node1", readinessGates=[{"conditionType": "x/ok"}, {"conditionType": "x/no"}])
    p["status"].update(podIPs=[{"ip": "10.0.0.7"}], conditions=[{"type": "x/ok", "status": "True"}])
    assert tables.row_cells("", "Pod", p, NOW)[5:] == ["10.0.0.7", "node1", "<none>", "1/2"]


# ---------------------------------------------------------------------------------- workloads

def test_deployment_row() -> None:
    d = {"metadata": meta("web"), "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert tables.row_cells("apps", "Deployment", d, NOW) == [
        "web", "2/3", 3, 2, "5m", "a,b", "nginx:1,busybox", "app=web"]


def test_replicaset_and_daemonset_rows() -> None:
    rs = {"metadata": meta("r"), "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                                          "template": {"spec": {"containers": []}}},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert tables.row_cells("apps", "ReplicaSet", rs, NOW) == ["r", 2, 2, 1, "5m", "", "", "a=b"]
    ds = {"metadata": meta("d"), "spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}, "containers": []}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert tables.row_cells("apps", "DaemonSet", ds, NOW)[:8] == ["d", 3, 3, 2, 3, 2, "os=linux", "5m"]


@pytest.mark.parametrize(("spec", "status", "meta_extra", "expected"), [
    pytest.param({"completions": 1}, {"succeeded": 1, "startTime": ago(100), "completionTime": ago(40),
                                      "conditions": [{"type": "Complete", "status": "True"}]},
                 {}, ["Complete", "1/1", "60s"], id="complete"),
    pytest.param({"completions": 3}, {"succeeded": 1, "startTime": ago(200)}, {},
                 ["Running", "1/3", "3m20s"], id="running"),
    pytest.param({"parallelism": 2}, {}, {}, ["Running", "0/1 of 2", ""], id="parallel-no-start"),
    pytest.param({}, {"conditions": [{"type": "Failed", "status": "True"}]}, {},
                 ["Failed", "0/1", ""], id="failed"),
    pytest.param({}, {}, {"deletionTimestamp": ago(1)}, ["Terminating", "0/1", ""], id="terminating"),
    pytest.param({}, {"conditions": [{"type": "Suspended", "status": "True"}]}, {},
                 ["Suspended", "0/1", ""], id="suspended"),
])
def test_job_row(spec: dict[str, Any], status: dict[str, Any], meta_extra: dict[str, Any],
                 expected: list[str]) -> None:
    job = {"metadata": meta("j", **meta_extra), "spec": {**spec, "template": {"spec": {"containers": []}}},
           "status": status}
    assert tables.row_cells("batch", "Job", job, NOW)[1:4] == expected


def test_cronjob_row() -> None:
    cj = {"metadata": meta("c"), "spec": {"schedule": "*/5 * * * *", "suspend": False,
                                          "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                                              {"name": "x", "image": "busybox"}]}}}}},
          "status": {"active": [{"name": "c-1"}], "lastScheduleTime": ago(30)}}
    assert tables.row_cells("batch", "CronJob", cj, NOW) == [
        "c", "*/5 * * * *", "<none>", "False", 1, "30s", "5m", "x", "busybox", "<none>"]
    cj["spec"].pop("suspend")
    cj["status"] = {}
    cells = tables.row_cells("batch", "CronJob", cj, NOW)
    assert cells[3:6] == ["<unset>", 0, "<none>"]


# ---------------------------------------------------------------------------------- services, nodes

@pytest.mark.parametrize(("spec", "status", "expected"), [
    pytest.param({"type": "ClusterIP", "clusterIPs": ["10.96.0.10"],
                  "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                  "selector": {"k8s-app": "dns"}},
                 {}, ["ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "5m", "k8s-app=dns"], id="clusterip"),
    pytest.param({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "externalIPs": ["1.2.3.4"],
                  "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
                 {}, ["NodePort", "10.96.0.11", "1.2.3.4", "80:30080/TCP", "5m", "<none>"], id="nodeport"),
    pytest.param({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": []},
                 {}, ["LoadBalancer", "10.96.0.12", "<pending>", "<none>", "5m", "<none>"], id="lb-pending"),
    pytest.param({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": []},
                 {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}},
                 ["LoadBalancer", "10.96.0.12", "5.6.7.8,lb.example", "<none>", "5m", "<none>"], id="lb"),
    pytest.param({"type": "ExternalName", "externalName": "db.example.com"},
                 {}, ["ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"], id="externalname"),
])
def test_service_row(spec: dict[str, Any], status: dict[str, Any], expected: list[Any]) -> None:
    svc = {"metadata": meta("s"), "spec": spec, "status": status}
    assert tables.row_cells("", "Service", svc, NOW) == ["s", *expected]


def test_node_row() -> None:
    node = {"metadata": meta("n1", labels={"node-role.kubernetes.io/control-plane": "",
                                           "kubernetes.io/role": "worker"}),
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"}}}
    assert tables.row_cells("", "Node", node, NOW) == [
        "n1", "Ready,SchedulingDisabled", "control-plane,worker", "5m", "v1.32.0",
        "192.168.1.5", "<none>", "Debian", "<unknown>", "<unknown>"]
    node["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    node["spec"] = {}
    assert tables.row_cells("", "Node", node, NOW)[1] == "NotReady"
    node["status"]["conditions"] = []
    assert tables.row_cells("", "Node", node, NOW)[1] == "Unknown"


def test_event_rows_core_and_events_api() -> None:
    core = {"metadata": meta("e1"), "type": "Normal", "reason": "Scheduled", "message": " hi ",
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{a}"},
            "source": {"component": "kubelet", "host": "n1"}, "firstTimestamp": ago(600),
            "lastTimestamp": ago(60), "count": 3}
    assert tables.row_cells("", "Event", core, NOW) == [
        "60s", "Normal", "Scheduled", "pod/web-1", "spec.containers{a}", "kubelet, n1", "hi", "10m", 3, "e1"]
    new = {"metadata": meta("e2"), "type": "Warning", "reason": "Failed", "note": "boom",
           "regarding": {"kind": "Pod", "name": "web-2"}, "eventTime": "2025-01-01T11:58:00.000000Z",
           "reportingController": "ctrl", "reportingInstance": "ctrl-1"}
    assert tables.row_cells("events.k8s.io", "Event", new, NOW) == [
        "2m", "Warning", "Failed", "pod/web-2", "", "ctrl, ctrl-1", "boom", "2m", 1, "e2"]


def test_small_kinds() -> None:
    cm = {"metadata": meta("cm"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert tables.row_cells("", "ConfigMap", cm, NOW) == ["cm", 2, "5m"]
    sec = {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}
    assert tables.row_cells("", "Secret", sec, NOW) == ["s", "Opaque", 1, "5m"]
    ep = {"metadata": meta("e"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                                              "ports": [{"port": 80}]}]}
    assert tables.row_cells("", "Endpoints", ep, NOW) == ["e", "10.0.0.1:80,[fd00::1]:80", "5m"]
    rq = {"metadata": meta("q"), "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                                            "used": {"pods": "3"}}}
    assert tables.row_cells("", "ResourceQuota", rq, NOW) == [
        "q", "pods: 3/10, requests.cpu: 0/1", "limits.cpu: 0/2", "5m"]
    sc = {"metadata": meta("std", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
          "provisioner": "local"}
    assert tables.row_cells("storage.k8s.io", "StorageClass", sc, NOW) == [
        "std (default)", "local", "Delete", "Immediate", False, "5m"]
    rb = {"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}]}
    assert tables.row_cells("rbac.authorization.k8s.io", "RoleBinding", rb, NOW) == [
        "rb", "ClusterRole/view", "5m", "alice", "", "ns/sa"]
    hpa = {"apiVersion": "autoscaling/v2", "metadata": meta("h"),
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 50}}}]},
           "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {
               "name": "cpu", "current": {"averageUtilization": 20}}}]}}
    assert tables.row_cells("autoscaling", "HorizontalPodAutoscaler", hpa, NOW) == [
        "h", "Deployment/web", "cpu: 20%/50%", "1", 5, 2, "5m"]
    v1 = {"apiVersion": "autoscaling/v1", "metadata": meta("h1"),
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}
    assert tables.row_cells("autoscaling", "HorizontalPodAutoscaler", v1, NOW)[2:4] == [
        "cpu: <unknown>/80%", "<unset>"]
    cr = {"metadata": meta("cr", ownerReferences=[{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                   "name": "ds", "controller": True}]), "revision": 2}
    assert tables.row_cells("apps", "ControllerRevision", cr, NOW) == ["cr", "daemonset.apps/ds", 2, "5m"]


def test_default_convertor_for_kinds_without_printer() -> None:
    cols = tables.columns_for("rbac.authorization.k8s.io", "ClusterRole")
    assert [(c["name"], c["type"], c["format"]) for c in cols] == [("Name", "string", "name"),
                                                                    ("Created At", "date", "")]
    assert tables.row_cells("rbac.authorization.k8s.io", "ClusterRole",
                            {"metadata": meta("admin")}, NOW) == ["admin", "2025-01-01T11:55:00Z"]


@pytest.mark.parametrize("info", [pytest.param(r, id=f"{r.group or 'core'}.{r.kind}.{r.version}")
                                  for r in BUILTIN])
def test_every_builtin_has_matching_cells(info: Any) -> None:
    cols = tables.columns_for(info.group, info.kind)
    assert sum(1 for c in cols if c["format"] == "name") == 1
    for c in cols:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["type"] in ("string", "integer", "number", "boolean", "date")
    cells = tables.row_cells(info.group, info.kind, {"metadata": meta("x")}, NOW)
    assert len(cells) == len(cols)


def test_column_priorities_match_upstream() -> None:
    wide = [c["name"] for c in tables.columns_for("", "Pod") if c["priority"] == 1]
    assert wide == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [c["name"] for c in tables.columns_for("", "Event") if c["priority"] == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message"]
    assert tables.columns_for("", "Pod")[0]["description"].startswith("Name must be unique")


# ---------------------------------------------------------------------------------- custom resources

def test_custom_columns() -> None:
    defs, cells = tables.custom_columns([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags", "priority": 1},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothere"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])
    assert [d["name"] for d in defs] == ["Name", "Replicas", "Ready", "Tags", "Missing", "Age"]
    assert defs[0]["format"] == "name" and defs[3]["priority"] == 1
    assert defs[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    obj = {"metadata": meta("w"), "spec": {"replicas": 3, "tags": ["a", "b"]},
           "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert cells(obj, NOW) == ["w", 3, "True", '["a","b"]', None, "5m"]


def test_custom_columns_default_age_and_bad_path() -> None:
    defs, cells = tables.custom_columns([])
    assert [(d["name"], d["type"]) for d in defs] == [("Name", "string"), ("Age", "date")]
    assert cells({"metadata": meta("w", age=7200)}, NOW) == ["w", "120m"]
    defs, cells = tables.custom_columns([{"name": "Bad", "type": "string", "jsonPath": ".spec[?(@.x>1)]"}])
    assert cells({"metadata": meta("w")}, NOW) == ["w", None]


@pytest.mark.parametrize(("path", "obj", "expected"), [
    pytest.param(".a.b", {"a": {"b": 1}}, [1], id="fields"),
    pytest.param(".a[1]", {"a": [1, 2]}, [2], id="index"),
    pytest.param(".a[-1]", {"a": [1, 2]}, [2], id="negative-index"),
    pytest.param(".a[*].n", {"a": [{"n": 1}, {"n": 2}]}, [1, 2], id="wildcard"),
    pytest.param(".a['x.y']", {"a": {"x.y": 5}}, [5], id="quoted"),
    pytest.param("{.a.b}", {"a": {"b": "v"}}, ["v"], id="braces"),
    pytest.param(".a[?(@.t!='x')].v", {"a": [{"t": "x", "v": 1}, {"t": "y", "v": 2}]}, [2], id="not-equal"),
])
def test_jsonpath_subset(path: str, obj: Any, expected: list[Any]) -> None:
    assert tables.eval_jsonpath(tables.compile_jsonpath(path), obj) == expected


# ---------------------------------------------------------------------------------- the Table

def test_table_shape_with_metadata_objects() -> None:
    objs = [pod([running()]), {**pod([], phase="Succeeded"), "metadata": meta("done")}]
    t = tables.to_table("", "Pod", objs, NOW, list_metadata={"resourceVersion": "42", "continue": ""})
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    n = len(t["columnDefinitions"])
    for row, obj in zip(t["rows"], objs, strict=True):
        assert len(row["cells"]) == n
        assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": obj["metadata"]}
    assert "conditions" not in t["rows"][0]
    assert t["rows"][1]["conditions"][0]["type"] == "Completed"


def test_table_include_object_variants_and_headers() -> None:
    objs = [pod([running()])]
    full = tables.to_table("", "Pod", objs, NOW, include_object="Object", api_version="meta.k8s.io/v1beta1")
    assert full["apiVersion"] == "meta.k8s.io/v1beta1" and full["rows"][0]["object"] is objs[0]
    none = tables.to_table("", "Pod", objs, NOW, include_object="None", with_headers=False)
    assert "object" not in none["rows"][0] and none["columnDefinitions"] is None
    beta = tables.to_table("", "Pod", objs, NOW, api_version="meta.k8s.io/v1beta1")
    assert beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    assert tables.to_table("", "Pod", [], NOW)["rows"] == []
    with pytest.raises(ValueError):
        tables.to_table("", "Pod", objs, NOW, include_object="Everything")


def test_table_for_custom_resource() -> None:
    t = tables.to_table("example.com", "Widget", [{"metadata": meta("w"), "spec": {"size": 2}}], NOW,
                        printer_columns=[{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}])
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Size"]
    assert t["rows"][0]["cells"] == ["w", 2]
    t = tables.to_table("example.com", "Widget", [{"metadata": meta("w")}], NOW, custom=True)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]


def test_table_mutation_does_not_leak_into_cached_columns() -> None:
    t = tables.to_table("", "Pod", [], NOW)
    t["columnDefinitions"][0]["name"] = "changed"
    assert tables.columns_for("", "Pod")[0]["name"] == "Name"


def test_pod_tables_render_quickly() -> None:
    """10k pods must render well under 200 ms; 2k here, best of 3, with a margin for busy CI."""
    objs = []
    for i in range(2_000):
        p = pod([running(restarts=i % 3)])
        p["metadata"] = meta(f"p{i}", age=i)
        objs.append(p)
    tables.to_table("", "Pod", objs[:10], NOW)  # warm caches (OpenAPI descriptions)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        t = tables.to_table("", "Pod", objs, NOW)
        best = min(best, time.perf_counter() - start)
    assert len(t["rows"]) == 2_000
    assert best < 0.1, f"2k pod rows took {best * 1000:.0f} ms"
