"""What the engine is asked to say: the text as a careful reader speaks it (English).

Abbreviations and Roman numerals are decided by the words around them
(``shared.text.abbreviations``), then numbers, money, measures, dates, times, addresses
and the like are said in words (``shared.text.semiotic``). A lexicon's entries win: the
words they match are held out of both passes and said as respelled. Every engine gets the
same words; captions, chapter titles and the page keep the author's.
"""

from __future__ import annotations

import re

from shared.text.abbreviations import expand_abbreviations
from shared.text.lexicon import Lexicon
from shared.text.semiotic import say_forms

_HELD = re.compile("[\ue000-\uf8ff]")


def verbalize(text: str, lexicon: Lexicon | None = None) -> str:
    """``text`` as it is spoken, ``lexicon``'s respellings included."""
    held: list[str] = []
    text = _HELD.sub("", text)  # private-use characters say nothing; the held ones are ours
    if lexicon is not None:
        text = lexicon.apply(text, held)
    said = say_forms(expand_abbreviations(text))
    said = " ".join(said.split())
    return _HELD.sub(lambda match: held[ord(match.group()) - 0xE000], said) if held else said
