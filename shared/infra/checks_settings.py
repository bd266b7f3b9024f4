"""The settings of ``shared.checks`` (``LYRE_CHECKS__*``) and of faults on demand
(``LYRE_FAULTS__*``), part of :class:`shared.infra.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Seconds per spoken character (see ChecksSettings.pace). espeak-ng's hold its eight voices on
# 230 texts (the sentences of tests/fixtures/say, the sample book in 120-character chunks, eight
# one- and two-word lines), measured without their edges' silence, with the slack below: each
# voice needs 0.051-0.054 at least and 0.075-0.087 at most, too alike for ranges of their own
# (docs/speech.md). Orpheus's is an estimate from its 82 tokens per second of audio and some
# 12-16 characters spoken a second, wider for its expressive reading, to be narrowed by a farm's
# own measurements; the simulated engine's is its own 5.5 tokens a character (0.067 s).
PACE: dict[str, tuple[float, float]] = {
    "espeak": (0.05, 0.10),
    "orpheus": (0.04, 0.12),
    "simulated": (0.06, 0.075),
    "null": (0.0, 1.0),
}


FaultKind = Literal["early", "loop", "babble", "silence", "skip"]
FAULT_KINDS: tuple[FaultKind, ...] = ("early", "loop", "babble", "silence", "skip")


class ChecksSettings(BaseModel):
    """What is checked of every take an engine makes of a chunk (``shared.checks``), and how
    many takes a chunk gets before the best is kept and called suspect."""

    enabled: bool = True
    takes: int = Field(default=3, ge=1)  # the first included
    # Seconds of speech per spoken character, as (fewest, most), by engine or "engine:voice"
    # (that first): fewer, words were skipped; more, a loop or babble. A chunk of n characters
    # may be ``pace_slack_s`` (under, over) shorter or longer than n times these.
    pace: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(PACE))
    pace_slack_s: tuple[float, float] = (0.2, 0.4)
    # Engines that always pause this long or longer between sentences, by name: a take of
    # theirs with fewer such pauses than its text has sentence ends skipped one. espeak-ng's
    # eight voices never paused less on 1,992 takes of 249 texts (at 0.20 s, 3 did:
    # docs/speech.md); Orpheus is not measured, and the simulated engine never pauses.
    sentence_pause_s: dict[str, float] = Field(default_factory=lambda: {"espeak": 0.18})
    max_silence_s: float = Field(default=1.6, gt=0)  # inside a chunk, at -50 dBFS and below
    # the median spectral flatness of its loud 21 ms frames: espeak-ng's voices at most 0.016
    # on 1,840 takes, white noise 0.56 (docs/speech.md)
    max_flatness: float = Field(default=0.25, gt=0, le=1)
    # a run of SNAC frames repeated this many times in a row is a loop
    loop_repeats: int = Field(default=4, ge=2)
    # Whisper on the cpu workers (``lyre models pull`` fetches it): over ``max_wer`` of the
    # spoken words missed, the take fails
    transcribe: bool = False
    whisper_model: str = "Systran/faster-whisper-base.en"
    max_wer: float = Field(default=0.35, gt=0)


class FaultSettings(BaseModel):
    """Faults on demand: the engine misbehaves on ``rate`` of first takes, chosen by seed
    (``shared.checks.faults``); for proving the checks, never for production."""

    rate: float = Field(default=0.0, ge=0, le=1)
    kinds: list[FaultKind] = Field(default_factory=lambda: list(FAULT_KINDS))
