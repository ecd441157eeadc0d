"""Shared schema building blocks."""

import unicodedata
from typing import Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator


def _refuse_control_characters(value: str) -> str:
    # PostgreSQL cannot store NUL at all; other control characters have no place in a name.
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain control characters")
    return value


# For free text kept in the database (names, emails): one line, no control characters.
SingleLine = AfterValidator(_refuse_control_characters)


def _patch_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The document says what the server takes: a field that may be omitted but not null is
    declared without null (and without a null default)."""
    nullable: frozenset[str] = getattr(model, "nullable", frozenset())
    for name, prop in schema.get("properties", {}).items():
        if name in nullable:
            continue
        prop.pop("default", None)
        variants = [v for v in prop.get("anyOf", []) if v != {"type": "null"}]
        if "anyOf" in prop and len(variants) == 1:
            del prop["anyOf"]
            prop.update(variants[0])
        elif "anyOf" in prop:
            prop["anyOf"] = variants


class PatchModel(BaseModel):
    """A partial update: absent fields stay as they are; null only where a field may be empty."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)
    nullable: ClassVar[frozenset[str]] = frozenset()

    # Per field (not on the whole model) so that the error names the field.
    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may be omitted but not null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    def apply_to(self, target: object) -> dict[str, Any]:
        """Sets every given field on `target`; returns what was given."""
        changes = self.changes()
        for field, value in changes.items():
            setattr(target, field, value)
        return changes
