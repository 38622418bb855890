"""Conversion between versions that share storage (pure).

* autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscaler (v2 is stored).
* events.k8s.io/v1 <-> core v1 Event (core v1 is stored).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

Obj = dict[str, Any]


def _hpa_v2_to_v1(o: Obj) -> Obj:
    out = copy.deepcopy(o)
    out["apiVersion"] = "autoscaling/v1"
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        res = m.get("resource") or {}
        tgt = res.get("target") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu" and tgt.get("type") == "Utilization":
            spec["targetCPUUtilizationPercentage"] = tgt.get("averageUtilization")
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        status.pop("conditions", None)
        for m in current:
            res = m.get("resource") or {}
            if m.get("type") == "Resource" and res.get("name") == "cpu":
                util = (res.get("current") or {}).get("averageUtilization")
                if util is not None:
                    status["currentCPUUtilizationPercentage"] = util
    return out


def _hpa_v1_to_v2(o: Obj) -> Obj:
    out = copy.deepcopy(o)
    out["apiVersion"] = "autoscaling/v2"
    spec = out.get("spec") or {}
    pct = spec.pop("targetCPUUtilizationPercentage", None)
    if pct is not None:
        spec["metrics"] = [{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}},
        }]
    status = out.get("status")
    if isinstance(status, dict):
        cur = status.pop("currentCPUUtilizationPercentage", None)
        if cur is not None:
            status["currentMetrics"] = [{
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": cur}},
            }]
    return out


# events.k8s.io/v1 field  <->  core/v1 field
_EVENT_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)


def _event_new_to_core(o: Obj) -> Obj:
    out = {k: v for k, v in o.items()}
    out["apiVersion"] = "v1"
    for new, old in _EVENT_RENAMES:
        if new in out:
            out[old] = out.pop(new)
    return out


def _event_core_to_new(o: Obj) -> Obj:
    out = {k: v for k, v in o.items()}
    out["apiVersion"] = "events.k8s.io/v1"
    for new, old in _EVENT_RENAMES:
        if old in out:
            out[new] = out.pop(old)
    return out


_CONVERTERS: dict[tuple[str, str, str], Callable[[Obj], Obj]] = {
    ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1"): _hpa_v2_to_v1,
    ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2"): _hpa_v1_to_v2,
    ("Event", "events.k8s.io/v1", "v1"): _event_new_to_core,
    ("Event", "v1", "events.k8s.io/v1"): _event_core_to_new,
}


def convert(obj: Obj, to_api_version: str) -> Obj:
    """Return ``obj`` as ``to_api_version`` (the same object when no conversion is needed)."""
    frm = obj.get("apiVersion", "")
    if frm == to_api_version:
        return obj
    fn = _CONVERTERS.get((obj.get("kind", ""), frm, to_api_version))
    if fn is None:
        out = dict(obj)
        out["apiVersion"] = to_api_version
        return out
    return fn(obj)
