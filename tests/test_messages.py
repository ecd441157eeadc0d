"""Errors in the operator's language: every rule and problem type has its sentence in each
language, the language follows Accept-Language, and each error carries its code and params."""

import string
from typing import Any

import httpx
import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi import FastAPI

from app.errors import LANGUAGES, Code, negotiate
from app.errors.catalogue import LOCALES, TITLE, message, title
from app.errors.types import PROBLEM_TYPE_PREFIX, problem_types
from tests.helpers.api import TenantKeys, assert_problem, create_user


def _catalogue(language: str, compiled: bool = False) -> Any:
    folder = LOCALES / language / "LC_MESSAGES"
    if compiled:
        with (folder / "messages.mo").open("rb") as mo:
            return read_mo(mo)
    with (folder / "messages.po").open("rb") as po:
        return read_po(po)


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _tail(problem_type: str) -> str:
    return problem_type.removeprefix(PROBLEM_TYPE_PREFIX)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_has_a_sentence_for_every_code_and_a_title_for_every_problem(
    language: str,
) -> None:
    catalogue = _catalogue(language)
    sentences = {m.id: m.string for m in catalogue if m.id and m.context is None}
    titles = {m.id: m.string for m in catalogue if m.id and m.context == TITLE}

    assert set(sentences) == {code.value for code in Code}
    assert set(titles) == {_tail(t) for t in problem_types()}
    assert all(text.strip() for text in [*sentences.values(), *titles.values()])
    # Whole sentences: a capital letter first, a full stop last.
    for code, text in sentences.items():
        assert text[0].isupper() and text.endswith("."), (language, code, text)


def test_both_languages_quote_the_same_params_and_differ() -> None:
    english = {(m.context, m.id): m.string for m in _catalogue("en") if m.id}
    for entry in _catalogue("vi"):
        if not entry.id:
            continue
        key = (entry.context, entry.id)
        assert _names(entry.string) == _names(english[key]), entry.id
        if _names(entry.string) or entry.context == TITLE:
            assert entry.string != english[key], entry.id


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_source(language: str) -> None:
    source = {(m.context, m.id): m.string for m in _catalogue(language) if m.id}
    compiled = {(m.context, m.id): m.string for m in _catalogue(language, True) if m.id}
    assert compiled == source, "run `make install` to compile the catalogues again"


