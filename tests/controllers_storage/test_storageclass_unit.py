"""DefaultStorageClass admission logic (pure)."""

from __future__ import annotations

import pytest

from kybernetes.api.storageclass import (
    BETA_IS_DEFAULT_CLASS_ANNOTATION,
    apply_default_storage_class,
    claim_class,
    default_storage_class,
    volume_class,
)

from .builders import pv, pvc, storage_class

LOCAL = storage_class("local-path", default=True, created="2024-01-01T00:00:00Z")
FAST = storage_class("fast")


@pytest.mark.parametrize("claim, classes, expected", [
    pytest.param(pvc("a", klass=None), [LOCAL, FAST], "local-path", id="no-class-gets-default"),
    pytest.param(pvc("a", klass=""), [LOCAL], None, id="explicit-empty-means-none"),
    pytest.param(pvc("a", klass="fast"), [LOCAL, FAST], None, id="explicit-class-kept"),
    pytest.param(pvc("a", klass=None, annotations={"volume.beta.kubernetes.io/storage-class": "x"}), [LOCAL], None,
                 id="beta-annotation-counts-as-class"),
    pytest.param(pvc("a", klass=None), [FAST], None, id="no-default-class"),
    pytest.param(pvc("a", klass=None), [], None, id="no-classes"),
    pytest.param(pvc("a", klass=None),
                 [LOCAL, storage_class("newer", default=True, created="2024-06-01T00:00:00Z")], "newer",
                 id="newest-default-wins"),
    pytest.param(pvc("a", klass=None),
                 [storage_class("b", default=True), storage_class("a", default=True)], "a",
                 id="tie-broken-by-name"),
])
def test_default_storage_class(claim, classes, expected) -> None:  # type: ignore[no-untyped-def]
    assert default_storage_class(claim, classes) == expected


def test_beta_default_annotation() -> None:
    sc = storage_class("old")
    sc["metadata"]["annotations"] = {BETA_IS_DEFAULT_CLASS_ANNOTATION: "true"}
    assert default_storage_class(pvc("a", klass=None), [sc]) == "old"


def test_apply_default_mutates_in_place() -> None:
    claim = pvc("a", klass=None)
    assert apply_default_storage_class(claim, [LOCAL]) is True
    assert claim["spec"]["storageClassName"] == "local-path"
    assert apply_default_storage_class(claim, [LOCAL]) is False


def test_class_accessors_prefer_beta_annotation() -> None:
    claim = pvc("a", klass="spec", annotations={"volume.beta.kubernetes.io/storage-class": "beta"})
    assert claim_class(claim) == "beta"
    assert claim_class(pvc("a", klass=None)) == ""
    vol = pv("v", klass="gold")
    assert volume_class(vol) == "gold"
