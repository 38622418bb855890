"""PodSecurity: the Pod Security Standards per namespace, from its labels (upstream's plugin).

Namespace labels ``pod-security.kubernetes.io/<mode>`` (level: privileged | baseline |
restricted) and ``pod-security.kubernetes.io/<mode>-version`` (``latest`` or ``v1.x``, default
latest) for the modes:

* ``enforce``: a violating pod is refused, 403 ``pods "x" is forbidden: violates PodSecurity
  "restricted:latest": allowPrivilegeEscalation != false (container "c" must set ...), ...``;
* ``warn``: the request passes with a warning ``would violate PodSecurity "baseline:latest": ...``
  (kubectl prints it as ``Warning: would violate PodSecurity ...``);
* ``audit``: the audit annotation ``pod-security.kubernetes.io/audit-violations: would violate
  PodSecurity "baseline:latest": ...`` on the request's audit events (every evaluated pod also
  gets ``pod-security.kubernetes.io/enforce-policy: <level>:<version>``).

Unlabelled modes default to ``privileged:latest``. An invalid enforce level counts as
``restricted`` (an invalid warn/audit level as ``privileged``), as upstream; such labels are
refused on namespace create (422 Invalid), and on update when they change.

What is checked: pods on create, on updates that change an image or seccomp annotation or add an
ephemeral container, and on ``pods/ephemeralcontainers``; the pod templates of workload resources
(ReplicationController, PodTemplate, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job,
CronJob) get warnings only, never a refusal. Making a namespace's enforce level stricter warns
about the existing pods that would violate it (grouped as upstream: ``pod-a (and 2 other pods):
privileged``). Exemptions (users, namespaces, runtime classes) are not configurable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...api import errors
from . import podsecurity_checks as checks
from .chain import CREATE, UPDATE, Attributes, Plugin, forbidden
from .namespace_lifecycle import get_namespace

if TYPE_CHECKING:
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NAME = "PodSecurity"
LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
MAX_PODS_TO_CHECK = 3000
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"})
POD_CONTROLLERS = frozenset({("", "replicationcontrollers"), ("", "podtemplates"), ("apps", "replicasets"),
                             ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                             ("batch", "jobs"), ("batch", "cronjobs")})
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class LevelVersion:
    level: str = "privileged"
    version: checks.Version = checks.LATEST

    def __str__(self) -> str:
        v = "latest" if self.version == checks.LATEST else f"v{self.version[0]}.{self.version[1]}"
        return f"{self.level}:{v}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()


def parse_version(text: str) -> checks.Version | None:
    if text == "latest":
        return checks.LATEST
    m = _VERSION.match(text)
    return (1, int(m.group(1))) if m else None


def policy_from_labels(labels: Mapping[str, Any] | None) -> tuple[Policy, list[errors.Cause]]:
    """The namespace's policy and the label errors (the policy is usable even with errors)."""
    labels = labels or {}
    causes: list[errors.Cause] = []
    modes: dict[str, LevelVersion] = {}
    for mode in MODES:
        level, version = "privileged", checks.LATEST
        key = LABEL_PREFIX + mode
        if key in labels:
            value = str(labels[key])
            if value in checks.LEVELS:
                level = value
            else:
                level = "restricted" if mode == "enforce" else "privileged"  # fail closed / open
                causes.append(errors.invalid_value(f"metadata.labels[{key}]", value,
                                                   "must be one of privileged, baseline, restricted"))
        vkey = key + "-version"
        if vkey in labels:
            parsed = parse_version(str(labels[vkey]))
            if parsed is None:
                causes.append(errors.invalid_value(f"metadata.labels[{vkey}]", str(labels[vkey]), 'must be "latest" or "v1.x"'))
            else:
                version = parsed
        modes[mode] = LevelVersion(level, version)
    return Policy(**modes), causes


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def pod_template(group: str, plural: str, obj: Obj) -> tuple[Obj, Obj] | None:
    """(metadata, spec) of a workload's pod template, or None when it has none."""
    spec = obj.get("spec") or {}
    if (group, plural) == ("", "podtemplates"):
        template = obj.get("template")
    elif (group, plural) == ("batch", "cronjobs"):
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    else:
        template = spec.get("template")
    if not isinstance(template, dict):
        return None
    return template.get("metadata") or {}, template.get("spec") or {}


def _images(spec: Mapping[str, Any], key: str) -> list[Any]:
    return [c.get("image") for c in spec.get(key) or []]


def significant_pod_update(new: Obj, old: Obj) -> bool:
    """Could this update change the verdict? (images, seccomp annotations, ephemeral containers)"""
    na, oa = (new.get("metadata") or {}).get("annotations") or {}, (old.get("metadata") or {}).get("annotations") or {}
    if na.get("seccomp.security.alpha.kubernetes.io/pod") != oa.get("seccomp.security.alpha.kubernetes.io/pod"):
        return True
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers"):
        if _images(ns, key) != _images(os_, key):
            return True
        for c in ns.get(key) or []:
            k = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name", ""))
            if na.get(k) != oa.get(k):
                return True
    old_eph = {c.get("name"): c for c in os_.get("ephemeralContainers") or []}
    for c in ns.get("ephemeralContainers") or []:
        o = old_eph.get(c.get("name"))
        if o is None or o.get("image") != c.get("image"):
            return True
    return False


