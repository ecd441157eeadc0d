"""The CSV rule against formulas, for any value: what the export writes never begins as a
formula, and the import reads back the very value."""

import io

from hypothesis import given
from hypothesis import strategies as st

from app.imports.formats import ExportRow, FileFormat, RowReader, csv_header, csv_line

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Values as stored: any text without surrogates, without surrounding whitespace (a stored
# value is stripped).
values = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1).filter(
    lambda text: text.strip() == text
)


@given(values)
def test_any_value_is_written_as_text_and_read_back_as_it_was(value: str) -> None:
    row = ExportRow(
        display_name=value,
        email=None,
        external_ref=value,
        extensions=[],
        devices=[],
        limit_minutes=None,
        outbound_allowed=True,
        auto_answer=False,
    )
    line = csv_line(row)

    assert not line.lstrip('"').startswith(FORMULA_STARTS)
    [read] = RowReader(io.BytesIO((csv_header() + line).encode()), FileFormat.csv)
    assert read.problems == []
    assert (read.fields["display_name"], read.fields["external_ref"]) == (value, value)


@given(st.sampled_from(FORMULA_STARTS), st.integers(min_value=0, max_value=3), st.text())
def test_a_formula_gets_one_more_quote_mark_than_it_had(start: str, marks: int, rest: str) -> None:
    value = "'" * marks + start + rest + "x"
    row = ExportRow(value, None, None, [], [], None, True, False)

    assert csv_line(row).lstrip('"').startswith("'" * (marks + 1) + start)
