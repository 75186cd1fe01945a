"""User-missing declarations and text read straight from an SPSS portable (``.por``) file.

pyreadstat's ``read_por`` drops the declarations (codes 8 and 9 would come back as blanks) and turns every
byte above 127 into U+FFFD (a real Pew Research .por holds UTF-8: "Don’t know" came back as
"Don\ufffd\ufffd\ufffdt know"). So wavetool reads the portable format's records itself: 80-column lines,
base-30 numbers ending in ``/``, and tagged records (``7`` variable, ``8`` missing value, ``9`` LO THRU x,
``A`` x THRU HI, ``B`` range, ``C`` variable label, ``D`` value labels, ``F`` data).

The format declares no encoding. Text is decoded as UTF-8 where its bytes are valid UTF-8 (what SPSS and
PSPP write today), else with the ``--encoding`` given; what neither decodes is lost, shown as ``?`` and named
in one warning (:func:`por_text`), never stored as U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..codebook import MissingSpec, code_text
from ..errors import DataError

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRST"


class _Cursor:
    def __init__(self, text: str, path: Path) -> None:
        self.text, self.pos, self.path = text, 0, path

    def char(self) -> str:
        if self.pos >= len(self.text):
            raise DataError(
                f"{self.path}: portable file ends inside its dictionary",
                hint="the file is truncated; ask the vendor to re-export it",
            )
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def number(self) -> float | None:
        self.skip_spaces()
        if self.text.startswith("*.", self.pos):
            self.pos += 2
            return None
        end = self.text.find("/", self.pos)
        if end < 0:
            raise DataError(f"{self.path}: malformed number in the portable dictionary")
        token, self.pos = self.text[self.pos : end], end + 1
        return _base30(token, self.path)

    def integer(self) -> int:
        value = self.number()
        if value is None:
            raise DataError(f"{self.path}: malformed integer in the portable dictionary")
        return int(value)

    def string(self) -> str:
        length = self.integer()
        value = self.text[self.pos : self.pos + length]
        self.pos += length
        return value


def _base30(token: str, path: Path) -> float:
    exponent = 0
    for sign in "+-":
        idx = token.find(sign, 1)
        if idx > 0:
            exponent = int(_base30_int(token[idx + 1 :], path)) * (1 if sign == "+" else -1)
            token = token[:idx]
            break
    negative = token.startswith("-")
    token = token.lstrip("-")
    whole, _, frac = token.partition(".")
    value = float(_base30_int(whole or "0", path))
    for i, ch in enumerate(frac, start=1):
        value += _DIGITS.index(ch) / 30**i
    value *= 30.0**exponent
    return -value if negative else value


def _base30_int(token: str, path: Path) -> int:
    value = 0
    for ch in token:
        digit = _DIGITS.find(ch)
        if digit < 0:
            raise DataError(f"{path}: malformed base-30 number {token!r} in the portable dictionary")
        value = value * 30 + digit
    return value


def _unwrap(raw: bytes) -> str:
    # Lines are 80 columns; trailing spaces may have been stripped by the writer, so pad them back.
    lines = raw.decode("latin-1").replace("\r\n", "\n").split("\n")
    return "".join(line.ljust(80) for line in lines)


def read_por_missing(path: Path) -> dict[str, tuple[MissingSpec, ...]]:
    """The user-missing values of every variable declared in the portable file at ``path``."""
    return _parse_dictionary(Path(path)).missing


@dataclass
class PorText:
    """The portable file's text, decoded: variable labels, value labels (by code text), and which of them
    (and of the string data columns) lost characters that no decoding could recover."""

    variable_labels: dict[str, str] = field(default_factory=dict)
    value_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    lost_labels: list[str] = field(default_factory=list)  # "Q1" (its label) or "Q1=9" (a value label)
    lost_columns: list[str] = field(default_factory=list)  # string data columns with undecodable values

    def warning(self, path: Path, listed: int = 8) -> str | None:
        """The one warning naming what lost characters, or None when nothing did."""
        parts = []
        for what, items in (("labels", self.lost_labels), ("text values of", self.lost_columns)):
            if items:
                more = f" and {len(items) - listed} more" if len(items) > listed else ""
                parts.append(f"{what} {', '.join(items[:listed])}{more}")
        if not parts:
            return None
        return (
            f"{path}: characters that are neither UTF-8 nor the encoding given were lost (shown as ?) in "
            + "; ".join(parts)
            + " — pass --encoding with the file's encoding (e.g. --encoding cp1252), or ask for a .sav"
        )


def decode_text(raw: str, encoding: str | None = None) -> tuple[str, bool]:
    """(text, lost) for a portable-file string read as latin-1 (one character per byte): UTF-8 when its
    bytes are valid UTF-8, else ``encoding``; else undecodable bytes become ``?`` and ``lost`` is True."""
    if raw.isascii():
        return raw, False
    data = raw.encode("latin-1")
    for candidate in ("utf-8", encoding):
        if candidate:
            try:
                return data.decode(candidate), False
            except (UnicodeDecodeError, LookupError):
                pass
    return data.decode("ascii", errors="replace").replace("\ufffd", "?"), True


def por_text(path: Path, encoding: str | None = None, data: bool = True) -> PorText:
    """The decoded labels of the portable file at ``path``; with ``data``, also which string data columns
    hold undecodable values (the data is only scanned when it holds a byte above 127)."""
    parsed = _parse_dictionary(Path(path))
    out = PorText()
    for name, raw in parsed.variable_labels.items():
        out.variable_labels[name], lost = decode_text(raw, encoding)
        if lost:
            out.lost_labels.append(name)
    for name, labels in parsed.value_labels.items():
        decoded = out.value_labels.setdefault(name, {})
        for code, raw in labels.items():
            decoded[code], lost = decode_text(raw, encoding)
            if lost:
                out.lost_labels.append(f"{name}={code}")
    if data:
        strings = _data_strings(parsed, Path(path))
        for name, values in (strings or {}).items():
            if any(decode_text(v, encoding)[1] for v in values):
                out.lost_columns.append(name)
    return out


def read_por_strings(path: Path, encoding: str | None = None) -> dict[str, list[str]] | None:
    """Every string data column's values, decoded (trailing blanks removed, as pyreadstat does), or None
    when the data holds no byte above 127 and pyreadstat's own text is already right."""
    parsed = _parse_dictionary(Path(path))
    strings = _data_strings(parsed, Path(path))
    if strings is None:
        return None
    return {name: [decode_text(v, encoding)[0].rstrip(" ") for v in values] for name, values in strings.items()}