async def test_the_document_lists_every_problem_type_and_code(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    declared_types = schemas["Problem"]["properties"]["type"]["enum"]
    assert declared_types == problem_types()
    assert set(schemas["Code"]["enum"]) == {code.value for code in Code}
    for problem_type in declared_types:
        for language in LANGUAGES:
            assert title(_tail(problem_type), language) != _tail(problem_type)
    for code in schemas["Code"]["enum"]:
        for language in LANGUAGES:
            assert message(code, _sample_params(code), language) != code


def _sample_params(code: str) -> dict[str, Any]:
    template = _catalogue("en")._messages[code].string
    return {name: ["113", "114"] for name in _names(template)}


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("vi", "vi"),
        ("vi-VN", "vi"),
        ("VI-vn", "vi"),
        ("en-US,vi;q=0.9", "en"),
        ("vi;q=0.5, en;q=0.8", "en"),
        ("en;q=0.2, vi-VN;q=0.9", "vi"),
        ("fr-FR, vi;q=0.7, en;q=0.3", "vi"),
        ("fr, de", "en"),
        ("vi;q=0, en", "en"),
        ("vi;q=0", "en"),
        ("*", "en"),
        ("vi;q=abc, en;q=0.1", "en"),
        ("ja;q=0.9, *;q=0.8, vi;q=0.5", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str | None, language: str) -> None:
    assert negotiate(header) == language


async def test_a_problem_answers_in_the_language_asked(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    path = f"/v1/users/{user['id']}/extensions"

    english = await client.post(path, json={"number": "1"}, headers=tenant.admin)
    vietnamese = await client.post(
        path, json={"number": "1"}, headers={**tenant.admin, "Accept-Language": "vi-VN,en;q=0.5"}
    )

    for response, language in ((english, "en"), (vietnamese, "vi")):
        body = assert_problem(response, 422, field="body.number", code="validation-error")
        assert response.headers["content-language"] == language
        assert "accept-language" in response.headers["vary"].lower()
        (error,) = body["errors"]
        assert error["code"] == "digits"
        assert error["params"] == {"min": 2, "max": 4}
    assert english.json()["title"] == "Invalid input"
    assert english.json()["errors"][0]["message"] == "Enter 2 to 4 digits."
    assert vietnamese.json()["title"] == "Dữ liệu không hợp lệ"
    assert vietnamese.json()["errors"][0]["message"] == "Hãy nhập từ 2 đến 4 chữ số."
    assert vietnamese.json()["detail"] == (
        "Các trường sau không hợp lệ: body.number. Xem lý do của từng trường trong errors."
    )


async def test_problems_without_a_key_or_a_route_answer_in_the_language_asked(
    client: httpx.AsyncClient,
) -> None:
    vi = {"Accept-Language": "vi"}
    unauthorized = await client.get("/v1/users", headers=vi)
    body = assert_problem(unauthorized, 401, code="unauthorized")
    assert body["code"] == "api-key-missing"
    assert body["title"] == "Chưa xác thực"
    assert unauthorized.headers["content-language"] == "vi"

    missing = await client.get("/v1/nothing-here", headers=vi)
    body = assert_problem(missing, 404, code="not-found")
    assert body["code"] == "route-not-found"
    assert body["detail"] == "Không có đường dẫn này."


async def test_rules_carry_their_params(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str]
) -> None:
    user = await create_user(client, tenant.admin)
    vi = {**tenant.admin, "Accept-Language": "vi"}

    shadow = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "1130"}, headers=vi
    )
    body = assert_problem(shadow, 422, field="body.number", code="extension-shadows-emergency")
    (error,) = body["errors"]
    assert error["code"] == "extension-shadows-emergency"
    assert error["params"] == {"number": "1130", "numbers": ["113", "114", "115"]}
    assert error["message"] == "Số nội bộ 1130 có thể bị nhầm với số khẩn cấp (113, 114 hoặc 115)."
    assert body["code"] == error["code"] and body["params"] == error["params"]

    short = await client.patch(f"/v1/users/{user['id']}", json={"display_name": ""}, headers=vi)
    (error,) = assert_problem(short, 422, field="body.display_name")["errors"]
    assert (error["code"], error["params"]) == ("text-too-short", {"min": 1})
    assert error["message"] == "Hãy nhập ít nhất 1 ký tự."

    kind = await client.post(
        f"/v1/users/{user['id']}/devices", json={"kind": "fax"}, headers=tenant.admin
    )
    errors = assert_problem(kind, 422, field="body.kind")["errors"]
    (error,) = [e for e in errors if e["field"] == "body.kind"]
    assert error["code"] == "not-one-of"
    assert set(error["params"]["allowed"]) >= {"softphone", "ip_phone"}

    mac = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"kind": "softphone", "name": "lan.desk", "mac": "001565aabbcc"},
        headers=tenant.admin,
    )
    (error,) = assert_problem(mac, 422, field="body.mac")["errors"]
    assert (error["code"], error["params"]) == ("ip-phone-only", {"property": "mac"})
    assert error["message"] == "Only an IP phone has a mac."


async def test_a_conflict_names_the_field_taken(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    first = await create_user(client, tenant.admin)
    second = await create_user(client, tenant.admin, display_name="Minh Tran")
    await client.post(
        f"/v1/users/{first['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )
    vi = {**tenant.admin, "Accept-Language": "vi"}

    taken = await client.post(
        f"/v1/users/{second['id']}/extensions", json={"number": "102"}, headers=vi
    )

    body = assert_problem(taken, 409, field="body.number", code="extension-taken")
    assert body["title"] == "Số nội bộ đã được dùng"
    assert body["detail"] == "Số nội bộ 102 đã được gán cho người dùng khác."
    assert body["errors"][0]["params"] == {"number": "102"}

    device = first["devices"][0]["name"]
    renamed = await client.post(
        f"/v1/users/{second['id']}/devices",
        json={"kind": "softphone", "name": device},
        headers=tenant.admin,
    )
    body = assert_problem(renamed, 409, field="body.name", code="device-name-taken")
    assert body["errors"][0] == {
        "field": "body.name",
        "code": "device-name-taken",
        "params": {"name": device},
        "message": f"The device name {device} is already used in this tenant.",
    }
