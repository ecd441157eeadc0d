from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from app.errors import Code
from app.schemas import (
    CONTROL_CHARACTERS,
    SPACES,
    Matches,
    PatchModel,
    TrimmedLine,
    WholeNumber,
    rule_error,
)
from app.tenants.schemas import DestinationClasses, MaxConcurrentCalls

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
    nullable = frozenset({"email", "external_ref", "limit_minutes", "max_concurrent_calls"})

    display_name: DisplayName | None = None
    email: Email | None = None
    external_ref: ExternalRef | None = None
    enabled: StrictBool | None = Field(
        default=None, description="A disabled user's devices cannot register or call."
    )
    outbound_allowed: StrictBool | None = None
    auto_answer: StrictBool | None = None
    limit_minutes: LimitMinutes | None = None
    extra_classes: DestinationClasses | None = Field(
        default=None,
        description="Destination classes this agent may call besides the tenant's (a class "
        "given here leaves `removed_classes`).",
    )
    removed_classes: DestinationClasses | None = Field(
        default=None,
        description="Destination classes of the tenant's this agent may not call (a class given "
        "here leaves `extra_classes`).",
    )
    max_concurrent_calls: MaxConcurrentCalls | None = Field(
        default=None,
        description="Outbound calls this agent may have at once; null: the tenant's limit.",
    )
    outbound_suspended: StrictBool | None = Field(
        default=None,
        description="false lifts the suspension the velocity limit set (true suspends the "
        "agent's outbound calls by hand).",
    )

    @model_validator(mode="after")
    def _not_added_and_removed(self) -> "UserUpdate":
        both = set(self.extra_classes or ()) & set(self.removed_classes or ())
        if both:
            raise rule_error(Code.class_added_and_removed, classes=sorted(both))
        return self
