"""The Job controller against the real API server, with simulated nodes (fake kubelet)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kybernetes.client import ApiClient
from kybernetes.client.resources import JOBS
from kybernetes.controllers import job as job_module
from kybernetes.controllers.job.indexes import COMPLETION_INDEX

from .conftest import cluster, condition, event_reasons, get_job, job_body, job_pods, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
Obj = dict[str, Any]


async def test_completions_5_parallelism_2(client: ApiClient) -> None:
    """Acceptance: completes with never more than 2 active pods (pods scheduled by the scheduler)."""
    async with cluster(client, job_module, scheduler=True):
        created = await client.create(JOBS, job_body("pi", completions=5, parallelism=2, bind=False), "default")
        max_active = 0
        done: Obj | None = None

        async def finished() -> bool:
            nonlocal max_active, done
            pods = await job_pods(client, created)
            running = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")
                       and not p["metadata"].get("deletionTimestamp")]
            max_active = max(max_active, len(running))
            done = await get_job(client, "pi")
            return condition(done, "Complete") is not None

        await wait_for(finished, timeout=30, interval=0.02, what="job complete")
        assert max_active <= 2
        assert done is not None
        st = done["status"]
        assert st["succeeded"] == 5 and st.get("failed", 0) == 0 and st.get("active", 0) == 0
        assert st["startTime"] and st["completionTime"]
        assert condition(done, "SuccessCriteriaMet") is not None
        assert st.get("uncountedTerminatedPods") == {}
        pods = await job_pods(client, created)
        assert len(pods) == 5
        for p in pods:
            assert p["metadata"]["name"].startswith("pi-")
            assert p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
            assert p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == created["metadata"]["uid"]
            assert "batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or ())
        await wait_for(lambda: _has_reasons(client, "pi", {"SuccessfulCreate", "Completed"}), what="events")


async def _has_reasons(client: ApiClient, name: str, want: set[str]) -> bool:
    return want <= set(await event_reasons(client, name))


async def test_backoff_limit_exceeded(client: ApiClient) -> None:
    async with cluster(client, job_module):
        await client.create(JOBS, job_body("fail", completions=1, exit_code=1, duration="0.1s", backoffLimit=2),
                            "default")

        async def failed() -> bool:
            return condition(await get_job(client, "fail"), "Failed") is not None

        await wait_for(failed, timeout=30, what="job failed")
        job = await get_job(client, "fail")
        assert job is not None
        c = condition(job, "Failed")
        assert c is not None and c["reason"] == "BackoffLimitExceeded"
        assert c["message"] == "Job has reached the specified backoff limit"
        assert condition(job, "FailureTarget") is not None
        assert job["status"]["failed"] == 3 and "completionTime" not in job["status"]
        assert len(await job_pods(client, job)) == 3
        await wait_for(lambda: _has_reasons(client, "fail", {"BackoffLimitExceeded"}), what="event")


async def test_indexed_job(client: ApiClient) -> None:
    async with cluster(client, job_module):
        created = await client.create(JOBS, job_body("idx", completions=4, parallelism=2,
                                                     completionMode="Indexed"), "default")

        async def complete() -> bool:
            return condition(await get_job(client, "idx"), "Complete") is not None

        await wait_for(complete, timeout=30, what="indexed job complete")
        job = await get_job(client, "idx")
        assert job is not None and job["status"]["completedIndexes"] == "0-3"
        assert job["status"]["succeeded"] == 4
        pods = await job_pods(client, created)
        indexes = sorted(int(p["metadata"]["annotations"][COMPLETION_INDEX]) for p in pods)
        assert indexes == [0, 1, 2, 3]
        for p in pods:
            ix = p["metadata"]["annotations"][COMPLETION_INDEX]
            assert p["spec"]["hostname"] == f"idx-{ix}"
            assert p["metadata"]["name"].startswith(f"idx-{ix}-")
            assert p["metadata"]["labels"][COMPLETION_INDEX] == ix


async def test_active_deadline(client: ApiClient) -> None:
    async with cluster(client, job_module):
        created = await client.create(JOBS, job_body("slow", completions=2, parallelism=2, duration="60s",
                                                     activeDeadlineSeconds=1), "default")

        async def failed() -> bool:
            return condition(await get_job(client, "slow"), "Failed") is not None

        await wait_for(failed, timeout=20, what="deadline exceeded")
        job = await get_job(client, "slow")
        c = condition(job, "Failed")
        assert c is not None and c["reason"] == "DeadlineExceeded"
        assert job is not None and job["status"].get("active", 0) == 0 and job["status"]["failed"] == 2

        async def pods_gone() -> bool:
            return not await job_pods(client, created)

        await wait_for(pods_gone, what="pods deleted")


async def test_suspend_and_resume(client: ApiClient) -> None:
    async with cluster(client, job_module):
        created = await client.create(JOBS, job_body("sus", completions=2, parallelism=2, duration="60s"),
                                      "default")

        async def active(n: int) -> bool:
            job = await get_job(client, "sus")
            return job is not None and job["status"].get("active", 0) == n

        await wait_for(lambda: active(2), what="two active")
        await client.patch(JOBS, "sus", {"spec": {"suspend": True}}, "default")

        async def suspended() -> bool:
            job = await get_job(client, "sus")
            return condition(job, "Suspended") is not None and job is not None \
                and job["status"].get("active", 0) == 0 and not await job_pods(client, created)

        await wait_for(suspended, what="suspended")
        job = await get_job(client, "sus")
        assert job is not None and condition(job, "Failed") is None
        await client.patch(JOBS, "sus", {"spec": {"suspend": False}}, "default")
        await wait_for(lambda: active(2), what="resumed")
        job = await get_job(client, "sus")
        assert job is not None
        susp = next(c for c in job["status"]["conditions"] if c["type"] == "Suspended")
        assert (susp["status"], susp["reason"]) == ("False", "JobResumed")
        await wait_for(lambda: _has_reasons(client, "sus", {"Suspended", "Resumed"}), what="events")


async def test_deleted_job_releases_pod_finalizers(client: ApiClient) -> None:
    async with cluster(client, job_module):
        created = await client.create(JOBS, job_body("orph", completions=1, duration="60s"), "default")

        async def one_pod() -> bool:
            return len(await job_pods(client, created)) == 1

        await wait_for(one_pod, what="pod created")
        pod = (await job_pods(client, created))[0]
        await client.delete(JOBS, "orph", "default", propagation_policy="Orphan")
        await asyncio.sleep(0)

        async def finalizer_gone() -> bool:
            from kybernetes.client.resources import PODS
            p = await client.get(PODS, pod["metadata"]["name"], "default")
            return "batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or ())

        await wait_for(finalizer_gone, what="finalizer removed")
