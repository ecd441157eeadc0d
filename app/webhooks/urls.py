"""Where webhooks may go: http(s) URLs of public hosts. Private, loopback and link-local
addresses are refused (the service must not be a way into its own network) unless
ANTRING_WEBHOOKS_ALLOW_PRIVATE_URLS=true: when an endpoint is saved, and at each delivery by the
resolver its connections go through, which checks the very addresses it then connects to (a
name that answers a public address to the check and 127.0.0.1 to the connection, DNS
rebinding, gets nowhere)."""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from app.errors import DEFAULT_LANGUAGE, Code
from app.errors.catalogue import message


@dataclass(frozen=True, slots=True)
class UrlProblem:
    """Why a webhook's URL may not be called: the rule and its params (in words: English, as
    a delivery's record keeps it)."""

    rule: Code
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return message(self.rule, self.params, DEFAULT_LANGUAGE)


class AddressRefused(OSError):
    """A webhook's host that may not be called; aiohttp reports it as the cause of a
    ClientConnectorError, and nothing is connected to."""


# IPv6 addresses that carry an IPv4 one (NAT64's well-known prefix among them) are global to
# ipaddress, yet a gateway may turn them into the IPv4 address they carry.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None and _is_private(str(carried)):
            return True
    return not ip.is_global or ip.is_multicast


def _refusal(host: str, addresses: Iterable[str]) -> UrlProblem | None:
    if any(_is_private(address) for address in addresses):
        return UrlProblem(Code.webhook_host_private, {"host": host})
    return None


def url_problem(url: str) -> UrlProblem | None:
    """What is wrong with a webhook URL's form, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return UrlProblem(Code.webhook_url)
    if parts.username or parts.password:
        return UrlProblem(Code.webhook_url_credentials)
    try:
        # What resolving it would do first: a label over 63 characters, or an empty one, is
        # no name at all.
        parts.hostname.encode("idna")
    except UnicodeError:
        return UrlProblem(Code.webhook_host_invalid, {"host": parts.hostname})
    return None


async def address_problem(url: str, *, allow_private: bool) -> UrlProblem | None:
    """Why the URL may not be called, its host resolved now, or None (when it is saved)."""
    problem = url_problem(url)
    if problem or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return UrlProblem(Code.webhook_host_unresolved, {"host": host})
    return _refusal(host, (str(info[4][0]) for info in infos))


def delivery_problem(url: str, *, allow_private: bool) -> UrlProblem | None:
    """Why a delivery to the URL may not be tried, as far as the URL itself tells: its form, or
    a private address written in it (aiohttp connects to an address in the URL without asking
    its resolver). A name's addresses are checked by PublicResolver, as it is resolved."""
    problem = url_problem(url)
    if problem or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return _refusal(host, [host])


class PublicResolver(AbstractResolver):
    """The resolver of the delivery worker's connections: resolves a name once, refuses it if
    any of its addresses is private (unless those are allowed), and gives aiohttp the addresses
    it checked, which aiohttp connects to; the name stays the TLS server name (SNI, the
    certificate's check) and the Host header."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            found = await self._resolver.resolve(host, port, family)
        except UnicodeError:
            raise AddressRefused(
                str(UrlProblem(Code.webhook_host_invalid, {"host": host}))
            ) from None
        if not self._allow_private:
            problem = _refusal(host, (result["host"] for result in found))
            if problem:
                raise AddressRefused(str(problem))
        return found

    async def close(self) -> None:
        await self._resolver.close()
