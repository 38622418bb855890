"""``--encryption-provider-config``: the apiserver.config.k8s.io/v1 EncryptionConfiguration.

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets, configmaps]     # "<resource>[.<group>]", "*.<group>", "*." (core), "*.*"
        providers:                           # the first encrypts writes; all are tried on reads
          - aescbc:    {keys: [{name: key1, secret: <base64 of 16/24/32 bytes>}]}
          - aesgcm:    {keys: [...]}         # 16/24/32-byte keys
          - secretbox: {keys: [...]}         # 32-byte keys
          - identity: {}                     # reads unencrypted data (and writes it, when first)

Validation follows upstream (messages included): at least one resource entry, resources and
providers per entry; one provider type per list element; base64 secrets of the right size;
no capital letters, ``*``, ``resource.*``, ``*.events.k8s.io`` or ``extensions`` resources; no
overlap inside one list; a resource listed after a wildcard that covers it is "masked".
A resource listed in several entries gets the providers of all of them, in order.

Resolution for a stored key's (group, resource): exact entry, then ``*.<group>``, then ``*.*``;
otherwise values are read and written as plaintext (refusing encrypted bytes).
KMS providers are not supported (there is no KMS plugin protocol here): they are rejected.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .transformers import (
    AESCBC_PREFIX,
    AESGCM_PREFIX,
    CBC,
    GCM,
    IDENTITY,
    SECRETBOX_PREFIX,
    Prefixed,
    PrefixTransformers,
    Secretbox,
)

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
AES_KEY_SIZES = (16, 24, 32)
SECRETBOX_KEY_SIZES = (32,)
PROVIDER_TYPES = ("kms", "aesgcm", "aescbc", "secretbox", "identity")
NON_REST_RESOURCES = ("apiserveripinfo", "serviceipallocations", "servicenodeportallocations")


class EncryptionConfigError(ValueError):
    """The configuration file is unusable; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str], path: str = "") -> None:
        self.errors = errors
        where = f"encryption provider configuration file {path!r}: " if path else ""
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        super().__init__(where + joined)


@dataclass(frozen=True)
class Key:
    name: str
    secret: bytes


@dataclass(frozen=True)
class Provider:
    type: str                   # aescbc | aesgcm | secretbox | identity
    keys: tuple[Key, ...] = ()


@dataclass(frozen=True)
class ResourceEntry:
    resources: tuple[str, ...]
    providers: tuple[Provider, ...]


GroupResource = tuple[str, str]   # (group, resource); "*" wildcards


def parse_group_resource(text: str) -> GroupResource:
    """``secrets`` → ("", "secrets"); ``deployments.apps`` → ("apps", "deployments");
    ``*.`` → ("", "*"); ``*.*`` → ("*", "*") (upstream schema.ParseGroupResource)."""
    resource, dot, group = text.partition(".")
    return (group if dot else "", resource)


def gr_string(gr: GroupResource) -> str:
    group, resource = gr
    if group == "" and resource == "*":
        return "*."
    return f"{resource}.{group}" if group else resource


# ----------------------------------------------------------------------------------------------
# parsing and validation (pure)
def parse_encryption_config(doc: Any) -> list[ResourceEntry]:
    """Validate a decoded EncryptionConfiguration document; EncryptionConfigError lists problems."""
    if not isinstance(doc, dict):
        raise EncryptionConfigError(["the file must hold an EncryptionConfiguration object"])
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise EncryptionConfigError([
            f'no kind "{doc.get("kind")}" is registered for version "{doc.get("apiVersion")}" '
            f'(want apiVersion {API_VERSION}, kind {KIND})'])
    errs: list[str] = []
    _unknown(doc, ("apiVersion", "kind", "resources"), "", errs)
    raw_entries = doc.get("resources")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise EncryptionConfigError(errs + ["resources: Required value: at least one resources is required"])
    entries: list[ResourceEntry] = []
    for i, raw in enumerate(raw_entries):
        path = f"resources[{i}]"
        if not isinstance(raw, dict):
            errs.append(f"{path}: Invalid value: must be an object")
            continue
        _unknown(raw, ("resources", "providers"), path, errs)
        resources = [str(r) for r in raw.get("resources") or []]
        if not resources:
            errs.append(f"{path}.resources: Required value: at least one {path}.resources is required")
        errs += _validate_overlap(resources, f"{path}.resources")
        errs += _validate_names(resources, f"{path}.resources")
        providers: list[Provider] = []
        raw_providers = raw.get("providers") or []
        if not raw_providers:
            errs.append(f"{path}.providers: Required value: at least one {path}.providers is required")
        for j, rp in enumerate(raw_providers):
            p = _parse_provider(rp, f"{path}.providers[{j}]", errs)
            if p is not None:
                providers.append(p)
        entries.append(ResourceEntry(tuple(resources), tuple(providers)))
    if errs:
        raise EncryptionConfigError(errs)
    return entries


