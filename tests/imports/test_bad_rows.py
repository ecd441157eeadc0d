from typing import Any

import httpx
import pytest

from app.db.session import Database
from tests.helpers.api import TenantKeys, add_device, add_extension, assert_problem, create_user
from tests.helpers.imports import HEADER, finished_job, post_import, stored_counts

EMERGENCY = ["113", "114", "115"]

# Each bad row of one file, with the row, column, and rule (code and params) its problem names.
# Row 1 is the header; rows 2 and 14 are good (and rows below refer to them).
ROWS: list[tuple[bytes, tuple[str | None, str, dict[str, Any]] | None]] = [
    (b"Good,,g-1,201,,,,", None),
    (b"A,,r-3,12345,,,,", ("extensions", "digits", {"min": 2, "max": 4, "item": "12345"})),
    (
        b"A,,r-4,113,,,,",
        ("extensions", "extension-shadows-emergency", {"number": "113", "numbers": EMERGENCY}),
    ),
    (
        b"A,,r-5,11,,,,",
        ("extensions", "extension-shadows-emergency", {"number": "11", "numbers": EMERGENCY}),
    ),
    (b"A,,r-6,150,,,,", ("extensions", "extension-taken", {"number": "150"})),
    (b"A,,r-7,201,,,,", ("extensions", "also-in-row", {"row": 2, "item": "201"})),
    (b"A,,r-8,202 202,,,,", ("extensions", "twice-in-row", {"item": "202"})),
    (
        b"A,,r-9,,a9.desk:phone,,,",
        ("devices", "not-one-of", {"allowed": ["web", "softphone", "ip_phone"], "item": "phone"}),
    ),
    (b"A,not-an-email,r-10,,,,,", ("email", "email", {})),
    (b"A,,r-11,,,-5,,", ("limit_minutes", "number-too-small", {"min": 0})),
    (b"A,,r-12,,,lots,,", ("limit_minutes", "limit-form", {})),
    (b"A,,g-1,,,,,", ("external_ref", "also-in-row", {"row": 2, "item": "g-1"})),
    (b"A,,r-14,,Dup.Desk:web,,,", None),
    (
        b"A,,r-15,,dup.desk:softphone,,,",
        ("devices", "also-in-row", {"row": 14, "item": "dup.desk"}),
    ),
    (b"A,,r-16,,TAKEN.desk:web,,,", ("devices", "device-name-taken", {"name": "TAKEN.desk"})),
    (b"A,,r-17,,x:web,,,", ("devices", "sip-username", {"min": 3, "max": 64, "item": "x"})),
    (b"A,,r-18,,lonely,,,", ("devices", "device-form", {"item": "lonely"})),
    (b"A,,r-19,,,,,,extra", (None, "cell-count", {"cells": 9, "columns": 8})),
    (b"A,,r-20", (None, "cell-count", {"cells": 3, "columns": 8})),
    ("Nguyên Thi Hoà,,r-21,,,,,".encode("cp1252"), ("display_name", "file-not-utf8", {})),
    (b",,r-22,,,,,", ("display_name", "required", {})),
    (b"A,,r-23,,,,yes,", ("outbound_allowed", "not-a-boolean", {})),
    (b"A" * 201 + b",,r-24,,,,,", ("display_name", "text-too-long", {"max": 200})),
    (b"A\x07B,,r-25,,,,,", ("display_name", "control-characters", {})),
    (b"A,,r" + b"9" * 200 + b",,,,,", ("external_ref", "text-too-long", {"max": 200})),
]
# What a few of them read like, in each language.
MESSAGES = {
    "en": {
        3: "“12345”: Enter 2 to 4 digits.",
        4: "Extension 113 could be mistaken for an emergency number (113, 114, or 115).",
        7: "“201”: This is also in row 2.",
        9: "“phone”: The value must be one of web, softphone, or ip_phone.",
    },
    "vi": {
        3: "“12345”: Hãy nhập từ 2 đến 4 chữ số.",
        4: "Số nội bộ 113 có thể bị nhầm với số khẩn cấp (113, 114 hoặc 115).",
        7: "“201”: Giá trị này cũng có ở dòng 2.",
        9: "“phone”: Giá trị phải là một trong các giá trị web, softphone hoặc ip_phone.",
    },
}
EXPECTED = [(row, *problem) for row, (_, problem) in enumerate(ROWS, start=2) if problem]


