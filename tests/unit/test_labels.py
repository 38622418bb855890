"""Label selectors: string syntax, metav1.LabelSelector, formatting, key/value validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kybernetes.api import errors
from kybernetes.api.labels import (
    EVERYTHING,
    NOTHING,
    format_label_selector,
    format_labels,
    label_selector_matches,
    parse_selector,
    selector_from_label_selector,
    selector_from_set,
    validate_label_key,
    validate_label_value,
)

LABELS = {"app": "web", "tier": "fe", "size": "7", "env": "prod"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", True, id="empty-matches-all"),
        pytest.param("app=web", True, id="equals"),
        pytest.param("app==web", True, id="double-equals"),
        pytest.param("app=db", False, id="equals-miss"),
        pytest.param("app!=db", True, id="not-equals"),
        pytest.param("missing!=x", True, id="not-equals-absent-key"),
        pytest.param("app in (web,db)", True, id="in"),
        pytest.param("app in (db)", False, id="in-miss"),
        pytest.param("app notin (db,x)", True, id="notin"),
        pytest.param("missing notin (a)", True, id="notin-absent-key"),
        pytest.param("app notin (web)", False, id="notin-miss"),
        pytest.param("app", True, id="exists"),
        pytest.param("missing", False, id="exists-miss"),
        pytest.param("!missing", True, id="not-exists"),
        pytest.param("!app", False, id="not-exists-miss"),
        pytest.param("size>5", True, id="gt"),
        pytest.param("size>7", False, id="gt-equal"),
        pytest.param("size<10", True, id="lt"),
        pytest.param("app>1", False, id="gt-non-integer-label"),
        pytest.param("missing<10", False, id="lt-absent"),
        pytest.param("app=web,tier=fe", True, id="and"),
        pytest.param("app=web,tier=be", False, id="and-miss"),
        pytest.param("  app = web ,  tier  in  ( fe , be ) ", True, id="whitespace"),
        pytest.param("env in (in,notin,prod)", True, id="keywords-as-values"),
        pytest.param("app=", False, id="empty-value"),
        pytest.param("example.com/role!=x", True, id="prefixed-key"),
    ],
)
def test_parse_and_match(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


def test_empty_value_matches_empty_label() -> None:
    assert parse_selector("a=").matches({"a": ""})
    assert parse_selector("a in ()").matches({"a": ""})
    assert parse_selector("a in (,x)").matches({"a": ""})


def test_matches_none_labels() -> None:
    assert parse_selector("!a").matches(None)
    assert not parse_selector("a").matches(None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
                     id="missing-operator"),
        pytest.param("a in b", "unable to parse requirement: found 'b' expected: '('", id="in-without-paren"),
        pytest.param("a in (b", "unable to parse requirement: found '', expected: ',' or ')'",
                     id="unclosed-paren"),
        pytest.param("a=b,", "found '', expected: identifier after ','", id="trailing-comma"),
        pytest.param("=b", "found '=', expected: !, identifier, or 'end of string'", id="no-key"),
        pytest.param("a=b=c", "found '=', expected: ',' or 'end of string'", id="double-operator"),
        pytest.param("!a=b", "found '=', expected: ',' or 'end of string'", id="not-exists-with-value"),
        pytest.param("a>b", "for 'Gt', 'Lt' operators, the value must be an integer", id="gt-non-integer"),
        pytest.param("-a=b", 'Invalid value: "-a"', id="bad-key"),
        pytest.param("a=-b", 'values[0][a]: Invalid value: "-b": a valid label must be', id="bad-value"),
        pytest.param("a/b/c=d", "a qualified name must consist of", id="two-slashes"),
        pytest.param("x" * 64 + "=v", "name part must be no more than 63 characters", id="key-too-long"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(errors.StatusError) as exc:
        parse_selector(text)
    assert exc.value.code == 400
    assert message in exc.value.message


def test_string_form_is_sorted_and_reparsable() -> None:
    sel = parse_selector("z=1,b in (y,x),!c,a,n>3")
    assert str(sel) == "a,b in (x,y),!c,n>3,z=1"
    assert parse_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("ls", "labels", "expected"),
    [
        pytest.param(None, {"a": "b"}, False, id="nil-matches-nothing"),
        pytest.param({}, {"a": "b"}, True, id="empty-matches-everything"),
        pytest.param({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"}, True, id="match-labels"),
        pytest.param({"matchLabels": {"a": "b"}}, {"a": "x"}, False, id="match-labels-miss"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "b"]}]},
                     {"a": "b"}, True, id="expr-in"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["b"]}]},
                     {}, True, id="expr-notin-absent"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True,
                     id="expr-exists"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""},
                     False, id="expr-does-not-exist"),
        pytest.param({"matchLabels": {"a": "b"},
                      "matchExpressions": [{"key": "c", "operator": "Exists"}]},
                     {"a": "b"}, False, id="labels-and-expressions"),
    ],
)
def test_label_selector_objects(ls: dict | None, labels: dict, expected: bool) -> None:
    assert selector_from_label_selector(ls).matches(labels) is expected


def test_label_selector_semantics_flags() -> None:
    assert selector_from_label_selector(None) == NOTHING and not NOTHING.empty
    assert selector_from_label_selector({}) == EVERYTHING and EVERYTHING.empty
    assert selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty


@pytest.mark.parametrize(
    "ls",
    [
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, id="bad-operator"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, id="in-no-values"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
                     id="exists-with-values"),
        pytest.param({"matchLabels": {"a": "not valid"}}, id="bad-value"),
    ],
)
def test_invalid_label_selector(ls: dict) -> None:
    with pytest.raises(errors.StatusError):
        selector_from_label_selector(ls)
    assert label_selector_matches(ls, {"a": "x"}) is False


@pytest.mark.parametrize(
    ("ls", "text"),
    [
        pytest.param(None, "", id="none"),
        pytest.param({}, "", id="empty"),
        pytest.param({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe", id="labels"),
        pytest.param({"matchLabels": {"app": "web"},
                      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                           {"key": "x", "operator": "DoesNotExist"},
                                           {"key": "env", "operator": "NotIn", "values": ["dev"]},
                                           {"key": "has", "operator": "Exists"}]},
                     "app=web,env notin (dev),has,tier in (a,b),!x", id="expressions"),
        pytest.param({"matchExpressions": [{"key": "a", "operator": "Nope"}]}, "<error>", id="invalid"),
    ],
)
def test_format_label_selector(ls: dict | None, text: str) -> None:
    assert format_label_selector(ls) == text


def test_format_labels() -> None:
    assert format_labels({}) == "<none>"
    assert format_labels(None) == "<none>"
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"


def test_selector_from_set() -> None:
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"}) and not sel.matches({"a": "1"})
    assert sel.requires_exact("a") == "1" and sel.requires_exact("c") is None
    assert selector_from_set({}).empty


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        pytest.param("app", True, id="simple"),
        pytest.param("app.kubernetes.io/name", True, id="prefixed"),
        pytest.param("A_b-c.D", True, id="mixed-chars"),
        pytest.param("a" * 63, True, id="63-chars"),
        pytest.param("a" * 64, False, id="64-chars"),
        pytest.param("", False, id="empty"),
        pytest.param("-a", False, id="leading-dash"),
        pytest.param("a-", False, id="trailing-dash"),
        pytest.param("/a", False, id="empty-prefix"),
        pytest.param("Example.com/a", False, id="uppercase-prefix"),
        pytest.param(("a" * 63 + ".") * 4 + "a/b", False, id="prefix-too-long"),
        pytest.param("a/b/c", False, id="two-slashes"),
        pytest.param("a b", False, id="space"),
    ],
)
def test_validate_label_key(key: str, ok: bool) -> None:
    assert (validate_label_key(key) is None) is ok


def test_validate_label_key_messages() -> None:
    assert validate_label_key("/a") == "prefix part must be non-empty"
    msg = validate_label_key("-a")
    assert msg is not None and msg.startswith("name part must consist of alphanumeric characters")
    assert "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'" in msg


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("v1.2_3-x", True, id="chars"),
        pytest.param("a" * 63, True, id="63"),
        pytest.param("a" * 64, False, id="64"),
        pytest.param("-a", False, id="leading-dash"),
        pytest.param("a/b", False, id="slash"),
        pytest.param("a\n", False, id="newline"),
    ],
)
def test_validate_label_value(value: str, ok: bool) -> None:
    assert (validate_label_value(value) is None) is ok


_key = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
_val = st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True)


@settings(max_examples=50)
@given(st.dictionaries(_key, _val, max_size=5), st.dictionaries(_key, _val, max_size=5))
def test_set_selector_roundtrip(wanted: dict[str, str], labels: dict[str, str]) -> None:
    sel = selector_from_set(wanted)
    reparsed = parse_selector(str(sel))
    assert reparsed == sel
    expected = all(labels.get(k) == v for k, v in wanted.items())
    assert reparsed.matches(labels) is expected
