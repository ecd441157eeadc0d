"""Secrets: device passwords encrypted at rest, SIP digest HA1 values, API key hashes."""

import base64
import hashlib
import secrets
import string

from cryptography.fernet import Fernet, InvalidToken

_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class PasswordCipher:
    """Encrypts device passwords with a key derived from ANTRING_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        derived = hashlib.sha256(b"antring-device-passwords:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("device password cannot be decrypted with this secret key") from exc


def ha1_md5(username: str, realm: str, password: str) -> str:
    """RFC 2617 HA1: what a SIP registrar needs to check an MD5 digest."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def ha1_sha256(username: str, realm: str, password: str) -> str:
    """RFC 8760 HA1 for the SHA-256 digest algorithm."""
    return hashlib.sha256(f"{username}:{realm}:{password}".encode()).hexdigest()


# The largest multiple of the alphabet's size a byte can hold: bytes below it map onto the
# alphabet evenly, the others are skipped.
_EVEN_BYTES = 256 - 256 % len(_PASSWORD_ALPHABET)


def generate_password(length: int = 20) -> str:
    """A random password of letters and digits with at least one of each: each character
    uniform over the alphabet, from one read of the system's random source (a bulk import
    makes thousands)."""
    while True:
        chars = [
            _PASSWORD_ALPHABET[b % len(_PASSWORD_ALPHABET)]
            for b in secrets.token_bytes(2 * length)
            if b < _EVEN_BYTES
        ]
        if len(chars) < length:
            continue
        password = "".join(chars[:length])
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


API_KEY_PREFIX = "ark_"


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()
