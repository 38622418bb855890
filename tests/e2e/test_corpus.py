"""Every manifest of the Kubernetes documentation corpus applies with the real kubectl."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from .conftest import Cluster

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "k8s-website-examples"
FILES = sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason="shared corpus not present")
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_manifest_applies(cluster: Cluster, path: Path, tmp_path: Path) -> None:
    # Each file gets its own namespace (explicit namespaces are rewritten to it), so files that
    # reuse a name (two DaemonSets "fluentd-elasticsearch" in kube-system) do not collide.
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    ns = "corpus-" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
    cluster.kubectl("create", "namespace", ns, check=False)
    for d in docs:
        if (d.get("metadata") or {}).get("namespace"):
            d["metadata"]["namespace"] = ns
    f = tmp_path / path.name
    f.write_text(yaml.safe_dump_all(docs))
    out = cluster.kubectl("apply", "-n", ns, "-f", str(f)).stdout
    assert len(out.strip().splitlines()) == len(docs), out
    got = cluster.kubectl("get", "-n", ns, "-f", str(f), "-o", "name").stdout.split()
    assert len(got) == len(docs)
