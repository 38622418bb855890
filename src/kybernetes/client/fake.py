"""A recording, in-memory stand-in for ``ApiClient`` (client-go ``testing/fixture.go``).

    client = FakeApiClient()
    client.seed(PODS, make_pod("web-1"))                  # not recorded
    await controller_under_test.sync("default/web-1")
    assert [a.verb for a in client.actions] == ["create"]

* Same methods and signatures as ``ApiClient`` (get, list, list_all, create, update,
  update_status, patch, patch_status, delete, delete_collection, watch, request, close).
* Objects get uid, resourceVersion (one global counter), creationTimestamp, generation; updates
  carrying a stale ``resourceVersion`` raise ``Conflict``; create of an existing name raises
  ``AlreadyExists``; missing objects raise ``NotFound``.
* Main-resource writes keep the stored ``status``; ``*_status`` writes change only ``status``.
  Patches: merge and json are exact; strategic and apply are applied as merge patches.
* ``create(PODS, binding, ns, subresource="binding", name=pod)`` sets ``spec.nodeName``;
  eviction deletes the pod. Other subresources just record and echo the body.
* Watches replay recorded history after the given resourceVersion (``Expired`` if it was trimmed)
  and then stream live changes, so informers and controllers run against the fake unchanged.
* ``prepend_reactor(verb, plural, fn)``: ``fn(action)`` may raise (inject errors) or return a
  result; return ``NOT_HANDLED`` to fall through to the default behaviour.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from ..api import errors as api_errors
from ..api import meta as m
from ..api.fields import parse_field_selector
from ..api.labels import parse_selector
from ..api.patch import json_patch, merge_patch
from ..api.resources import BUILTIN
from .errors import ApiError, error_from_status
from .keys import make_key
from .resources import Resource

Obj = dict[str, Any]
ObjList = list[Obj]
NOT_HANDLED = object()


@dataclass(frozen=True)
class Action:
    verb: str                     # get list create update patch delete deletecollection watch request
    resource: Resource | None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    body: Any = None
    patch_type: str | None = None
    method: str | None = None     # for verb "request"
    path: str | None = None


Reactor = Callable[[Action], Any]


def _raise(err: api_errors.StatusError) -> ApiError:
    return error_from_status(err.code, err.to_status())


def _has_status(res: Resource) -> bool:
    for info in BUILTIN:
        if info.group == res.group and info.plural == res.plural:
            return any(s.name == "status" for s in info.subresources)
    return True


class FakeApiClient:
    def __init__(self, *, history: int = 1000) -> None:
        self.actions: list[Action] = []
        self._objects: dict[tuple[str, str], dict[str, Obj]] = {}
        self._rv = 0
        self._history: deque[tuple[int, tuple[str, str], str, Obj]] = deque(maxlen=history)
        self._watchers: list[tuple[Resource, str | None, asyncio.Queue[tuple[str, Obj] | None]]] = []
        self._reactors: list[tuple[str, str, Reactor]] = []
        self.closed = False

    # -- test helpers -----------------------------------------------------------------------------
    def seed(self, res: Resource, obj: Obj) -> Obj:
        """Store an object without recording an action (returns the stored copy)."""
        return self._create(res, copy.deepcopy(obj), (obj.get("metadata") or {}).get("namespace"))

    def prepend_reactor(self, verb: str, plural: str, fn: Reactor) -> None:
        """``verb``/``plural`` may be ``"*"``."""
        self._reactors.insert(0, (verb, plural, fn))

    def clear_actions(self) -> None:
        self.actions.clear()

    def actions_for(self, verb: str | None = None, res: Resource | None = None) -> list[Action]:
        return [a for a in self.actions if (verb is None or a.verb == verb)
                and (res is None or a.resource == res)]

    def stored(self, res: Resource, name: str, namespace: str | None = None) -> Obj | None:
        obj = self._bucket(res).get(make_key(namespace if res.namespaced else None, name))
        return copy.deepcopy(obj) if obj is not None else None

    def stop_watches(self) -> None:
        """End every open watch (as a server timeout would)."""
        for _res, _ns, q in self._watchers:
            q.put_nowait(None)

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _rid(res: Resource) -> tuple[str, str]:
        return (res.group, res.plural)

    def _bucket(self, res: Resource) -> dict[str, Obj]:
        return self._objects.setdefault(self._rid(res), {})

    def _record(self, action: Action) -> Any:
        self.actions.append(action)
        plural = action.resource.plural if action.resource else ""
        for verb, p, fn in self._reactors:
            if verb in ("*", action.verb) and p in ("*", plural):
                result = fn(action)
                if result is not NOT_HANDLED:
                    return result
        return NOT_HANDLED

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _notify(self, res: Resource, typ: str, obj: Obj) -> None:
        self._history.append((self._rv, self._rid(res), typ, copy.deepcopy(obj)))
        for wres, ns, q in self._watchers:
            if self._rid(wres) == self._rid(res) and (not ns or ns == (obj["metadata"].get("namespace"))):
                q.put_nowait((typ, copy.deepcopy(obj)))

    def _key(self, res: Resource, namespace: str | None, name: str) -> str:
        if res.namespaced and not namespace:
            raise ValueError(f"{res}: a namespace is required")
        return make_key(namespace if res.namespaced else None, name)

    def _get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(res).get(self._key(res, namespace, name))
        if obj is None:
            raise _raise(api_errors.not_found(res.plural, res.group, name))
        return obj

    def _create(self, res: Resource, obj: Obj, namespace: str | None) -> Obj:
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            md["name"] = m.generate_name(md["generateName"])
        if not md.get("name"):
            raise _raise(api_errors.invalid(res.kind, res.group, "", [api_errors.required("metadata.name")]))
        ns = namespace or md.get("namespace")
        if res.namespaced:
            md["namespace"] = ns or "default"
        else:
            md.pop("namespace", None)
        key = self._key(res, md.get("namespace"), md["name"])
        bucket = self._bucket(res)
        if key in bucket:
            raise _raise(api_errors.already_exists(res.plural, res.group, md["name"]))
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        md["uid"] = md.get("uid") or m.new_uid()
        md["creationTimestamp"] = md.get("creationTimestamp") or m.now_rfc3339()
        md["generation"] = 1
        md["resourceVersion"] = self._next_rv()
        bucket[key] = obj
        self._notify(res, "ADDED", obj)
        return obj

    def _store_update(self, res: Resource, new: Obj, subresource: str | None) -> Obj:
        md = new.get("metadata") or {}
        cur = self._get(res, md.get("namespace"), md["name"])
        want_rv = md.get("resourceVersion")
        if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
            raise _raise(api_errors.conflict(res.plural, res.group, md["name"], api_errors.MODIFIED_DETAIL))
        if subresource == "status":
            out = copy.deepcopy(cur)
            if "status" in new:
                out["status"] = copy.deepcopy(new["status"])
        else:
            out = copy.deepcopy(new)
            for k in ("uid", "creationTimestamp", "namespace", "name"):
                if k in cur["metadata"]:
                    out["metadata"][k] = cur["metadata"][k]
            if _has_status(res):
                out.pop("status", None)
                if "status" in cur:
                    out["status"] = copy.deepcopy(cur["status"])
            gen = int(cur["metadata"].get("generation") or 1)
            changed = {k: v for k, v in out.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in cur.items() if k not in ("metadata", "status")}
            out["metadata"]["generation"] = gen + 1 if changed else gen
        if out == cur:
            return copy.deepcopy(cur)
        out["metadata"]["resourceVersion"] = self._next_rv()
        self._bucket(res)[self._key(res, md.get("namespace"), md["name"])] = out
        self._notify(res, "MODIFIED", out)
        return copy.deepcopy(out)

    def _delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        obj = self._get(res, namespace, name)
        del self._bucket(res)[self._key(res, namespace, name)]
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._notify(res, "DELETED", obj)
        return obj

    # -- the ApiClient surface --------------------------------------------------------------------
    async def close(self) -> None:
        self.closed = True
        self.stop_watches()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get(self, res: Resource, name: str, namespace: str | None = None, *,
                  subresource: str | None = None, params: Mapping[str, Any] | None = None) -> Obj:
        r = self._record(Action("get", res, namespace, name, subresource))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        return copy.deepcopy(self._get(res, namespace, name))

    def _select(self, res: Resource, namespace: str | None, label_selector: str | None,
                field_selector: str | None) -> list[Obj]:
        ls = parse_selector(label_selector) if label_selector else None
        fs = parse_field_selector(field_selector) if field_selector else None
        out = []
        for key in sorted(self._bucket(res)):
            obj = self._bucket(res)[key]
            if res.namespaced and namespace and obj["metadata"].get("namespace") != namespace:
                continue
            if ls and not ls.matches(obj["metadata"].get("labels")):
                continue
            if fs and not fs.matches(res.group, res.kind, obj):
                continue
            out.append(copy.deepcopy(obj))
        return out

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None,
                   resource_version: str | None = None,
                   resource_version_match: str | None = None) -> Obj:
        r = self._record(Action("list", res, namespace))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        items = self._select(res, namespace, label_selector, field_selector)
        start = int(continue_token or 0)
        md: Obj = {"resourceVersion": str(self._rv)}
        if limit and start + limit < len(items):
            md["continue"] = str(start + limit)
            items = items[start:start + limit]
        else:
            items = items[start:]
        return {"apiVersion": res.api_version, "kind": res.list_kind, "metadata": md, "items": items}

    async def list_all(self, res: Resource, namespace: str | None = None, *,
                       label_selector: str | None = None, field_selector: str | None = None,
                       page_size: int = 500) -> tuple[ObjList, str]:
        doc = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector)
        return list(doc["items"]), str(doc["metadata"]["resourceVersion"])

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     dry_run: bool = False, field_manager: str | None = None,
                     subresource: str | None = None, name: str | None = None) -> Obj:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        r = self._record(Action("create", res, ns, name or (obj.get("metadata") or {}).get("name"),
                                subresource, copy.deepcopy(obj)))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        if subresource:
            return self._create_subresource(res, ns, name or "", subresource, obj)
        if dry_run:
            return copy.deepcopy(obj)
        return copy.deepcopy(self._create(res, copy.deepcopy(obj), ns))

    def _create_subresource(self, res: Resource, ns: str | None, name: str, sub: str, body: Obj) -> Obj:
        if res.plural == "pods" and sub == "binding":
            pod = copy.deepcopy(self._get(res, ns, name))
            if (pod.get("spec") or {}).get("nodeName"):
                raise _raise(api_errors.conflict("pods", "", name, "pod is already assigned to a node"))
            pod.setdefault("spec", {})["nodeName"] = (body.get("target") or {}).get("name")
            pod["metadata"].pop("resourceVersion", None)
            self._store_update(res, pod, None)
            return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}
        if res.plural == "pods" and sub == "eviction":
            self._delete(res, ns, name)
            return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}
        return copy.deepcopy(body)

    async def update(self, res: Resource, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None) -> Obj:
        md = obj.get("metadata") or {}
        ns = namespace or md.get("namespace")
        r = self._record(Action("update", res, ns, md.get("name"), subresource, copy.deepcopy(obj)))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        new = copy.deepcopy(obj)
        if res.namespaced:
            new.setdefault("metadata", {})["namespace"] = ns
        if dry_run:
            return new
        return self._store_update(res, new, subresource)

    async def update_status(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        return await self.update(res, obj, namespace, subresource="status")

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None,
                    dry_run: bool = False) -> Obj:
        r = self._record(Action("patch", res, namespace, name, subresource, copy.deepcopy(patch), patch_type))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        cur = self._get(res, namespace, name)
        try:
            new = json_patch(cur, patch) if patch_type == "json" else merge_patch(cur, patch)
        except api_errors.StatusError as e:
            raise _raise(e) from None
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if dry_run:
            return dict(new)
        return self._store_update(res, new, subresource)

    async def patch_status(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
                           patch_type: str = "merge") -> Obj:
        return await self.patch(res, name, patch, namespace, patch_type=patch_type, subresource="status")

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None, dry_run: bool = False) -> Obj:
        body = {"propagationPolicy": propagation_policy, "gracePeriodSeconds": grace_period_seconds,
                "preconditions": dict(preconditions) if preconditions else None}
        r = self._record(Action("delete", res, namespace, name, None, body))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        cur = self._get(res, namespace, name)
        want_uid = (preconditions or {}).get("uid")
        if want_uid and want_uid != cur["metadata"].get("uid"):
            raise _raise(api_errors.conflict(res.plural, res.group, name, "Precondition failed: UID in precondition"))
        if dry_run:
            return copy.deepcopy(cur)
        return self._delete(res, namespace, name)

    async def delete_collection(self, res: Resource, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None) -> Obj:
        r = self._record(Action("deletecollection", res, namespace))
        if r is not NOT_HANDLED:
            return r  # type: ignore[no-any-return]
        gone = [self._delete(res, o["metadata"].get("namespace"), o["metadata"]["name"])
                for o in self._select(res, namespace, label_selector, field_selector)]
        return {"apiVersion": res.api_version, "kind": res.list_kind, "metadata": {}, "items": gone}

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, data: bytes | None = None, content_type: str = "application/json",
                      timeout: float | None = None, idempotent: bool | None = None,
                      raw: bool = False) -> Any:
        r = self._record(Action("request", None, body=copy.deepcopy(body), method=method.upper(), path=path))
        return None if r is NOT_HANDLED else r

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int = 300,
                    allow_bookmarks: bool = True,
                    inactivity_timeout: float = 90.0) -> AsyncGenerator[tuple[str, Obj], None]:
        r = self._record(Action("watch", res, namespace))
        if r is not NOT_HANDLED:
            raise AssertionError("watch reactors may only raise")
        since = int(resource_version or 0)
        oldest = self._history[0][0] if self._history else self._rv + 1
        if self._history and len(self._history) == self._history.maxlen and since < oldest - 1:
            raise _raise(api_errors.expired(f"too old resource version: {since} ({oldest - 1})"))
        ls = parse_selector(label_selector) if label_selector else None
        fs = parse_field_selector(field_selector) if field_selector else None

        def wanted(obj: Obj) -> bool:
            if res.namespaced and namespace and obj["metadata"].get("namespace") != namespace:
                return False
            if ls and not ls.matches(obj["metadata"].get("labels")):
                return False
            return not (fs and not fs.matches(res.group, res.kind, obj))

        q: asyncio.Queue[tuple[str, Obj] | None] = asyncio.Queue()
        for rv, rid, typ, obj in list(self._history):
            if rv > since and rid == self._rid(res):
                q.put_nowait((typ, copy.deepcopy(obj)))
        entry = (res, namespace if res.namespaced else None, q)
        self._watchers.append(entry)
        try:
            while True:
                ev = await q.get()
                if ev is None:
                    return
                if wanted(ev[1]):
                    yield ev
        finally:
            self._watchers.remove(entry)
