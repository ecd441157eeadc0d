"""Files that try the reader's limits: deep nesting, long lines and cells, endless numbers. Each
is refused with its row and reason, and nothing of the file is stored."""

import json

import httpx
import pytest

from app.db.session import Database
from app.imports.formats import MAX_DEPTH, MAX_LINE_BYTES
from tests.helpers.api import TenantKeys, assert_problem
from tests.helpers.imports import csv_file, jsonl_file, post_import, stored_counts

JSONL = "application/x-ndjson"
GOOD = {"display_name": "Good", "external_ref": "g-1"}


def jsonl_with(line: str) -> bytes:
    """A good line, then `line`, then another good one."""
    good = jsonl_file(GOOD).decode()
    return (good + line + "\n" + json.dumps({"display_name": "After"}) + "\n").encode()


def problems(body: dict[str, object]) -> list[tuple[object, ...]]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return [(e["row"], e.get("column"), e["message"], e["type"]) for e in errors]


@pytest.mark.parametrize(
    ("line", "message", "kind"),
    [
        (
            "[" * 5000 + "]" * 5000,
            f"nests arrays and objects more than {MAX_DEPTH} deep",
            "json_too_deep",
        ),
        (
            json.dumps({"display_name": "Deep", "devices": [[[[{}]]]] * 1}).replace(
                "[{}]", "[" * 5000 + "{}" + "]" * 5000
            ),
            f"nests arrays and objects more than {MAX_DEPTH} deep",
            "json_too_deep",
        ),
        (
            json.dumps({"display_name": "Long" * MAX_LINE_BYTES}),
            f"is longer than {MAX_LINE_BYTES} bytes",
            "line_too_long",
        ),
    ],
    ids=["nested-line", "nested-value", "long-line"],
)
async def test_a_json_line_past_the_readers_bounds_is_refused_with_its_line(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, line: str, message: str, kind: str
) -> None:
    body = jsonl_with(line)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body, content_type=JSONL)

    assert problems(assert_problem(response, 422, code="import-rejected")) == [
        (2, None, message, kind)
    ]
    assert await stored_counts(db) == before

    checked = await post_import(client, tenant.admin, body, dry_run=True, content_type=JSONL)

    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert [(p["row"], p["message"]) for p in report["problems"]] == [(2, message)]
    # The lines around it are read as usual.
    assert [r["row"] for r in report["rows"]] == [1, 3]


async def test_brackets_inside_strings_do_not_count_as_nesting(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    name = "[{" * 40 + '\\"' + "]}" * 40
    body = jsonl_file({"display_name": name, "external_ref": "b-1"})

    response = await post_import(client, tenant.admin, body, content_type=JSONL)

    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1


async def test_a_line_of_the_longest_length_is_read_and_one_byte_more_is_not(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    line = json.dumps({"display_name": "Edge", "external_ref": "e-1", "email": None})
    longest = line[:-1] + " " * (MAX_LINE_BYTES - len(line)) + "}"
    assert len(longest.encode()) == MAX_LINE_BYTES

    too_long = await post_import(client, tenant.admin, f"{longest} \n".encode(), content_type=JSONL)
    response = await post_import(client, tenant.admin, f"{longest}\n".encode(), content_type=JSONL)

    assert problems(assert_problem(too_long, 422))[0][2:] == (
        f"is longer than {MAX_LINE_BYTES} bytes",
        "line_too_long",
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1


async def test_a_number_of_thousands_of_digits_is_out_of_range_in_either_format(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    digits = "9" * 5000
    before = await stored_counts(db)

    as_json = await post_import(
        client,
        tenant.admin,
        jsonl_with(f'{{"display_name": "Big", "limit_minutes": -{digits}}}'),
        content_type=JSONL,
    )
    as_csv = await post_import(client, tenant.admin, csv_file(f"Big,,b-1,,,{digits},,"))

    assert problems(assert_problem(as_json, 422, code="import-rejected")) == [
        (2, "limit_minutes", "must be 0 or more", "greater_than_equal")
    ]
    assert problems(assert_problem(as_csv, 422, code="import-rejected")) == [
        (2, "limit_minutes", "must be 1000000 or less", "less_than_equal")
    ]
    assert await stored_counts(db) == before


async def test_a_csv_cell_past_the_field_limit_is_refused_with_its_row(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file("Good,,g-1,,,,,", '"' + "A" * 200_000 + '",,g-2,,,,,', "After,,g-3,,,,,")
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body)

    [(row, column, message, kind)] = problems(assert_problem(response, 422))
    assert (row, column, kind) == (3, None, "csv_invalid")
    assert message.startswith("cannot be read as CSV (field larger than field limit")
    assert await stored_counts(db) == before


async def test_a_header_past_the_field_limit_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file("Good,,g-1,,,,,", header="display_name," + "x" * 200_000)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body)

    [(row, _, message, _)] = problems(assert_problem(response, 422))
    assert row == 1
    assert message.startswith("cannot be read as CSV (field larger than field limit")
    assert await stored_counts(db) == before
