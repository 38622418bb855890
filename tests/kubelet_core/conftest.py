"""Fixtures for kubelet-core integration tests: the real in-process API server (``api`` from
tests/conftest.py), a Kubelet over the in-memory FakeRuntime, a stub image store and the real
volume manager (no tmpfs), all on an injected FakeClock that the tests move forward."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kybernetes.client.resources import PODS
from kybernetes.client.rest import ApiClient, RetryPolicy
from kybernetes.kubelet.agent import Kubelet
from kybernetes.kubelet.images import Image, ImageConfig, ImagePullError
from kybernetes.kubelet.runtime.testing import FakeRuntime
from kybernetes.kubelet.status import normalize_image
from kybernetes.kubelet.volumes import VolumeManager
from kybernetes.util.clock import FakeClock

NODE = "node-1"


class StubImages:
    """An image store whose images appear on pull; ``missing`` refs fail to pull."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}
        self.pulls: list[str] = []
        self.missing: set[str] = set()

    def _image(self, ref: str) -> Image:
        norm = normalize_image(ref)
        digest = hashlib.sha256(norm.encode()).hexdigest()
        repo = norm.rsplit(":", 1)[0] if "@" not in norm else norm.split("@", 1)[0]
        return Image(id=f"sha256:{digest}", repo_tags=[norm], repo_digests=[f"{repo}@sha256:{digest}"],
                     size=4242, config=ImageConfig(cmd=["sh"], env=["PATH=/bin"]), layer_dirs=[])

    def add(self, ref: str) -> Image:
        img = self.images[normalize_image(ref)] = self._image(ref)
        return img

    def get(self, ref: str) -> Image | None:
        return self.images.get(normalize_image(ref))

    async def pull(self, ref: str, *, auths: Any = (), insecure_registries: Any = None) -> Image:
        self.pulls.append(ref)
        await asyncio.sleep(0)
        if ref in self.missing:
            raise ImagePullError(f'failed to pull and unpack image "{normalize_image(ref)}": not found')
        return self.add(ref)


class Env:
    def __init__(self, client: ApiClient, tmp: Path) -> None:
        self.client = client
        self.tmp = tmp
        self.clock = FakeClock(wall_start=dt.datetime.now(dt.UTC).replace(microsecond=0))
        self.runtime = FakeRuntime(clock=lambda: self.clock.wall().timestamp(), log_root=tmp / "logs")
        self.images = StubImages()
        self.kubelets: list[tuple[Kubelet, asyncio.Task[None]]] = []

    def kubelet(self, **kw: Any) -> Kubelet:
        kw.setdefault("node_name", NODE)
        kw.setdefault("data_dir", self.tmp / "kubelet")
        kw.setdefault("node_ip", "127.0.0.1")
        kw.setdefault("cluster_dns", ["10.96.0.10"])
        kw.setdefault("host_resolv_conf", None)
        kw.setdefault("volume_refresh_interval", 2.0)
        root = Path(kw["data_dir"]) / "pods"
        return Kubelet(self.client, runtime=self.runtime, images=self.images, clock=self.clock,
                       volumes=lambda source: VolumeManager(root, source, use_tmpfs=False), **kw)

    async def start(self, kubelet: Kubelet | None = None, **kw: Any) -> Kubelet:
        kl = kubelet or self.kubelet(**kw)
        task = asyncio.create_task(kl.run(), name="test-kubelet")
        self.kubelets.append((kl, task))
        await self.pump(lambda: kl.ready.is_set() or task.done(), what="kubelet ready")
        if task.done():
            task.result()
        return kl

    async def stop(self, kl: Kubelet) -> None:
        for pair in list(self.kubelets):
            if pair[0] is kl:
                pair[1].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pair[1]
                self.kubelets.remove(pair)

    async def pump(self, cond: Callable[[], Any], *, step: float = 0.0, timeout: float = 20.0,
                   what: str = "condition") -> Any:
        """Poll ``cond`` (sync or async); between polls move the fake clock by ``step`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = cond()
            if inspect.isawaitable(r):
                r = await r
            if r:
                return r
            if loop.time() > deadline:
                raise AssertionError(f"{what} not met within {timeout}s")
            if step:
                self.clock.advance(step)
            await asyncio.sleep(0.02)

    async def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move the fake clock in small steps, letting the kubelet work in between."""
        t = 0.0
        while t < seconds - 1e-9:
            d = min(step, seconds - t)
            self.clock.advance(d)
            t += d
            await asyncio.sleep(0.03)

    async def pod(self, name: str, ns: str = "default") -> dict[str, Any]:
        return await self.client.get(PODS, name, ns)


@pytest.fixture
async def client(api: Any) -> AsyncIterator[ApiClient]:
    c = ApiClient(api.base, timeout=10.0, retry=RetryPolicy(attempts=3, initial=0.01, maximum=0.05))
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def env(client: ApiClient, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(client, tmp_path)
    try:
        yield e
    finally:
        for kl, task in list(e.kubelets):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await e.runtime.close()


def make_pod(name: str, *containers: dict[str, Any], node: str = NODE, **spec: Any) -> dict[str, Any]:
    cs = list(containers) or [{"name": "app", "image": "busybox:1.36"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": cs, **spec}}


def condition(pod: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return {}


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    st = pod.get("status") or {}
    for c in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        if c.get("name") == name:
            return c
    return {}


Check = Callable[[], Awaitable[bool]]
