"""Pydantic's validation errors as an operator reads them: one field error each, with a message
that names no regular expression or type."""

from typing import Any

from fastapi.exceptions import RequestValidationError

from app.errors.types import FieldError

DUPLICATE_KEY = "duplicate key"


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


# Pydantic's messages name regular expressions and types; an SPA shows these to an operator.
_PATTERN_MESSAGES = {
    r"^[0-9]{2,4}$": "must be 2 to 4 digits",
    r"^[0-9]{2,6}$": "must be 2 to 6 digits",
    r"^[A-Za-z0-9._-]{3,64}$": "must be 3 to 64 letters, digits, '.', '_' or '-'",
    r"^[A-Za-z0-9._:-]{1,64}$": "must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
    r"^\+?[0-9*#]+$": "must be a dialled number: digits, '*' or '#', with an optional '+'",
}
_TYPE_MESSAGES = {
    "missing": "is required",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "extra_forbidden": "is not a field of this request",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "timezone_aware": "must include its offset (Z or +07:00)",
    "datetime_parsing": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00+07:00",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00Z",
    "datetime_type": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00+07:00",
}


def field_message(err: Any) -> str:
    """What is wrong with a field, as an operator can read it."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx.get("pattern")), "is not in the expected form")
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected')}"
    message = str(err.get("msg", "is not valid"))
    return message.removeprefix("Value error, ")


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        field = _field_name(tuple(err.get("loc", ())))
        kind = str(err.get("type", "value_error"))
        if kind == "json_invalid":
            reason = str(err.get("ctx", {}).get("error", ""))
            if reason.startswith(DUPLICATE_KEY):
                field = "body." + reason.removeprefix(DUPLICATE_KEY).strip()
                out.append(
                    FieldError(field=field, message="is given more than once", type="duplicate_key")
                )
                continue
            out.append(FieldError(field="body", message=f"is not valid JSON: {reason}", type=kind))
            continue
        out.append(FieldError(field=field, message=field_message(err), type=kind))
    return out
