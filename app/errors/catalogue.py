"""Error messages in the operator's language: the gettext catalogues in locales/ (Babel), keyed
by a problem type (a title) or a rule's code (a detail, a field's message), and the language an
`Accept-Language` header asks for."""

import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.lists import format_list
from babel.support import Translations

# The first is the default: what a request that names no language we speak gets.
LANGUAGES = ("en", "vi")
DEFAULT_LANGUAGE = LANGUAGES[0]
LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"
TITLE = "title"


@cache
def translations(language: str) -> Translations:
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as compiled:
            return Translations(compiled, domain=DOMAIN)
    except FileNotFoundError:
        raise RuntimeError(
            f"{path} is missing: compile the catalogues (`make install`, or "
            f"`pybabel compile -d {LOCALES} -D {DOMAIN}`)"
        ) from None


def load_catalogues() -> None:
    """Reads every language's catalogue, so that a missing one stops the service at start-up."""
    for language in LANGUAGES:
        translations(language)


def negotiate(accept_language: str | None) -> str:
    """The language an `Accept-Language` header (RFC 9110) prefers among ours: ranges by their
    q-value, then in the order written; a range matches by its primary subtag (`vi-VN` is `vi`),
    `*` is the default. (Babel reads no header, and Werkzeug's parser would bring a web
    framework for these lines.)"""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept_language.split(",")):
        tag, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and 0 < quality <= 1:
            ranked.append((-quality, index, tag.lower()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT_LANGUAGE
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


class _Formatter(string.Formatter):
    """A message's params as the language writes them: a list as "a, b and c" (`{name:or}`:
    "a, b or c"), the rest as text."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, list | tuple):
            items = [str(item) for item in value]
            if format_spec == "or":
                return str(format_list(items, style="or", locale=self.language))
            return str(format_list(items, locale=self.language))
        return str(super().format_field(value, format_spec))


def message(code: str, params: Mapping[str, Any], language: str) -> str:
    """The sentence of a rule, its params in place."""
    template = translations(language).gettext(code)
    return _Formatter(language).vformat(template, (), dict(params))


def title(problem: str, language: str) -> str:
    """A problem type's title."""
    return str(translations(language).pgettext(TITLE, problem))
