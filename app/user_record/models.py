import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, VersionMixin


class User(IdMixin, TimestampMixin, VersionMixin, Base):
    """An agent of the call center."""

    __tablename__ = "user_account"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref"),
        # A SCIM directory's userName is unique in the tenant (RFC 7643 §4.1.1); an index, which
        # SQLite adds to a table in place, as it cannot add a constraint.
        Index("uq_user_account_tenant_id_user_name", "tenant_id", "user_name", unique=True),
        # The Users table's first page in either order is the start of an index.
        Index("ix_user_account_tenant_id_name_sort", "tenant_id", "name_sort"),
        Index("ix_user_account_tenant_id_given_name_sort", "tenant_id", "given_name_sort"),
        Index("ix_user_account_tenant_id_created_at", "tenant_id", "created_at"),
        # A search's `LIKE '% word%'`, one per word (SQLite scans the tenant's rows).
        Index(
            "ix_user_account_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # Compared byte by byte on PostgreSQL as on SQLite, so that the export reads the tenant's
    # users in the order of its unique index, page after page.
    external_ref: Mapped[str | None] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql")
    )
    # The login name a SCIM directory gave the agent (its `userName`); null for an agent made
    # by the console, the API or an import until a directory claims it.
    user_name: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    outbound_allowed: Mapped[bool] = mapped_column(default=True)
    auto_answer: Mapped[bool] = mapped_column(default=False)
    limit_minutes: Mapped[int | None]
    # The agent's own outbound policy on top of the tenant's: destination classes added to or
    # taken from the tenant's, concurrent calls (null: the tenant's), and the suspension the
    # velocity limit sets and an operator lifts.
    extra_classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    removed_classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_concurrent_calls: Mapped[int | None]
    outbound_suspended: Mapped[bool] = mapped_column(default=False)
    outbound_suspended_at: Mapped[datetime | None]
    # When an operator last lifted a suspension: the velocity limit counts calls from then on.
    outbound_lifted_at: Mapped[datetime | None]
    # Raised with each change of `limit_minutes` alone: the quota's own ETag, which the
    # user's other changes (a switch) leave as it is.
    quota_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # What `app.names.name_columns` makes of display_name and email, kept with them: the
    # words a search finds the user by, and the Vietnamese sort keys (full name; given name
    # first).
    search_key: Mapped[str] = mapped_column(Text)
    # What a search reads: search_key, the words of the user's devices' names and the user's
    # extensions (each a word), set anew by `repository.refresh_search_text` whenever one of
    # them changes, so that a search is one indexed column, not three tables.
    search_text: Mapped[str] = mapped_column(Text, server_default="")
    name_sort: Mapped[bytes] = mapped_column(LargeBinary)
    given_name_sort: Mapped[bytes] = mapped_column(LargeBinary)
