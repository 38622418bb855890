"""Plugin results: a ``Status`` with a code and reasons written for humans.

Plugins return ``None`` for success (as upstream returns a nil ``*Status``). A rejected node gets
``Unschedulable`` (preemption might help) or ``UnschedulableAndUnresolvable`` (it cannot).
``Skip`` from PreFilter/PreScore tells the runtime not to call the matching Filter/Score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""  # the plugin that produced it (filled in by the runtime)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_rejected(self) -> bool:
        """Unschedulable or UnschedulableAndUnresolvable."""
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else replace(self, plugin=plugin)


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


def error(message: str) -> Status:
    return Status(Code.ERROR, (message,))


SKIP = Status(Code.SKIP)
SUCCESS = Status(Code.SUCCESS)


def is_success(status: Status | None) -> bool:
    """``None`` counts as success, like a nil status upstream."""
    return status is None or status.code == Code.SUCCESS
