"""The codebook model: variables with their labels, user-missing codes and measurement levels, and
multiple-response sets. Plain data; reading files and the database live beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..sql import code_text

MEASURES = ("nominal", "ordinal", "scale", "unknown")
TYPES = ("numeric", "string", "date", "datetime")


@dataclass(frozen=True)
class MissingSpec:
    """One user-missing declaration: a discrete code or an inclusive numeric range."""

    kind: str  # 'value' | 'range'
    code: str | None = None
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.kind == "value":
            return self.code or ""
        low = "LO" if self.low is None or math.isinf(self.low) else code_text(self.low)
        high = "HI" if self.high is None or math.isinf(self.high) else code_text(self.high)
        return f"{low} THRU {high}"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str | None = None
    type: str = "numeric"
    measure: str = "unknown"
    format: str | None = None
    width: int | None = None
    value_labels: dict[str, str] = field(default_factory=dict)
    missing: tuple[MissingSpec, ...] = ()

    def is_missing_code(self, code: Any) -> bool:
        """Whether ``code`` is declared user-missing for this variable."""
        return is_missing_code(self.missing, code)


@dataclass(frozen=True)
class MrSet:
    name: str
    label: str | None
    type: str  # 'dichotomy' | 'category'
    counted_value: str | None
    variables: tuple[str, ...]


@dataclass(frozen=True)
class Codebook:
    variables: dict[str, Variable]
    mr_sets: dict[str, MrSet] = field(default_factory=dict)
    encoding: str | None = None

    def restricted_to(self, names: list[str]) -> Codebook:
        """This codebook for the given columns only, in that order (unknown names get a bare entry)."""
        variables = {n: self.variables.get(n, Variable(name=n)) for n in names}
        sets = {k: s for k, s in self.mr_sets.items() if all(v in variables for v in s.variables)}
        return replace(self, variables=variables, mr_sets=sets)


CORE_LANGUAGE = "en"  # the language of the main wave files' labels (a custom file's is its subscriber's)


def is_missing_code(specs: tuple[MissingSpec, ...], code: Any) -> bool:
    """Whether ``code`` (a number or a string code) is declared user-missing by ``specs``: a discrete
    code (compared as a number where the declaration has one, else by canonical text) or a range."""
    numeric = isinstance(code, (int, float)) and not isinstance(code, bool)
    for spec in specs:
        if spec.kind == "value":
            if spec.low is not None and numeric:
                if spec.low == float(code):
                    return True
            elif spec.code == code_text(code):
                return True
        if spec.kind == "range" and numeric:
            low = -math.inf if spec.low is None else spec.low
            high = math.inf if spec.high is None else spec.high
            if low <= float(code) <= high:
                return True
    return False
