import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import IO, Annotated, Any

from fastapi import BackgroundTasks, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.auth.deps import EditAccess, ReadAccess
from app.auth.models import Role
from app.deps import CipherDep, DatabaseDep, LanguageDep, SessionDep, SettingsDep
from app.errors import (
    Code,
    Forbidden,
    InvalidInput,
    Unauthorized,
    UnsupportedMediaType,
    responses,
)
from app.imports import export, job_records
from app.imports.deps import ImportRunnerDep
from app.imports.exceptions import (
    ImportConflict,
    ImportJobNotFound,
    ImportRejected,
    ImportTooLarge,
    UploadInterrupted,
)
from app.imports.formats import MEDIA_TYPES, FileFormat, csv_header, csv_lines, format_of, json_line
from app.imports.schemas import ImportJobOut, ImportReport
from app.memory import release
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound

router = api_router(
    prefix="/v1/users", tags=["users"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)

# A report of this many rows or more is large: once it is sent, the process gives back the
# memory it took.
_LARGE_REPORT = 1_000
# Held in memory up to this size, then in a temporary file.
_SPOOL_IN_MEMORY = 1024 * 1024

_FILE_SCHEMA = {"type": "string", "description": "The file, as it is."}
_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "CSV (UTF-8, with or without a BOM; comma or semicolon separated; the "
        "first row names the columns) or JSON lines (an object a line), with the columns "
        "display_name, email, external_ref, extensions (several: separated by spaces or "
        "commas), devices (name:kind, several), limit_minutes (empty: unlimited), "
        "outbound_allowed and auto_answer (true or false). In CSV, a cell of quote marks then "
        "=, +, -, @, a tab or a carriage return loses its first quote mark (the export's "
        "guard against formulas).",
        "content": {media_type: {"schema": _FILE_SCHEMA} for media_type in MEDIA_TYPES.values()},
    }
}
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ImportJobOut,
        "description": "A larger file: the import runs as a job; poll its Location for its "
        "progress and then its report.",
        "headers": {
            "Location": {
                "description": "The job, to poll.",
                "schema": {"type": "string"},
            }
        },
    }
}
_EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The users, one row (or line) each, in the import's columns. In CSV, "
        "a value that begins with =, +, -, @, a tab or a carriage return (also after quote "
        "marks) has a ' before it, so that a spreadsheet shows it as text and never runs it; "
        "the import takes it off.",
        "content": {media_type: {"schema": _FILE_SCHEMA} for media_type in MEDIA_TYPES.values()},
    }
}


async def _spooled(request: Request, *, max_bytes: int) -> IO[bytes]:
    """The request's body, as it streams in, in memory or a temporary file."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except ClientDisconnect:
        spool.close()
        raise UploadInterrupted() from None
    except HTTPException as error:
        spool.close()
        if error.status_code == 413:
            raise ImportTooLarge(max_bytes=max_bytes) from None
        raise
    except BaseException:
        spool.close()
        raise
    return spool


@router.post(
    "/import",
    response_model=ImportReport,
    response_description="A file of up to ANTRING_IMPORT_SYNC_MAX_ROWS rows, imported (or "
    "checked, in a dry run): the report.",
    responses={
        **responses(
            UploadInterrupted,
            InvalidInput,
            ImportRejected,
            ImportConflict,
            ImportTooLarge,
            UnsupportedMediaType,
        ),
        **_ACCEPTED,
    },
    openapi_extra=_IMPORT_BODY,
)
async def import_users(
    request: Request,
    language: LanguageDep,
    scope: EditAccess,
    runner: ImportRunnerDep,
    settings: SettingsDep,
    dry_run: Annotated[
        bool,
        Query(description="Check everything and change nothing: the report lists every problem."),
    ] = False,
) -> Response:
    """Import users with their devices, extensions, limits and switches from a file."""
    file_format = format_of(request.headers.get("content-type"))
    if file_format is None:
        raise UnsupportedMediaType(Code.import_file_type)
    source = await _spooled(request, max_bytes=settings.import_max_bytes)
    done = await runner.submit(
        tenant_id=scope.tenant_id, source=source, file_format=file_format, dry_run=dry_run
    )
    if isinstance(done, ImportJobOut):
        return JSONResponse(
            done.model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/v1/users/imports/{done.id}"},
        )
    return JSONResponse(
        done.in_language(language).model_dump(mode="json"),
        headers={"Content-Language": language, "Vary": "Accept-Language"},
    )


@router.get(
    "/imports/{job_id}",
    response_model=ImportJobOut,
    responses=responses(ImportJobNotFound),
)
async def get_import(
    job_id: uuid.UUID,
    session: SessionDep,
    cipher: CipherDep,
    scope: ReadAccess,
    runner: ImportRunnerDep,
    language: LanguageDep,
    response: Response,
    after: BackgroundTasks,
) -> ImportJobOut:
    """Show an import job: its progress, then its report (new passwords once, to an admin)."""
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    job = runner.live(job_id, tenant_id=scope.tenant_id) or await job_records.read_job(
        session,
        cipher,
        tenant_id=scope.tenant_id,
        job_id=job_id,
        reveal=scope.principal.role in (Role.admin, Role.operator),
    )
    if job.report is not None:
        job.report.in_language(language)
        if job.report.rows_total >= _LARGE_REPORT:
            after.add_task(release)
    return job


@router.get("/export", response_class=Response, responses=_EXPORTED)
async def export_users(
    db: DatabaseDep,
    scope: ReadAccess,
    format: Annotated[
        FileFormat, Query(description="csv (the default) or jsonl (JSON lines).")
    ] = FileFormat.csv,
) -> StreamingResponse:
    """Export the users in the import's columns, without passwords."""
    pages = export.export_pages(db.session_scope, tenant_id=scope.tenant_id)

    # One chunk a page: a chunk a row would cost a trip through the middleware and the server's
    # transport for each agent.
    async def lines() -> AsyncIterator[str]:
        if format == FileFormat.csv:
            yield csv_header()
        async for page in pages:
            if format == FileFormat.csv:
                yield csv_lines(page)
            else:
                yield "".join(json_line(row) for row in page)

    extension = "csv" if format == FileFormat.csv else "jsonl"
    return StreamingResponse(
        lines(),
        media_type=f"{MEDIA_TYPES[format]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="users.{extension}"'},
    )