def _unknown(obj: dict[str, Any], known: tuple[str, ...], path: str, errs: list[str]) -> None:
    for k in obj:
        if k not in known:
            errs.append(f'strict decoding error: unknown field "{path + "." if path else ""}{k}"')


def _validate_overlap(resources: list[str], path: str) -> list[str]:
    grs = [parse_group_resource(r) for r in resources]
    dup = overlap = False
    for i, a in enumerate(grs):
        for j, b in enumerate(grs):
            if i == j:
                continue
            if a == b:
                dup = True
                continue
            if a == ("*", "*") or (a[0] == b[0] and "*" in (a[1], b[1])):
                overlap = True
    out = []
    if dup:
        out.append(f"{path}: Invalid value: {resources}: the same resource cannot be specified multiple times")
    if overlap:
        out.append(f"{path}: Invalid value: {resources}: using overlapping resources such as 'secrets' "
                   "and '*.' in the same resource list is not allowed as they will be masked")
    return out


def _validate_names(resources: list[str], path: str) -> list[str]:
    out = []
    for j, res in enumerate(resources):
        p = f'{path}[{j}]: Invalid value: "{res}": '
        group, resource = parse_group_resource(res)
        if res.lower() != res:
            out.append(p + "resource name should not contain capital letters")
        elif res == "*":
            out.append(p + "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources")
        elif res in NON_REST_RESOURCES:
            out.append(p + "resources which do not have REST API/s cannot be encrypted")
        elif group == "events.k8s.io":
            out.append(p + "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. "
                           "Use 'events' instead in the config file")
        elif group == "extensions":
            out.append(p + "'extensions' group has been removed and cannot be used for encryption")
        elif group == "*" and resource != "*":
            out.append(p + "encrypting the same resource across groups is not supported")
    return out


def _parse_provider(raw: Any, path: str, errs: list[str]) -> Provider | None:
    if not isinstance(raw, dict):
        errs.append(f"{path}: Invalid value: must be an object")
        return None
    found = [t for t in PROVIDER_TYPES if raw.get(t) is not None]
    _unknown(raw, PROVIDER_TYPES, path, errs)
    if not found:
        errs.append(f"{path}: Invalid value: provider does not contain any of the expected providers: "
                    "KMS, AESGCM, AESCBC, Secretbox, Identity")
        return None
    if len(found) > 1:
        errs.append(f"{path}: Invalid value: more than one provider specified in a single element, "
                    "should split into different list elements")
        return None
    typ = found[0]
    if typ == "kms":
        errs.append(f"{path}.kms: Unsupported value: kybernetes has no KMS plugin support; "
                    "use aescbc, aesgcm or secretbox")
        return None
    if typ == "identity":
        return Provider("identity")
    body = raw[typ]
    if not isinstance(body, dict):
        errs.append(f"{path}.{typ}: Invalid value: must be an object")
        return None
    _unknown(body, ("keys",), f"{path}.{typ}", errs)
    sizes = SECRETBOX_KEY_SIZES if typ == "secretbox" else AES_KEY_SIZES
    keys = _parse_keys(body.get("keys") or [], f"{path}.{typ}.keys", sizes, errs)
    return Provider(typ, tuple(keys)) if keys is not None else None


