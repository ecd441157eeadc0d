"""Shared schema building blocks."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class PatchModel(BaseModel):
    """A partial update: absent fields stay as they are; null only where a field may be empty."""

    model_config = ConfigDict(extra="forbid")
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name in cls.model_fields and name not in cls.nullable:
                    raise ValueError(f"{name} may be omitted but not null")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
