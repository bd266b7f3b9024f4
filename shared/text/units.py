"""Units of measure after a number, by their symbols: metric and imperial, kitchen measures,
speeds, data, power. Symbols are case-sensitive ("mB" is not "MB"); symbols that are also
common words ("in", "a", "s") are left out, so "5 in a row" stays as written."""

from __future__ import annotations

import re

# symbol: (singular, plural)
_UNITS: dict[str, tuple[str, str]] = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "µm": ("micrometer", "micrometers"),
    "μm": ("micrometer", "micrometers"), "nm": ("nanometer", "nanometers"),
    "km²": ("square kilometer", "square kilometers"), "m²": ("square meter", "square meters"),
    "sq ft": ("square foot", "square feet"), "ha": ("hectare", "hectares"),
    "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
    "µg": ("microgram", "micrograms"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "fl oz": ("fluid ounce", "fluid ounces"),
    "ft": ("foot", "feet"), "in.": ("inch", "inches"),
    "yd": ("yard", "yards"), "mi": ("mile", "miles"), "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"), "l": ("liter", "liters"),
    "L": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"), "cl": ("centiliter", "centiliters"),
    "dl": ("deciliter", "deciliters"), "gal": ("gallon", "gallons"), "qt": ("quart", "quarts"),
    "tbsp": ("tablespoon", "tablespoons"),
    "Tbsp": ("tablespoon", "tablespoons"), "tsp": ("teaspoon", "teaspoons"),
    "kB": ("kilobyte", "kilobytes"), "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"), "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"), "V": ("volt", "volts"), "mV": ("millivolt", "millivolts"),
    "W": ("watt", "watts"), "kW": ("kilowatt", "kilowatts"), "MW": ("megawatt", "megawatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "mA": ("milliamp", "milliamps"),
    "mAh": ("milliamp hour", "milliamp hours"), "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"), "min": ("minute", "minutes"), "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"), "h": ("hour", "hours"), "kcal": ("kilocalorie", "kilocalories"),
    "cal": ("calorie", "calories"), "dB": ("decibel", "decibels"), "psi": ("p s i", "p s i"),
    "rpm": ("r p m", "r p m"), "mmHg": ("millimeter of mercury", "millimeters of mercury"),
}  # fmt: skip

# Longest first, so that "km/h" is not read as "km"; a symbol ends where a word would.
PATTERN = "|".join(
    re.escape(symbol) + ("" if symbol.endswith(".") else r"(?![\w/²])")
    for symbol in sorted(_UNITS, key=len, reverse=True)
)


def name(symbol: str, single: bool) -> str:
    """The unit's name, singular after exactly one."""
    one, many = _UNITS[symbol]
    return one if single else many
