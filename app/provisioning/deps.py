"""The origin phones and softphones reach the service at, for the links and files they get."""

from typing import Annotated

from fastapi import Depends, Request

from app.settings import Settings


async def _public_base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.provisioning_base_url or str(request.base_url).rstrip("/")


# ANTRING_PROVISIONING_BASE_URL, else the request's own origin.
PublicBaseUrl = Annotated[str, Depends(_public_base_url)]
