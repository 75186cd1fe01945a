"""User-missing declarations read straight from an SPSS portable (``.por``) file.

pyreadstat's ``read_por`` drops them (codes 8 and 9 would come back as blanks), so wavetool reads the
portable format's dictionary records itself: 80-column lines, base-30 numbers ending in ``/``, and
tagged records (``7`` variable, ``8`` missing value, ``9`` LO THRU x, ``A`` x THRU HI, ``B`` range).
"""

from __future__ import annotations

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
    missing, _spans, _text = _parse_dictionary(Path(path))
    return missing


def copy_without_missing(path: Path, dest: Path) -> bool:
    """Write ``dest``: the portable file without its user-missing records, so that pyreadstat (which would
    turn those codes into blanks) returns 8 and 9 as the codes they are. False (and no copy) when the file
    declares none. The text is re-wrapped into 80-column lines, as the format requires."""
    _missing, spans, text = _parse_dictionary(Path(path))
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


def _parse_dictionary(path: Path) -> tuple[dict[str, tuple[MissingSpec, ...]], list[tuple[int, int]], str]:
    """(missing values by variable, spans of the missing-value records in the unwrapped text, that text)."""
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
    current: str | None = None
    width = 0
    while True:
        cur.skip_spaces()
        begin = cur.pos
        tag = cur.char()
        if tag == "F" or tag == "Z":
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
            cur.string()
        elif tag == "D":
            count = cur.integer()
            names = [cur.string() for _ in range(count)]
            numeric = widths.get(names[0], 0) == 0
            for _ in range(cur.integer()):
                cur.number() if numeric else cur.string()
                cur.string()
        elif tag == "E":
            for _ in range(cur.integer()):
                cur.string()
        else:
            raise DataError(f"{path}: unknown record tag {tag!r} in the portable dictionary")
        if tag in "89AB":
            spans.append((begin, cur.pos))
    return {name: tuple(specs) for name, specs in result.items() if name}, spans, text


def _missing_value(value: str | float | None) -> MissingSpec:
    if isinstance(value, str):
        return MissingSpec("value", value.rstrip())
    return MissingSpec("value", code_text(value), value, value)
