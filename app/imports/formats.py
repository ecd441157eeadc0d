"""The files an import reads and an export writes, in one set of columns: CSV (UTF-8 with or
without a BOM, comma or semicolon separated, the header naming the columns) and JSON lines (one
object a line). Rows are read one at a time from the spooled upload, never all at once."""

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from app.errors import DUPLICATE_KEY, Code
from app.routing import refuse_duplicate_keys

COLUMNS = (
    "display_name",
    "email",
    "external_ref",
    "extensions",
    "devices",
    "limit_minutes",
    "outbound_allowed",
    "auto_answer",
)
USER_COLUMNS = frozenset(COLUMNS) - {"extensions", "devices"}
# Columns whose empty cell means "not given" (the product default on a create, unchanged on an
# update). Any other empty cell means none: no email, no extensions, unlimited minutes.
NOT_EMPTY = frozenset({"display_name", "devices", "outbound_allowed", "auto_answer"})
HEADER_ROW = 1
# A JSON line's bounds: its length (a request body's, far beyond any agent's row), and how deep
# its arrays and objects nest (a row needs 3: the line, its devices, a device). Past them the
# line is refused unread, as a CSV cell longer than csv.field_size_limit() is.
MAX_LINE_BYTES = 1024 * 1024
MAX_DEPTH = 32

