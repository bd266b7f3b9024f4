"""Web addresses, email addresses and telephone numbers as a reader says them: "w w w dot
example dot com slash about", "jane dot doe at example dot com", "five five five, oh one
eight eight". The scheme (``https://``) is not read: nobody says it."""

from __future__ import annotations

import re

from shared.text.numbers import digits

TLDS = (
    "com|org|net|edu|gov|mil|int|io|co|uk|us|ca|au|nz|ie|de|fr|es|it|nl|eu|info|biz|ai|dev"
    "|app|ly|me|tv|fm"
)
URL = (
    rf"(?:https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{TLDS})(?![\w-])"
    r"(?:/[\w\-./?=&%#~+]*)?"
)
EMAIL = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
TELEPHONE = (
    r"\+\d{1,3}(?:[ .-]\d{1,6}){2,4}(?!\d)"
    r"|(?:\+?1[ .-])?(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}(?!\d)"
    r"|(?<![\d.-])\d{3}-\d{4}(?![\d-])"
)

_SEPARATORS = {
    ".": "dot", "/": "slash", "-": "dash", "_": "underscore", "@": "at", "+": "plus",
    "?": "question mark", "=": "equals", "&": "and", "#": "hash", "~": "tilde", "%": "percent",
    ":": "colon",
}  # fmt: skip
_PIECE = re.compile(r"[A-Za-z]+|\d+|.")
_VOWEL = re.compile(r"[aeiouy]", re.IGNORECASE)
_TRAILING = re.compile(r"[.,;:!?)/]+$")


def say_url(text: str) -> str:
    """A web address without its scheme, piece by piece (and the full stop after it kept)."""
    address, tail = _split_tail(text)
    address = re.sub(r"^https?://", "", address)
    return _pieces(address) + tail


def say_email(text: str) -> str:
    return _pieces(text)


def say_telephone(text: str) -> str:
    """Each group of digits by name, "oh" for zero, the groups apart; "plus" before a country
    code."""
    groups = re.findall(r"\d+", text)
    said = ", ".join(digits(group, zero="oh") for group in groups)
    return ("plus " + said) if text.startswith("+") else said


def _split_tail(text: str) -> tuple[str, str]:
    tail = _TRAILING.search(text)
    if tail is None:
        return text, ""
    kept = tail.group().replace("/", "")
    return text[: tail.start()], kept


def _pieces(text: str) -> str:
    words = []
    for piece in _PIECE.findall(text):
        if piece.isdigit():
            words.append(digits(piece))
        elif piece.isalpha():
            spell = piece.lower() == "www" or (len(piece) <= 4 and not _VOWEL.search(piece))
            words.append(" ".join(piece.lower()) if spell else piece.lower())
        elif piece in _SEPARATORS:
            words.append(_SEPARATORS[piece])
    return " ".join(words)
