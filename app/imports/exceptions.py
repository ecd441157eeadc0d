from app.errors import AppError, Code, Conflict, FieldProblem, NotFound
from app.imports.schemas import ImportReport


class ImportJobNotFound(NotFound):
    code = "import-not-found"
    default_rule = Code.import_not_found


class ImportTooLarge(AppError):
    status_code = 413
    code = "file-too-large"
    default_rule = Code.file_too_large


class UploadInterrupted(AppError):
    status_code = 400
    code = "upload-interrupted"
    default_rule = Code.upload_interrupted


class ImportConflict(Conflict):
    code = "import-conflict"


class ImportRejected(AppError):
    """The file has problems: nothing was imported. Each problem is one entry of `errors`."""

    status_code = 422
    code = "import-rejected"

    def __init__(self, report: ImportReport) -> None:
        super().__init__(
            Code.import_rejected,
            total=report.problems_total,
            listed=len(report.problems),
            errors=[
                FieldProblem(
                    field=f"body.{p.column}" if p.column else "body",
                    code=p.code,
                    params=p.params,
                    row=p.row,
                    column=p.column,
                )
                for p in report.problems
            ],
        )
        self.report = report