def bad_file() -> bytes:
    return b"\r\n".join([HEADER.encode(), *(line for line, _ in ROWS)]) + b"\r\n"


async def stored_neighbours(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    holder = await create_user(client, tenant.admin, display_name="Holder")
    await add_extension(client, tenant.admin, holder["id"], "150")
    await add_device(client, tenant.admin, holder["id"], name="taken.desk")


@pytest.mark.parametrize("language", ["en", "vi"])
async def test_a_dry_run_reports_every_bad_row_with_its_row_and_column(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, language: str
) -> None:
    await stored_neighbours(client, tenant)
    before = await stored_counts(db)

    response = await post_import(
        client, {**tenant.admin, "Accept-Language": language}, bad_file(), dry_run=True
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-language"] == language
    report = response.json()
    assert len(EXPECTED) == 23
    problems = report["problems"]
    assert [(p["row"], p["column"], p["code"], p["params"]) for p in problems] == EXPECTED
    assert report["problems_total"] == len(EXPECTED)
    shown = {p["row"]: p["message"] for p in problems}
    assert {row: shown[row] for row in MESSAGES[language]} == MESSAGES[language]
    assert [r["row"] for r in report["rows"]] == [2, 14]
    assert await stored_counts(db) == before


async def test_the_same_file_imported_for_real_stores_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await stored_neighbours(client, tenant)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, bad_file())

    body = assert_problem(response, 422, code="import-rejected")
    assert (body["code"], body["params"]) == ("import-rejected", {"total": 23, "listed": 23})
    assert body["detail"] == (
        "Problems in the file: 23, the first 23 listed in errors; nothing was imported."
    )
    assert [(e["row"], e.get("column"), e["code"], e["params"]) for e in body["errors"]] == EXPECTED
    assert all(e["field"] == f"body.{e['column']}" for e in body["errors"] if "column" in e)
    assert await stored_counts(db) == before


async def test_a_bad_row_after_good_batches_stores_nothing_either(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    # 1,200 good rows (two batches written in the transaction), then one bad row.
    rows = [f"Agent {i},,a-{i},,,,," for i in range(1200)] + ["Late,,a-late,12345,,,,"]
    body = "\r\n".join([HEADER, *rows]).encode()
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, body)

    # More rows than answer at once: a job, which fails with the problem.
    assert response.status_code == 202, response.text
    job = await finished_job(client, tenant.admin, response.headers["location"])
    assert (job["status"], job["rows_done"], job["rows_total"]) == ("failed", 1201, 1201)
    problems = job["report"]["problems"]
    assert [(p["row"], p["column"]) for p in problems] == [(1202, "extensions")]
    assert await stored_counts(db) == before


async def test_a_windows_1252_file_is_refused_row_by_row(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    text = (
        "display_name,email,external_ref\r\n"
        "Nguyên Vân An,an@acme.vn,emp-1\r\n"
        "Plain Ascii,bình@acme.vn,emp-2\r\n"
        "Hoa,hoa@acme.vn,Mã-3\r\n"
    )
    body = text.encode("cp1252")

    response = await post_import(client, tenant.admin, body, dry_run=True)

    assert [(p["row"], p["column"], p["code"]) for p in response.json()["problems"]] == [
        (2, "display_name", "file-not-utf8"),
        (3, "email", "file-not-utf8"),
        (4, "external_ref", "file-not-utf8"),
    ]
    assert_problem(await post_import(client, tenant.admin, body), 422)
    assert (await stored_counts(db))["user_account"] == 0
