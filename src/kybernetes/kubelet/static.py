"""Static pods: pods a kubelet runs from manifest files (``--pod-manifest-path``) and mirrors into
the API so they can be seen (not changed) with kubectl.

    pods = load_static_pods("/etc/kyb/manifests", node_name="node-1")   # blocking: use a thread
    mirror = mirror_pod(pods[0], node_uid=node_uid)                      # POST it to the API
    is_mirror(pod)                                                        # from the informer

As upstream (``pkg/kubelet/config``): every ``*.yaml``, ``*.yml`` or ``*.json`` file (hidden files
skipped) holds one Pod (or a List of Pods). The kubelet names it ``<name>-<node>``, puts it in
``default`` unless it says otherwise, binds it to the node, tolerates every NoExecute taint, and
gives it a UID hashed from its content, the node and the file (``kubernetes.io/config.hash``), so
changing the file makes a new pod. The mirror pod is the same object with
``kubernetes.io/config.mirror`` set to that hash and the Node as its owner; it carries the static
pod's status. A mirror whose hash is stale, or whose static pod is gone, is deleted.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from ..api import meta as m

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_SOURCE = "kubernetes.io/config.source"
SUFFIXES = (".yaml", ".yml", ".json")


def is_mirror(pod: Obj) -> bool:
    return CONFIG_MIRROR in ((pod.get("metadata") or {}).get("annotations") or {})


def is_static(pod: Obj) -> bool:
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    return ann.get(CONFIG_SOURCE, "api") not in ("api", "") and not is_mirror(pod)


def _defaults(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or ():
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            image = str(c.get("image") or "")
            last = image.split("@", 1)[0].rsplit("/", 1)[-1]
            tag = last.rsplit(":", 1)[1] if ":" in last else ""
            c.setdefault("imagePullPolicy",
                         "Always" if "@" not in image and tag in ("", "latest") else "IfNotPresent")


def static_pod(doc: Obj, *, node_name: str, source: str, seen: dt.datetime | None = None) -> Obj:
    """The pod the kubelet runs for one manifest document (raises ValueError when unusable)."""
    if doc.get("kind") not in (None, "Pod"):
        raise ValueError(f"expected a Pod, got {doc.get('kind')!r}")
    pod = copy.deepcopy(doc)
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    md = pod.setdefault("metadata", {})
    if not md.get("name"):
        raise ValueError("a static pod needs metadata.name")
    md["name"] = f"{md['name']}-{node_name}"
    md["namespace"] = md.get("namespace") or "default"
    _defaults(pod)
    pod["spec"]["nodeName"] = node_name
    tolerations = pod["spec"].setdefault("tolerations", [])
    everything = {"operator": "Exists", "effect": "NoExecute"}
    if everything not in tolerations:
        tolerations.append(everything)
    pod.pop("status", None)
    if not md.get("uid"):
        h = hashlib.md5(json.dumps(pod, sort_keys=True, separators=(",", ":")).encode(),
                        usedforsecurity=False)
        h.update(f"host:{node_name}".encode())
        h.update(f"file:{source}".encode())
        md["uid"] = h.hexdigest()
    ann = md.setdefault("annotations", {})
    ann[CONFIG_HASH] = md["uid"]
    ann[CONFIG_SOURCE] = "file"
    ann[CONFIG_SEEN] = m.now_micro(seen)
    return pod


def _documents(path: Path) -> list[Obj]:
    text = path.read_text()
    if path.suffix == ".json":
        docs = [json.loads(text)]
    else:
        docs = [d for d in yaml.safe_load_all(text) if d]
    out: list[Obj] = []
    for d in docs:
        if not isinstance(d, dict):
            raise ValueError("not an object")
        if d.get("kind") in ("List", "PodList"):
            out.extend(i for i in d.get("items") or () if isinstance(i, dict))
        else:
            out.append(d)
    return out


def load_static_pods(directory: str | Path, *, node_name: str,
                     seen: dt.datetime | None = None) -> list[Obj]:
    """Every static pod of the manifest directory (blocking; unreadable files are logged and skipped)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    pods: list[Obj] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.suffix not in SUFFIXES or not path.is_file():
            continue
        try:
            for doc in _documents(path):
                pods.append(static_pod(doc, node_name=node_name, source=str(path), seen=seen))
        except (OSError, ValueError, yaml.YAMLError) as e:
            log.warning("static pod manifest %s skipped: %s", path, e)
    return pods


def mirror_pod(pod: Obj, *, node_uid: str | None) -> Obj:
    """The mirror of a static pod, to create in the API."""
    mirror = copy.deepcopy(pod)
    md = mirror["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        md.pop(key, None)
    md.setdefault("annotations", {})[CONFIG_MIRROR] = pod["metadata"]["uid"]
    if node_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                  "name": pod["spec"]["nodeName"], "uid": node_uid, "controller": True}]
    mirror.pop("status", None)
    return mirror


def mirror_hash(pod: Obj) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(CONFIG_MIRROR)


def mirror_actions(static: dict[tuple[str, str], Obj], mirrors: dict[tuple[str, str], Obj]
                   ) -> tuple[list[Obj], list[Obj]]:
    """(static pods whose mirror must be created, mirrors to delete) — pure.

    ``static`` / ``mirrors`` are keyed by (namespace, name). A mirror is deleted when its static pod
    is gone or has another hash (it is created again afterwards); a mirror being deleted is left
    alone until it is gone.
    """
    create, delete = [], []
    for key, mirror in mirrors.items():
        pod = static.get(key)
        if (mirror.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if pod is None or mirror_hash(mirror) != pod["metadata"]["uid"]:
            delete.append(mirror)
    for key, pod in static.items():
        if key not in mirrors:
            create.append(pod)
    return create, delete
