"""ServiceAccount admission for pods on create (upstream's ``ServiceAccount`` plugin).

On create, unless the pod is a mirror pod (annotation ``kubernetes.io/config.mirror``):

1. ``spec.serviceAccountName`` defaults to ``default`` (the deprecated ``spec.serviceAccount``
   is read when only it is set, and always written back equal to ``serviceAccountName``);
2. the service account is looked up (404 → 403 Forbidden ``error looking up service account
   <ns>/<sa>: serviceaccount "<sa>" not found``; for ``default`` the lookup is retried for up to
   ~1.5 s, since the controller creates it right after the namespace);
3. unless ``automountServiceAccountToken`` is false on the pod (or, when the pod does not say,
   on the service account), a projected volume ``kube-api-access-<5 chars>`` (token 3607 s,
   ``kube-root-ca.crt``'s ``ca.crt``, the namespace from the downward API, mode 0644) is added
   and mounted read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every init
   container and container that does not already mount something there;
4. a pod without ``imagePullSecrets`` gets those of its service account;
5. a service account annotated ``kubernetes.io/enforce-mountable-secrets: "true"`` limits the
   pod to the secrets it lists (403 otherwise).

Mirror pods are not changed but may not name a service account, reference secrets or project
service-account tokens (403, as upstream).

``require_service_account`` False (the default of in-process test servers, which run no
service-account controller) admits a pod whose service account is missing without steps 3-5
instead of refusing it; ``kyb apiserver`` turns it on.

The decisions are pure functions over JSON dicts; :class:`ServiceAccountAdmission` only adds
the service-account read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..api import errors
from ..api import meta as m

if TYPE_CHECKING:
    from .rest import ApiStore

Obj = dict[str, Any]

NAME = "ServiceAccount"
DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
ENFORCE_MOUNTABLE_SECRETS_ANNOTATION = "kubernetes.io/enforce-mountable-secrets"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
TOKEN_EXPIRATION_SECONDS = 3607           # upstream's WarnOnlyBoundTokenExpirationSeconds
PROJECTED_DEFAULT_MODE = 0o644            # 420
DEFAULT_SA_LOOKUP_ATTEMPTS = 10


# --------------------------------------------------------------------------- pure decisions


def token_volume_source() -> Obj:
    """The projected volume source admission adds (upstream's ``TokenVolumeSource``)."""
    return {
        "defaultMode": PROJECTED_DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


def is_mirror_pod(pod: Obj) -> bool:
    return MIRROR_POD_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def default_service_account_name(pod: Obj) -> str:
    """Set ``serviceAccountName`` (default ``default``; the deprecated ``serviceAccount`` when
    only it is set) and mirror it into ``serviceAccount``. Returns the name."""
    spec = pod.setdefault("spec", {})
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    return str(name)


def should_automount(sa: Obj, pod: Obj) -> bool:
    """The pod's ``automountServiceAccountToken`` wins, then the service account's; default yes."""
    pod_says = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if isinstance(pod_says, bool):
        return pod_says
    sa_says = sa.get("automountServiceAccountToken")
    if isinstance(sa_says, bool):
        return sa_says
    return True


def mount_service_account_token(pod: Obj, new_volume_name: Callable[[], str]) -> None:
    """Mount the token volume in every init container and container lacking a mount at
    ``TOKEN_MOUNT_PATH``; add the volume (reusing an existing ``kube-api-access-*`` one) when
    some container mounts it. Ephemeral containers cannot exist at create and are left alone."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    existing = next((v.get("name") for v in volumes
                     if isinstance(v, dict) and str(v.get("name") or "").startswith(TOKEN_VOLUME_PREFIX)), None)
    name = existing or new_volume_name()
    needs_volume = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
            if any(isinstance(vm, dict) and vm.get("mountPath") == TOKEN_MOUNT_PATH for vm in mounts):
                continue
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needs_volume = True
    if needs_volume and existing is None:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


def merge_image_pull_secrets(pod: Obj, sa: Obj) -> None:
    """A pod without ``imagePullSecrets`` gets its service account's (names only)."""
    spec = pod.setdefault("spec", {})
    if spec.get("imagePullSecrets"):
        return
    names = [s.get("name") for s in sa.get("imagePullSecrets") or [] if isinstance(s, dict)]
    if names:
        spec["imagePullSecrets"] = [{"name": n or ""} for n in names]


def _containers(spec: Obj) -> Iterator[tuple[str, Obj]]:
    for key, label in (("initContainers", "init container"), ("containers", "container"),
                       ("ephemeralContainers", "ephemeral container")):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield label, c


_VOLUME_SECRET_REFS = (("cephfs", "secretRef"), ("cinder", "secretRef"), ("flexVolume", "secretRef"),
                       ("iscsi", "secretRef"), ("rbd", "secretRef"), ("scaleIO", "secretRef"),
                       ("storageos", "secretRef"), ("csi", "nodePublishSecretRef"))


def pod_secret_names(pod: Obj) -> list[str]:
    """Every Secret a pod references (upstream's ``VisitPodSecretNames``)."""
    spec = pod.get("spec") or {}
    out: list[str] = [s.get("name") or "" for s in spec.get("imagePullSecrets") or [] if isinstance(s, dict)]
    for _, c in _containers(spec):
        for ef in c.get("envFrom") or []:
            if isinstance(ef, dict) and isinstance(ef.get("secretRef"), dict):
                out.append(ef["secretRef"].get("name") or "")
        for e in c.get("env") or []:
            ref = ((e or {}).get("valueFrom") or {}).get("secretKeyRef") if isinstance(e, dict) else None
            if isinstance(ref, dict):
                out.append(ref.get("name") or "")
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        if isinstance(v.get("secret"), dict):
            out.append(v["secret"].get("secretName") or "")
        if isinstance(v.get("azureFile"), dict):
            out.append(v["azureFile"].get("secretName") or "")
        for src, field in _VOLUME_SECRET_REFS:
            ref = (v.get(src) or {}).get(field) if isinstance(v.get(src), dict) else None
            if isinstance(ref, dict):
                out.append(ref.get("name") or "")
        for p in ((v.get("projected") or {}).get("sources") or []) if isinstance(v.get("projected"), dict) else []:
            if isinstance(p, dict) and isinstance(p.get("secret"), dict):
                out.append(p["secret"].get("name") or "")
    return [n for n in out if n]


def mirror_pod_violation(pod: Obj) -> str | None:
    """Why a mirror pod may not be created, or None."""
    spec = pod.get("spec") or {}
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        return "a mirror pod may not reference service accounts"
    if pod_secret_names(pod):
        return "a mirror pod may not reference secrets"
    for v in spec.get("volumes") or []:
        for p in (((v or {}).get("projected") or {}).get("sources") or []) if isinstance(v, dict) else []:
            if isinstance(p, dict) and p.get("serviceAccountToken") is not None:
                return "a mirror pod may not use ServiceAccountToken volume projections"
    return None


def enforces_mountable_secrets(sa: Obj) -> bool:
    value = ((sa.get("metadata") or {}).get("annotations") or {}).get(ENFORCE_MOUNTABLE_SECRETS_ANNOTATION)
    return str(value).lower() in ("true", "1", "t")


def secret_reference_violation(pod: Obj, sa: Obj) -> str | None:
    """With enforce-mountable-secrets: the first secret reference the service account does not
    list (volumes, env, envFrom, imagePullSecrets), as upstream words it; else None."""
    sa_name = m.name_of(sa)
    mountable = {s.get("name") for s in sa.get("secrets") or [] if isinstance(s, dict)}
    spec = pod.get("spec") or {}
    for v in spec.get("volumes") or []:
        secret = (v or {}).get("secret") if isinstance(v, dict) else None
        if isinstance(secret, dict) and secret.get("secretName") not in mountable:
            return (f'volume with secret.secretName="{secret.get("secretName")}" is not allowed because '
                    f"service account {sa_name} does not reference that secret")
    for label, c in _containers(spec):
        if label == "ephemeral container":
            continue
        for e in c.get("env") or []:
            ref = ((e or {}).get("valueFrom") or {}).get("secretKeyRef") if isinstance(e, dict) else None
            if isinstance(ref, dict) and ref.get("name") not in mountable:
                return (f'{label} {c.get("name")} with envVar {e.get("name")} referencing secret.secretName="{ref.get("name")}" '
                        f"is not allowed because service account {sa_name} does not reference that secret")
        for ef in c.get("envFrom") or []:
            ref = ef.get("secretRef") if isinstance(ef, dict) else None
            if isinstance(ref, dict) and ref.get("name") not in mountable:
                return (f'{label} {c.get("name")} with envFrom referencing secret.secretName="{ref.get("name")}" '
                        f"is not allowed because service account {sa_name} does not reference that secret")
    pull = {s.get("name") for s in sa.get("imagePullSecrets") or [] if isinstance(s, dict)}
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(ref, dict) and ref.get("name") not in pull:
            return (f'imagePullSecrets[{i}].name="{ref.get("name")}" is not allowed because service account '
                    f"{sa_name} does not reference that imagePullSecret")
    return None


def admit(pod: Obj, sa: Obj | None, new_volume_name: Callable[[], str]) -> str | None:
    """Mutate a (non-mirror) pod for its service account ``sa`` (None: missing, tolerated) after
    ``default_service_account_name``. Returns a reason to refuse the pod, or None."""
    if sa is None:
        return None
    if should_automount(sa, pod):
        mount_service_account_token(pod, new_volume_name)
    merge_image_pull_secrets(pod, sa)
    if enforces_mountable_secrets(sa):
        return secret_reference_violation(pod, sa)
    return None


def forbidden(pod: Obj, reason: str, *, generated_name: bool = False) -> errors.StatusError:
    """403 as upstream's ``admission.NewForbidden`` words it (generateName before the name is made)."""
    md = pod.get("metadata") or {}
    name = (md.get("generateName") if generated_name else None) or md.get("name") or md.get("generateName") or "Unknown"
    return errors.forbidden_error(f'pods "{name}" is forbidden: {reason}', name=str(name), resource="pods")


# --------------------------------------------------------------------------- the I/O shell


class ServiceAccountAdmission:
    """Runs the plugin for pod creates in the generic store (``ApiStore.create``)."""

    def __init__(self, api: "ApiStore", *, require_service_account: bool = False,
                 retry_interval: Callable[[], float] = lambda: random.uniform(0.1, 0.2)) -> None:
        self.api = api
        self.require_service_account = require_service_account
        self.retry_interval = retry_interval

    async def admit_pod(self, namespace: str, pod: Obj, *, generated_name: bool = False) -> None:
        """Mutate ``pod`` in place or raise 403 Forbidden."""
        if is_mirror_pod(pod):
            spec = pod.get("spec") or {}
            if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
                spec["serviceAccountName"] = spec["serviceAccount"]
            reason = mirror_pod_violation(pod)
            if reason:
                raise forbidden(pod, reason, generated_name=generated_name)
            return
        sa_name = default_service_account_name(pod)
        sa = await self._service_account(namespace, sa_name)
        if sa is None and self.require_service_account:
            if await self.api.store.get(f"/registry/namespaces/{namespace}") is None:
                return  # the namespace check that follows answers 404 for the namespace
            raise forbidden(pod, f'error looking up service account {namespace}/{sa_name}: serviceaccount "{sa_name}" not found',
                            generated_name=generated_name)
        reason = admit(pod, sa, lambda: m.generate_name(TOKEN_VOLUME_PREFIX))
        if reason:
            raise forbidden(pod, reason, generated_name=generated_name)

    async def _service_account(self, namespace: str, name: str) -> Obj | None:
        info = self.api.registry.lookup("", "v1", "serviceaccounts")
        assert info is not None
        attempts = DEFAULT_SA_LOOKUP_ATTEMPTS if (self.require_service_account and name == DEFAULT_SERVICE_ACCOUNT) else 1
        for i in range(attempts):
            if i:
                await asyncio.sleep(self.retry_interval())
            try:
                return await self.api.get(info, namespace, name)
            except errors.StatusError as e:
                if e.code != 404:
                    raise
            if attempts > 1 and await self.api.store.get(f"/registry/namespaces/{namespace}") is None:
                return None  # no namespace: no point waiting for its default service account
        return None
