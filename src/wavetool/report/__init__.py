"""Subscriber reports: one tagged, bilingual, deterministic PDF per subscriber and wave.

``render_reports(config, wave, *, subscribers=None, output_dir=None, final=False, jobs=None, ctx=QUIET)``
writes ``<output>/wave-N/<subscriber-id>.pdf`` and ``manifest.json`` and returns a :class:`RenderResult`.
WeasyPrint is imported on first use only, so the rest of the CLI starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .text import templates_dir

if TYPE_CHECKING:
    from .build import RenderResult  # lazy: build imports WeasyPrint (heavy)

__all__ = ["RenderResult", "render_reports", "templates_dir"]


def render_reports(config: Any, wave: int, **options: Any) -> RenderResult:
    """Render every (or the given) subscriber's report of ``wave``; see :func:`wavetool.report.build.render_reports`."""
    # lazy: build imports WeasyPrint (heavy); the rest of the CLI should not pay for it
    from .build import render_reports as _render_reports

    return _render_reports(config, wave, **options)


def __getattr__(name: str) -> Any:
    if name == "RenderResult":
        from .build import RenderResult  # lazy: build imports WeasyPrint (heavy)

        return RenderResult
    raise AttributeError(name)
