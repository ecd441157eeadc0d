"""The tenant's agents as SCIM lists them: a filter (RFC 7644 §3.4.2.2, parsed by scim2-models)
turned into a WHERE clause on the columns the SCIM attributes are kept in."""

import uuid
from collections.abc import Callable, Collection
from enum import Enum
from typing import Any

from scim2_models import ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.scim.exceptions import InvalidFilter
from app.scim.models import USER_SCHEMA
from app.user_record.models import User


class _Kind(Enum):
    text = "text"  # compared without regard to case (RFC 7643: userName, e-mails)
    exact = "exact"  # compared case by case (externalId)
    boolean = "boolean"
    id = "id"


# Each filterable attribute, by its name in lower case (SCIM compares names so).
_ATTRIBUTES: dict[str, tuple[InstrumentedAttribute[Any], _Kind]] = {
    "username": (User.user_name, _Kind.text),
    "externalid": (User.external_ref, _Kind.exact),
    "emails": (User.email, _Kind.text),
    "emails.value": (User.email, _Kind.text),
    "displayname": (User.display_name, _Kind.text),
    "active": (User.enabled, _Kind.boolean),
    "id": (User.id, _Kind.id),
}


def _name(path: AttrPath) -> str:
    uri = (path.uri or "").lower()
    if uri and uri != USER_SCHEMA.lower():
        raise InvalidFilter(f"the attribute {path} cannot be filtered on")
    name = path.attr.lower()
    return f"{name}.{path.sub_attr.lower()}" if path.sub_attr else name


def _column(path: AttrPath, *, prefix: str = "") -> tuple[InstrumentedAttribute[Any], _Kind]:
    name = _name(path)
    found = _ATTRIBUTES.get(f"{prefix}.{name}" if prefix else name)
    if found is None:
        raise InvalidFilter(f"the attribute {path} cannot be filtered on")
    return found


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_TEXT: dict[CompareOperator, Callable[[Any, str], ColumnElement[bool]]] = {
    CompareOperator.eq: lambda column, value: column == value,
    CompareOperator.ne: lambda column, value: or_(column != value, column.is_(None)),
    CompareOperator.co: lambda column, value: column.like(f"%{_escaped(value)}%", escape="\\"),
    CompareOperator.sw: lambda column, value: column.like(f"{_escaped(value)}%", escape="\\"),
    CompareOperator.ew: lambda column, value: column.like(f"%{_escaped(value)}", escape="\\"),
    CompareOperator.gt: lambda column, value: column > value,
    CompareOperator.ge: lambda column, value: column >= value,
    CompareOperator.lt: lambda column, value: column < value,
    CompareOperator.le: lambda column, value: column <= value,
}


class _Where(FilterVisitor[ColumnElement[bool]]):
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        column, kind = _column(node.attr_path, prefix=self.prefix)
        value = node.value
        if kind is _Kind.boolean:
            if not isinstance(value, bool) or node.op not in (
                CompareOperator.eq,
                CompareOperator.ne,
            ):
                raise InvalidFilter("active compares with eq or ne to true or false")
            return column == value if node.op is CompareOperator.eq else column != value
        if kind is _Kind.id:
            if node.op is not CompareOperator.eq or not isinstance(value, str):
                raise InvalidFilter("id compares with eq only")
            try:
                return column == uuid.UUID(value)
            except ValueError:
                return false()
        if not isinstance(value, str):
            raise InvalidFilter(f"{node.attr_path} compares with a string")
        if kind is _Kind.text:
            return _TEXT[node.op](func.lower(column), value.lower())
        return _TEXT[node.op](column, value)

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        column, kind = _column(node.attr_path, prefix=self.prefix)
        if kind in (_Kind.boolean, _Kind.id):
            return column.is_not(None)
        return and_(column.is_not(None), column != "")

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        name = _name(node.attr_path)
        if name != "emails" or node.sub_attr:
            raise InvalidFilter(f"the attribute {node.attr_path} cannot be filtered on")
        return _Where(prefix="emails").visit(node.val_filter)


def where_of(expression: str) -> ColumnElement[bool]:
    """The WHERE clause of a SCIM filter; InvalidFilter when it is not one, or filters on what
    the service does not keep."""
    try:
        tree: FilterNode = ScimFilter(expression).ast
    except Exception as exc:  # scim2-models' parser says why in its own exception types
        raise InvalidFilter(f"the filter is not valid: {exc}") from None
    return _Where().visit(tree)


async def list_users(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    where: ColumnElement[bool] | None,
    offset: int,
    limit: int,
) -> tuple[list[User], int]:
    """A page of the tenant's agents in the order they were made, and how many match."""
    condition = User.tenant_id == tenant_id
    if where is not None:
        condition = and_(condition, where)
    total = (
        await session.execute(select(func.count()).select_from(User).where(condition))
    ).scalar_one()
    if limit == 0:
        return [], total
    rows = await session.scalars(
        select(User).where(condition).order_by(User.created_at, User.id).offset(offset).limit(limit)
    )
    return list(rows), total


async def find_by_external_ref(
    session: AsyncSession, *, tenant_id: uuid.UUID, external_ref: str
) -> User | None:
    found = await session.scalars(
        select(User).where(User.tenant_id == tenant_id, User.external_ref == external_ref)
    )
    return found.first()


async def taken_user_names(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_names: Collection[str]
) -> set[str]:
    """Which of these login names the tenant's agents have already."""
    if not user_names:
        return set()
    found = await session.scalars(
        select(User.user_name).where(User.tenant_id == tenant_id, User.user_name.in_(user_names))
    )
    return {name for name in found if name is not None}
