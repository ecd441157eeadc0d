"""Pydantic's validation errors as rules of ours: one field problem each, with the code of the
rule broken and its params (pydantic's context, under names a client can rely on)."""

import re
from typing import Any

from fastapi.exceptions import RequestValidationError

from app.errors.codes import Code
from app.errors.types import FieldProblem

DUPLICATE_KEY = "duplicate key"


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


# Patterns declared with `pattern=` (a path's or a field's): the rule each stands for.
PATTERN_RULES: dict[str, tuple[Code, dict[str, Any]]] = {
    r"^[0-9]{2,4}$": (Code.digits, {"min": 2, "max": 4}),
    r"^[0-9]{2,6}$": (Code.digits, {"min": 2, "max": 6}),
    r"^[A-Za-z0-9._-]{3,64}$": (Code.sip_username, {"min": 3, "max": 64}),
    r"^[A-Za-z0-9._:-]{1,64}$": (Code.identifier, {"min": 1, "max": 64}),
    r"^\+?[0-9*#]+$": (Code.dialled_number, {}),
    r"^[a-z_]+$": (Code.audit_resource_type, {}),
    r"^[!-~]+$": (Code.printable_ascii, {}),
}
_TYPE_RULES = {
    "missing": Code.required,
    "bool_type": Code.not_a_boolean,
    "bool_parsing": Code.not_a_boolean,
    "int_type": Code.not_a_whole_number,
    "int_parsing": Code.not_a_whole_number,
    "int_from_float": Code.not_a_whole_number,
    "string_type": Code.not_text,
    "uuid_parsing": Code.not_a_uuid,
    "uuid_type": Code.not_a_uuid,
    "extra_forbidden": Code.unknown_field,
    "dict_type": Code.not_an_object,
    "model_type": Code.not_an_object,
    "model_attributes_type": Code.not_an_object,
    "list_type": Code.not_a_list,
    "timezone_aware": Code.date_time_without_offset,
    "datetime_parsing": Code.not_a_date_time,
    "datetime_from_date_parsing": Code.not_a_date_time,
    "datetime_type": Code.not_a_date_time,
}
# A pydantic context value, and the name of the param it is.
_BOUNDS = {
    "string_too_short": (Code.text_too_short, "min_length", "min"),
    "string_too_long": (Code.text_too_long, "max_length", "max"),
    "too_short": (Code.too_few_items, "min_length", "min"),
    "too_long": (Code.too_many_items, "max_length", "max"),
    "greater_than_equal": (Code.number_too_small, "ge", "min"),
    "less_than_equal": (Code.number_too_large, "le", "max"),
}
DATE_TIME_EXAMPLE = "2026-11-25T09:30:00+07:00"
_QUOTED = re.compile(r"'([^']*)'")
_CODES = frozenset(Code)


def _plain(value: Any) -> Any:
    """A context value as JSON carries it."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def field_rule(err: Any) -> tuple[Code, dict[str, Any]]:
    """The rule a pydantic error stands for, and its params."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind in _CODES:
        # One of ours (a PydanticCustomError): its context is its params.
        return Code(kind), {name: _plain(value) for name, value in ctx.items()}
    if kind == "string_pattern_mismatch":
        return PATTERN_RULES.get(str(ctx.get("pattern")), (Code.invalid_format, {}))
    if kind in _TYPE_RULES:
        rule = _TYPE_RULES[kind]
        return rule, {"example": DATE_TIME_EXAMPLE} if rule is Code.not_a_date_time else {}
    if kind in _BOUNDS:
        rule, name, param = _BOUNDS[kind]
        return rule, {param: _plain(ctx.get(name))}
    if kind in ("enum", "literal_error"):
        return Code.not_one_of, {"allowed": _QUOTED.findall(str(ctx.get("expected", "")))}
    if kind == "union_tag_invalid":
        return Code.not_one_of, {"allowed": _QUOTED.findall(str(ctx.get("expected_tags", "")))}
    return Code.invalid, {}


def field_problem(err: Any, *, prefix: tuple[Any, ...] = ()) -> FieldProblem:
    loc = (*prefix, *tuple(err.get("loc", ())))
    ctx = err.get("ctx") or {}
    if err.get("type") == "union_tag_not_found":
        # The object lacks its discriminator: the discriminator is the field.
        name = str(ctx.get("discriminator", "")).strip("'")
        return FieldProblem(_field_name((*loc, name)), Code.required)
    rule, params = field_rule(err)
    return FieldProblem(_field_name(loc), rule, params)


def validation_errors(exc: RequestValidationError) -> list[FieldProblem]:
    out = []
    for err in exc.errors():
        kind = str(err.get("type", ""))
        if kind == "json_invalid":
            reason = str(err.get("ctx", {}).get("error", ""))
            if reason.startswith(DUPLICATE_KEY):
                field = "body." + reason.removeprefix(DUPLICATE_KEY).strip()
                out.append(FieldProblem(field, Code.duplicate_key))
                continue
            out.append(FieldProblem("body", Code.invalid_json, {"reason": reason}))
            continue
        out.append(field_problem(err))
    return out
