"""The CronJob and TTL-after-finished controllers against the real API server.

CronJob schedules are driven by a FakeClock whose wall time starts at the real time (the API
server stamps creationTimestamp with the real clock): advancing it 61 s crosses a minute."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import CRONJOBS, JOBS
from kybernetes.controllers import cronjob as cronjob_module
from kybernetes.controllers import garbagecollector as gc_module
from kybernetes.controllers import job as job_module
from kybernetes.controllers import ttlafterfinished as ttl_module
from kybernetes.util.clock import FakeClock

from .conftest import cluster, condition, event_reasons, get_job, job_body, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
Obj = dict[str, Any]


def cronjob_body(name: str, policy: str = "Allow", **spec: Any) -> Obj:
    template = job_body("unused", duration="60s")
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "*/1 * * * *", "concurrencyPolicy": policy,
                     "jobTemplate": {"metadata": {"labels": {"app": name}}, "spec": template["spec"]}, **spec}}


async def owned_jobs(client: ApiClient, cj_uid: str) -> list[Obj]:
    items, _ = await client.list_all(JOBS, "default")
    return [j for j in items if any(r.get("uid") == cj_uid for r in j["metadata"].get("ownerReferences") or ())
            and not j["metadata"].get("deletionTimestamp")]


def fake_clock() -> FakeClock:
    return FakeClock(wall_start=dt.datetime.now(dt.UTC))


async def tick(clock: FakeClock, ctl: Any, seconds: float = 60.0) -> None:
    """Advance once the controller has synced since the last tick (so its requeue timer is set)."""
    before = ctl.syncs
    await wait_for(lambda: ctl.queue.statistics().get("depth", 0) == 0 and ctl.syncs >= before,
                   what="controller idle")
    clock.advance(seconds)


async def test_fires_on_schedule_and_forbid_skips(client: ApiClient) -> None:
    clock = fake_clock()
    async with cluster(client, cronjob_module, clock=clock, kubelet=False) as (ctl,):
        cj = await client.create(CRONJOBS, cronjob_body("hello", "Forbid"), "default")
        await wait_for(lambda: ctl.syncs > 0, what="first sync")
        assert await owned_jobs(client, cj["metadata"]["uid"]) == []
        await tick(clock, ctl, 61)

        async def jobs(n: int) -> bool:
            return len(await owned_jobs(client, cj["metadata"]["uid"])) == n

        await wait_for(lambda: jobs(1), what="first job")
        job = (await owned_jobs(client, cj["metadata"]["uid"]))[0]
        scheduled = dt.datetime.fromisoformat(
            job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"])
        assert job["metadata"]["name"] == f"hello-{int(scheduled.timestamp()) // 60}"
        assert job["metadata"]["labels"]["app"] == "hello"
        ref = job["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["controller"]) == ("CronJob", True)

        async def status_active() -> bool:
            cur = await client.get(CRONJOBS, "hello", "default")
            return [a["name"] for a in cur["status"].get("active") or ()] == [job["metadata"]["name"]]

        await wait_for(status_active, what="status.active")
        cur = await client.get(CRONJOBS, "hello", "default")
        assert cur["status"]["lastScheduleTime"] == scheduled.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await tick(clock, ctl, 60)
        await wait_for(lambda: _has(client, "hello", "JobAlreadyActive"), what="forbid event")
        assert await jobs(1)


async def _has(client: ApiClient, name: str, reason: str) -> bool:
    return reason in await event_reasons(client, name)


async def test_replace_replaces_the_running_job(client: ApiClient) -> None:
    clock = fake_clock()
    async with cluster(client, cronjob_module, clock=clock, kubelet=False) as (ctl,):
        cj = await client.create(CRONJOBS, cronjob_body("rep", "Replace"), "default")
        uid = cj["metadata"]["uid"]
        await wait_for(lambda: ctl.syncs > 0, what="first sync")
        await tick(clock, ctl, 61)

        async def names() -> list[str]:
            return sorted(j["metadata"]["name"] for j in await owned_jobs(client, uid))

        async def one() -> bool:
            return len(await names()) == 1

        await wait_for(one, what="first job")
        first = (await names())[0]
        await tick(clock, ctl, 60)

        async def replaced() -> bool:
            n = await names()
            return len(n) == 1 and n[0] != first

        await wait_for(replaced, what="replaced")
        cur = await client.get(CRONJOBS, "rep", "default")
        await wait_for(lambda: _has(client, "rep", "SuccessfulDelete"), what="delete event")
        assert len(cur["status"].get("active") or ()) == 1


async def complete_job(client: ApiClient, job: Obj, at: str) -> None:
    fresh = await client.get(JOBS, job["metadata"]["name"], "default")
    fresh["status"] = {"startTime": at, "completionTime": at, "succeeded": 1,
                       "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": at}]}
    await client.update_status(JOBS, fresh, "default")


async def test_history_limit_and_manual_job(client: ApiClient) -> None:
    clock = fake_clock()
    async with cluster(client, cronjob_module, clock=clock, kubelet=False) as (ctl,):
        cj = await client.create(CRONJOBS, cronjob_body("hist", "Forbid", successfulJobsHistoryLimit=1), "default")
        uid = cj["metadata"]["uid"]
        # `kubectl create job manual --from=cronjob/hist`
        manual = {"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": "manual", "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                               "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hist",
                                                    "uid": uid, "controller": True}]},
                  "spec": cj["spec"]["jobTemplate"]["spec"]}
        await client.create(JOBS, manual, "default")
        await wait_for(lambda: _has(client, "hist", "UnexpectedJob"), what="manual job noticed")
        await tick(clock, ctl, 61)

        async def count(n: int) -> bool:
            return len(await owned_jobs(client, uid)) == n

        # the manual job is neither adopted into status.active nor blocking (Forbid) nor deleted
        await wait_for(lambda: count(2), what="scheduled job despite running manual job")
        cur = await client.get(CRONJOBS, "hist", "default")
        assert [a["name"] for a in cur["status"]["active"]] != ["manual"]
        assert "manual" not in [a["name"] for a in cur["status"]["active"]]
        assert await get_job(client, "manual") is not None
        scheduled = next(j for j in await owned_jobs(client, uid) if j["metadata"]["name"] != "manual")
        await complete_job(client, scheduled, "2025-01-01T00:00:00Z")
        await complete_job(client, await client.get(JOBS, "manual", "default"), "2025-01-01T00:01:00Z")

        async def only_newest_kept() -> bool:
            return [j["metadata"]["name"] for j in await owned_jobs(client, uid)] == ["manual"]

        await wait_for(only_newest_kept, what="history cleanup")

        async def last_success() -> bool:
            c = await client.get(CRONJOBS, "hist", "default")
            return c["status"].get("lastSuccessfulTime") == "2025-01-01T00:01:00Z" and not c["status"].get("active")

        await wait_for(last_success, what="lastSuccessfulTime")


async def test_suspended_cronjob_does_not_fire(client: ApiClient) -> None:
    clock = fake_clock()
    async with cluster(client, cronjob_module, clock=clock, kubelet=False) as (ctl,):
        cj = await client.create(CRONJOBS, cronjob_body("zzz", suspend=True), "default")
        await wait_for(lambda: ctl.syncs > 0, what="first sync")
        clock.advance(130)
        await client.patch(CRONJOBS, "zzz", {"metadata": {"labels": {"poke": "1"}}}, "default")
        await wait_for(lambda: ctl.syncs > 1, what="second sync")
        assert await owned_jobs(client, cj["metadata"]["uid"]) == []


async def test_ttl_deletes_finished_job(client: ApiClient) -> None:
    async with cluster(client, job_module, ttl_module, gc_module):
        await client.create(JOBS, job_body("short", ttlSecondsAfterFinished=1), "default")

        async def complete() -> bool:
            return condition(await get_job(client, "short"), "Complete") is not None

        await wait_for(complete, what="complete")

        async def gone() -> bool:
            return await get_job(client, "short") is None

        await wait_for(gone, timeout=20, what="deleted by TTL")
