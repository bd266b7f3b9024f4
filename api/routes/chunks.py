"""One chunk of a job: its audio, to listen to one the checks call suspect, and its redo."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import FarmDep, TenantDep
from api.errors import AudioNotReady, ChunkNotFound, FilesExpired, JobNotRedoable, RequestUnreadable
from api.problems import responses
from api.routes.jobs import MAX_INT, OF_A_JOB, job_now
from api.schemas import ChunkRedo, JobOut
from api.services import jobs

router = APIRouter()


_CHUNK = Path(ge=0, le=MAX_INT, description="The chunk's number in the job, as its report lists it")


@router.post(
    "/jobs/{job_id}/chunks/{index}/regenerate",
    status_code=202,
    response_model=JobOut,
    responses=responses(*OF_A_JOB, ChunkNotFound, FilesExpired, JobNotRedoable, RequestUnreadable),
)
def regenerate_chunk(
    job_id: uuid.UUID,
    index: Annotated[int, _CHUNK],
    body: ChunkRedo,
    farm: FarmDep,
    tenant: TenantDep,
) -> JobOut:
    """Make one chunk again (its next take, corrected text, or another voice), then its
    chapter's file and the book's from the stored chunks, as the job's next version: every
    other chunk's audio stays as it was."""
    jobs.redo_one_chunk(farm, tenant, job_id, index, body)
    return job_now(job_id, farm, tenant)


@router.get(
    "/jobs/{job_id}/chunks/{index}/audio",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The chunk's audio, WAV"},
        **responses(*OF_A_JOB, ChunkNotFound, AudioNotReady, FilesExpired),
    },
)
def chunk_audio(
    job_id: uuid.UUID, index: Annotated[int, _CHUNK], farm: FarmDep, tenant: TenantDep
) -> Response:
    """One chunk's audio as the book joins it (a suspect's, to listen to before a redo)."""
    return Response(jobs.chunk_audio(farm, tenant, job_id, index), media_type="audio/wav")
