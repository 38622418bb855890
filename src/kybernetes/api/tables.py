"""Server-side Table rendering: what ``kubectl get`` prints (wire contract §2).

Every built-in kind has a *printer*: column definitions plus a pure function turning one object
into one row of cells, following the upstream v1.32 printers (server-side tables always carry the
wide columns; kubectl hides ``priority > 0`` unless ``-o wide``). Kinds without a printer get the
default convertor (``Name`` + ``Created At``); custom resources get ``Name`` plus their CRD's
``additionalPrinterColumns`` (``Age`` when the CRD declares none).

Entry points:
    columns_for(group, kind)               -> column definitions
    row_cells(group, kind, obj, now)       -> one row of cells
    custom_columns(printer_columns)        -> (definitions, cell function) for custom resources
    to_table(group, kind, objs, now, ...)  -> the whole ``Table`` document
    human_duration / translate_timestamp   -> the age formatting helpers (§2.5)

Column descriptions that upstream takes from API documentation are read from the bundled
OpenAPI definitions (``openapi_defs``); kubectl does not display them.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

Obj = dict[str, Any]
Cell = Any  # str | int | float | bool | None
CellFn = Callable[[Obj, datetime], list[Cell]]

UNKNOWN = "<unknown>"
NONE = "<none>"
UNSET = "<unset>"

# --------------------------------------------------------------------------------------------
# Formatting helpers (§2.5)
# --------------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """Upstream ``duration.HumanDuration``: a short, human approximation of a duration."""
    s = int(seconds)  # truncates toward zero, like Go's int(d.Seconds())
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


@functools.lru_cache(maxsize=4096)
def parse_time(ts: str) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Time`` or ``MicroTime``); ``None`` if missing/invalid."""
    try:
        t = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t


def translate_timestamp(ts: str | None, now: datetime) -> str:
    """Age of ``ts`` relative to ``now`` (``<unknown>`` when missing or unparsable)."""
    if not ts:
        return UNKNOWN
    t = parse_time(ts)
    if t is None:
        return UNKNOWN
    return human_duration((now - t).total_seconds())


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``k1=v1,k2=v2`` sorted by key; ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(sel: Mapping[str, Any] | None) -> str:
    """A LabelSelector as upstream ``labels.Selector.String()`` prints it ("" when empty)."""
    if not sel:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in sel.get("matchExpressions") or ():
        key, op = e.get("key", ""), e.get("operator", "")
        values = ",".join(sorted(set(e.get("values") or ())))
        if op == "In":
            reqs.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)


def format_selector(sel: Mapping[str, Any] | None) -> str:
    """Upstream ``metav1.FormatLabelSelector``: the selector string or ``<none>``."""
    return selector_string(sel) or NONE


def _containers_cells(pod_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    containers = (pod_spec or {}).get("containers") or ()
    return (
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    )


def _template_spec(obj: Obj) -> Obj:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _age(obj: Obj, now: datetime) -> str:
    return translate_timestamp((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _list_with_more(items: list[str], count: int, limit: int, empty: str) -> str:
    ret = ",".join(items[:limit])
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret or empty


def _int_or_string(v: Any) -> str:
    return str(v)


# --------------------------------------------------------------------------------------------
# Column definitions
# --------------------------------------------------------------------------------------------

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE = "io.k8s.api.core.v1."
# A description is either literal text or a (definition, property) pair looked up in OpenAPI.
Doc = str | tuple[str, str]


@functools.cache
def _doc_text(defname: str, prop: str) -> str:
    try:
        from kybernetes.api import openapi_defs

        d = openapi_defs.definitions().get(defname) or {}
        return str(((d.get("properties") or {}).get(prop) or {}).get("description", ""))
    except Exception:  # documentation is cosmetic; never fail a table for it
        return ""


def _col(name: str, typ: str = "string", doc: Doc = "", *, fmt: str = "", priority: int = 0) -> dict[str, Any]:
    desc = _doc_text(*doc) if isinstance(doc, tuple) else doc
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


def _name_col(priority: int = 0) -> dict[str, Any]:
    return _col("Name", doc=(_META, "name"), fmt="name", priority=priority)


def _age_col() -> dict[str, Any]:
    return _col("Age", doc=(_META, "creationTimestamp"))


def _wide(name: str, doc: Doc = "") -> dict[str, Any]:
    return _col(name, doc=doc, priority=1)


_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."


def _template_cols(selector_doc: Doc | None) -> list[dict[str, Any]]:
    cols = [_wide("Containers", _CONTAINERS_DOC), _wide("Images", _IMAGES_DOC)]
    if selector_doc is not None:
        cols.append(_wide("Selector", selector_doc))
    return cols


# --------------------------------------------------------------------------------------------
# Printers: one cell function per kind
# --------------------------------------------------------------------------------------------


def _is_restartable_init(c: Mapping[str, Any] | None) -> bool:
    return bool(c) and c.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _has_condition(conds: Iterable[Mapping[str, Any]] | None, typ: str, status: str = "True") -> bool:
    return any(c.get("type") == typ and c.get("status") == status for c in conds or ())


def _later(a: str, b: str | None) -> str:
    """The later of two RFC 3339 timestamps ("" means none)."""
    if not b:
        return a
    if not a:
        return b
    ta, tb = parse_time(a), parse_time(b)
    if ta is None:
        return b
    if tb is None:
        return a
    return b if tb > ta else a


def pod_status_reason(pod: Obj) -> str:
    """The pod STATUS column (upstream ``printPod``)."""
    return _pod_summary(pod)[2]


def _pod_summary(pod: Obj) -> tuple[int, int, str, int, str]:
    """(ready, total, reason, restarts, last restart time) as upstream ``printPod`` computes them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or ()
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    total = len(spec.get("containers") or ())
    init_specs: dict[str, Obj] = {}
    init_list = spec.get("initContainers") or ()
    for c in init_list:
        init_specs[c.get("name", "")] = c
        if _is_restartable_init(c):
            total += 1

    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart = ""
    last_sidecar_restart = ""
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        restarts += int(cs.get("restartCount") or 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        last_restart = _later(last_restart, finished)
        restartable = _is_restartable_init(init_specs.get(cs.get("name", "")))
        if restartable:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_list)}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += int(cs.get("restartCount") or 0)
            finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            last_restart = _later(last_restart, finished)
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(conditions, "Ready") else "NotReady"

    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _pod_cells(pod: Obj, now: datetime) -> list[Cell]:
    ready, total, reason, restarts, last_restart = _pod_summary(pod)
    restarts_str = str(restarts)
    if restarts and last_restart:
        restarts_str = f"{restarts} ({translate_timestamp(last_restart, now)} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ips = status.get("podIPs") or ()
    pod_ip = (ips[0].get("ip") if ips else "") or NONE
    gates = spec.get("readinessGates") or ()
    gates_str = NONE
    if gates:
        by_type = {}
        for c in status.get("conditions") or ():
            by_type.setdefault(c.get("type"), c)
        true_count = sum(
            1 for g in gates if (by_type.get(g.get("conditionType")) or {}).get("status") == "True"
        )
        gates_str = f"{true_count}/{len(gates)}"
    return [
        _name(pod), f"{ready}/{total}", reason, restarts_str, _age(pod, now),
        pod_ip, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gates_str,
    ]


def pod_row_conditions(pod: Obj) -> list[dict[str, str]] | None:
    """Row conditions upstream attaches to finished pods (cosmetic)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


def _pod_template_cells(obj: Obj, now: datetime) -> list[Cell]:
    tmpl = obj.get("template") or {}
    names, images = _containers_cells(tmpl.get("spec"))
    return [_name(obj), names, images, format_labels((tmpl.get("metadata") or {}).get("labels"))]


def _pdb_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    min_av = _int_or_string(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A"
    max_un = _int_or_string(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A"
    allowed = int((obj.get("status") or {}).get("disruptionsAllowed") or 0)
    return [_name(obj), min_av, max_un, allowed, _age(obj, now)]


def _rc_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_template_spec(obj))
    return [
        _name(obj), int(spec.get("replicas") or 0), int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0), _age(obj, now), names, images,
        format_labels(spec.get("selector")),
    ]


def _rs_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_template_spec(obj))
    return [
        _name(obj), int(spec.get("replicas") or 0), int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0), _age(obj, now), names, images,
        format_selector(spec.get("selector")),
    ]


def _deployment_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_template_spec(obj))
    return [
        _name(obj), f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
        int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0),
        _age(obj, now), names, images, selector_string(spec.get("selector")),
    ]


