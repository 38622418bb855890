"""Compressed completion-index sets (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybernetes.controllers.job.indexes import (
    completion_index,
    first_pending_indexes,
    format_indexes,
    parse_indexes,
)


@pytest.mark.parametrize(("indexes", "text"), [
    pytest.param(set(), "", id="empty"),
    pytest.param({3}, "3", id="single"),
    pytest.param({0, 1}, "0-1", id="pair-is-a-range"),
    pytest.param({0, 1, 2, 4}, "0-2,4", id="range-and-single"),
    pytest.param({1, 3, 5, 6, 7, 9}, "1,3,5-7,9", id="mixed"),
])
def test_format_and_parse(indexes: set[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text) == indexes


@pytest.mark.parametrize(("text", "completions", "want"), [
    pytest.param("0-4,9", 5, {0, 1, 2, 3, 4}, id="scaled-down"),
    pytest.param("x,2,3-1,-1,5", None, {2, 5}, id="junk-skipped"),
    pytest.param(None, None, set(), id="none"),
])
def test_parse_edge_cases(text: str | None, completions: int | None, want: set[int]) -> None:
    assert parse_indexes(text, completions) == want


@given(st.sets(st.integers(0, 300)))
def test_round_trip(indexes: set[int]) -> None:
    assert parse_indexes(format_indexes(indexes)) == indexes


@pytest.mark.parametrize(("value", "want"), [
    pytest.param("3", 3, id="ok"), pytest.param("0", 0, id="zero"),
    pytest.param("03", None, id="leading-zero"), pytest.param("-1", None, id="negative"),
    pytest.param("a", None, id="junk"),
])
def test_completion_index(value: str, want: int | None) -> None:
    pod = {"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": value}}}
    assert completion_index(pod) == want


def test_first_pending() -> None:
    assert first_pending_indexes(6, {0, 2, 3}, 2) == [1, 4]
    assert first_pending_indexes(3, {0, 1, 2}, 2) == []
