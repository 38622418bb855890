"""The chain: order, phases, what a plugin handles, request users, forbidden messages."""

from __future__ import annotations

from typing import Any, ClassVar

from kybernetes.api.resources import BUILTIN
from kybernetes.apiserver.admission import chain as ch
from tests.conftest import ApiClient

Obj = dict[str, Any]
PODS = next(i for i in BUILTIN if i.plural == "pods" and i.group == "")


class Recorder(ch.Plugin):
    """Records the calls it gets."""

    operations: ClassVar[frozenset[str]] = frozenset({ch.CREATE})
    resources: ClassVar[frozenset[tuple[str, str]] | None] = frozenset({("", "pods")})
    mutating = True
    validating = True

    def __init__(self, name: str, log: list[str]) -> None:
        self.NAME = name  # type: ignore[misc]
        self.log = log

    async def admit(self, attrs: ch.Attributes) -> None:
        self.log.append(f"{self.NAME}.admit")

    async def validate(self, attrs: ch.Attributes) -> None:
        self.log.append(f"{self.NAME}.validate")


async def test_mutating_before_validating_and_insert_order() -> None:
    log: list[str] = []
    chain = ch.AdmissionChain([Recorder("A", log), Recorder("ResourceQuota", log)])
    chain.insert(Recorder("B", log))
    attrs = chain.attributes(PODS, ch.CREATE, "default", "p", obj={"metadata": {"name": "p"}})
    await chain.mutate(attrs)
    await chain.validate(attrs)
    assert log == ["A.admit", "B.admit", "ResourceQuota.admit", "A.validate", "B.validate", "ResourceQuota.validate"]
    log.clear()
    await chain.mutate(chain.attributes(PODS, ch.UPDATE, "default", "p", obj={}))
    await chain.mutate(chain.attributes(PODS, ch.CREATE, "default", "p", obj={}, subresource="status"))
    assert log == []   # not an operation / subresource the plugins handle


def test_user_info_and_forbidden_text() -> None:
    assert ch.user_info(None) == {"username": "system:apiserver", "groups": ["system:masters", "system:authenticated"]}
    assert ch.user_info({"name": "alice", "groups": ["dev"], "uid": "1", "extra": {"k": ("v",)}}) == \
        {"username": "alice", "groups": ["dev"], "uid": "1", "extra": {"k": ["v"]}}
    token = ch.request_user.set({"name": "bob", "groups": []})
    try:
        attrs = ch.AdmissionChain([]).attributes(PODS, ch.CREATE, "ns", "p")
    finally:
        ch.request_user.reset(token)
    assert attrs.user["username"] == "bob"
    e = ch.forbidden(attrs, "no")
    assert (e.code, e.reason, e.message, e.details) == (403, "Forbidden", 'pods "p" is forbidden: no', {"name": "p", "kind": "pods"})
    assert ch.aggregate(["a"]) == "a" and ch.aggregate(["a", "b", "a"]) == "[a, b]"


async def test_every_write_verb_is_admitted(api: ApiClient) -> None:
    """create, update, patch, status writes and deletes all pass through the chain (dry-run too)."""
    log: list[tuple[str, str, str, bool]] = []

    class Spy(ch.Plugin):
        NAME = "Spy"
        subresources = None
        validating = True

        async def validate(self, attrs: ch.Attributes) -> None:
            if attrs.is_("", "configmaps") or attrs.is_("", "pods"):
                log.append((attrs.operation, attrs.resource, attrs.subresource, attrs.dry_run))

    api.server.api.admission.insert(Spy())
    cm = {"metadata": {"name": "c"}}
    assert (await api.post("/api/v1/namespaces/default/configmaps", cm))[0] == 201
    assert (await api.put("/api/v1/namespaces/default/configmaps/c", {**cm, "data": {"a": "1"}}))[0] == 200
    assert (await api.patch("/api/v1/namespaces/default/configmaps/c?dryRun=All", {"data": {"a": "2"}}))[0] == 200
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert (await api.post("/api/v1/namespaces/default/pods", pod))[0] == 201
    assert (await api.patch("/api/v1/namespaces/default/pods/p/status", {"status": {"phase": "Running"}}))[0] == 200
    assert (await api.delete("/api/v1/namespaces/default/configmaps/c"))[0] == 200
    assert log == [("CREATE", "configmaps", "", False), ("UPDATE", "configmaps", "", False), ("UPDATE", "configmaps", "", True),
                   ("CREATE", "pods", "", False), ("UPDATE", "pods", "status", False), ("DELETE", "configmaps", "", False)]
