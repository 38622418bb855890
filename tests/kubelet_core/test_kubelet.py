"""The Kubelet against the real in-process API server, over the FakeRuntime (real sockets and
watches; time on a FakeClock the tests move)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest

from kybernetes.client.errors import AlreadyExists, NotFound
from kybernetes.client.resources import CONFIGMAPS, EVENTS, LEASES, NODES, PODS
from kybernetes.kubelet.lease import NODE_LEASE_NAMESPACE
from kybernetes.kubelet.runtime.base import ExecResult
from kybernetes.kubelet.server import StreamError

from .conftest import NODE, Env, condition, container_status, make_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def events_for(env: Env, name: str) -> list[tuple[str, str, str]]:
    items = (await env.client.list(EVENTS, "default"))["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items
            if e["involvedObject"].get("name") == name]


def running(env: Env, name: str) -> Any:
    async def check() -> bool:
        p = await env.pod(name)
        return p.get("status", {}).get("phase") == "Running" and condition(p, "Ready").get("status") == "True"
    return check


async def test_node_registration_lease_and_a_running_pod(env: Env) -> None:
    kl = await env.start()
    node = await env.client.get(NODES, NODE)
    st = node["status"]
    assert st["capacity"]["pods"] == "110" and st["capacity"]["cpu"] == str(os.cpu_count())
    assert st["capacity"]["memory"].endswith("Ki") and "ephemeral-storage" in st["allocatable"]
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("fake://")
    assert st["nodeInfo"]["kubeletVersion"].startswith("v1.32.")
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert {c["type"] for c in st["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert st["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"},
                               {"type": "Hostname", "address": NODE}]
    lease = await env.client.get(LEASES, NODE, NODE_LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == NODE

    await env.client.create(PODS, make_pod("web", {"name": "app", "image": "busybox:1.36"},
                                           {"name": "side", "image": "busybox:1.36",
                                            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}),
                            "default")
    await env.pump(running(env, "web"), step=0.2, what="web running and ready")
    p = await env.pod("web")
    st = p["status"]
    assert st["hostIP"] == "127.0.0.1" and st["podIP"].startswith("10.88.") and st["qosClass"] == "BestEffort"
    app = container_status(p, "app")
    assert app["containerID"].startswith("fake://container-") and app["ready"] and app["started"]
    assert app["image"] == "docker.io/library/busybox:1.36"
    assert app["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert app["restartCount"] == 0 and "running" in app["state"]
    assert [c["type"] for c in st["conditions"]][-5:] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                          "ContainersReady", "PodScheduled"]
    assert env.runtime.call_names().count("create_container") == 2
    await kl.recorder.wait_for_idle()
    evs = await events_for(env, "web")
    assert ("Normal", "Pulling", 'Pulling image "busybox:1.36"') in evs
    assert ("Normal", "Created", "Created container: app") in evs
    assert ("Normal", "Started", "Started container side") in evs
    assert any(r == "Pulled" and m.startswith('Successfully pulled image "busybox:1.36" in ') for _, r, m in evs)
    loc = kl.locate("default", "web", "app")
    assert loc.container_id == app["containerID"].split("://")[1] and loc.pod_uid == p["metadata"]["uid"]
    with pytest.raises(StreamError) as e:
        kl.locate("default", "web", "app", previous=True)
    assert e.value.code == 400 and "previous terminated container" in e.value.message
    with pytest.raises(StreamError) as e:
        kl.locate("default", "nope", "app")
    assert e.value.code == 404


async def test_crash_loop_back_off_grows(env: Env) -> None:
    await env.start()
    await env.client.create(PODS, make_pod("crash"), "default")
    await env.pump(running(env, "crash"), step=0.2, what="crash running")

    def live_id() -> str:
        return next(c for c, x in env.runtime.containers.items() if x.status.state.value == "running")

    async def crash_and_wait(restarts: int, delay: int | None) -> None:
        env.runtime.set_exit(live_id(), 1)
        await env.advance(1.5)  # PLEG notices the exit
        if delay is None:
            return
        want = f"back-off {delay}s restarting failed container=app pod=crash_default("

        async def waiting() -> bool:
            cs = container_status(await env.pod("crash"), "app")
            w = cs.get("state", {}).get("waiting") or {}
            return w.get("reason") == "CrashLoopBackOff" and w.get("message", "").startswith(want)
        await env.pump(waiting, what=f"CrashLoopBackOff {delay}s")
        cs = container_status(await env.pod("crash"), "app")
        assert cs["restartCount"] == restarts and cs["lastState"]["terminated"]["exitCode"] == 1
        creates = env.runtime.call_names().count("create_container")
        await env.advance(delay - 3)
        assert env.runtime.call_names().count("create_container") == creates  # still backing off

    # the first restart happens at once
    await crash_and_wait(0, None)
    await env.pump(lambda: env.runtime.call_names().count("create_container") == 2, step=0.2, what="restart 1")
    await crash_and_wait(1, 10)
    await env.pump(lambda: env.runtime.call_names().count("create_container") == 3, step=0.5, what="restart 2")
    await crash_and_wait(2, 20)
    await env.pump(lambda: env.runtime.call_names().count("create_container") == 4, step=0.5, what="restart 3")
    await env.pump(running(env, "crash"), step=0.2, what="running again")
    assert container_status(await env.pod("crash"), "app")["restartCount"] == 3


async def test_readiness_failure_keeps_the_pod_not_ready(env: Env) -> None:
    await env.start()
    env.runtime.script_exec(ExecResult(1, b"not yet"), argv=["ready"])
    await env.client.create(PODS, make_pod("rdy", {"name": "app", "image": "busybox:1.36", "readinessProbe": {
        "exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 1}}), "default")

    async def not_ready() -> bool:
        p = await env.pod("rdy")
        return p["status"].get("phase") == "Running" and condition(p, "Ready").get("reason") == "ContainersNotReady"
    await env.pump(not_ready, step=0.2, what="running but not ready")
    await env.advance(5)
    p = await env.pod("rdy")
    assert condition(p, "Ready")["status"] == "False"
    assert condition(p, "ContainersReady")["message"] == "containers with unready status: [app]"
    assert container_status(p, "app")["ready"] is False and container_status(p, "app")["started"] is True
    env.runtime.script_exec(ExecResult(0), argv=["ready"])
    await env.pump(running(env, "rdy"), step=0.2, what="ready after the probe passes")


async def test_liveness_failure_restarts_with_events(env: Env) -> None:
    kl = await env.start()
    env.runtime.script_exec(ExecResult(0), argv=["alive"])
    await env.client.create(PODS, make_pod("live", {"name": "app", "image": "busybox:1.36", "livenessProbe": {
        "exec": {"command": ["alive"]}, "periodSeconds": 1, "failureThreshold": 2}}), "default")
    await env.pump(running(env, "live"), step=0.2, what="live running")
    env.runtime.script_exec(ExecResult(1, b"dead"), argv=["alive"])

    async def restarted() -> bool:
        return container_status(await env.pod("live"), "app").get("restartCount") == 1
    await env.pump(restarted, step=0.2, what="restart after liveness failure")
    await kl.recorder.wait_for_idle()
    evs = await events_for(env, "live")
    assert ("Warning", "Unhealthy", "Liveness probe failed: dead") in evs
    assert ("Normal", "Killing", "Container app failed liveness probe, will be restarted") in evs


async def test_deletion_honours_the_grace_period_and_prestop(env: Env) -> None:
    await env.start()
    await env.client.create(PODS, make_pod("del", {"name": "app", "image": "busybox:1.36",
                                                   "lifecycle": {"preStop": {"exec": {"command": ["drain"]}}}},
                                           terminationGracePeriodSeconds=45), "default")
    await env.pump(running(env, "del"), step=0.2, what="del running")
    uid = (await env.pod("del"))["metadata"]["uid"]
    await env.client.delete(PODS, "del", "default", grace_period_seconds=20)

    async def gone() -> bool:
        try:
            await env.pod("del")
        except NotFound:
            return True
        return False
    await env.pump(gone, step=0.2, what="pod deleted by the kubelet")
    calls = env.runtime.calls
    names = [c[0] for c in calls]
    stop = next(c for c in calls if c[0] == "stop_container")
    hook = next(i for i, c in enumerate(calls) if c[0] == "exec_sync" and c[1][1] == ["drain"])
    assert hook < names.index("stop_container")
    assert 19 <= stop[1][1] <= 20  # the deletion grace period, minus the preStop hook's time
    await env.pump(lambda: "remove_sandbox" in env.runtime.call_names(), step=0.2, what="sandbox removed")
    assert not env.runtime.sandboxes and not (env.tmp / "kubelet" / "pods" / uid).exists()


async def test_restarted_kubelet_adopts_running_containers(env: Env) -> None:
    kl = await env.start()
    await env.client.create(PODS, make_pod("keep", {"name": "app", "image": "busybox:1.36"}), "default")
    await env.client.create(PODS, make_pod("orphan"), "default")
    await env.pump(running(env, "keep"), step=0.2, what="keep running")
    await env.pump(running(env, "orphan"), step=0.2, what="orphan running")
    # one restart so that the restart count must survive
    cid = container_status(await env.pod("keep"), "app")["containerID"].split("://")[1]
    env.runtime.set_exit(cid, 2)

    async def restarted() -> bool:
        cs = container_status(await env.pod("keep"), "app")
        return cs.get("restartCount") == 1 and "running" in cs.get("state", {})
    await env.pump(restarted, step=0.2, what="keep restarted once")
    before = await env.pod("keep")
    await env.stop(kl)
    await env.client.delete(PODS, "orphan", "default", grace_period_seconds=0)  # deleted while away
    creates = env.runtime.call_names().count("create_container")
    sandboxes = env.runtime.call_names().count("run_sandbox")

    kl2 = await env.start()
    await env.advance(5, step=0.5)
    await env.pump(lambda: kl2.orphans_removed == 1, step=0.5, what="orphan removed")
    assert env.runtime.call_names().count("create_container") == creates
    assert env.runtime.call_names().count("run_sandbox") == sandboxes
    after = await env.pod("keep")
    assert container_status(after, "app") == container_status(before, "app")
    assert container_status(after, "app")["restartCount"] == 1
    assert len(env.runtime.sandboxes) == 1
    assert kl2.locate("default", "keep", "app", previous=True).container_id == cid
    assert kl2.status_writes == 0  # the status it computes is the one already stored


async def test_image_pull_failure_then_back_off(env: Env) -> None:
    kl = await env.start()
    env.images.missing.add("nope:1")
    await env.client.create(PODS, make_pod("img", {"name": "app", "image": "nope:1"}), "default")

    async def reason() -> str:
        return (container_status(await env.pod("img"), "app").get("state", {}).get("waiting") or {}).get("reason", "")

    await env.pump(lambda: _eq(reason(), "ErrImagePull"), step=0.1, what="ErrImagePull")
    await env.pump(lambda: _eq(reason(), "ImagePullBackOff"), step=0.5, what="ImagePullBackOff")
    p = await env.pod("img")
    assert container_status(p, "app")["state"]["waiting"]["message"] == 'Back-off pulling image "nope:1"'
    assert p["status"]["phase"] == "Pending"
    pulls = len(env.images.pulls)
    env.images.missing.clear()
    await env.pump(running(env, "img"), step=0.5, what="pulled after the back-off")
    assert len(env.images.pulls) == pulls + 1
    await kl.recorder.wait_for_idle()
    evs = await events_for(env, "img")
    assert any(r == "Failed" and m.startswith('Failed to pull image "nope:1": ') for _, r, m in evs)
    assert ("Warning", "Failed", "Error: ErrImagePull") in evs
    assert ("Normal", "BackOff", 'Back-off pulling image "nope:1"') in evs


async def _eq(coro: Any, want: str) -> bool:
    return (await coro) == want


async def test_init_containers_config_errors_and_volumes(env: Env) -> None:
    await env.start()
    env.images.add("busybox:1.36")
    spec = {"initContainers": [{"name": "first", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent"},
                               {"name": "second", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent"}],
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}
    app = {"name": "app", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
           "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
           "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}
    await env.client.create(PODS, make_pod("init", app, **spec), "default")
    await env.advance(3)
    p = await env.pod("init")
    assert p["status"]["phase"] == "Pending"
    assert not env.runtime.call_names().count("create_container")  # waiting for the configMap volume
    await env.client.create(CONFIGMAPS, {"metadata": {"name": "settings"}, "data": {"mode": "fast"}}, "default")

    def started(name: str) -> bool:
        return any(c[0] == "create_container" and c[1][1].name == name for c in env.runtime.calls)

    await env.pump(lambda: started("first"), step=0.5, what="first init container")
    assert not started("second")
    first = next(cid for cid, c in env.runtime.containers.items() if c.config.name == "first")
    env.runtime.set_exit(first, 0)
    await env.pump(lambda: started("second"), step=0.3, what="second init container")
    second = next(cid for cid, c in env.runtime.containers.items() if c.config.name == "second")
    env.runtime.set_exit(second, 0)
    await env.pump(running(env, "init"), step=0.3, what="app running")
    cfg = next(c.config for c in env.runtime.containers.values() if c.config.name == "app")
    assert ("MODE", "fast") in cfg.env and ("HOSTNAME", "init") in cfg.env
    assert any(mnt.container_path == "/etc/cfg" for mnt in cfg.mounts)
    p = await env.pod("init")
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == [
        "Completed", "Completed"]
    assert condition(p, "Initialized")["status"] == "True"


async def test_missing_env_reference_is_a_config_error(env: Env) -> None:
    await env.start()
    app = {"name": "app", "image": "busybox:1.36",
           "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}
    await env.client.create(PODS, make_pod("cfgerr", app), "default")

    async def config_error() -> bool:
        w = container_status(await env.pod("cfgerr"), "app").get("state", {}).get("waiting") or {}
        return w.get("reason") == "CreateContainerConfigError" and w.get("message") == 'secret "absent" not found'
    await env.pump(config_error, step=0.2, what="CreateContainerConfigError")


async def test_job_pod_succeeds_and_keeps_its_containers_until_deleted(env: Env) -> None:
    await env.start()
    await env.client.create(PODS, make_pod("job", restartPolicy="Never"), "default")
    await env.pump(running(env, "job"), step=0.2, what="job running")
    cid = container_status(await env.pod("job"), "app")["containerID"].split("://")[1]
    env.runtime.set_exit(cid, 0)

    async def succeeded() -> bool:
        return (await env.pod("job"))["status"].get("phase") == "Succeeded"
    await env.pump(succeeded, step=0.3, what="Succeeded")
    p = await env.pod("job")
    assert condition(p, "Ready")["reason"] == "PodCompleted"
    assert container_status(p, "app")["state"]["terminated"]["reason"] == "Completed"
    await env.advance(3)
    assert cid in env.runtime.containers  # kept for `kubectl logs`
    await env.client.delete(PODS, "job", "default")

    async def gone() -> bool:
        try:
            await env.pod("job")
        except NotFound:
            return True
        return False
    await env.pump(gone, step=0.3, what="job pod deleted")
    await env.pump(lambda: cid not in env.runtime.containers, step=0.3, what="containers removed")


async def test_active_deadline(env: Env) -> None:
    await env.start()
    await env.client.create(PODS, make_pod("dl", activeDeadlineSeconds=5), "default")
    await env.pump(running(env, "dl"), step=0.2, what="dl running")

    async def failed() -> bool:
        st = (await env.pod("dl"))["status"]
        if st.get("phase") == "Failed":  # reported only once the containers were stopped
            assert all(c.status.state.value == "exited" for c in env.runtime.containers.values())
        return st.get("phase") == "Failed" and st.get("reason") == "DeadlineExceeded"
    await env.pump(failed, step=0.5, what="DeadlineExceeded")
    st = (await env.pod("dl"))["status"]
    assert st["message"] == "Pod was active on the node longer than the specified deadline"
    assert container_status(await env.pod("dl"), "app")["state"]["terminated"]["exitCode"] == 143


async def test_static_pods_run_and_are_mirrored(env: Env) -> None:
    manifests = env.tmp / "manifests"
    manifests.mkdir()
    (manifests / "etcd.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n"
        "spec:\n  containers:\n  - name: etcd\n    image: busybox:1.36\n")
    kl = await env.start(pod_manifest_path=manifests, static_check_interval=1.0)

    async def mirrored() -> bool:
        try:
            p = await env.client.get(PODS, f"etcd-{NODE}", "kube-system")
        except NotFound:
            return False
        return p.get("status", {}).get("phase") == "Running"
    await env.pump(mirrored, step=0.3, what="mirror pod running")
    mirror = await env.client.get(PODS, f"etcd-{NODE}", "kube-system")
    ann = mirror["metadata"]["annotations"]
    assert ann["kubernetes.io/config.mirror"] == ann["kubernetes.io/config.hash"]
    assert ann["kubernetes.io/config.source"] == "file"
    assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert kl.locate("kube-system", f"etcd-{NODE}", "etcd").container_id
    # a deleted mirror comes back; the static pod keeps running
    creates = env.runtime.call_names().count("create_container")
    await env.client.delete(PODS, f"etcd-{NODE}", "kube-system", grace_period_seconds=0)
    await env.pump(mirrored, step=0.3, what="mirror recreated")
    assert env.runtime.call_names().count("create_container") == creates
    # removing the manifest stops the pod and deletes the mirror
    (manifests / "etcd.yaml").unlink()

    async def mirror_gone() -> bool:
        try:
            await env.client.get(PODS, f"etcd-{NODE}", "kube-system")
        except NotFound:
            return True
        return False
    await env.pump(mirror_gone, step=0.3, what="mirror deleted")
    await env.pump(lambda: not env.runtime.sandboxes, step=0.3, what="static pod removed")


async def test_fallback_to_logs_termination_message(env: Env) -> None:
    await env.start()
    await env.client.create(PODS, make_pod("logs", {"name": "app", "image": "busybox:1.36",
                                                    "terminationMessagePolicy": "FallbackToLogsOnError"},
                                           restartPolicy="Never"), "default")
    await env.pump(running(env, "logs"), step=0.2, what="logs running")
    cid = container_status(await env.pod("logs"), "app")["containerID"].split("://")[1]
    env.runtime.write_log(cid, "starting\npanic: no config\n", stream="stderr")
    env.runtime.set_exit(cid, 2)

    async def failed() -> bool:
        return (await env.pod("logs"))["status"].get("phase") == "Failed"
    await env.pump(failed, step=0.3, what="Failed")
    term = container_status(await env.pod("logs"), "app")["state"]["terminated"]
    assert term["message"] == "starting\npanic: no config\n" and term["exitCode"] == 2


async def test_pod_cidr_from_the_node_and_service_account_tokens(env: Env) -> None:
    from kybernetes.client.resources import SERVICEACCOUNTS
    kl = await env.start()
    assert kl.current_pod_cidr() is None
    await env.client.patch(NODES, NODE, {"spec": {"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}})
    await env.pump(lambda: kl.current_pod_cidr() == "10.244.7.0/24", what="podCIDR seen")
    await env.client.create(PODS, make_pod("cidr"), "default")
    await env.pump(running(env, "cidr"), step=0.2, what="cidr running")
    cfg = next(c[1][0] for c in env.runtime.calls if c[0] == "run_sandbox")
    assert cfg.pod_cidr == "10.244.7.0/24" and cfg.hostname == "cidr"
    assert "nameserver 10.96.0.10" in cfg.resolv_conf and "search default.svc.cluster.local" in cfg.resolv_conf
    uid = (await env.pod("cidr"))["metadata"]["uid"]
    with contextlib.suppress(AlreadyExists):
        await env.client.create(SERVICEACCOUNTS, {"metadata": {"name": "default"}}, "default")
    token, expiry = await kl.request_token("default", "default", audiences=["api"], expiration_seconds=3600,
                                           pod_name="cidr", pod_uid=uid)
    assert token.count(".") == 2 and expiry > env.clock.wall().timestamp() - 60
    assert await kl.get_configmap("default", "absent") is None


async def test_missing_configmap_volume_gives_failed_mount_events(env: Env) -> None:
    kl = await env.start()
    await env.client.create(PODS, make_pod("mnt", volumes=[{"name": "cfg", "configMap": {"name": "nope"}}]),
                            "default")
    await env.advance(2)
    await kl.recorder.wait_for_idle()
    evs = await events_for(env, "mnt")
    assert ("Warning", "FailedMount", 'MountVolume.SetUp failed for volume "cfg" : configmap "nope" not found') in evs
    st = (await env.pod("mnt"))["status"]
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
