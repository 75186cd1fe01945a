"""Import vendor files into the study database: ``decode`` (file → staged table), ``validate`` (roles, ids,
jurisdictions, weights) and ``wave`` (the all-or-nothing wave import). Readers: spss, por, csvfile, staging."""

from __future__ import annotations

from .decode import SPSS_SUFFIXES, SUFFIXES, DecodedFile, Progress, decode_file, file_sha256
from .validate import validate
from .wave import ImportResult, import_wave

__all__ = [
    "SPSS_SUFFIXES",
    "SUFFIXES",
    "DecodedFile",
    "ImportResult",
    "Progress",
    "decode_file",
    "file_sha256",
    "import_wave",
    "validate",
]
