"""The files phones fetch: which file a name asks for, and each vendor family's file made from
its template (app/provisioning/templates/, one per family)."""

import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.devices.models import PhoneModel

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class PhoneAccount:
    """What a phone's file says, taken from the device's ip_phone view and the tenant's rules."""

    username: str
    auth_id: str
    password: str
    ha1: str
    domain: str
    registrar: str
    outbound_proxy: str
    transport: str
    port: int
    expires_seconds: int
    display_name: str
    label: str
    codecs: tuple[str, ...]
    auto_answer: bool


@dataclass(frozen=True, slots=True)
class RequestedFile:
    """A file name a phone asked for: its MAC (None for a vendor's common file) and the vendor
    families that ask for a file of that name."""

    mac: str | None
    families: frozenset[PhoneModel]
    template: str


_MAC = r"(?P<mac>[0-9a-fA-F]{12})"
# Yealink, Polycom and Fanvil all ask for <mac>.cfg: the device's model says which it is.
_NAMES: list[tuple[re.Pattern[str], frozenset[PhoneModel], str]] = [
    (re.compile(r"y0000000000[0-9a-fA-F]{2}\.cfg"), frozenset({PhoneModel.yealink}), "common"),
    (
        re.compile(rf"{_MAC}\.cfg"),
        frozenset({PhoneModel.yealink, PhoneModel.polycom, PhoneModel.fanvil}),
        "device",
    ),
    (re.compile(rf"cfg{_MAC}(\.xml)?"), frozenset({PhoneModel.grandstream}), "device"),
    (re.compile(rf"{_MAC}\.xml"), frozenset({PhoneModel.snom}), "device"),
]


def parse_filename(filename: str) -> RequestedFile | None:
    """The file a phone asks for, or None for a name no supported phone asks for."""
    for pattern, families, template in _NAMES:
        match = pattern.fullmatch(filename)
        if match:
            mac = match.groupdict().get("mac")
            return RequestedFile(
                mac=mac.lower() if mac else None, families=families, template=template
            )
    return None


def _one_line(value: object) -> str:
    # A key=value file ends a value at the line's end: a line break would start another key.
    return re.sub(r"[\r\n]+", " ", str(value))


def _sip_quoted(value: object) -> str:
    """A display name inside a SIP quoted-string (RFC 3261): its quotes and backslashes escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    # Every XML file escapes what it is given; the Yealink key=value files keep values on one line.
    autoescape=select_autoescape(enabled_extensions=("xml",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["one_line"] = _one_line
_environment.filters["sip_quoted"] = _sip_quoted

MEDIA_TYPES = {"xml": "application/xml", "cfg": "text/plain"}


@dataclass(frozen=True, slots=True)
class RenderedFile:
    body: str
    media_type: str


def _render(template: str, **values: object) -> RenderedFile:
    body = _environment.get_template(template).render(**values)
    return RenderedFile(body=body, media_type=MEDIA_TYPES[template.rsplit(".", 1)[1]])


def render_phone_file(model: PhoneModel, account: PhoneAccount) -> RenderedFile:
    return _render(f"{model.value}.{'cfg' if model == PhoneModel.yealink else 'xml'}", a=account)


def render_common_file(model: PhoneModel) -> RenderedFile:
    """A vendor's file for all of its phones: no account, no secret."""
    return _render(f"{model.value}_common.cfg")


def render_linphone(account: PhoneAccount) -> RenderedFile:
    """Linphone's remote provisioning file (its lpconfig XML)."""
    return _render("linphone.xml", a=account)


def filename_for(model: PhoneModel, mac: str) -> str:
    """The name of the file a phone of this family asks for."""
    if model == PhoneModel.grandstream:
        return f"cfg{mac}.xml"
    if model == PhoneModel.snom:
        return f"{mac}.xml"
    return f"{mac}.cfg"
