"""Written forms with digits or symbols, said in words: money, measures, dates, times,
ranges, fractions, percentages, ordinals, decades, years, decimals, cardinals.

One regular expression holds every form, in the order they are tried at a place (an
address before a telephone, a date before a range, a measure before a bare number), and one
handler per form says it. Conventions, as an American narrator reads: four-digit numbers
from 1000 to 2099 written without a comma are years ("in 1776"; "1500 men" as "fifteen
hundred"); a slash date is month first; an en dash between numbers is "to".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shared.text import addresses, units
from shared.text.numbers import cardinal, decimal, digits, fraction, ordinal, year

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?|\.\d+"
_DASH = r"\s?[–—-]\s?"
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
_MONTH = "|".join(MONTHS)
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}
_SCALES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion",
           "B": "billion", "thousand": "thousand", "million": "million", "billion": "billion",
           "trillion": "trillion"}  # fmt: skip
_SCALE = r"thousand|million|billion|trillion|bn|[kKmMB]"

_FORMS: list[tuple[str, str]] = [
    ("email", addresses.EMAIL),
    ("url", addresses.URL),
    ("iso_date", r"(?<!\d)(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?!\d)"),
    ("slash_date", r"(?<![\d/])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])/(\d{4})(?![\d/])"),
    ("telephone", addresses.TELEPHONE),
    (
        "month_day",
        rf"\b({_MONTH})\.? (\d{{1,2}})(?:st|nd|rd|th)?(?:,? (\d{{4}})(?![\d-]))?(?![\d:])",
    ),
    ("day_month", rf"(?<![\d.])(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({_MONTH})(?:,? (\d{{4}}))?"),
    ("time", r"(?<![\d.:])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?:\s?([aApP])\.?[mM]\b\.?)?"),
    ("clock", r"(?<![\d.:])(1[0-2]|0?[1-9])\s?([aApP])(?:\.[mM]\.|[mM]\b)"),
    ("money", rf"([$£€¥])\s?({_NUM})(?:{_DASH}[$£€¥]?({_NUM}))?(?:\s?({_SCALE})\b)?"),
    ("pence", r"(?<![\w.])(\d+)(p|¢)(?!\w)"),
    (
        "temperature",
        rf"(?<![\w.])([-\u2212]|minus )?({_NUM})(?:{_DASH}({_NUM}))?\s?°\s?(?:([CFK])\b)?",
    ),
    ("height", r"(?<![\w.])(\d)['\u2032](\d{1,2})(?:[\"\u2033]|'')"),
    ("measure", rf"(?<![\w.])((?:\d+ )?\d+/\d+|{_NUM})(?:{_DASH}({_NUM}))?\s?({units.PATTERN})"),
    ("percent", rf"(?<![\w.])({_NUM})(?:{_DASH}({_NUM}))?\s?(?:%|per ?cent\b)"),
    (
        "range",
        rf"(?<![\w.,-])({_NUM})\s?[–—]\s?({_NUM})(?![\w.,]\d)|(?<![\w.,-])(\d+)-(\d+)\b(?!-)",
    ),
    ("fraction", r"(?<![\w./])(?:(\d+) )?(\d+)/(\d+)(?![\d/])"),
    ("ordinal", r"(?<![\w.])(\d+)(st|nd|rd|th)\b"),
    ("decade", r"(?<![\w.])(?:['’](\d)0|(\d{0,2}\d0))s\b"),
    ("year", r"(?<![\w.,$£€¥-])(1\d{3}|20\d\d)(?![\d%]|[.,]\d)"),
    ("number", rf"(?:(?<![\w.])([-\u2212]))?({_NUM})"),
    ("symbol", r"(?<=\s)[&+=×~#](?=\s?\w)|(?<=[A-Z])&(?=[A-Z])"),
]
_PATTERN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _FORMS))
_GROUPS = {name: re.compile(pattern).groups for name, pattern in _FORMS}  # each form's own


# Every form holds one of these: most of a book's sentences have none and are left at once.
_CLUE = re.compile(rf"[\d$£€¥%&+=×~#@°]|\.(?:{addresses.TLDS})\b")


def say_forms(text: str) -> str:
    """``text`` with every written form of :data:`_FORMS` in words: what ``_PATTERN.sub(_say,
    text)`` gives, tried only where a form can start. A form holds a clue, and starts at the
    earliest in the word before its clue's ("September 1", "minus 5°"); :data:`_PATTERN`
    tried at every place of a sentence costs ≈ 2.5 µs a character, ten times the rest of
    the text's way in."""
    out, done = [], 0
    for clue in _CLUE.finditer(text):
        if clue.start() < done:  # inside a form said already
            continue
        for start in range(max(done, _word_before(text, clue.start())), clue.start() + 1):
            if match := _PATTERN.match(text, start):
                out += [text[done:start], _say(match)]
                done = match.end()
                break
    return "".join(out) + text[done:] if out else text


