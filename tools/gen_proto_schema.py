#!/usr/bin/env python3
"""Generate ``src/kybernetes/api/proto_schema.json`` (protobuf field tables for built-in kinds).

The Kubernetes protobuf wire format is defined by the ``generated.proto`` files of the
upstream API packages; the Go struct tags in the same packages' ``types.go`` add what the
``.proto`` files do not say: the JSON name of each field, whether the Go field is a pointer
(so a present zero value is meaningful), ``omitempty`` and ``json:",inline"`` embedding.
This script joins the two by (message name, field number) and writes one JSON table. No
upstream text is copied into the repository: only the derived facts.

How it was run (Kubernetes 1.32, tags ``v0.32.13`` of the staging repositories)::

    # bare git directories obtained with the `fetch` tool of the helper environment
    .venv/bin/python tools/gen_proto_schema.py \\
        --api /work/.mirror/kubernetes+api/repo \\
        --apimachinery /work/.mirror/kubernetes+apimachinery/repo \\
        --apiextensions /work/.mirror/kubernetes+apiextensions-apiserver/repo \\
        --ref v0.32.13

Output format::

    {"source": "...",
     "messages": {"k8s.io.api.core.v1.Pod": {"fields": {"1": {
         "name": "metadata",                 # JSON name
         "type": "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",  # scalar or message
         "repeated": false,
         "map": null | {"key": "string", "value": "<type>"},
         "pointer": false,                   # Go *T: present zero values are kept
         "omitempty": true,
         "inline": false}}}},                # Go embedded struct with json:",inline"
     "kinds": {"apps/v1/Deployment": "k8s.io.api.apps.v1.Deployment", ...}}
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (repository option name, directory inside the repository, proto package)
API_DIRS = (
    "core/v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
    "networking/v1", "discovery/v1", "coordination/v1", "rbac/v1", "storage/v1",
    "scheduling/v1", "events/v1", "authentication/v1", "authorization/v1", "certificates/v1",
    "admissionregistration/v1",
)
SOURCES: tuple[tuple[str, str], ...] = (
    *(("api", d) for d in API_DIRS),
    ("apimachinery", "pkg/apis/meta/v1"),
    ("apimachinery", "pkg/runtime"),
    ("apimachinery", "pkg/runtime/schema"),
    ("apimachinery", "pkg/util/intstr"),
    ("apimachinery", "pkg/api/resource"),
    ("apiextensions", "pkg/apis/apiextensions/v1"),
)

SCALARS = {
    "string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "double", "float", "fixed32", "fixed64", "sfixed32", "sfixed64",
}
OUT = Path(__file__).resolve().parent.parent / "src" / "kybernetes" / "api" / "proto_schema.json"


# ----------------------------------------------------------------------------- git access
def git_show(gitdir: str, ref: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", gitdir, "show", f"{ref}:{path}"],
        check=True, capture_output=True, text=True,
    ).stdout


def git_ls(gitdir: str, ref: str, directory: str) -> list[str]:
    out = subprocess.run(
        ["git", "--git-dir", gitdir, "ls-tree", "--name-only", f"{ref}", directory + "/"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.splitlines() if line]


# ----------------------------------------------------------------------------- .proto parsing
_FIELD_RE = re.compile(
    r"^(?:(optional|repeated|required)\s+)?"
    r"(map\s*<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;"
)


@dataclass
class ProtoField:
    """One field of a .proto message."""

    name: str
    number: int
    type: str
    repeated: bool
    map: dict[str, str] | None


def _qualify(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    type_name = type_name.lstrip(".")
    return type_name if "." in type_name else f"{package}.{type_name}"


def parse_proto(text: str) -> dict[str, list[ProtoField]]:
    """Messages (fully qualified name -> fields) of one generated.proto (no nesting used)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    pkg_match = re.search(r"^\s*package\s+([\w.]+)\s*;", text, flags=re.M)
    if not pkg_match:
        raise SystemExit("proto without package")
    package = pkg_match.group(1)
    messages: dict[str, list[ProtoField]] = {}
    for m in re.finditer(r"\bmessage\s+(\w+)\s*\{([^{}]*)\}", text):
        fields: list[ProtoField] = []
        for raw_line in m.group(2).split("\n"):
            line = raw_line.strip()
            if not line:
                continue
            fm = _FIELD_RE.match(line)
            if not fm:
                raise SystemExit(f"cannot parse field line in {m.group(1)}: {line!r}")
            label, type_text, key_t, val_t, name, number = fm.groups()
            if key_t:
                fields.append(ProtoField(name, int(number), "map", False, {
                    "key": _qualify(key_t, package), "value": _qualify(val_t, package)}))
            else:
                fields.append(ProtoField(name, int(number), _qualify(type_text, package),
                                         label == "repeated", None))
        messages[f"{package}.{m.group(1)}"] = fields
    return messages


# ----------------------------------------------------------------------------- Go struct tags
@dataclass
class GoField:
    """What a Go struct tag says about one protobuf-numbered field."""

    json_name: str | None  # None: no json name (embedded without tag, or json:"-")
    omitempty: bool
    inline: bool
    pointer: bool


_STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{(.*?)^\}", flags=re.M | re.S)
_TAGGED_RE = re.compile(r"^\s*([^`/]+?)\s*`([^`]*)`")
_PROTO_TAG_RE = re.compile(r'protobuf:"[a-z0-9]+,(\d+),')
_JSON_TAG_RE = re.compile(r'json:"([^"]*)"')


