"""Application-wide objects that routes receive as dependencies."""

from typing import Annotated

from fastapi import Depends, Request

from app.crypto import PasswordCipher
from app.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _cipher(request: Request) -> PasswordCipher:
    cipher: PasswordCipher = request.app.state.cipher
    return cipher


SettingsDep = Annotated[Settings, Depends(_settings)]
CipherDep = Annotated[PasswordCipher, Depends(_cipher)]