def _word_before(text: str, at: int) -> int:
    """Where the word before the one holding ``at`` starts."""
    start = at
    for space in (False, True, False):
        while start > 0 and text[start - 1].isspace() == space:
            start -= 1
    return start


def _say(match: re.Match[str]) -> str:
    kind = match.lastgroup or ""
    first = _PATTERN.groupindex[kind] + 1  # the form's own groups follow its name's
    parts = [match.group(i) for i in range(first, first + _GROUPS[kind])]
    said = _HANDLERS[kind](match.group(kind), *parts)
    if kind == "measure" and _before_a_noun(match):
        said = _HANDLERS[kind](match.group(kind), parts[0], None, parts[2], single=True)
    if kind == "day_month" and match.string[: match.start()].lower().endswith("the "):
        said = said.removeprefix("the ")  # "the 1st of May": the author said "the" already
    before = match.string[match.start() - 1 : match.start()]
    after = match.string[match.end() : match.end() + 1]
    return (" " if before.isalpha() else "") + said + (" " if after.isalnum() else "")


def _money(_: str, symbol: str, amount: str, upper: str | None, scale: str | None) -> str:
    one, many, cent, cents = _CURRENCIES[symbol]
    if scale:
        return f"{_amount(amount)}{_to(upper)} {_SCALES[scale]} {many}"
    if upper:
        return f"{_amount(amount)} to {_amount(upper)} {many}"
    whole, _, part = amount.replace(",", "").partition(".")
    said = (
        []
        if whole in ("", "0") and part
        else [f"{cardinal(whole)} {one if whole == '1' else many}"]
    )
    if part and cent and int(part[:2].ljust(2, "0")):
        hundredths = int(part[:2].ljust(2, "0"))
        said.append(f"{cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(said) or f"zero {many}"


def _pence(_: str, amount: str, sign: str) -> str:
    one, many = ("penny", "pence") if sign == "p" else ("cent", "cents")
    return f"{cardinal(amount)} {one if amount == '1' else many}"


def _temperature(
    _: str, sign: str | None, amount: str, upper: str | None, scale: str | None
) -> str:
    names = {"C": " Celsius", "F": " Fahrenheit", "K": " kelvin", None: ""}
    said = ("minus " if sign else "") + _amount(amount) + _to(upper)
    return f"{said} degrees{names[scale]}"


def _height(_: str, feet: str, inches: str) -> str:
    return f"{cardinal(feet)} feet {cardinal(inches)} inches"


def _measure(_: str, amount: str, upper: str | None, unit: str, single: bool = False) -> str:
    if "/" in amount:
        whole, _, part = amount.rpartition(" ")
        said, single = _fraction("", whole or None, *part.split("/")), single or not whole
    else:
        said, single = _amount(amount), single or (amount == "1" and not upper)
    return f"{said}{_to(upper)} {units.name(unit, single)}"


def _before_a_noun(match: re.Match[str]) -> bool:
    """ "a 40 W bulb", "a 5 km run": the measure describes what follows, and is singular."""
    return re.search(r"\b[Aa]n? $", match.string[: match.start()]) is not None


def _percent(_: str, amount: str, upper: str | None) -> str:
    return f"{_amount(amount)}{_to(upper)} percent"


def _range(_: str, low: str | None, high: str | None, low2: str | None, high2: str | None) -> str:
    low, high = (low, high) if low is not None else (low2, high2)
    assert low is not None and high is not None
    if _is_year(low) and (_is_year(high) or len(high) == 2):
        return f"{year(low)} to {year(high) if len(high) == 4 else cardinal(high)}"
    return f"{_amount(low)} to {_amount(high)}"


def _fraction(_: str, whole: str | None, numerator: str, denominator: str) -> str:
    top, bottom = int(numerator), int(denominator)
    if bottom == 0 or bottom > 100 or (top, bottom) in ((24, 7), (9, 11)):
        return f"{cardinal(top)} {cardinal(bottom)}"
    if whole:
        part = "a half" if (top, bottom) == (1, 2) else fraction(top, bottom)
        return f"{cardinal(whole)} and {part}"
    return fraction(top, bottom)


def _decade(_: str, short: str | None, full: str | None) -> str:
    said = (
        cardinal(int(short) * 10)
        if short
        else year(full)
        if len(full or "") == 4
        else cardinal(full or 0)
    )
    return said[:-1] + "ies" if said.endswith("y") else said + "s"


def _date(day: str, month: str, year_: str | None, *, day_first: bool) -> str:
    said = f"the {ordinal(day)} of {month}" if day_first else f"{month} {ordinal(day)}"
    return f"{said}, {year(year_)}" if year_ else said


def _time(_: str, hour: str, minute: str, noon: str | None) -> str:
    said = cardinal(hour)
    if minute == "00":  # "20:00" is twenty hundred, as a 24-hour clock is read
        said += "" if noon else " hundred" if int(hour) > 12 else " o'clock"
    else:
        said += " oh " + cardinal(minute) if minute.startswith("0") else " " + cardinal(minute)
    return said + (f" {noon.lower()}.m." if noon else "")


def _number(_: str, sign: str | None, amount: str) -> str:
    if len(amount) > 1 and amount[0] == "0" and "." not in amount:
        return digits(amount)
    if len(amount.replace(",", "")) > 15:
        return digits(amount)
    return ("minus " if sign else "") + _amount(amount)


def _amount(text: str) -> str:
    return decimal(text.replace(",", ""))


def _to(upper: str | None) -> str:
    return f" to {_amount(upper)}" if upper else ""


def _is_year(text: str) -> bool:
    return len(text) == 4 and 1000 <= int(text) <= 2099


_SYMBOLS = {"&": "and", "+": "plus", "=": "equals", "×": "by", "~": "about", "#": "number"}

_HANDLERS: dict[str, Callable[..., str]] = {
    "email": lambda text: addresses.say_email(text),
    "url": lambda text: addresses.say_url(text),
    "iso_date": lambda _, y, m, d: _date(d, MONTHS[int(m) - 1], y, day_first=False),
    "slash_date": lambda _, m, d, y: _date(d, MONTHS[int(m) - 1], y, day_first=False),
    "telephone": lambda text: addresses.say_telephone(text),
    "month_day": lambda _, m, d, y: _date(d, m, y, day_first=False),
    "day_month": lambda _, d, m, y: _date(d, m, y, day_first=True),
    "time": _time,
    "clock": lambda _, hour, noon: f"{cardinal(hour)} {noon.lower()}.m.",
    "money": _money,
    "pence": _pence,
    "temperature": _temperature,
    "height": _height,
    "measure": _measure,
    "percent": _percent,
    "range": _range,
    "fraction": _fraction,
    "ordinal": lambda _, n, suffix: ordinal(n),
    "decade": _decade,
    "year": lambda _, y: year(y),
    "number": _number,
    "symbol": lambda text: _SYMBOLS[text],
}
