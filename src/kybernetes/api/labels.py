"""Label selectors: the ``labelSelector=`` string syntax and ``metav1.LabelSelector`` objects.

    parse_selector("app=web,tier in (a,b),!canary")  -> Selector
    selector_from_label_selector({"matchLabels": {...}, "matchExpressions": [...]})  -> Selector
    Selector.matches(labels) / Selector.empty / str(Selector)

Semantics follow upstream ``k8s.io/apimachinery/pkg/labels``: requirements are ANDed and kept
sorted by key; ``!=`` and ``notin`` also match objects without the key; ``>``/``<`` compare
integers. ``EVERYTHING`` matches all label sets, ``NOTHING`` matches none (a nil LabelSelector).
Parse and validation errors raise ``errors.bad_request`` with upstream-style messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kybernetes.api import errors

# Operators (upstream selection.Operator values).
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)

# --------------------------------------------------------------------------------------------
# Validation of label keys and values (qualified names)

_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(f"^{_NAME_FMT}$")
_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_VALUE_FMT = f"({_NAME_FMT})?"
_VALUE_RE = re.compile(f"^{_VALUE_FMT}$")
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream ``RegexError`` wording (including its double spaces between examples)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    parts = []
    for i, ex in enumerate(examples):
        parts.append((" or " if i else "") + f"'{ex}', ")
    return f"{msg} (e.g. {''.join(parts)}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Errors for a qualified name (label key, annotation key): ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        example = _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
        return [
            f"a qualified name {example} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _NAME_RE.fullmatch(name):
        example = _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
        errs.append("name part " + example)
    return errs


def label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len(63))
    if not _VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def validate_label_key(key: str) -> str | None:
    """``None`` if ``key`` is a valid label key, else the upstream error text ("; "-joined)."""
    errs = qualified_name_errors(key)
    return "; ".join(errs) if errs else None


def validate_label_value(value: str) -> str | None:
    """``None`` if ``value`` is a valid label value, else the upstream error text."""
    errs = label_value_errors(value)
    return "; ".join(errs) if errs else None


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# Requirements and selectors


def _parse_int(s: str) -> int | None:
    if re.fullmatch(r"[+-]?[0-9]+", s) is None:
        return None
    n = int(s)
    return n if -(2**63) <= n < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            actual, wanted = _parse_int(labels[self.key]), _parse_int(self.values[0])
            if actual is None or wanted is None:
                return False
            return actual > wanted if op == GREATER_THAN else actual < wanted
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{self.values[0] if self.values else ''}"


def _value_count_error(op: str, values: list[str] | tuple[str, ...]) -> str | None:
    """Upstream's check of how many values an operator takes."""
    if op in (IN, NOT_IN) and not values:
        return "for 'in', 'notin' operators, values set can't be empty"
    if op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        return "exact-match compatibility requires one single value"
    if op in (EXISTS, DOES_NOT_EXIST) and values:
        return "values set must be empty for exists and does not exist"
    if op in (GREATER_THAN, LESS_THAN) and len(values) != 1:
        return "for 'Gt', 'Lt' operators, exactly one value is required"
    return None


def new_requirement(key: str, op: str, values: list[str] | tuple[str, ...]) -> Requirement:
    """Validate and build a requirement (upstream ``NewRequirement``); raises ``bad_request``."""
    msgs: list[str] = []
    key_err = validate_label_key(key)
    if key_err:
        msgs.append(f"key: Invalid value: {_quote(key)}: {key_err}")
    if op not in (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST):
        allowed = ", ".join(f'"{o}"' for o in (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST))
        msgs.append(f"operator: Unsupported value: {_quote(op)}: supported values: {allowed}")
    count_err = _value_count_error(op, values)
    if count_err:
        shown = "[" + ", ".join(_quote(v) for v in values) + "]"
        msgs.append(f"values: Invalid value: {shown}: {count_err}")
    for i, v in enumerate(values):
        if op in (GREATER_THAN, LESS_THAN) and _parse_int(v) is None:
            msgs.append(f"values[{i}]: Invalid value: {_quote(v)}: "
                        "for 'Gt', 'Lt' operators, the value must be an integer")
        val_err = validate_label_value(v)
        if val_err:
            msgs.append(f"values[{i}][{key}]: Invalid value: {_quote(v)}: {val_err}")
    if msgs:
        raise errors.bad_request(msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]")
    ordered = tuple(sorted(set(values))) if op in (IN, NOT_IN) else tuple(values)
    return Requirement(key, op, ordered)


