"""The Users table in Vietnamese order (ICU's `vi` collation), by full name or by given name
(the last word first), both ways, the same on SQLite and PostgreSQL."""

import functools
import random

import httpx
import icu
from sqlalchemy import text

from app.db.session import Database
from tests.helpers.api import TenantKeys, create_user

NAMES = [
    "Võ Văn Kiệt",
    "Đặng Thái Sơn",
    "Dương Thu Hương",
    "Dung Trần",
    "Nguyễn Văn An",
    "Nguyễn Thị Ánh",
    "Nguyễn Ân",
    "Ngô Bảo Châu",
    "Phan Văn Khải",
    "Phạm Quốc Việt",
    "Huỳnh Thúc Kháng",
    "Hồ Xuân Hương",
    "Hà Anh Tuấn",
    "Lê Lợi",
    "Lý Thái Tổ",
    "Trần Hưng Đạo",
    "Trương Định",
    "Ông Ích Khiêm",
    "Ôn Như Hầu",
    "Ưng Hoàng Phúc",
    "Út Nhỏ",
    "Bùi Đức Ái",
    "Bạch Thái Bưởi",
    "an nguyễn",
]


def _icu_sorted(names: list[str], key: str = "full") -> list[str]:
    collator = icu.Collator.createInstance(icu.Locale("vi"))

    def arranged(name: str) -> str:
        words = name.split()
        return " ".join(words[-1:] + words[:-1]) if key == "given" else name

    return sorted(
        names, key=functools.cmp_to_key(lambda a, b: collator.compare(arranged(a), arranged(b)))
    )


async def _order(client: httpx.AsyncClient, tenant: TenantKeys, sort: str) -> list[str]:
    response = await client.get(
        "/v1/users", params={"sort": sort, "limit": 100}, headers=tenant.admin
    )
    assert response.status_code == 200, response.text
    return [user["display_name"] for user in response.json()["items"]]


async def test_the_users_table_sorts_names_in_vietnamese_order(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for name in random.sample(NAMES, len(NAMES)):
        await create_user(client, tenant.admin, display_name=name)

    by_name = await _order(client, tenant, "display_name")
    assert by_name == _icu_sorted(NAMES)
    assert await _order(client, tenant, "-display_name") == by_name[::-1]
    # What an operator checks first: Đ after D, the letters with marks after their base
    # letter, tones after the letters they sit on.
    for before, after in [
        ("Dương Thu Hương", "Đặng Thái Sơn"),
        ("Đặng Thái Sơn", "Võ Văn Kiệt"),
        ("Ngô Bảo Châu", "Nguyễn Văn An"),
        ("Phạm Quốc Việt", "Phan Văn Khải"),
        ("Hồ Xuân Hương", "Huỳnh Thúc Kháng"),
        ("Ôn Như Hầu", "Ông Ích Khiêm"),
        ("Trần Hưng Đạo", "Trương Định"),
        ("Út Nhỏ", "Ưng Hoàng Phúc"),
    ]:
        assert by_name.index(before) < by_name.index(after), (before, after)

    by_given = await _order(client, tenant, "given_name")
    assert by_given == _icu_sorted(NAMES, "given")
    assert await _order(client, tenant, "-given_name") == by_given[::-1]
    # Â is a letter of its own, after A (and Ă): Ánh before Ân.
    assert by_given[:4] == ["Bùi Đức Ái", "Nguyễn Văn An", "Nguyễn Thị Ánh", "Nguyễn Ân"]


async def test_postgresql_own_vietnamese_collation_agrees(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, backend: str
) -> None:
    """The stored keys order as the database's ICU collation does (PostgreSQL only: SQLite
    has no ICU)."""
    if backend != "postgresql":
        return
    for name in NAMES:
        await create_user(client, tenant.admin, display_name=name)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text('SELECT display_name FROM user_account ORDER BY display_name COLLATE "vi-x-icu"')
        )
        by_database = [row[0] for row in rows]

    assert await _order(client, tenant, "display_name") == by_database
