"""Turning a report model into PDF bytes: Jinja2 (autoescaped) → HTML → WeasyPrint (tagged PDF/UA-1).

A :class:`Renderer` holds everything that is costly and reusable: the Jinja environment, the parsed CSS,
the font configuration and the safe URL fetcher. Each render worker builds one in its initializer and
reuses it for every report it renders.

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
import traceback
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from ..errors import ConfigError
from .charts import ChartKit, Dot, Point
from .model import GROUPS_SHOWN, Question, ReportModel, TrendPoint, verdict
from .text import LANG_TAGS, Formatter, load_strings, templates_dir
from .wording import typeset

PDF_VARIANT = "pdf/ua-1"
LANGUAGES = ("en", "fr")


def quiet_logs() -> None:
    """Keep WeasyPrint's and fontTools' warnings (e.g. "using fontTools instead of HarfBuzz-Subset"
    when ``libharfbuzz-subset0`` is absent) out of wavetool's output; errors still surface."""
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)


def make_environment(templates: Path, overrides: Path | None = None) -> Environment:
    """The Jinja environment of the report: autoescaping ON for every template whatever its name
    (``select_autoescape()`` with its defaults would leave ``report.html.j2`` unescaped). Templates in
    ``overrides`` (the study's ``[report] templates`` folder) take precedence over wavetool's own."""
    folders = [str(overrides)] if overrides else []
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(f) for f in [*folders, str(templates)]]),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


# --- the URL fetcher ------------------------------------------------------------------------------


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


# --- from the model to the charts' inputs -----------------------------------------------------------


def _points(trend: tuple[TrendPoint, ...], short_label: str) -> list[Point]:
    """Chart points of a trend: no value for a wave that did not ask the question or suppressed it."""
    return [
        Point(short_label.format(n=t.wave), None if t.suppressed or not t.asked else t.topbox, t.benchmark)
        for t in trend
    ]


def _grouped(items: Any, attribute: str = "theme") -> list[tuple[str, list[Any]]]:
    """Items grouped by ``attribute`` in the order the groups first appear (Jinja's groupby sorts)."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(getattr(item, attribute), []).append(item)
    return list(groups.items())


def _questions_of(model: ReportModel, keys: tuple[str, ...]) -> list[Question]:
    return [q for q in (model.question(k) for k in keys) if q is not None]


def _tests_count(model: ReportModel) -> int:
    """How many significance tests the report's results rest on (for the multiplicity sentence)."""
    count = 0
    for q in model.questions + model.custom:
        if q.suppressed or q.topbox is None:
            continue
        count += q.benchmark_topbox is not None and q.kind != "custom"
        count += q.previous_topbox is not None
    return count


def _dots(items: Any) -> list[Dot]:
    return [Dot(d.number or str(d.importance_rank), d.importance, d.performance, d.quadrant, d.label) for d in items]


def _pair_rows(groups: Any, limit: int) -> list[tuple[str, str, float, str, float]]:
    """The group-differences chart's rows: per difference, the higher group and the lowest group it is
    significantly higher than."""
    rows = []
    for g in list(groups)[:limit]:
        values = dict(g.others)
        lowest = min(g.higher_than, key=lambda name: values.get(name) or 0.0)
        label = f"{g.number} · {g.banner}" if g.number else g.banner
        rows.append((label, g.group, g.value, lowest, values.get(lowest) or 0.0))
    return rows


def _labels_of(items: Any, separator: str) -> str:
    """Attributes named in a sentence: "Q3 Timeliness; Q9 Information" (``separator``: the language's "; ")."""
    return separator.join(f"{d.number} {d.label}".strip() for d in items)


def typeset_strings(strings: dict[str, str], language: str) -> dict[str, str]:
    """The catalogue with the language's typography applied once (French spacing around : ; ! ? « »)."""
    return {k: typeset(v, language) for k, v in strings.items()}


class Renderer:
    """Renders report models to PDF; build once per process and reuse."""

    def __init__(self, templates: Path | None = None, overrides: Path | None = None, layout: bool = True) -> None:
        quiet_logs()
        self.templates = Path(templates or templates_dir()).resolve()
        self.overrides = Path(overrides).resolve() if overrides else None
        self.overrides_state = _folder_state(self.overrides)
        self.env = make_environment(self.templates, self.overrides)
        self.template = self.env.get_template("report.html.j2")
        self.macros = self.env.get_template("charts.svg.j2").module
        self.fetcher = SafeURLFetcher(self.templates, *([self.overrides] if self.overrides else []))
        self.strings = {
            language: typeset_strings(load_strings(self.templates, language), language) for language in LANGUAGES
        }
        if not layout:  # HTML only (checking the templates): no fonts, no CSS
            return
        self.font_config = FontConfiguration()
        css = self.overrides / "report.css" if self.overrides and (self.overrides / "report.css").is_file() else None
        self.css = CSS(
            filename=str(css or self.templates / "report.css"), url_fetcher=self.fetcher, font_config=self.font_config
        )
        self.base_url = self.templates.as_uri() + "/"

    def html(self, model: ReportModel) -> str:
        """The report's HTML."""
        strings = self.strings[model.language]
        fmt = Formatter(model.language)
        title = (
            f"{model.study_name} – {strings['title_final' if model.final else 'title_wave']} – {model.subscriber_name}"
        )
        subject = strings["pdf_subject"].format(
            study=model.study_name, subscriber=model.subscriber_name, wave=model.wave.label
        )
        return self.template.render(
            m=model,
            s=strings,
            fmt=fmt,
            charts=ChartKit(self.macros, fmt, strings),
            charts_points=_points,
            charts_dots=_dots,
            labels_of=_labels_of,
            pair_rows=_pair_rows,
            groups_shown=GROUPS_SHOWN,
            grouped=_grouped,
            questions_of=_questions_of,
            tests_count=_tests_count,
            verdict=verdict,
            lang_tag=LANG_TAGS[model.language],
            title=title,
            subject=subject,
        )

    def document(self, html: str) -> Any:
        """Lay out ``html`` (a WeasyPrint Document)."""
        return HTML(string=html, base_url=self.base_url, url_fetcher=self.fetcher).render(
            font_config=self.font_config, stylesheets=[self.css], pdf_variant=PDF_VARIANT
        )

    def pdf(self, model: ReportModel) -> tuple[bytes, int]:
        """The report as PDF bytes and its page count."""
        document = self.document(self.html(model))
        return document.write_pdf(pdf_variant=PDF_VARIANT), len(document.pages)


