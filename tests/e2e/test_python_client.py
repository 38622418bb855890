"""The official `kubernetes` Python client against `kyb up`."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .conftest import Cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def k8s(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


def test_crud_across_kinds(k8s: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(k8s)
    apps = client.AppsV1Api(k8s)
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "pc"}, "data": {"a": "1"}})
    assert cm.metadata.uid and cm.metadata.resource_version
    assert core.read_namespaced_config_map("pc", ns).data == {"a": "1"}
    core.patch_namespaced_config_map("pc", ns, {"data": {"b": "2"}})
    assert core.read_namespaced_config_map("pc", ns).data == {"a": "1", "b": "2"}
    cur = core.read_namespaced_config_map("pc", ns)
    cur.data = {"c": "3"}
    assert core.replace_namespaced_config_map("pc", ns, cur).data == {"c": "3"}
    names = [i.metadata.name for i in core.list_namespaced_config_map(ns).items]
    assert "pc" in names
    dep = {
        "metadata": {"name": "pd"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pd"}},
                 "template": {"metadata": {"labels": {"app": "pd"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }
    d = apps.create_namespaced_deployment(ns, dep)
    assert d.spec.strategy.type == "RollingUpdate"
    apps.patch_namespaced_deployment_scale("pd", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("pd", ns).spec.replicas == 3
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "ps"}, "spec": {"type": "NodePort", "selector": {"app": "pd"}, "ports": [{"port": 80}]}})
    assert 30000 <= svc.spec.ports[0].node_port <= 32767
    core.delete_namespaced_config_map("pc", ns)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("pc", ns)
    assert e.value.status == 404
    apps.delete_namespaced_deployment("pd", ns)
    core.delete_namespaced_service("ps", ns)


def test_watch_sees_added_modified_deleted(k8s: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(k8s)
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=20):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "wc"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("wc", ns, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("wc", ns)
    t.join(timeout=25)
    assert ("ADDED", "wc") in seen and ("MODIFIED", "wc") in seen and ("DELETED", "wc") in seen


def test_crd_and_custom_objects(k8s: client.ApiClient, ns: str) -> None:
    ext = client.ApiextensionsV1Api(k8s)
    custom = client.CustomObjectsApi(k8s)
    group = "stable.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"crontabs.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                              "spec": {"type": "object", "properties": {
                                  "cronSpec": {"type": "string"}, "image": {"type": "string"},
                                  "replicas": {"type": "integer", "minimum": 1}}},
                              "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                obj = custom.create_namespaced_custom_object(group, "v1", ns, "crontabs", {
                    "apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "ct1"},
                    "spec": {"cronSpec": "* * * * */5", "image": "my-image", "replicas": 2}})
                break
            except ApiException as e:
                if e.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert obj["spec"]["replicas"] == 2
        got = custom.get_namespaced_custom_object(group, "v1", ns, "crontabs", "ct1")
        assert got["spec"]["image"] == "my-image"
        lst = custom.list_namespaced_custom_object(group, "v1", ns, "crontabs")
        assert [i["metadata"]["name"] for i in lst["items"]] == ["ct1"]
        with pytest.raises(ApiException) as e:
            custom.create_namespaced_custom_object(group, "v1", ns, "crontabs", {
                "apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "ct2"}, "spec": {"replicas": 0}})
        assert e.value.status == 422
        custom.patch_namespaced_custom_object(group, "v1", ns, "crontabs", "ct1", {"spec": {"image": "other"}})
        assert custom.get_namespaced_custom_object(group, "v1", ns, "crontabs", "ct1")["spec"]["image"] == "other"
    finally:
        ext.delete_custom_resource_definition(f"crontabs.{group}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            ext.read_custom_resource_definition(f"crontabs.{group}")
        except ApiException as e:
            assert e.status == 404
            break
        time.sleep(0.2)
    else:
        pytest.fail("CRD was not removed")
    with pytest.raises(ApiException) as e:
        custom.list_namespaced_custom_object(group, "v1", ns, "crontabs")
    assert e.value.status == 404
