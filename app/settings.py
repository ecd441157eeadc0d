"""Typed settings, read once from the environment (prefix ANTRING_, plus DATABASE_URL)."""

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SipTransport = Literal["udp", "tcp", "tls", "ws", "wss"]
SipCodec = Literal["opus", "g722", "pcmu", "pcma", "g729"]

# Used only when ANTRING_ENVIRONMENT=development (the default for `make run`); refused otherwise.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"
# The signature algorithms a token may use: never `none`, never an HMAC (its key would be public).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "please-change-me", DEVELOPMENT_SECRET_KEY}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANTRING_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(
        default="sqlite+aiosqlite:///./antring.db",
        validation_alias=AliasChoices("DATABASE_URL", "ANTRING_DATABASE_URL"),
    )
    database_pool_size: int = Field(
        default=20,
        ge=2,
        description="PostgreSQL connections in each of a process's two pools (the call-control "
        "routes' own, and the other routes'); requests beyond it wait for a connection.",
    )
    # Every wait on the database is bounded: a database that does not answer gives 503 with
    # Retry-After within these, and everything recovers by itself when it answers again.
    database_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="How long opening a database connection may take."
    )
    database_pool_timeout_seconds: float = Field(
        default=3.0, gt=0, description="How long a request may wait for a free connection."
    )
    database_statement_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one statement may run."
    )
    database_lock_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        description="How long a statement may wait for a row lock (SQLite: for the write lock).",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Encrypts device passwords at rest; at least 32 characters.",
    )
    bootstrap: bool = Field(
        default=True,
        description="On first start with no tenant, create a default tenant and print its keys.",
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line."
    )
    access_log: bool = Field(default=True, description="One log line per request answered.")
    request_ids: bool = Field(
        default=True,
        description="Keep a valid incoming X-Request-ID (else make one), echo it and log it.",
    )
    metrics_enabled: bool = Field(default=True, description="Collect Prometheus metrics.")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve /metrics without a key on a port of its own (for a scraper inside "
        "the private network); unset: /metrics on the API port, for platform keys.",
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="The proxies whose X-Forwarded-For and X-Forwarded-Proto are believed, as a "
        'JSON list of addresses and networks (\'["10.0.0.5", "10.1.0.0/16"]\'; \'["*"]\': '
        "any). Behind them, the client address that the failed-authentication limit, "
        "provisioning's allowed networks and fetch records see is the one they forward. Empty: "
        "the headers are ignored; the address is the connection's.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API, as a JSON list: "
        "'[\"https://console.example.com\"]'. Empty: no CORS headers at all.",
    )

    # What the device configuration views show.
    sip_proxy_host: str = "sip.antring.local"
    sip_udp_port: int = 5060
    sip_tcp_port: int = 5060
    sip_tls_port: int = 5061
    sip_websocket_url: str = "wss://sip.antring.local:7443/ws"
    sip_transports: list[SipTransport] = Field(
        default_factory=lambda: list[SipTransport](["udp", "tcp", "tls", "wss"]),
        description="The transports the SIP edge serves, as a JSON list: the views show only "
        "these (a port or a WebSocket URL that is not offered is null).",
    )
    sip_ice_servers: list[dict[str, str | list[str]]] = Field(
        default_factory=list,
        description="STUN/TURN servers a browser uses, as a JSON list in WebRTC's form: "
        '\'[{"urls": ["stun:stun.example.net:3478"]}]\'.',
    )
    sip_codecs: list[SipCodec] = Field(
        default_factory=lambda: list[SipCodec](["g722", "pcmu", "pcma"]),
        min_length=1,
        description="The audio codecs provisioned phones offer, best first, as a JSON list "
        "(opus, g722, pcmu, pcma, g729).",
    )
    sip_registration_expires_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="The registration expiry provisioned phones and softphones ask for.",
    )

    # Provisioning: phones fetch their files, softphones scan a QR code.
    provisioning_base_url: str | None = Field(
        default=None,
        description="The public https:// origin phones and softphones reach this service at "
        "(the provisioning URLs and QR links are made from it); unset: the origin a request "
        "to the API came to.",
    )
    provisioning_link_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="How long a softphone's one-time provisioning link (its QR code) works.",
    )
    provisioning_acrobits_cloud_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]+\*?$",
        description="The Cloud ID of the Acrobits-based app (Cloud Softphone, Groundwire) the "
        "`csc:` QR codes open; unset: no Acrobits codes.",
    )
    provisioning_fetch_retention_days: int = Field(
        default=90, ge=1, description="How long the record of phones' fetches is kept."
    )

    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    auth_failure_limit: str = Field(
        default="30/minute",
        description="Failed authentications allowed per client address and process, as "
        "'<count>/<second|minute|hour>'; past it the address gets 429 until the window has room.",
    )
    # People sign in through the platform's OpenID Connect provider (tokens beside API keys).
    oidc_issuer: str | None = Field(
        default=None,
        description="The identity provider's issuer URL (its `iss`; the discovery document is "
        "read from `<issuer>/.well-known/openid-configuration`). Unset: API keys only.",
    )
    oidc_audience: str | None = Field(
        default=None,
        description="The `aud` an access token must name for this service (Keycloak: the "
        "client id an audience mapper adds; Auth0 and oidc-provider: the API's identifier).",
    )
    oidc_tenant_claim: str = Field(
        default="tenant_id",
        min_length=1,
        description="The claim holding the tenant's id (dotted for a nested claim).",
    )
    oidc_roles_claim: str = Field(
        default="roles",
        min_length=1,
        description="The claim listing the person's roles (dotted for a nested claim: "
        "Keycloak's realm roles are `realm_access.roles`).",
    )
    oidc_role_prefix: str = Field(
        default="",
        description="What the provider puts before this service's role names (`antring-` "
        "turns the role `antring-operator` into operator); other roles are ignored.",
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        min_length=1,
        description="The signature algorithms accepted, as a JSON list; asymmetric only.",
    )
    oidc_leeway_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        description="The clock skew allowed when checking a token's `exp`, `nbf` and `iat`.",
    )
    oidc_keys_cache_seconds: int = Field(
        default=300,
        ge=1,
        description="How long the provider's keys are used before they are read again (a "
        "token signed by a key not yet known reads them at once).",
    )
    oidc_keys_min_refresh_seconds: float = Field(
        default=5.0,
        ge=0,
        description="The least time between two readings of the provider's keys, however many "
        "tokens name an unknown key.",
    )
    oidc_docs_client_id: str | None = Field(
        default=None,
        description="The public client /docs signs in with (authorization code with PKCE); "
        "unset: /docs offers only the API key.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Largest request head (all headers) accepted."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    import_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest file `POST /v1/users/import` accepts (10,000 agents take about 1 MB).",
    )
    import_sync_max_rows: int = Field(
        default=1000,
        ge=0,
        description="Imports of up to this many rows answer at once; larger ones run as a job "
        "(202, with a Location to poll for its progress).",
    )

    # Call control.
    hold_grace_seconds: int = Field(
        default=300,
        ge=0,
        description="How long past its max duration a granted call's hold lasts without a usage "
        "report (ringing time, late reports).",
    )
    open_call_seconds: int = Field(
        default=14_400,
        ge=60,
        description="How long a granted call without a time limit counts as one of the agent's "
        "calls at once when its usage report never comes (a crashed edge).",
    )
    usage_late_months: int = Field(
        default=1,
        ge=0,
        le=12,
        description="How many months back a usage report may still be charged (0: only the "
        "current month); an older started_at is refused.",
    )
    usage_future_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How far ahead of the service's clock a usage report's started_at may be.",
    )
    webhooks_enabled: bool = Field(
        default=True, description="Run the webhook delivery worker in this process."
    )
    webhooks_allow_private_urls: bool = Field(
        default=False,
        description="Let webhooks call private and loopback addresses (tests, development).",
    )
    webhooks_poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often the worker looks for due deliveries."
    )
    stream_heartbeat_seconds: float = Field(
        default=15, gt=0, le=300, description="A quiet event stream sends a heartbeat this often."
    )
    stream_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="While a stream is open, how often the process looks for events committed by "
        "other replicas (its own commits wake it at once).",
    )
    stream_queue_events: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Events waiting for one stream's reader: a reader this far behind is dropped.",
    )
    stream_send_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        description="A stream whose reader takes no data for this long is closed.",
    )
    stream_replay_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="At most this many missed events are replayed after Last-Event-ID; more, or "
        "an id no longer kept, sends a `reset`.",
    )
    streams_per_key: int = Field(
        default=10, ge=1, description="Event streams open at once with one key or one person."
    )
    streams_per_tenant: int = Field(
        default=500,
        ge=1,
        description="Event streams open at once for one tenant in one process: one tenant's "
        "screens never take every other tenant's room.",
    )
    streams_per_process: int = Field(
        default=2000, ge=1, description="Event streams open at once in one process."
    )
    minutes_flush_seconds: float = Field(
        default=2,
        gt=0,
        le=60,
        description="Minutes used are announced (`quota.used_changed`) at most this often per "
        "user: the changes of every call in between make one event.",
    )
    amqp_url: SecretStr | None = Field(
        default=None,
        description="Also publish every event to this RabbitMQ (amqp://user:password@host:5672/"
        "vhost) for the platform's own services; the webhook worker publishes. Unset: no bus.",
    )
    amqp_exchange: str = Field(
        default="antring.events",
        min_length=1,
        description="The durable topic exchange events go to (routing key: the event's type).",
    )
    edge_rpc_urls: list[str] = Field(
        default_factory=list,
        description="The SIP edges' JSON-RPC URLs, as a JSON list "
        "('[\"http://10.0.0.2:5062/RPC\"]'): after a change that must take effect at once (a "
        "rotated password, a disabled or deleted device or user, a new SIP domain) each edge is "
        "told to drop the accounts it cached. Empty: the edges' cache expiry alone applies.",
    )
    edge_rpc_token: SecretStr | None = Field(
        default=None,
        description="The Bearer token the edges' JSON-RPC listener expects (EDGE_RPC_TOKEN "
        "in the edge's edge/rpc.cfg).",
    )
    audit_retention_days: int = Field(
        default=400, ge=1, description="How long audit entries are kept (the prune job)."
    )
    scheduler_enabled: bool = True
    rollover_interval_seconds: int = Field(
        default=60, ge=1, description="How often the month rollover job looks for closed months."
    )

    @field_validator("edge_rpc_urls")
    @classmethod
    def _check_edge_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError("each must be an http:// or https:// URL")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str]) -> list[str]:
        for algorithm in value:
            if algorithm not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(
                    f"{algorithm!r} is not one of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
                )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        if value == ["*"]:
            return value
        for entry in value:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network such as 10.1.0.0/16 (any "
                    'proxy: the list ["*"] alone)'
                ) from None
        return value

    @field_validator("provisioning_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("auth_failure_limit")
    @classmethod
    def _check_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must read like 30/minute") from None
        return value

    @model_validator(mode="after")
    def _refuse_insecure(self) -> "Settings":
        key = self.secret_key.get_secret_value()
        if self.environment == "production":
            if key.strip().lower() in _PLACEHOLDERS or len(key) < 32:
                raise ValueError(
                    "ANTRING_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production"
                )
        elif not key:
            self.secret_key = SecretStr(DEVELOPMENT_SECRET_KEY)
        elif len(key) < 32:
            raise ValueError("ANTRING_SECRET_KEY must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> "Settings":
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("ANTRING_OIDC_AUDIENCE must be set with ANTRING_OIDC_ISSUER")
        return self

    @property
    def uses_development_key(self) -> bool:
        return self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY


@lru_cache
def get_settings() -> Settings:
    return Settings()
