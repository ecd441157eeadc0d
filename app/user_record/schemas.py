from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from app.errors import Code
from app.schemas import CONTROL_CHARACTERS, SPACES, Matches, PatchModel, TrimmedLine, WholeNumber

DisplayName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    TrimmedLine,
    Field(examples=["Nguyễn Thị Lan"]),
]
# Spaces are listed, not `\s`: Python's and a client's (ECMAScript) `\s` differ on U+FEFF.
_EMAIL_PART = rf"[^@{CONTROL_CHARACTERS}{SPACES}\ufeff]+"
Email = Annotated[
    str,
    StringConstraints(max_length=320),
    Matches(rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$", Code.email),
    Field(examples=["lan@acme.vn"]),
]
ExternalRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    TrimmedLine,
    Field(description="The agent's id in the company's identity system; unique in the tenant."),
]
LimitMinutes = Annotated[
    StrictInt,
    Field(ge=0, le=1_000_000, description="Monthly outbound minutes; null means unlimited."),
    WholeNumber,
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName
    email: Email | None = None
    external_ref: ExternalRef | None = None
    outbound_allowed: StrictBool = True
    auto_answer: StrictBool = False
    limit_minutes: LimitMinutes | None = None


class UserUpdate(PatchModel):
    nullable = frozenset({"email", "external_ref", "limit_minutes"})

    display_name: DisplayName | None = None
    email: Email | None = None
    external_ref: ExternalRef | None = None
    enabled: StrictBool | None = Field(
        default=None, description="A disabled user's devices cannot register or call."
    )
    outbound_allowed: StrictBool | None = None
    auto_answer: StrictBool | None = None
    limit_minutes: LimitMinutes | None = None
