"""The import jobs of this process, for the import routes."""

from typing import Annotated

from fastapi import Depends, Request

from app.imports.runner import ImportRunner


async def _import_runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.imports
    return runner


ImportRunnerDep = Annotated[ImportRunner, Depends(_import_runner)]
