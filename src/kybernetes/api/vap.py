"""ValidatingAdmissionPolicy (``admissionregistration.k8s.io/v1``): CEL compilation, validation of
policies and bindings, and the evaluation of one policy against one request (pure; the admission
plugin in ``apiserver/admission/policy.py`` matches requests, finds params and raises).

CEL is ``cel-python`` (the CEL language with its standard macros and functions: ``has``, ``all``,
``exists``, ``exists_one``, ``map``, ``filter``, ``size``, ``matches``, ``startsWith``, ``endsWith``,
``contains``, ``in``, arithmetic, comparisons, ``int``/``string``/``double``/``duration``/
``timestamp``). Kubernetes' CEL libraries (``quantity``, ``url``, ``authorizer``, the extended
string and list functions) are not available, and expressions are not type-checked against the
resource's schema: an expression that reads a missing field fails when it runs (and
``failurePolicy`` decides) instead of when the policy is created. There is no cost budget: an
expression runs to its end (typical ones take 0.1-0.4 ms).

Variables an expression sees: ``object``, ``oldObject`` (null on CREATE / DELETE respectively),
``request`` (the AdmissionRequest: ``kind``, ``resource``, ``subResource``, ``name``,
``namespace``, ``operation``, ``userInfo``, ``dryRun``, ``uid``), ``params`` (null without a
``paramKind``), ``namespaceObject`` (null for cluster-scoped objects) and ``variables`` (the
policy's ``spec.variables``, each evaluated in order; an error in one only matters to the
expressions that use it).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Cause, duplicate, invalid_value, not_supported, required

log = logging.getLogger(__name__)
Obj = dict[str, Any]

ACTIONS = ("Deny", "Warn", "Audit")
REASONS = ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge")
REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}


class CelError(Exception):
    """A CEL expression did not compile, or failed when it ran."""


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import celpy

    return celpy.Environment()


@functools.lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Any:
    """A runnable program for ``expression`` (cached); CelError with the parser's message."""
    import celpy

    env = _environment()
    try:
        return env.program(env.compile(expression))
    except celpy.CELParseError as e:
        raise CelError(f"compilation failed: ERROR: <input>:{e.line}:{e.column}: Syntax error") from None
    except Exception as e:  # noqa: BLE001 - cel-python raises assorted errors on bad input
        raise CelError(f"compilation failed: {e}") from None


def to_cel(value: Any) -> Any:
    import celpy

    return celpy.json_to_cel(value)


def _plain(value: Any) -> Any:
    """A CEL result as plain Python (bool, int, str, list, dict, None)."""
    from celpy import celtypes

    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, (celtypes.IntType, celtypes.UintType)):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.ListType):
        return [_plain(v) for v in value]
    if isinstance(value, celtypes.MapType):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def run(expression: str, activation: Mapping[str, Any]) -> Any:
    """Evaluate ``expression`` (compiled once) in ``activation``; CelError when it fails."""
    import celpy

    program = compile_expression(expression)
    try:
        return _plain(program.evaluate(dict(activation)))
    except celpy.CELEvalError as e:
        raise CelError(_eval_message(e)) from None
    except Exception as e:  # noqa: BLE001 - any failure inside the evaluator is the expression's error
        raise CelError(str(e) or type(e).__name__) from None


_MISSING_KEY = re.compile(r"^no such member in mapping: '(.*)'$")


def _eval_message(e: Any) -> str:
    """cel-python's error text, in CEL-go's words where they differ (``no such key: x``,
    ``no such overload``), which is what Kubernetes users see."""
    args = getattr(e, "args", ())
    text = str(args[0]) if args else str(e)
    m = _MISSING_KEY.match(text)
    if m:
        return f"no such key: {m.group(1)}"
    if text.startswith("found no matching overload"):
        return "no such overload"
    return text


def activation(*, obj: Obj | None, old: Obj | None, request: Obj, params: Any, namespace: Obj | None,
               variables: list[Obj]) -> dict[str, Any]:
    """The CEL variables for one evaluation; ``variables`` (name, expression) are evaluated in
    order, a failing one stored as its error (raised only where it is used)."""
    import celpy
    from celpy import celtypes

    act: dict[str, Any] = {
        "object": to_cel(obj), "oldObject": to_cel(old), "request": to_cel(request),
        "params": to_cel(params), "namespaceObject": to_cel(namespace),
    }
    values = celtypes.MapType({})
    act["variables"] = values
    for v in variables:
        name = str(v.get("name") or "")
        try:
            values[celtypes.StringType(name)] = compile_expression(str(v.get("expression") or "")).evaluate(act)
        except celpy.CELEvalError as e:
            values[celtypes.StringType(name)] = e
        except CelError as e:
            values[celtypes.StringType(name)] = celpy.CELEvalError(str(e))
    return act


# ------------------------------------------------------------------------------------------
# evaluation
@dataclass(frozen=True)
class Decision:
    """A failed validation: the message the request is refused or warned with, and its reason."""

    message: str
    reason: str = "Invalid"
    index: int = 0       # of the validation in spec.validations


def evaluate(policy: Obj, act: Mapping[str, Any]) -> list[Decision]:
    """The policy's match conditions and validations in ``act``: the failures (empty: admitted;
    a match condition that is false also admits). Errors follow ``failurePolicy``."""
    spec = policy.get("spec") or {}
    fail = (spec.get("failurePolicy") or "Fail") == "Fail"
    matched, error = match_conditions(spec.get("matchConditions") or [], act)
    if error is not None:
        return [Decision(error)] if fail else []
    if not matched:
        return []
    out: list[Decision] = []
    for i, v in enumerate(spec.get("validations") or []):
        expression = str(v.get("expression") or "")
        try:
            ok = run(expression, act)
        except CelError as e:
            if fail:
                out.append(Decision(f"expression '{expression}' resulted in error: {e}", index=i))
            continue
        if not isinstance(ok, bool):
            if fail:
                out.append(Decision(f"expression '{expression}' resulted in error: expected a bool, got {ok!r}",
                                    index=i))
            continue
        if ok:
            continue
        out.append(Decision(_message(v, expression, act), str(v.get("reason") or "Invalid"), i))
    return out


