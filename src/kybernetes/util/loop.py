"""Event loop selection for every kyb process."""

from __future__ import annotations

import asyncio


def use_fast_event_loop() -> str:
    """Make the next ``asyncio.run`` use uvloop when it is installed; returns the loop's name.

    uvloop's C transports and TLS layer roughly halve the per-request and per-watch-write cost
    of the event loop (see bench/RESULTS.md). Call it before the loop starts (the CLI does)."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
