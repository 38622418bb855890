"""`kyb up --store etcd` against a real etcd, driven by kubectl."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.etcd_server import EtcdServer, etcd_available

from .conftest import Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.etcd]


@pytest.mark.skipif(not etcd_available(), reason="etcd is not installed")
def test_kubectl_on_etcd_store(tmp_path: Path) -> None:
    etcd = EtcdServer(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    c = Cluster(tmp_path / "data", free_port(), home)
    try:
        c.start("--store", "etcd", "--etcd-servers", ",".join(etcd.endpoints))
        assert "deployment.apps/web created" in c.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=2").stdout
        c.kubectl("scale", "deployment", "web", "--replicas=3")
        d = c.kjson("get", "deployment", "web")
        assert d["spec"]["replicas"] == 3 and d["metadata"]["generation"] == 2
        c.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e\ndata:\n  a: '1'\n")
        assert c.kjson("get", "cm", "e")["data"] == {"a": "1"}
        # restart the API server: state lives in etcd
        c.stop()
        c.start("--store", "etcd", "--etcd-servers", ",".join(etcd.endpoints))
        assert c.kjson("get", "deployment", "web")["spec"]["replicas"] == 3
        names = {i["metadata"]["name"] for i in c.kjson("get", "namespaces")["items"]}
        assert {"default", "kube-system"} <= names
    finally:
        c.stop()
        etcd.stop()
