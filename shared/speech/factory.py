"""Build the engine that settings name."""

from __future__ import annotations

from shared.infra.settings import ORPHEUS_HUB_ID, ResolvedEngine, Settings
from shared.speech.engine import Engine
from shared.speech.weights import locate_model, orpheus_configured

ESPEAK_FALLBACK_NOTE = (
    "note: no Orpheus weights configured, using the espeak-ng engine "
    "(set LYRE_ORPHEUS__MODEL or run `lyre models pull`)"
)


def resolve_engine_name(settings: Settings) -> tuple[ResolvedEngine, str | None]:
    """Return the engine to use and, when ``auto`` fell back to espeak, a note saying so."""
    if settings.engine != "auto":
        return settings.engine, None
    if orpheus_configured(settings.orpheus):
        return "orpheus", None
    return "espeak", ESPEAK_FALLBACK_NOTE


def makes_codes(settings: Settings) -> bool:
    """Whether the farm's engine makes SNAC codes, which a SNAC decoder turns into audio."""
    name = resolve_engine_name(settings)[0]
    return name == "orpheus" or (name == "simulated" and settings.simulated.codes)


def build_engine(settings: Settings, name: str) -> Engine:
    """The engine ``name``, each answer with its share of the engine's time, with seats kept
    for urgent chunks where it batches, made to misbehave where ``faults.rate`` asks it to."""
    from shared.speech.metering import EngineClock
    from shared.speech.seats import EngineSeats, batching

    engine: Engine = EngineClock(_build(settings, name))
    seats = settings.orpheus.urgent_seats
    if seats and batching(settings, name):
        engine = EngineSeats(engine, settings.orpheus.max_num_seqs, seats)
    if settings.faults.rate > 0:
        from shared.checks.faults import FaultyEngine

        return FaultyEngine(engine, settings.faults)
    return engine


def _build(settings: Settings, name: str) -> Engine:
    if name == "null":
        from shared.speech.null import NullEngine

        return NullEngine()
    if name == "simulated":
        from shared.speech.simulated import SimulatedEngine

        return SimulatedEngine(
            settings.orpheus.max_num_seqs,
            settings.simulated.step_ms / 1000,
            settings.simulated.tokens_per_char,
            settings.simulated.codes,
        )
    if name == "espeak":
        from shared.speech.espeak import EspeakEngine

        return EspeakEngine()
    return build_orpheus(settings)


def build_orpheus(settings: Settings) -> Engine:
    from transformers import AutoTokenizer

    from shared.speech.orpheus import Backend, OrpheusEngine

    s = settings.orpheus
    model_dir = locate_model(s.model or ORPHEUS_HUB_ID)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    backend: Backend
    if s.backend == "vllm":
        from shared.speech.vllm_backend import VllmBackend

        backend = VllmBackend(model_dir, s)
    elif s.backend == "openai":
        from shared.speech.openai_backend import OpenAIBackend

        backend = OpenAIBackend(s, model=s.model or ORPHEUS_HUB_ID)
    else:
        from shared.speech.transformers_backend import TransformersBackend

        backend = TransformersBackend(model_dir, s.device)
    return OrpheusEngine(tokenizer, backend, s)
