"""Leader election with two electors against the real API server (1 s leases)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kybernetes.client.leaderelection import LeaderElectionConfig, LeaderElector
from kybernetes.client.resources import LEASES
from kybernetes.client.rest import ApiClient

pytestmark = pytest.mark.integration


def elector(client: ApiClient, identity: str, release: bool) -> LeaderElector:
    cfg = LeaderElectionConfig("sched", "default", identity, lease_duration=1.0, renew_deadline=0.6,
                               retry_period=0.1, release_on_cancel=release)
    return LeaderElector(client, cfg)


class Campaign:
    def __init__(self, el: LeaderElector) -> None:
        self.el = el
        self.leading = asyncio.Event()
        self.stopped = asyncio.Event()
        self.task = asyncio.ensure_future(el.run(self._lead, self.stopped.set))

    async def _lead(self) -> None:
        self.leading.set()
        await asyncio.Event().wait()

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.mark.parametrize("release", [pytest.param(False, id="killed"), pytest.param(True, id="released")])
async def test_one_leads_and_the_other_takes_over(client: ApiClient, release: bool) -> None:
    a = Campaign(elector(client, "a", release))
    await asyncio.wait_for(a.leading.wait(), 5)
    b = Campaign(elector(client, "b", release))
    try:
        await asyncio.sleep(1.5)       # longer than the lease: a keeps renewing, b must not lead
        assert not b.leading.is_set() and a.el.is_leader and b.el.leader == "a"
        lease = await client.get(LEASES, "sched", "default")
        assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 1
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await a.cancel()
        assert a.stopped.is_set() and not a.el.is_leader
        await asyncio.wait_for(b.leading.wait(), 5)
        took = loop.time() - t0
        if release:
            assert took < 0.6           # no need to wait out the lease
        else:
            assert 0.8 < took < 2.5     # the lease had to expire first
        lease = await client.get(LEASES, "sched", "default")
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await a.cancel()
        await b.cancel()


async def test_leader_that_cannot_renew_steps_down(client: ApiClient) -> None:
    a = Campaign(elector(client, "a", False))
    await asyncio.wait_for(a.leading.wait(), 5)
    # someone else grabs the lease behind a's back: a's renewals now see a foreign holder
    lease = await client.get(LEASES, "sched", "default")
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["leaseDurationSeconds"] = 30
    await client.update(LEASES, lease)
    await asyncio.wait_for(a.task, 5)            # run() returns after losing
    assert a.stopped.is_set() and not a.el.is_leader


async def test_racing_electors_only_one_wins(client: ApiClient) -> None:
    els = [elector(client, f"e{i}", True) for i in range(4)]
    results = await asyncio.gather(*(el.try_acquire_or_renew() for el in els))
    assert sum(results) == 1
    winner = els[results.index(True)].config.identity
    again = await asyncio.gather(*(el.try_acquire_or_renew() for el in els))
    assert again == results                       # the winner renews; the others still see it held
    assert {el.leader for el in els} == {winner}


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig("x", "ns", "id", lease_duration=5, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElectionConfig("x", "ns", "")
