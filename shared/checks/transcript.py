"""The optional check of what a take says: Whisper transcribes the chunk's audio on the CPU and
the words are compared with the text the engine was asked to speak (word error rate, after
Whisper's English normaliser, so that "Dr." and "doctor", "25" and "twenty-five" agree).

Why: a language model that speaks can skip a clause, repeat one, or trail off into babble while
its codes still look like speech of the right length, which the cheaper checks (pace, loops,
silence) do not all see. Only a listener does, and Whisper is the listener that runs here.

Its cost: Whisper's encoder always reads a 30 s window, so a chunk costs one encoder pass
whatever its length, plus one decoder step per token of its transcript. Whisper base.en, int8,
one core of the development machine (AMD EPYC): about 235 CPU seconds per audio hour in 27 s
chunks, 510 to 560 in 8 s chunks, and 0.1 to 0.2 s to load (``bench/transcribe.py`` prints
the figures for any CPU). Hence off by default (``ChecksSettings.transcribe``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from scipy.signal import resample_poly

from shared.audio import SAMPLE_RATE
from shared.checks.speech import Verdict
from shared.speech.weights import ModelNotFound, locate_model

if TYPE_CHECKING:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

WHISPER_RATE: Final = 16_000  # every Whisper model hears 16 kHz audio
MODEL_FILE: Final = "model.bin"  # CTranslate2's weights, beside config.json and tokenizer.json

# How faster-whisper's ``WhisperModel.transcribe`` (1.2.1) is called: English, greedy, one
# temperature, so the same audio always gives the same words (fallback sampling at higher
# temperatures would make a take pass or fail by chance); each chunk on its own, no timestamps
# (nothing here reads them, and they cost tokens); no VAD, which would cut the very pauses
# and trailing words the check is there to hear.
DECODE_OPTIONS: Final[dict[str, Any]] = {
    "language": "en",
    "task": "transcribe",
    "beam_size": 1,
    "temperature": 0.0,
    "condition_on_previous_text": False,
    "without_timestamps": True,
    "vad_filter": False,
}

# British spellings to American ones, as Whisper's normaliser maps them. Its full list (1,739
# words) is openai/whisper's whisper/normalizers/english.json, which transformers' tokenizer
# reads from a model repository's ``normalizer.json`` (transformers 5.25.0,
# transformers/models/whisper/tokenization_whisper.py, ``normalizer_file``); transformers does
# not ship it, and the CTranslate2 conversions faster-whisper loads carry none. Here are 48 of
# its pairs, British spellings that stories use often, as english.json (openai/whisper c0d2f62)
# has them: a book's "colour" is not counted wrong when Whisper writes "color".
SPELLINGS: Final[dict[str, str]] = {
    "colour": "color",
    "colours": "colors",
    "coloured": "colored",
    "colourful": "colorful",
    "favour": "favor",
    "favours": "favors",
    "favourite": "favorite",
    "honour": "honor",
    "honoured": "honored",
    "honourable": "honorable",
    "labour": "labor",
    "humour": "humor",
    "harbour": "harbor",
    "rumour": "rumor",
    "neighbour": "neighbor",
    "neighbours": "neighbors",
    "neighbourhood": "neighborhood",
    "vigour": "vigor",
    "odour": "odor",
    "parlour": "parlor",
    "splendour": "splendor",
    "endeavour": "endeavor",
    "savour": "savor",
    "behaviour": "behavior",
    "armour": "armor",
    "grey": "gray",
    "centre": "center",
    "centres": "centers",
    "theatre": "theater",
    "metre": "meter",
    "metres": "meters",
    "realise": "realize",
    "realised": "realized",
    "recognise": "recognize",
    "recognised": "recognized",
    "organise": "organize",
    "organised": "organized",
    "apologise": "apologize",
    "apologised": "apologized",
    "travelled": "traveled",
    "travelling": "traveling",
    "defence": "defense",
    "offence": "offense",
    "licence": "license",
    "practise": "practice",
    "programme": "program",
    "jewellery": "jewelry",
    "judgement": "judgment",
}


class Transcriber:
    """Whisper (faster-whisper on CTranslate2) on the CPU, loaded once per worker process."""

    def __init__(self, model: Any) -> None:
        self.model = model  # a faster_whisper.WhisperModel

    @classmethod
    def load(cls, model: str, cpu_threads: int = 1, compute_type: str = "int8") -> Transcriber:
        """Load a CTranslate2 Whisper from a local directory, or a hub id from the local cache
        only (``lyre models pull`` fetches it): a worker never downloads mid-job."""
        directory = _converted_model(locate_model(model), model)
        from faster_whisper import WhisperModel  # only processes that transcribe pay for it

        whisper = WhisperModel(
            directory, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
        )
        return cls(whisper)

    def transcribe(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
        """What Whisper hears in ``pcm`` (float32 mono in [-1, 1] at ``sample_rate``)."""
        segments, _ = self.model.transcribe(to_whisper_rate(pcm, sample_rate), **DECODE_OPTIONS)
        return "".join(segment.text for segment in segments).strip()


@functools.cache
def transcriber(model: str) -> Transcriber:
    """The process's Whisper, loaded at its first take."""
    return Transcriber.load(model)


