"""kubelet/startslots.py: the pod start limiter serves the oldest pod first."""

from __future__ import annotations

import asyncio

from kybernetes.kubelet.startslots import StartSlots


async def test_limit_and_oldest_pod_first() -> None:
    slots = StartSlots(limit=2)
    order: list[str] = []
    gate = asyncio.Event()

    async def step(uid: str, hold: bool = False) -> None:
        async with slots.slot(uid):
            order.append(uid)
            if hold:
                await gate.wait()

    for uid in ("a", "b", "c", "d"):
        slots.ticket(uid)            # a, b, c, d arrive in this order
    holders = [asyncio.create_task(step("a", True)), asyncio.create_task(step("b", True))]
    await asyncio.sleep(0)
    assert slots.busy == 2
    late = [asyncio.create_task(step("d")), asyncio.create_task(step("c"))]   # d asks first
    await asyncio.sleep(0)
    assert order == ["a", "b"], "nobody passes the limit"
    gate.set()
    await asyncio.gather(*holders, *late)
    assert order == ["a", "b", "c", "d"], "c arrived before d, so it goes first"
    assert slots.busy == 0


async def test_cancelled_waiters_do_not_leak_slots() -> None:
    slots = StartSlots(limit=1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with slots.slot("a"):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await holder
    assert slots.busy == 0
    async with slots.slot("b"):
        assert slots.busy == 1
    slots.forget("a")
    assert slots.ticket("a") > slots.ticket("b"), "a forgotten pod queues as a new arrival"
