"""Abbreviations and Roman numerals as a reader says them, decided by the words around them.

- "St." and "Dr." before a name are Saint and Doctor; after a street's name (a capitalised
  word that does not open the sentence, or a house number) they are Street and Drive.
- "No. 5", "Vol. 2", "p. 7" are spoken as number, volume, page only before a number.
- A Roman numeral after a ruler's name is an ordinal ("Henry VIII": Henry the eighth); after
  a word that counts ("World War II", "Chapter XIV", "Part III") it is a cardinal. "I" alone
  is a numeral only after a ruler's name or "World War": otherwise it is the pronoun.
"""

from __future__ import annotations

import re

from shared.text.numbers import cardinal, ordinal, roman_value

# Titles: said as a word wherever they stand before a name.
_TITLES = {
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Messrs.": "Messieurs",
    "Prof.": "Professor", "Capt.": "Captain", "Col.": "Colonel", "Lt.": "Lieutenant",
    "Gen.": "General", "Sgt.": "Sergeant", "Cpl.": "Corporal", "Maj.": "Major",
    "Adm.": "Admiral", "Cmdr.": "Commander", "Rev.": "Reverend", "Hon.": "Honorable",
    "Gov.": "Governor", "Sen.": "Senator", "Rep.": "Representative", "Pres.": "President",
    "Supt.": "Superintendent", "Insp.": "Inspector", "Fr.": "Father", "Mt.": "Mount",
    "Ft.": "Fort", "Pt.": "Point",
}  # fmt: skip
# Said as a word anywhere; those that can end a sentence keep their full stop there.
_WORDS = {
    "approx.": "approximately", "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is",
    "vs.": "versus", "viz.": "namely", "cf.": "compare", "Jr.": "Junior", "Sr.": "Senior",
    "Inc.": "Incorporated", "Ltd.": "Limited", "Co.": "Company", "Corp.": "Corporation",
    "Bros.": "Brothers", "Ave.": "Avenue", "Rd.": "Road", "Blvd.": "Boulevard",
    "Ln.": "Lane", "Sq.": "Square", "Pl.": "Place", "Hwy.": "Highway", "Esq.": "Esquire",
    "dept.": "department", "Dept.": "Department", "Univ.": "University", "misc.": "miscellaneous",
}  # fmt: skip
# Said as a word before a number only ("No. 5"; "No." alone is the word no).
_BEFORE_NUMBER = {
    "No.": "number", "no.": "number", "Nos.": "numbers", "Vol.": "volume", "vol.": "volume",
    "Vols.": "volumes", "p.": "page", "pp.": "pages", "Ch.": "chapter", "ch.": "chapter",
    "Fig.": "figure", "fig.": "figure", "Eq.": "equation", "Art.": "article",
    "Sec.": "section", "Ex.": "example", "Op.": "opus", "Apt.": "apartment",
    "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Jun.": "June",
    "Jul.": "July", "Aug.": "August", "Sep.": "September", "Sept.": "September",
    "Oct.": "October", "Nov.": "November", "Dec.": "December",
}  # fmt: skip
# Before a name, after a street's name.
_PLACE_OR_TITLE = {"St.": ("Saint", "Street"), "Dr.": ("Doctor", "Drive")}

_RULERS = frozenset(
    """Alexander Alfonso Amadeus Anne Benedict Boniface Carlos Catherine Charles Christian
    Clement Constantine David Edmund Edward Elizabeth Ferdinand Francis Frederick George
    Gregory Gustav Gustavus Harald Henry Innocent Isabella Ivan James Joanna John Julius Leo
    Leopold Louis Ludwig Malcolm Mary Maximilian Mehmed Napoleon Nicholas Olaf Otto Paul
    Peter Philip Pius Ptolemy Ramesses Richard Robert Rudolf Selim Sixtus Stephen Suleiman
    Urban Victor Wilhelm William""".split()
)
_COUNTING = frozenset(
    """War Chapter Part Book Volume Act Scene Section Article Appendix Title Bowl Phase
    Stage Type Class Grade Level Category Canto Psalm Lesson Unit Round Apollo Vatican
    Star Episode Mark Series Division League Tier Schedule Annex Olympiad""".split()
)

_NAME = r"[A-Z\ue000-\uf8ff][\w'’\ue000-\uf8ff-]*"
_KNOWN = sorted({*_TITLES, *_WORDS, *_BEFORE_NUMBER, *_PLACE_OR_TITLE}, key=len, reverse=True)
_TOKEN = re.compile(
    r"(?<=\s)(?P<roman>[IVXLCDM]+)(?=(?:['’]s)?(?:[\s,;:.!?)\"”]|$))"
    rf"|(?<![\w.])(?P<abbr>{'|'.join(map(re.escape, _KNOWN))})(?!\w)"
)
_NEXT_NAME = re.compile(rf"\s+{_NAME}")
_NEXT_NUMBER = re.compile(r"\s*\d")
_PREVIOUS_WORD = re.compile(r"(\S+)\s+$")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(]\s*|\n\s*)$")


def expand_abbreviations(text: str) -> str:
    """``text`` with its abbreviations and Roman numerals written as a reader says them."""
    return _TOKEN.sub(lambda match: _expand(text, match), text)


def _expand(text: str, match: re.Match[str]) -> str:
    token = match.group()
    before, after = text[: match.start()], text[match.end() :]
    if match.group("roman"):
        return _roman(token, before)
    if token in _PLACE_OR_TITLE:
        title, place = _PLACE_OR_TITLE[token]
        return place + _stop(after) if _after_a_place(before) else title
    if token in _TITLES and _NEXT_NAME.match(after):
        return _TITLES[token]
    if token in _BEFORE_NUMBER and _NEXT_NUMBER.match(after):
        return _BEFORE_NUMBER[token]
    if token in _WORDS:
        return _WORDS[token] + _stop(after)
    return token


def _stop(after: str) -> str:
    """The full stop an abbreviation at the end of a sentence also stood for."""
    rest = after.lstrip(" ")
    return "." if not rest or rest[0] == "\n" or (rest[0].isupper() and after[:1] == " ") else ""


def _after_a_place(before: str) -> bool:
    previous = _PREVIOUS_WORD.search(before)
    if previous is None:
        return False
    word = previous.group(1)
    numbered = re.fullmatch(r"\d+(?:st|nd|rd|th)", word) is not None  # "5th St.", "42nd St."
    opening = _SENTENCE_START.search(before[: previous.start(1)]) is not None
    named = word[:1].isupper() and not opening and word.rstrip(".") not in _TITLES_BARE
    return numbered or named


_TITLES_BARE = {title.rstrip(".") for title in _TITLES}


def _roman(token: str, before: str) -> str:
    value = roman_value(token)
    previous = _PREVIOUS_WORD.search(before)
    word = previous.group(1).strip('"“(') if previous else ""
    if value is None or not word:
        return token
    if word in _RULERS:
        return f"the {ordinal(value)}"
    if word in _COUNTING and (len(token) > 1 or word == "War"):
        return cardinal(value)
    return token
