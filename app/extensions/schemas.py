import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ExtensionNumber = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{2,4}$"),
    Field(
        description="2 to 4 digits; leading zeros count ('007' and '07' are different).",
        examples=["102"],
    ),
]


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: ExtensionNumber


class ExtensionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: str = Field(examples=["102"])
    user_id: uuid.UUID
    created_at: datetime


class ExtensionHolder(BaseModel):
    number: str = Field(examples=["102"])
    user_id: uuid.UUID
    display_name: str


class AvailableExtensions(BaseModel):
    digits: int
    numbers: list[str] = Field(examples=[["100", "101", "103"]])
