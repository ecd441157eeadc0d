"""How people's names are searched and sorted: text folded as operators type it (NFC, any case,
without accents, đ as d) and Vietnamese order (ICU's `vi` collation) as sort keys that both
backends order by byte."""

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# Where a word within a word starts: after a character that is neither a letter nor a digit.
_INNER_START = re.compile(r"(?<=[\W_])(?=[^\W_])")


def fold(text: str) -> str:
    """`text` as it is matched: lower case, without diacritics, đ as d ('Đặng' -> 'dang'), the
    same for a precomposed and a decomposed input."""
    text = unicodedata.normalize("NFC", text).casefold().replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def search_words(texts: Iterable[str | None]) -> str:
    """The words a search finds these texts by, each after a space (so that `LIKE '% word%'`
    is "a word starts with"): each whitespace-separated word folded, and the rest of it from
    each word it joins ('an.nguyen@acme.vn' -> an.nguyen@acme.vn, nguyen@acme.vn, acme.vn,
    vn)."""
    words: dict[str, None] = {}
    for text in texts:
        for word in fold(text or "").split():
            words[word] = None
            for start in _INNER_START.finditer(word):
                words[word[start.start() :]] = None
    return "".join(f" {word}" for word in words)


def query_words(search: str) -> list[str]:
    """A search as words to find (any order, each the start of a word), folded like the text."""
    return list(dict.fromkeys(fold(search).split()))


@functools.cache
def _vietnamese() -> Any:
    """ICU's Vietnamese tailoring: Đ after D, Ă and Â after A, tones after the letter they sit
    on. Loaded by the first name written: ICU and its data take about 10 MB, which a process
    that writes no name (a replica serving call control and streams) never needs."""
    import icu

    return icu.Collator.createInstance(icu.Locale("vi"))


def sort_key(text: str) -> bytes:
    """ICU's Vietnamese sort key of `text`: comparing keys byte by byte orders the texts as
    the collation does."""
    return bytes(_vietnamese().getSortKey(unicodedata.normalize("NFC", text)))


def given_name_first(display_name: str) -> str:
    """A Vietnamese name as lists sorted by given name read it: the last word first, then the
    rest ('Nguyễn Văn An' -> 'An Nguyễn Văn')."""
    words = display_name.split()
    return " ".join(words[-1:] + words[:-1])


def name_columns(display_name: str, email: str | None) -> dict[str, object]:
    """The columns a user's name and email decide besides themselves: the words a search finds
    the user by, and the two Vietnamese sort keys (full name; given name first)."""
    return {
        "search_key": search_words([display_name, email]),
        "name_sort": sort_key(display_name),
        "given_name_sort": sort_key(given_name_first(display_name)),
    }
