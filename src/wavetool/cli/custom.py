"""`wavetool custom`: merge, list and remove a subscriber's custom questions."""

from __future__ import annotations

from . import app  # noqa: F401
