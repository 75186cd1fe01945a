"""`wavetool send`: e-mail each report exactly once."""

from __future__ import annotations

from . import app  # noqa: F401
