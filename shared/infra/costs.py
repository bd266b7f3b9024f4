"""The columns that say what work cost: a chunk's, and the sums on its chapter and job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float
from sqlalchemy.orm import Mapped, mapped_column


class Costs:
    """What a job's (or a chapter's) work cost so far, summed as its chunks and files are made
    and never taken back: work redone cost twice. The engine's seconds are each chunk's share
    of the engine's busy time (``shared.speech.metering``); CPU seconds are the threads' own
    (``shared.infra.cpu``)."""

    engine_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    decode_cpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    stitch_cpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    encode_cpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class JobCosts(Costs):
    # what of the job's costs its tenant's usage holds (shared.farm.usage); None: nothing yet
    billed: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ChunkCosts:
    """A chunk's since it was last made: its share of the engine's time over its takes, and
    its decodes' CPU seconds (counted on its chapter and job as it is finished)."""

    engine_s: Mapped[float | None] = mapped_column(Float)
    decode_cpu_s: Mapped[float | None] = mapped_column(Float)
