"""Fixtures for the volume / env / pod-file tests: an in-memory ObjectSource."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest


class FakeSource:
    """An in-memory ``ObjectSource``: objects keyed by (namespace, name); tokens numbered."""

    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], dict] = {}
        self.secrets: dict[tuple[str, str], dict] = {}
        self.pvcs: dict[tuple[str, str], dict] = {}
        self.pvs: dict[str, dict] = {}
        self.services: list[dict] = []
        self.token_requests: list[dict[str, Any]] = []
        self.now = 1_000_000.0          # the "issue time" of the next token
        self.token_lifetime: float | None = None  # None: exactly the requested expiration

    def add_configmap(self, name: str, data: dict[str, str], ns: str = "default",
                      binary: dict[str, bytes] | None = None) -> None:
        cm: dict[str, Any] = {"metadata": {"name": name, "namespace": ns}, "data": dict(data)}
        if binary:
            cm["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
        self.configmaps[(ns, name)] = cm

    def add_secret(self, name: str, data: dict[str, bytes], ns: str = "default") -> None:
        self.secrets[(ns, name)] = {"metadata": {"name": name, "namespace": ns},
                                    "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}

    async def get_configmap(self, ns: str, name: str) -> dict | None:
        obj = self.configmaps.get((ns, name))
        return copy.deepcopy(obj) if obj else None

    async def get_secret(self, ns: str, name: str) -> dict | None:
        obj = self.secrets.get((ns, name))
        return copy.deepcopy(obj) if obj else None

    async def get_pvc(self, ns: str, name: str) -> dict | None:
        return copy.deepcopy(self.pvcs.get((ns, name)))

    async def get_pv(self, name: str) -> dict | None:
        return copy.deepcopy(self.pvs.get(name))

    async def list_services(self, ns: str) -> list[dict]:
        return [s for s in self.services if not ns or s["metadata"]["namespace"] == ns]

    async def request_token(self, ns: str, service_account: str, *, audiences: list[str],
                            expiration_seconds: int, pod_name: str, pod_uid: str) -> tuple[str, float]:
        n = len(self.token_requests) + 1
        self.token_requests.append({"ns": ns, "sa": service_account, "audiences": audiences,
                                    "expiration_seconds": expiration_seconds, "pod_name": pod_name,
                                    "pod_uid": pod_uid})
        life = self.token_lifetime if self.token_lifetime is not None else expiration_seconds
        return f"token-{n}", self.now + life


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


def make_pod(name: str = "web", ns: str = "default", uid: str = "uid-1", **spec: Any) -> dict:
    spec.setdefault("containers", [{"name": "c", "image": "busybox"}])
    return {"metadata": {"name": name, "namespace": ns, "uid": uid,
                         "labels": spec.pop("labels", {}), "annotations": spec.pop("annotations", {})},
            "spec": spec}
