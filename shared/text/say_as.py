"""``<say-as>``: a span said as its ``interpret-as`` names, whatever its written form would
suggest. The names of W3C's say-as note and of Polly's, Azure's and Google's documentation."""

from __future__ import annotations

import re

from shared.text import addresses
from shared.text.numbers import cardinal, decimal, digits, ordinal, year
from shared.text.semiotic import MONTHS, say_forms


class SayAsRefused(ValueError):
    """The span cannot be said as its ``interpret-as`` asks."""


def say_as(text: str, interpret_as: str, date_format: str | None = None) -> str:
    """``text`` said as ``interpret_as`` says (``date_format``: a date's order, "mdy")."""
    kind = interpret_as.lower()
    text = " ".join(text.split())
    try:
        if kind in ("characters", "spell-out", "letters", "verbatim"):
            return " ".join(
                digits(ch) if ch.isdigit() else ch.upper() if ch.isalpha() else ch
                for ch in text
                if not ch.isspace()
            )
        if kind in ("cardinal", "number"):
            return decimal(text.replace(",", "")) if "." in text else cardinal(text)
        if kind == "ordinal":
            return ordinal(re.sub(r"(st|nd|rd|th)$", "", text))
        if kind in ("digits", "number_digit"):
            return digits(text)
        if kind == "telephone":
            return addresses.say_telephone(text)
        if kind == "date":
            return _date(text, date_format or "mdy")
        if kind == "fraction":  # Polly's mixed fraction: 1+1/2
            return say_forms(text.replace("+", " "))
        if kind in ("time", "unit", "address", "currency"):
            return _duration(text) or say_forms(text)
    except (ValueError, IndexError):
        raise SayAsRefused(
            f'<say-as interpret-as="{interpret_as}">: cannot read {text!r}'
        ) from None
    raise SayAsRefused(f'<say-as interpret-as="{interpret_as}"> is not one Lyre reads')


def _date(text: str, date_format: str) -> str:
    """A date in the order ``date_format`` gives ("dmy"; also Google's "yyyymmdd")."""
    order = re.sub(r"(.)\1+", r"\1", date_format.lower())
    parts = re.split(r"[-/.\s]+", text) if re.search(r"[-/.\s]", text) else _packed(text, order)
    if len(parts) != len(order) or not set(order) <= set("dmy"):
        raise ValueError(text)
    value = dict(zip(order, parts, strict=True))
    month = MONTHS[int(value["m"]) - 1] if "m" in value else None
    day = ordinal(int(value["d"])) if "d" in value else None
    said = " ".join(part for part in (month, day) if part)
    if "y" in value:
        said = f"{said}, {year(value['y'])}" if said else year(value["y"])
    return said


def _packed(text: str, order: str) -> list[str]:
    """ "19600910" cut as "yyyymmdd" says."""
    widths = {"y": 4, "m": 2, "d": 2}
    parts, at = [], 0
    for letter in order:
        parts.append(text[at : at + widths[letter]])
        at += widths[letter]
    return parts


def _duration(text: str) -> str | None:
    """Polly's time as a duration: 1'21" is one minute twenty-one seconds."""
    match = re.fullmatch(r"(?:(\d+)')?(\d+)\"", text)
    if match is None:
        return None
    minutes, seconds = match.groups()
    said = [f"{cardinal(seconds)} second{'' if seconds == '1' else 's'}"]
    if minutes:
        said.insert(0, f"{cardinal(minutes)} minute{'' if minutes == '1' else 's'}")
    return " ".join(said)
