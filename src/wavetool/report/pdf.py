"""Laying out a report's HTML as a tagged PDF/UA-1 with WeasyPrint, in this process or in render workers.

This module knows nothing of the report model or its templates: the HTML is filled in the main process
(one Jinja environment for every subscriber) and a worker receives only that text. So the forkserver
preloads this module alone, which imports WeasyPrint and the standard library (not the model, the tables
engine, DuckDB or pyarrow), and a worker's set-up is the fonts and the CSS.

Safety: WeasyPrint's default fetcher follows any URL (``file:``, ``http:``) and would even embed
``/etc/passwd`` through ``<link rel=attachment>``. :class:`SafeURLFetcher` serves only ``data:`` URLs
and files inside the templates folder, and stops the render (``FatalURLFetchingError``) for anything else.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

PDF_VARIANT = "pdf/ua-1"


def quiet_logs() -> None:
    """Keep WeasyPrint's and fontTools' warnings (e.g. "using fontTools instead of HarfBuzz-Subset"
    when ``libharfbuzz-subset0`` is absent) out of wavetool's output; errors still surface."""
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)


class SafeURLFetcher(URLFetcher):
    """Serve ``data:`` URLs and files under ``root``; refuse everything else by stopping the render."""

    def __init__(self, root: Path, *more_roots: Path) -> None:
        super().__init__(timeout=1, allowed_protocols=("data", "file"), allow_redirects=False, fail_on_errors=True)
        self.root = Path(root).resolve()
        self.roots = tuple(Path(r).resolve() for r in (root, *more_roots))

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            response = urllib.request.DataHandler().data_open(urllib.request.Request(url))
            return URLFetcherResponse(url, response.read(), {"Content-Type": response.headers["Content-Type"]})
        if scheme == "file":
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise FatalURLFetchingError(f"refused to fetch {_short(url)}: not a local file")
            path = Path(urllib.request.url2pathname(unquote(parts.path))).resolve()
            if any(path.is_relative_to(root) for root in self.roots) and path.is_file():
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind})
            raise FatalURLFetchingError(f"refused to fetch {_short(url)}: outside the report templates")
        raise FatalURLFetchingError(f"refused to fetch {_short(url)}: reports never use the network")


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."


def folder_state(folder: Path | None) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of a study's template files: an edit between two renders in one process
    must not be hidden by the compiled templates or parsed CSS this process keeps."""
    if folder is None or not folder.is_dir():
        return ()
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file())


class Layout:
    """WeasyPrint's reusable part: the font configuration, the parsed CSS and the safe fetcher."""

    def __init__(self, templates: Path, overrides: Path | None = None) -> None:
        quiet_logs()
        self.templates = Path(templates).resolve()
        self.overrides = Path(overrides).resolve() if overrides else None
        self.overrides_state = folder_state(self.overrides)
        self.fetcher = SafeURLFetcher(self.templates, *([self.overrides] if self.overrides else []))
        self.font_config = FontConfiguration()
        own = self.overrides / "report.css" if self.overrides and (self.overrides / "report.css").is_file() else None
        self.css = CSS(
            filename=str(own or self.templates / "report.css"), url_fetcher=self.fetcher, font_config=self.font_config
        )
        self.base_url = self.templates.as_uri() + "/"

    def document(self, html: str) -> Any:
        """Lay out ``html`` (a WeasyPrint Document)."""
        return HTML(string=html, base_url=self.base_url, url_fetcher=self.fetcher).render(
            font_config=self.font_config, stylesheets=[self.css], pdf_variant=PDF_VARIANT
        )

    def pdf(self, html: str) -> tuple[bytes, int]:
        """``html`` as PDF bytes and its page count."""
        document = self.document(html)
        return document.write_pdf(pdf_variant=PDF_VARIANT), len(document.pages)


# --- render workers --------------------------------------------------------------------------------

_layout: Layout | None = None


class RenderTimeout(BaseException):
    """A render took longer than its time limit (BaseException: WeasyPrint must not swallow it)."""


def init_worker(templates: str, overrides: str | None = None) -> None:
    """Process-pool initializer: load the fonts and parse the CSS once per worker."""
    global _layout
    exit_with_parent()
    _layout = Layout(Path(templates), Path(overrides) if overrides else None)


def exit_with_parent() -> None:
    """End this worker as soon as the process that started it dies.

    A pool worker holds both ends of its own task and result pipes, so it never sees the parent go: after a
    ``kill -9`` of ``wavetool report`` the workers (and through them the forkserver) would wait forever,
    holding memory and the caller's stdout (cron waits for it to close). The parent's sentinel becomes
    readable when the parent dies, whoever kills it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="wavetool-exit-with-parent", daemon=True).start()


def shared_layout(templates: Path, overrides: Path | None = None) -> Layout:
    """This process's layout (built on first use, again when the templates or the study's CSS change)."""
    global _layout
    wanted = Path(overrides).resolve() if overrides else None
    if (
        _layout is None
        or _layout.templates != Path(templates).resolve()
        or _layout.overrides != wanted
        or _layout.overrides_state != folder_state(wanted)
    ):
        _layout = Layout(templates, overrides)
    return _layout


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise RenderTimeout in this (main) thread after ``seconds``; no-op where signals are unavailable."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    fired = []

    def expired(_signum: int, _frame: Any) -> None:
        fired.append(True)
        raise RenderTimeout(f"gave up after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:  # the alarm went off, but its exception landed where Python swallows it (a gc callback, a __del__)
        raise RenderTimeout(f"gave up after {seconds:g} s")


def render_task(
    subscriber: str, html: str, timeout: float | None, templates: str, overrides: str | None = None
) -> dict[str, Any]:
    """Lay out one report's HTML (in a worker or in-process): ``{"ok": True, "pdf": bytes, "pages": n}`` or
    ``{"ok": False, "error": "..."}``. Never raises for a report-level failure."""
    try:
        layout = shared_layout(Path(templates), Path(overrides) if overrides else None)
        with time_limit(timeout):
            pdf, pages = layout.pdf(html)
        # The worker's cumulative CPU (since it was forked), for the benchmark's accounting.
        return {"ok": True, "pdf": pdf, "pages": pages, "pid": os.getpid(), "cpu": time.process_time()}
    except RenderTimeout as exc:
        return {"ok": False, "error": f"{subscriber}: rendering {exc}"}
    except FatalURLFetchingError as exc:
        return {"ok": False, "error": f"{subscriber}: {exc}"}
    except Exception as exc:
        return {"ok": False, "error": f"{subscriber}: {type(exc).__name__}: {exc}"}
