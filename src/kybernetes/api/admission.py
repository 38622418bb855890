"""Admission-time mutations the API server applies on create (pure functions on JSON dicts).

* ``default_toleration_seconds`` — DefaultTolerationSeconds: pods tolerate the not-ready and
  unreachable NoExecute taints for 300 s unless they say otherwise.
* ``default_job_selector`` — the Job create strategy: a generated selector on the Job's uid.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

NO_EXECUTE = "NoExecute"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


def default_toleration_seconds(pod: Obj) -> None:
    """Add ``not-ready`` / ``unreachable`` NoExecute tolerations (300 s) to ``pod`` in place,
    unless it already tolerates that taint key (or every key) for NoExecute (or every effect)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    covered = set()
    for tol in tolerations:
        if not isinstance(tol, dict) or (tol.get("effect") or NO_EXECUTE) != NO_EXECUTE:
            continue
        key = tol.get("key") or ""
        covered |= {TAINT_NOT_READY, TAINT_UNREACHABLE} if not key else {key}
    added = [{"key": key, "operator": "Exists", "effect": NO_EXECUTE,
              "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}
             for key in (TAINT_NOT_READY, TAINT_UNREACHABLE) if key not in covered]
    if added:
        spec["tolerations"] = [*tolerations, *added]


def default_job_selector(job: Obj) -> None:
    """Generate the Job's selector and pod-template labels in place, as upstream's Job create
    strategy does unless ``spec.manualSelector`` is true. Needs ``metadata.uid`` to be set.

    Template labels gain ``batch.kubernetes.io/job-name``/``job-name`` (the Job's name) and
    ``batch.kubernetes.io/controller-uid``/``controller-uid`` (its uid) unless already present;
    ``spec.selector.matchLabels`` gains ``batch.kubernetes.io/controller-uid``. Job labels, when
    empty, become a copy of the template labels (what upstream clients read back).
    """
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector") is True:
        return
    md = job.setdefault("metadata", {})
    name, uid = str(md.get("name") or ""), str(md.get("uid") or "")
    template = spec.setdefault("template", {})
    tmd = template.setdefault("metadata", {})
    labels = tmd.get("labels")
    if not isinstance(labels, dict):
        labels = tmd["labels"] = {}
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if not isinstance(match, dict):
        match = selector["matchLabels"] = {}
    match.setdefault(CONTROLLER_UID_LABEL, uid)
    if not md.get("labels"):
        md["labels"] = dict(labels)
