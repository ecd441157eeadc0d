"""The Authorization header a phone sends, read: any text gives a verdict (never an exception)."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.provisioning import httpauth
from app.provisioning.httpauth import REALM, Verdict

KEY = b"k" * 32
USER, SECRET, URI = "prov-1a2b3c4d", "Blue7Harbor42x", "/provision/t/001565aabbcc.cfg"

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


def _check(authorization: str | None) -> Verdict:
    return httpauth.check(
        authorization, username=USER, secret=SECRET, method="GET", uri=URI, nonce_key=KEY
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
