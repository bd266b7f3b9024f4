"""Numbers as words, as an American reader says them: num2words's English, less its commas
and its British "and" ("one thousand two hundred thirty-four")."""

from __future__ import annotations

import re
from functools import lru_cache

from num2words import num2words

_DIGIT_NAMES = "zero one two three four five six seven eight nine".split()
_ROMAN = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _american(words: str) -> str:
    return words.replace(",", "").replace(" and ", " ")


@lru_cache(maxsize=4096)  # a book says its years and page numbers again and again
def cardinal(number: int | str) -> str:
    """``1234`` (or ``"1,234"``) as "one thousand two hundred thirty-four"."""
    value = int(str(number).replace(",", ""))
    if value < 0:
        return "minus " + cardinal(-value)
    return _american(num2words(value))


@lru_cache(maxsize=4096)
def ordinal(number: int | str) -> str:
    """``21`` as "twenty-first"."""
    return _american(num2words(int(str(number).replace(",", "")), to="ordinal"))


@lru_cache(maxsize=4096)
def year(number: int | str) -> str:
    """``1776`` as "seventeen seventy-six", 1905 "nineteen oh five", 2008 "two thousand
    eight", 2019 "twenty nineteen"."""
    return _american(num2words(int(number), to="year")).replace("oh-", "oh ")


def digits(text: str, zero: str = "zero") -> str:
    """Each digit of ``text`` by name ("oh" for zero where a reader says so: telephones)."""
    return " ".join(zero if ch == "0" else _DIGIT_NAMES[int(ch)] for ch in text if ch.isdigit())


def decimal(text: str) -> str:
    """``"3.14"`` as "three point one four"; ``"1,500"`` as a cardinal."""
    whole, _, fraction = text.partition(".")
    said = cardinal(whole or "0")
    return f"{said} point {digits(fraction)}" if fraction else said


def fraction(numerator: int, denominator: int) -> str:
    """``3/4`` as "three quarters", ``1/2`` as "one half", ``5/8`` as "five eighths"."""
    if denominator == 1:
        return cardinal(numerator)
    one, many = _DENOMINATORS.get(denominator, (None, None))
    if one is None or many is None:
        one = ordinal(denominator)
        many = one + "s"
    return f"{cardinal(numerator)} {one if numerator == 1 else many}"


def roman_value(text: str) -> int | None:
    """The value of an upper-case Roman numeral, or None where ``text`` is not one."""
    if not text or not _ROMAN.fullmatch(text):
        return None
    values = [_ROMAN_VALUES[ch] for ch in text]
    total = sum(
        -v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values)
    )
    return total or None