def _data_strings(parsed: _Dictionary, path: Path) -> dict[str, list[str]] | None:
    """The raw values of the string columns, or None when the data section is plain ASCII."""
    text, start = parsed.text, parsed.data_start
    if start is None or text[start:].isascii() or not any(parsed.widths.values()):
        return None
    cur = _Cursor(text, path)
    cur.pos = start
    names = list(parsed.widths)
    out: dict[str, list[str]] = {n: [] for n in names if parsed.widths[n]}
    while True:
        cur.skip_spaces()
        if cur.pos >= len(text) or text[cur.pos] == "Z":
            return out
        for name in names:
            if parsed.widths[name]:
                out[name].append(cur.string())
            else:
                cur.number()


def copy_without_missing(path: Path, dest: Path) -> bool:
    """Write ``dest``: the portable file without its user-missing records, so that pyreadstat (which would
    turn those codes into blanks) returns 8 and 9 as the codes they are. False (and no copy) when the file
    declares none. The text is re-wrapped into 80-column lines, as the format requires."""
    parsed = _parse_dictionary(Path(path))
    spans, text = parsed.spans, parsed.text
    if not spans:
        return False
    pieces, last = [], 0
    for begin, end in spans:
        pieces.append(text[last:begin])
        last = end
    pieces.append(text[last:])
    body = "".join(pieces).rstrip(" ")
    body += "Z" * (-len(body) % 80)  # the format pads its last line with Z
    lines = [body[i : i + 80] for i in range(0, len(body), 80)]
    Path(dest).write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    return True


@dataclass
class _Dictionary:
    """What the dictionary records say; text as read (latin-1: one character per byte), not yet decoded."""

    text: str
    missing: dict[str, tuple[MissingSpec, ...]]
    spans: list[tuple[int, int]]  # where the missing-value records are in ``text``
    widths: dict[str, int]  # every variable in file order: 0 numeric, else the string width
    variable_labels: dict[str, str]
    value_labels: dict[str, dict[str, str]]
    data_start: int | None  # just after the ``F`` tag


def _parse_dictionary(path: Path) -> _Dictionary:
    text = _unwrap(path.read_bytes())
    start = text.find("SPSSPORT")
    if start < 0:
        raise DataError(
            f"{path}: not an SPSS portable file (no SPSSPORT signature)", hint="check the file is a .por export"
        )
    cur = _Cursor(text, path)
    cur.pos = start + len("SPSSPORT")
    cur.char()  # format version letter
    cur.string()  # creation date
    cur.string()  # creation time
    result: dict[str, list[MissingSpec]] = {}
    spans: list[tuple[int, int]] = []
    widths: dict[str, int] = {}
    variable_labels: dict[str, str] = {}
    value_labels: dict[str, dict[str, str]] = {}
    current: str | None = None
    width = 0
    data_start = None
    while True:
        cur.skip_spaces()
        begin = cur.pos
        tag = cur.char()
        if tag == "F" or tag == "Z":
            data_start = cur.pos if tag == "F" else None
            break
        if tag in "123":
            cur.string()
        elif tag == "4" or tag == "5":
            cur.integer()
        elif tag == "6":
            cur.string()
        elif tag == "7":
            width = cur.integer()
            current = cur.string()
            widths[current] = width
            for _ in range(6):
                cur.integer()
        elif tag == "8":
            value = cur.string() if width else cur.number()
            result.setdefault(current or "", []).append(_missing_value(value))
        elif tag == "9":
            high = cur.number()
            result.setdefault(current or "", []).append(MissingSpec("range", None, float("-inf"), high))
        elif tag == "A":
            low = cur.number()
            result.setdefault(current or "", []).append(MissingSpec("range", None, low, float("inf")))
        elif tag == "B":
            low, high = cur.number(), cur.number()
            result.setdefault(current or "", []).append(MissingSpec("range", None, low, high))
        elif tag == "C":
            variable_labels[current or ""] = cur.string()
        elif tag == "D":
            count = cur.integer()
            names = [cur.string() for _ in range(count)]
            numeric = widths.get(names[0], 0) == 0
            for _ in range(cur.integer()):
                code = code_text(cur.number()) if numeric else cur.string().rstrip()
                label = cur.string()
                for name in names:
                    value_labels.setdefault(name, {})[code] = label
        elif tag == "E":
            for _ in range(cur.integer()):
                cur.string()
        else:
            raise DataError(f"{path}: unknown record tag {tag!r} in the portable dictionary")
        if tag in "89AB":
            spans.append((begin, cur.pos))
    return _Dictionary(
        text=text,
        missing={name: tuple(specs) for name, specs in result.items() if name},
        spans=spans,
        widths=widths,
        variable_labels=variable_labels,
        value_labels=value_labels,
        data_start=data_start,
    )


def _missing_value(value: str | float | None) -> MissingSpec:
    if isinstance(value, str):
        return MissingSpec("value", value.rstrip())
    return MissingSpec("value", code_text(value), value, value)
