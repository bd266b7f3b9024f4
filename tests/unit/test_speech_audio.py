"""Speech for a listener waiting on it: the time-stretch keeps the pitch, and every one of
OpenAI's formats is encoded as the audio comes, read back by a reader that is not FFmpeg."""

from __future__ import annotations

import io

import av
import mutagen.aac
import mutagen.mp3
import mutagen.oggopus
import numpy as np
import pytest
import soundfile

from shared.audio import SAMPLE_RATE
from shared.audio.encode import ENCODINGS, SPEECH_FORMATS
from shared.audio.stream import StreamEncoder
from shared.audio.tempo import TimeStretch, atempo_factors
from shared.text.voices import OPENAI_VOICES, VOICES, find_voice

SECOND = SAMPLE_RATE


def tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def pitch(pcm: np.ndarray) -> float:
    """Upward zero crossings a second: the frequency of a pure tone."""
    middle = pcm[len(pcm) // 10 : -len(pcm) // 10]
    rising = np.diff(np.signbit(middle).astype(np.int8)) < 0  # from negative to not
    return np.sum(rising) / (len(middle) / SAMPLE_RATE)


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.5, 2.0, 4.0])
def test_the_time_stretch_changes_the_length_and_keeps_the_pitch(speed):
    stretch = TimeStretch(speed)
    pcm = tone(4.0)
    out = [stretch.process(pcm[i : i + 30_000]) for i in range(0, len(pcm), 30_000)]
    whole = np.concatenate([*out, stretch.flush()])
    assert abs(len(whole) - len(pcm) / speed) < 0.01 * len(pcm) / speed + 2048
    assert abs(pitch(whole) - 220) < 3


def test_the_time_stretch_gives_a_chunk_out_as_it_goes_in_not_a_chunk_late():
    stretch = TimeStretch(1.5)
    first = stretch.process(tone(5.0))
    assert len(first) > 5.0 * SECOND / 1.5 - 0.2 * SECOND  # at most a fifth of a second held


def test_speeds_outside_atempos_blending_range_are_chains_within_it():
    assert atempo_factors(4.0) == [2.0, 2.0] and atempo_factors(0.25) == [0.5, 0.5]
    assert atempo_factors(1.25) == [1.25]
    with pytest.raises(ValueError, match="outside"):
        atempo_factors(5.0)


def duration_read_by_another(fmt: str, data: bytes) -> tuple[float, int]:
    """(seconds, sample rate) as a reader other than FFmpeg, the writer, reads the file."""
    if fmt in ("wav", "flac", "opus"):  # libsndfile
        samples, rate = soundfile.read(io.BytesIO(data))
        return len(samples) / rate, rate
    info = (mutagen.mp3.MP3 if fmt == "mp3" else mutagen.aac.AAC)(io.BytesIO(data)).info
    return info.length, info.sample_rate


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_every_format_streams_as_the_audio_comes_and_reads_back_whole(fmt):
    encoder = StreamEncoder(fmt, 64)
    parts = [encoder.write(tone(1.0)) for _ in range(3)] + [encoder.close()]
    data = b"".join(parts)
    if ENCODINGS[fmt].streams:
        assert all(parts[:3]), "bytes go out with each second written"
    else:
        assert parts[:3] == [b"", b"", b""] and parts[3]  # FLAC: whole, its length in it
    if fmt == "pcm":
        assert len(data) == 3 * SECOND * 2  # 16-bit samples
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768
        assert abs(pitch(samples) - 220) < 3
        return
    seconds, rate = duration_read_by_another(fmt, data)
    assert rate == SAMPLE_RATE
    assert abs(seconds - 3.0) < 0.1


def test_speed_applies_to_the_encoded_file():
    encoder = StreamEncoder("wav", speed=2.0)
    data = encoder.write(tone(4.0)) + encoder.close()
    seconds, _ = duration_read_by_another("wav", data)
    assert abs(seconds - 2.0) < 0.05


def test_opus_is_ogg_opus_and_aac_is_adts():
    opus = StreamEncoder("opus")
    data = opus.write(tone(1.0)) + opus.close()
    assert data[:4] == b"OggS" and mutagen.oggopus.OggOpus(io.BytesIO(data)).info.length > 0.9
    aac = StreamEncoder("aac")
    data = aac.write(tone(1.0)) + aac.close()
    assert data[0] == 0xFF and data[1] & 0xF0 == 0xF0  # an ADTS frame's sync word
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name == "aac"


def test_openai_voice_names_speak_with_lyre_voices():
    assert find_voice("alloy") == "tara" and find_voice("Onyx") == "leo"
    assert find_voice("zoe") == "zoe" and find_voice("bob") is None
    assert set(OPENAI_VOICES.values()) <= set(VOICES)
    assert not set(OPENAI_VOICES) & set(VOICES)
