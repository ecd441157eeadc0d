"""What every route shares, as `Annotated` aliases: the request's session and the app's objects
(database, settings, cipher) and `If-Match`. A shared kit below every domain: who is calling
(the key, its role, the tenant it acts on) is app/auth/deps.py, the resource a route acts on
its domain's deps.py (the user: app/user_record/deps.py, a device: app/devices/deps.py)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher
from app.db.session import Database
from app.errors import negotiate
from app.etags import IF_MATCH_PATTERN
from app.settings import Settings

# Dependencies are async: FastAPI runs a sync one in a worker thread, a cost on every request.


async def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _cipher(request: Request) -> PasswordCipher:
    cipher: PasswordCipher = request.app.state.cipher
    return cipher


DatabaseDep = Annotated[Database, Depends(_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CipherDep = Annotated[PasswordCipher, Depends(_cipher)]


async def _request_session(request: Request, db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with db.session_scope() as session:
        yield session
    if request.method != "GET":
        # A change may have written events: the delivery worker looks now, not at its poll.
        request.app.state.dispatcher.wake()


# The request's unit of work. scope="function": it commits, and gives its connection back,
# before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


IfMatch = Annotated[
    str | None,
    Header(
        description="The ETag the change is based on: a stale one answers 412 and changes "
        "nothing. Without it the write goes through.",
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]


IfNoneMatch = Annotated[
    str | None,
    Header(
        description="The ETag of what was read before: 304 with no body while it is unchanged.",
    ),
]


def _language(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"))


# The language the request's Accept-Language prefers among the service's (en by default): the
# language of the messages an answer writes.
LanguageDep = Annotated[str, Depends(_language)]
