from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from app.auth.deps import PlatformAdmin
from app.deps import DatabaseDep
from app.errors import Forbidden, Unauthorized, responses
from app.jobs import registry
from app.jobs.registry import JOBS, JobNotFound
from app.routing import api_router

router = api_router(prefix="/v1/jobs", tags=["jobs"], responses=responses(Unauthorized, Forbidden))


class JobOut(BaseModel):
    name: str = Field(examples=["close-finished-months"])
    description: str


class JobRun(BaseModel):
    name: str
    result: int = Field(description="What the job did (for the rollover: months closed).")


@router.get("", response_model=list[JobOut])
async def list_jobs(_key: PlatformAdmin) -> list[JobOut]:
    """List the scheduled jobs."""
    return [JobOut(name=name, description=job.description) for name, job in JOBS.items()]


@router.post("/{name}/run", response_model=JobRun, responses=responses(JobNotFound))
async def run_job(
    name: Annotated[str, Path(max_length=64)], db: DatabaseDep, _key: PlatformAdmin
) -> JobRun:
    """Run a job now (it is idempotent)."""
    return JobRun(name=name, result=await registry.run_job(db, name))
