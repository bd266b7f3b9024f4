"""What the model is asked to say for a span of the text: Markdown links and emphasis read as
their words, emotive tags Orpheus can voice kept, any other ``<tag>`` removed and counted."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from shared.text.controls import MARKER
from shared.text.verbalizer import verbalize
from shared.text.voices import EMOTIVE_TAGS

_TAG = re.compile(r"<([A-Za-z_]+)>")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*`]+")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?…])")


def spoken_text(source: str, removed: Counter[str]) -> str:
    """What the model is asked to say for a source span; counts the tags it cannot voice."""

    def keep_tag(match: re.Match[str]) -> str:
        tag = match.group(1).lower()
        if tag in EMOTIVE_TAGS:
            return f"<{tag}>"
        removed[tag] += 1
        return " "

    text = _MD_LINK.sub(r"\1", MARKER.sub(" ", source))
    text = _TAG.sub(keep_tag, text)
    text = _MARKUP.sub("", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


def is_speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in _TAG.sub("", text))


@lru_cache(maxsize=64)  # the packer measures again each piece the cutter just measured
def spoken_size(source: str) -> int:
    """The length of what the engine is asked to say for a source span (before a lexicon):
    the chunker's measure."""
    return len(verbalize(spoken_text(source, Counter())))
