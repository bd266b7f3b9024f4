"""SSML in: a document whose root is ``<speak>`` (W3C SSML 1.1, the elements Polly, Azure and
Google share), read into the text the chunker reads.

Read: ``p`` (a paragraph), ``s`` (a sentence), ``sub`` (its ``alias`` is said), ``say-as``
(``shared.text.say_as``), ``break`` (``time``, or ``strength`` as the stitch's pause at that
boundary), ``prosody rate`` (the span's audio at that rate), ``mark`` (its time in the
chapter list), ``emphasis`` (its words said; the level noted in the warnings, no engine
voices it), ``voice`` (a Lyre voice or one of OpenAI's names: a speaker turn), ``lang`` (its
words read; noted). Refused with the element's line and column: ``phoneme`` and ``audio`` (no
engine of Lyre's can honour them; a lexicon respells a word), any other element or attribute
(``prosody``'s pitch and volume among them), and SSML that is not well-formed. A DTD or an
entity is refused before it is read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from xml.parsers import expat

from shared.text.controls import MOST, Control, Mark, Pause, Rate, marker
from shared.text.epub_archive import BookRefused
from shared.text.say_as import SayAsRefused, say_as
from shared.text.structure import JOB_VOICE, Boundary
from shared.text.voices import find_voice

SSML_START = re.compile(
    rb"\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>\s*)*<speak[\s>/]", re.S
)
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?…])")

_ATTRIBUTES: dict[str, set[str]] = {
    "speak": {"version", "xmlns", "xml:lang", "xmlns:xsi", "xsi:schemaLocation"},
    "p": {"xml:lang"},
    "s": {"xml:lang"},
    "sub": {"alias"},
    "say-as": {"interpret-as", "format", "detail"},
    "emphasis": {"level"},
    "voice": {"name", "gender", "xml:lang"},
    "lang": {"xml:lang"},
    "break": {"time", "strength"},
    "prosody": {"rate"},
    "mark": {"name"},
}
# As Polly's documentation has them: none and x-weak no pause, weak and medium a comma's.
_STRENGTHS = {
    "none": Pause(0.0, Boundary.WORD),
    "x-weak": Pause(0.0, Boundary.WORD),
    "weak": Pause(None, Boundary.CLAUSE),
    "medium": Pause(None, Boundary.CLAUSE),
    "strong": Pause(None, Boundary.SENTENCE),
    "x-strong": Pause(None, Boundary.PARAGRAPH),
}
_RATES = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "default": 1.0, "fast": 1.2, "x-fast": 1.4}
MOST_PAUSE_S = 60.0
SLOWEST, FASTEST = 0.5, 2.0
_REQUIRED = {"sub": "alias", "say-as": "interpret-as", "mark": "name", "voice": "name"}
_CANNOT = {
    "phoneme": "no engine of Lyre's can say a phoneme string: respell the word in a lexicon",
    "audio": "Lyre does not mix recorded audio into speech",
}


class SsmlRefused(BookRefused):
    """The SSML cannot be read as written."""


@dataclass
class _Reading:
    paragraphs: list[list[str]] = field(default_factory=lambda: [[]])
    voices: list[str | None] = field(default_factory=lambda: [None])
    stack: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    noted: Counter[str] = field(default_factory=Counter)
    controls: list[Control] = field(default_factory=list)
    rates: list[float] = field(default_factory=lambda: [1.0])

    def control(self, parser: expat.XMLParserType, control: Control) -> None:
        if len(self.controls) >= MOST:
            _refuse(parser, f"more than {MOST} breaks, rates and marks in one document")
        self.paragraphs[-1].append(f" {marker(len(self.controls))} ")
        self.controls.append(control)

    def new_paragraph(self, voice: str | None = None) -> None:
        if any(part.strip() for part in self.paragraphs[-1]):
            self.paragraphs.append([])
            self.voices.append(voice)
        else:
            self.voices[-1] = voice

    @property
    def voice(self) -> str | None:
        return next((attrs["name"] for tag, attrs in reversed(self.stack) if tag == "voice"), None)


def is_ssml(data: bytes) -> bool:
    return SSML_START.match(data) is not None


def read_ssml(text: str) -> tuple[str, tuple[str, ...], tuple[Control, ...]]:
    """The text the chunker reads for an SSML document, the warnings of what was noted, and
    the controls its markers stand for."""
    reading = _Reading()
    parser = expat.ParserCreate(namespace_separator=None)
    parser.StartDoctypeDeclHandler = lambda *_: _refuse(parser, "a DTD is not read")
    parser.EntityDeclHandler = lambda *_: _refuse(parser, "an entity declaration is not read")
    parser.StartElementHandler = lambda tag, attrs: _start(parser, reading, tag, attrs)
    parser.EndElementHandler = lambda tag: _end(parser, reading)
    parser.CharacterDataHandler = lambda data: _text(reading, data)
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        line, column = exc.lineno, exc.offset + 1
        reason = expat.errors.messages[exc.code]
        raise SsmlRefused(f"SSML line {line}, column {column}: {reason}") from None
    paragraphs, voiced = [], False
    for parts, voice in zip(reading.paragraphs, reading.voices, strict=True):
        said = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join("".join(parts).replace(_SEP, " ").split()))
        if said:
            label = f"{voice}: " if voice else JOB_VOICE if voiced else ""
            paragraphs.append(label + said)
            voiced = voiced or voice is not None
    return "\n\n".join(paragraphs), tuple(_warnings(reading.noted)), tuple(reading.controls)


def _refuse(parser: expat.XMLParserType, reason: str) -> None:
    line, column = parser.CurrentLineNumber, parser.CurrentColumnNumber + 1
    raise SsmlRefused(f"SSML line {line}, column {column}: {reason}")


def _start(parser: expat.XMLParserType, reading: _Reading, tag: str, attrs: dict) -> None:
    name = tag.removeprefix("http://www.w3.org/2001/10/synthesis ")
    _check(parser, reading, name, attrs)
    at = f"{parser.CurrentLineNumber}, column {parser.CurrentColumnNumber + 1}"
    reading.stack.append((name, {**attrs, "_at": at, **_open(parser, reading, name, attrs)}))
    reading.paragraphs[-1].append(_SEP)


def _check(parser: expat.XMLParserType, reading: _Reading, name: str, attrs: dict) -> None:
    if name in _CANNOT:
        _refuse(parser, f"<{name}>: {_CANNOT[name]}")
    if name not in _ATTRIBUTES or (name == "speak") != (not reading.stack):
        where = "the root" if not reading.stack else "an element"
        _refuse(parser, f"<{name}> is not an SSML element Lyre reads as {where}")
    parent = reading.stack[-1][0] if reading.stack else None
    if parent in ("sub", "say-as"):
        _refuse(parser, f"<{name}> inside <{parent}>, which holds its words alone")
    if name in _REQUIRED and not attrs.get(_REQUIRED[name], "").strip():
        _refuse(parser, f"<{name}> needs its {_REQUIRED[name]!r}")
    declared = {a for a in attrs if name == "speak" and a.startswith("xmlns:")}  # Azure's mstts
    unknown = sorted(set(attrs) - _ATTRIBUTES[name] - declared)
    if unknown:
        _refuse(parser, f"<{name}> has no attribute {unknown[0]!r} that Lyre reads")


def _open(parser: expat.XMLParserType, reading: _Reading, name: str, attrs: dict) -> dict[str, str]:
    """What an element does where it starts; what its end needs to know."""
    if name == "voice":
        voice = find_voice(attrs.get("name", ""))
        if voice is None:
            _refuse(parser, f"<voice name={attrs.get('name', '')!r}>: not a Lyre or OpenAI voice")
        reading.new_paragraph(voice)
        return {"name": voice or ""}
    if name == "p":
        reading.new_paragraph(reading.voice)
    elif name in ("emphasis", "lang"):
        noted = attrs.get("level", "moderate") if name == "emphasis" else attrs.get("xml:lang")
        reading.noted[f"{name} {noted}"] += 1
    elif name == "break":
        reading.control(parser, _pause(parser, attrs))
    elif name == "mark":
        reading.control(parser, Mark(attrs.get("name", "")))
    elif name == "prosody":
        reading.rates.append(_rate(parser, attrs.get("rate", "medium")))
        reading.control(parser, Rate(reading.rates[-1]))
    return {}


_SEP = "\x00"  # where an element began or ended: its text starts a word of its own


def _end(parser: expat.XMLParserType, reading: _Reading) -> None:
    name, attrs = reading.stack.pop()
    parts = reading.paragraphs[-1]
    if name == "prosody":
        reading.rates.pop()
        reading.control(parser, Rate(reading.rates[-1]))
    if name in ("sub", "say-as"):
        start = len(parts) - 1 - parts[::-1].index(_SEP)
        inner = "".join(parts[start + 1 :])
        del parts[start:]
        if name == "sub":
            said = attrs["alias"]
        else:
            try:
                said = say_as(inner, attrs.get("interpret-as", ""), attrs.get("format"))
            except SayAsRefused as exc:
                raise SsmlRefused(f"SSML line {attrs['_at']}: {exc}") from None
        parts.append(f" {said} ")
        return
    if name == "s":
        body = "".join(parts).replace(_SEP, "").rstrip()
        if body and body[-1] not in ".!?…":
            parts.append(".")
        parts.append(" ")
    elif name in ("p", "voice"):
        reading.new_paragraph(reading.voice)
    parts.append(_SEP)


def _pause(parser: expat.XMLParserType, attrs: dict[str, str]) -> Pause:
    """A break of its ``time`` ("3s", "500ms"), else of its ``strength`` (medium: a comma's)."""
    if "time" in attrs:
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", attrs["time"])
        seconds = float(found.group(1)) / (1000 if found.group(2) == "ms" else 1) if found else -1
        if not 0 <= seconds <= MOST_PAUSE_S:
            _refuse(parser, f"<break time={attrs['time']!r}>: a time from 0 to 60s, or in ms")
        return Pause(seconds, _STRENGTHS[attrs.get("strength", "medium")].strength)
    strength = attrs.get("strength", "medium")
    if strength not in _STRENGTHS:
        _refuse(parser, f"<break strength={strength!r}>: one of {', '.join(_STRENGTHS)}")
    return _STRENGTHS[strength]


def _rate(parser: expat.XMLParserType, written: str) -> float:
    """A rate as a word ("slow"), a percentage of the voice's ("80%", "+20%") or a number."""
    value = _RATES.get(written.strip().lower())
    relative = re.fullmatch(r"\s*([+-])?(\d+(?:\.\d+)?)(%?)\s*", written)
    if value is None and relative:
        sign, number, percent = relative.groups()
        amount = float(number) / (100 if percent else 1)
        value = 1 + amount if sign == "+" else 1 - amount if sign == "-" else amount
    if value is None or not SLOWEST <= value <= FASTEST:
        _refuse(parser, f"<prosody rate={written!r}>: a rate from 50% to 200% of the voice's")
    assert value is not None
    return value


def _text(reading: _Reading, data: str) -> None:
    reading.paragraphs[-1].append(data)


def _warnings(noted: Counter[str]) -> list[str]:
    return [
        f"SSML {what} read {count} time(s) as plain words: no engine of Lyre's voices it"
        for what, count in sorted(noted.items())
        if count
    ]