# --- render workers --------------------------------------------------------------------------------

_renderer: Renderer | None = None


class RenderTimeout(BaseException):
    """A render took longer than its time limit (BaseException: WeasyPrint must not swallow it)."""


def init_worker(templates: str, overrides: str | None = None) -> None:
    """Process-pool initializer: build the Jinja environment, fonts, CSS and fetcher once per worker."""
    global _renderer
    exit_with_parent()
    _renderer = Renderer(Path(templates), Path(overrides) if overrides else None)


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


def shared_renderer(templates: Path | None = None, overrides: Path | None = None) -> Renderer:
    """This process's renderer (built on first use)."""
    global _renderer
    wanted = Path(overrides).resolve() if overrides else None
    if (
        _renderer is None
        or (templates is not None and _renderer.templates != Path(templates).resolve())
        or _renderer.overrides != wanted
        or _renderer.overrides_state != _folder_state(wanted)
    ):
        _renderer = Renderer(templates, overrides)
    return _renderer


def _folder_state(folder: Path | None) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of a study's template files: an edit between two renders in one process
    must not be hidden by the compiled templates this process keeps."""
    if folder is None or not folder.is_dir():
        return ()
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file())


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise RenderTimeout in this (main) thread after ``seconds``; no-op where signals are unavailable."""
    usable = seconds and hasattr(signal, "setitimer") and _in_main_thread()
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


def _in_main_thread() -> bool:

    return threading.current_thread() is threading.main_thread()


def render_task(
    model_data: dict[str, Any], timeout: float | None, templates: str | None = None, overrides: str | None = None
) -> dict[str, Any]:
    """Render one report (in a worker or in-process): ``{"ok": True, "pdf": bytes, "pages": n}`` or
    ``{"ok": False, "error": "..."}``. Never raises for a report-level failure."""
    subscriber = model_data.get("subscriber_id", "?")
    try:
        renderer = shared_renderer(Path(templates) if templates else None, Path(overrides) if overrides else None)
        with time_limit(timeout):
            pdf, pages = renderer.pdf(ReportModel.from_dict(model_data))
        # The worker's cumulative CPU (since it was forked), for the benchmark's accounting.
        return {"ok": True, "pdf": pdf, "pages": pages, "pid": os.getpid(), "cpu": time.process_time()}
    except RenderTimeout as exc:
        return {"ok": False, "error": f"{subscriber}: rendering {exc}"}
    except FatalURLFetchingError as exc:
        return {"ok": False, "error": f"{subscriber}: {exc}"}
    except TemplateError as exc:
        error = template_error(exc, Path(templates) if templates else None, Path(overrides) if overrides else None)
        return {"ok": False, "error": f"{subscriber}: {error}"}
    except Exception as exc:
        return {"ok": False, "error": f"{subscriber}: {type(exc).__name__}: {exc}"}


def template_error(exc: Exception, templates: Path | None, overrides: Path | None) -> str:
    """A Jinja error as one line naming the template file and line: "report.html.j2: line 12: 'x' is
    undefined"."""
    where = ""
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        where = f"{exc.filename}: line {exc.lineno}: "
    else:
        roots = [str(r) for r in (overrides, templates) if r]
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if any(f.filename.startswith(r) for r in roots)]
        if frames:
            where = f"{frames[-1].filename}: line {frames[-1].lineno}: "
    return f"{where}report template error: {getattr(exc, 'message', None) or exc}"


def check_templates(templates: Path, overrides: Path | None, models: list[ReportModel]) -> None:
    """Fill the report's templates before anything is rendered or written: a template that fails for every
    subscriber is broken (a syntax error, an undefined variable) and is one clear ConfigError naming the
    file and line; one that fails for some subscribers only (their own questions reach a broken part) fails
    those reports alone, at render time. Normally costs one HTML fill (the first model succeeds)."""

    renderer = Renderer(templates, overrides, layout=False)
    first: Exception | None = None
    for model in models:
        try:
            renderer.html(model)
            return
        except TemplateError as exc:
            first = first or exc
    if first is not None:
        raise ConfigError(
            template_error(first, templates, overrides),
            hint="fix the template (variables available: m, s, fmt, charts, title, subject, lang_tag), or remove"
            " [report] templates from wavetool.toml to use wavetool's own",
        ) from None