# Several extensions or devices share a cell, separated by spaces or commas.
_ITEMS = re.compile(r"[\s,]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Digits enough for any number a column takes; int() refuses past sys.get_int_max_str_digits().
_DIGITS = 20
_BEYOND: int = 10**_DIGITS
# A cell a spreadsheet would take for a formula (OWASP's list: = + - @ tab CR), also behind
# quote marks. The export writes such a cell with one more ' before it, which spreadsheets show as
# text; the CSV import takes one ' off a cell that is quote marks then one of these. So every
# value comes back as it was: =1+1 is written '=1+1, and '=1+1 is written ''=1+1.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
# A JSON string (skipped, also one left open to the end), an opening bracket (group 1) or a
# closing one.
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"?|([\[{])|[\]}]')


class FileFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


MEDIA_TYPES = {FileFormat.csv: "text/csv", FileFormat.jsonl: "application/x-ndjson"}


def format_of(content_type: str | None) -> FileFormat | None:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "text/csv":
        return FileFormat.csv
    if media_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        return FileFormat.jsonl
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with a row: `row` counts the CSV header as row 1 (JSON lines: the line)."""

    row: int
    column: str | None
    code: Code
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SourceRow:
    """One row as read: the user's fields it gives (by column), its extensions and devices
    (None: the column is not given), and what is already wrong with it."""

    row: int
    # False when the row could not be read as cells at all (its problems say why).
    readable: bool = True
    fields: dict[str, Any] = field(default_factory=dict)
    extensions: list[str] | None = None
    devices: list[tuple[str, Any]] | None = None
    problems: list[Problem] = field(default_factory=list)

    def problem(self, column: str | None, code: Code, **params: Any) -> None:
        self.problems.append(Problem(self.row, column, code, params))

    def unreadable(self, code: Code, **params: Any) -> "SourceRow":
        self.problem(None, code, **params)
        self.readable = False
        return self


class RowReader:
    """The data rows of a file, in order. Problems of the file itself (its header, an empty
    file) are in `problems` once the first row has been read."""

    def __init__(self, file: IO[bytes], file_format: FileFormat) -> None:
        self._file = file
        self._format = file_format
        self.problems: list[Problem] = []

    def __iter__(self) -> Iterator[SourceRow]:
        self._file.seek(0)
        if self._format == FileFormat.csv:
            return self._csv_rows()
        return self._json_rows()

    def _csv_rows(self) -> Iterator[SourceRow]:
        failures: list[tuple[int, bytes]] = []
        lines = _decoded_lines(self._file, failures)
        first = next(lines, None)
        if first is None or not first.strip():
            self.problems.append(Problem(HEADER_ROW, None, Code.file_empty))
            return
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(_chained(first, lines), delimiter=delimiter, strict=False)
        try:
            header = [cell.strip().lower() for cell in next(reader)]
        except csv.Error as error:
            self.problems.append(
                Problem(HEADER_ROW, None, Code.csv_header_unreadable, {"reason": str(error)})
            )
            return
        columns = self._header(header, failures)
        failures.clear()
        number = HEADER_ROW
        while True:
            number += 1
            source = SourceRow(number)
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # Past a malformed record the rest cannot be told apart into rows.
                yield source.unreadable(Code.csv_unreadable, reason=str(error))
                return
            for offset, raw in failures:
                index = raw[:offset].decode("utf-8", errors="replace").count(delimiter)
                column = columns[index] if index < len(columns) else None
                source.problem(column, Code.file_not_utf8)
            failures.clear()
            if not any(cell.strip() for cell in cells):
                if source.problems:
                    yield source
                continue
            if len(cells) != len(columns):
                yield source.unreadable(Code.cell_count, cells=len(cells), columns=len(columns))
                continue
            for column, cell in zip(columns, cells, strict=True):
                if column is not None:
                    _take_cell(source, column, _as_written(cell.strip()))
            yield source

    def _header(self, header: list[str], failures: list[tuple[int, bytes]]) -> list[str | None]:
        """Each cell's column (None: not one to read)."""
        if failures:
            self.problems.append(Problem(HEADER_ROW, None, Code.file_not_utf8))
        columns: list[str | None] = []
        for name in header:
            if not name:
                # A spreadsheet's trailing empty columns: nothing to read.
                columns.append(None)
            elif name not in COLUMNS:
                self.problems.append(
                    Problem(HEADER_ROW, name, Code.unknown_column, {"columns": list(COLUMNS)})
                )
                columns.append(None)
            elif name in columns:
                self.problems.append(Problem(HEADER_ROW, name, Code.duplicate_column))
                columns.append(None)
            else:
                columns.append(name)
        return columns

    def _json_rows(self) -> Iterator[SourceRow]:
        for number, raw in enumerate(_bounded_lines(self._file, MAX_LINE_BYTES), start=1):
            source = SourceRow(number)
            if raw is None:
                yield source.unreadable(Code.line_too_long, max_bytes=MAX_LINE_BYTES)
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield source.unreadable(Code.file_not_utf8)
                continue
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            if _too_deep(line):
                yield source.unreadable(Code.json_too_deep, max_depth=MAX_DEPTH)
                continue
            try:
                value = json.loads(
                    line, object_pairs_hook=refuse_duplicate_keys, parse_int=_whole_number
                )
            except json.JSONDecodeError as error:
                if error.msg.startswith(DUPLICATE_KEY):
                    key = error.msg.removeprefix(DUPLICATE_KEY).strip()
                    source.problem(key, Code.duplicate_key)
                    source.readable = False
                    yield source
                else:
                    yield source.unreadable(Code.invalid_json, reason=error.msg)
                continue
            if not isinstance(value, dict):
                yield source.unreadable(Code.not_an_object)
                continue
            for column, item in value.items():
                if column not in COLUMNS:
                    source.problem(column, Code.unknown_column, columns=list(COLUMNS))
                else:
                    _take_json(source, column, item)
            yield source


def _bounded_lines(file: IO[bytes], max_bytes: int) -> Iterator[bytes | None]:
    """The file's lines, None for one longer than `max_bytes` (read through, never held)."""
    while raw := file.readline(max_bytes + 1):
        if len(raw) <= max_bytes or raw.endswith(b"\n"):
            yield raw
            continue
        while (rest := file.readline(max_bytes)) and not rest.endswith(b"\n"):
            pass
        yield None


def _too_deep(line: str) -> bool:
    """Whether the line's arrays and objects nest more than MAX_DEPTH deep (the json module
    recurses once a level: thousands of levels exhaust the interpreter's stack)."""
    if line.count("[") + line.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for match in _BRACKETS.finditer(line):
        if match.group(1):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif match.group() in ("]", "}"):
            depth -= 1
    return False


def _whole_number(digits: str) -> int:
    """A number's digits as an int; one longer than any a column takes stays out of range as
    _BEYOND (with its sign), so that its column's own rule names what is wrong."""
    if len(digits.lstrip("+-")) <= _DIGITS:
        return int(digits)
    return -_BEYOND if digits.startswith("-") else _BEYOND


def _decoded_lines(file: IO[bytes], failures: list[tuple[int, bytes]]) -> Iterator[str]:
    """The file's lines as text. A line that is not UTF-8 is noted in `failures` (where it
    stops being UTF-8, and the line) and read on with replacement characters."""
    for number, raw in enumerate(file, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            failures.append((error.start, raw))
            text = raw.decode("utf-8", errors="replace")
        yield text.removeprefix("\ufeff") if number == 1 else text


def _chained(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _as_written(cell: str) -> str:
    """A cell as the value it holds: without the ' the export put before a formula."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


def _as_text(cell: str) -> str:
    """A value as a cell no spreadsheet takes for a formula (`_as_written` reads it back)."""
    return "'" + cell if _FORMULA.match(cell) else cell


def _take_cell(source: SourceRow, column: str, cell: str) -> None:
    """A CSV cell as the value the column holds."""
    if column == "extensions":
        source.extensions = _ITEMS.split(cell) if cell else []
    elif column == "devices":
        if not cell:
            return
        devices: list[tuple[str, Any]] = []
        for item in _ITEMS.split(cell):
            name, colon, kind = item.partition(":")
            if not colon:
                source.problem(column, Code.device_form, item=item)
                continue
            devices.append((name, kind))
        source.devices = devices
    elif not cell:
        if column not in NOT_EMPTY:
            source.fields[column] = None
    elif column == "limit_minutes":
        if _INTEGER.fullmatch(cell):
            source.fields[column] = _whole_number(cell)
        else:
            source.problem(column, Code.limit_form)
    elif column in ("outbound_allowed", "auto_answer"):
        if cell.lower() in ("true", "false"):
            source.fields[column] = cell.lower() == "true"
        else:
            source.problem(column, Code.not_a_boolean)
    else:
        source.fields[column] = cell


def _take_json(source: SourceRow, column: str, value: Any) -> None:
    """A JSON line's value as the column holds it: extensions a list of strings, devices a
    list of {"name", "kind"} objects; the others as a single request takes them."""
    if column == "extensions":
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            source.extensions = value
        else:
            source.problem(column, Code.extension_list_form)
    elif column == "devices":
        if isinstance(value, list) and all(
            isinstance(item, dict) and set(item) == {"name", "kind"} for item in value
        ):
            # As an empty CSV cell: not given (a new user gets the default device).
            source.devices = [(item["name"], item["kind"]) for item in value] or None
        else:
            source.problem(column, Code.device_list_form)
    else:
        source.fields[column] = value


@dataclass(frozen=True, slots=True)
class ExportRow:
    """A user as the export writes it, in the import's columns."""

    display_name: str
    email: str | None
    external_ref: str | None
    extensions: list[str]
    devices: list[tuple[str, str]]
    limit_minutes: int | None
    outbound_allowed: bool
    auto_answer: bool


def csv_header() -> str:
    return _csv_line(COLUMNS)


def csv_line(row: ExportRow) -> str:
    """The row as a CSV line, safe to open in a spreadsheet: a value that would be taken for a
    formula has a ' before it (see _FORMULA)."""
    return csv_lines([row])


def csv_lines(rows: Iterable[ExportRow]) -> str:
    """The rows as CSV lines (see `csv_line`), through one writer."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(
        [
            _as_text(row.display_name),
            _as_text(row.email or ""),
            _as_text(row.external_ref or ""),
            _as_text(" ".join(row.extensions)),
            _as_text(" ".join(f"{name}:{kind}" for name, kind in row.devices)),
            "" if row.limit_minutes is None else _as_text(str(row.limit_minutes)),
            # Neither can be taken for a formula.
            "true" if row.outbound_allowed else "false",
            "true" if row.auto_answer else "false",
        ]
        for row in rows
    )
    return out.getvalue()


def json_line(row: ExportRow) -> str:
    value = {
        "display_name": row.display_name,
        "email": row.email,
        "external_ref": row.external_ref,
        "extensions": row.extensions,
        "devices": [{"name": name, "kind": kind} for name, kind in row.devices],
        "limit_minutes": row.limit_minutes,
        "outbound_allowed": row.outbound_allowed,
        "auto_answer": row.auto_answer,
    }
    return json.dumps(value, ensure_ascii=False) + "\n"


def _csv_line(cells: Iterable[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()
