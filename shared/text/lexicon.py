"""Pronunciation lexicons: a word (or phrase) and how to say it, respelled.

Rules, as the README states them:

- Whole words only: ``Siobhan`` is not replaced inside ``Siobhans`` or ``O'Siobhan``.
- An entry written in lower case matches any case (``gif`` matches ``GIF`` and ``Gif``); an
  entry with a capital letter matches only that spelling (``US`` is not ``us``).
- A lower-case entry that matches a capitalised word (at a sentence start) has its respelling
  capitalised too.
- Longer entries win over the shorter ones they contain (``New York`` before ``York``).
- A request's entries override the tenant's for the same word.

The respelling is what the engine says; captions keep the author's words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

MAX_ENTRIES = 5000
MAX_LENGTH = 100


class LexiconRefused(ValueError):
    """The lexicon is not a mapping of words to respellings within the limits."""


def merge(tenant: Mapping[str, str] | None, request: Mapping[str, str] | None) -> dict[str, str]:
    entries = {**(tenant or {}), **(request or {})}
    check(entries)
    return entries


def check(entries: Mapping[str, str]) -> None:
    if len(entries) > MAX_ENTRIES:
        raise LexiconRefused(f"a lexicon has at most {MAX_ENTRIES} entries")
    for word, say in entries.items():
        if not isinstance(word, str) or not isinstance(say, str):
            raise LexiconRefused("a lexicon maps words to respellings, both strings")
        if not word.strip() or not say.strip():
            raise LexiconRefused("a lexicon entry has an empty word or respelling")
        if len(word) > MAX_LENGTH or len(say) > MAX_LENGTH:
            raise LexiconRefused(f"a lexicon entry is longer than {MAX_LENGTH} characters")


class Lexicon:
    def __init__(self, entries: Mapping[str, str]) -> None:
        check(entries)
        self.entries = {" ".join(w.split()): " ".join(s.split()) for w, s in entries.items()}
        self._folded = {w.casefold(): w for w in self.entries if w == w.lower()}
        words = sorted(self.entries, key=len, reverse=True)
        alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in words)
        self._pattern = re.compile(rf"(?<![\w'’])(?:{alternatives})(?![\w'’])", re.IGNORECASE)
        self.applied: Counter[str] = Counter()

    def apply(self, text: str, held: list[str] | None = None) -> str:
        """``text`` with every entry replaced by its respelling; counts what it applied.
        With ``held``, each respelling is appended to it and a private-use character stands
        in its place (the n-th held one: U+E000 + n), so that later passes leave it alone."""
        if not self.entries:
            return text
        return self._pattern.sub(lambda match: self._replace(match, held), text)

    def _replace(self, match: re.Match[str], held: list[str] | None) -> str:
        found = " ".join(match.group().split())
        word = found if found in self.entries else self._folded.get(found.casefold())
        if word is None:  # a case-sensitive entry matched in another case: leave it
            return match.group()
        self.applied[word] += 1
        say = self.entries[word]
        if word == word.lower() and found[:1].isupper():
            say = say[:1].upper() + say[1:]
        if held is None:
            return say
        held.append(say)
        return chr(0xE000 + len(held) - 1)
