"""Run a cluster's components as child processes: start in order, restart on crash, stop in
reverse order on SIGINT/SIGTERM. Used by ``kyb up``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Component:
    name: str
    argv: list[str]
    ready: Callable[["subprocess.Popen[bytes]"], bool] | None = None  # blocks until ready; False = failed
    proc: "subprocess.Popen[bytes] | None" = field(default=None, repr=False)
    restarts: int = 0
    next_start: float = 0.0


class Supervisor:
    STOP_TIMEOUT = 15.0

    def __init__(self, components: list[Component], on_ready: Callable[[], None] | None = None) -> None:
        self.components = components
        self.on_ready = on_ready
        self.stopping = False

    def _say(self, msg: str) -> None:
        print(f"kyb: {msg}", file=sys.stderr, flush=True)

    def _start(self, c: Component) -> bool:
        c.proc = subprocess.Popen(c.argv)
        if c.ready is not None and not c.ready(c.proc):
            return False
        return True

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            for c in self.components:
                if self.stopping:
                    return 0
                for attempt in range(5):
                    if self._start(c):
                        break
                    if self.stopping:
                        return 0
                    self._say(f"{c.name} failed to start (exit {c.proc.poll() if c.proc else '?'}); retrying")
                    self._terminate(c)
                    time.sleep(min(5.0, 0.5 * (attempt + 1)))
                else:
                    self._say(f"{c.name} keeps failing to start; giving up")
                    return 1
            if self.on_ready:
                self.on_ready()
            while not self.stopping:
                now = time.monotonic()
                for c in self.components:
                    if c.proc is not None and c.proc.poll() is not None:
                        rc = c.proc.returncode
                        c.proc = None
                        c.restarts += 1
                        delay = min(30.0, 0.5 * 2 ** min(c.restarts, 6))
                        c.next_start = now + delay
                        self._say(f"{c.name} exited with status {rc}; restarting in {delay:.0f}s")
                    elif c.proc is None and now >= c.next_start and not self.stopping:
                        c.proc = subprocess.Popen(c.argv)
                time.sleep(0.2)
            return 0
        finally:
            for c in reversed(self.components):
                self._terminate(c)
            print("kyb: stopped", flush=True)

    def _terminate(self, c: Component) -> None:
        p = c.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=self.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._say(f"{c.name} did not stop in {self.STOP_TIMEOUT:.0f}s; killing it")
            p.kill()
            p.wait()
