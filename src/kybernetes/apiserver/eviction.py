"""The ``pods/eviction`` subresource: a pod deletion that honours PodDisruptionBudgets.

    POST /api/v1/namespaces/{ns}/pods/{name}/eviction   (policy/v1 Eviction)

Decision order (as upstream ``pkg/registry/core/pod/storage/eviction.go``):

1. A pod that is Pending, Succeeded, Failed or already terminating is deleted without looking at
   budgets (``can_ignore_pdb``); unless the pod is terminal or terminating, the delete carries a
   resourceVersion precondition so it cannot race with the pod turning ready.
2. The budgets of the pod's namespace whose selector matches it (``matching_pdbs``): none → delete;
   more than one → refused (403 here; upstream answers 500, which our API never sends).
3. A pod that is not ready is deleted without spending the budget when the budget says
   ``unhealthyPodEvictionPolicy: AlwaysAllow``, or when the budget is currently satisfied
   (``currentHealthy >= desiredHealthy > 0``) (``unhealthy_pod_bypass``).
4. Otherwise ``check_and_decrement`` runs inside a compare-and-swap on the budget's status:
   a stale ``observedGeneration`` → 429 with Retry-After 10; ``disruptionsAllowed == 0`` → 429
   "Cannot evict pod as it would violate the pod's disruption budget." with a ``DisruptionBudget``
   cause (no Retry-After, exactly as upstream: client-go would otherwise silently retry, and
   ``kubectl drain`` retries 429s itself every 5 s); else ``disruptionsAllowed`` is decremented and
   the pod recorded in ``status.disruptedPods`` so the disruption controller stops counting it.
5. The pod gets the condition ``DisruptionTarget=True`` (reason ``EvictionByEvictionAPI``) and is
   deleted with the Eviction's ``deleteOptions`` (grace period, preconditions, dry run).

Everything but ``evict`` is pure.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..api import errors
from ..api import meta as m
from ..api.labels import selector_from_label_selector
from .rest import ListOptions, WriteOptions

if TYPE_CHECKING:
    from ..api.resources import ResourceInfo
    from .rest import ApiStore

Obj = dict[str, Any]

DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
ALWAYS_ALLOW = "AlwaysAllow"
IF_HEALTHY_BUDGET = "IfHealthyBudget"
DISRUPTION_TARGET = "DisruptionTarget"
MAX_DISRUPTED_POD_SIZE = 2000
STILL_PROCESSING_RETRY_AFTER = 10
RETRIES = 20
VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS_MESSAGE = ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                         "does not support.")


# ------------------------------------------------------------------------------------------------
# the request
# ------------------------------------------------------------------------------------------------
def delete_options(name: str, body: Any, query_dry_run: Iterable[str]) -> Obj:
    """The DeleteOptions to delete with: the Eviction's own, with the request's ``dryRun`` merged in.

    400 if the body is no object, names another pod, or disagrees with the query about dry run.
    """
    if not isinstance(body, Mapping):
        raise errors.bad_request("Eviction must be an object")
    if ((body.get("metadata") or {}).get("name") or "") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts: Obj = copy.deepcopy(dict(body.get("deleteOptions") or {}))
    query = list(query_dry_run)
    own = opts.get("dryRun")
    if isinstance(own, str):   # tolerate a bare string
        own = [own]
    if not own:
        if query:
            opts["dryRun"] = query
        else:
            opts.pop("dryRun", None)
    elif query and list(own) != query:
        raise errors.bad_request(f"Non-matching dry-run options in request and content: {query} and {list(own)}")
    else:
        opts["dryRun"] = list(own)
    for d in opts.get("dryRun") or ():
        if d != "All":
            raise errors.bad_request(f'Invalid dryRun value: "{d}": valid values are "All"')
    return opts


def is_dry_run(opts: Mapping[str, Any]) -> bool:
    return bool(opts.get("dryRun"))


def resource_version_unset(opts: Mapping[str, Any]) -> bool:
    return not (opts.get("preconditions") or {}).get("resourceVersion")


def with_resource_version(opts: Mapping[str, Any], rv: str) -> Obj:
    """A copy of ``opts`` whose preconditions pin the pod's resourceVersion."""
    out = copy.deepcopy(dict(opts))
    out["preconditions"] = {**(out.get("preconditions") or {}), "resourceVersion": rv}
    return out


# ------------------------------------------------------------------------------------------------
# pods
# ------------------------------------------------------------------------------------------------
def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def can_ignore_pdb(pod: Mapping[str, Any]) -> bool:
    """Pending, finished and terminating pods are evicted without consulting budgets."""
    return _phase(pod) in ("Pending", "Succeeded", "Failed") or _terminating(pod)


