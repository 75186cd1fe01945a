"""`wavetool tabulate`: weighted tables."""

from __future__ import annotations

from . import app  # noqa: F401
