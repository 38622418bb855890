"""Container lifecycle hooks: postStart and preStop (upstream ``pkg/kubelet/lifecycle``).

    await run_hook(container["lifecycle"]["postStart"], target, pod=pod, timeout=30, clock=clock)

A handler is ``exec`` (a command in the container), ``httpGet`` (like an HTTP probe: the pod IP, or
the sandbox through ``runtime.port_forward`` when the pod has no IP; a status in [200, 400) is
success) or ``sleep`` (wait ``seconds``). A failure raises ``HookError`` whose message is the
kubelet's (``Exec lifecycle hook ([cmd]) for Container "x" in Pod "p_ns(uid)" failed - error: ...``).

What happens then is the pod worker's business: a failed postStart gets a ``FailedPostStartHook``
event and the container is killed (and restarted per the restart policy); a failed preStop gets a
``FailedPreStopHook`` event and termination goes on. A preStop hook may take at most the grace
period; the time it used is taken off the grace left for SIGTERM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..util.clock import Clock, RealClock
from .actions import format_pod
from .prober import ProbeError, ProbeTarget, exec_action, http_action


class HookError(Exception):
    """A lifecycle handler failed; ``message`` is what the kubelet logs for it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


async def run_hook(handler: Mapping[str, Any], target: ProbeTarget, *, pod: dict[str, Any],
                   timeout: float, clock: Clock | None = None) -> None:
    """Run one lifecycle handler against ``target`` within ``timeout`` seconds."""
    clock = clock or RealClock()
    name = str(target.container.get("name", ""))
    who = f'for Container "{name}" in Pod "{format_pod(pod)}"'
    if handler.get("exec") is not None:
        cmd = [str(c) for c in (handler["exec"] or {}).get("command") or []]
        try:
            ok, out = await exec_action(target, cmd, max(timeout, 1.0))
        except Exception as e:
            raise HookError(f"Exec lifecycle hook ({_go_list(cmd)}) {who} failed - error: {e}, "
                            'message: ""') from e
        if not ok:
            raise HookError(f"Exec lifecycle hook ({_go_list(cmd)}) {who} failed - error: "
                            f"command '{' '.join(cmd)}' exited with non-zero status, message: {out!r}")
        return
    if handler.get("httpGet") is not None:
        action = handler["httpGet"]
        path = str(action.get("path") or "")
        try:
            ok, out = await http_action(target, action, max(timeout, 1.0))
        except ProbeError as e:
            ok, out = False, str(e)
        if not ok:
            raise HookError(f"HTTP lifecycle hook ({path}) {who} failed - error: {out}")
        return
    if handler.get("sleep") is not None:
        seconds = float((handler["sleep"] or {}).get("seconds") or 0)
        await clock.sleep(min(seconds, timeout))
        return
    if handler.get("tcpSocket") is not None:
        raise HookError(f"tcpSocket lifecycle hooks are not supported {who}")
    raise HookError(f"invalid lifecycle handler {who}")


async def run_pre_stop(handler: Mapping[str, Any], target: ProbeTarget, *, pod: dict[str, Any],
                       grace: float, clock: Clock | None = None) -> tuple[float, HookError | None]:
    """Run a preStop hook for at most ``grace`` seconds: (seconds it took, its error if any)."""
    clock = clock or RealClock()
    start = clock.monotonic()
    err: HookError | None = None
    try:
        async with asyncio.timeout(max(grace, 0.001)):
            await run_hook(handler, target, pod=pod, timeout=grace, clock=clock)
    except TimeoutError:
        pass  # the hook used the whole grace period; termination goes on
    except HookError as e:
        err = e
    return clock.monotonic() - start, err
