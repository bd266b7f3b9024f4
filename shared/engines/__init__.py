"""Speech engines behind one interface; :func:`build_engine` picks one from settings."""

from shared.engines.base import Engine, EngineError, Speech, SpeechRequest
from shared.engines.factory import build_engine, resolve_engine_name

__all__ = [
    "Engine",
    "EngineError",
    "Speech",
    "SpeechRequest",
    "build_engine",
    "resolve_engine_name",
]
