"""The api's decoding processes for live streams: SNAC decodes off the event loop, and off the
api's threads.

A decode is mostly Python driving PyTorch and Numba. On one of the api's threads it held the
interpreter lock against the event loop (a poll's p99 from 1.6 ms to 6.9 ms while 8 streams
played, ``python bench/api.py --streams 8``); so each runs in a process of its own
(``speech.live_decoders`` per api process), spawned (the api has threads, which a fork would
copy in whatever state), its model loaded once. The api talks to one through a socket that its
event loop reads and writes: no thread of the api's takes part. Through
``concurrent.futures.ProcessPoolExecutor``, whose feeder and result threads take the
interpreter lock for every step, the polls' p99 was 2.5× an idle api's with steps that decoded
nothing, 1.5× with no steps at all.

A process holds the streams of the listeners given to it (``shared.snac.stream``: each
stage's rows, ≈ 330 KB; sent with every step they cost the api 0.5 ms of CPU a step), by
listener, and drops one not stepped for :data:`STREAM_IDLE_S` (its listener went away
mid-chunk). A process that dies is started again on the next step; the streams it held are
lost (:class:`StreamLost`: their listeners go on from the stored chunks).
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import pickle
import select
import socket
import struct
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.speech.codec import SnacCodes

if TYPE_CHECKING:  # torch only in a decoding process
    from shared.snac.stream import Stream, StreamDecoder

STREAM_IDLE_S = 60.0
READY = "ready"  # a process's first message: its model is loaded


class StreamLost(RuntimeError):
    """The decoding process holds the stream no more (dropped idle, or the process died)."""


class DecodingProcess:
    """One decoding process, and the api's end of a socket to it: :meth:`step` from the event
    loop, which reads the answers as they come (``loop.add_reader``, a message a frame: its
    length, then its pickle) and sends the steps without blocking."""

    def __init__(self, model: str, products: str) -> None:
        self.model, self.products = model, products
        self.ids = itertools.count()
        self.waiting: dict[int, asyncio.Future[np.ndarray]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._start()

    def _start(self) -> None:
        self.socket, theirs = socket.socketpair()
        self.socket.setblocking(False)
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(
            target=_serve, args=(theirs, self.model, self.products), daemon=True
        )
        self.process.start()
        theirs.close()
        self.received, self.loaded = bytearray(), False

    def wait_loaded(self, timeout_s: float) -> bool:
        """Whether the process has loaded its model, waiting up to ``timeout_s`` (before any
        step: after one, the event loop reads what it says)."""
        deadline = time.monotonic() + timeout_s
        while (
            not self.loaded and select.select([self.socket], [], [], deadline - time.monotonic())[0]
        ):
            self._answers()
            if time.monotonic() > deadline:
                break
        return self.loaded

    def keep_running(self) -> None:
        """Start the process again if it has ended (killed, or closed by an api that stopped)."""
        if not self.process.is_alive():
            self._ended(f"the decoding process ended (exit code {self.process.exitcode})")
            self.socket.close()
            self._start()

    def close(self) -> None:
        """Stop the process (the api's end)."""
        self._ended("the api closed its decoding processes")
        self.process.kill()
        self.process.join()
        self.socket.close()

    async def step(
        self, key: str, seed: int, begun: bool, codes: SnacCodes, until: int | None
    ) -> np.ndarray:
        """``_step`` in the process: a listener's samples."""
        loop = asyncio.get_running_loop()
        self.keep_running()
        if self.loop is not loop:  # the first step, or one from another loop (tests run many)
            self.loop = loop
            loop.add_reader(self.socket.fileno(), self._answers)
        number = next(self.ids)
        answer = self.waiting[number] = loop.create_future()
        await loop.sock_sendall(self.socket, _message((number, (key, seed, begun, codes, until))))
        return await answer

    def _answers(self) -> None:
        """What the socket holds: each whole message to the step it answers."""
        ended = False
        while True:
            try:
                chunk = self.socket.recv(1 << 20)
            except BlockingIOError:  # all read, for now
                break
            except OSError:
                chunk = b""
            if not chunk:  # the process died: its streams with it
                ended = True
                break
            self.received += chunk
        for message in _messages(self.received):
            if message == READY:
                self.loaded = True
                continue
            number, ok, value = message
            answer = self.waiting.pop(number, None)
            if answer is not None and not answer.done():
                answer.set_result(value) if ok else answer.set_exception(value)
        if ended:
            self._ended("the decoding process ended")

    def _ended(self, why: str) -> None:
        """The process is gone: stop reading its socket, and fail the steps it had."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.socket.fileno())
        self.loop = None
        for answer in self.waiting.values():
            if not answer.done():
                answer.set_exception(StreamLost(why))
        self.waiting.clear()


HEADER = struct.Struct("!Q")  # a message's length


def _message(value: Any) -> bytes:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def _messages(received: bytearray) -> list[Any]:
    """The whole messages at the start of ``received``, taken out of it."""
    out = []
    while len(received) >= HEADER.size:
        (length,) = HEADER.unpack_from(received)
        if len(received) < HEADER.size + length:
            break
        out.append(pickle.loads(received[HEADER.size : HEADER.size + length]))
        del received[: HEADER.size + length]
    return out


# A decoding process's own state: its model, and the streams it holds by listener, least
# recently stepped first.
_snac: StreamDecoder | None = None
_streams: OrderedDict[str, tuple[float, Stream]] = OrderedDict()


def _serve(ours: socket.socket, model: str, products: str) -> None:
    """A decoding process: load the model, then answer steps until the api goes away."""
    _load(model, products)
    ours.sendall(_message(READY))
    received = bytearray()
    while chunk := ours.recv(1 << 16):
        received += chunk
        for number, args in _messages(received):
            try:
                answer = (number, True, _step(*args))
            except Exception as exc:  # the api's step raises it
                answer = (number, False, exc)
            try:
                message = _message(answer)
            except Exception:  # an exception that does not pickle: its text
                message = _message((number, False, RuntimeError(repr(answer[2]))))
            ours.sendall(message)


def _load(model: str, products: str) -> None:
    """The tiled decoder whatever ``snac_decoder`` says: a stream's decode is built of its
    layers (``shared.snac.stream``), and the api decodes on its CPU."""
    global _snac
    import torch

    from shared.snac.decoder import SnacDecoder
    from shared.snac.stream import StreamDecoder

    os.nice(10)  # a core short: the api's requests first, the streams' decodes with the rest
    torch.set_num_threads(1)
    decoder = SnacDecoder.load(model, "cpu", "tiled", products)  # type: ignore[arg-type]
    assert decoder.tiled is not None
    _snac = StreamDecoder(decoder.tiled)


def _step(key: str, seed: int, begun: bool, codes: SnacCodes, until: int | None) -> Any:
    """One step of listener ``key``'s stream (``StreamDecoder.step``)."""
    assert _snac is not None, "a decoding process loads its model as it starts"
    now = time.monotonic()
    while _streams and next(iter(_streams.values()))[0] < now - STREAM_IDLE_S:
        _streams.popitem(last=False)
    held = _streams.pop(key, None)
    if held is None and begun:
        raise StreamLost(f"the decoding process dropped stream {key} (idle)")
    stream = _snac.begin(seed) if held is None else held[1]
    pcm = _snac.step(stream, codes, until)
    if until is not None:  # more to come
        _streams[key] = (now, stream)
    return pcm
