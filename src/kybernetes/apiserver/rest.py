"""The generic store: every REST verb implemented once for every resource.

Handlers parse HTTP; this module turns requests into store operations with Kubernetes
semantics: defaulting, validation, optimistic concurrency (resourceVersion = store revision),
generateName, finalizers and graceful deletion, status/spec split, managedFields, dry-run,
conversion between versions that share storage, and Service IP / NodePort allocation.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

from ..api import admission, storageclass
from ..api import apply as ssa
from ..api import conversion, crd as crdlib, defaults, errors, patch as patchlib, validation
from ..api import meta as m
from ..api import openapi_defs
from ..api.fields import FieldSelector, check_supported
from ..api.labels import Selector
from ..api.resources import ResourceInfo
from ..storage.errors import CompactedError, ConflictError, KeyExistsError, KeyNotFoundError, StoreError
from ..storage.interface import KeyValue, Store
from . import strategy
from .admission.chain import AdmissionChain
from .admission_sa import ServiceAccountAdmission
from .encryption.store import is_stale
from .registry import Registry
from .watchcache import WatchCache, decode_value

log = logging.getLogger(__name__)
Obj = dict[str, Any]

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
KUBERNETES_SERVICE_IP = "10.96.0.1"
NODEPORT_RANGE = (30000, 32767)
MAX_RETRIES = 32


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Strict"   # Strict | Warn | Ignore
    force: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListOptions:
    label_selector: Selector | None = None
    field_selector: FieldSelector | None = None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


def encode(obj: Obj) -> bytes:
    md = obj.get("metadata")
    if isinstance(md, dict) and "resourceVersion" in md:
        md = dict(md)
        md.pop("resourceVersion")
        obj = {**obj, "metadata": md}
    return orjson.dumps(obj)


def decode(kv: KeyValue) -> Obj:
    return decode_value(kv.value, kv.mod_revision)


def _now() -> str:
    return m.now_rfc3339()


def encode_continue(rev: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rev, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = orjson.loads(raw)
        return int(d["rv"]), str(d["start"])
    except Exception:  # noqa: BLE001 - any malformed token is a client error
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")


class ApiStore:
    def __init__(self, store: Store, registry: Registry, cache: WatchCache) -> None:
        self.store = store
        self.registry = registry
        self.cache = cache
        # Called after a CRD is written or deleted so the registry/discovery follow it.
        self.on_crd_change: Callable[[Obj | None, str], Awaitable[None]] | None = None
        self.service_account_admission = ServiceAccountAdmission(self)
        self.admission = AdmissionChain.default(self)

    # ---------------------------------------------------------------------------------------
    # helpers
    def _out(self, info: ResourceInfo, obj: Obj) -> Obj:
        """Stored object -> the version the request asked for."""
        if obj.get("apiVersion") != info.api_version:
            obj = conversion.convert(obj, info.api_version)
        if obj.get("kind") != info.kind:
            obj = {**obj, "kind": info.kind}
        return obj

    def _to_storage(self, info: ResourceInfo, obj: Obj) -> tuple[ResourceInfo, Obj]:
        sinfo = self.registry.storage_info(info)
        if info.storage_group is not None and info.storage_group != info.group:
            # events.k8s.io/v1 Event is stored as a core/v1 Event
            core = self.registry.lookup(info.storage_group, "v1", info.plural)
            if core is not None:
                sinfo = core
        if sinfo.api_version != obj.get("apiVersion"):
            obj = conversion.convert(obj, sinfo.api_version)
        return sinfo, obj

    def schema_of(self, info: ResourceInfo) -> dict[str, Any] | None:
        if info.custom:
            return info.schema
        return openapi_defs.schema_for(info.group, info.version, info.kind)

    async def _get_kv(self, info: ResourceInfo, ns: str, name: str) -> KeyValue:
        kv = await self.store.get(info.key(ns, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return kv

    # ---------------------------------------------------------------------------------------
    # input preparation: field validation, defaulting, validation
    def check_fields(self, info: ResourceInfo, obj: Obj, opts: WriteOptions) -> Obj:
        if info.custom:
            if info.schema is None or info.preserve_unknown:
                return obj
            unknown = crdlib.unknown_fields(info.schema, obj)
            if unknown and opts.field_validation == "Strict":
                raise errors.bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
            if unknown and opts.field_validation == "Warn":
                opts.warnings.extend(f'unknown field "{u}"' for u in unknown)
            return crdlib.prune(info.schema, obj)
        res = validation.check_schema(info.group, info.version, info.kind, obj)
        if res.type_errors:
            c = res.type_errors[0]
            raise errors.bad_request(f"{c.field}: {c.message}" if c.field else c.message, res.type_errors)
        if res.unknown_fields:
            if opts.field_validation == "Strict":
                raise errors.bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in res.unknown_fields))
            if opts.field_validation == "Warn":
                opts.warnings.extend(f'unknown field "{u}"' for u in res.unknown_fields)
            obj = validation.drop_unknown_fields(info.group, info.version, info.kind, obj)
        return obj

    def apply_defaults(self, info: ResourceInfo, obj: Obj) -> Obj:
        if info.custom:
            return crdlib.apply_schema_defaults(info.schema, obj) if info.schema is not None else obj
        defaults.apply_defaults(info.group, info.version, info.kind, obj)
        return obj

    def validate(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        name = m.name_of(obj)
        if info.custom:
            causes = validation.validate_object_meta(obj.get("metadata") or {}, info.namespaced, validation.DNS1123_SUBDOMAIN)
            if info.schema is not None:
                causes += crdlib.validate_custom_object(info.schema, obj)
        elif (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            causes = validation.validate(info.group, info.version, info.kind, obj, old) + crdlib.validate_crd(obj, old)
        else:
            causes = validation.validate(info.group, info.version, info.kind, obj, old)
        if causes:
            raise errors.invalid(info.kind, info.group, name, causes)

    def _managed(self, info: ResourceInfo, old: Obj | None, new: Obj, opts: WriteOptions, subresource: str = "") -> None:
        manager = opts.field_manager or "unknown"
        try:
            mf = ssa.update_managed_fields(
                old, new, manager=manager, api_version=info.api_version,
                schema=self.schema_of(info), now=_now(), subresource=subresource,
            )
        except errors.StatusError:
            raise
        except Exception:  # noqa: BLE001 - bookkeeping must never fail a write
            log.exception("managedFields update failed for %s", info.kind)
            return
        if mf:
            m.meta(new)["managedFields"] = mf
        else:
            m.meta(new).pop("managedFields", None)

    # ---------------------------------------------------------------------------------------
    # reads
    async def get(self, info: ResourceInfo, ns: str, name: str, resource_version: str | None = None) -> Obj:
        rev = 0
        if resource_version and resource_version != "0":
            rev = _parse_rv(resource_version)
        try:
            kv = await self.store.get(info.key(ns, name), revision=rev) if rev else await self.store.get(info.key(ns, name))
        except CompactedError as e:
            raise errors.expired(f"too old resource version: {e.requested} ({e.compacted})")
        except StoreError as e:
            raise _store_error(e)
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return self._out(info, decode(kv))

    async def list(self, info: ResourceInfo, ns: str, opts: ListOptions) -> tuple[list[Obj], Obj]:
        if opts.field_selector is not None:
            check_supported(opts.field_selector, info.group, info.kind)
        prefix = info.key_prefix(ns if info.namespaced else None)
        rev = 0
        start_after: str | None = None
        if opts.continue_token:
            if opts.resource_version not in (None, ""):
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            rev, start_after = decode_continue(opts.continue_token)
            start_after = prefix + start_after if not start_after.startswith("/") else start_after
        elif opts.resource_version_match:
            if opts.resource_version in (None, ""):
                raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
            if opts.resource_version_match not in ("NotOlderThan", "Exact"):
                raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{opts.resource_version_match}": supported values: "Exact", "NotOlderThan"')
            if opts.resource_version_match == "Exact":
                if opts.resource_version == "0":
                    raise errors.bad_request("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
                rev = _parse_rv(opts.resource_version or "")
        elif opts.resource_version not in (None, "", "0") and opts.limit:
            rev = _parse_rv(opts.resource_version or "")  # legacy quirk: exact when limit is set
        elif opts.resource_version not in (None, "", "0"):
            _parse_rv(opts.resource_version or "")
        items: list[Obj] = []
        limit = opts.limit
        more = False
        last_key = ""
        try:
            while True:
                want = (limit - len(items)) if limit else 0
                page = await self.store.list(prefix, revision=rev, limit=max(want, 0) if limit else 0, start_after=start_after)
                rev = page.revision
                for kv in page.items:
                    last_key = kv.key
                    obj = decode(kv)
                    if opts.label_selector is not None and not opts.label_selector.matches((obj.get("metadata") or {}).get("labels")):
                        continue
                    if opts.field_selector is not None and not opts.field_selector.matches(info.group, info.kind, self._out(info, obj)):
                        continue
                    items.append(obj)
                if not page.more:
                    more = False
                    break
                start_after = last_key
                if limit and len(items) >= limit:
                    more = True
                    break
        except CompactedError:
            if opts.continue_token:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
                )
            raise errors.expired(f"too old resource version: {rev}")
        except StoreError as e:
            raise _store_error(e)
        list_meta: Obj = {"resourceVersion": str(rev)}
        if more:
            list_meta["continue"] = encode_continue(rev, last_key[len(prefix):] if last_key.startswith(prefix) else last_key)
        return [self._out(info, o) for o in items], list_meta

    # ---------------------------------------------------------------------------------------
    # create
    async def create(self, info: ResourceInfo, ns: str, obj: Obj, opts: WriteOptions, *, record_managed: bool = True) -> Obj:
        md = m.meta(obj)
        if info.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        obj = self.check_fields(info, obj, opts)
        md = m.meta(obj)
        generated = False
        if not md.get("name") and md.get("generateName"):
            md["name"] = m.generate_name(str(md["generateName"]))
            generated = True
        obj = self.apply_defaults(info, obj)
        if (info.group, info.kind) == ("", "Pod"):
            admission.default_toleration_seconds(obj)
            await self.service_account_admission.admit_pod(ns, obj, generated_name=generated)
        if (info.group, info.kind) == ("", "PersistentVolumeClaim"):
            sc_info = self.registry.lookup("storage.k8s.io", "v1", "storageclasses")
            if sc_info is not None:  # DefaultStorageClass admission
                classes, _ = await self.list(sc_info, "", ListOptions())
                storageclass.apply_default_storage_class(obj, classes)
        attrs = self.admission.attributes(info, "CREATE", ns, m.name_of(obj), obj=obj, dry_run=opts.dry_run,
                                          options=_write_options(opts), warnings=opts.warnings)
        obj = await self.admission.mutate(attrs) or obj
        strategy.prepare_for_create(info, obj, _now())
        if (info.group, info.kind) == ("batch", "Job"):
            admission.default_job_selector(obj)  # needs the uid
        if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            crdlib.default_crd(obj)
        self.validate(info, obj, None)
        if record_managed:
            self._managed(info, None, obj, opts)
        attrs.obj = obj
        await self.admission.validate(attrs)
        if (info.group, info.kind) == ("", "Service"):
            if not generated and await self.store.get(info.key(ns, m.name_of(obj))) is not None:
                raise errors.already_exists(info.plural, info.group, m.name_of(obj))
            await self._allocate_service(obj, None, opts.dry_run)
        if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            obj["status"] = crdlib.crd_status(obj, _now())
            fins = m.meta(obj).setdefault("finalizers", [])
            if "customresourcecleanup.apiextensions.k8s.io" not in fins:
                fins.append("customresourcecleanup.apiextensions.k8s.io")
        if opts.dry_run:
            return self._out(info, obj)
        sinfo, stored = self._to_storage(info, obj)
        for attempt in range(8):
            try:
                kv = await self.store.create(sinfo.key(ns, m.name_of(stored)), encode(stored))
                break
            except KeyExistsError:
                if generated and attempt < 7:
                    m.meta(stored)["name"] = m.meta(obj)["name"] = m.generate_name(str(md["generateName"]))
                    continue
                if (info.group, info.kind) == ("", "Service"):
                    await self._release_service(obj)
                raise errors.already_exists(info.plural, info.group, m.name_of(obj))
            except StoreError as e:
                if (info.group, info.kind) == ("", "Service"):
                    await self._release_service(obj)
                raise _store_error(e)
        out = decode(kv)
        if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") and self.on_crd_change:
            await self.on_crd_change(out, "upsert")
        return self._out(info, out)

    # ---------------------------------------------------------------------------------------
    # update / patch (guaranteed update loop)
    async def guaranteed_update(
        self,
        info: ResourceInfo,
        ns: str,
        name: str,
        try_update: Callable[[Obj | None], Obj],
        opts: WriteOptions,
        *,
        subresource: str = "",
        allow_create: bool = False,
        record_managed: bool = True,
    ) -> tuple[Obj, bool]:
        """Read, compute the new object with ``try_update(current)`` and write it with a
        compare-and-swap on the revision read, retrying on conflict. ``try_update`` raises
        StatusError to refuse (e.g. a user precondition failed); it gets None when the object
        does not exist and ``allow_create`` is set. Returns (object, created)."""
        sinfo = self.registry.storage_info(info)
        key = info.key(ns, name)
        for _ in range(MAX_RETRIES):
            try:
                kv = await self.store.get(key)
            except StoreError as e:
                raise _store_error(e)
            if kv is None:
                if not allow_create:
                    raise errors.not_found(info.plural, info.group, name)
                new = try_update(None)
                return await self.create(info, ns, new, opts, record_managed=record_managed), True
            current = self._out(info, decode(kv))
            # a second decode is the cheapest private copy for try_update (several times faster
            # than copy.deepcopy of the same JSON tree)
            new = try_update(self._out(info, decode(kv)))
            new = await self._finish_update(info, ns, name, new, current, opts, subresource, record_managed)
            if new is None:  # object gone after its last finalizer was removed
                try:
                    return await self._delete_now(info, ns, name, kv, current, opts), False
                except ConflictError:
                    continue
            if _same(new, current) and not is_stale(kv):  # stale: read with an old encryption key
                return current, False
            if opts.dry_run:
                return new, False
            _, stored = self._to_storage(info, new)
            try:
                kv2 = await self.store.update(sinfo.key(ns, name) if info.namespaced else key, encode(stored), expected_revision=kv.mod_revision)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(info.plural, info.group, name)
            except StoreError as e:
                raise _store_error(e)
            out = decode(kv2)
            if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") and self.on_crd_change:
                await self.on_crd_change(out, "upsert")
            return self._out(info, out), False
        raise errors.conflict(info.plural, info.group, name, errors.MODIFIED_DETAIL)

    async def _finish_update(
        self, info: ResourceInfo, ns: str, name: str, new: Obj, current: Obj, opts: WriteOptions, subresource: str,
        record_managed: bool = True,
    ) -> Obj | None:
        md = m.meta(new)
        cur_md = current.get("metadata") or {}
        if md.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})")
        if info.namespaced and md.get("namespace", ns) != ns:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        md["name"] = name
        if info.namespaced:
            md["namespace"] = ns
        if md.get("uid") and md["uid"] != cur_md.get("uid"):
            raise errors.conflict(info.plural, info.group, name, f"Precondition failed: UID in precondition: {md['uid']}, UID in object meta: {cur_md.get('uid')}")
        rv = md.get("resourceVersion")
        if rv and rv != cur_md.get("resourceVersion"):
            raise errors.conflict(info.plural, info.group, name, errors.MODIFIED_DETAIL)
        md["resourceVersion"] = cur_md.get("resourceVersion")
        new["apiVersion"] = info.api_version
        new["kind"] = info.kind
        new = self.check_fields(info, new, opts)
        new = self.apply_defaults(info, new)
        attrs = self.admission.attributes(info, "UPDATE", ns, name, obj=new, old=current, subresource=subresource,
                                          dry_run=opts.dry_run, options=_write_options(opts), warnings=opts.warnings)
        new = await self.admission.mutate(attrs) or new
        strategy.prepare_for_update(info, new, current, subresource)
        md = m.meta(new)
        # terminating objects: finalizers may only be removed
        if cur_md.get("deletionTimestamp"):
            old_f = set(cur_md.get("finalizers") or [])
            new_f = set(md.get("finalizers") or [])
            if new_f - old_f:
                raise errors.invalid(info.kind, info.group, name, [errors.forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted")])
            # gone once nothing holds it (a namespace also waits for its spec.finalizers)
            ns_held = (info.group, info.kind) == ("", "Namespace") and (new.get("spec") or {}).get("finalizers")
            if not new_f and not ns_held:
                return None
        if (info.group, info.kind) == ("", "Service"):
            # filled in below; a status write shares the spec with ``current``: take a private copy
            new["spec"] = copy.deepcopy(new.get("spec") or {})
            _keep_cluster_ip(new, current)
        if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") and subresource != "status":
            crdlib.default_crd(new)
            new["status"] = crdlib.crd_status(new, _now())
        self.validate(info, new, current)
        if record_managed:
            self._managed(info, current, new, opts, subresource)
        attrs.obj = new
        await self.admission.validate(attrs)
        if (info.group, info.kind) == ("", "Service"):
            await self._allocate_service(new, current, opts.dry_run)
        return new

    async def update(self, info: ResourceInfo, ns: str, name: str, body: Obj, opts: WriteOptions, subresource: str = "") -> tuple[Obj, bool]:
        def try_update(current: Obj | None) -> Obj:
            return orjson.loads(orjson.dumps(body))  # a private copy per attempt (faster than deepcopy)

        return await self.guaranteed_update(info, ns, name, try_update, opts, subresource=subresource)

    async def patch(
        self, info: ResourceInfo, ns: str, name: str, content_type: str, patch: Any, opts: WriteOptions, subresource: str = ""
    ) -> tuple[Obj, bool]:
        schema = self.schema_of(info)
        is_apply = content_type == "application/apply-patch+yaml"
        if is_apply:
            if not opts.field_manager:
                raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
            if not isinstance(patch, dict):
                raise errors.bad_request("the body of an apply patch must be an object")
            if patch.get("apiVersion") not in (None, info.api_version) or patch.get("kind") not in (None, info.kind):
                raise errors.bad_request(f"the API version in the data ({patch.get('apiVersion')}) does not match the expected API version ({info.api_version})")
            pmd = patch.get("metadata") or {}
            if pmd.get("name") not in (None, name):
                raise errors.bad_request(f"the name of the object ({pmd.get('name')}) does not match the name on the URL ({name})")

        def try_update(current: Obj | None) -> Obj:
            if content_type == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise errors.bad_request("json patch must be a list of operations")
                return patchlib.json_patch(current, patch)
            if content_type == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise errors.bad_request("merge patch must be a JSON object")
                return patchlib.merge_patch(current, patch)
            if content_type == "application/strategic-merge-patch+json":
                if info.custom:
                    raise errors.StatusError(415, "UnsupportedMediaType", f"strategic merge patch is not supported for {info.qualified}")
                if not isinstance(patch, dict):
                    raise errors.bad_request("strategic merge patch must be a JSON object")
                return patchlib.strategic_merge_patch(current, patch, schema)
            if is_apply:
                applied = copy.deepcopy(patch)
                applied.setdefault("apiVersion", info.api_version)
                applied.setdefault("kind", info.kind)
                amd = applied.setdefault("metadata", {})
                amd.setdefault("name", name)
                if info.namespaced:
                    amd.setdefault("namespace", ns)
                try:
                    return ssa.apply(current, applied, manager=opts.field_manager, force=opts.force,
                                     api_version=info.api_version, schema=schema, now=_now(),
                                     subresource=subresource, ignore_status=info.has_status or not info.custom)
                except errors.StatusError as e:
                    if e.code >= 500:  # a malformed applied configuration is the client's error
                        raise errors.bad_request(e.message)
                    raise
            raise errors.StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type!r})")

        if is_apply:
            # SSA records its own managedFields entry; don't also record an Update entry.
            return await self.guaranteed_update(info, ns, name, try_update, opts, subresource=subresource,
                                                allow_create=True, record_managed=False)
        return await self.guaranteed_update(info, ns, name, try_update, opts, subresource=subresource)

    # ---------------------------------------------------------------------------------------
    # delete
    async def delete(self, info: ResourceInfo, ns: str, name: str, options: Obj, dry_run: bool) -> tuple[Obj, bool]:
        """Returns (object, deleted_now). deleted_now False means it is terminating."""
        precond = options.get("preconditions") or {}
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True and not policy:
            policy = "Orphan"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", "", [errors.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan"])])
        grace = options.get("gracePeriodSeconds")
        key = info.key(ns, name)
        admitted = False
        for _ in range(MAX_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise errors.not_found(info.plural, info.group, name)
            cur = self._out(info, decode(kv))
            cmd = cur["metadata"]
            if precond.get("uid") and precond["uid"] != cmd.get("uid"):
                raise errors.conflict(info.plural, info.group, name, f"Precondition failed: UID in precondition: {precond['uid']}, UID in object meta: {cmd.get('uid')}")
            if precond.get("resourceVersion") and precond["resourceVersion"] != cmd.get("resourceVersion"):
                raise errors.conflict(info.plural, info.group, name, f"Precondition failed: ResourceVersion in precondition: {precond['resourceVersion']}, ResourceVersion in object meta: {cmd.get('resourceVersion')}")
            if not admitted:
                attrs = self.admission.attributes(info, "DELETE", ns, name, old=cur, dry_run=dry_run, options=options)
                await self.admission.mutate(attrs)
                await self.admission.validate(attrs)
                admitted = True
            finalizers = list(cmd.get("finalizers") or [])
            want = list(finalizers)
            if policy == "Foreground" and "foregroundDeletion" not in want:
                want.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in want:
                want.append("orphan")
            graceful_pod = False
            if (info.group, info.kind) == ("", "Pod"):
                if grace is None:
                    grace = (cur.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                graceful_pod = bool((cur.get("spec") or {}).get("nodeName")) and not strategy.is_terminal_pod(cur) and int(grace or 0) > 0
            if (info.group, info.kind) == ("", "Namespace"):
                want_ns = True
            else:
                want_ns = False
            if (not want and not graceful_pod and not want_ns) or (
                    want_ns and not (cur.get("spec") or {}).get("finalizers") and not want):
                try:
                    return await self._delete_now(info, ns, name, kv, cur, WriteOptions(dry_run=dry_run)), True
                except ConflictError:
                    continue  # written meanwhile (a controller's status update): read it again
            new = copy.deepcopy(cur)
            nmd = new["metadata"]
            now = dt.datetime.now(dt.timezone.utc)
            if not nmd.get("deletionTimestamp"):
                g = int(grace or 0) if graceful_pod else 0
                nmd["deletionTimestamp"] = m.now_rfc3339(now + dt.timedelta(seconds=g))
                nmd["deletionGracePeriodSeconds"] = g
            elif graceful_pod and grace is not None and int(grace) < int(nmd.get("deletionGracePeriodSeconds") or 0):
                nmd["deletionTimestamp"] = m.now_rfc3339(now + dt.timedelta(seconds=int(grace)))
                nmd["deletionGracePeriodSeconds"] = int(grace)
            if want:
                nmd["finalizers"] = want
            if want_ns:
                new.setdefault("status", {})["phase"] = "Terminating"
            if _same(new, cur):
                return cur, False
            if dry_run:
                return new, False
            _, stored = self._to_storage(info, new)
            try:
                kv2 = await self.store.update(key, encode(stored), expected_revision=kv.mod_revision)
            except ConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(info.plural, info.group, name)
            out = self._out(info, decode(kv2))
            if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") and self.on_crd_change:
                await self.on_crd_change(out, "terminating")
            return out, False
        raise errors.conflict(info.plural, info.group, name, errors.MODIFIED_DETAIL)

    async def _delete_now(self, info: ResourceInfo, ns: str, name: str, kv: KeyValue, cur: Obj, opts: WriteOptions) -> Obj:
        """Remove the object at revision ``kv.mod_revision`` (ConflictError if it changed since)."""
        if opts.dry_run:
            return cur
        try:
            dkv = await self.store.delete(kv.key, expected_revision=kv.mod_revision)
        except KeyNotFoundError:
            raise errors.not_found(info.plural, info.group, name)
        out = self._out(info, decode(dkv))
        if (info.group, info.kind) == ("", "Service"):
            await self._release_service(cur)
        if (info.group, info.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition") and self.on_crd_change:
            await self.on_crd_change(out, "deleted")
        return out

    async def delete_collection(self, info: ResourceInfo, ns: str, lopts: ListOptions, options: Obj, dry_run: bool) -> tuple[list[Obj], Obj]:
        items, list_meta = await self.list(info, ns, lopts)
        out = []
        for it in items:
            try:
                obj, _ = await self.delete(info, m.namespace_of(it) or ns, m.name_of(it), options, dry_run)
                out.append(obj)
            except errors.StatusError as e:
                if e.code != 404:
                    raise
        return out, list_meta

    # ---------------------------------------------------------------------------------------
    # Service IPs and NodePorts, allocated as keys so concurrent API servers cannot collide.
    async def _claim(self, key: str, dry_run: bool) -> bool:
        if dry_run:
            return await self.store.get(key) is None
        try:
            await self.store.create(key, b"{}")
            return True
        except KeyExistsError:
            return False

    async def _free(self, key: str) -> None:
        try:
            await self.store.delete(key)
        except KeyNotFoundError:
            pass

    async def _allocate_service(self, svc: Obj, old: Obj | None, dry_run: bool) -> None:
        spec = svc.setdefault("spec", {})
        typ = spec.get("type", "ClusterIP")
        name = m.name_of(svc)
        if typ == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif old is None or not (old.get("spec") or {}).get("clusterIP"):
            want = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
            if want == "None":
                spec["clusterIP"] = "None"
                spec["clusterIPs"] = ["None"]
            elif want:
                try:
                    ip = ipaddress.ip_address(want)
                except ValueError:
                    raise errors.invalid("Service", "", name, [errors.invalid_value("spec.clusterIPs[0]", want, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")])
                if ip not in SERVICE_CIDR:
                    raise errors.invalid("Service", "", name, [errors.invalid_value("spec.clusterIPs", [want], f"failed to allocate IP {want}: the provided IP ({want}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}")])
                if not await self._claim(f"/registry/ranges/serviceips/{want}", dry_run):
                    raise errors.invalid("Service", "", name, [errors.invalid_value("spec.clusterIPs", [want], f"failed to allocate IP {want}: provided IP is already allocated")])
                spec["clusterIP"] = want
                spec["clusterIPs"] = [want]
            else:
                for _ in range(64):
                    cand = str(SERVICE_CIDR[random.randint(16, SERVICE_CIDR.num_addresses - 2)])
                    if await self._claim(f"/registry/ranges/serviceips/{cand}", dry_run):
                        spec["clusterIP"] = cand
                        spec["clusterIPs"] = [cand]
                        break
                else:
                    raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")
            if spec.get("clusterIP") and spec["clusterIP"] != "None":
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            elif spec.get("clusterIP") == "None":
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
        # node ports
        old_ports = {p.get("nodePort") for p in ((old or {}).get("spec") or {}).get("ports") or [] if p.get("nodePort")}
        needs = typ in ("NodePort", "LoadBalancer")
        taken: set[int] = set()
        for i, p in enumerate(spec.get("ports") or []):
            np_ = p.get("nodePort")
            if not needs:
                p.pop("nodePort", None)
                continue
            if np_:
                if np_ in taken:
                    raise errors.invalid("Service", "", name, [errors.duplicate(f"spec.ports[{i}].nodePort", np_)])
                if np_ not in old_ports:
                    if not (NODEPORT_RANGE[0] <= int(np_) <= NODEPORT_RANGE[1]):
                        raise errors.invalid("Service", "", name, [errors.invalid_value(f"spec.ports[{i}].nodePort", np_, f"provided port is not in the valid range. The range of valid ports is {NODEPORT_RANGE[0]}-{NODEPORT_RANGE[1]}")])
                    if not await self._claim(f"/registry/ranges/servicenodeports/{np_}", dry_run):
                        raise errors.invalid("Service", "", name, [errors.invalid_value(f"spec.ports[{i}].nodePort", np_, "provided port is already allocated")])
                taken.add(int(np_))
                continue
            for _ in range(128):
                cand = random.randint(*NODEPORT_RANGE)
                if cand not in taken and await self._claim(f"/registry/ranges/servicenodeports/{cand}", dry_run):
                    p["nodePort"] = cand
                    taken.add(cand)
                    break
            else:
                raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")
        if needs:
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if old is not None and not dry_run:
            for p in old_ports - taken:
                await self._free(f"/registry/ranges/servicenodeports/{p}")

    async def repair_allocations(self) -> int:
        """Free IP and NodePort claims that no Service holds (left by a crash between the claim and
        the Service write). Returns how many were freed."""
        used: set[str] = set()
        page = await self.store.list("/registry/services/")
        for kv in page.items:
            spec = decode(kv).get("spec") or {}
            for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
                used.add(f"/registry/ranges/serviceips/{ip}")
            for p in spec.get("ports") or []:
                if p.get("nodePort"):
                    used.add(f"/registry/ranges/servicenodeports/{p['nodePort']}")
        freed = 0
        for prefix in ("/registry/ranges/serviceips/", "/registry/ranges/servicenodeports/"):
            claims = await self.store.list(prefix, revision=page.revision)
            for kv in claims.items:
                if kv.key not in used:
                    try:
                        await self.store.delete(kv.key, expected_revision=kv.mod_revision)
                        freed += 1
                    except StoreError:
                        pass
        return freed

    async def _release_service(self, svc: Obj) -> None:
        spec = svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if ip and ip != "None":
                await self._free(f"/registry/ranges/serviceips/{ip}")
        for p in spec.get("ports") or []:
            if p.get("nodePort"):
                await self._free(f"/registry/ranges/servicenodeports/{p['nodePort']}")


def _keep_cluster_ip(new: Obj, old: Obj) -> None:
    ospec = old.get("spec") or {}
    nspec = new.setdefault("spec", {})
    if ospec.get("clusterIP") and not nspec.get("clusterIP") and nspec.get("type") != "ExternalName":
        nspec["clusterIP"] = ospec["clusterIP"]
        nspec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
    elif ospec.get("clusterIP") and nspec.get("clusterIP") and nspec["clusterIP"] != ospec["clusterIP"] and nspec.get("type") != "ExternalName" and ospec.get("type") != "ExternalName":
        raise errors.invalid("Service", "", m.name_of(new), [errors.invalid_value("spec.clusterIPs[0]", nspec["clusterIP"], "may not change once set")])
    if not nspec.get("clusterIPs") and nspec.get("clusterIP"):
        nspec["clusterIPs"] = [nspec["clusterIP"]]
    for key in ("ipFamilies", "ipFamilyPolicy"):
        if key in ospec and key not in nspec:
            nspec[key] = ospec[key]
    # keep allocated node ports of ports that still exist
    old_np = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in ospec.get("ports") or []}
    for p in nspec.get("ports") or []:
        if not p.get("nodePort") and old_np.get((p.get("port"), p.get("protocol", "TCP"))):
            p["nodePort"] = old_np[(p.get("port"), p.get("protocol", "TCP"))]


def _write_options(opts: WriteOptions) -> Obj:
    """The Create/UpdateOptions fields admission webhooks see."""
    return {"fieldManager": opts.field_manager} if opts.field_manager else {}


def _same(a: Obj, b: Obj) -> bool:
    return a == b


def _parse_rv(rv: str) -> int:
    try:
        v = int(rv)
        if v < 0:
            raise ValueError
        return v
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"' if rv else "resourceVersion must be set")


def _store_error(e: StoreError) -> errors.StatusError:
    from ..storage.errors import UnavailableError

    if isinstance(e, UnavailableError):
        return errors.unavailable(f"storage is unavailable: {e}")
    if isinstance(e, CompactedError):
        return errors.expired(f"too old resource version: {e.requested} ({e.compacted})")
    return errors.internal(str(e))
