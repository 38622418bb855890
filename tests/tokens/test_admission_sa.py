"""ServiceAccount admission: the pure decisions (unit) and pod creates through the API."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from kybernetes.apiserver import admission_sa as sa_adm
from tests.conftest import ApiClient

# What `kubectl get pod -o yaml` shows for the volume upstream's admission adds (Kubernetes 1.32).
UPSTREAM_VOLUME = yaml.safe_load("""
name: kube-api-access-x7k2p
projected:
  defaultMode: 420
  sources:
  - serviceAccountToken:
      expirationSeconds: 3607
      path: token
  - configMap:
      items:
      - key: ca.crt
        path: ca.crt
      name: kube-root-ca.crt
  - downwardAPI:
      items:
      - fieldRef:
          apiVersion: v1
          fieldPath: metadata.namespace
        path: namespace
""")
UPSTREAM_MOUNT = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-x7k2p",
                  "readOnly": True}
VOLUME_NAME = re.compile(r"^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


def fixed_name() -> str:
    return "kube-api-access-x7k2p"


# --------------------------------------------------------------------------- unit


def test_volume_and_mounts_match_upstream_exactly() -> None:
    p = pod(initContainers=[{"name": "init", "image": "busybox"}])
    sa_adm.default_service_account_name(p)
    assert sa_adm.admit(p, {"metadata": {"name": "default"}}, fixed_name) is None
    spec = p["spec"]
    assert spec["volumes"] == [UPSTREAM_VOLUME]
    assert spec["containers"][0]["volumeMounts"] == [UPSTREAM_MOUNT]
    assert spec["initContainers"][0]["volumeMounts"] == [UPSTREAM_MOUNT]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")


def test_generated_volume_name_has_upstreams_shape() -> None:
    from kybernetes.api import meta as m

    names = {m.generate_name(sa_adm.TOKEN_VOLUME_PREFIX) for _ in range(50)}
    assert all(VOLUME_NAME.match(n) for n in names) and len(names) > 40


@pytest.mark.parametrize(("pod_says", "sa_says", "mounted"), [
    pytest.param(None, None, True, id="default-yes"),
    pytest.param(False, None, False, id="pod-no"),
    pytest.param(None, False, False, id="sa-no"),
    pytest.param(True, False, True, id="pod-yes-wins"),
    pytest.param(False, True, False, id="pod-no-wins"),
])
def test_automount_preference(pod_says: bool | None, sa_says: bool | None, mounted: bool) -> None:
    p = pod() if pod_says is None else pod(automountServiceAccountToken=pod_says)
    sa: dict[str, Any] = {"metadata": {"name": "default"}}
    if sa_says is not None:
        sa["automountServiceAccountToken"] = sa_says
    sa_adm.admit(p, sa, fixed_name)
    assert ("volumes" in p["spec"]) is mounted
    assert ("volumeMounts" in p["spec"]["containers"][0]) is mounted


def test_existing_mount_at_the_path_is_kept_and_existing_volume_reused() -> None:
    own = {"name": "mine", "mountPath": sa_adm.TOKEN_MOUNT_PATH}
    p = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]}, {"name": "b", "image": "x"}],
            volumes=[{"name": "kube-api-access-abcde", "projected": {"sources": []}}, {"name": "mine", "emptyDir": {}}])
    sa_adm.admit(p, {"metadata": {"name": "default"}}, fixed_name)
    c = p["spec"]["containers"]
    assert c[0]["volumeMounts"] == [own]
    assert c[1]["volumeMounts"] == [{"name": "kube-api-access-abcde", "readOnly": True, "mountPath": sa_adm.TOKEN_MOUNT_PATH}]
    assert [v["name"] for v in p["spec"]["volumes"]] == ["kube-api-access-abcde", "mine"]


def test_no_volume_when_every_container_mounts_the_path_itself() -> None:
    own = {"name": "mine", "mountPath": sa_adm.TOKEN_MOUNT_PATH}
    p = pod(containers=[{"name": "a", "image": "x", "volumeMounts": [own]}], volumes=[{"name": "mine", "emptyDir": {}}])
    sa_adm.admit(p, {"metadata": {"name": "default"}}, fixed_name)
    assert [v["name"] for v in p["spec"]["volumes"]] == ["mine"]


def test_deprecated_service_account_field() -> None:
    p = pod(serviceAccount="legacy")
    assert sa_adm.default_service_account_name(p) == "legacy"
    assert (p["spec"]["serviceAccountName"], p["spec"]["serviceAccount"]) == ("legacy", "legacy")
    p = pod(serviceAccountName="new", serviceAccount="old")
    assert sa_adm.default_service_account_name(p) == "new" and p["spec"]["serviceAccount"] == "new"


def test_image_pull_secrets_come_from_the_service_account_only_when_the_pod_has_none() -> None:
    sa = {"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "reg-a"}, {"name": "reg-b"}]}
    p = pod()
    sa_adm.admit(p, sa, fixed_name)
    assert p["spec"]["imagePullSecrets"] == [{"name": "reg-a"}, {"name": "reg-b"}]
    p = pod(imagePullSecrets=[{"name": "mine"}])
    sa_adm.admit(p, sa, fixed_name)
    assert p["spec"]["imagePullSecrets"] == [{"name": "mine"}]
    p = pod()
    sa_adm.admit(p, {"metadata": {"name": "default"}}, fixed_name)
    assert "imagePullSecrets" not in p["spec"]


@pytest.mark.parametrize(("spec", "reason"), [
    pytest.param({}, None, id="plain"),
    pytest.param({"serviceAccountName": "x"}, "a mirror pod may not reference service accounts", id="sa"),
    pytest.param({"volumes": [{"name": "s", "secret": {"secretName": "s"}}]}, "a mirror pod may not reference secrets", id="secret-volume"),
    pytest.param({"containers": [{"name": "a", "image": "x", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]},
                 "a mirror pod may not reference secrets", id="secret-env"),
    pytest.param({"imagePullSecrets": [{"name": "r"}]}, "a mirror pod may not reference secrets", id="pull-secret"),
    pytest.param({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]},
                 "a mirror pod may not use ServiceAccountToken volume projections", id="token-projection"),
])
def test_mirror_pod_restrictions(spec: dict[str, Any], reason: str | None) -> None:
    p = pod(**spec)
    p["metadata"]["annotations"] = {sa_adm.MIRROR_POD_ANNOTATION: "abc"}
    assert sa_adm.is_mirror_pod(p)
    assert sa_adm.mirror_pod_violation(p) == reason


def test_enforce_mountable_secrets() -> None:
    sa = {"metadata": {"name": "bot", "annotations": {sa_adm.ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: "true"}},
          "secrets": [{"name": "ok"}]}
    good = pod(volumes=[{"name": "v", "secret": {"secretName": "ok"}}])
    assert sa_adm.admit(good, sa, fixed_name) is None
    bad = pod(volumes=[{"name": "v", "secret": {"secretName": "nope"}}])
    assert sa_adm.admit(bad, sa, fixed_name) == (
        'volume with secret.secretName="nope" is not allowed because service account bot does not reference that secret')
    env = pod(containers=[{"name": "app", "image": "x", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}])
    assert sa_adm.admit(env, sa, fixed_name) == (
        'container app with envVar E referencing secret.secretName="nope" is not allowed because service account bot '
        "does not reference that secret")


# --------------------------------------------------------------------------- through the API


async def create_pod(api: ApiClient, ns: str, body: dict[str, Any]) -> tuple[int, Any]:
    st, doc, _ = await api.post(f"/api/v1/namespaces/{ns}/pods", body)
    return st, doc


async def test_api_adds_the_volume_when_the_service_account_exists(api: ApiClient) -> None:
    await api.post("/api/v1/namespaces/default/serviceaccounts",
                   {"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "regcred"}]})
    st, doc = await create_pod(api, "default", pod(initContainers=[{"name": "i", "image": "busybox"}]))
    assert st == 201, doc
    spec = doc["spec"]
    (vol,) = spec["volumes"]
    assert VOLUME_NAME.match(vol["name"])
    assert {**vol, "name": UPSTREAM_VOLUME["name"]} == UPSTREAM_VOLUME
    mount = {**UPSTREAM_MOUNT, "name": vol["name"]}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    # and what is stored is what a read returns
    st, again, _ = await api.get("/api/v1/namespaces/default/pods/p")
    assert again["spec"]["volumes"] == spec["volumes"]


async def test_api_strict_mode_refuses_a_missing_service_account_as_upstream(api: ApiClient) -> None:
    api.server.api.service_account_admission.require_service_account = True
    api.server.api.service_account_admission.retry_interval = lambda: 0.001
    st, doc = await create_pod(api, "default", pod(serviceAccountName="ghost"))
    assert st == 403
    assert doc["reason"] == "Forbidden"
    assert doc["message"] == ('pods "p" is forbidden: error looking up service account default/ghost: '
                              'serviceaccount "ghost" not found')
    assert doc["details"] == {"name": "p", "kind": "pods"}
    body = pod()
    body["metadata"] = {"generateName": "web-"}
    st, doc = await create_pod(api, "default", body)
    assert st == 403 and doc["message"].startswith('pods "web-" is forbidden: error looking up service account default/default')
    # a missing namespace is still a 404 for the namespace
    st, doc = await create_pod(api, "nowhere", pod())
    assert st == 404 and doc["details"]["kind"] == "namespaces"


async def test_api_strict_mode_waits_for_the_default_service_account(api: ApiClient) -> None:
    import asyncio

    api.server.api.service_account_admission.require_service_account = True

    async def later() -> None:
        await asyncio.sleep(0.3)
        await api.post("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "default"}})

    (st, doc), _ = await asyncio.gather(create_pod(api, "default", pod()), later())
    assert st == 201 and doc["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


async def test_api_tolerant_mode_admits_without_the_volume(api: ApiClient) -> None:
    st, doc = await create_pod(api, "default", pod())
    assert st == 201
    assert doc["spec"]["serviceAccountName"] == "default" and "volumes" not in doc["spec"]


async def test_api_mirror_pods_are_not_mutated_and_are_restricted(api: ApiClient) -> None:
    api.server.api.service_account_admission.require_service_account = True
    body = pod()
    body["metadata"]["annotations"] = {sa_adm.MIRROR_POD_ANNOTATION: "hash"}
    st, doc = await create_pod(api, "default", body)
    assert st == 201, doc
    assert "serviceAccountName" not in doc["spec"] and "volumes" not in doc["spec"]
    body = pod(serviceAccountName="x")
    body["metadata"] = {"name": "m2", "annotations": {sa_adm.MIRROR_POD_ANNOTATION: "hash"}}
    st, doc = await create_pod(api, "default", body)
    assert st == 403 and doc["message"] == 'pods "m2" is forbidden: a mirror pod may not reference service accounts'


async def test_api_automount_false_on_the_service_account(api: ApiClient) -> None:
    await api.post("/api/v1/namespaces/default/serviceaccounts",
                   {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    st, doc = await create_pod(api, "default", pod(serviceAccountName="quiet"))
    assert st == 201 and "volumes" not in doc["spec"] and "volumeMounts" not in doc["spec"]["containers"][0]