def match_conditions(conditions: list[Obj], act: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(all true, error): any false condition means no match, whatever the others did; else an
    error in one is reported (``failurePolicy`` decides), else all are true."""
    errors: list[str] = []
    for cond in conditions:
        try:
            value = run(str(cond.get("expression") or ""), act)
        except CelError as e:
            errors.append(f"matchCondition '{cond.get('name', '')}': {e}")
            continue
        if value is not True:
            return False, None
    if errors:
        return False, "failed to evaluate match conditions: " + "; ".join(errors)
    return True, None


def _message(validation: Obj, expression: str, act: Mapping[str, Any]) -> str:
    """messageExpression (when it gives a non-empty string), else message, else upstream's
    ``failed expression: <expression>``."""
    if validation.get("messageExpression"):
        try:
            text = run(str(validation["messageExpression"]), act)
        except CelError as e:
            log.info("messageExpression of %r failed: %s", expression, e)
        else:
            if isinstance(text, str) and text.strip() and "\n" not in text:
                return text
    if validation.get("message"):
        return str(validation["message"])
    return f"failed expression: {expression.strip()}"


# ------------------------------------------------------------------------------------------
# validation of the objects (422 causes)
def compiles(path: str, expression: Any) -> list[Cause]:
    if not isinstance(expression, str) or not expression.strip():
        return [required(path)]
    try:
        compile_expression(expression)
    except CelError as e:
        return [invalid_value(path, expression, str(e))]
    return []


def named_expressions(path: str, items: list[Obj]) -> list[Cause]:
    """A list of ``{name, expression}`` (matchConditions, variables): unique names, compiling."""
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = str((item or {}).get("name") or "")
        if not name:
            errs.append(required(f"{path}[{i}].name"))
        elif name in seen:
            errs.append(duplicate(f"{path}[{i}].name", name))
        seen.add(name)
        errs += compiles(f"{path}[{i}].expression", (item or {}).get("expression"))
    return errs


def _one_of(path: str, value: Any, allowed: tuple[str, ...]) -> list[Cause]:
    return [] if value is None or value in allowed else [not_supported(path, value, list(allowed))]


def validate_policy(obj: Obj, old: Obj | None = None) -> list[Cause]:
    spec = obj.get("spec") or {}
    errs: list[Cause] = []
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        errs.append(required("spec.validations", "validations or auditAnnotations must contain at least one item"))
    errs += _one_of("spec.failurePolicy", spec.get("failurePolicy"), ("Fail", "Ignore"))
    mc = spec.get("matchConstraints") or {}
    if not mc.get("resourceRules"):
        errs.append(required("spec.matchConstraints.resourceRules"))
    errs += _one_of("spec.matchConstraints.matchPolicy", mc.get("matchPolicy"), ("Exact", "Equivalent"))
    pk = spec.get("paramKind")
    if pk is not None:
        if not pk.get("apiVersion"):
            errs.append(required("spec.paramKind.apiVersion"))
        if not pk.get("kind"):
            errs.append(required("spec.paramKind.kind"))
    for field in ("matchConditions", "variables"):
        errs += named_expressions(f"spec.{field}", spec.get(field) or [])
    for i, v in enumerate(spec.get("validations") or []):
        errs += compiles(f"spec.validations[{i}].expression", v.get("expression"))
        if v.get("messageExpression"):
            errs += compiles(f"spec.validations[{i}].messageExpression", v.get("messageExpression"))
        errs += _one_of(f"spec.validations[{i}].reason", v.get("reason"), REASONS)
    for i, a in enumerate(spec.get("auditAnnotations") or []):
        if not a.get("key"):
            errs.append(required(f"spec.auditAnnotations[{i}].key"))
        errs += compiles(f"spec.auditAnnotations[{i}].valueExpression", a.get("valueExpression"))
    return errs


def validate_binding(obj: Obj, old: Obj | None = None) -> list[Cause]:
    spec = obj.get("spec") or {}
    errs: list[Cause] = []
    if not spec.get("policyName"):
        errs.append(required("spec.policyName"))
    actions = spec.get("validationActions") or []
    if not actions:
        errs.append(required("spec.validationActions"))
    for i, a in enumerate(actions):
        errs += _one_of(f"spec.validationActions[{i}]", a, ACTIONS)
    if len(set(actions)) != len(actions):
        errs.append(invalid_value("spec.validationActions", actions, "must not contain duplicates"))
    if "Deny" in actions and "Warn" in actions:
        errs.append(invalid_value("spec.validationActions", actions, "must not contain both Deny and Warn "
                                  "(repeating the same validation failure information in the API response and "
                                  "headers serves no purpose)"))
    ref = spec.get("paramRef")
    if ref is not None:
        if ref.get("name") and ref.get("selector") is not None:
            errs.append(invalid_value("spec.paramRef.name", ref["name"], "name and selector are mutually exclusive"))
        if not ref.get("name") and ref.get("selector") is None:
            errs.append(required("spec.paramRef", "one of name or selector must be set"))
        action = ref.get("parameterNotFoundAction")
        if action is None:
            errs.append(required("spec.paramRef.parameterNotFoundAction"))
        else:
            errs += _one_of("spec.paramRef.parameterNotFoundAction", action, ("Allow", "Deny"))
    return errs
