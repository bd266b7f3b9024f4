"""SSML in: the examples of Google's, Amazon Polly's and Azure's documentation read as they
describe, and every refusal with its line and column."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile

from shared.farm.intake import InputRefused, Submission, take_in
from shared.infra.settings import get_settings
from shared.text.documents import read_document
from shared.text.structure import Boundary
from tests.unit.test_cli import run


def _take(ssml: str):
    return take_in(get_settings(), Submission(data=ssml.encode()))


def _said(ssml: str) -> str:
    return " ".join(line.said for line in _take(ssml).preview())


# https://cloud.google.com/text-to-speech/docs/ssml (the page's first example), whose audio
# Lyre refuses, and the same without it.
GOOGLE = """<speak>
  Here are <say-as interpret-as="characters">SSML</say-as> samples.
  I can pause <break time="3s"/>.
  I can play a sound
  <audio src="https://www.example.com/MY_MP3_FILE.mp3">didn't get your MP3 audio file</audio>.
  I can speak in cardinals. Your number is <say-as interpret-as="cardinal">10</say-as>.
  Or I can speak in ordinals. You are <say-as interpret-as="ordinal">10</say-as> in line.
  Or I can even speak in digits. The digits for ten are <say-as interpret-as="characters">10</say-as>.
  I can also substitute phrases, like the <sub alias="World Wide Web Consortium">W3C</sub>.
  Finally, I can speak a paragraph with two sentences.
  <p><s>This is sentence one.</s><s>This is sentence two.</s></p>
</speak>"""  # noqa: E501


def test_googles_example_is_said_as_its_page_says_and_its_audio_refused_where_it_stands():
    with pytest.raises(InputRefused, match=r"SSML line 5, column 3: <audio>"):
        _take(GOOGLE)
    without = GOOGLE.replace(
        'I can play a sound\n  <audio src="https://www.example.com/MY_MP3_FILE.mp3">'
        "didn't get your MP3 audio file</audio>.\n",
        "",
    )
    intake = _take(without)
    said = " ".join(line.said for line in intake.preview())
    assert said == (
        "Here are S S M L samples. I can pause . I can speak in cardinals. Your number is ten."
        " Or I can speak in ordinals. You are tenth in line. Or I can even speak in digits."
        " The digits for ten are one zero. I can also substitute phrases, like the World Wide"
        " Web Consortium. Finally, I can speak a paragraph with two sentences."
        " This is sentence one. This is sentence two."
    )
    paused = [span for span in intake.chunked.spans if span.pause_s is not None]
    assert [(span.text[:6], span.pause_s) for span in paused] == [(". I ca", 3.0)]


# Polly's speech marks example, https://docs.aws.amazon.com/polly/latest/dg/sp-mks-example2.html:
# its prosody volume is refused; without it, the 300 ms break and the mark are kept.
POLLY_MARKS = (
    '<speak><prosody volume="+20dB">Mary had <break time="300ms"/>a little '
    '<mark name="animal"/>lamb</prosody></speak>'
)


def test_pollys_marks_example_keeps_its_break_and_mark_and_refuses_volume():
    with pytest.raises(
        InputRefused, match=r"line 1, column 8: <prosody> has no attribute 'volume'"
    ):
        _take(POLLY_MARKS)
    spans = _take(POLLY_MARKS.replace(' volume="+20dB"', "")).chunked.spans
    assert [(s.text, s.pause_s, s.marks) for s in spans] == [
        ("Mary had", None, ()),
        ("a little lamb", 0.3, (("animal", 8),)),
    ]


@pytest.mark.parametrize(
    ("ssml", "said"),
    [
        # Polly, https://docs.aws.amazon.com/polly/latest/dg/supportedtags.html (sub), and
        # the values its say-as page, .../say-as-tag.html, gives for each interpret-as
        (
            '<speak>My favorite chemical element is <sub alias="aluminium">Al</sub>,'
            ' but Al prefers <sub alias="magnesium">Mg</sub>.</speak>',
            "My favorite chemical element is aluminium, but Al prefers magnesium.",
        ),
        (
            '<speak><say-as interpret-as="spell-out">hello</say-as></speak>',
            "H E L L O",
        ),
        (
            '<speak>I was born on <say-as interpret-as="date" format="mdy">10/19/1989</say-as>'
            "</speak>",
            "I was born on October nineteenth, nineteen eighty-nine",
        ),
        (
            '<speak>Call <say-as interpret-as="telephone">2025551212</say-as></speak>',
            "Call two oh two five five five one two one two",
        ),
        (
            '<speak><say-as interpret-as="fraction">3/20</say-as> of an inch</speak>',
            "three twentieths of an inch",
        ),
        (
            '<speak><say-as interpret-as="fraction">1+1/2</say-as> cups</speak>',
            "one and a half cups",
        ),
        (
            '<speak>The time is <say-as interpret-as="time">1\'21"</say-as></speak>',
            "The time is one minute twenty-one seconds",
        ),
        # Google, https://cloud.google.com/text-to-speech/docs/ssml (say-as date, detail)
        (
            '<speak><say-as interpret-as="date" format="yyyymmdd" detail="1">1960-09-10'
            "</say-as></speak>",
            "September tenth, nineteen sixty",
        ),
    ],
)
def test_vendor_examples_are_said_as_their_documentation_says(ssml, said):
    assert _said(ssml) == said


# Azure's, https://learn.microsoft.com/en-us/training/modules/transcribe-speech-input-text/
# 6-speech-synthesis-markup: its voices are Azure's own, its express-as Azure's extension, its
# phoneme in Microsoft's SAPI alphabet; each refused where it stands, and the dialogue read
# once they are Lyre's voices and words.
AZURE = """<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis"
                     xmlns:mstts="https://www.w3.org/2001/mstts" xml:lang="en-US">
    <voice name="en-US-AriaNeural">
        <mstts:express-as style="cheerful">
          I say tomato
        </mstts:express-as>
    </voice>
    <voice name="en-US-GuyNeural">
        I say <phoneme alphabet="sapi" ph="t ao m ae t ow"> tomato </phoneme>.
        <break strength="weak"/>Lets call the whole thing off!
    </voice>
