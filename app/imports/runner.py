"""How an import runs: a small file at once, in the request; a larger one as a job in this
process (an asyncio task), whose progress can be polled. A job's import is one transaction like
any other: if the process stops midway, the database rolls it back and nothing is stored, and
the job is shown failed (abandoned) once no process has touched it for a while."""

import asyncio
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import IO

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.session import Database
from app.errors import AppError
from app.imports import importer, job_records, repository
from app.imports.exceptions import ImportRejected
from app.imports.formats import FileFormat
from app.imports.models import ImportStatus
from app.imports.schemas import ImportJobOut, ImportReport
from app.memory import release as _release
from app.tenants import service as tenants

logger = logging.getLogger(__name__)


class ImportRunner:
    """The import jobs of this process, with their progress as it happens."""

    def __init__(
        self,
        db: Database,
        cipher: PasswordCipher,
        *,
        sync_max_rows: int,
        on_written: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._sync_max_rows = sync_max_rows
        # Told when an import stored something: its events are there to deliver.
        self._on_written = on_written
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        # The jobs running here, as they stand: read without the database (on SQLite the
        # import holds its one writer's lock until it ends).
        self._live: dict[uuid.UUID, tuple[uuid.UUID, ImportJobOut]] = {}
        # The jobs whose task has begun (and so records how it ends).
        self._started: set[uuid.UUID] = set()

    def live(self, job_id: uuid.UUID, *, tenant_id: uuid.UUID) -> ImportJobOut | None:
        """A job of the tenant's that this process runs now, as it stands (None: not here)."""
        found = self._live.get(job_id)
        if found is None or found[0] != tenant_id:
            return None
        return found[1].model_copy()

    async def submit(
        self,
        *,
        tenant_id: uuid.UUID,
        source: IO[bytes],
        file_format: FileFormat,
        dry_run: bool,
    ) -> ImportReport | ImportJobOut:
        """Imports a small file now (its report), or starts a job for a larger one (the job).
        Takes `source` over and closes it when done."""
        try:
            # In a thread: reading a large file through would hold up every other request.
            rows_total = await asyncio.to_thread(importer.count_rows, source, file_format)
        except BaseException:
            source.close()
            raise
        if rows_total > self._sync_max_rows:
            return await self._start(
                tenant_id=tenant_id,
                source=source,
                file_format=file_format,
                dry_run=dry_run,
                rows_total=rows_total,
            )
        try:
            async with self._db.session_scope() as session:
                report = await self._import(
                    session,
                    tenant_id=tenant_id,
                    source=source,
                    file_format=file_format,
                    dry_run=dry_run,
                )
        finally:
            source.close()
        if not dry_run:
            self._on_written()
        return report

    async def _import(
        self,
        session: AsyncSession,
        *,
        tenant_id: uuid.UUID,
        source: IO[bytes],
        file_format: FileFormat,
        dry_run: bool,
        progress: importer.Progress | None = None,
    ) -> ImportReport:
        tenant = await tenants.get_tenant(session, tenant_id=tenant_id)
        return await importer.import_users(
            session,
            self._cipher,
            tenant=tenant,
            source=source,
            file_format=file_format,
            dry_run=dry_run,
            progress=progress,
        )

    async def _start(
        self,
        *,
        tenant_id: uuid.UUID,
        source: IO[bytes],
        file_format: FileFormat,
        dry_run: bool,
        rows_total: int,
    ) -> ImportJobOut:
        try:
            async with self._db.session_scope() as session:
                job = await job_records.new_job(
                    session, tenant_id=tenant_id, rows_total=rows_total, dry_run=dry_run
                )
        except BaseException:
            source.close()
            raise
        shown = job_records.job_out(job)
        self._live[job.id] = (tenant_id, shown)
        task = asyncio.get_running_loop().create_task(
            self._run(
                job.id, tenant_id=tenant_id, source=source, file_format=file_format, dry_run=dry_run
            )
        )
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._forget(job.id))
        return shown.model_copy()

    def _progress(self, job_id: uuid.UUID, status: ImportStatus, rows_done: int) -> None:
        found = self._live.get(job_id)
        if found is not None:
            found[1].status, found[1].rows_done = status, rows_done

    def _forget(self, job_id: uuid.UUID) -> None:
        self._started.discard(job_id)
        self._tasks.pop(job_id, None)
        self._live.pop(job_id, None)
        # The job's rows, report and new passwords are gone with its task: the process gives
        # their memory back rather than stay as large as the import made it.
        _release()

    async def _run(
        self,
        job_id: uuid.UUID,
        *,
        tenant_id: uuid.UUID,
        source: IO[bytes],
        file_format: FileFormat,
        dry_run: bool,
    ) -> None:
        self._started.add(job_id)
        postgres = self._db.dialect == "postgresql"

        async def progress(rows_done: int) -> None:
            self._progress(job_id, ImportStatus.running, rows_done)
            if postgres:
                # Outside the import's transaction, for pollers served by other processes.
                # (SQLite's one writer is the import itself: there the job's row waits.)
                async with self._db.session_scope() as session:
                    await repository.set_job_progress(
                        session, job_id=job_id, rows_done=rows_done, at=utcnow()
                    )

        ended: dict[str, object] | None = None
        try:
            async with self._db.session_scope() as session:
                await repository.finish_job(
                    session,
                    job_id=job_id,
                    values={"status": ImportStatus.running, "updated_at": utcnow()},
                )
            self._progress(job_id, ImportStatus.running, 0)
            async with self._db.session_scope() as session:
                report = await self._import(
                    session,
                    tenant_id=tenant_id,
                    source=source,
                    file_format=file_format,
                    dry_run=dry_run,
                    progress=progress,
                )
                # With the rows it describes: a job shown succeeded stored its rows.
                await repository.finish_job(
                    session,
                    job_id=job_id,
                    values=job_records.finished(
                        self._cipher, status=ImportStatus.succeeded, report=report
                    ),
                )
            if not dry_run:
                self._on_written()
        except ImportRejected as rejected:
            ended = job_records.finished(
                self._cipher,
                status=ImportStatus.failed,
                report=rejected.report,
                detail=rejected.text(),
            )
        except AppError as error:
            ended = job_records.finished(
                self._cipher, status=ImportStatus.failed, detail=error.text()
            )
        except asyncio.CancelledError:
            ended = _interrupted(self._cipher)
            raise
        except Exception as error:
            logger.exception("import %s failed", job_id)
            ended = job_records.finished(
                self._cipher,
                status=ImportStatus.failed,
                detail=f"Could not finish ({type(error).__name__}). Nothing was stored.",
            )
        finally:
            source.close()
            if ended is not None:
                await self._record_end(job_id, ended)

    async def _record_end(self, job_id: uuid.UUID, values: dict[str, object]) -> None:
        try:
            async with self._db.session_scope() as session:
                await repository.finish_job(session, job_id=job_id, values=values)
        except Exception:
            # The job is then shown abandoned after a while: what matters, that nothing was
            # stored, holds either way.
            logger.exception("import %s: its end could not be recorded", job_id)

    async def close(self) -> None:
        """Stops the jobs still running: each rolls back and is recorded as interrupted (also
        one that had not started yet)."""
        tasks = dict(self._tasks)
        # A task cancelled before it began never runs: its end is recorded here.
        unstarted = [job_id for job_id in tasks if job_id not in self._started]
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with suppress(asyncio.CancelledError):
                await task
        for job_id in unstarted:
            await self._record_end(job_id, _interrupted(self._cipher))


def _interrupted(cipher: PasswordCipher) -> dict[str, object]:
    return job_records.finished(
        cipher,
        status=ImportStatus.failed,
        detail="Interrupted: the service stopped. Nothing was stored; import again.",
    )