def check_words(transcriber: Transcriber, pcm: np.ndarray, text: str, max_wer: float) -> Verdict:
    """A take fails whose transcript misses more than ``max_wer`` of its text's words."""
    heard = transcriber.transcribe(pcm)
    wer = word_errors(text, heard)
    if wer <= max_wer:
        return Verdict()
    why = f"{wer:.0%} of the words missed or wrong, over {max_wer:.0%} (heard {heard[:80]!r})"
    return Verdict((f"words: {why}",), 1 + wer)


def to_whisper_rate(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """``pcm`` resampled to Whisper's 16 kHz (24 kHz: up 2, down 3), as float32."""
    pcm = np.asarray(pcm, dtype=np.float32)
    if sample_rate == WHISPER_RATE:
        return pcm
    common = math.gcd(WHISPER_RATE, sample_rate)
    resampled = resample_poly(pcm, WHISPER_RATE // common, sample_rate // common)
    return np.asarray(resampled, dtype=np.float32)


def word_errors(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference``: words substituted, deleted or
    inserted, over the reference's words, both normalised as Whisper's evaluations are."""
    normalise = _normaliser()
    ref = normalise(reference).split()
    hyp = normalise(hypothesis).split()
    if not ref:
        return 1.0 if hyp else 0.0
    return _edit_distance(ref, hyp) / len(ref)


def pull_transcriber(model: str) -> str:
    """Download a CTranslate2 Whisper into the hub cache, for ``lyre models pull``; return its
    local directory."""
    return _converted_model(locate_model(model, download=True), model)


def _converted_model(directory: str, name: str) -> str:
    """``directory`` if it holds a CTranslate2 model: a transformers Whisper (such as
    openai/whisper-base.en) must be converted first, and saying so beats CTranslate2's error."""
    if not (Path(directory) / MODEL_FILE).is_file():
        raise ModelNotFound(
            f"model {name!r} has no {MODEL_FILE}: not a CTranslate2 Whisper "
            "(name a conversion such as Systran/faster-whisper-base.en, and run "
            "`lyre models pull`)"
        )
    return directory


@functools.cache
def _normaliser() -> EnglishTextNormalizer:
    """Whisper's English normaliser, as transformers has it (built once: it compiles regexes)."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(SPELLINGS)


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance over words, the table kept one row (one reference word) at a time."""
    row = list(range(len(hyp) + 1))  # from no reference words to each start of ``hyp``
    for i, word in enumerate(ref, 1):
        above, row = row, [i]
        for j, heard in enumerate(hyp, 1):
            skipped = above[j] + 1  # the reference word was not said
            added = row[j - 1] + 1  # a word was said that is not in the reference
            said = above[j - 1] + (word != heard)  # said as written, or said wrong
            row.append(min(skipped, added, said))
    return row[-1]
