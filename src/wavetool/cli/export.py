"""`wavetool export`: harmonised data as Parquet, CSV or SPSS."""

from __future__ import annotations

from . import app  # noqa: F401
