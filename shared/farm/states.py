"""Job, chunk and chapter states, and the tables of allowed transitions (target -> sources).

``shared.farm.transitions`` holds one compare-and-set statement per edge of these tables, and a
test checks that each statement's ``WHERE status`` and ``SET status`` are an edge here.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # accepted, no chunk generated yet
    RUNNING = "running"  # its first chunk has been taken by a GPU worker
    SUCCEEDED = "succeeded"  # the programme is in the object store
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChunkStatus(StrEnum):
    PENDING = "pending"  # waiting for the GPU
    GENERATED = "generated"  # the engine's output stored in the row, waiting for decode
    DONE = "done"  # finished PCM in the object store, its loudness in the row
    CANCELLED = "cancelled"


class ChapterStatus(StrEnum):
    WAITING = "waiting"  # some of its chunks are not done, or its file is not made yet
    DONE = "done"  # its file is in the object store


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
WAITING = (ChunkStatus.PENDING, ChunkStatus.GENERATED)  # chunks that hold a lease

JOB_TRANSITIONS: dict[JobStatus, tuple[JobStatus, ...]] = {
    # a finished job runs again when one of its chapters is redone
    JobStatus.RUNNING: (JobStatus.QUEUED, JobStatus.SUCCEEDED),
    JobStatus.SUCCEEDED: (JobStatus.RUNNING,),
    JobStatus.FAILED: ACTIVE,
    JobStatus.CANCELLED: ACTIVE,
}

CHUNK_TRANSITIONS: dict[ChunkStatus, tuple[ChunkStatus, ...]] = {
    # a take that failed its checks at decode is made again; a done chunk is redone on its own
    ChunkStatus.PENDING: (ChunkStatus.GENERATED, ChunkStatus.DONE),
    ChunkStatus.GENERATED: (ChunkStatus.PENDING,),
    ChunkStatus.DONE: (ChunkStatus.GENERATED,),
    ChunkStatus.CANCELLED: WAITING,  # its job was cancelled
}

CHAPTER_TRANSITIONS: dict[ChapterStatus, tuple[ChapterStatus, ...]] = {
    ChapterStatus.DONE: (ChapterStatus.WAITING,),
    ChapterStatus.WAITING: (ChapterStatus.DONE,),  # redone
}
