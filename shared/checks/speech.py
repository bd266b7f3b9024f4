"""The checks on a take as the engine returns it, before anything is decoded: did the model end
on its own, are its codes speech, is it as long as its text, does it loop. They cost a few
milliseconds of numpy per chunk, next to the seconds the engine spent on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.audio.finish import WINDOW_S, loud_windows, trim_silence
from shared.infra.checks_settings import ChecksSettings
from shared.speech.codec import FRAME_TOKENS, SAMPLES_PER_FRAME, SnacCodes
from shared.speech.engine import Speech
from shared.text.chunking import sentences

FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
LONGEST_LOOP_S = 6.0  # the longest phrase looked for as repeated
SHORTEST_LOOP_S = 1.0  # repeats that last less are speech (a drawn-out vowel)


@dataclass(frozen=True)
class Verdict:
    """What the checks found wrong with a take (nothing: it passed) and how far off it is: of
    takes that all fail, the one with the lowest ``score`` is kept."""

    reasons: tuple[str, ...] = ()
    score: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.reasons

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(self.reasons + other.reasons, self.score + other.score)


def spoken_chars(text: str) -> int:
    """The characters a chunk's pace is measured by: its spoken text, whitespace runs as one."""
    return len(" ".join(text.split()))


def pace_range(settings: ChecksSettings, engine: str, voice: str) -> tuple[float, float] | None:
    """Seconds per spoken character the voice speaks at, fewest to most: the voice's own range
    if set, else the engine's; None where neither is known (no pace check)."""
    return settings.pace.get(f"{engine}:{voice}") or settings.pace.get(engine)


def check_speech(
    speech: Speech,
    text: str,
    engine: str,
    voice: str,
    settings: ChecksSettings,
    silence_dbfs: float,
) -> Verdict:
    """Every check that needs no decode, on one take of ``text``; an engine's PCM is measured
    without the silence at its edges (below ``silence_dbfs``), as the stitch will join it."""
    verdict = Verdict()
    if not speech.ended:
        verdict += Verdict((f"no end of speech within its budget of {speech.tokens} tokens",), 1)
    if speech.codes is not None:
        verdict += check_codes(speech.codes, settings.loop_repeats)
        samples = speech.codes.samples
    else:
        pcm = speech.pcm if speech.pcm is not None else np.zeros(0, np.float32)
        samples = len(trim_silence(pcm, silence_dbfs))
        pause = settings.sentence_pause_s.get(engine)
        if pause is not None:
            verdict += check_sentence_pauses(pcm, text, silence_dbfs, pause)
    pace = pace_range(settings, engine, voice)
    if pace is not None:
        verdict += check_pace(samples / SAMPLE_RATE, spoken_chars(text), pace, settings)
    return verdict


def check_sentence_pauses(
    pcm: np.ndarray, text: str, silence_dbfs: float, pause_s: float
) -> Verdict:
    """Fewer pauses of ``pause_s`` or more inside the take than its text has sentence ends: a
    sentence was skipped. For engines that always pause so between sentences (espeak-ng: it
    may pause so at a comma too, so more pauses pass)."""
    loud = np.flatnonzero(loud_windows(pcm, silence_dbfs))
    gaps = (np.diff(loud) - 1) * WINDOW_S if len(loud) > 1 else np.zeros(0)
    pauses = int((gaps >= pause_s - 1e-9).sum())
    ends = len([s for s in sentences(text) if s.strip()]) - 1
    if pauses >= ends:
        return Verdict()
    why = f"{pauses} pauses of {pause_s:.2f} s or more for {ends} sentence ends"
    return Verdict((f"a sentence missing: {why}",), 1 + (ends - pauses) / ends)


def check_pace(
    seconds: float, chars: int, pace: tuple[float, float], settings: ChecksSettings
) -> Verdict:
    """Too short for its characters: words were skipped or it stopped early; too long: it
    looped or babbled. The slack is for a short chunk's breath before and after."""
    under, over = settings.pace_slack_s
    fewest = max(0.0, pace[0] * chars - under)
    most = pace[1] * chars + over
    if seconds < fewest:
        why = f"{seconds:.1f} s for {chars} characters, under the {fewest:.1f} s expected"
        return Verdict((f"too short: {why} (words skipped?)",), 1 + (fewest - seconds) / fewest)
    if seconds > most:
        why = f"{seconds:.1f} s for {chars} characters, over the {most:.1f} s expected"
        return Verdict((f"too long: {why} (a loop or babble?)",), 1 + (seconds - most) / most)
    return Verdict()


def check_codes(codes: SnacCodes, loop_repeats: int) -> Verdict:
    """Codes that are speech: some frames, hardly a token out of place, no frames on repeat."""
    if codes.frames == 0:
        return Verdict(("no speech: not one whole frame of codes",), 2)
    verdict = Verdict()
    if codes.dropped_tokens > FRAME_TOKENS:  # more than a frame's worth is not a slip
        why = f"{codes.dropped_tokens} tokens out of place ({codes.partial_frames} frames lost)"
        verdict += Verdict((f"codes invalid: {why}",), 1)
    loop = longest_loop(codes, loop_repeats)
    if loop is not None:
        period, repeats = loop
        why = f"{period * FRAME_S:.2f} s of frames repeated {repeats} times"
        verdict += Verdict((f"loop: {why}",), 1 + repeats / 10)
    return verdict


def longest_loop(codes: SnacCodes, min_repeats: int) -> tuple[int, int] | None:
    """The period in frames and the repeats of the longest stretch of frames that repeats
    itself exactly at least ``min_repeats`` times and lasts a second or more, if any. Sampled
    speech never repeats its codes frame for frame; a model stuck in a loop does."""
    frames = frame_ids(codes)
    longest: tuple[int, int] | None = None
    covered = 0
    shortest = round(SHORTEST_LOOP_S / FRAME_S)
    for period in range(1, min(round(LONGEST_LOOP_S / FRAME_S), len(frames) // 2) + 1):
        same = frames[period:] == frames[:-period]  # frame i repeats frame i - period
        run = _longest_run(same)
        span = run + period  # frames of the stretch, its first period included
        if span // period >= min_repeats and span >= shortest and span > covered:
            longest, covered = (period, span // period), span
    return longest


def frame_ids(codes: SnacCodes) -> np.ndarray:
    """One integer per frame, equal where the frames' seven codes are."""
    f = codes.frames
    l0, l1, l2 = codes.levels
    table = np.concatenate([l0.reshape(f, 1), l1.reshape(f, 2), l2.reshape(f, 4)], axis=1)
    _, ids = np.unique(table, axis=0, return_inverse=True)
    return ids.reshape(-1)


def _longest_run(flags: np.ndarray) -> int:
    """The length of the longest run of True in ``flags``."""
    if not flags.any():
        return 0
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())
