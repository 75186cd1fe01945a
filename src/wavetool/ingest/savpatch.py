"""A copy of a ``.sav``/``.zsav`` that the fast reader returns exactly as the file stores it.

The fast reader (polars-readstat) turns user-missing codes into nulls, so "Don't know" (8) would be
indistinguishable from a blank; its ``informative_nulls`` option gives the codes back but costs 3x the
time and 6x the memory (measured on 200,000 x 300). It also converts date and time formats itself and
drops the fractions of a TIME value's seconds (43870.09 s came back as 12:11:10). So wavetool reads a copy
in which, in place and at the same size, every declared missing value is overwritten with a value no
cell can hold (the system-missing value itself for numbers, control characters for strings), and every
date/time display format is made a plain F format. The data section is untouched: every value arrives
as the number SPSS stored, and the declarations and formats themselves come from pyreadstat's codebook
of the original file. The layout follows the SPSS system-file format (GNU PSPP's documentation).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from ..errors import DataError

SYSMIS = -1.7976931348623157e308  # -DBL_MAX: already system-missing, so it can never be a user code
_NO_STRING = b"\x1f" * 8  # unit separators: a string no survey answer holds
# Format type codes of SPSS date, time and date-time formats (DATE, TIME, DATETIME, ADATE, JDATE, DTIME,
# WKDAY, MONTH, MOYR, QYR, WKYR, EDATE, SDATE, MTIME, YMDHMS), and of the plain F format.
_TEMPORAL_FORMATS = {20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 38, 39, 40, 41}
_F_FORMAT = 5


class _Reader:
    """Sequential reads of the dictionary with the file's byte order, remembering offsets."""

    def __init__(self, handle, path: Path, endian: str) -> None:  # type: ignore[no-untyped-def]
        self.handle, self.path, self.endian = handle, path, endian

    def take(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise DataError(
                f"{self.path}: the file ends inside its dictionary",
                hint="the file is truncated; ask the vendor to re-export it",
            )
        return data

    def int32(self) -> int:
        return struct.unpack(self.endian + "i", self.take(4))[0]

    def tell(self) -> int:
        return self.handle.tell()


def dictionary_patches(path: Path) -> list[tuple[int, bytes]]:
    """(offset, replacement bytes) for every user-missing value and every date/time format declared in
    the file's dictionary."""
    with open(path, "rb") as handle:
        header = handle.read(176)
        if len(header) < 176 or header[:4] not in (b"$FL2", b"$FL3"):
            raise DataError(
                f"{path}: not an SPSS system file (no $FL2/$FL3 signature)",
                hint="check the file is a .sav/.zsav export",
            )
        endian = "<" if struct.unpack("<i", header[64:68])[0] in (2, 3) else ">"
        reader = _Reader(handle, path, endian)
        patches: list[tuple[int, bytes]] = []
        sysmis = struct.pack(endian + "d", SYSMIS)
        while True:
            record = reader.int32()
            if record == 2:
                var_type, has_label, n_missing = reader.int32(), reader.int32(), reader.int32()
                for _ in range(2):  # print and write formats: (type << 16) | (width << 8) | decimals
                    offset, packed = reader.tell(), reader.int32()
                    if var_type == 0 and (packed >> 16) & 0xFF in _TEMPORAL_FORMATS:
                        plain = (_F_FORMAT << 16) | (packed & 0xFFFF)
                        patches.append((offset, struct.pack(endian + "i", plain)))
                reader.take(8)  # name
                if has_label:
                    length = reader.int32()
                    reader.take((length + 3) // 4 * 4)
                for _ in range(abs(n_missing)):
                    patches.append((reader.tell(), sysmis if var_type == 0 else _NO_STRING))
                    reader.take(8)
            elif record == 3:
                for _ in range(reader.int32()):
                    reader.take(8)
                    length = reader.take(1)[0]
                    reader.take((length + 1 + 7) // 8 * 8 - 1)
            elif record == 4:
                reader.take(4 * reader.int32())
            elif record == 6:
                reader.take(80 * reader.int32())
            elif record == 7:
                subtype, size, count = reader.int32(), reader.int32(), reader.int32()
                start = reader.tell()
                body = reader.take(size * count)
                if subtype == 22:
                    patches.extend((start + offset, _NO_STRING) for offset in _long_string_missing(body, endian, path))
            elif record == 999:
                return patches
            else:
                raise DataError(
                    f"{path}: unknown dictionary record type {record}",
                    hint="the file may be damaged; ask the vendor to re-export it",
                )


def _long_string_missing(body: bytes, endian: str, path: Path) -> list[int]:
    """Offsets (within the record body) of the 8-byte values of long-string missing values (subtype 22)."""
    offsets, pos = [], 0
    try:
        while pos < len(body):
            name_len = struct.unpack_from(endian + "i", body, pos)[0]
            pos += 4 + name_len
            count = body[pos]
            value_len = struct.unpack_from(endian + "i", body, pos + 1)[0]
            pos += 5
            for _ in range(count):
                if value_len == 8:
                    offsets.append(pos)
                pos += value_len
    except (struct.error, IndexError):
        raise DataError(f"{path}: malformed long-string missing-value record") from None
    return offsets


def copy_for_fast_reader(path: Path, dest: Path) -> bool:
    """Write ``dest``: ``path`` with every user-missing declaration neutralised and every date/time format
    made plain. False (and no copy) when the file has neither."""
    patches = dictionary_patches(path)
    if not patches:
        return False
    shutil.copyfile(path, dest)  # a kernel-side copy (copy_file_range/sendfile); no data passes through Python
    with open(dest, "r+b") as handle:
        for offset, data in patches:
            handle.seek(offset)
            handle.write(data)
    return True
