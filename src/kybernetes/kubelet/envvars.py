"""A container's environment and command line, resolved the way the kubelet and containerd do.

Environment (upstream ``makeEnvironmentVariables``):

1. service variables: ``KUBERNETES_SERVICE_HOST`` / ``_PORT`` and the Docker-link family for the
   ``kubernetes`` service of ``default`` always; for every other service of the pod's namespace when
   ``spec.enableServiceLinks`` is true (the default). Headless (``None``) and IP-less services are
   skipped. A service of the pod's own namespace wins over ``default/kubernetes``.
2. ``envFrom`` (configMapRef / secretRef, with ``prefix``), in order; keys that are not valid
   environment variable names are skipped and reported (event ``InvalidEnvironmentVariableNames``).
3. ``env`` in order: ``value`` with ``$(VAR)`` expanded against what 2. and the earlier entries of
   3. defined, then the service variables; or ``valueFrom`` (configMapKeyRef, secretKeyRef, fieldRef,
   resourceFieldRef).

Later definitions win. The returned list puts the service variables not overridden first, then the
rest in the order they were first defined (upstream leaves the order to Go map iteration).

Expansion (upstream ``third_party/forked/golang/expansion``): ``$(NAME)`` is replaced when NAME is
defined and left as written when not; ``$$`` is an escaped ``$``; any other ``$x`` is kept; an
unclosed ``$(`` is kept. Expansion is one pass: a replacement is never expanded again.

Command line (containerd's ``WithProcessArgs``, from Docker): ``command`` replaces the image's
ENTRYPOINT and drops its CMD; ``args`` alone replace CMD; with neither, ENTRYPOINT + CMD. ``$(VAR)``
in ``command`` and ``args`` is expanded against the container environment (not the image's).

The pure helpers (``expand``, ``service_env``, ``field_ref_value``, ``resource_field_value``,
``format_map``) are shared with the downward API volume in ``volumes.py``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kybernetes.api.labels import qualified_name_errors
from kybernetes.api.quantity import int_value, milli_value

Obj = dict[str, Any]

MASTER_SERVICES = frozenset({"kubernetes"})
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class ConfigError(Exception):
    """A container cannot be configured; the kubelet reports ``CreateContainerConfigError``."""

    reason = "CreateContainerConfigError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigSource(Protocol):
    """The part of ``volumes.ObjectSource`` env resolution needs."""

    async def get_configmap(self, ns: str, name: str) -> dict | None: ...
    async def get_secret(self, ns: str, name: str) -> dict | None: ...


# ---------------------------------------------------------------------------------------------
# $(VAR) expansion


def expand(text: str, lookup: Callable[[str], str]) -> str:
    """Expand ``$(NAME)`` references in ``text`` with ``lookup`` (see the module docstring)."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            nxt = rest[0]
            if nxt == "$":                      # escaped operator
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = rest.find(")", 1)
                if close == -1:                 # unclosed reference: keep "$(" and go on
                    out.append("$(")
                    advance = 1
                else:
                    out.append(lookup(rest[1:close]))
                    advance = close + 1
            else:                               # a lone "$": keep it and the next character
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """A lookup that reads the first context defining a name and leaves unknown ``$(NAME)`` as is."""

    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