def _statefulset_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers_cells(_template_spec(obj))
    ready = f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}"
    return [_name(obj), ready, _age(obj, now), names, images]


def _daemonset_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    tspec = _template_spec(obj)
    names, images = _containers_cells(tspec)
    return [
        _name(obj), int(st.get("desiredNumberScheduled") or 0), int(st.get("currentNumberScheduled") or 0),
        int(st.get("numberReady") or 0), int(st.get("updatedNumberScheduled") or 0),
        int(st.get("numberAvailable") or 0), format_labels(tspec.get("nodeSelector")), _age(obj, now),
        names, images, format_selector(spec.get("selector")),
    ]


def job_status(obj: Obj) -> str:
    conds = (obj.get("status") or {}).get("conditions")
    if _has_condition(conds, "Complete"):
        return "Complete"
    if _has_condition(conds, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(conds, "Suspended"):
        return "Suspended"
    if _has_condition(conds, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{int(spec['completions'])}"
    else:
        par = int(spec.get("parallelism") or 0)
        completions = f"{succeeded}/1 of {par}" if par > 1 else f"{succeeded}/1"
    start = parse_time(status["startTime"]) if status.get("startTime") else None
    end = parse_time(status["completionTime"]) if status.get("completionTime") else None
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    names, images = _containers_cells(_template_spec(obj))
    return [
        _name(obj), job_status(obj), completions, duration, _age(obj, now), names, images,
        format_selector(spec.get("selector")),
    ]


def _bool_ptr(v: Any) -> str:
    if v is None:
        return UNSET
    return "True" if v else "False"


def _cronjob_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = status.get("lastScheduleTime")
    last_str = translate_timestamp(last, now) if last else NONE
    jspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers_cells((jspec.get("template") or {}).get("spec"))
    return [
        _name(obj), spec.get("schedule", ""), spec.get("timeZone") or NONE, _bool_ptr(spec.get("suspend")),
        len(status.get("active") or ()), last_str, _age(obj, now), names, images,
        format_selector(jspec.get("selector")),
    ]


def _lb_ingress_string(ingress: Iterable[Mapping[str, Any]] | None) -> str:
    found = set()
    for i in ingress or ():
        if i.get("ip"):
            found.add(i["ip"])
        elif i.get("hostname"):
            found.add(i["hostname"])
    return ",".join(sorted(found))


def _service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    typ = spec.get("type") or ""
    external = spec.get("externalIPs") or []
    if typ in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if typ == "LoadBalancer":
        lb = _lb_ingress_string(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + list(external))
        return lb or "<pending>"
    if typ == "ExternalName":
        return str(spec.get("externalName") or "")
    return UNKNOWN


def _service_ports(ports: Iterable[Mapping[str, Any]] | None) -> str:
    pieces = []
    for p in ports or ():
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            pieces.append(f"{p.get('port', 0)}:{p['nodePort']}/{proto}")
        else:
            pieces.append(f"{p.get('port', 0)}/{proto}")
    return ",".join(pieces) or NONE


def _service_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(obj), spec.get("type") or "", ips[0] if ips else NONE, _service_external_ip(obj),
        _service_ports(spec.get("ports")), _age(obj, now), format_labels(spec.get("selector")),
    ]


def _ingress_hosts(rules: Sequence[Mapping[str, Any]]) -> str:
    hosts: list[str] = []
    more = False
    for r in rules:
        if len(hosts) == 3:
            more = True
        if not more and r.get("host"):
            hosts.append(r["host"])
    if not hosts:
        return "*"
    ret = ",".join(hosts)
    return f"{ret} + {len(rules) - 3} more..." if more else ret


def _ingress_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    address = _lb_ingress_string(((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"))
    ports = "80, 443" if spec.get("tls") else "80"
    return [
        _name(obj), spec.get("ingressClassName") or NONE, _ingress_hosts(spec.get("rules") or []),
        address, ports, _age(obj, now),
    ]


def _ingress_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    params = spec.get("parameters")
    p = NONE
    if params:
        p = params.get("kind", "")
        if params.get("apiGroup") is not None:
            p += "." + params["apiGroup"]
        p += "/" + params.get("name", "")
    return [_name(obj), spec.get("controller", ""), p, _age(obj, now)]


def _host_port(ip: str, port: int) -> str:
    try:
        if isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address):
            return f"[{ip}]:{port}"
    except ValueError:
        if ":" in ip:
            return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def format_endpoints(obj: Obj) -> str:
    subsets = obj.get("subsets") or ()
    if not subsets:
        return NONE
    out: list[str] = []
    count = 0
    for ss in subsets:
        addrs = ss.get("addresses") or ()
        ports = ss.get("ports") or ()
        if not ports:
            count += len(addrs)
            out.extend(a.get("ip", "") for a in addrs)
            continue
        for p in ports:
            count += len(addrs)
            out.extend(_host_port(a.get("ip", ""), int(p.get("port") or 0)) for a in addrs)
    return _list_with_more(out, count, 3, "")


def _endpoints_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), format_endpoints(obj), _age(obj, now)]


def _endpoint_slice_cells(obj: Obj, now: datetime) -> list[Cell]:
    ports = []
    for p in obj.get("ports") or ():
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addrs = [a for e in obj.get("endpoints") or () for a in e.get("addresses") or ()]
    return [
        _name(obj), obj.get("addressType", ""), _list_with_more(ports, len(ports), 3, UNSET),
        _list_with_more(addrs, len(addrs), 3, UNSET), _age(obj, now),
    ]


def node_roles(labels: Mapping[str, str] | None) -> list[str]:
    roles = set()
    for k, v in (labels or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def _node_address(node: Obj, typ: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or ():
        if a.get("type") == typ:
            return str(a.get("address", ""))
    return NONE


def _node_cells(obj: Obj, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    states: list[str] = []
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            states = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if (obj.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    roles = ",".join(node_roles((obj.get("metadata") or {}).get("labels"))) or NONE
    return [
        _name(obj), ",".join(states), roles, _age(obj, now), info.get("kubeletVersion", ""),
        _node_address(obj, "InternalIP"), _node_address(obj, "ExternalIP"),
        info.get("osImage") or UNKNOWN, info.get("kernelVersion") or UNKNOWN,
        info.get("containerRuntimeVersion") or UNKNOWN,
    ]


def _event_fields(obj: Obj, events_api: bool) -> Obj:
    """Normalise an events.k8s.io/v1 Event to the core/v1 field names the printer reads."""
    if not events_api:
        return obj
    src = obj.get("deprecatedSource") or {}
    return {
        "metadata": obj.get("metadata") or {},
        "involvedObject": obj.get("regarding") or {},
        "message": obj.get("note", ""),
        "reason": obj.get("reason", ""),
        "type": obj.get("type", ""),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount") or 0,
        "source": src,
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "reportingComponent": obj.get("reportingController", ""),
        "reportingInstance": obj.get("reportingInstance", ""),
    }


def _event_cells_for(obj: Obj, now: datetime, events_api: bool) -> list[Cell]:
    ev = _event_fields(obj, events_api)
    first = (
        translate_timestamp(ev["firstTimestamp"], now)
        if ev.get("firstTimestamp")
        else translate_timestamp(ev.get("eventTime"), now)
    )
    last = translate_timestamp(ev["lastTimestamp"], now) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series:
        last = translate_timestamp(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = str(inv.get("kind", "")).lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    host = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [
        last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""), source,
        str(ev.get("message", "")).strip(), first, count, _name(obj),
    ]


def _event_cells(obj: Obj, now: datetime) -> list[Cell]:
    return _event_cells_for(obj, now, False)


def _events_api_cells(obj: Obj, now: datetime) -> list[Cell]:
    return _event_cells_for(obj, now, True)


def _namespace_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), (obj.get("status") or {}).get("phase", ""), _age(obj, now)]


def _secret_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), obj.get("type", ""), len(obj.get("data") or {}), _age(obj, now)]


def _configmap_cells(obj: Obj, now: datetime) -> list[Cell]:
    n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_name(obj), n, _age(obj, now)]


