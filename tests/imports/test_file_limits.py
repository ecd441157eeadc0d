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
    return [(e["row"], e.get("column"), e["code"], e["params"]) for e in errors]


@pytest.mark.parametrize(
    ("line", "code", "params"),
    [
        (
            "[" * 5000 + "]" * 5000,
            "json-too-deep",
            {"max_depth": MAX_DEPTH},
        ),
        (
            json.dumps({"display_name": "Deep", "devices": [[[[{}]]]] * 1}).replace(
                "[{}]", "[" * 5000 + "{}" + "]" * 5000
            ),
            "json-too-deep",
            {"max_depth": MAX_DEPTH},
        ),
        (
            json.dumps({"display_name": "Long" * MAX_LINE_BYTES}),
            "line-too-long",
            {"max_bytes": MAX_LINE_BYTES},
        ),
    ],
    ids=["nested-line", "nested-value", "long-line"],
)
async def test_a_json_line_past_the_readers_bounds_is_refused_with_its_line(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    db: Database,
    line: str,
    code: str,
    params: dict[str, int],
) -> None:
    body = jsonl_with(line)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body, content_type=JSONL)

    assert problems(assert_problem(response, 422, code="import-rejected")) == [
        (2, None, code, params)
    ]
    assert await stored_counts(db) == before

    checked = await post_import(client, tenant.admin, body, dry_run=True, content_type=JSONL)

    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert [(p["row"], p["code"], p["params"]) for p in report["problems"]] == [(2, code, params)]
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
        "line-too-long",
        {"max_bytes": MAX_LINE_BYTES},
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
        (2, "limit_minutes", "number-too-small", {"min": 0})
    ]
    assert problems(assert_problem(as_csv, 422, code="import-rejected")) == [
        (2, "limit_minutes", "number-too-large", {"max": 1000000})
    ]
    assert await stored_counts(db) == before


async def test_a_csv_cell_past_the_field_limit_is_refused_with_its_row(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file("Good,,g-1,,,,,", '"' + "A" * 200_000 + '",,g-2,,,,,', "After,,g-3,,,,,")
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body)

    [(row, column, code, params)] = problems(assert_problem(response, 422))
    assert (row, column, code) == (3, None, "csv-unreadable")
    assert params["reason"].startswith("field larger than field limit")
    assert await stored_counts(db) == before


async def test_a_header_past_the_field_limit_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file("Good,,g-1,,,,,", header="display_name," + "x" * 200_000)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body)

    [(row, _, code, params)] = problems(assert_problem(response, 422))
    assert (row, code) == (1, "csv-header-unreadable")
    assert params["reason"].startswith("field larger than field limit")
    assert await stored_counts(db) == before