def should_enforce_resource_version(pod: Mapping[str, Any]) -> bool:
    """A delete that skips the budget pins the resourceVersion unless the pod is finished or going."""
    return _phase(pod) not in ("Succeeded", "Failed") and not _terminating(pod)


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def disruption_target(now: dt.datetime) -> Obj:
    return {"type": DISRUPTION_TARGET, "status": "True", "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting", "lastProbeTime": None,
            "lastTransitionTime": m.now_rfc3339(now)}


def mark_disruption_target(pod: Obj, opts: Mapping[str, Any], now: dt.datetime) -> Obj:
    """``pod`` with DisruptionTarget=True; 409 if the delete preconditions already fail."""
    md = pod.get("metadata") or {}
    pre = opts.get("preconditions") or {}
    name = str(md.get("name") or "")
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.conflict("pods", "", name, f"the UID in the precondition ({pre['uid']}) does not match the "
                              f"UID in record ({md.get('uid')}). The object might have been deleted and then recreated")
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.conflict("pods", "", name, f"the ResourceVersion in the precondition ({pre['resourceVersion']}) "
                              f"does not match the ResourceVersion in record ({md.get('resourceVersion')}). "
                              "The object might have been modified")
    status = pod.setdefault("status", {})
    status["conditions"] = m.set_condition(list(status.get("conditions") or []), disruption_target(now))
    return pod


# ------------------------------------------------------------------------------------------------
# budgets
# ------------------------------------------------------------------------------------------------
def matching_pdbs(pod: Mapping[str, Any], pdbs: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The budgets of the pod's namespace that select it (a null selector selects nothing,
    ``{}`` everything; an invalid selector selects nothing)."""
    md = pod.get("metadata") or {}
    ns, labels = md.get("namespace"), md.get("labels") or {}
    out: list[Obj] = []
    for pdb in pdbs:
        if (pdb.get("metadata") or {}).get("namespace") != ns:
            continue
        try:
            sel = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except errors.StatusError:
            continue
        if sel.matches(labels):
            out.append(dict(pdb))
    return out


def unhealthy_pod_bypass(pod: Mapping[str, Any], pdb: Mapping[str, Any]) -> bool:
    """May this pod go without spending the budget? Only a pod that is not ready, and only if the
    budget allows it (``AlwaysAllow``) or is satisfied right now (``IfHealthyBudget``, the default)."""
    if is_pod_ready(pod):
        return False
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == ALWAYS_ALLOW:
        return True
    st = pdb.get("status") or {}
    desired = int(st.get("desiredHealthy") or 0)
    return int(st.get("currentHealthy") or 0) >= desired and desired > 0


def still_processing(pdb_name: str) -> errors.StatusError:
    """429: the budget's status is behind its spec (or the pod changed under us)."""
    err = errors.too_many_requests(VIOLATION_MESSAGE, STILL_PROCESSING_RETRY_AFTER)
    err.details["causes"] = [errors.Cause(
        DISRUPTION_BUDGET_CAUSE, f"The disruption budget {pdb_name} is still being processed by the server.").to_dict()]
    return err


def budget_exhausted(pdb: Mapping[str, Any]) -> errors.StatusError:
    """429 without Retry-After (as upstream): the budget allows no disruption now."""
    st = pdb.get("status") or {}
    name = (pdb.get("metadata") or {}).get("name") or ""
    msg = (f"The disruption budget {name} needs {int(st.get('desiredHealthy') or 0)} healthy pods "
           f"and has {int(st.get('currentHealthy') or 0)} currently")
    return errors.StatusError(429, "TooManyRequests", VIOLATION_MESSAGE,
                              {"causes": [errors.Cause(DISRUPTION_BUDGET_CAUSE, msg).to_dict()]})


def multiple_pdbs() -> errors.StatusError:
    """Upstream answers 500 InternalError; we never send 5xx for a client-visible state, so 403:
    like a 500 it is final for ``kubectl drain`` (which only retries 429s)."""
    return errors.StatusError(403, "Forbidden", MULTIPLE_PDBS_MESSAGE,
                              {"group": "policy", "kind": "poddisruptionbudgets"})


def _forbidden_pdb(name: str, why: str) -> errors.StatusError:
    return errors.forbidden_error(f'poddisruptionbudget.policy "{name}" is forbidden: {why}',
                                  name, "policy", "poddisruptionbudget")


