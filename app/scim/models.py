"""The SCIM resources of an agent (RFC 7643), as scim2-models describes them: the User the
service keeps (what `/scim/v2/Schemas` publishes, and what a directory gets back) and the
service's own extension, which carries the extensions, the minute limit and the two switches."""

from typing import Annotated

from scim2_models import (
    URN,
    AnyExtension,
    ComplexAttribute,
    Email,
    EnterpriseUser,
    Extension,
    Mutability,
    Required,
    Resource,
    Uniqueness,
    User,
)

AGENT_SCHEMA = "urn:antring:params:scim:schemas:extension:AntRing:2.0:Agent"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class AgentExtension(Extension):
    """What the service adds to a SCIM user: its phone settings. Every agent has the two
    switches (they can be turned, not removed)."""

    __schema__ = URN(AGENT_SCHEMA)

    extensions: Annotated[list[str] | None, Mutability.read_write] = None
    """The agent's extension numbers (2 to 4 digits each, unique in the tenant). Sent, they
    become exactly the agent's numbers; left out, the numbers stay as they are."""

    limit_minutes: Annotated[int | None, Mutability.read_write] = None
    """Monthly outbound minutes (0 to 1,000,000); absent: unlimited."""

    outbound_allowed: Annotated[bool | None, Mutability.read_write, Required.true] = None
    """May the agent call outside the company at all."""

    auto_answer: Annotated[bool | None, Mutability.read_write, Required.true] = None
    """The agent's phones answer hotline and internal calls by themselves."""


class AgentSettings(Extension):
    """The extension as a directory's request is read: any of its attributes may be left out
    (a directory that sets only the limit leaves the switches as they are)."""

    __schema__ = URN(AGENT_SCHEMA)

    extensions: Annotated[list[str] | None, Mutability.read_write] = None
    limit_minutes: Annotated[int | None, Mutability.read_write] = None
    outbound_allowed: Annotated[bool | None, Mutability.read_write] = None
    auto_answer: Annotated[bool | None, Mutability.read_write] = None


class AgentEmail(ComplexAttribute):
    """The agent's one e-mail address (a directory's `type` and `primary` are read, not kept)."""

    value: str | None = None


class Agent(Resource[AnyExtension]):
    """The SCIM User as the service keeps it: the attributes it stores, no others (a directory
    that sends more, `name` or `title`, has them ignored rather than refused)."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """The agent's login name in the directory; unique in the tenant."""

    display_name: Annotated[str | None, Required.true] = None
    """The agent's name as the console shows it (every agent has one: a directory that sends
    none gets `name`'s, or else the userName)."""

    emails: list[AgentEmail] | None = None
    """The agent's e-mail address (one)."""

    active: Annotated[bool | None, Required.true] = None
    """An inactive agent's devices cannot register or call (a directory that sends none makes
    an active agent)."""


class DirectoryEmail(Email):
    """An e-mail as a directory sends it. Its address is checked by the service's own rule
    (as on /v1), not by a deliverability check that refuses a company's internal domains
    (`corp.local`, `example.test`)."""

    value: str | None = None


class DirectoryUser(User[AnyExtension]):
    """The whole standard User (Okta and Entra send `name`, `title`, the enterprise
    extension...), of which the service keeps what `Agent` has."""

    emails: list[DirectoryEmail] | None = None  # type: ignore[assignment]


# What a directory's requests are read as.
ScimUser = DirectoryUser[EnterpriseUser | AgentSettings]
AgentResource = Agent[AgentExtension]
