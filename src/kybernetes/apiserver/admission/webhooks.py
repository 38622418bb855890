"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: call HTTPS webhooks with AdmissionReview.

Configurations are ``admissionregistration.k8s.io/v1`` MutatingWebhookConfiguration /
ValidatingWebhookConfiguration objects (read through a :class:`~.cache.PrefixCache`); the pure
rules (matching, the review body, response checks, error texts) are in :mod:`.webhook_rules`.

* Mutating webhooks run one after another (configurations by name); a ``JSONPatch`` response is
  applied to the object (then defaulted again). With ``reinvocationPolicy: IfNeeded`` a webhook
  is called once more when a later webhook changed the object.
* Validating webhooks run concurrently; the first refusal (in webhook order) is returned.
* A refusal becomes the webhook's status: ``admission webhook "x" denied the request: <message>``
  with its code (400 when it gives none).
* A failed call (connection, TLS, timeout, invalid response) follows ``failurePolicy``: ``Ignore``
  admits, ``Fail`` answers 500 ``Internal error occurred: failed calling webhook "x": failed to
  call webhook: Post "https://...?timeout=10s": context deadline exceeded``.
* ``timeoutSeconds`` (default 10, at most 30) bounds each call; the URL carries ``?timeout=Ns``.
* On dry-run requests a webhook whose ``sideEffects`` is not ``None``/``NoneOnDryRun`` is not
  called and the request fails with 400 ``admission webhook "x" does not support dry run``
  (upstream's behaviour).
* Webhook warnings are passed to the client as ``Warning`` headers.

Client config: ``url`` (https only) is called as given, verified against ``caBundle`` (the
system roots when empty). ``service`` (namespace, name, port default 443, path) is resolved by
the API server itself, which has no service proxy: the Service's Endpoints give a ready address
and the target port matching the service port; the certificate must be valid for
``<name>.<namespace>.svc`` (sent as TLS server name), as upstream. The address must be reachable
from the API server's host (true for pods on the same host or routed pod networks).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from ...api import errors
from ...api import patch as patchlib
from ...api import vap
from .cache import PrefixCache
from .chain import Attributes, Plugin
from .namespace_lifecycle import get_namespace
from .webhook_rules import (
    EXEMPT,
    NO_SIDE_EFFECTS,
    Webhook,
    WebhookCallError,
    admission_request,
    build_review,
    denied,
    dry_run_unsupported,
    hooks_of,
    matches,
    namespace_labels_of_request,
    namespace_selector_applies,
    parse_response,
)

if TYPE_CHECKING:
    from ..rest import ApiStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MAX_RESPONSE = 3 * 1024 * 1024


class WebhookClient:
    """Posts AdmissionReviews to webhooks over HTTPS (see the module docstring)."""

    def __init__(self, api: "ApiStore") -> None:
        self.api = api
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.calls = 0          # statistics

    def statistics(self) -> dict[str, int]:
        return {"calls": self.calls}

    def ssl_context(self, ca_bundle: str) -> ssl.SSLContext:
        ctx = self._contexts.get(ca_bundle)
        if ctx is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle).decode()
                    ctx = ssl.create_default_context(cadata=pem)
                except (ValueError, ssl.SSLError, UnicodeDecodeError) as e:
                    raise ValueError(f"invalid caBundle: {e}")
            else:
                ctx = ssl.create_default_context()
            self._contexts[ca_bundle] = ctx
        return ctx

    async def resolve(self, hook: Webhook) -> tuple[str, str | None]:
        """(URL to post to, TLS server name) for the webhook's client config."""
        cc = hook.client_config
        if cc.get("url"):
            return str(cc["url"]), None
        svc = cc.get("service") or {}
        ns, name = str(svc.get("namespace") or ""), str(svc.get("name") or "")
        port = int(svc.get("port") or 443)
        path = str(svc.get("path") or "")
        from ..rest import decode

        skv = await self.api.store.get(f"/registry/services/{ns}/{name}")
        if skv is None:
            raise LookupError(f'service "{name}" not found')
        service = decode(skv)
        sport = next((p for p in (service.get("spec") or {}).get("ports") or [] if int(p.get("port") or 0) == port), None)
        if sport is None:
            raise LookupError(f"service {ns}/{name} has no port {port}")
        ekv = await self.api.store.get(f"/registry/endpoints/{ns}/{name}")
        endpoints = decode(ekv) if ekv is not None else {}
        for subset in endpoints.get("subsets") or []:
            ports = subset.get("ports") or []
            target = next((p for p in ports if p.get("name", "") == sport.get("name", "")), ports[0] if len(ports) == 1 else None)
            addresses = subset.get("addresses") or []
            if target is not None and addresses:
                return f"https://{addresses[0]['ip']}:{int(target['port'])}{path}", f"{name}.{ns}.svc"
        raise LookupError(f'no endpoints available for service "{name}"')

    async def call(self, hook: Webhook, review: Obj) -> Any:
        """POST the review and return the decoded response; WebhookCallError on any failure."""
        self.calls += 1
        try:
            url, server_name = await self.resolve(hook)
            ctx = self.ssl_context(str(hook.client_config.get("caBundle") or ""))
        except (LookupError, ValueError) as e:
            raise WebhookCallError(hook.name, f"failed to call webhook: {e}")
        target = f"{url}?timeout={hook.timeout_seconds}s"
        body = orjson.dumps(review)
        try:
            async with asyncio.timeout(hook.timeout_seconds):
                connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
                async with aiohttp.ClientSession(connector=connector) as session:
                    async with session.post(target, data=body, server_hostname=server_name,
                                            headers={"Content-Type": "application/json", "Accept": "application/json"}) as r:
                        raw = await r.content.read(MAX_RESPONSE + 1)
                        status = r.status
        except TimeoutError:
            raise WebhookCallError(hook.name, f'failed to call webhook: Post "{target}": context deadline exceeded')
        except (aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise WebhookCallError(hook.name, f'failed to call webhook: Post "{target}": {e}')
        if len(raw) > MAX_RESPONSE:
            raise WebhookCallError(hook.name, "received invalid webhook response: the response is too large")
        if not 200 <= status < 300:
            text = raw[:512].decode(errors="replace")
            raise WebhookCallError(hook.name, f'failed to call webhook: an error on the server ("{text}") has prevented the request from succeeding')
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise WebhookCallError(hook.name, f"received invalid webhook response: {e}")


class _WebhookPlugin(Plugin):
    subresources = None
    mutating_hooks = False

    def __init__(self, api: "ApiStore", configs: PrefixCache, client: WebhookClient) -> None:
        self.api = api
        self.configs = configs
        self.client = client

    def handles(self, attrs: Attributes) -> bool:
        return super().handles(attrs) and (attrs.group, attrs.resource) not in EXEMPT

    async def matching(self, attrs: Attributes) -> list[Webhook]:
        configs = await self.configs.list()
        if not configs:
            return []
        hooks = hooks_of(configs)
        ns_labels = namespace_labels_of_request(attrs)
        if ns_labels is None and attrs.namespace and any(h.namespace_selector for h in hooks) and namespace_selector_applies(attrs):
            ns = await get_namespace(self.api, attrs)
            if ns is None:
                raise errors.not_found("namespaces", "", attrs.namespace)
            ns_labels = (ns.get("metadata") or {}).get("labels") or {}
        out = []
        for h in hooks:
            if matches(h, attrs, ns_labels) and self._conditions_hold(h, attrs):
                out.append(h)
        return out

    def _conditions_hold(self, hook: Webhook, attrs: Attributes) -> bool:
        """The webhook's matchConditions (CEL over object, oldObject and request): any false skips
        it; an error skips it (Ignore) or fails the request (Fail)."""
        if not hook.match_conditions:
            return True
        act = vap.activation(obj=attrs.obj, old=attrs.old, request=admission_request(attrs), params=None,
                             namespace=None, variables=[])
        matched, error = vap.match_conditions(list(hook.match_conditions), act)
        if error is None:
            return matched
        if hook.failure_policy == "Ignore":
            log.warning("webhook %s: %s; skipping it", hook.name, error)
            return False
        raise errors.internal(str(WebhookCallError(hook.name, error)))

    async def invoke(self, hook: Webhook, attrs: Attributes) -> Any:
        """Call one webhook: None when its failure is ignored, else its Verdict; raises the
        request's error when it fails closed or does not support a dry run."""
        if attrs.dry_run and hook.side_effects not in NO_SIDE_EFFECTS:
            raise dry_run_unsupported(hook.name)
        version = hook.review_version
        try:
            if version is None:
                raise WebhookCallError(hook.name, "webhook does not accept v1 or v1beta1 AdmissionReview")
            doc = await self.client.call(hook, build_review(attrs, version))
            verdict = parse_response(hook.name, doc, attrs.uid, version, self.mutating_hooks)
        except WebhookCallError as e:
            if hook.failure_policy == "Ignore":
                log.warning("failed calling webhook, failing open %s: %s", hook.name, e)
                return None
            log.warning("failed calling webhook, failing closed %s: %s", hook.name, e)
            raise errors.internal(str(e))
        for w in verdict.warnings:
            attrs.warn(w)
        return verdict


class MutatingAdmissionWebhook(_WebhookPlugin):
    NAME = "MutatingAdmissionWebhook"
    mutating = True
    mutating_hooks = True

    async def admit(self, attrs: Attributes) -> None:
        hooks = await self.matching(attrs)
        if not hooks:
            return
        changed_at = [await self._run(h, attrs) for h in hooks]
        # reinvocationPolicy IfNeeded: once more for a webhook when a later one changed the object
        for i, hook in enumerate(hooks):
            if hook.reinvocation_policy == "IfNeeded" and any(changed_at[i + 1:]):
                await self._run(hook, attrs)

    async def _run(self, hook: Webhook, attrs: Attributes) -> bool:
        verdict = await self.invoke(hook, attrs)
        if verdict is None:
            return False
        if not verdict.allowed:
            raise denied(hook.name, verdict.status)
        if not verdict.patch or attrs.obj is None:
            return False
        try:
            patched = patchlib.json_patch(attrs.obj, verdict.patch)
        except errors.StatusError as e:
            raise errors.internal(f'failed calling webhook "{hook.name}": {e.message}')
        if not isinstance(patched, dict):
            raise errors.internal(f'failed calling webhook "{hook.name}": the patched object is not a JSON object')
        patched = self.api.apply_defaults(attrs.info, patched)
        if patched == attrs.obj:
            return False
        attrs.obj = patched
        return True


class ValidatingAdmissionWebhook(_WebhookPlugin):
    NAME = "ValidatingAdmissionWebhook"
    validating = True

    async def validate(self, attrs: Attributes) -> None:
        hooks = await self.matching(attrs)
        if not hooks:
            return
        results = await asyncio.gather(*(self.invoke(h, attrs) for h in hooks), return_exceptions=True)
        for hook, res in zip(hooks, results):
            if isinstance(res, BaseException):
                raise res  # the first failure in webhook order (fail-closed call, dry-run refusal)
            if res is not None and not res.allowed:
                raise denied(hook.name, res.status)
