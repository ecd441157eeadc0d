"""HTTP Basic and Digest (RFC 7617, RFC 7616 with MD5 and qop=auth) for the provisioning route:
phones send a user name and password, never a Bearer key, and many of them only over plain HTTP,
where digest keeps the password off the wire. No maintained ASGI package checks digest
responses, so it is done here; the nonces are stateless (a time and its HMAC), so any process
can check any nonce."""

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.request import parse_http_list, parse_keqv_list

REALM = "AntRing provisioning"
NONCE_LIFETIME_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    # The response was right for a nonce that has expired: the client retries without asking
    # the user again (RFC 7616 `stale=true`).
    stale: bool = False


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _nonce_mac(key: bytes, issued: str) -> str:
    return hmac.new(key, issued.encode(), hashlib.sha256).hexdigest()[:32]


def new_nonce(key: bytes, *, now: float | None = None) -> str:
    issued = str(int(now if now is not None else time.time()))
    return f"{issued}.{_nonce_mac(key, issued)}"


def _nonce_state(key: bytes, nonce: str, now: float) -> str:
    """'fresh', 'stale' or 'forged'."""
    issued, _, mac = nonce.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(mac, _nonce_mac(key, issued)):
        return "forged"
    return "fresh" if now - int(issued) <= NONCE_LIFETIME_SECONDS else "stale"


def challenges(key: bytes, *, stale: bool = False) -> list[str]:
    """The WWW-Authenticate challenges, strongest first."""
    digest = f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{new_nonce(key)}"' + (
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
    now: float | None = None,
) -> Verdict:
    """Whether the Authorization header proves the user name and secret."""
    if not authorization:
        return Verdict(ok=False)
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        return Verdict(ok=_check_basic(rest.strip(), username=username, secret=secret))
    if scheme.lower() == "digest":
        return _check_digest(
            rest,
            username=username,
            secret=secret,
            method=method,
            uri=uri,
            nonce_key=nonce_key,
            now=time.time() if now is None else now,
        )
    return Verdict(ok=False)


def _check_basic(token: str, *, username: str, secret: str) -> bool:
    try:
        sent_user, sep, sent_secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared, whatever the first gives: the time taken says nothing about either.
    user_ok = hmac.compare_digest(sent_user.encode(), username.encode())
    secret_ok = hmac.compare_digest(sent_secret.encode(), secret.encode())
    return bool(sep) and user_ok and secret_ok


def _check_digest(
    params_text: str,
    *,
    username: str,
    secret: str,
    method: str,
    uri: str,
    nonce_key: bytes,
    now: float,
) -> Verdict:
    try:
        params = parse_keqv_list(parse_http_list(params_text))
    except ValueError:
        return Verdict(ok=False)
    sent_user = params.get("username", "")
    nonce = params.get("nonce", "")
    response = params.get("response", "")
    if params.get("realm") != REALM or params.get("uri") != uri:
        # A response made for another URI is not one for this file.
        return Verdict(ok=False)
    if params.get("algorithm", "MD5").upper() != "MD5":
        return Verdict(ok=False)
    state = _nonce_state(nonce_key, nonce, now)
    if state == "forged":
        return Verdict(ok=False)
    ha1 = _md5(f"{username}:{REALM}:{secret}")
    ha2 = _md5(f"{method}:{uri}")
    qop = params.get("qop")
    if qop == "auth":
        expected = _md5(
            f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
        )
    elif qop is None:
        expected = _md5(f"{ha1}:{nonce}:{ha2}")
    else:
        return Verdict(ok=False)
    user_ok = hmac.compare_digest(sent_user.encode(), username.encode())
    response_ok = hmac.compare_digest(response.encode(), expected.encode())
    if not (user_ok and response_ok):
        return Verdict(ok=False)
    return Verdict(ok=state == "fresh", stale=state == "stale")