</speak>"""


def test_azures_dialogue_is_refused_where_lyre_cannot_follow_it_and_read_once_it_can():
    with pytest.raises(InputRefused, match=r"line 3, column 5: <voice name='en-US-AriaNeural'>"):
        _take(AZURE)
    lyre_voices = AZURE.replace("en-US-AriaNeural", "mia").replace("en-US-GuyNeural", "leo")
    with pytest.raises(InputRefused, match=r"line 4, column 9: <mstts:express-as> is not"):
        _take(lyre_voices)
    plain = re.sub(r"</?mstts:express-as[^>]*>", "", lyre_voices)
    with pytest.raises(InputRefused, match=r"line 9, column 15: <phoneme>"):
        _take(plain)
    spans = _take(re.sub(r"</?phoneme[^>]*>", "", plain)).chunked.spans
    assert [(s.voice, s.text, s.boundary) for s in spans] == [
        ("mia", "I say tomato", Boundary.START),
        ("leo", "I say tomato.", Boundary.SPEAKER),
        ("leo", "Lets call the whole thing off!", Boundary.CLAUSE),  # weak: a comma's pause
    ]


def test_a_voice_is_a_speaker_turn_and_emphasis_and_lang_are_noted():
    intake = _take(
        '<speak><p>Narrator here.</p><voice name="leo">I <emphasis level="strong">am</emphasis>'
        ' Leo.</voice><p><lang xml:lang="fr-FR">Bonjour</lang> again.</p></speak>'
    )
    assert [(s.voice, s.boundary) for s in intake.chunked.spans] == [
        (None, Boundary.START),
        ("leo", Boundary.SPEAKER),
        (None, Boundary.SPEAKER),  # back to the job's voice
    ]
    assert any("emphasis strong" in w for w in intake.warnings)
    assert any("lang fr-FR" in w for w in intake.warnings)


def test_breaks_by_strength_and_prosody_rates_cut_chunks():
    spans = _take(
        '<speak>One <break strength="strong"/>two <prosody rate="slow">three'
        ' <prosody rate="+50%">four</prosody> five</prosody> six.</speak>'
    ).chunked.spans
    assert [(s.text, s.boundary, s.pause_s, s.rate) for s in spans] == [
        ("One", Boundary.START, None, 1.0),
        ("two", Boundary.SENTENCE, None, 1.0),
        ("three", Boundary.WORD, None, 0.8),
        ("four", Boundary.WORD, None, 1.5),
        ("five", Boundary.WORD, None, 0.8),
        ("six.", Boundary.WORD, None, 1.0),
    ]


@pytest.mark.parametrize(
    ("ssml", "message"),
    [
        ("<speak>\n  <p>unclosed\n</speak>", "SSML line 3, column 3: mismatched tag"),
        ('<speak><phoneme alphabet="ipa" ph="t">x</phoneme></speak>', "column 8: <phoneme>"),
        ("<speak>\n<foo>x</foo></speak>", "line 2, column 1: <foo> is not an SSML element"),
        ('<speak><p bar="1">x</p></speak>', "<p> has no attribute 'bar'"),
        ('<speak><voice name="en-US-AvaNeural">x</voice></speak>', "not a Lyre or OpenAI voice"),
        ('<speak><say-as interpret-as="expletive">x</say-as></speak>', "is not one Lyre reads"),
        ('<speak><break time="2 hours"/>x</speak>', "<break time='2 hours'>"),
        ('<speak><prosody rate="400%">x</prosody></speak>', "from 50% to 200%"),
        ('<!DOCTYPE s [<!ENTITY a "b">]><speak>&a;</speak>', "a DTD is not read"),
        ("<speak><sub>W3C</sub></speak>", "<sub> needs its 'alias'"),
        ('<speak><mark name=" "/></speak>', "<mark> needs its 'name'"),
        ('<speak><sub alias="a"><break/>b</sub></speak>', "<break> inside <sub>"),
    ],
)
def test_bad_ssml_is_refused_with_its_line_and_column(ssml, message):
    with pytest.raises(InputRefused, match=message):
        _take(ssml)


def test_ssml_is_told_apart_by_content():
    assert read_document(b'<?xml version="1.0"?>\n<speak>Hi.</speak>').kind == "ssml"
    assert read_document(b"<!-- a note -->\n<speak>Hi.</speak>").kind == "ssml"
    assert read_document(b"Speak <speak> here.").kind == "text"


def _runs(path, threshold=0.01, gap_s=0.3):
    """The speech in a file as (start, end) seconds, read by libsndfile: runs of sound apart
    by more than ``gap_s`` of quiet."""
    samples, rate = soundfile.read(path)
    loud = np.flatnonzero(np.abs(samples) > threshold)
    gaps = np.flatnonzero(np.diff(loud) > gap_s * rate)
    starts = [loud[0], *loud[gaps + 1]]
    ends = [*loud[gaps], loud[-1]]
    return [(a / rate, b / rate) for a, b in zip(starts, ends, strict=True)]


def test_lyre_synth_honours_a_break_a_rate_and_reports_a_mark(tmp_path, capsys, monkeypatch):
    """espeak-ng through the embedded farm: a 2 s break, the same sentence at half speed, and
    a mark's time in chapters.json."""
    source = tmp_path / "script.xml"
    source.write_text(
        "<speak><p>This is a test sentence.</p>"
        '<break time="2s"/><p><prosody rate="50%">This is a test sentence.</prosody></p>'
        '<p>Then <mark name="last"/>the end.</p></speak>'
    )
    monkeypatch.setenv("LYRE_WORK_DIR", str(tmp_path / "work"))
    code, _, err = run(capsys, "synth", str(source), "-o", str(tmp_path / "out.wav"), "--chapters")
    assert code == 0, err
    (normal_start, normal_end), (slow_start, slow_end), (last_start, _) = _runs(
        tmp_path / "out.wav"
    )
    assert 2.0 <= slow_start - normal_end <= 2.2  # the break, what trimming leaves of the edges
    assert 1.8 <= (slow_end - slow_start) / (normal_end - normal_start) <= 2.2
    listing = json.loads((tmp_path / "out-chapters" / "chapters.json").read_text())
    [mark] = listing["marks"]
    assert mark["name"] == "last" and last_start < mark["time_s"] < listing["duration_s"]


def test_lyre_synth_refuses_bad_ssml_in_one_line_with_exit_2_and_previews_good(tmp_path, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("<speak>\n  <prosody pitch='high'>x</prosody>\n</speak>")
    code, _, err = run(capsys, "synth", str(bad), "--dry-run")
    assert code == 2 and "SSML line 2, column 3: <prosody> has no attribute 'pitch'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.xml"
    good.write_text('<speak>One <break time="700ms"/>two <mark name="m"/>three.</speak>')
    code, out, err = run(capsys, "synth", str(good), "--dry-run", "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["said"], x["pause_s"], x["marks"]) for x in lines] == [
        ("One", None, []),
        ("two three.", 0.7, ["m"]),
    ]


def test_a_different_break_is_a_different_job_for_lyre_synths_resume():
    one = _take('<speak>One <break time="1s"/>two.</speak>').content_id()
    assert one == _take('<speak>One <break time="1s"/>two.</speak>').content_id()
    assert one != _take('<speak>One <break time="2s"/>two.</speak>').content_id()
