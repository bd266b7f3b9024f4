"""How a job's files are made: formats, loudness, room tone. A preset is a set of defaults that
a request can override field by field.

- ``acx``: Audible's ACX: one MP3 per chapter at 192 kbps CBR and 44.1 kHz, each chapter
  brought to -20 dBFS RMS with peaks under -3 dBFS, room tone at the head and tail of every file,
  and a report of each requirement (``shared.audio.acx``).
- ``podcast``: an MP3 at -16 LUFS integrated, true peak at most -1 dBTP.
- ``audiobook``: an M4B (AAC, chapters, cover) at -19 LUFS.

Without a preset the programme is in the requested format at the farm's loudness settings.
Loudness is set per chapter: every chapter file meets the target on its own, and the programme
is those chapters in a row, so redoing one chapter changes no other.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field

from shared.audio import SAMPLE_RATE
from shared.audio.encode import AudioFormat
from shared.infra.json_types import JSON_INTEGER
from shared.infra.settings import AudioSettings

PresetName = Literal["acx", "podcast", "audiobook"]
PRESETS: tuple[PresetName, ...] = get_args(PresetName)


class Mastering(BaseModel):
    """Everything that decides the files of a job; stored with the job."""

    format: AudioFormat = "mp3"  # the programme's
    chapter_format: AudioFormat = "mp3"
    bitrate_kbps: int = Field(default=64, ge=8, le=320)
    chapter_bitrate_kbps: int = Field(default=64, ge=8, le=320)
    chapter_rate: int = SAMPLE_RATE
    loudness: Literal["lufs", "rms"] = "lufs"
    target: float = Field(default=-19.0, ge=-40, le=-6)  # LUFS, or dBFS RMS for "rms"
    ceiling_db: float = Field(default=-1.0, ge=-12, le=0)  # true peak (dBTP), or sample peak
    head_s: float = Field(default=0.0, ge=0, le=5)  # room tone before each chapter file
    tail_s: float = Field(default=0.0, ge=0, le=10)  # and after it
    acx_report: bool = False
    read_along: bool = False  # a read-along EPUB (EPUB 3 Media Overlays) beside the audio


Bitrate = Annotated[int, Field(ge=8, le=320), JSON_INTEGER]  # kbps, as a request sets it


class MasteringChoices(BaseModel):
    """What a request may set over its preset's defaults (every field optional)."""

    model_config = {"extra": "forbid"}

    chapter_format: AudioFormat | None = None
    bitrate_kbps: Bitrate | None = None
    chapter_bitrate_kbps: Bitrate | None = None
    target: float | None = Field(
        default=None, ge=-40, le=-6, description="LUFS, or dBFS RMS with the acx preset"
    )
    ceiling_db: float | None = Field(default=None, ge=-12, le=0, description="true peak, dBTP")
    head_s: float | None = Field(default=None, ge=0, le=5, description="room tone before")
    tail_s: float | None = Field(default=None, ge=0, le=10, description="room tone after")
    read_along: bool | None = Field(
        default=None,
        description="Also make a read-along EPUB 3: the book's text (an EPUB's own pages) "
        "with the narration, sentence by sentence (Media Overlays)",
    )


_PRESETS: dict[str, dict[str, Any]] = {
    "acx": {
        "format": "mp3",
        "chapter_format": "mp3",
        "bitrate_kbps": 192,
        "chapter_bitrate_kbps": 192,
        "chapter_rate": 44100,
        "loudness": "rms",
        "target": -20.0,
        # true peak, under ACX's -3 dBFS sample peak by MP3's own overshoot (up to ~1 dB on
        # noise-like audio, measured on the e2e suite's random-weight Orpheus)
        "ceiling_db": -4.5,
        "head_s": 0.75,
        "tail_s": 2.5,
        "acx_report": True,
    },
    "podcast": {"format": "mp3", "bitrate_kbps": 96, "target": -16.0, "ceiling_db": -1.0},
    "audiobook": {"format": "m4b", "target": -19.0, "ceiling_db": -1.0},
}


def mastering(
    preset: PresetName | None, audio: AudioSettings, overrides: dict[str, Any]
) -> Mastering:
    """The farm's defaults, then the preset's, then the request's own choices."""
    base = {
        "target": audio.target_lufs,
        "ceiling_db": audio.true_peak_dbtp,
        "bitrate_kbps": audio.bitrate_kbps,
        "chapter_bitrate_kbps": audio.bitrate_kbps,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    chosen = {**base, **(_PRESETS[preset] if preset else {}), **given}
    if chosen.get("format") == "m4b" and "chapter_format" not in given and not preset:
        chosen["chapter_format"] = "mp3"  # one M4B per chapter is no use to a player
    elif "format" in given and "chapter_format" not in chosen:
        chosen["chapter_format"] = "mp3" if given["format"] == "m4b" else given["format"]
    return Mastering.model_validate(chosen)
