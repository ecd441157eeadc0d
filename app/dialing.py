"""What a dialled number means, for every domain: emergency numbers always pass, and no
extension may be mistaken for one."""

import re
from collections.abc import Sequence

_DIAL_SEPARATORS = re.compile(r"[\s\-().]")


def is_emergency(destination: str, emergency_numbers: Sequence[str]) -> bool:
    return _DIAL_SEPARATORS.sub("", destination) in emergency_numbers


def shadows_emergency(number: str, emergency_numbers: Sequence[str]) -> bool:
    """True when dialling the extension could be mistaken for an emergency call or the reverse:
    the same number, or one that is a prefix of the other (phones dial as soon as a digit map
    matches)."""
    return any(number.startswith(e) or e.startswith(number) for e in emergency_numbers)