# ---------------------------------------------------------------------------------------------
# service links


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def is_service_ip_set(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_env_vars(svc: Obj) -> list[tuple[str, str]]:
    """The variables one service contributes (upstream ``envvars.FromServices``)."""
    if not is_service_ip_set(svc):
        return []
    spec = svc.get("spec") or {}
    ip = spec["clusterIP"]
    ports = spec.get("ports") or []
    prefix = _env_name(svc["metadata"]["name"])
    out = [(prefix + "_SERVICE_HOST", ip)]
    if not ports:
        return out
    out.append((prefix + "_SERVICE_PORT", str(int(ports[0].get("port", 0)))))
    for sp in ports:
        if sp.get("name"):
            out.append((f"{prefix}_SERVICE_PORT_{_env_name(sp['name'])}", str(int(sp.get("port", 0)))))
    for i, sp in enumerate(ports):
        proto = sp.get("protocol") or "TCP"
        port = int(sp.get("port", 0))
        url = f"{proto.lower()}://{_join_host_port(ip, port)}"
        if i == 0:
            out.append((prefix + "_PORT", url))
        pp = f"{prefix}_PORT_{port}_{proto.upper()}"
        out += [(pp, url), (pp + "_PROTO", proto.lower()), (pp + "_PORT", str(port)), (pp + "_ADDR", ip)]
    return out


def service_env(services: Iterable[Obj], namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """Service variables for a pod in ``namespace`` (upstream ``getServiceEnvVarMap``).

    ``services`` may span all namespaces; only ``default/kubernetes`` and (with service links) the
    pod's namespace count. Services are taken in name order so the result is deterministic.
    """
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not is_service_ip_set(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == "default" and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    out: dict[str, str] = {}
    for name in sorted(chosen):
        for k, v in service_env_vars(chosen[name]):
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# downward API values (shared with the downwardAPI volume)


def go_quote(s: str) -> str:
    """``s`` as Go's ``%q`` writes it (``strconv.Quote``)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def format_map(m: Mapping[str, str] | None) -> str:
    """Labels/annotations as the downward API writes them: sorted ``key="value"`` lines."""
    return "\n".join(f"{k}={go_quote(v)}" for k, v in sorted((m or {}).items()))


def split_subscript(path: str) -> tuple[str, str | None]:
    """``metadata.labels['app']`` -> (``metadata.labels``, ``app``); otherwise (path, None)."""
    if not path.endswith("']"):
        return path, None
    head, sep, key = path[:-2].partition("['")
    if not sep or not head:
        return path, None
    return head, key


def extract_field_path(pod: Obj, path: str) -> str:
    """Upstream ``fieldpath.ExtractFieldPathAsString`` (metadata fields only); ValueError if unsupported."""
    meta = pod.get("metadata") or {}
    head, key = split_subscript(path)
    if key is not None:
        if head == "metadata.annotations":
            errs = qualified_name_errors(key.lower())
            if errs:
                raise ValueError(f"invalid key subscript in {path}: {';'.join(errs)}")
            return (meta.get("annotations") or {}).get(key, "")
        if head == "metadata.labels":
            errs = qualified_name_errors(key)
            if errs:
                raise ValueError(f"invalid key subscript in {path}: {';'.join(errs)}")
            return (meta.get("labels") or {}).get(key, "")
        raise ValueError(f'fieldPath "{path}" does not support subscript')
    if path == "metadata.annotations":
        return format_map(meta.get("annotations"))
    if path == "metadata.labels":
        return format_map(meta.get("labels"))
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.split(".", 1)[1], ""))
    raise ValueError(f"unsupported fieldPath: {path}")


def field_ref_value(pod: Obj, path: str, *, node_ips: Sequence[str] = (), pod_ips: Sequence[str] = ()) -> str:
    """An env ``fieldRef`` value (upstream ``podFieldSelectorRuntimeValue``)."""
    spec = pod.get("spec") or {}
    if path == "spec.nodeName":
        return spec.get("nodeName", "") or ""
    if path == "spec.serviceAccountName":
        return spec.get("serviceAccountName", "") or ""
    if path == "status.hostIP":
        return node_ips[0] if node_ips else ""
    if path == "status.hostIPs":
        return ",".join(node_ips)
    if path == "status.podIP":
        return pod_ips[0] if pod_ips else ""
    if path == "status.podIPs":
        return ",".join(pod_ips)
    return extract_field_path(pod, path)


def _resources(container: Obj, kind: str) -> dict[str, Any]:
    return ((container.get("resources") or {}).get(kind)) or {}


def with_default_limits(container: Obj, allocatable: Mapping[str, Any] | None) -> Obj:
    """A copy of ``container`` whose unset (or zero) cpu/memory/ephemeral-storage limits are the
    node's allocatable (upstream ``MergeContainerResourceLimits``)."""
    if not allocatable:
        return container
    limits = dict(_resources(container, "limits"))
    for name in ("cpu", "memory", "ephemeral-storage"):
        cur = limits.get(name)
        unset = cur is None
        if not unset:
            try:
                unset = milli_value(cur) == 0
            except ValueError:
                unset = False
        if unset and name in allocatable:
            limits[name] = allocatable[name]
    res = dict(container.get("resources") or {})
    res["limits"] = limits
    out = dict(container)
    out["resources"] = res
    return out


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def find_container(pod: Obj, name: str) -> Obj:
    for c in _all_containers(pod):
        if c.get("name") == name:
            return c
    raise ValueError(f"container {name} not found")


def resource_field_value(selector: Obj, container: Obj) -> str:
    """A ``resourceFieldRef`` value for ``container`` (upstream ``ExtractContainerResourceValue``):
    the ceiling of the quantity divided by ``divisor`` (default 1)."""
    divisor = selector.get("divisor")
    if divisor in (None, "", 0, "0"):
        divisor = "1"
    resource = selector.get("resource", "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise ValueError(f"unsupported container resource : {resource}")
    qty = _resources(container, kind).get(name, "0")
    if name == "cpu":
        return str(math.ceil(milli_value(qty) / milli_value(divisor)))
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return str(math.ceil(int_value(qty) / int_value(divisor)))
    raise ValueError(f"unsupported container resource : {resource}")


def resource_ref_value(selector: Obj, pod: Obj, container: Obj | None,
                       allocatable: Mapping[str, Any] | None) -> str:
    """``resourceFieldRef`` with its optional ``containerName`` and node-allocatable defaults."""
    name = selector.get("containerName") or ""
    target = find_container(pod, name) if name or container is None else container
    return resource_field_value(selector, with_default_limits(target, allocatable))


# ---------------------------------------------------------------------------------------------
# configMap / secret helpers


def configmap_not_found(name: str) -> str:
    return f'configmap "{name}" not found'


def secret_not_found(name: str) -> str:
    return f'secret "{name}" not found'


def secret_data(secret: Obj) -> dict[str, bytes]:
    """A secret's ``data`` decoded from base64 (``stringData`` folded in, as the API server does)."""
    out: dict[str, bytes] = {}
    for k, v in (secret.get("data") or {}).items():
        out[k] = base64.b64decode(v or "")
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = v.encode()
    return out


def configmap_binary(cm: Obj) -> dict[str, bytes]:
    return {k: base64.b64decode(v or "") for k, v in (cm.get("binaryData") or {}).items()}


def is_env_var_name(name: str) -> bool:
    """Upstream ``IsEnvVarName``."""
    return bool(_ENV_NAME_RE.fullmatch(name))


class _Objects:
    """Per-call cache of the configMaps and secrets a container references (fetched once each)."""

    def __init__(self, source: ConfigSource, ns: str) -> None:
        self.source, self.ns = source, ns
        self.cms: dict[str, Obj | None] = {}
        self.secrets: dict[str, Obj | None] = {}

    async def configmap(self, name: str) -> Obj | None:
        if name not in self.cms:
            self.cms[name] = await _fetch(self.source.get_configmap, self.ns, name)
        return self.cms[name]

    async def secret(self, name: str) -> Obj | None:
        if name not in self.secrets:
            self.secrets[name] = await _fetch(self.source.get_secret, self.ns, name)
        return self.secrets[name]


async def _fetch(get: Callable[[str, str], Any], ns: str, name: str) -> Obj | None:
    try:
        return await get(ns, name)
    except ConfigError:
        raise
    except Exception as e:  # an API failure: the container cannot be configured now (retry later)
        raise ConfigError(str(e) or type(e).__name__) from e


# ---------------------------------------------------------------------------------------------
# the environment


async def resolve_env(pod: Obj, container: Obj, source: ConfigSource, *, services: list[dict],
                      node_ip: str, pod_ip: str | None, pod_ips: Sequence[str] | None = None,
                      node_ips: Sequence[str] | None = None,
                      node_allocatable: Mapping[str, Any] | None = None,
                      events: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """The environment of ``container`` (see the module docstring). Raises ``ConfigError``.

    ``services`` are Service objects (any namespaces); ``node_allocatable`` is the node's
    ``status.allocatable`` (defaults for unset limits in resourceFieldRef); ``events``, when
    given, receives ``(reason, message)`` warnings such as ``InvalidEnvironmentVariableNames``.
    """
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks")
    svc_env = service_env(services, ns, True if links is None else bool(links))
    ips = list(pod_ips or ([pod_ip] if pod_ip else []))
    hips = list(node_ips or ([node_ip] if node_ip else []))
    objs = _Objects(source, ns)
    env: dict[str, str] = {}

    for ef in container.get("envFrom") or []:
        prefix = ef.get("prefix") or ""
        if ef.get("configMapRef") is not None:
            ref, kind = ef["configMapRef"], "configMap"
            cm = await objs.configmap(ref.get("name", ""))
            if cm is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(configmap_not_found(ref.get("name", "")))
            data = {k: str(v) for k, v in (cm.get("data") or {}).items()}
        elif ef.get("secretRef") is not None:
            ref, kind = ef["secretRef"], "secret"
            sec = await objs.secret(ref.get("name", ""))
            if sec is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(secret_not_found(ref.get("name", "")))
            data = {k: v.decode(errors="replace") for k, v in secret_data(sec).items()}
        else:
            continue
        invalid = []
        for k, v in data.items():
            k = prefix + k
            if not is_env_var_name(k):
                invalid.append(k)
                continue
            env[k] = v
        if invalid and events is not None:
            events.append(("InvalidEnvironmentVariableNames",
                           f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {kind} {ns}/"
                           f"{ref.get('name', '')} were skipped since they are considered invalid "
                           "environment variable names."))

    lookup = mapping_for(env, svc_env)
    for ev in container.get("env") or []:
        name = ev.get("name", "")
        value = ev.get("value") or ""
        vf = ev.get("valueFrom")
        if value:
            value = expand(value, lookup)
        elif vf:
            got = await _value_from(vf, pod, container, objs, ns, hips, ips, node_allocatable)
            if got is None:  # an optional reference that is missing: the variable is not set
                continue
            value = got
        env[name] = value

    out = [(k, v) for k, v in svc_env.items() if k not in env]
    out += list(env.items())
    return out


async def _value_from(vf: Obj, pod: Obj, container: Obj, objs: _Objects, ns: str,
                      node_ips: list[str], pod_ips: list[str],
                      allocatable: Mapping[str, Any] | None) -> str | None:
    if vf.get("configMapKeyRef") is not None:
        ref = vf["configMapKeyRef"]
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        cm = await objs.configmap(name)
        if cm is None:
            if optional:
                return None
            raise ConfigError(configmap_not_found(name))
        data = cm.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in ConfigMap {ns}/{name}")
        return str(data[key])
    if vf.get("secretKeyRef") is not None:
        ref = vf["secretKeyRef"]
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        sec = await objs.secret(name)
        if sec is None:
            if optional:
                return None
            raise ConfigError(secret_not_found(name))
        data = secret_data(sec)
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in Secret {ns}/{name}")
        return data[key].decode(errors="replace")
    try:
        if vf.get("fieldRef") is not None:
            return field_ref_value(pod, vf["fieldRef"].get("fieldPath", ""), node_ips=node_ips,
                                   pod_ips=pod_ips)
        if vf.get("resourceFieldRef") is not None:
            return resource_ref_value(vf["resourceFieldRef"], pod, container, allocatable)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return ""


# ---------------------------------------------------------------------------------------------
# command line and image environment


def _image_attr(image: Any, name: str) -> Any:
    if image is None:
        return None
    if isinstance(image, Mapping):
        alt = {"entrypoint": "Entrypoint", "cmd": "Cmd", "env": "Env"}[name]
        return image.get(name, image.get(alt))
    return getattr(image, name, None)


def resolve_argv(container: Obj, image: Any, env: Iterable[tuple[str, str]]) -> list[str]:
    """The process argv for ``container`` over ``image`` (an ImageConfig or a dict with
    entrypoint/cmd); ``env`` is the container environment from ``resolve_env``. Raises
    ``ConfigError("no command specified")`` when nothing is left to run."""
    lookup = mapping_for(dict(env))
    command = [expand(c, lookup) for c in container.get("command") or []]
    args = [expand(a, lookup) for a in container.get("args") or []]
    if not command:
        if not args:
            args = list(_image_attr(image, "cmd") or [])
        entry = list(_image_attr(image, "entrypoint") or [])
        if entry != [""]:
            command = entry
    argv = command + args
    if not argv:
        raise ConfigError("no command specified")
    return argv


def merge_image_env(image_env: Iterable[str], env: Iterable[tuple[str, str]], *,
                    hostname: str | None = None) -> list[tuple[str, str]]:
    """The process environment as containerd builds it: the default ``PATH``, ``HOSTNAME`` (when
    given), then the image's ``K=V`` entries, then the container's; a later value replaces an
    earlier one in place, new names are appended. An image entry without ``=`` unsets the name."""
    out: dict[str, str] = {}

    def put(entry_key: str, value: str | None) -> None:
        if value is None:
            out.pop(entry_key, None)
        else:
            out[entry_key] = value

    k, _, v = DEFAULT_PATH.partition("=")
    put(k, v)
    if hostname is not None:
        put("HOSTNAME", hostname)
    for entry in image_env or []:
        k, sep, v = entry.partition("=")
        put(k, v if sep else None)
    for k, v in env:
        put(k, v)
    return list(out.items())
