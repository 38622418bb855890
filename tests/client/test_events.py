"""EventRecorder: Events written for objects, repeats aggregated, never blocking callers."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.client.events import EventRecorder
from kybernetes.client.fake import FakeApiClient
from kybernetes.client.resources import CONFIGMAPS, EVENTS, NODES
from kybernetes.client.rest import ApiClient
from kybernetes.util.clock import FakeClock

from .conftest import cm


@pytest.mark.integration
async def test_repeats_are_aggregated(client: ApiClient) -> None:
    obj = await client.create(CONFIGMAPS, cm("subject"))
    rec = EventRecorder(client, "test-controller", host="host-1")
    task = asyncio.ensure_future(rec.run())
    try:
        rec.event(obj, "Normal", "Synced", "all good")
        rec.event(obj, "Normal", "Synced", "all good")
        rec.event(obj, "Warning", "Failed", "oops")
        await asyncio.wait_for(rec.wait_for_idle(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    events = (await client.list(EVENTS, "default"))["items"]
    by_reason = {ev["reason"]: ev for ev in events}
    assert len(events) == 2
    synced = by_reason["Synced"]
    assert synced["count"] == 2 and synced["type"] == "Normal" and synced["message"] == "all good"
    assert synced["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert synced["involvedObject"]["kind"] == "ConfigMap"
    assert synced["source"] == {"component": "test-controller", "host": "host-1"}
    assert by_reason["Failed"]["count"] == 1
    assert rec.statistics()["aggregated"] == 1


async def test_window_expiry_cluster_scope_and_drops() -> None:
    fake = FakeApiClient()
    clock = FakeClock()
    rec = EventRecorder(fake, "kubelet", clock=clock, queue_size=2, window=600)  # type: ignore[arg-type]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u1"}}
    task = asyncio.ensure_future(rec.run())
    try:
        assert rec.event(node, "Normal", "Ready", "ready")
        await asyncio.wait_for(rec.wait_for_idle(), 2)
        clock.advance(601)                    # outside the window: a new Event
        rec.event(node, "Normal", "Ready", "ready")
        await asyncio.wait_for(rec.wait_for_idle(), 2)
        clock.advance(10)                     # inside: aggregated
        rec.event(node, "Normal", "Ready", "ready")
        await asyncio.wait_for(rec.wait_for_idle(), 2)
        # the queue is bounded: a burst beyond it is dropped, the caller never waits
        results = [rec.event(node, "Normal", f"R{i}", "m") for i in range(5)]
        assert results == [True, True, False, False, False]
        await asyncio.wait_for(rec.wait_for_idle(), 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    evs = (await fake.list(EVENTS, "default"))["items"]
    ready = sorted(e["count"] for e in evs if e["reason"] == "Ready")
    assert ready == [1, 2]
    assert all(e["metadata"]["namespace"] == "default" for e in evs)   # cluster-scoped -> default
    assert rec.statistics()["dropped"] == 3
    assert rec.statistics()["failed"] == 0                              # same-instant events get distinct names
    assert sorted(e["reason"] for e in evs) == ["R0", "R1", "Ready", "Ready"]
    assert [a.verb for a in fake.actions_for(res=EVENTS)].count("patch") == 1
    assert not fake.actions_for(res=NODES)


async def test_aggregation_recreates_deleted_event() -> None:
    fake = FakeApiClient()
    rec = EventRecorder(fake, "c")  # type: ignore[arg-type]
    task = asyncio.ensure_future(rec.run())
    obj = cm("o")
    try:
        rec.event(obj, "Normal", "X", "m")
        await asyncio.wait_for(rec.wait_for_idle(), 2)
        ev = (await fake.list(EVENTS, "default"))["items"][0]
        await fake.delete(EVENTS, ev["metadata"]["name"], "default")
        rec.event(obj, "Normal", "X", "m")
        await asyncio.wait_for(rec.wait_for_idle(), 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    evs = (await fake.list(EVENTS, "default"))["items"]
    assert len(evs) == 1 and evs[0]["count"] == 1
