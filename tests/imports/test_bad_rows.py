import httpx

from app.db.session import Database
from tests.helpers.api import TenantKeys, add_device, add_extension, assert_problem, create_user
from tests.helpers.imports import HEADER, finished_job, post_import, stored_counts

NOT_UTF8 = "is not UTF-8 text: save the file as CSV UTF-8 (Windows-1252 and others are not read)"

# Each bad row of one file, with the row, column and sentence its problem names. Row 1 is the
# header; rows 2 and 14 are good (and rows below refer to them).
ROWS: list[tuple[bytes, tuple[str | None, str] | None]] = [
    (b"Good,,g-1,201,,,,", None),
    (b"A,,r-3,12345,,,,", ("extensions", "12345: must be 2 to 4 digits")),
    (b"A,,r-4,113,,,,", ("extensions", "113 would shadow an emergency number (113, 114, 115).")),
    (b"A,,r-5,11,,,,", ("extensions", "11 would shadow an emergency number (113, 114, 115).")),
    (b"A,,r-6,150,,,,", ("extensions", "Extension 150 is already assigned to another user.")),
    (b"A,,r-7,201,,,,", ("extensions", "201 is also in row 2")),
    (b"A,,r-8,202 202,,,,", ("extensions", "202 is given twice in this row")),
    (
        b"A,,r-9,,a9.desk:phone,,,",
        ("devices", "a9.desk: kind must be one of 'web', 'softphone' or 'ip_phone'"),
    ),
    (b"A,not-an-email,r-10,,,,,", ("email", "must be an email address such as lan@acme.vn")),
    (b"A,,r-11,,,-5,,", ("limit_minutes", "must be 0 or more")),
    (b"A,,r-12,,,lots,,", ("limit_minutes", "must be a whole number (empty: unlimited)")),
    (b"A,,g-1,,,,,", ("external_ref", "g-1 is also in row 2")),
    (b"A,,r-14,,Dup.Desk:web,,,", None),
    (
        b"A,,r-15,,dup.desk:softphone,,,",
        ("devices", "dup.desk is also in row 14 (device names are unique whatever their case)"),
    ),
    (
        b"A,,r-16,,TAKEN.desk:web,,,",
        ("devices", "Device name TAKEN.desk is already used in this tenant."),
    ),
    (b"A,,r-17,,x:web,,,", ("devices", "x: must be 3 to 64 letters, digits, '.', '_' or '-'")),
    (b"A,,r-18,,lonely,,,", ("devices", "lonely: must be name:kind, such as lan.desk:ip_phone")),
    (b"A,,r-19,,,,,,extra", (None, "has 9 cells where the header has 8")),
    (b"A,,r-20", (None, "has 3 cells where the header has 8")),
    ("Nguyên Thi Hoà,,r-21,,,,,".encode("cp1252"), ("display_name", NOT_UTF8)),
    (b",,r-22,,,,,", ("display_name", "is required")),
    (b"A,,r-23,,,,yes,", ("outbound_allowed", "must be true or false")),
    (b"A" * 201 + b",,r-24,,,,,", ("display_name", "must have at most 200 characters")),
    (b"A\x07B,,r-25,,,,,", ("display_name", "must not contain control characters")),
    (b"A,,r" + b"9" * 200 + b",,,,,", ("external_ref", "must have at most 200 characters")),
]
EXPECTED = [(row, *problem) for row, (_, problem) in enumerate(ROWS, start=2) if problem]


def bad_file() -> bytes:
    return b"\r\n".join([HEADER.encode(), *(line for line, _ in ROWS)]) + b"\r\n"


async def stored_neighbours(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    holder = await create_user(client, tenant.admin, display_name="Holder")
    await add_extension(client, tenant.admin, holder["id"], "150")
    await add_device(client, tenant.admin, holder["id"], name="taken.desk")


async def test_a_dry_run_reports_every_bad_row_with_its_row_and_column(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await stored_neighbours(client, tenant)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, bad_file(), dry_run=True)

    assert response.status_code == 200, response.text
    report = response.json()
    assert len(EXPECTED) == 23
    assert [(p["row"], p["column"], p["message"]) for p in report["problems"]] == EXPECTED
    assert report["problems_total"] == len(EXPECTED)
    assert all(p["type"] for p in report["problems"])
    assert [r["row"] for r in report["rows"]] == [2, 14]
    assert await stored_counts(db) == before


async def test_the_same_file_imported_for_real_stores_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await stored_neighbours(client, tenant)
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, bad_file())

    body = assert_problem(response, 422, code="import-rejected")
    assert body["detail"] == "23 problems in the file (each is listed); nothing was imported."
    assert [(e["row"], e.get("column"), e["message"]) for e in body["errors"]] == EXPECTED
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

    assert [(p["row"], p["column"], p["message"]) for p in response.json()["problems"]] == [
        (2, "display_name", NOT_UTF8),
        (3, "email", NOT_UTF8),
        (4, "external_ref", NOT_UTF8),
    ]
    assert_problem(await post_import(client, tenant.admin, body), 422)
    assert (await stored_counts(db))["user_account"] == 0
