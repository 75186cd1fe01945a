"""`wavetool report`: one PDF per subscriber."""

from __future__ import annotations

from . import app  # noqa: F401
