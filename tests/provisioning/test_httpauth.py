"""The Authorization header a phone sends, read: any text gives a verdict (never an exception),
and a digest response proves the credentials only with a fresh nonce made for its client."""

import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.provisioning import httpauth
from app.provisioning.httpauth import NONCE_LIFETIME_SECONDS, REALM, Verdict

KEY = b"k" * 32
USER, SECRET, URI = "prov-1a2b3c4d", "Blue7Harbor42x", "/provision/t/001565aabbcc.cfg"
CLIENT = "tenant-1 192.0.2.7"

# What headers are made of: the characters the syntax turns on, often, and any other.
_SYNTAX = st.sampled_from([*'=,"\\ \t;:.', "Digest ", "Basic ", "username", "nonce"])
header_text = st.one_of(
    st.text(),
    st.lists(st.one_of(_SYNTAX, st.text(max_size=4)), max_size=30).map("".join),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
)
_TOKEN_CHARS = "!#$%&'*+.^_`|~-" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=12)
# What a quoted-string may hold: tab, visible ASCII, space, and Latin-1's upper half.
quotable = st.text(
    alphabet=st.one_of(
        st.sampled_from("\t "),
        st.characters(min_codepoint=0x21, max_codepoint=0x7E),
        st.characters(min_codepoint=0x80, max_codepoint=0xFF),
    ),
    max_size=20,
)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _check(authorization: str | None, *, bound_to: str = CLIENT, now: float = 1e9) -> Verdict:
    return httpauth.check(
        authorization,
        username=USER,
        secret=SECRET,
        method="GET",
        uri=URI,
        nonce_key=KEY,
        bound_to=bound_to,
        now=now,
    )


def _answer(nonce: str, *, nc: str = "00000001", uri: str = URI, secret: str = SECRET) -> str:
    ha1 = _md5(f"{USER}:{REALM}:{secret}")
    response = _md5(f"{ha1}:{nonce}:{nc}:c1:auth:{_md5(f'GET:{uri}')}")
    return (
        f'Digest username="{USER}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="c1", response="{response}"'
    )


@settings(max_examples=1000)
@given(header_text)
@example("username=")
@example('realm=, nonce="x"')
@example('a="\\')
def test_any_text_is_parsed_or_said_unreadable(text: str) -> None:
    params = httpauth.parse_params(text)

    assert params is None or (params and all(isinstance(v, str) for v in params.values()))


@settings(max_examples=1000)
@given(header_text)
@example("Digest username=")
@example('Digest realm=, nonce="x", uri=/')
@example("Basic \xe9")
@example(f'Digest username="{USER}", realm="{REALM}", uri="{URI}", nonce="1.\xe9", response="0"')
@example(f'Digest username="{USER}", realm="{REALM}", uri="{URI}", nonce="\xb2.0", response="0"')
def test_any_authorization_gets_a_verdict_and_proves_nothing(text: str) -> None:
    for header in (text, "Digest " + text, "Basic " + text):
        verdict = _check(header)

        assert isinstance(verdict, Verdict) and not verdict.ok


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.dictionaries(tokens.map(str.lower), st.one_of(tokens, quotable), min_size=1))
def test_what_a_client_writes_is_read_back(params: dict[str, str]) -> None:
    quoted = ", ".join(f"{name}={_quoted(value)}" for name, value in params.items())
    as_tokens = " ,".join(f"{name} = {value}" for name, value in params.items() if value)

    assert httpauth.parse_params(quoted) == params
    if all(params.values()) and all(set(v) <= set(_TOKEN_CHARS) for v in params.values()):
        assert httpauth.parse_params(as_tokens) == params


def test_a_name_given_twice_is_unreadable() -> None:
    assert httpauth.parse_params('nonce="a", Nonce="b"') is None
    assert httpauth.parse_params(", ,") is None
    assert httpauth.parse_params('realm="x",, qop=auth') == {"realm": "x", "qop": "auth"}


def test_a_right_response_names_its_nonce_and_count() -> None:
    nonce = httpauth.new_nonce(KEY, bound_to=CLIENT, now=1e9)

    verdict = _check(_answer(nonce, nc="0000000a"), now=1e9 + 10)

    assert verdict.ok and not verdict.stale
    assert verdict.use == httpauth.NonceUse(nonce, 10, expires_at=1e9 + NONCE_LIFETIME_SECONDS)


def test_a_nonce_works_only_for_its_client_and_while_fresh() -> None:
    nonce = httpauth.new_nonce(KEY, bound_to=CLIENT, now=1e9)
    header = _answer(nonce)

    elsewhere = _check(header, bound_to="tenant-1 198.51.100.7", now=1e9)
    expired = _check(header, now=1e9 + NONCE_LIFETIME_SECONDS + 1)
    not_ours = _check(_answer(nonce[:-1] + ("0" if nonce[-1] != "0" else "1")), now=1e9)
    wrong_secret = _check(_answer(nonce, secret="Guess7Secret42x"), now=1e9)

    # Right credentials, unusable nonce: the client asks again without asking its user.
    assert elsewhere == expired == not_ours == Verdict(ok=False, stale=True)
    assert wrong_secret == Verdict(ok=False)