def disruption_allowed_condition(status: Mapping[str, Any], conditions: Iterable[Mapping[str, Any]],
                                 now: dt.datetime) -> list[Obj]:
    """``conditions`` with DisruptionAllowed matching ``status.disruptionsAllowed`` (a
    metav1.Condition: lastTransitionTime changes only with the status value)."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    cond: Obj = {"type": DISRUPTION_ALLOWED, "status": "True" if allowed else "False",
                 "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS, "message": "",
                 "observedGeneration": int(status.get("observedGeneration") or 0),
                 "lastTransitionTime": m.now_rfc3339(now)}
    return m.set_condition([dict(c) for c in conditions], cond)


def check_and_decrement(pdb: Obj, pod_name: str, now: dt.datetime, dry_run: bool) -> Obj:
    """Spend one disruption of ``pdb`` (a copy the caller owns, returned changed) or refuse."""
    md = pdb.get("metadata") or {}
    name = str(md.get("name") or "")
    st = pdb.setdefault("status", {})
    if int(st.get("observedGeneration") or 0) < int(md.get("generation") or 0):
        raise still_processing(name)
    allowed = int(st.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden_pdb(name, "pdb disruptions allowed is negative")
    if len(st.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise _forbidden_pdb(name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise budget_exhausted(pdb)
    st["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        st["conditions"] = disruption_allowed_condition(st, st.get("conditions") or (), now)
    if not dry_run:
        st["disruptedPods"] = {**(st.get("disruptedPods") or {}), pod_name: m.now_rfc3339(now)}
    return pdb


# ------------------------------------------------------------------------------------------------
# the I/O shell
# ------------------------------------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def _mark_and_delete(api: ApiStore, pods: ResourceInfo, ns: str, name: str, opts: Obj) -> None:
    """Add the DisruptionTarget condition (not on dry run), then delete with ``opts``."""
    dry = is_dry_run(opts)
    if not dry:
        updated, _ = await api.guaranteed_update(
            pods, ns, name, lambda cur: mark_disruption_target(_require(cur), opts, _now()),
            WriteOptions(field_manager="kube-apiserver"), subresource="status", record_managed=False)
        if not resource_version_unset(opts):  # our own write moved the version on
            opts = with_resource_version(opts, str((updated.get("metadata") or {}).get("resourceVersion")))
    await api.delete(pods, ns, name, opts, dry)


def _require(obj: Obj | None) -> Obj:
    assert obj is not None  # guaranteed_update without allow_create never passes None
    return obj


async def evict(api: ApiStore, pods: ResourceInfo, pdbs: ResourceInfo, ns: str, name: str,
                body: Any, query_dry_run: Iterable[str]) -> None:
    """Evict pod ``ns/name`` as the Eviction ``body`` asks, or raise the StatusError that refuses."""
    opts = delete_options(name, body, query_dry_run)
    retry_conflicts = resource_version_unset(opts)
    pod: Obj | None = None
    for _ in range(RETRIES):
        pod = await api.get(pods, ns, name)
        if not can_ignore_pdb(pod):
            break
        dopts = opts
        if should_enforce_resource_version(pod) and resource_version_unset(opts):
            dopts = with_resource_version(opts, str(pod["metadata"].get("resourceVersion")))
        try:
            await _mark_and_delete(api, pods, ns, name, dopts)
            return
        except errors.StatusError as e:
            if e.code == 409 and e.reason == "Conflict" and retry_conflicts:
                continue
            raise
    else:
        raise errors.conflict("pods", "", name, errors.MODIFIED_DETAIL)
    assert pod is not None

    items, _ = await api.list(pdbs, ns, ListOptions())
    found = matching_pdbs(pod, items)
    if len(found) > 1:
        raise multiple_pdbs()
    pin_version = False
    pdb_name = ""
    if found:
        pdb = found[0]
        pdb_name = str(pdb["metadata"]["name"])
        if unhealthy_pod_bypass(pod, pdb):
            pin_version = True
        else:
            dry = is_dry_run(opts)
            await api.guaranteed_update(
                pdbs, ns, pdb_name, lambda cur: check_and_decrement(_require(cur), name, _now(), dry),
                WriteOptions(dry_run=dry, field_manager="kube-apiserver"), subresource="status",
                record_managed=False)
    dopts = with_resource_version(opts, str(pod["metadata"].get("resourceVersion"))) if pin_version else opts
    try:
        await _mark_and_delete(api, pods, ns, name, dopts)
    except errors.StatusError as e:
        if e.code == 409 and e.reason == "Conflict" and pin_version and resource_version_unset(opts):
            raise still_processing(pdb_name) from None  # the pod changed (maybe turned ready): retry
        raise
