"""Text as the chunker expects it: Unicode NFKC, one kind of newline and space, no control or
zero-width characters, at most one blank line in a row."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_RUN = re.compile(r"\n{3,}")
# "2½" would be "21" + U+2044 + "2" after NFKC: the fraction stands apart, with a "/".
_VULGAR_FRACTION = re.compile(r"(\d?)([\u00bc-\u00be\u2150-\u215e])")


def normalize_text(raw: str) -> str:
    """NFKC (fractions such as ½ as 1/2), one kind of newline and space, no control
    characters, at most one blank line."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = _VULGAR_FRACTION.sub(_fraction, text)
    text = unicodedata.normalize("NFKC", text).replace("\u2044", "/")
    text = _CONTROL.sub("", text)
    text = _INLINE_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


def _fraction(match: re.Match[str]) -> str:
    whole, vulgar = match.groups()
    said = unicodedata.normalize("NFKC", vulgar).replace("\u2044", "/")
    return f"{whole} {said}" if whole else said
