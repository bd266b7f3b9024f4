"""CPU seconds of one piece of work over the threads it runs on: what a stitch cost.

``time.process_time`` would count every thread of the process, and a worker (or ``lyre
synth``) may run other work beside; ``time.thread_time`` counts one thread. A stage that
spreads its work over threads (readers, a second encoder) counts each thread's part where
the thread does it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class CpuClock:
    """Add the CPU time of blocks (:meth:`counting`) and calls (:meth:`counted`) on any
    thread; :attr:`seconds` is their sum. A block must not run inside another of the same
    clock on the same thread: it would be counted twice."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def counting(self) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            used = time.thread_time() - started
            with self._lock:
                self.seconds += used

    def counted(self, function: Callable[P, R]) -> Callable[P, R]:
        """``function``, its calls counted (for work handed to another thread)."""

        @wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.counting():
                return function(*args, **kwargs)

        return run
