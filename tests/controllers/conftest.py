"""Fixtures for controller tests: controllers running against the in-process API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

from kybernetes.client import ApiClient, InformerFactory, NotFound, Resource
from kybernetes.client.events import EventRecorder
from kybernetes.client.rest import RetryPolicy
from kybernetes.controllers.manager import ControllerContext
from kybernetes.util.clock import RealClock
from tests.harness import wait_for  # noqa: F401 - shared by this suite's tests

Obj = dict[str, Any]
TEST_CA = b"-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def client(api) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


def make_context(client: ApiClient, **options: Any) -> ControllerContext:
    opts = {"namespace_retry_base": 0.05, "namespace_retry_max": 0.3, "gc_discovery_period": 5.0,
            "gc_workers": 4, **options}
    return ControllerContext(client=client, factory=InformerFactory(client), clock=RealClock(),
                             recorder=EventRecorder(client, "controller-manager", "test"),
                             cluster_ca=TEST_CA, options=opts)


@contextlib.asynccontextmanager
async def running(client: ApiClient, *modules: ModuleType, **options: Any) -> AsyncIterator[list[Any]]:
    """Start the controllers of ``modules`` (plus informers and events); stop them on exit."""
    ctx = make_context(client, **options)
    controllers = [m.new(ctx) for m in modules]
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(asyncio.ensure_future(ctx.factory.run()))
        tasks.append(asyncio.ensure_future(ctx.recorder.run()))
        tasks.extend(asyncio.ensure_future(c.run()) for c in controllers)
        await ctx.factory.wait_for_sync(timeout=10)
        yield controllers
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def get_or_none(client: ApiClient, res: Resource, name: str, ns: str | None = None) -> Obj | None:
    try:
        return await client.get(res, name, ns)
    except NotFound:
        return None


async def gone(client: ApiClient, res: Resource, name: str, ns: str | None = None) -> bool:
    return await get_or_none(client, res, name, ns) is None


def configmap(name: str, ns: str = "default", *, owners: list[Obj] | None = None,
              finalizers: list[str] | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": ns}
    if owners:
        md["ownerReferences"] = owners
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": name}}


def owner_ref(obj: Obj, *, block: bool = False, controller: bool = False) -> Obj:
    md = obj["metadata"]
    ref: Obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": md["name"], "uid": md["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    if controller:
        ref["controller"] = True
    return ref


WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True)


def widget_crd() -> Obj:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


def widget(name: str, ns: str = "default", *, owners: list[Obj] | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": ns}
    if owners:
        md["ownerReferences"] = owners
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": md, "spec": {"size": 1}}
