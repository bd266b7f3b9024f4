"""Live streams: an interactive job's chunks as the engine makes them, for the api to play
before the chunk is decoded and stored.

A gpu worker making a chunk of an interactive job (a speech request, a voice's sample, a
WebSocket's text) publishes each piece the engine gives (SNAC frames, or PCM from an engine that
makes audio) to a Redis stream of the chunk's, ``LIVE_KEY + "<job>:<chunk>"``, and ends each
take with an ``end`` entry saying whether the take is the one kept (its checks passed). The
stream is bounded (``speech.live_entries``) and expires (``speech.live_ttl_s`` after its last
entry). Nothing durable depends on it: the chunk is stored, decoded and stitched as any other,
and a listener who misses pieces (a worker died, Redis restarted) plays the stored chunk.

Entries: ``t`` the take, ``n`` where the piece starts in it (frames, or samples for PCM: a
listener that finds a gap knows it), ``k`` the kind (``c`` codes, ``p`` PCM, ``e`` the take's
end, with ``kept`` 1 or 0), ``d`` the data (codes: the three levels' codes as int16, L0 then
L1 then L2; PCM: float32).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.infra import queues
from shared.infra.settings import Settings
from shared.speech.codec import FRAME_TOKENS, SnacCodes
from shared.speech.engine import Speech

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger(__name__)


def live_key(prefix: str, job_id: uuid.UUID | str, index: int) -> str:
    return queues.key(prefix, f"{queues.LIVE_KEY}{job_id}:{index}")


@dataclass(frozen=True)
class Piece:
    """One entry of a chunk's stream."""

    take: int
    at: int  # frames (codes) or samples (PCM) of the take before it
    codes: SnacCodes | None = None
    pcm: np.ndarray | None = None
    end: bool = False
    kept: bool = False  # with ``end``: the take the chunk keeps

    def fields(self) -> dict[Any, Any]:
        out: dict[Any, Any] = {"t": self.take, "n": self.at}
        if self.codes is not None:
            out |= {"k": "c", "d": np.concatenate(self.codes.levels).astype("<i2").tobytes()}
        elif self.pcm is not None:
            out |= {"k": "p", "d": self.pcm.astype("<f4").tobytes()}
        else:
            out |= {"k": "e", "kept": int(self.kept)}
        return out

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Piece:
        take, at, kind = int(fields[b"t"]), int(fields[b"n"]), fields[b"k"]
        if kind == b"c":
            flat = np.frombuffer(fields[b"d"], "<i2").astype(np.int64)
            frames = len(flat) // FRAME_TOKENS
            levels = (flat[:frames], flat[frames : 3 * frames], flat[3 * frames :])
            return cls(take, at, codes=SnacCodes(levels))
        if kind == b"p":
            return cls(take, at, pcm=np.frombuffer(fields[b"d"], "<f4"))
        return cls(take, at, end=True, kept=fields.get(b"kept") == b"1")


class LivePublisher:
    """A gpu worker's side: the engine's pieces queued here (the engine never waits on
    Redis) and written by a thread, many to one round trip. At most ``speech.live_backlog``
    wait: past it a chunk's stream is cut (no more pieces of that take), never the memory."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client, self.prefix = client, settings.redis.key_prefix
        speech = settings.speech
        self.entries, self.ttl_s = speech.live_entries, speech.live_ttl_s
        self.backlog: queue.Queue[tuple[str, Piece]] = queue.Queue(speech.live_backlog)
        self.cut: set[tuple[str, int]] = set()  # (key, take) that lost a piece
        threading.Thread(target=self._write, name="live-publisher", daemon=True).start()

    def listener(self, job_id: uuid.UUID, index: int, take: int) -> TakeListener:
        return TakeListener(self, live_key(self.prefix, job_id, index), take)

    def put(self, key: str, piece: Piece) -> None:
        if piece.end:  # goes even after a cut: its ``at`` shows a listener the gap
            self.cut.discard((key, piece.take))
        elif (key, piece.take) in self.cut:
            return
        try:
            self.backlog.put_nowait((key, piece))
        except queue.Full:
            self.cut.add((key, piece.take))
            log.warning("live stream %s cut: %d pieces wait for Redis", key, self.backlog.maxsize)

    def _write(self) -> None:
        while True:
            batch = [self.backlog.get()]
            while len(batch) < 512:
                try:
                    batch.append(self.backlog.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            except Exception as exc:  # Redis away: these pieces are lost, their listeners
                for key, piece in batch:  # wait for the stored chunks
                    if not piece.end:
                        self.cut.add((key, piece.take))
                log.warning("live pieces lost (%d): %s", len(batch), exc)

    def _send(self, batch: list[tuple[str, Piece]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, piece in batch:
            pipe.xadd(key, piece.fields(), maxlen=self.entries, approximate=True)
        for key in {key for key, _ in batch}:
            pipe.expire(key, self.ttl_s)
        pipe.execute()


class TakeListener:
    """The engine's listener (``shared.speech.engine.Listener``) for one take of a chunk."""

    def __init__(self, publisher: LivePublisher, key: str, take: int) -> None:
        self.publisher, self.key, self.take = publisher, key, take
        self.at = 0  # frames or samples published

    def __call__(self, piece: SnacCodes | np.ndarray) -> None:
        if isinstance(piece, SnacCodes):
            self.publisher.put(self.key, Piece(self.take, self.at, codes=piece))
            self.at += piece.frames
        else:
            self.publisher.put(self.key, Piece(self.take, self.at, pcm=piece))
            self.at += len(piece)

    def finish(self, speech: Speech, kept: bool) -> None:
        """End the take, ``kept`` if the chunk keeps it; the engine's whole speech first if it
        gave none as it went (an engine that makes a chunk's audio at once)."""
        if self.at == 0 and speech.codes is not None and speech.codes.frames:
            self(speech.codes)
        elif self.at == 0 and speech.pcm is not None and len(speech.pcm):
            self(speech.pcm)
        self.publisher.put(self.key, Piece(self.take, self.at, end=True, kept=kept))


class LiveReader:
    """The api's side: a chunk's pieces after the last one read (``XREAD``, waiting up to
    ``wait_s`` for one; None: not waiting)."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    async def read(
        self, job_id: uuid.UUID, index: int, after: str, wait_s: float | None
    ) -> list[tuple[str, Piece]]:
        key = live_key(self.prefix, job_id, index)
        block = None if wait_s is None else max(1, round(wait_s * 1000))  # 0 would be for ever
        answer: Any = await self.client.xread({key: after}, count=256, block=block)
        if not answer:
            return []
        return [(entry.decode(), Piece.from_fields(fields)) for entry, fields in answer[0][1]]

    async def aclose(self) -> None:
        await self.client.aclose()


def live_publisher(settings: Settings) -> LivePublisher | None:
    """The gpu worker's publisher (None where live streams are off)."""
    if not settings.speech.live:
        return None
    return LivePublisher(queues.redis_client(settings.redis.url, timeout_s=5), settings)


def live_reader(settings: Settings) -> LiveReader:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(settings.redis.url, socket_timeout=30)
    return LiveReader(client, settings.redis.key_prefix)
