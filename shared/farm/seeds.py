"""A job's seed and its chunks' seeds.

Every chunk is sampled (Orpheus) or spoken (espeak-ng), then decoded (SNAC's noise), with a
32-bit seed of its own, the same at every attempt, so that a retried chunk comes out the same.
A job that asks for a ``seed`` has its chunks' seeds derived from that seed and their index
alone: the same text, voice, settings and seed give the same bytes, whatever the job's id and
however its chunks were scheduled or retried. A job without one has them derived from its id:
each job samples afresh. A chunk made again after failing its checks takes the next seed of
a sequence that the chunk's seed and the take fix (:func:`take_seed`): a rerun fails and
retakes alike.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib

SEED_LIMIT = 2**63  # a job's seed: 0 <= seed < SEED_LIMIT (Postgres's BIGINT)


def chunk_seed(job_id: uuid.UUID | str, index: int, seed: int | None = None) -> int:
    """The chunk's seed: from the job's ``seed``, the first four bytes (big-endian) of
    BLAKE2b-32 of ``"{seed}:{index}"``; without one, CRC-32 of ``"{job_id}:{index}"``."""
    if seed is None:
        return zlib.crc32(f"{job_id}:{index}".encode())
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def take_seed(seed: int, take: int) -> int:
    """The seed of a chunk's ``take`` (0 the first, which keeps the chunk's ``seed``): the first
    four bytes of BLAKE2b-32 of ``"{seed}/{take}"``."""
    if take == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/{take}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")
