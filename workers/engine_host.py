"""The gpu worker's engine: built once as the worker starts, shared by all its threads, and
the end of the worker when it dies.

An engine that died (vLLM's engine core crashed: a CUDA error, memory exhausted, a GPU lost)
cannot be revived inside the process. The worker hands the chunks it holds back to the queue
(their messages are requeued, untouched, for another worker) and shuts down with
:data:`ENGINE_DEAD_EXIT`, so that its supervisor — Kubernetes, compose's restart policy,
systemd — starts a fresh process. Until then the ``engine_health`` remote-control command,
which ``python -m workers.healthcheck engine NODE`` asks, reports it dead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from shared.farm.context import FarmContext
from shared.farm.gpu_workers import forget_gpu_worker, register_gpu_worker
from shared.infra.settings import get_settings
from shared.speech.engine import Engine, EngineDead, EngineLoop
from shared.speech.factory import build_engine, resolve_engine_name

log = logging.getLogger(__name__)

ENGINE_DEAD_EXIT = 3  # the worker's exit status when its engine died or never started

_lock = threading.Lock()
_hosted: tuple[EngineLoop, Engine] | None = None
_death: str | None = None


def _build() -> tuple[EngineLoop, Engine]:
    settings = get_settings()
    name, note = resolve_engine_name(settings)
    if note:
        log.warning(note)
    return EngineLoop(), build_engine(settings, name)


def engine() -> tuple[EngineLoop, Engine]:
    """This process's engine and the loop it runs on; built on first use."""
    global _hosted
    with _lock:
        if _death is not None:
            raise EngineDead(_death)
        if _hosted is None:
            _hosted = _build()
        return _hosted


def start_engine() -> bool:
    """Build the engine before the worker takes chunks; a worker whose engine can't be built
    exits with ENGINE_DEAD_EXIT instead of failing every chunk it is sent (False)."""
    try:
        engine()
    except Exception as exc:
        log.critical("the engine could not be built: %s", exc, exc_info=True)
        engine_died(f"it could not be built: {exc}")
        return False
    return True


def engine_died(reason: str) -> None:
    """Mark the engine dead and ask the worker for a warm shutdown with ENGINE_DEAD_EXIT: the
    chunks in flight fail fast (their tasks hand them back), the others are not taken."""
    global _death
    with _lock:
        if _death is None:
            _death = reason
            log.critical("engine dead (%s): handing chunks back and exiting", reason)
    _stop.set()  # its slots leave the dispatcher's window
    worker_state.should_stop = ENGINE_DEAD_EXIT


def health() -> dict[str, Any]:
    """Whether this process's engine can serve chunks."""
    if _death is None and _hosted is not None and _hosted[1].dead():
        engine_died("it reported itself dead")
    if _death is not None:
        return {"ok": False, "detail": f"engine dead: {_death}"}
    return {"ok": True, "detail": "engine ready" if _hosted else "engine not built yet"}


# --- the worker's heartbeat: its slots in the dispatcher's window ---------------------------

_stop = threading.Event()
_beating: tuple[FarmContext, str] | None = None  # the farm and the name this worker beats as


def start_heartbeat(farm: FarmContext, name: str, slots: int) -> None:
    """Refresh this worker's row in ``gpu_worker`` every ``dispatch.heartbeat_s`` from a thread
    (a failed beat is tried again at the next), until the worker stops or its engine dies."""
    global _beating

    def beat() -> None:
        while _death is None and not _stop.is_set():
            try:
                register_gpu_worker(farm, name, slots)
            except Exception as exc:  # the database may be restarting: the next beat retries
                log.warning("heartbeat of %s failed: %s", name, exc)
            _stop.wait(farm.settings.dispatch.heartbeat_s)
        stop_heartbeat()

    _stop.clear()
    _beating = (farm, name)
    threading.Thread(target=beat, name="gpu-heartbeat", daemon=True).start()


def stop_heartbeat() -> None:
    """This worker's slots leave the window now, not when its row goes stale."""
    global _beating
    _stop.set()
    beating, _beating = _beating, None
    if beating is not None:
        farm, name = beating
        try:
            forget_gpu_worker(farm, name)
        except Exception as exc:  # its row goes stale in three heartbeats anyway
            log.warning("could not remove %s from the gpu workers: %s", name, exc)


@inspect_command()
def engine_health(state: object) -> dict[str, Any]:
    """Remote-control command: this worker's engine health (see workers.healthcheck)."""
    return health()
