"""Small builders for Job/CronJob/Pod dicts used by the batch controller tests."""

from __future__ import annotations

from typing import Any

from kybernetes.controllers.job.indexes import COMPLETION_INDEX
from kybernetes.controllers.job.reconcile import JOB_TRACKING_FINALIZER

Obj = dict[str, Any]
UID = "job-uid-1"


def make_job(name: str = "pi", *, completions: int | None = 1, parallelism: int = 1, backoff: int = 6,
             indexed: bool = False, suspend: bool = False, status: Obj | None = None,
             restart: str = "Never", annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    s: Obj = {"parallelism": parallelism, "backoffLimit": backoff, "suspend": suspend,
              "completionMode": "Indexed" if indexed else "NonIndexed",
              "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
              "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": UID},
                                        **({"annotations": annotations} if annotations else {})},
                           "spec": {"restartPolicy": restart,
                                    "containers": [{"name": "c", "image": "busybox"}]}}, **spec}
    if completions is not None:
        s["completions"] = completions
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": UID, "generation": 1,
                         "resourceVersion": "1"},
            "spec": s, "status": status or {}}


def make_pod(name: str, phase: str = "Running", *, ready: bool = False, index: int | None = None,
             finalizer: bool = True, deleting: bool = False, uid: str | None = None,
             exit_code: int | None = None, restarts: int = 0) -> Obj:
    md: Obj = {"name": name, "namespace": "default", "uid": uid or f"uid-{name}",
               "labels": {"batch.kubernetes.io/controller-uid": UID},
               "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": UID,
                                    "controller": True}],
               "creationTimestamp": "2025-01-01T00:00:00Z"}
    if finalizer:
        md["finalizers"] = [JOB_TRACKING_FINALIZER]
    if deleting:
        md["deletionTimestamp"] = "2025-01-01T00:00:05Z"
    if index is not None:
        md["annotations"] = {COMPLETION_INDEX: str(index)}
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    cs: Obj = {"name": "c", "restartCount": restarts}
    if exit_code is not None:
        cs["state"] = {"terminated": {"exitCode": exit_code}}
    status["containerStatuses"] = [cs]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {"nodeName": "n1"}, "status": status}
