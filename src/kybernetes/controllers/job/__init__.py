"""The Job controller (upstream ``job-controller``): runs pods to completion.

    reconcile.py    the decisions (pure): counts, finish conditions, pods to create/delete,
                    pod failure policy, back-off; default_job_selector (for the API server)
    tracking.py     counting finished pods once: uncountedTerminatedPods, finalizers, terminal condition
    indexes.py      completion indexes of Indexed Jobs ("0-2,4")
    controller.py   the I/O shell (informers, expectations, pod writes, status via /status)

``default_job_selector(job)`` is the API server's part (upstream Job create strategy): it gives a
new Job its ``controller-uid`` selector and template labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .controller import NAME, JobController, pod_from_job
from .reconcile import (
    DEFAULT_BACKOFF,
    JOB_TRACKING_FINALIZER,
    MAX_BACKOFF,
    JobObserved,
    JobPlan,
    default_job_selector,
    is_job_finished,
    reconcile,
)

if TYPE_CHECKING:
    from ..manager import ControllerContext

ALIASES = ("job",)

__all__ = ["ALIASES", "JOB_TRACKING_FINALIZER", "NAME", "JobController", "JobObserved", "JobPlan",
           "default_job_selector", "is_job_finished", "new", "pod_from_job", "reconcile"]


def new(ctx: ControllerContext) -> JobController:
    """Options: ``concurrent_job_syncs`` (workers, 5), ``job_backoff_base`` (s, 10),
    ``job_backoff_max`` (s, 600)."""
    return JobController(ctx.client, factory=ctx.factory, recorder=ctx.recorder, clock=ctx.clock,
                         workers=int(ctx.options.get("concurrent_job_syncs", 5)),
                         backoff_base=float(ctx.options.get("job_backoff_base", DEFAULT_BACKOFF)),
                         backoff_max=float(ctx.options.get("job_backoff_max", MAX_BACKOFF)))
