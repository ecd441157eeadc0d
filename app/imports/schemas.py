import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, Field

from app.devices.models import DeviceKind
from app.errors import Code
from app.errors.problems import message_of
from app.imports.models import ImportStatus


class ImportProblem(BaseModel):
    row: int = Field(
        description="The file's row: the CSV header is row 1, the first agent row 2 (as a "
        "spreadsheet numbers them); in JSON lines, the line.",
        examples=[812],
    )
    column: str | None = Field(
        description="The column, or null when the row as a whole is wrong.",
        examples=["extensions"],
    )
    code: Code = Field(
        description="The rule the row breaks: stable, the key of `message` in the catalogues.",
        examples=["extension-taken"],
    )
    params: dict[str, Any] = Field(
        description="The rule's values, which `message` quotes; `item`: the device or "
        "extension of the cell's list the problem is about.",
        examples=[{"number": "102"}],
    )
    message: str = Field(
        description="In the language Accept-Language asks for.",
        examples=["Extension 102 is already assigned to another user."],
    )


class ImportAction(StrEnum):
    """What an import did with a row's user."""

    create = "create"
    update = "update"
    unchanged = "unchanged"


class ImportedRow(BaseModel):
    row: int = Field(examples=[2])
    action: ImportAction
    external_ref: str | None = Field(examples=["emp-0042"])
    user_id: uuid.UUID | None = Field(description="null for a dry run's new users.")


class NewDevice(BaseModel):
    row: int = Field(examples=[2])
    user_id: uuid.UUID
    external_ref: str | None
    device_id: uuid.UUID
    name: str = Field(examples=["lan.desk"])
    kind: DeviceKind
    password: str = Field(
        description="Generated; shown here once (later only in the device's config view).",
        examples=["qP4xN8vK2mR7tW3yZ6bA"],
    )


class ImportReport(BaseModel):
    dry_run: bool
    rows_total: int = Field(description="Agent rows in the file (the header not counted).")
    created: int = Field(
        description="Users created (in a dry run or a failed import: the rows without a problem "
        "that would create one)."
    )
    updated: int = Field(description="Existing users (found by external_ref) changed.")
    unchanged: int = Field(description="Existing users the file leaves as they are.")
    problems_total: int = Field(description="Every problem found; `problems` lists up to 1000.")
    problems: list[ImportProblem] = Field(
        description="Every rule a single request checks, duplicates inside the file and "
        "conflicts with what is stored. A real import with any problem stores nothing."
    )
    rows: list[ImportedRow] = Field(description="What each row without a problem does.")
    new_devices: list[NewDevice] | None = Field(
        description="The new SIP accounts with their generated passwords, shown once: in the "
        "import's answer, or in the first read of a finished import job by an admin key; "
        "null after that, and in a dry run."
    )

    def in_language(self, language: str) -> Self:
        """The report with its problems' messages in `language`."""
        for problem in self.problems:
            problem.message = message_of(problem.code, problem.params, language)
        return self


class ImportJobOut(BaseModel):
    id: uuid.UUID
    status: ImportStatus = Field(
        description="queued, running, succeeded, or failed (problems in the file, a conflict "
        "with a concurrent change, or the process running it stopped: nothing was stored)."
    )
    dry_run: bool
    rows_total: int = Field(examples=[5000])
    rows_done: int = Field(description="Rows checked (and written) so far.", examples=[1500])
    detail: str | None = Field(description="Why it failed.")
    report: ImportReport | None = Field(description="Once finished.")
    created_at: datetime
    finished_at: datetime | None
