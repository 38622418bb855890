"""Stabilization windows, scaling policies and the legacy limits (pure), table-driven."""

from __future__ import annotations

import pytest

from kybernetes.controllers.hpa_calc import (
    DEFAULT_SCALE_DOWN_POLICIES,
    DEFAULT_SCALE_UP_POLICIES,
    History,
    Recommendation,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    convert_with_behavior_rate,
    convert_with_rules,
    record_scale_event,
    scale_down_limit,
    scale_up_limit,
    scaling_rules,
    stabilize,
    stabilize_with_behaviors,
)

NOW = 10_000.0
UP = ScalingRules(0.0, "Max", DEFAULT_SCALE_UP_POLICIES)
DOWN = ScalingRules(300.0, "Max", DEFAULT_SCALE_DOWN_POLICIES)


def recs(*pairs: tuple[int, float]) -> tuple[Recommendation, ...]:
    """(replicas, seconds ago) pairs."""
    return tuple(Recommendation(r, NOW - ago) for r, ago in pairs)


def events(*pairs: tuple[int, float]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(c, NOW - ago) for c, ago in pairs)


def test_default_rules_as_upstream() -> None:
    up, down = scaling_rules({}, 300.0)
    assert up == ScalingRules(0.0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))
    assert down == ScalingRules(300.0, "Max", (ScalingPolicy("Percent", 100, 15),))
    # the controller's --horizontal-pod-autoscaler-downscale-stabilization fills an unset scaleDown window
    assert scaling_rules({"scaleDown": {"selectPolicy": "Min"}}, 60.0)[1] == \
        ScalingRules(60.0, "Min", (ScalingPolicy("Percent", 100, 15),))
    up, down = scaling_rules({"scaleUp": {"stabilizationWindowSeconds": 30, "policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 60}]}, "scaleDown": {"policies": []}}, 300.0)
    assert up == ScalingRules(30.0, "Max", (ScalingPolicy("Pods", 1, 60),))
    assert down.policies == ()


@pytest.mark.parametrize(("history", "desired", "want"), [
    pytest.param(recs(), 3, 3, id="no-history"),
    pytest.param(recs((5, 100), (4, 10)), 3, 5, id="highest-in-window"),
    pytest.param(recs((9, 301), (4, 10)), 3, 4, id="old-sample-ignored"),
    pytest.param(recs((2, 100)), 3, 3, id="higher-desired-wins"),
])
def test_legacy_stabilize(history: tuple[Recommendation, ...], desired: int, want: int) -> None:
    got, new = stabilize(history, desired, 300.0, NOW)
    assert got == want
    assert Recommendation(desired, NOW) in new


def test_legacy_stabilize_reuses_an_old_slot() -> None:
    _, new = stabilize(recs((9, 400), (4, 10), (7, 500)), 3, 300.0, NOW)
    assert new == recs((9, 400), (4, 10), (3, 0))          # the last old sample is replaced
    _, new = stabilize(recs((4, 10)), 3, 300.0, NOW)
    assert new == recs((4, 10), (3, 0))


@pytest.mark.parametrize(("history", "desired", "current", "up", "down", "want"), [
    pytest.param(recs(), 5, 3, 0, 300, (5, "ScaleUpStabilized"), id="up-no-window"),
    pytest.param(recs((3, 20), (8, 10)), 8, 3, 30, 300, (3, "ScaleUpStabilized"), id="up-window-holds-lowest"),
    pytest.param(recs((4, 20), (8, 10)), 8, 3, 30, 300, (4, "ScaleUpStabilized"), id="up-window-lowest-recent"),
    pytest.param(recs((4, 40), (8, 10)), 8, 3, 30, 300, (8, "ScaleUpStabilized"), id="up-window-expired"),
    pytest.param(recs((10, 200), (6, 100)), 2, 10, 0, 300, (10, "ScaleDownStabilized"), id="down-holds-highest"),
    pytest.param(recs((10, 400), (6, 100)), 2, 10, 0, 300, (6, "ScaleDownStabilized"), id="down-highest-recent"),
    pytest.param(recs((10, 400), (6, 350)), 2, 10, 0, 300, (2, "ScaleDownStabilized"), id="down-window-expired"),
    pytest.param(recs((7, 10)), 5, 5, 0, 300, (5, "ScaleUpStabilized"), id="equal-desired-stays"),
    pytest.param(recs((7, 10)), 4, 6, 0, 300, (6, "ScaleDownStabilized"), id="down-held-at-current"),
])
def test_stabilize_with_behaviors(history: tuple[Recommendation, ...], desired: int, current: int, up: float,
                                  down: float, want: tuple[int, str]) -> None:
    rec, reason, message, new = stabilize_with_behaviors(
        history, desired, current, ScalingRules(up, "Max", ()), ScalingRules(down, "Max", ()), NOW)
    assert (rec, reason) == want
    assert message == ("recent recommendations were lower than current one, applying the lowest recent recommendation"
                       if reason == "ScaleUpStabilized" else
                       "recent recommendations were higher than current one, applying the highest recent recommendation")
    assert Recommendation(desired, NOW) in new


def test_stabilize_with_behaviors_replaces_sample_outside_both_windows() -> None:
    old = recs((3, 400), (5, 20))
    *_, new = stabilize_with_behaviors(old, 6, 5, ScalingRules(30, "Max", ()), ScalingRules(300, "Max", ()), NOW)
    assert new == recs((6, 0), (5, 20))


def policy(*ps: tuple[str, int, int], select: str = "Max", window: float = 0.0) -> ScalingRules:
    return ScalingRules(window, select, tuple(ScalingPolicy(*p) for p in ps))


@pytest.mark.parametrize(("current", "history", "rules", "want"), [
    pytest.param(1, History(), UP, 5, id="default-small: +4 pods"),
    pytest.param(10, History(), UP, 20, id="default-large: +100%"),
    pytest.param(10, History(scale_up=events((4, 5))), UP, 12, id="default-after-recent-scale-up"),
    pytest.param(10, History(scale_up=events((4, 20))), UP, 20, id="event-outside-period"),
    pytest.param(10, History(scale_down=events((2, 5))), UP, 24, id="recent-scale-down-raises-start"),
    pytest.param(10, History(), policy(("Pods", 4, 60), ("Percent", 100, 60), select="Min"), 14, id="min-select"),
    pytest.param(10, History(), policy(("Pods", 4, 60), select="Disabled"), 10, id="disabled"),
    pytest.param(3, History(), policy(("Percent", 10, 60)), 4, id="percent-rounds-up"),
    pytest.param(3, History(), policy(), -(2**31), id="no-policies"),
])
def test_scale_up_limit(current: int, history: History, rules: ScalingRules, want: int) -> None:
    assert scale_up_limit(current, history, rules, NOW) == want


@pytest.mark.parametrize(("current", "history", "rules", "want"), [
    pytest.param(10, History(), DOWN, 0, id="default: -100%"),
    pytest.param(5, History(), policy(("Percent", 50, 15)), 2, id="percent-truncates"),
    pytest.param(10, History(), policy(("Pods", 2, 60), ("Percent", 50, 60)), 5, id="max-select-takes-most"),
    pytest.param(10, History(), policy(("Pods", 2, 60), ("Percent", 50, 60), select="Min"), 8, id="min-select"),
    pytest.param(8, History(scale_down=events((2, 30))), policy(("Pods", 2, 60)), 8, id="budget-spent"),
    pytest.param(8, History(scale_down=events((2, 61))), policy(("Pods", 2, 60)), 6, id="budget-renewed"),
    pytest.param(8, History(), policy(("Pods", 2, 60), select="Disabled"), 8, id="disabled"),
])
def test_scale_down_limit(current: int, history: History, rules: ScalingRules, want: int) -> None:
    assert scale_down_limit(current, history, rules, NOW) == want


@pytest.mark.parametrize(("current", "desired", "mn", "mx", "want"), [
    pytest.param(3, 5, 1, 10, (5, "DesiredWithinRange"), id="within"),
    pytest.param(1, 9, 1, 10, (4, "ScaleUpLimit"), id="up-limit-min-4"),
    pytest.param(3, 9, 1, 10, (6, "ScaleUpLimit"), id="up-limit-double"),
    pytest.param(8, 30, 1, 10, (10, "TooManyReplicas"), id="max"),
    pytest.param(3, 0, 2, 10, (2, "TooFewReplicas"), id="min"),
    pytest.param(3, 1, 1, 10, (1, "DesiredWithinRange"), id="down-unlimited"),
])
def test_convert_with_rules(current: int, desired: int, mn: int, mx: int, want: tuple[int, str]) -> None:
    got, reason, message = convert_with_rules(current, desired, mn, mx)
    assert (got, reason) == want
    assert message == {
        "DesiredWithinRange": "the desired count is within the acceptable range",
        "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
        "TooManyReplicas": "the desired replica count is more than the maximum replica count",
        "TooFewReplicas": "the desired replica count is less than the minimum replica count"}[reason]


@pytest.mark.parametrize(("current", "desired", "mn", "mx", "up", "down", "history", "want"), [
    pytest.param(1, 8, 1, 10, UP, DOWN, History(), (5, "ScaleUpLimit"), id="up-4-pods"),
    pytest.param(4, 20, 1, 10, UP, DOWN, History(), (8, "ScaleUpLimit"), id="up-100-percent"),
    pytest.param(8, 20, 1, 10, UP, DOWN, History(), (10, "TooManyReplicas"), id="up-max"),
    pytest.param(5, 3, 1, 10, UP, DOWN, History(), (3, "DesiredWithinRange"), id="down-within"),
    pytest.param(5, 0, 2, 10, UP, DOWN, History(), (2, "TooFewReplicas"), id="down-min"),
    pytest.param(10, 1, 1, 10, UP, policy(("Pods", 3, 60)), History(), (7, "ScaleDownLimit"), id="down-pods"),
    pytest.param(7, 1, 1, 10, UP, policy(("Pods", 3, 60)), History(scale_down=events((3, 10))),
                 (7, "ScaleDownLimit"), id="down-budget-spent"),
    pytest.param(3, 6, 1, 10, policy(("Pods", 2, 60)), DOWN, History(scale_up=events((2, 10))),
                 (3, "ScaleUpLimit"), id="up-budget-spent"),
    pytest.param(3, 6, 1, 10, policy(("Pods", 1, 60), select="Disabled"), DOWN, History(),
                 (3, "ScaleUpLimit"), id="up-disabled"),
    pytest.param(5, 5, 1, 10, UP, DOWN, History(), (5, "DesiredWithinRange"), id="same"),
])
def test_convert_with_behavior_rate(current: int, desired: int, mn: int, mx: int, up: ScalingRules,
                                    down: ScalingRules, history: History, want: tuple[int, str]) -> None:
    got, reason, _ = convert_with_behavior_rate(current, desired, mn, mx, up, down, history, NOW)
    assert (got, reason) == want


def test_record_scale_event() -> None:
    h = History()
    assert record_scale_event(h, None, 1, 5, NOW) is h            # no behavior: nothing kept
    up = record_scale_event(h, {}, 1, 5, NOW)
    assert up.scale_up == (ScaleEvent(4, NOW),) and up.scale_down == ()
    down = record_scale_event(up, {}, 5, 2, NOW + 1)
    assert down.scale_down == (ScaleEvent(3, NOW + 1),)
    # events older than the longest policy period are marked outdated and their slot is reused
    rules = {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}
    h = History(scale_up=(ScaleEvent(1, NOW - 100), ScaleEvent(2, NOW - 10)))
    got = record_scale_event(h, rules, 5, 8, NOW)
    assert got.scale_up == (ScaleEvent(3, NOW), ScaleEvent(2, NOW - 10))
