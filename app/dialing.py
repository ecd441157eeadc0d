"""What a dialled number means, for every domain: emergency numbers always pass, no extension
may be mistaken for one, and a dial plan sorts every other number into a destination class
(mobile, premium, international, ...) that decides whether an agent may call it."""

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

_DIAL_SEPARATORS = re.compile(r"[\s\-().]")


def is_emergency(destination: str, emergency_numbers: Sequence[str]) -> bool:
    return _DIAL_SEPARATORS.sub("", destination) in emergency_numbers


def shadows_emergency(number: str, emergency_numbers: Sequence[str]) -> bool:
    """True when dialling the extension could be mistaken for an emergency call or the reverse:
    the same number, or one that is a prefix of the other (phones dial as soon as a digit map
    matches)."""
    return any(number.startswith(e) or e.startswith(number) for e in emergency_numbers)


class DestinationClass(StrEnum):
    emergency = "emergency"
    internal = "internal"
    domestic = "domestic"
    mobile = "mobile"
    toll_free = "toll_free"
    premium = "premium"
    international = "international"
    # A number no rule of the plan places: refused unless a tenant allows it.
    other = "other"


# What a tenant's agents may call unless the tenant says otherwise: never what costs by the
# minute as much as an hour of local calls (premium, international).
DEFAULT_OUTBOUND_CLASSES: tuple[str, ...] = (
    DestinationClass.emergency,
    DestinationClass.internal,
    DestinationClass.domestic,
    DestinationClass.mobile,
    DestinationClass.toll_free,
)


def allowed_classes(
    tenant_classes: Iterable[str], extra: Iterable[str], removed: Iterable[str]
) -> frozenset[str]:
    """The classes an agent may call: the tenant's, with the agent's extra ones and without
    the agent's removed ones."""
    return (frozenset(tenant_classes) | frozenset(extra)) - frozenset(removed)


class DialRule(NamedTuple):
    """Numbers that start with `prefix` and have `min_length` to `max_length` digits (after
    the country's own code is turned into its trunk prefix 0) are of `destination_class`."""

    prefix: str
    min_length: int
    max_length: int
    destination_class: DestinationClass


# Vietnam's numbering: emergency 113/114/115, mobile 03/05/07/08/09 with 10 digits, landlines
# 02 with 10 or 11 digits, toll-free 1800 and premium 1900 with 8 or 10 digits, 00 for abroad;
# numbers of 2 to 4 digits are the company's own extensions.
VIETNAM_COUNTRY_CODE = "84"
VIETNAM_RULES: tuple[DialRule, ...] = (
    DialRule("113", 3, 3, DestinationClass.emergency),
    DialRule("114", 3, 3, DestinationClass.emergency),
    DialRule("115", 3, 3, DestinationClass.emergency),
    DialRule("", 2, 4, DestinationClass.internal),
    *(DialRule(p, 10, 10, DestinationClass.mobile) for p in ("03", "05", "07", "08", "09")),
    DialRule("02", 10, 11, DestinationClass.domestic),
    DialRule("1800", 8, 10, DestinationClass.toll_free),
    DialRule("1900", 8, 10, DestinationClass.premium),
    DialRule("00", 5, 18, DestinationClass.international),
)


class DialPlan(NamedTuple):
    country_code: str
    # Longest prefix first: the first rule that fits a number decides its class.
    rules: tuple[DialRule, ...]


def dial_plan(country_code: str, rules: Iterable[DialRule]) -> DialPlan:
    return DialPlan(country_code, tuple(sorted(rules, key=lambda r: -len(r.prefix))))


VIETNAM_PLAN = dial_plan(VIETNAM_COUNTRY_CODE, VIETNAM_RULES)


def plan_rules_json(plan: DialPlan) -> dict[str, Any]:
    """A plan as the API and the tenant's row show it."""
    return {
        "country_code": plan.country_code,
        "rules": [
            {
                "prefix": rule.prefix,
                "min_length": rule.min_length,
                "max_length": rule.max_length,
                "destination_class": rule.destination_class.value,
            }
            for rule in plan.rules
        ],
    }


def plan_of_json(stored: Mapping[str, Any] | None) -> DialPlan:
    """The plan a tenant's row holds (None: Vietnam's)."""
    if stored is None:
        return VIETNAM_PLAN
    return dial_plan(
        stored["country_code"],
        (
            DialRule(
                r["prefix"],
                r["min_length"],
                r["max_length"],
                DestinationClass(r["destination_class"]),
            )
            for r in stored["rules"]
        ),
    )


def national_number(destination: str, country_code: str) -> str:
    """The number as dialled at home: separators dropped, `+<own code>` and `00<own code>`
    become the trunk prefix 0, any other `+` becomes `00`."""
    number = _DIAL_SEPARATORS.sub("", destination)
    if number.startswith("+"):
        number = "00" + number[1:]
    own = "00" + country_code
    if country_code and number.startswith(own):
        number = "0" + number[len(own) :]
    return number


def classify(destination: str, plan: DialPlan) -> DestinationClass:
    """The class of a dialled number under a plan: a pure function."""
    number = national_number(destination, plan.country_code)
    length = len(number)
    for rule in plan.rules:
        if rule.min_length <= length <= rule.max_length and number.startswith(rule.prefix):
            return rule.destination_class
    return DestinationClass.other
