"""Searching the Users table as operators type names: without accents or with them, precomposed
or decomposed, words in any order, each the start of a word of the name, email, an extension or
a device's name; the same users on SQLite and PostgreSQL, and kept current by every write."""

import unicodedata

import httpx
import pytest

from tests.helpers.api import TenantKeys, add_device, add_extension, create_user
from tests.helpers.imports import csv_file, post_import

# Agents as a Vietnamese call center names them: (name, email, extensions, extra device).
AGENTS = {
    "an": ("Nguyễn Văn An", "an.nguyen@acme.vn", ["101"], None),
    "anh": ("Nguyễn Thị Ánh", None, ["102"], "anh.desk"),
    "hieu": ("Trần Thị Hiếu", "hieu.tran@acme.vn", [], None),
    "hieu2": ("Lê Minh Hiếu", None, ["230"], None),
    "dang": ("Đặng Văn Đức", "duc@globex.vn", [], None),
    "duong": ("Dương Thị Dung", None, [], "front-desk.phone"),
    "ngo": ("Ngô Bảo Châu", None, ["2301"], None),
    "pham": ("Phạm Quốc Việt", None, [], None),
    "phan": ("Phan Văn Khải", None, [], None),
}

SEARCHES = [
    # Without diacritics, as operators type.
    ("nguyen", {"an", "anh"}),
    ("Nguyen Van An", {"an"}),
    ("thi hieu", {"hieu"}),
    ("hieu", {"hieu", "hieu2"}),
    # With diacritics, in any case; decomposed (a letter and its combining marks) too.
    ("Nguyễn", {"an", "anh"}),
    ("NGUYỄN VĂN", {"an"}),
    (unicodedata.normalize("NFD", "Nguyễn"), {"an", "anh"}),
    (unicodedata.normalize("NFD", "Hiếu Trần"), {"hieu"}),
    # Words in any order, each the start of a word.
    ("van an nguyen", {"an"}),
    ("an nguyen", {"an", "anh"}),
    ("ng v", {"an"}),
    ("van ph", {"phan"}),
    ("guyen", set()),
    # đ and Đ as d, both sides.
    ("dang", {"dang"}),
    ("Đặng", {"dang"}),
    ("duc", {"dang"}),
    ("đức", {"dang"}),
    ("d", {"dang", "duong", "anh"}),
    ("dung", {"duong"}),
    # Tones and vowel marks ignored, letters not.
    ("pham", {"pham"}),
    ("phan", {"phan"}),
    ("ph", {"pham", "phan", "duong"}),
    ("ngo", {"ngo"}),
    ("ng", {"ngo", "an", "anh"}),
    ("ngô bảo", {"ngo"}),
    # Email, from its start or from a word within it.
    ("an.nguyen@", {"an"}),
    ("acme.vn", {"an", "hieu"}),
    ("globex", {"dang"}),
    # Extensions from their start.
    ("10", {"an", "anh"}),
    ("230", {"hieu2", "ngo"}),
    ("2301", {"ngo"}),
    ("01", set()),
    # Device names, whole or from a word within them.
    ("anh.desk", {"anh"}),
    ("desk", {"anh", "duong"}),
    ("front-desk", {"duong"}),
    ("phone", {"duong"}),
    ("viet", {"pham"}),
    ("zzz", set()),
]


async def _agents(client: httpx.AsyncClient, tenant: TenantKeys) -> dict[str, str]:
    ids = {}
    for n, (key, (name, email, extensions, device)) in enumerate(AGENTS.items()):
        user = await create_user(
            client, tenant.admin, display_name=name, **({"email": email} if email else {})
        )
        # The default device's name ends in random hex digits, which a short search could
        # start: named plainly, it finds no one by chance.
        renamed = await client.patch(
            f"/v1/devices/{user['devices'][0]['id']}",
            json={"name": f"web{n}"},
            headers=tenant.admin,
        )
        assert renamed.status_code == 200, renamed.text
        for number in extensions:
            await add_extension(client, tenant.admin, user["id"], number)
        if device:
            await add_device(client, tenant.admin, user["id"], name=device)
        ids[user["id"]] = key
    return ids


async def _found(client: httpx.AsyncClient, tenant: TenantKeys, search: str) -> list[str]:
    response = await client.get(
        "/v1/users", params={"search": search, "limit": 100}, headers=tenant.admin
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    return [user["id"] for user in page["items"]]


async def test_each_search_finds_the_agents_an_operator_means(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    ids = await _agents(client, tenant)
    # Another tenant's namesakes are never found.
    await create_user(client, other_tenant.admin, display_name="Nguyễn Văn An")

    for search, expected in SEARCHES:
        found = await _found(client, tenant, search)
        assert len(found) == len(set(found)), search
        assert {ids[user_id] for user_id in found} == expected, search


async def test_a_search_follows_renames_of_the_agent_and_of_a_device(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Trần Thị Hiếu")
    device = await add_device(client, tenant.admin, user["id"], name="hieu.phone")

    renamed = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": "quay-3"}, headers=tenant.admin
    )
    assert renamed.status_code == 200, renamed.text
    assert await _found(client, tenant, "hieu") == [user["id"]]
    assert await _found(client, tenant, "quay") == [user["id"]]
    assert await _found(client, tenant, "hieu.phone") == []

    changed = await client.patch(
        f"/v1/users/{user['id']}",
        json={"display_name": "Võ Thị Hoà", "email": "hoa@acme.vn"},
        headers=tenant.admin,
    )
    assert changed.status_code == 200, changed.text
    assert await _found(client, tenant, "hoa vo") == [user["id"]]
    assert await _found(client, tenant, "hoa@") == [user["id"]]
    # The default device is still named after the old name: its words find the user too.
    assert await _found(client, tenant, "thi hieu") == [user["id"]]
    assert await _found(client, tenant, "hoa tran") == [user["id"]]

    deleted = await client.delete(f"/v1/devices/{user['devices'][0]['id']}", headers=tenant.admin)
    assert deleted.status_code == 204
    assert await _found(client, tenant, "hieu") == []


async def test_an_import_keeps_the_search_current(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    created = await post_import(
        client,
        tenant.admin,
        csv_file("Huỳnh Thị Lụa,lua@acme.vn,emp-1,401,lua.desk:ip_phone,,,"),
    )
    assert created.status_code == 200, created.text
    user_id = created.json()["rows"][0]["user_id"]
    assert await _found(client, tenant, "lua huynh") == [user_id]
    assert await _found(client, tenant, "401") == [user_id]
    assert await _found(client, tenant, "lua.desk") == [user_id]

    updated = await post_import(
        client, tenant.admin, csv_file("Hồ Thị Lụa,lua.ho@acme.vn,emp-1,402,lua.web:web,,,")
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["updated"] == 1
    assert await _found(client, tenant, "ho lua") == [user_id]
    assert await _found(client, tenant, "lua.ho@") == [user_id]
    assert await _found(client, tenant, "402") == [user_id]
    assert await _found(client, tenant, "lua.web") == [user_id]
    for gone in ("huynh", "401", "lua.desk", "lua@"):
        assert await _found(client, tenant, gone) == [], gone


@pytest.mark.parametrize("search", ["%", "_", "\\", "a%b"])
async def test_like_wildcards_in_a_search_are_letters(
    client: httpx.AsyncClient, tenant: TenantKeys, search: str
) -> None:
    await create_user(client, tenant.admin, display_name="Nguyễn Văn An")

    assert await _found(client, tenant, search) == []
