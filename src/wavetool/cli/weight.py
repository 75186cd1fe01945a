"""`wavetool weight`: rake a wave to population margins."""

from __future__ import annotations

from . import app  # noqa: F401
