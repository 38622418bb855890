"""Priority: a pod's ``priorityClassName`` becomes ``spec.priority`` and ``preemptionPolicy``.

Pod CREATE (mutating):

* no class named: the ``globalDefault`` class (the lowest value if several) is used and named
  in ``spec.priorityClassName``; without one the pod gets priority 0 and
  ``PreemptLowerPriority``;
* a class that does not exist: 403 ``pods "x" is forbidden: no PriorityClass with name x was
  found``;
* a ``spec.priority`` / ``spec.preemptionPolicy`` that differs from what the class says: 403
  ``the integer value of priority (5) must not be provided in pod spec; priority admission
  controller computed 10 from the given PriorityClass name`` (and the same for the policy).

Pod UPDATE keeps the stored priority and policy (they are immutable once set).

PriorityClass CREATE/UPDATE (validating): only one class may be ``globalDefault``: 403
``PriorityClass x is already marked as default. Only one default can exist``.

``system-node-critical`` (2000001000) and ``system-cluster-critical`` (2000000000) are created at
API server start when missing (upstream's bootstrap post-start hook).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...api import errors
from .cache import PrefixCache
from .chain import CREATE, UPDATE, Attributes, Plugin, forbidden

if TYPE_CHECKING:
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NAME = "Priority"
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000
SYSTEM_PRIORITY_CLASSES: tuple[Obj, ...] = (
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-node-critical"},
     "value": SYSTEM_CRITICAL_PRIORITY + 1000,
     "description": "Used for system critical pods that must not be moved from their current node."},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-cluster-critical"},
     "value": SYSTEM_CRITICAL_PRIORITY,
     "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."},
)


def default_class(classes: Sequence[Obj]) -> Obj | None:
    """The global default class; with several (a race upstream allows), the lowest value."""
    best: Obj | None = None
    for pc in classes:
        if pc.get("globalDefault") is True and (best is None or int(pc.get("value") or 0) < int(best.get("value") or 0)):
            best = pc
    return best


def resolve(pod: Obj, classes: Sequence[Obj]) -> tuple[str, int, str | None] | str:
    """(class name, priority, preemption policy) for a new pod, or the refusal message."""
    spec = pod.get("spec") or {}
    name = str(spec.get("priorityClassName") or "")
    if not name:
        pc = default_class(classes)
        if pc is None:
            return "", 0, DEFAULT_PREEMPTION_POLICY
        return (str(pc["metadata"]["name"]), int(pc.get("value") or 0),
                pc.get("preemptionPolicy") or DEFAULT_PREEMPTION_POLICY)
    for pc in classes:
        if (pc.get("metadata") or {}).get("name") == name:
            return name, int(pc.get("value") or 0), pc.get("preemptionPolicy") or DEFAULT_PREEMPTION_POLICY
    return f"no PriorityClass with name {name} was found"


def admit_pod(pod: Obj, classes: Sequence[Obj]) -> str | None:
    """Set the pod's priority fields in place; returns the refusal message, if any."""
    decided = resolve(pod, classes)
    if isinstance(decided, str):
        return decided
    name, priority, policy = decided
    spec = pod.setdefault("spec", {})
    if spec.get("priority") is not None and spec["priority"] != priority:
        return (f"the integer value of priority ({spec['priority']}) must not be provided in pod spec; "
                f"priority admission controller computed {priority} from the given PriorityClass name")
    if name:
        spec["priorityClassName"] = name
    spec["priority"] = priority
    if policy is not None:
        if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
            return (f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be provided in pod spec; "
                    f"priority admission controller computed {policy} from the given PriorityClass name")
        spec["preemptionPolicy"] = policy
    return None


class Priority(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE})
    resources = frozenset({("", "pods"), ("scheduling.k8s.io", "priorityclasses")})
    mutating = True
    validating = True

    def __init__(self, api: "ApiStore", classes: PrefixCache) -> None:
        self.api = api
        self.classes = classes

    async def admit(self, attrs: Attributes) -> None:
        if not attrs.is_("", "pods") or attrs.obj is None:
            return
        spec = attrs.obj.setdefault("spec", {})
        if attrs.operation == UPDATE:
            old_spec = (attrs.old or {}).get("spec") or {}
            for key in ("priority", "preemptionPolicy"):
                if old_spec.get(key) is not None:
                    spec[key] = old_spec[key]
            return
        msg = admit_pod(attrs.obj, await self.classes.list())
        if msg:
            raise forbidden(attrs, msg)

    async def validate(self, attrs: Attributes) -> None:
        if not attrs.is_("scheduling.k8s.io", "priorityclasses") or attrs.obj is None:
            return
        if attrs.obj.get("globalDefault") is not True:
            return
        for pc in await self.classes.list():
            name = (pc.get("metadata") or {}).get("name")
            if pc.get("globalDefault") is True and name != attrs.name:
                raise forbidden(attrs, f"PriorityClass {name} is already marked as default. Only one default can exist")

    async def bootstrap(self) -> None:
        info = self.api.registry.lookup("scheduling.k8s.io", "v1", "priorityclasses")
        if info is None:
            return
        from ..rest import WriteOptions

        for pc in SYSTEM_PRIORITY_CLASSES:
            if await self.api.store.get(info.key("", pc["metadata"]["name"])) is not None:
                continue
            try:
                await self.api.create(info, "", {**pc, "metadata": dict(pc["metadata"])},
                                      WriteOptions(field_manager="kube-apiserver", field_validation="Ignore"))
            except errors.StatusError as e:
                if e.code != 409:
                    raise
