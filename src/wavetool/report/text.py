"""Words and numbers of a report in its language: the strings catalogue and Babel number formats.

Template text lives in ``templates/strings/<language>.toml`` (one catalogue per language, the same keys
in each); numbers are formatted with the locale's own CLDR patterns through Babel, so a French report
prints ``45,3 %`` with the locale's no-break space rather than a hand-written rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern

from ..errors import ConfigError
from ..resources import templates_root

LOCALES = {"en": "en_CA", "fr": "fr_CA"}
LANG_TAGS = {"en": "en-CA", "fr": "fr-CA"}


def templates_dir() -> Path:
    """The report templates: shipped inside the wheel as ``wavetool/templates``, else the checkout's."""
    return templates_root()


def load_strings(templates: Path, language: str) -> dict[str, str]:
    """The strings catalogue of ``language`` (a flat key → text table)."""
    path = templates / "strings" / f"{language}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no report strings for language {language!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return {str(k): str(v) for k, v in data.items()}


def _one_decimal(pattern: str) -> str:
    """A CLDR number pattern with exactly one fraction digit: ``#,##0%`` → ``#,##0.0%``."""
    integer_end = pattern.rfind("0") + 1
    head = pattern[:integer_end].split(".")[0]
    return head + ".0" + pattern[integer_end:]


# Babel's format_percent/format_decimal parse the locale and the pattern on every call (a report formats
# thousands of numbers): parsed once here, then applied exactly as those functions apply them.
@functools.cache
def _locale(name: str) -> Locale:
    return Locale.parse(name)


@functools.cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


@functools.cache
def _percent_pattern(locale: str, decimals: int) -> str:
    pattern = _locale(locale).percent_formats[None].pattern
    return _one_decimal(pattern) if decimals == 1 else pattern


@dataclass(frozen=True)
class Formatter:
    """Locale-aware number and date formatting for one report language."""

    language: str

    @property
    def locale(self) -> str:
        return LOCALES[self.language]

    def pct(self, value: float | None, decimals: int = 1) -> str:
        """``45.3`` (a percentage on the 0-100 scale) → ``45.3%`` / ``45,3 %``; None → an en dash."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        return _pattern(_percent_pattern(self.locale, decimals)).apply(value / 100.0, _locale(self.locale))

    def num(self, value: float | None, decimals: int = 1) -> str:
        """A decimal number with ``decimals`` fraction digits and the locale's grouping."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return _pattern(pattern).apply(value, _locale(self.locale))

    def int(self, value: float | None) -> str:
        """A count, grouped: ``3,000`` / ``3 000``."""
        return self.num(value, 0)

    def pct_range(self, low: float | None, high: float | None) -> str:
        """A confidence interval ``41.2–49.5%`` style, both ends formatted as percentages."""
        return f"{self.pct(low)} – {self.pct(high)}"

    def date(self, value: dt.date | str | None) -> str:
        """A date in the locale's long format (``June 21, 2020`` / ``21 juin 2020``); empty for no date (a
        wave configured without fieldwork dates)."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.date.fromisoformat(value)
        return format_date(value, format="long", locale=self.locale)