def evaluate(lv: LevelVersion, metadata: Obj, spec: Obj) -> list[checks.Result]:
    return checks.evaluate(lv.level, lv.version, metadata, spec)


def namespace_warnings(namespace: str, enforce: LevelVersion, pods: list[Obj]) -> list[str]:
    """Warnings for existing pods that violate a namespace's new enforce level (grouped)."""
    warnings: list[str] = []
    total = len(pods)
    pods = pods[:MAX_PODS_TO_CHECK]
    order: list[str] = []
    groups: dict[str, list[str]] = {}
    for pod in pods:
        results = evaluate(enforce, pod.get("metadata") or {}, pod.get("spec") or {})
        if results:
            reason = checks.forbidden_reason(results)
            if reason not in groups:
                order.append(reason)
                groups[reason] = []
            groups[reason].append(str((pod.get("metadata") or {}).get("name", "")))
    if len(pods) < total:
        warnings.append(f"new PodSecurity enforce level only checked against the first {len(pods)} of {total} existing pods")
    if order:
        warnings.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{enforce}"')
    decorated = []
    for reason in order:
        names = groups[reason]
        first = min(names)
        if len(names) == 1:
            decorated.append(f"{first}: {reason}")
        elif len(names) == 2:
            decorated.append(f"{first} (and 1 other pod): {reason}")
        else:
            decorated.append(f"{first} (and {len(names) - 1} other pods): {reason}")
    return warnings + sorted(decorated)


class PodSecurity(Plugin):
    NAME = NAME
    operations = frozenset({CREATE, UPDATE})
    subresources = None
    validating = True

    def __init__(self, api: "ApiStore") -> None:
        self.api = api

    def handles(self, attrs: Attributes) -> bool:
        if not super().handles(attrs) or attrs.obj is None:
            return False
        if attrs.is_("", "namespaces"):
            return attrs.subresource == ""
        if attrs.is_("", "pods"):
            return attrs.subresource not in IGNORED_POD_SUBRESOURCES
        return (attrs.group, attrs.resource) in POD_CONTROLLERS and attrs.subresource == ""

    async def validate(self, attrs: Attributes) -> None:
        if attrs.is_("", "namespaces"):
            await self._validate_namespace(attrs)
            return
        ns = await get_namespace(self.api, attrs)
        policy, _ = policy_from_labels(_labels(ns))
        assert attrs.obj is not None
        if attrs.is_("", "pods"):
            attrs.annotate(LABEL_PREFIX + "enforce-policy", str(policy.enforce))
            if policy.enforce.level == policy.warn.level == policy.audit.level == "privileged":
                return
            if attrs.operation == UPDATE and attrs.old is not None and attrs.subresource == "" \
                    and not significant_pod_update(attrs.obj, attrs.old):
                return
            self._evaluate(attrs, policy, attrs.obj.get("metadata") or {}, attrs.obj.get("spec") or {}, enforce=True)
            return
        if policy.warn.level == policy.audit.level == "privileged":
            return
        template = pod_template(attrs.group, attrs.resource, attrs.obj)
        if template is not None:
            self._evaluate(attrs, policy, template[0], template[1], enforce=False)

    def _evaluate(self, attrs: Attributes, policy: Policy, metadata: Obj, spec: Obj, *, enforce: bool) -> None:
        cache: dict[LevelVersion, list[checks.Result]] = {}

        def results(lv: LevelVersion) -> list[checks.Result]:
            if lv not in cache:
                cache[lv] = evaluate(lv, metadata, spec)
            return cache[lv]

        if enforce and results(policy.enforce):
            raise forbidden(attrs, f'violates PodSecurity "{policy.enforce}": {checks.forbidden_detail(results(policy.enforce))}')
        if results(policy.audit):
            attrs.annotate(LABEL_PREFIX + "audit-violations", f'would violate PodSecurity "{policy.audit}": '
                                                              f'{checks.forbidden_detail(results(policy.audit))}')
        if results(policy.warn):
            attrs.warn(f'would violate PodSecurity "{policy.warn}": {checks.forbidden_detail(results(policy.warn))}')

    async def _validate_namespace(self, attrs: Attributes) -> None:
        new_policy, causes = policy_from_labels(_labels(attrs.obj))
        if attrs.operation == CREATE:
            if causes:
                raise errors.invalid("Namespace", "", attrs.name, causes)
            return
        old_policy, old_causes = policy_from_labels(_labels(attrs.old))
        if causes and [c.message for c in causes] != [c.message for c in old_causes]:
            raise errors.invalid("Namespace", "", attrs.name, causes)
        if new_policy.enforce == old_policy.enforce or new_policy.enforce.level == "privileged":
            return
        order = checks.LEVELS.index
        if new_policy.enforce.version == old_policy.enforce.version and \
                order(new_policy.enforce.level) <= order(old_policy.enforce.level):
            return
        from ..rest import decode

        page = await self.api.store.list(f"/registry/pods/{attrs.name}/")
        pods = [decode(kv) for kv in page.items]
        for w in namespace_warnings(attrs.name, new_policy.enforce, pods):
            attrs.warn(w)