@dataclass(frozen=True)
class Selector:
    """An AND of requirements. ``nothing=True`` is the selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector matches everything."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        lbls = labels or {}
        return all(r.matches(lbls) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def requires_exact(self, key: str) -> str | None:
        """The value ``key`` must equal (``k=v``/``k==v``/single-valued ``in``), if any."""
        for r in self.requirements:
            if r.key == key and r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                return r.values[0]
        return None


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def _sorted_selector(reqs: list[Requirement]) -> Selector:
    return Selector(tuple(sorted(reqs, key=lambda r: r.key)))


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """Exact-match selector for a label set (no validation); empty/None matches everything."""
    return _sorted_selector([Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items()])


# --------------------------------------------------------------------------------------------
# String syntax: lexer + recursive-descent parser (same grammar as upstream)

_IDENT, _EOS, _COMMA, _OPEN, _CLOSE, _NOT, _EQ, _DEQ, _NEQ, _GT, _LT, _IN, _NOTIN, _ERR = range(14)
_SYMBOLS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "<": _LT,
            "!=": _NEQ, "(": _OPEN}
_KEYWORDS = {"in": _IN, "notin": _NOTIN}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            out.append((_EOS, ""))
            return out
        if text[i] in _SPECIAL:
            j, best = i, None
            while j < n and text[j] in _SPECIAL:
                cand = text[i:j + 1]
                if cand in _SYMBOLS:
                    best = cand
                elif best is not None:
                    break
                j += 1
            if best is None:
                out.append((_ERR, f"error expected: keyword found '{text[i:j]}'"))
                i = j
            else:
                out.append((_SYMBOLS[best], best))
                i += len(best)
        else:
            j = i
            while j < n and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
                j += 1
            word = text[i:j]
            out.append((_KEYWORDS.get(word, _IDENT), word))
            i = j


class _ParseError(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def _tok(self, values: bool, advance: bool) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if advance:
            self.pos += 1
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def peek(self, values: bool = True) -> tuple[int, str]:
        return self._tok(values, advance=False)

    def take(self, values: bool = True) -> tuple[int, str]:
        return self._tok(values, advance=True)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _EOS:
                return reqs
            if tok not in (_IDENT, _NOT):
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except (_ParseError, errors.StatusError) as e:
                raise _ParseError(f"unable to parse requirement: {e}") from None
            tok, lit = self.take()
            if tok == _EOS:
                return reqs
            if tok != _COMMA:
                raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            tok2, lit2 = self.peek()
            if tok2 not in (_IDENT, _NOT):
                raise _ParseError(f"found '{lit2}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.take()
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != _IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key = lit
        key_err = validate_label_key(key)
        if key_err:
            raise _ParseError(f"<nil>: Invalid value: {_quote(key)}: {key_err}")
        if op == DOES_NOT_EXIST or self.peek()[0] in (_EOS, _COMMA):
            return new_requirement(key, op or EXISTS, [])
        op = self.operator()
        values = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, op, values)

    def operator(self) -> str:
        tok, lit = self.take(values=False)
        ops = {_IN: IN, _NOTIN: NOT_IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _NEQ: NOT_EQUALS,
               _GT: GREATER_THAN, _LT: LESS_THAN}
        if tok not in ops:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def set_values(self) -> list[str]:
        tok, lit = self.take()
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == _CLOSE:
            self.take()
            return [""]
        if tok not in (_IDENT, _COMMA):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        tok2, lit2 = self.take()
        if tok2 != _CLOSE:
            raise _ParseError(f"found '{lit2}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        out: list[str] = []
        while True:
            tok, lit = self.take()
            if tok == _IDENT:
                out.append(lit)
                tok2, lit2 = self.peek()
                if tok2 == _CLOSE:
                    return out
                if tok2 != _COMMA:
                    raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == _COMMA:
                if not out:
                    out.append("")
                tok2, _ = self.peek()
                if tok2 in (_CLOSE, _COMMA):
                    out.append("")
                if tok2 == _CLOSE:
                    return out
            else:
                raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        tok, _ = self.peek()
        if tok in (_EOS, _COMMA):
            return [""]
        tok, lit = self.take()
        if tok == _IDENT:
            return [lit]
        raise _ParseError(f"found '{lit}', expected: identifier")


def parse_selector(text: str | None) -> Selector:
    """Parse the ``labelSelector`` query syntax. Empty text matches everything."""
    if not text:
        return EVERYTHING
    try:
        reqs = _Parser(text).parse()
    except _ParseError as e:
        raise errors.bad_request(str(e)) from None
    return _sorted_selector(reqs)


# --------------------------------------------------------------------------------------------
# metav1.LabelSelector

_EXPR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(ls: Mapping[str, Any] | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``: ``None`` matches nothing, ``{}`` matches everything."""
    if ls is None:
        return NOTHING
    match_labels = ls.get("matchLabels") or {}
    exprs = ls.get("matchExpressions") or []
    if not match_labels and not exprs:
        return EVERYTHING
    reqs = [new_requirement(str(k), EQUALS, [str(v)]) for k, v in match_labels.items()]
    for expr in exprs:
        raw_op = expr.get("operator", "")
        op = _EXPR_OPS.get(raw_op)
        if op is None:
            raise errors.bad_request(f'"{raw_op}" is not a valid label selector operator')
        values = [str(v) for v in (expr.get("values") or [])]
        reqs.append(new_requirement(str(expr.get("key", "")), op, values))
    return _sorted_selector(reqs)


def label_selector_matches(ls: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Convenience: does metav1.LabelSelector ``ls`` match ``labels``? (invalid -> False)."""
    try:
        return selector_from_label_selector(ls).matches(labels)
    except errors.StatusError:
        return False


def format_label_selector(ls: Mapping[str, Any] | None) -> str:
    """String form of a LabelSelector (``app=web,tier in (a,b)``); empty/None -> ``""``.

    Invalid selectors render as ``<error>`` (as upstream ``FormatLabelSelector`` does).
    """
    if not ls:
        return ""
    try:
        return str(selector_from_label_selector(ls))
    except errors.StatusError:
        return "<error>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``k1=v1,k2=v2`` sorted by key; empty -> ``<none>`` (kubectl ``--show-labels``)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))
