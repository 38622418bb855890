"""API defaulting for built-in kinds (upstream v1.32 ``SetDefaults_*`` functions).

``apply_defaults(group, version, kind, obj)`` fills in, in place, the fields the upstream API
server defaults when it decodes an object: it never overwrites a value the user set, and applying
it twice gives the same result as applying it once.

Out of scope here (the server's strategies/admission do these): allocating ``clusterIP`` and
node ports, ``status`` initialisation of pods (phase/qosClass), Job selectors and controller-uid
labels, admission-set fields (pod ``priority``/``preemptionPolicy``, default tolerations,
service account token volumes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from typing import Any

Obj = dict[str, Any]
Defaulter = Callable[[Obj], None]

RBAC_GROUP = "rbac.authorization.k8s.io"
DEFAULT_MODE = 0o644  # 420: configMap/secret/downwardAPI/projected volume file mode


def _sub(obj: MutableMapping[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` as a dict, created when missing or null."""
    v = obj.get(key)
    if not isinstance(v, dict):
        v = {}
        obj[key] = v
    return v


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The dict elements of a list field (anything else yields nothing)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _setdefault(obj: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Set ``obj[key]`` when it is missing, null or the empty string (Go's zero value)."""
    if obj.get(key) in (None, ""):
        obj[key] = value


# --------------------------------------------------------------------------------------------
# Containers, probes, volumes: core/v1 building blocks
# --------------------------------------------------------------------------------------------

_DIGEST = re.compile(r"@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


def image_tag(image: str) -> str:
    """The tag of an image reference: ``latest`` when neither tag nor digest is given, "" with a
    digest only (upstream ``parsers.ParseImageName``)."""
    digest = ""
    m = _DIGEST.search(image)
    if m:
        digest, image = m.group(0), image[: m.start()]
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag and not digest:
        return "latest"
    return tag


def default_pull_policy(image: str) -> str:
    if not image:
        return "IfNotPresent"
    return "Always" if image_tag(image) == "latest" else "IfNotPresent"


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        _setdefault(action, "path", "/")
        _setdefault(action, "scheme", "HTTP")


def _default_handler(handler: Any) -> None:
    """A probe or lifecycle handler: httpGet path/scheme, grpc service."""
    if not isinstance(handler, dict):
        return
    _default_http_get(handler.get("httpGet"))
    grpc = handler.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _default_handler(probe)
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):  # 0 means unset for these int32 fields
            probe[key] = value


def _default_env(env: Any) -> None:
    for e in _dicts(env):
        vf = e.get("valueFrom")
        if not isinstance(vf, dict):
            continue
        if isinstance(vf.get("fieldRef"), dict):
            _setdefault(vf["fieldRef"], "apiVersion", "v1")
        if isinstance(vf.get("resourceFieldRef"), dict):
            _setdefault(vf["resourceFieldRef"], "divisor", "0")


def _default_container(c: Obj) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = default_pull_policy(str(c.get("image") or ""))
    _setdefault(c, "terminationMessagePath", "/dev/termination-log")
    _setdefault(c, "terminationMessagePolicy", "File")
    if c.get("resources") is None:
        c["resources"] = {}
    for p in _dicts(c.get("ports")):
        _setdefault(p, "protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))
    _default_env(c.get("env"))


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)


def _default_downward_items(items: Any) -> None:
    for it in _dicts(items):
        if isinstance(it.get("fieldRef"), dict):
            _setdefault(it["fieldRef"], "apiVersion", "v1")
        if isinstance(it.get("resourceFieldRef"), dict):
            _setdefault(it["resourceFieldRef"], "divisor", "0")


def _default_volume(v: Obj) -> None:
    if not any(v.get(k) is not None for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = DEFAULT_MODE
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    if isinstance(v.get("downwardAPI"), dict):
        _default_downward_items(v["downwardAPI"].get("items"))
    if isinstance(v.get("projected"), dict):
        for s in _dicts(v["projected"].get("sources")):
            if isinstance(s.get("downwardAPI"), dict):
                _default_downward_items(s["downwardAPI"].get("items"))
            token = s.get("serviceAccountToken")
            if isinstance(token, dict) and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
    if isinstance(v.get("iscsi"), dict):
        _setdefault(v["iscsi"], "iscsiInterface", "default")
    if isinstance(v.get("rbd"), dict):
        rbd = v["rbd"]
        _setdefault(rbd, "pool", "rbd")
        _setdefault(rbd, "user", "admin")
        _setdefault(rbd, "keyring", "/etc/ceph/keyring")
    eph = v.get("ephemeral")
    if isinstance(eph, dict) and isinstance(eph.get("volumeClaimTemplate"), dict):
        _default_pvc_spec(_sub(eph["volumeClaimTemplate"], "spec"))


def _default_host_network_ports(containers: list[Obj]) -> None:
    for c in containers:
        for p in _dicts(c.get("ports")):
            if not p.get("hostPort"):
                p["hostPort"] = p.get("containerPort", 0)


def default_pod_spec(spec: Obj) -> None:
    """Defaults of a PodSpec (pods and every pod template)."""
    _setdefault(spec, "dnsPolicy", "ClusterFirst")
    _setdefault(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _setdefault(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)


def _default_pod_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(_sub(template, "spec"))


def _requests_from_limits(containers: list[Obj]) -> None:
    for c in containers:
        res = c.get("resources")
        if not isinstance(res, dict) or not res.get("limits"):
            continue
        requests = _sub(res, "requests")
        for name, value in res["limits"].items():
            requests.setdefault(name, value)


def _pod(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    default_pod_spec(spec)
    containers = _dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
    _requests_from_limits(containers)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        _default_host_network_ports(containers)


# --------------------------------------------------------------------------------------------
# core/v1 kinds
# --------------------------------------------------------------------------------------------


def _service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _setdefault(spec, "sessionAffinity", "None")
    _setdefault(spec, "type", "ClusterIP")
    typ = spec["type"]
    if spec["sessionAffinity"] == "ClientIP":
        cfg = _sub(_sub(spec, "sessionAffinityConfig"), "clientIP")
        if cfg.get("timeoutSeconds") is None:
            cfg["timeoutSeconds"] = 10800
    for p in _dicts(spec.get("ports")):
        _setdefault(p, "protocol", "TCP")
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port")
    if typ in ("NodePort", "LoadBalancer"):
        _setdefault(spec, "externalTrafficPolicy", "Cluster")
    if typ == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if typ != "ExternalName":
        _setdefault(spec, "internalTrafficPolicy", "Cluster")
        _default_ip_families(spec)


def _default_ip_families(spec: Obj) -> None:
    """Single-stack IPv4 cluster: families follow the given cluster IPs, else IPv4."""
    if not spec.get("ipFamilies"):
        fams: list[str] = []
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if ip and ip != "None":
                fams.append("IPv6" if ":" in ip else "IPv4")
        spec["ipFamilies"] = fams or ["IPv4"]
    _setdefault(spec, "ipFamilyPolicy", "SingleStack")


def _namespace(obj: Obj) -> None:
    meta = _sub(obj, "metadata")
    if meta.get("name"):
        labels = _sub(meta, "labels")
        labels.setdefault("kubernetes.io/metadata.name", meta["name"])
    spec = _sub(obj, "spec")
    if spec.get("finalizers") is None:
        spec["finalizers"] = ["kubernetes"]
    _setdefault(_sub(obj, "status"), "phase", "Active")


def _secret(obj: Obj) -> None:
    _setdefault(obj, "type", "Opaque")


def _node(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def _default_pvc_spec(spec: Obj) -> None:
    _setdefault(spec, "volumeMode", "Filesystem")


def _pvc(obj: Obj) -> None:
    _default_pvc_spec(_sub(obj, "spec"))
    _setdefault(_sub(obj, "status"), "phase", "Pending")


def _pv(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _setdefault(spec, "persistentVolumeReclaimPolicy", "Retain")
    _setdefault(spec, "volumeMode", "Filesystem")
    _setdefault(_sub(obj, "status"), "phase", "Pending")


def _replication_controller(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _sub(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_pod_template(template)


def _endpoints(obj: Obj) -> None:
    for subset in _dicts(obj.get("subsets")):
        for p in _dicts(subset.get("ports")):
            _setdefault(p, "protocol", "TCP")


def _limit_range(obj: Obj) -> None:
    for item in _dicts(_sub(obj, "spec").get("limits")):
        if item.get("type") != "Container":
            continue
        default = dict(item.get("default") or {})
        default_request = dict(item.get("defaultRequest") or {})
        for name, q in (item.get("max") or {}).items():
            default.setdefault(name, q)
        for name, q in default.items():
            default_request.setdefault(name, q)
        for name, q in (item.get("min") or {}).items():
            default_request.setdefault(name, q)
        if default:
            item["default"] = default
        if default_request:
            item["defaultRequest"] = default_request


def _pod_template(obj: Obj) -> None:
    _default_pod_template(obj.get("template"))


# --------------------------------------------------------------------------------------------
# apps/v1, batch/v1
# --------------------------------------------------------------------------------------------


def _deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _sub(spec, "strategy")
    _setdefault(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _sub(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_pod_template(spec.get("template"))


def _replica_set(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_pod_template(spec.get("template"))


def _daemon_set(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    strategy = _sub(spec, "updateStrategy")
    _setdefault(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _sub(strategy, "rollingUpdate")
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_pod_template(spec.get("template"))


def _stateful_set(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _setdefault(spec, "podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    ru = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(ru, dict) and ru.get("partition") is None:
        ru["partition"] = 0
    policy = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    _setdefault(policy, "whenDeleted", "Retain")
    _setdefault(policy, "whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_pod_template(spec.get("template"))
    for pvc in _dicts(spec.get("volumeClaimTemplates")):
        _pvc(pvc)


def _job(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    template = spec.get("template")
    labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    if labels and not (obj.get("metadata") or {}).get("labels"):
        _sub(obj, "metadata")["labels"] = dict(labels)
    _setdefault(spec, "completionMode", "NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in _dicts(pfp.get("rules")):
            for pattern in _dicts(rule.get("onPodConditions")):
                _setdefault(pattern, "status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(pfp, dict) else "TerminatingOrFailed"
    _default_pod_template(template)


def _cron_job(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _setdefault(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _default_pod_template(_sub(job_template, "spec").get("template"))


# --------------------------------------------------------------------------------------------
# Other groups
# --------------------------------------------------------------------------------------------


def _hpa_v1(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


def _scaling_rules(rules: Any, window: int, policies: list[Obj]) -> Obj:
    out = dict(rules) if isinstance(rules, dict) else {}
    if out.get("stabilizationWindowSeconds") is None:
        out["stabilizationWindowSeconds"] = window
    _setdefault(out, "selectPolicy", "Max")
    if out.get("policies") is None:
        out["policies"] = policies
    return out


def _hpa_v2(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), 0, [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ])
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), 300, [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ])


def _network_policy(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for p in _dicts(rule.get("ports")):
                _setdefault(p, "protocol", "TCP")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def _ingress_class(obj: Obj) -> None:
    params = _sub(obj, "spec").get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


def _binding(obj: Obj) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict):
        _setdefault(ref, "apiGroup", RBAC_GROUP)
    for s in _dicts(obj.get("subjects")):
        # ServiceAccount subjects keep the empty API group (omitted on the wire).
        if not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = RBAC_GROUP


def _storage_class(obj: Obj) -> None:
    _setdefault(obj, "reclaimPolicy", "Delete")
    _setdefault(obj, "volumeBindingMode", "Immediate")


def _priority_class(obj: Obj) -> None:
    _setdefault(obj, "preemptionPolicy", "PreemptLowerPriority")


def _endpoint_slice(obj: Obj) -> None:
    for p in _dicts(obj.get("ports")):
        if p.get("name") is None:
            p["name"] = ""
        _setdefault(p, "protocol", "TCP")


def _crd(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    names = _sub(spec, "names")
    kind = str(names.get("kind") or "")
    if kind:
        _setdefault(names, "singular", kind.lower())
        _setdefault(names, "listKind", kind + "List")
    conversion = _sub(spec, "conversion")
    _setdefault(conversion, "strategy", "None")
    webhook = conversion.get("webhook")
    if isinstance(webhook, dict):
        service = (webhook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443


def _webhook_configuration(mutating: bool) -> Defaulter:
    """admissionregistration.k8s.io/v1 webhook defaults (upstream ``SetDefaults_*Webhook``)."""
    def fill(obj: Obj) -> None:
        for hook in _dicts(obj.get("webhooks")):
            _setdefault(hook, "failurePolicy", "Fail")
            _setdefault(hook, "matchPolicy", "Equivalent")
            if hook.get("namespaceSelector") is None:
                hook["namespaceSelector"] = {}
            if hook.get("objectSelector") is None:
                hook["objectSelector"] = {}
            _setdefault(hook, "timeoutSeconds", 10)
            if mutating:
                _setdefault(hook, "reinvocationPolicy", "Never")
            for rule in _dicts(hook.get("rules")):
                _setdefault(rule, "scope", "*")
            service = (hook.get("clientConfig") or {}).get("service")
            if isinstance(service, dict) and service.get("port") is None:
                service["port"] = 443
    return fill


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_DEFAULTERS: dict[tuple[str, str, str], Defaulter] = {
    ("", "v1", "Pod"): _pod,
    ("", "v1", "Service"): _service,
    ("", "v1", "Namespace"): _namespace,
    ("", "v1", "Secret"): _secret,
    ("", "v1", "Node"): _node,
    ("", "v1", "PersistentVolume"): _pv,
    ("", "v1", "PersistentVolumeClaim"): _pvc,
    ("", "v1", "ReplicationController"): _replication_controller,
    ("", "v1", "Endpoints"): _endpoints,
    ("", "v1", "LimitRange"): _limit_range,
    ("", "v1", "PodTemplate"): _pod_template,
    ("apps", "v1", "Deployment"): _deployment,
    ("apps", "v1", "ReplicaSet"): _replica_set,
    ("apps", "v1", "DaemonSet"): _daemon_set,
    ("apps", "v1", "StatefulSet"): _stateful_set,
    ("batch", "v1", "Job"): _job,
    ("batch", "v1", "CronJob"): _cron_job,
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _hpa_v1,
    ("autoscaling", "v2", "HorizontalPodAutoscaler"): _hpa_v2,
    ("networking.k8s.io", "v1", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "v1", "IngressClass"): _ingress_class,
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"): _binding,
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): _binding,
    ("storage.k8s.io", "v1", "StorageClass"): _storage_class,
    ("scheduling.k8s.io", "v1", "PriorityClass"): _priority_class,
    ("discovery.k8s.io", "v1", "EndpointSlice"): _endpoint_slice,
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): _crd,
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"): _webhook_configuration(True),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"): _webhook_configuration(False),
}


def has_defaults(group: str, version: str, kind: str) -> bool:
    return (group, version, kind) in _DEFAULTERS


def apply_defaults(group: str, version: str, kind: str, obj: Obj) -> None:
    """Fill in upstream API defaults for a built-in kind, in place (unknown kinds: no-op)."""
    fn = _DEFAULTERS.get((group, version, kind))
    if fn is not None:
        fn(obj)
