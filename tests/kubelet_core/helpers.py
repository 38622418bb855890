"""Builders for kubelet-core unit tests: pods and the runtime's view of them."""

from __future__ import annotations

import itertools
from typing import Any

from kybernetes.kubelet.actions import SANDBOX_ATTEMPT_LABEL
from kybernetes.kubelet.runtime.base import (
    LABEL_CONTAINER_ATTEMPT,
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    ContainerState,
    ContainerStatus,
    SandboxStatus,
)

Obj = dict[str, Any]
UID = "uid-1"
T0 = 1_700_000_000.0
_seq = itertools.count()

RUNNING, EXITED, CREATED, UNKNOWN = (ContainerState.RUNNING, ContainerState.EXITED,
                                     ContainerState.CREATED, ContainerState.UNKNOWN)


def container(name: str, **extra: Any) -> Obj:
    return {"name": name, "image": f"busybox:{name}", **extra}


def pod(*names: str, inits: tuple[Obj | str, ...] = (), restart: str = "Always", uid: str = UID,
        status: Obj | None = None, **spec: Any) -> Obj:
    containers = [container(n) if isinstance(n, str) else n for n in names]
    init = [container(n) if isinstance(n, str) else n for n in inits]
    p: Obj = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "web", "namespace": "default", "uid": uid},
              "spec": {"restartPolicy": restart, "containers": containers, **spec}}
    if init:
        p["spec"]["initContainers"] = init
    if status is not None:
        p["status"] = status
    return p


def sidecar(name: str, **extra: Any) -> Obj:
    return container(name, restartPolicy="Always", **extra)


def sb(id: str = "sb1", state: str = "ready", created: float = T0, attempt: int = 0,
       ip: str | None = "10.0.0.7") -> SandboxStatus:
    return SandboxStatus(id=id, state=state, created_at=created,
                         labels={LABEL_POD_UID: UID, SANDBOX_ATTEMPT_LABEL: str(attempt)}, ip=ip,
                         netns_path="/run/netns/x")


def cs(name: str, state: ContainerState = RUNNING, *, attempt: int = 0, exit_code: int | None = None,
       created: float | None = None, started: float | None = None, finished: float | None = None,
       id: str | None = None, sandbox: str = "sb1", reason: str = "", message: str = "",
       image: str = "", image_id: str = "") -> ContainerStatus:
    n = next(_seq)
    created = T0 + attempt * 100 + n * 0.001 if created is None else created
    if started is None and state in (RUNNING, EXITED):
        started = created + 1
    if finished is None and state == EXITED:
        finished = (started or created) + 5
    if exit_code is None and state == EXITED:
        exit_code = 0
    return ContainerStatus(
        id=id or f"{name}-{attempt}-{n}", sandbox_id=sandbox, name=name, state=state,
        labels={LABEL_POD_UID: UID, LABEL_CONTAINER_NAME: name, LABEL_CONTAINER_ATTEMPT: str(attempt)},
        image=image or f"busybox:{name}", image_id=image_id or f"docker.io/library/busybox@sha256:{name}",
        created_at=created, started_at=started, finished_at=finished, exit_code=exit_code,
        reason=reason, message=message)