def parse_go_structs(text: str) -> dict[str, dict[int, GoField]]:
    """Go struct name -> {protobuf field number: GoField} from struct tags."""
    out: dict[str, dict[int, GoField]] = {}
    for sm in _STRUCT_RE.finditer(text):
        fields: dict[int, GoField] = {}
        for line in sm.group(2).split("\n"):
            tm = _TAGGED_RE.match(line)
            if not tm:
                continue
            decl, tag = tm.groups()
            pm = _PROTO_TAG_RE.search(tag)
            if not pm:
                continue
            tokens = decl.split()
            go_type = tokens[-1]
            jm = _JSON_TAG_RE.search(tag)
            json_parts = jm.group(1).split(",") if jm else [""]
            json_name = json_parts[0] or None
            if json_name == "-":
                json_name = None
            fields[int(pm.group(1))] = GoField(
                json_name=json_name,
                omitempty="omitempty" in json_parts[1:],
                inline="inline" in json_parts[1:] and len(tokens) == 1,
                pointer=go_type.startswith("*"),
            )
        out[sm.group(1)] = fields
    return out


# ----------------------------------------------------------------------------- assembly
def collect(gitdirs: dict[str, str], ref: str) -> tuple[dict[str, Any], list[str]]:
    messages: dict[str, Any] = {}
    packages: list[str] = []
    for repo, directory in SOURCES:
        gitdir = gitdirs[repo]
        protos = parse_proto(git_show(gitdir, ref, f"{directory}/generated.proto"))
        go_structs: dict[str, dict[int, GoField]] = {}
        for path in git_ls(gitdir, ref, directory):
            base = path.rsplit("/", 1)[-1]
            if (base.endswith(".go") and not base.endswith("_test.go")
                    and not base.startswith(("zz_generated", "generated.pb"))):
                go_structs.update(parse_go_structs(git_show(gitdir, ref, path)))
        for full_name, pfields in protos.items():
            packages.append(full_name.rsplit(".", 1)[0])
            go = go_structs.get(full_name.rsplit(".", 1)[1], {})
            messages[full_name] = {"fields": {
                str(f.number): _field_entry(f, go.get(f.number)) for f in pfields}}
    return messages, sorted(set(packages))


def _field_entry(f: ProtoField, go: GoField | None) -> dict[str, Any]:
    name = go.json_name if go and go.json_name else f.name
    return {
        "name": name,
        "type": f.type if f.map is None else "map",
        "repeated": f.repeated,
        "map": f.map,
        "pointer": bool(go and go.pointer),
        "omitempty": bool(go.omitempty) if go else True,
        "inline": bool(go and go.inline),
    }


def proto_name_for_definition(def_name: str) -> str:
    """``io.k8s.api.apps.v1.Deployment`` -> ``k8s.io.api.apps.v1.Deployment``."""
    rest = def_name.removeprefix("io.k8s.")
    return "k8s.io." + rest.replace("-", "_")


def build_kinds(messages: dict[str, Any]) -> dict[str, str]:
    sys.path.insert(0, str(OUT.parent.parent.parent))
    from kybernetes.api import openapi_defs

    index = openapi_defs.gvk_index()
    served_gvs = set()
    for (group, version, _kind), def_name in index.items():
        if ".apimachinery." not in def_name and proto_name_for_definition(def_name) in messages:
            served_gvs.add((group, version))
    kinds: dict[str, str] = {}
    for (group, version, kind), def_name in sorted(index.items()):
        proto = proto_name_for_definition(def_name)
        if proto in messages and (group, version) in served_gvs:
            api_version = f"{group}/{version}" if group else version
            kinds[f"{api_version}/{kind}"] = proto
    return kinds


def check_against_openapi(messages: dict[str, Any]) -> list[str]:
    """JSON names of every message should be properties of its OpenAPI definition."""
    from kybernetes.api import openapi_defs

    defs = openapi_defs.definitions()
    problems = []
    for proto_name, msg in messages.items():
        d = defs.get("io.k8s." + proto_name.removeprefix("k8s.io.").replace("_", "-"))
        props = d.get("properties") if d else None
        if not props:
            continue
        for number, f in msg["fields"].items():
            if not f["inline"] and f["name"] not in props:
                problems.append(f"{proto_name} field {number}: {f['name']} not in OpenAPI")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", required=True, help="git dir of kubernetes/api")
    ap.add_argument("--apimachinery", required=True, help="git dir of kubernetes/apimachinery")
    ap.add_argument("--apiextensions", required=True,
                    help="git dir of kubernetes/apiextensions-apiserver")
    ap.add_argument("--ref", default="v0.32.13")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    gitdirs = {"api": args.api, "apimachinery": args.apimachinery,
               "apiextensions": args.apiextensions}
    messages, _packages = collect(gitdirs, args.ref)
    for problem in check_against_openapi(messages):
        print("warning:", problem, file=sys.stderr)
    doc = {
        "source": f"generated.proto + types.go of kubernetes/api, apimachinery, "
                  f"apiextensions-apiserver at {args.ref} by tools/gen_proto_schema.py",
        "messages": dict(sorted(messages.items())),
        "kinds": build_kinds(messages),
    }
    Path(args.out).write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {len(messages)} messages, {len(doc['kinds'])} kinds")


if __name__ == "__main__":
    main()
