from app.errors import AppError, Conflict, FieldError, NotFound
from app.imports.schemas import ImportReport


class ImportJobNotFound(NotFound):
    code = "import-not-found"
    title = "Import not found"


class ImportTooLarge(AppError):
    status_code = 413
    code = "file-too-large"
    title = "File too large"


class UploadInterrupted(AppError):
    status_code = 400
    code = "upload-interrupted"
    title = "Upload interrupted"


class ImportConflict(Conflict):
    code = "import-conflict"
    title = "Taken while the import ran"


class ImportRejected(AppError):
    """The file has problems: nothing was imported. Each problem is one entry of `errors`."""

    status_code = 422
    code = "import-rejected"
    title = "The file has problems"

    def __init__(self, report: ImportReport) -> None:
        total, listed = report.problems_total, len(report.problems)
        shown = f"the first {listed} are listed" if total > listed else "each is listed"
        super().__init__(
            f"{total} problem{'s' if total != 1 else ''} in the file ({shown}); nothing was "
            "imported.",
            errors=[
                FieldError(
                    field=f"body.{p.column}" if p.column else "body",
                    message=p.message,
                    type=p.type,
                    row=p.row,
                    column=p.column,
                )
                for p in report.problems
            ],
        )
        self.report = report