def _parse_keys(raw: list[Any], path: str, sizes: tuple[int, ...], errs: list[str]) -> list[Key] | None:
    if not raw:
        errs.append(f"{path}: Required value: at least one keys is required")
        return None
    keys: list[Key] = []
    ok = True
    names: set[str] = set()
    for i, rk in enumerate(raw):
        kp = f"{path}[{i}]"
        if not isinstance(rk, dict):
            errs.append(f"{kp}: Invalid value: must be an object")
            ok = False
            continue
        _unknown(rk, ("name", "secret"), kp, errs)
        name = str(rk.get("name") or "")
        secret = str(rk.get("secret") or "")
        if not name:
            errs.append(f"{kp}.name: Required value: name is a mandatory field for a key")
            ok = False
        elif ":" in name:
            # the name ends the stored prefix ("k8s:enc:aescbc:v1:<name>:"), so it cannot hold ':'
            errs.append(f'{kp}.name: Invalid value: "{name}": key names must not contain \':\'')
            ok = False
        elif name in names:
            errs.append(f'{kp}.name: Duplicate value: "{name}"')
            ok = False
        names.add(name)
        if not secret:
            errs.append(f"{kp}.secret: Required value: secret is a mandatory field for a key")
            ok = False
            continue
        try:
            material = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            errs.append(f'{kp}.secret: Invalid value: "REDACTED": secrets must be base64 encoded')
            ok = False
            continue
        if len(material) not in sizes:
            errs.append(f'{kp}.secret: Invalid value: "REDACTED": secret is not of the expected length, '
                        f"got {len(material)}, expected one of [{' '.join(map(str, sizes))}]")
            ok = False
            continue
        keys.append(Key(name, material))
    return keys if ok else None


# ----------------------------------------------------------------------------------------------
# transformers
def provider_transformer(p: Provider) -> Prefixed:
    """One provider as a prefixed transformer (its keys tried by their ``<name>:`` prefix)."""
    if p.type == "identity":
        return Prefixed(b"", IDENTITY)
    if p.type == "aescbc":
        prefix, make, what = AESCBC_PREFIX, CBC, "AES"
    elif p.type == "aesgcm":
        prefix, make, what = AESGCM_PREFIX, GCM, "AES"
    elif p.type == "secretbox":
        prefix, make, what = SECRETBOX_PREFIX, _secretbox, "Secretbox"
    else:  # parse_encryption_config admits nothing else
        raise ValueError(f"unknown provider type {p.type!r}")
    keyed = [Prefixed(k.name.encode() + b":", make(k.secret)) for k in p.keys]
    inner = PrefixTransformers(keyed, f"no matching key was found for the provided {what} transformer")
    return Prefixed(prefix, inner)


def _secretbox(key: bytes) -> Secretbox:
    try:
        return Secretbox(key)
    except ImportError:
        raise EncryptionConfigError(["the secretbox provider needs the PyNaCl package (pip install pynacl)"]) from None


class EncryptionConfig:
    """The parsed configuration: a transformer per configured (group, resource)."""

    def __init__(self, entries: list[ResourceEntry]) -> None:
        by_gr: dict[GroupResource, list[Prefixed]] = {}
        errs: list[str] = []
        for entry in entries:
            transformers = [provider_transformer(p) for p in entry.providers]
            for res in entry.resources:
                gr = parse_group_resource(res)
                for masking in ((gr[0], "*"), ("*", "*")):
                    if masking in by_gr:
                        errs.append(f"resource {gr_string(gr)!r} is masked by earlier rule {gr_string(masking)!r}")
                by_gr.setdefault(gr, []).extend(transformers)
        if errs:
            raise EncryptionConfigError(errs)
        self.transformers: dict[GroupResource, PrefixTransformers] = {
            gr: PrefixTransformers(items, "no matching prefix found") for gr, items in by_gr.items()}

    def transformer_for(self, group: str, resource: str) -> PrefixTransformers | None:
        """The transformer for a resource; None means plaintext (upstream's identity check)."""
        t = self.transformers
        return t.get((group, resource)) or t.get((group, "*")) or t.get(("*", "*"))

    def describe(self) -> list[str]:
        """One line per configured resource: what new writes use (for start-up logs)."""
        out = []
        for gr, pt in self.transformers.items():
            first = pt.items[0]
            name = first.prefix.decode() or "identity"
            if first.prefix:
                keyed = first.transformer
                assert isinstance(keyed, PrefixTransformers)
                name += keyed.items[0].prefix.decode()
            out.append(f"{gr_string(gr)}: writes with {name}")
        return out


def load_encryption_config(path: str | Path) -> EncryptionConfig:
    """Read, validate and build (blocking: call it at start-up, or via ``asyncio.to_thread``)."""
    p = str(path)
    try:
        data = Path(p).read_bytes()
    except OSError as e:
        raise EncryptionConfigError([f"error reading encryption provider configuration file: {e.strerror}"], p) from None
    if not data.strip():
        raise EncryptionConfigError(["the file is empty"], p)
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise EncryptionConfigError([f"error decoding: {str(e).splitlines()[0]}"], p) from None
    try:
        return EncryptionConfig(parse_encryption_config(doc))
    except EncryptionConfigError as e:
        raise EncryptionConfigError(e.errors, p) from None
