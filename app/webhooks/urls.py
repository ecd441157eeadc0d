"""Where webhooks may go: http(s) URLs of public hosts. Private, loopback and link-local
addresses are refused (the service must not be a way into its own network) unless
ANTRING_WEBHOOKS_ALLOW_PRIVATE_URLS=true; checked when an endpoint is saved and again at each
round of deliveries, since a name may resolve elsewhere later."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL's form, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    try:
        # What resolving it would do first: a label over 63 characters, or an empty one, is
        # no name at all.
        parts.hostname.encode("idna")
    except UnicodeError:
        return "its host is not a valid name: each dot-separated label has 1 to 63 characters"
    return None


async def address_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the URL may not be called, or None."""
    problem = url_problem(url)
    if problem or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return f"its host {host} cannot be resolved"
    if any(_is_private(str(info[4][0])) for info in infos):
        return f"its host {host} is a private, loopback or link-local address"
    return None