def _serviceaccount_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("secrets") or ()), _age(obj, now)]


_MODE_ABBREV = (
    ("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes_string(modes: Iterable[str] | None) -> str:
    present = set(modes or ())
    return ",".join(short for full, short in _MODE_ABBREV if full in present)


_BETA_SC = "volume.beta.kubernetes.io/storage-class"


def _pv_cells(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    claim = spec.get("claimRef")
    claim_str = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = "Terminating" if meta.get("deletionTimestamp") else (obj.get("status") or {}).get("phase", "")
    annotations = meta.get("annotations") or {}
    sc = annotations[_BETA_SC] if _BETA_SC in annotations else spec.get("storageClassName", "")
    return [
        _name(obj), str((spec.get("capacity") or {}).get("storage", "0")),
        access_modes_string(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
        phase, claim_str, sc, spec.get("volumeAttributesClassName") or UNSET,
        (obj.get("status") or {}).get("reason", ""), _age(obj, now), spec.get("volumeMode") or UNSET,
    ]


def _pvc_cells(obj: Obj, now: datetime) -> list[Cell]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes_string(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
    annotations = meta.get("annotations") or {}
    sc = annotations[_BETA_SC] if _BETA_SC in annotations else (spec.get("storageClassName") or "")
    return [
        _name(obj), phase, spec.get("volumeName", ""), capacity, modes, sc,
        spec.get("volumeAttributesClassName") or UNSET, _age(obj, now), spec.get("volumeMode") or UNSET,
    ]


def _resource_quota_cells(obj: Obj, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests, limits = [], []
    for r in sorted(hard):
        target = limits if r.split(".")[0] == "limits" and "." in r else requests
        target.append(f"{r}: {used.get(r, '0')}/{hard[r]}")
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _hpa_metric_specs(obj: Obj) -> tuple[list[Obj], list[Obj]]:
    """(spec.metrics, status.currentMetrics) in autoscaling/v2 shape, for v1 or v2 objects."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    is_v1 = (
        obj.get("apiVersion") == "autoscaling/v1"
        or "targetCPUUtilizationPercentage" in spec
        or "currentCPUUtilizationPercentage" in status
    ) and "metrics" not in spec
    if not is_v1:
        return list(spec.get("metrics") or ()), list(status.get("currentMetrics") or ())
    # autoscaling/v1: one CPU target; storage (v2) defaults an unset target to 80%.
    target = spec.get("targetCPUUtilizationPercentage", 80)
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": target}}}]
    current: list[Obj] = []
    if status.get("currentCPUUtilizationPercentage") is not None:
        current = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
    return metrics, current


def _metric_target(spec: Obj, statuses: list[Obj], i: int, key: str, with_name: bool) -> str:
    src = spec.get(key) or {}
    target = src.get("target") or {}
    st = (statuses[i].get(key) if len(statuses) > i else None) or None
    cur_obj = (st or {}).get("current") or {}
    prefix = f"{src.get('name', '')}: " if with_name else ""
    if target.get("averageValue") is not None:
        cur = str(cur_obj["averageValue"]) if st is not None and cur_obj.get("averageValue") is not None else UNKNOWN
        suffix = "" if with_name or key == "pods" else " (avg)"
        return f"{prefix}{cur}/{target['averageValue']}{suffix}"
    if with_name:
        cur = f"{cur_obj['averageUtilization']}%" if cur_obj.get("averageUtilization") is not None else UNKNOWN
        tgt = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
        return f"{prefix}{cur}/{tgt}"
    cur = str(cur_obj.get("value", "")) if st is not None else UNKNOWN
    return f"{cur}/{target.get('value', '')}"


def format_hpa_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    if not specs:
        return NONE
    out = []
    for i, s in enumerate(specs):
        t = s.get("type")
        if t == "External":
            out.append(_metric_target(s, statuses, i, "external", False))
        elif t == "Pods":
            out.append(_metric_target(s, statuses, i, "pods", False))
        elif t == "Object":
            out.append(_metric_target(s, statuses, i, "object", False))
        elif t == "Resource":
            out.append(_metric_target(s, statuses, i, "resource", True))
        elif t == "ContainerResource":
            out.append(_metric_target(s, statuses, i, "containerResource", True))
        else:
            out.append("<unknown type>")
    if len(out) > 2:
        return ", ".join(out[:2]) + f" + {len(out) - 2} more..."
    return ", ".join(out)


def _hpa_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics, current = _hpa_metric_specs(obj)
    min_pods = str(spec["minReplicas"]) if spec.get("minReplicas") is not None else UNSET
    return [
        _name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", format_hpa_metrics(metrics, current),
        min_pods, int(spec.get("maxReplicas") or 0), int(status.get("currentReplicas") or 0), _age(obj, now),
    ]


def _network_policy_cells(obj: Obj, now: datetime) -> list[Cell]:
    sel = (obj.get("spec") or {}).get("podSelector")
    # An empty podSelector is "everything": upstream prints <none> for it.
    return [_name(obj), format_selector(sel), _age(obj, now)]


def _subjects(subjects: Iterable[Mapping[str, Any]] | None) -> tuple[str, str, str]:
    users, groups, sas = [], [], []
    for s in subjects or ():
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def _binding_cells(obj: Obj, now: datetime) -> list[Cell]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = _subjects(obj.get("subjects"))
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now), users, groups, sas]


def _lease_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), (obj.get("spec") or {}).get("holderIdentity") or "", _age(obj, now)]


def _controller_revision_cells(obj: Obj, now: datetime) -> list[Cell]:
    controller = NONE
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            api_version = str(ref.get("apiVersion", ""))
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = ref.get("kind", "")
            gk = f"{kind}.{group}" if group else kind
            controller = f"{gk.lower()}/{ref.get('name', '')}" if gk else ref.get("name", "")
            break
    return [_name(obj), controller, int(obj.get("revision") or 0), _age(obj, now)]


def _is_default_class(meta: Mapping[str, Any]) -> bool:
    ann = meta.get("annotations") or {}
    return (
        ann.get("storageclass.kubernetes.io/is-default-class") == "true"
        or ann.get("storageclass.beta.kubernetes.io/is-default-class") == "true"
    )


def _storage_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    name = _name(obj)
    if _is_default_class(obj.get("metadata") or {}):
        name += " (default)"
    return [
        name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion") or False),
        _age(obj, now),
    ]


def _csr_cells(obj: Obj, now: datetime) -> list[Cell]:
    from .csr import condition_summary

    spec = obj.get("spec") or {}
    exp = spec.get("expirationSeconds")
    return [_name(obj), _age(obj, now), spec.get("signerName") or "<none>", spec.get("username") or "",
            human_duration(int(exp)) if exp is not None else "<none>", condition_summary(obj)]


def _webhook_configuration_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("webhooks") or []), _age(obj, now)]


def _vap_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    pk = spec.get("paramKind") or {}
    kind = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" if pk else "<unset>"
    return [_name(obj), len(spec.get("validations") or []), kind, _age(obj, now)]


def _vap_binding_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    ref = spec.get("paramRef")
    param = "<unset>"
    if ref and ref.get("name"):
        param = f"{ref.get('namespace') or '*'}/{ref['name']}"
    elif ref and ref.get("selector") is not None:
        from .labels import format_label_selector

        param = format_label_selector(ref["selector"])
    return [_name(obj), spec.get("policyName") or "", param, _age(obj, now)]


def _priority_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _name(obj), int(obj.get("value") or 0), bool(obj.get("globalDefault") or False), _age(obj, now),
        obj.get("preemptionPolicy") or "",
    ]


# --------------------------------------------------------------------------------------------
# The printer table
# --------------------------------------------------------------------------------------------

ColumnSpec = Callable[[], list[dict[str, Any]]]


def _pod_columns() -> list[dict[str, Any]]:
    return [
        _name_col(),
        _col("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", doc="The aggregate status of the containers in this pod."),
        _col("Restarts", doc="The number of times the containers in this pod have been restarted "
             "and when the last container in this pod has restarted."),
        _age_col(),
        _wide("IP", (_CORE + "PodStatus", "podIP")),
        _wide("Node", (_CORE + "PodSpec", "nodeName")),
        _wide("Nominated Node", (_CORE + "PodStatus", "nominatedNodeName")),
        _wide("Readiness Gates", (_CORE + "PodSpec", "readinessGates")),
    ]


def _rs_like_columns(spec_def: str, status_def: str) -> list[dict[str, Any]]:
    return [
        _name_col(),
        _col("Desired", "integer", (spec_def, "replicas")),
        _col("Current", "integer", (status_def, "replicas")),
        _col("Ready", "integer", (status_def, "readyReplicas")),
        _age_col(),
        *_template_cols((spec_def, "selector")),
    ]


_APPS = "io.k8s.api.apps.v1."
_BATCH = "io.k8s.api.batch.v1."


def _event_columns() -> list[dict[str, Any]]:
    ev = _CORE + "Event"
    return [
        _col("Last Seen", doc=(ev, "lastTimestamp")),
        _col("Type", doc=(ev, "type")),
        _col("Reason", doc=(ev, "reason")),
        _col("Object", doc=(ev, "involvedObject")),
        _wide("Subobject", (_CORE + "ObjectReference", "fieldPath")),
        _wide("Source", (ev, "source")),
        _col("Message", doc=(ev, "message")),
        _wide("First Seen", (ev, "firstTimestamp")),
        _wide("Count", (ev, "count")),
        _name_col(priority=1),
    ]


def _binding_columns() -> list[dict[str, Any]]:
    return [
        _name_col(),
        _col("Role", doc=("io.k8s.api.rbac.v1.RoleBinding", "roleRef")),
        _age_col(),
        _wide("Users", "Users in the roleBinding"),
        _wide("Groups", "Groups in the roleBinding"),
        _wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
    ]


def _hpa_columns() -> list[dict[str, Any]]:
    spec = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec"
    return [
        _name_col(),
        _col("Reference", doc=(spec, "scaleTargetRef")),
        _col("Targets", doc=(spec, "metrics")),
        _col("MinPods", doc=(spec, "minReplicas")),
        _col("MaxPods", doc=(spec, "maxReplicas")),
        _col("Replicas", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
        _age_col(),
    ]


_PRINTERS: dict[tuple[str, str], tuple[ColumnSpec, CellFn]] = {
    ("", "Pod"): (_pod_columns, _pod_cells),
    ("", "PodTemplate"): (lambda: [
        _name_col(), _col("Containers", doc=_CONTAINERS_DOC), _col("Images", doc=_IMAGES_DOC),
        _col("Pod Labels", doc="The labels for the pod template."),
    ], _pod_template_cells),
    ("policy", "PodDisruptionBudget"): (lambda: [
        _name_col(), _col("Min Available", doc="The minimum number of pods that must be available."),
        _col("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
        _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        _age_col(),
    ], _pdb_cells),
    ("", "ReplicationController"): (
        lambda: _rs_like_columns(_CORE + "ReplicationControllerSpec", _CORE + "ReplicationControllerStatus"),
        _rc_cells),
    ("apps", "ReplicaSet"): (
        lambda: _rs_like_columns(_APPS + "ReplicaSetSpec", _APPS + "ReplicaSetStatus"), _rs_cells),
    ("apps", "DaemonSet"): (lambda: [
        _name_col(),
        _col("Desired", "integer", (_APPS + "DaemonSetStatus", "desiredNumberScheduled")),
        _col("Current", "integer", (_APPS + "DaemonSetStatus", "currentNumberScheduled")),
        _col("Ready", "integer", (_APPS + "DaemonSetStatus", "numberReady")),
        _col("Up-to-date", "integer", (_APPS + "DaemonSetStatus", "updatedNumberScheduled")),
        _col("Available", "integer", (_APPS + "DaemonSetStatus", "numberAvailable")),
        _col("Node Selector", doc=(_CORE + "PodSpec", "nodeSelector")),
        _age_col(), *_template_cols((_APPS + "DaemonSetSpec", "selector")),
    ], _daemonset_cells),
    ("batch", "Job"): (lambda: [
        _name_col(), _col("Status", doc="Status of the job."),
        _col("Completions", doc=(_BATCH + "JobStatus", "succeeded")),
        _col("Duration", doc="Time required to complete the job."),
        _age_col(), *_template_cols((_BATCH + "JobSpec", "selector")),
    ], _job_cells),
    ("batch", "CronJob"): (lambda: [
        _name_col(), _col("Schedule", doc=(_BATCH + "CronJobSpec", "schedule")),
        _col("Timezone", doc=(_BATCH + "CronJobSpec", "timeZone")),
        _col("Suspend", "boolean", (_BATCH + "CronJobSpec", "suspend")),
        _col("Active", "integer", (_BATCH + "CronJobStatus", "active")),
        _col("Last Schedule", doc=(_BATCH + "CronJobStatus", "lastScheduleTime")),
        _age_col(), *_template_cols((_BATCH + "JobSpec", "selector")),
    ], _cronjob_cells),
    ("", "Service"): (lambda: [
        _name_col(), _col("Type", doc=(_CORE + "ServiceSpec", "type")),
        _col("Cluster-IP", doc=(_CORE + "ServiceSpec", "clusterIP")),
        _col("External-IP", doc=(_CORE + "ServiceSpec", "externalIPs")),
        _col("Port(s)", doc=(_CORE + "ServiceSpec", "ports")),
        _age_col(), _wide("Selector", (_CORE + "ServiceSpec", "selector")),
    ], _service_cells),
    ("networking.k8s.io", "Ingress"): (lambda: [
        _name_col(),
        _col("Class", doc="The name of the IngressClass resource that should be used for additional configuration"),
        _col("Hosts", doc="Hosts that incoming requests are matched against before the ingress rule"),
        _col("Address", doc="Address is a list containing ingress points for the load-balancer"),
        _col("Ports", doc="Ports of TLS configurations that open"),
        _age_col(),
    ], _ingress_cells),
    ("networking.k8s.io", "IngressClass"): (lambda: [
        _name_col(), _col("Controller", doc="Controller that is responsible for handling this class"),
        _col("Parameters", doc="A reference to a resource with additional parameters"), _age_col(),
    ], _ingress_class_cells),
    ("apps", "StatefulSet"): (lambda: [
        _name_col(), _col("Ready", doc="Number of the pod with ready state"), _age_col(),
        *_template_cols(None),
    ], _statefulset_cells),
    ("", "Endpoints"): (lambda: [
        _name_col(), _col("Endpoints", doc=(_CORE + "Endpoints", "subsets")), _age_col(),
    ], _endpoints_cells),
    ("", "Node"): (lambda: [
        _name_col(), _col("Status", doc="The status of the node"), _col("Roles", doc="The roles of the node"),
        _age_col(), _col("Version", doc=(_CORE + "NodeSystemInfo", "kubeletVersion")),
        _wide("Internal-IP", (_CORE + "NodeStatus", "addresses")),
        _wide("External-IP", (_CORE + "NodeStatus", "addresses")),
        _wide("OS-Image", (_CORE + "NodeSystemInfo", "osImage")),
        _wide("Kernel-Version", (_CORE + "NodeSystemInfo", "kernelVersion")),
        _wide("Container-Runtime", (_CORE + "NodeSystemInfo", "containerRuntimeVersion")),
    ], _node_cells),
    ("", "Event"): (_event_columns, _event_cells),
    ("events.k8s.io", "Event"): (_event_columns, _events_api_cells),
    ("", "Namespace"): (lambda: [
        _name_col(), _col("Status", doc="The status of the namespace"), _age_col(),
    ], _namespace_cells),
    ("", "Secret"): (lambda: [
        _name_col(), _col("Type", doc=(_CORE + "Secret", "type")),
        _col("Data", doc=(_CORE + "Secret", "data")), _age_col(),
    ], _secret_cells),
    ("", "ServiceAccount"): (lambda: [
        _name_col(), _col("Secrets", doc=(_CORE + "ServiceAccount", "secrets")), _age_col(),
    ], _serviceaccount_cells),
    ("", "PersistentVolume"): (lambda: [
        _name_col(), _col("Capacity", doc=(_CORE + "PersistentVolumeSpec", "capacity")),
        _col("Access Modes", doc=(_CORE + "PersistentVolumeSpec", "accessModes")),
        _col("Reclaim Policy", doc=(_CORE + "PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
        _col("Status", doc=(_CORE + "PersistentVolumeStatus", "phase")),
        _col("Claim", doc=(_CORE + "PersistentVolumeSpec", "claimRef")),
        _col("StorageClass", doc="StorageClass of the pv"),
        _col("VolumeAttributesClass", doc="VolumeAttributesClass of the pv"),
        _col("Reason", doc=(_CORE + "PersistentVolumeStatus", "reason")),
        _age_col(), _wide("VolumeMode", (_CORE + "PersistentVolumeSpec", "volumeMode")),
    ], _pv_cells),
    ("", "PersistentVolumeClaim"): (lambda: [
        _name_col(), _col("Status", doc=(_CORE + "PersistentVolumeClaimStatus", "phase")),
        _col("Volume", doc=(_CORE + "PersistentVolumeClaimSpec", "volumeName")),
        _col("Capacity", doc=(_CORE + "PersistentVolumeClaimStatus", "capacity")),
        _col("Access Modes", doc=(_CORE + "PersistentVolumeClaimStatus", "accessModes")),
        _col("StorageClass", doc="StorageClass of the pvc"),
        _col("VolumeAttributesClass", doc="VolumeAttributesClass of the pvc"),
        _age_col(), _wide("VolumeMode", (_CORE + "PersistentVolumeClaimSpec", "volumeMode")),
    ], _pvc_cells),
    ("apps", "Deployment"): (lambda: [
        _name_col(), _col("Ready", doc="Number of the pod with ready state"),
        _col("Up-to-date", doc=(_APPS + "DeploymentStatus", "updatedReplicas")),
        _col("Available", doc=(_APPS + "DeploymentStatus", "availableReplicas")),
        _age_col(), *_template_cols((_APPS + "DeploymentSpec", "selector")),
    ], _deployment_cells),
    ("autoscaling", "HorizontalPodAutoscaler"): (_hpa_columns, _hpa_cells),
    ("", "ConfigMap"): (lambda: [
        _name_col(), _col("Data", doc=(_CORE + "ConfigMap", "data")), _age_col(),
    ], _configmap_cells),
    ("networking.k8s.io", "NetworkPolicy"): (lambda: [
        _name_col(), _col("Pod-Selector", doc=("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector")),
        _age_col(),
    ], _network_policy_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_binding_columns, _binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (
        lambda: [
            {**c, "description": c["description"].replace("roleBinding", "clusterRoleBinding")}
            for c in _binding_columns()
        ], _binding_cells),
    ("coordination.k8s.io", "Lease"): (lambda: [
        _name_col(), _col("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), _age_col(),
    ], _lease_cells),
    ("storage.k8s.io", "StorageClass"): (lambda: [
        _name_col(),
        _col("Provisioner", doc=("io.k8s.api.storage.v1.StorageClass", "provisioner")),
        _col("ReclaimPolicy", doc=("io.k8s.api.storage.v1.StorageClass", "reclaimPolicy")),
        _col("VolumeBindingMode", doc=("io.k8s.api.storage.v1.StorageClass", "volumeBindingMode")),
        _col("AllowVolumeExpansion", doc=("io.k8s.api.storage.v1.StorageClass", "allowVolumeExpansion")),
        _age_col(),
    ], _storage_class_cells),
    ("apps", "ControllerRevision"): (lambda: [
        _name_col(), _col("Controller", doc="Controller of the object"),
        _col("Revision", doc=(_APPS + "ControllerRevision", "revision")), _age_col(),
    ], _controller_revision_cells),
    ("", "ResourceQuota"): (lambda: [
        _name_col(),
        _col("Request", doc="Request represents a minimum amount of cpu/memory that a container may consume."),
        _col("Limit", doc="Limits control the maximum amount of cpu/memory that a container may use "
             "independent of contention on the node."),
        _age_col(),
    ], _resource_quota_cells),
    ("certificates.k8s.io", "CertificateSigningRequest"): (lambda: [
        _name_col(), _age_col(), _col("SignerName"), _col("Requestor"), _col("RequestedDuration"),
        _col("Condition"),
    ], _csr_cells),
    **{("admissionregistration.k8s.io", kind): (lambda: [
        _name_col(),
        _col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
        _age_col(),
    ], _webhook_configuration_cells) for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")},
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): (lambda: [
        _name_col(),
        _col("Validations", "integer", "Validations indicates the number of validation rules defined in this "
             "configuration"),
        _col("ParamKind", doc="ParamKind specifies the kind of resources used to parameterize this policy"),
        _age_col(),
    ], _vap_cells),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): (lambda: [
        _name_col(),
        _col("PolicyName", doc="PolicyName indicates the policy definition which the policy binding binded to"),
        _col("ParamRef", doc="ParamRef indicates the param resource which sets the configration param"),
        _age_col(),
    ], _vap_binding_cells),
    ("scheduling.k8s.io", "PriorityClass"): (lambda: [
        _name_col(),
        _col("Value", "integer", ("io.k8s.api.scheduling.v1.PriorityClass", "value")),
        _col("Global-Default", "boolean", ("io.k8s.api.scheduling.v1.PriorityClass", "globalDefault")),
        _age_col(),
        _col("PreemptionPolicy", doc=("io.k8s.api.scheduling.v1.PriorityClass", "preemptionPolicy")),
    ], _priority_class_cells),
    ("discovery.k8s.io", "EndpointSlice"): (lambda: [
        _name_col(),
        _col("AddressType", doc=("io.k8s.api.discovery.v1.EndpointSlice", "addressType")),
        _col("Ports", doc=("io.k8s.api.discovery.v1.EndpointSlice", "ports")),
        _col("Endpoints", doc=("io.k8s.api.discovery.v1.EndpointSlice", "endpoints")),
        _age_col(),
    ], _endpoint_slice_cells),
}


def _default_columns() -> list[dict[str, Any]]:
    return [_name_col(), _col("Created At", "date", (_META, "creationTimestamp"))]


def _default_cells(obj: Obj, now: datetime) -> list[Cell]:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    t = parse_time(ts) if ts else None
    created = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t else "0001-01-01T00:00:00Z"
    return [_name(obj), created]


def has_printer(group: str, kind: str) -> bool:
    return (group, kind) in _PRINTERS


@functools.cache
def _columns_cached(group: str, kind: str) -> tuple[dict[str, Any], ...]:
    spec = _PRINTERS.get((group, kind))
    return tuple(spec[0]() if spec else _default_columns())


def columns_for(group: str, kind: str) -> list[dict[str, Any]]:
    """Column definitions for a built-in kind (the default convertor's for unknown kinds)."""
    return [dict(c) for c in _columns_cached(group, kind)]


def cell_function(group: str, kind: str) -> CellFn:
    spec = _PRINTERS.get((group, kind))
    return spec[1] if spec else _default_cells


def row_cells(group: str, kind: str, obj: Obj, now: datetime) -> list[Cell]:
    """One row of cells for ``obj`` (one cell per entry of ``columns_for(group, kind)``)."""
    return cell_function(group, kind)(obj, now)


# --------------------------------------------------------------------------------------------
# Custom resources: additionalPrinterColumns with a small JSONPath subset
# --------------------------------------------------------------------------------------------

_SEGMENT = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$@]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[['"](?P<qfield>[^'"]+)['"]\]"""
    r"""|\[\?\(@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<val>"[^"]*"|'[^']*'|[^)\s]+)\)\]"""
    r"""|\.\*"""
)


class JSONPathError(ValueError):
    """The column's JSONPath is outside the supported subset."""


def compile_jsonpath(path: str) -> list[tuple[str, Any]]:
    """Parse ``.a.b[0].c[?(@.type=="Ready")].status`` style paths into steps."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1].strip()
    if p.startswith("$"):
        p = p[1:]
    if p and not p.startswith((".", "[")):
        p = "." + p
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(p):
        m = _SEGMENT.match(p, pos)
        if m is None:
            raise JSONPathError(f"unsupported JSONPath {path!r} at {p[pos:]!r}")
        if m.group("field") is not None:
            steps.append(("field", m.group("field")))
        elif m.group("qfield") is not None:
            steps.append(("field", m.group("qfield")))
        elif m.group("index") is not None:
            idx = m.group("index")
            steps.append(("all", None) if idx == "*" else ("index", int(idx)))
        elif m.group("fpath") is not None:
            val = m.group("val")
            literal: Any
            if val[0] in "\"'":
                literal = val[1:-1]
            else:
                try:
                    literal = json.loads(val)
                except ValueError:
                    literal = val
            steps.append(("filter", (m.group("fpath").split("."), m.group("op"), literal)))
        else:
            steps.append(("all", None))
        pos = m.end()
    return steps


def eval_jsonpath(steps: list[tuple[str, Any]], obj: Any) -> list[Any]:
    """All values the compiled path selects (missing keys select nothing)."""
    current = [obj]
    for kind, arg in steps:
        nxt: list[Any] = []
        for v in current:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            else:
                fpath, op, literal = arg
                for item in v if isinstance(v, list) else ():
                    got: Any = item
                    for f in fpath:
                        got = got.get(f) if isinstance(got, dict) else None
                    if (got == literal) == (op == "=="):
                        nxt.append(item)
        current = nxt
    return current


def _jsonpath_text(value: Any) -> str:
    """How client-go's jsonpath prints one value: JSON for objects/lists, plain text otherwise."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _typed_cell(typ: str, value: Any, now: datetime) -> Cell:
    if value is None:
        return None
    if typ == "string":
        return _jsonpath_text(value)
    if typ == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return int(value)
    if typ == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)
    if typ == "boolean":
        return value if isinstance(value, bool) else None
    if typ == "date":
        if not isinstance(value, str):
            return None
        t = parse_time(value)
        if t is None:
            return "<invalid>"
        return human_duration((now - t).total_seconds())
    return None


_DEFAULT_CRD_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)


def custom_columns(printer_columns: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], CellFn]:
    """Column definitions and cell function for a custom resource version's printer columns.

    ``Name`` comes first; with no printer columns the CRD is served an ``Age`` column
    (``.metadata.creationTimestamp``, type date) as upstream does.
    """
    cols = list(printer_columns) or [dict(c) for c in _DEFAULT_CRD_COLUMNS]
    defs = [_name_col()]
    evaluators: list[tuple[str, list[tuple[str, Any]] | None]] = []
    for c in cols:
        path = str(c.get("jsonPath", ""))
        try:
            steps: list[tuple[str, Any]] | None = compile_jsonpath(path)
        except JSONPathError:
            steps = None
        desc = c.get("description") or f"Custom resource definition column (in JSONPath format): {path}"
        if c.get("name") == "Age" and not c.get("description") and path == ".metadata.creationTimestamp":
            desc = _doc_text(_META, "creationTimestamp")
        defs.append({
            "name": c.get("name", ""), "type": c.get("type", "string"), "format": c.get("format", ""),
            "description": desc, "priority": int(c.get("priority") or 0),
        })
        evaluators.append((str(c.get("type", "string")), steps))

    def cells(obj: Obj, now: datetime) -> list[Cell]:
        row: list[Cell] = [_name(obj)]
        for typ, steps in evaluators:
            found = eval_jsonpath(steps, obj) if steps is not None else []
            row.append(_typed_cell(typ, found[0], now) if found else None)
        return row

    return defs, cells


# --------------------------------------------------------------------------------------------
# The Table document
# --------------------------------------------------------------------------------------------

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")


def to_table(
    group: str,
    kind: str,
    objs: Sequence[Obj],
    now: datetime,
    *,
    include_object: str = "Metadata",
    list_metadata: Mapping[str, Any] | None = None,
    api_version: str = "meta.k8s.io/v1",
    printer_columns: Sequence[Mapping[str, Any]] | None = None,
    custom: bool = False,
    with_headers: bool = True,
) -> Obj:
    """Render ``objs`` as a ``Table`` (§2.2).

    ``include_object``: ``Metadata`` puts a PartialObjectMetadata (full ObjectMeta) in each row,
    ``Object`` the object itself (it must already carry kind/apiVersion), ``None`` omits it.
    ``printer_columns`` (or ``custom=True``) selects the custom-resource convertor.
    ``with_headers=False`` (watch events after the first) leaves ``columnDefinitions`` null, as
    upstream's ``NoHeaders`` does.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise ValueError(f"invalid includeObject {include_object!r}")
    if printer_columns is not None or custom:
        defs, fn = custom_columns(printer_columns or ())
    else:
        defs, fn = list(_columns_cached(group, kind)), cell_function(group, kind)
    with_conditions = group == "" and kind == "Pod" and not custom and printer_columns is None
    rows: list[Obj] = []
    append = rows.append
    for obj in objs:
        row: Obj = {"cells": fn(obj, now)}
        if with_conditions:
            conds = pod_row_conditions(obj)
            if conds:
                row["conditions"] = conds
        if include_object == "Metadata":
            row["object"] = {
                "kind": "PartialObjectMetadata", "apiVersion": api_version,
                "metadata": obj.get("metadata") or {},
            }
        elif include_object == "Object":
            row["object"] = obj
        append(row)
    meta = {k: v for k, v in (list_metadata or {}).items() if v not in (None, "")}
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": meta,
        "columnDefinitions": [dict(d) for d in defs] if with_headers else None,
        "rows": rows,
    }
