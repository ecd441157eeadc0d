"""HTTP Basic and Digest (RFC 7617, RFC 7616 with MD5 and qop=auth) for the provisioning route:
phones send a user name and password, never a Bearer key, and many of them only over plain HTTP,
where digest keeps the password off the wire. No maintained ASGI package checks digest
responses, so it is done here. A nonce is made statelessly (a time, a salt and their HMAC with
what it is bound to, the client's address and the tenant), so any process can check it; that a
response was not seen before is the caller's to check (`Verdict.use`), in the database."""

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

REALM = "AntRing provisioning"
NONCE_LIFETIME_SECONDS = 300
# How far ahead of this process's clock another replica's may run.
CLOCK_SKEW_SECONDS = 30
# Longer than any header a phone sends; uvicorn bounds the whole head anyway.
MAX_PARAMS_CHARS = 4096

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# RFC 9110 auth-param: token BWS "=" BWS ( token / quoted-string ), then OWS. Each alternative
# excludes what the next one starts with, so matching is linear in the text's length.
_PARAM = re.compile(
    rf'[ \t]*({_TOKEN})[ \t]*=[ \t]*(?:({_TOKEN})|"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]'
    rf'|\\[\t\x20-\x7e\x80-\xff])*)")[ \t]*'
)
_SEPARATORS = re.compile(r"[ \t,]*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_NONCE = re.compile(r"([0-9]{1,12})\.([0-9a-f]{16})\.([0-9a-f]{32})")
_NONCE_COUNT = re.compile(r"[0-9A-Fa-f]{1,8}")
_RESPONSE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class NonceUse:
    """A digest response's nonce and count (`nc`): the response is good only if no earlier one
    used this nonce with this count or a higher one."""

    nonce: str
    count: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    # The response was right but its nonce cannot be used (expired, made for another client,
    # or used already): the client retries without asking the user again (RFC 7616
    # `stale=true`), and no password was guessed.
    stale: bool = False
    # For a digest response: what the caller claims before it believes the response.
    use: NonceUse | None = None


def parse_params(text: str) -> dict[str, str] | None:
    """A challenge or credentials' auth-params (`name=token, name="quoted"`), names lower-cased;
    None when the text is not such a list (or names a parameter twice)."""
    if len(text) > MAX_PARAMS_CHARS:
        return None
    params: dict[str, str] = {}
    pos, end = 0, len(text)
    while True:
        # Empty list elements are allowed (RFC 9110 section 5.6.1).
        separators = _SEPARATORS.match(text, pos)
        pos = separators.end() if separators else pos
        if pos == end:
            break
        param = _PARAM.match(text, pos)
        if param is None:
            return None
        name = param[1].lower()
        if name in params:
            return None
        token, quoted = param[2], param[3]
        params[name] = token if token is not None else _QUOTED_PAIR.sub(r"\1", quoted)
        pos = param.end()
        if pos < end and text[pos] != ",":
            return None
    return params or None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _nonce_mac(key: bytes, stamp: str, bound_to: str) -> str:
    return hmac.new(key, f"{stamp}\n{bound_to}".encode(), hashlib.sha256).hexdigest()[:32]


def new_nonce(key: bytes, *, bound_to: str, now: float | None = None) -> str:
    """A nonce only a request from `bound_to` (the client and what it asks) can use."""
    stamp = f"{int(time.time() if now is None else now)}.{secrets.token_hex(8)}"
    return f"{stamp}.{_nonce_mac(key, stamp, bound_to)}"


def _nonce_issued(key: bytes, nonce: str, bound_to: str) -> int | None:
    """When a nonce of ours, made for `bound_to`, was issued; None for any other."""
    parts = _NONCE.fullmatch(nonce)
    if parts is None:
        return None
    stamp = f"{parts[1]}.{parts[2]}"
    if not hmac.compare_digest(parts[3].encode(), _nonce_mac(key, stamp, bound_to).encode()):
        return None
    return int(parts[1])


def challenges(key: bytes, *, bound_to: str, stale: bool = False) -> list[str]:
    """The WWW-Authenticate challenges, strongest first."""
    nonce = new_nonce(key, bound_to=bound_to)
    digest = f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}"' + (
        ", stale=true" if stale else ""
    )
    return [digest, f'Basic realm="{REALM}", charset="UTF-8"']


def check(
    authorization: str | None,
    *,
    username: str,
    secret: str,
    method: str,
    uri: str,
    nonce_key: bytes,
    bound_to: str,
    now: float | None = None,
) -> Verdict:
    """Whether the Authorization header proves the user name and secret. Any header at all
    gives a verdict: one that cannot be read proves nothing."""
    if not authorization:
        return Verdict(ok=False)
    try:
        # A header comes off the wire as bytes (Starlette reads them as Latin-1): other text
        # was not sent by a client.
        authorization.encode("latin-1")
    except UnicodeEncodeError:
        return Verdict(ok=False)
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        return Verdict(ok=_check_basic(rest.strip(), username=username, secret=secret))
    if scheme.lower() == "digest":
        params = parse_params(rest)
        if params is None:
            return Verdict(ok=False)
        return _check_digest(
            params,
            username=username,
            secret=secret,
            method=method,
            uri=uri,
            nonce_key=nonce_key,
            bound_to=bound_to,
            now=time.time() if now is None else now,
        )
    return Verdict(ok=False)


def _check_basic(token: str, *, username: str, secret: str) -> bool:
    try:
        sent_user, sep, sent_secret = base64.b64decode(token, validate=True).decode().partition(":")
    except ValueError:  # not Base64 (binascii.Error), not ASCII, or not UTF-8
        return False
    # Both compared, whatever the first gives: the time taken says nothing about either.
    user_ok = hmac.compare_digest(sent_user.encode(), username.encode())
    secret_ok = hmac.compare_digest(sent_secret.encode(), secret.encode())
    return bool(sep) and user_ok and secret_ok


def _check_digest(
    params: dict[str, str],
    *,
    username: str,
    secret: str,
    method: str,
    uri: str,
    nonce_key: bytes,
    bound_to: str,
    now: float,
) -> Verdict:
    sent_user = params.get("username", "")
    nonce = params.get("nonce", "")
    response = params.get("response", "")
    if params.get("realm") != REALM or params.get("uri") != uri:
        # A response made for another URI is not one for this file.
        return Verdict(ok=False)
    if params.get("algorithm", "MD5").upper() != "MD5" or not _RESPONSE.fullmatch(response):
        return Verdict(ok=False)
    ha1 = _md5(f"{username}:{REALM}:{secret}")
    ha2 = _md5(f"{method}:{uri}")
    qop = params.get("qop")
    if qop == "auth":
        nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
        if not _NONCE_COUNT.fullmatch(nc) or not cnonce:
            return Verdict(ok=False)
        count = int(nc, 16)
        expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    elif qop is None:
        # RFC 2069 has no count: such a nonce serves one request.
        count = 1
        expected = _md5(f"{ha1}:{nonce}:{ha2}")
    else:
        return Verdict(ok=False)
    user_ok = hmac.compare_digest(sent_user.encode(), username.encode())
    response_ok = hmac.compare_digest(response.encode(), expected.encode())
    if not (user_ok and response_ok):
        return Verdict(ok=False)
    issued = _nonce_issued(nonce_key, nonce, bound_to)
    if issued is None or not -CLOCK_SKEW_SECONDS <= now - issued <= NONCE_LIFETIME_SECONDS:
        return Verdict(ok=False, stale=True)
    return Verdict(ok=True, use=NonceUse(nonce, count, expires_at=issued + NONCE_LIFETIME_SECONDS))
