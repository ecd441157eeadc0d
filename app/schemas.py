"""Shared schema building blocks."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from app.errors import DEFAULT_LANGUAGE, Code
from app.errors.catalogue import message

# Unicode's control characters (category Cc), and what str.strip() removes besides them. Spelled
# out: regular expression engines disagree on what `\s` is.
CONTROL_CHARACTERS = "\\u0000-\\u001f\\u007f-\\u009f"
SPACES = " \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
ONE_LINE = f"^[^{CONTROL_CHARACTERS}]*$"
NOT_BLANK = f"^[^{CONTROL_CHARACTERS}]*[^{CONTROL_CHARACTERS}{SPACES}][^{CONTROL_CHARACTERS}]*$"
_ONE_LINE = re.compile(ONE_LINE)
_NOT_BLANK = re.compile(NOT_BLANK)


def rule_error(rule: Code, **params: Any) -> PydanticCustomError:
    """What a validator raises for a rule of ours: the error's type is the rule's code and its
    context the params (the problem's message is written from them, in the answer's language)."""
    # Its message (what pydantic's own readers, the command line, show) is the English one.
    return PydanticCustomError(rule.value, message(rule, params, DEFAULT_LANGUAGE), params)


@dataclass(frozen=True, slots=True)
class _Line:
    """Free text kept in the database (names, emails): one line, without control characters
    (PostgreSQL cannot store NUL at all, and the others have no place in a name); `trimmed`:
    not blank, and kept without the spaces around it. The document declares the rule as a
    `pattern`, and the lengths count what was sent."""

    trimmed: bool

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if "pattern" in json_schema:
            raise TypeError("one pattern a field: fold the line rule into the field's own")
        json_schema["pattern"] = NOT_BLANK if self.trimmed else ONE_LINE
        return json_schema

    def _validate(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # None, where the field may be null
        if not _ONE_LINE.fullmatch(value):
            raise rule_error(Code.control_characters)
        if not self.trimmed:
            return value
        if not _NOT_BLANK.fullmatch(value):
            raise rule_error(Code.blank)
        return value.strip()


# One line of text, as it was sent.
SingleLine = _Line(trimmed=False)
# One line of text, not blank, without the spaces around it.
TrimmedLine = _Line(trimmed=True)


def _whole_number(value: Any) -> Any:
    # JSON Schema's integer is any number without a fraction: 60.0 is 60. Text and booleans are
    # not numbers at all (StrictInt refuses them).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Last in an `Annotated[StrictInt, ...]`, after its bounds (which the document then shows): a
# JSON integer as JSON Schema reads one.
WholeNumber = BeforeValidator(_whole_number)


RFC_3339_EXAMPLE = "2026-11-25T09:30:00+07:00"
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc_3339(value: Any) -> Any:
    # Pydantic would also read a number, or digits in a text, as Unix time, and a date-time
    # without seconds: none of them is what the document calls a date-time.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC_3339.fullmatch(value):
        raise rule_error(Code.not_a_date_time, example=RFC_3339_EXAMPLE)
    return value


# A date-time with its offset, as RFC 3339 (and the document's `date-time`) writes it.
DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc_3339)]


class Matches:
    """A text that matches `pattern` whole (the document declares it), else the error of `rule`
    with `params`: for a rule the document can state, named as a client can translate it."""

    __slots__ = ("_regex", "params", "pattern", "rule")

    def __init__(self, pattern: str, rule: Code, **params: Any) -> None:
        self.pattern = pattern
        self.rule = rule
        self.params = params
        self._regex = re.compile(pattern)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if "pattern" in json_schema:
            raise TypeError("one pattern a field")
        json_schema["pattern"] = self.pattern
        return json_schema

    def _validate(self, value: Any) -> Any:
        if isinstance(value, str) and not self._regex.fullmatch(value):
            raise rule_error(self.rule, **self.params)
        return value


def _omittable_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The document says what the server takes: a field that may be omitted but not null is
    declared without null (and without a null default), and fields of which exactly one is
    given are declared so."""
    nullable: frozenset[str] = getattr(model, "nullable", frozenset())
    one_of: tuple[str, ...] = getattr(model, "exactly_one_of", ())
    if one_of:
        schema["oneOf"] = [{"required": [name]} for name in one_of]
    schema.update(getattr(model, "schema_rules", {}))
    for name, prop in schema.get("properties", {}).items():
        if name in nullable:
            continue
        prop.pop("default", None)
        variants = [v for v in prop.get("anyOf", []) if v != {"type": "null"}]
        if "anyOf" in prop and len(variants) == 1:
            del prop["anyOf"]
            prop.update(variants[0])
        elif "anyOf" in prop:
            prop["anyOf"] = variants


class OmittableModel(BaseModel):
    """A request body whose optional fields are left out when not given: null only where a
    field may be empty (`nullable`); of `exactly_one_of`, one and only one is given."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_omittable_schema)
    nullable: ClassVar[frozenset[str]] = frozenset()
    exactly_one_of: ClassVar[tuple[str, ...]] = ()
    # More of the model's rules, as JSON Schema keywords (the model checks them too).
    schema_rules: ClassVar[dict[str, Any]] = {}

    # Per field (not on the whole model) so that the error names the field.
    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise rule_error(Code.null_not_allowed)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        given = [name for name in self.exactly_one_of if getattr(self, name) is not None]
        if self.exactly_one_of and len(given) != 1:
            raise rule_error(Code.exactly_one_of, fields=list(self.exactly_one_of))
        return self


class PatchModel(OmittableModel):
    """A partial update: absent fields stay as they are; null only where a field may be empty."""

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    def apply_to(self, target: object) -> dict[str, Any]:
        """Sets every given field on `target`; returns what was given."""
        changes = self.changes()
        for field, value in changes.items():
            setattr(target, field, value)
        return changes


def _ip_patterns() -> tuple[str, str, str]:
    """Regular expressions of an IPv6 address (unanchored), of an IP address and of an IP
    network (an address with an optional /prefix), in the textual forms Python's ipaddress reads
    (RFC 4291's IPv6 forms, IPv4 in dotted decimal without leading zeros), without an IPv6
    zone."""
    octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{octet}(\.{octet}){{3}}"
    h = "[0-9A-Fa-f]{1,4}"

    def groups(low: int, high: int) -> str:
        """`low` to `high` hextets joined by colons (none at all when high is 0)."""
        if high == 0:
            return ""
        one_or_more = f"({h}:){{{max(low, 1) - 1},{high - 1}}}{h}"
        return one_or_more if low >= 1 else f"({one_or_more})?"

    # `::` stands for one zero hextet or more; a trailing IPv4 address counts as two.
    ipv6 = [f"({h}:){{7}}{h}", f"({h}:){{6}}{ipv4}"]
    ipv6 += [f"{groups(left, left)}::{groups(0, 7 - left)}" for left in range(8)]
    ipv6 += [f"{groups(left, left)}::({h}:){{0,{5 - left}}}{ipv4}" for left in range(6)]
    v6 = "|".join(ipv6)
    address = f"^({ipv4}|{v6})$"
    network = f"^({ipv4}(/(3[0-2]|[12]?[0-9]))?|({v6})(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"
    return v6, address, network


IPV6, IP_ADDRESS_PATTERN, IP_NETWORK_PATTERN = _ip_patterns()
