"""Turning a report model into HTML (Jinja2, autoescaped) and, through :mod:`.pdf`, into PDF bytes.

A :class:`Renderer` holds what is costly and reusable on the HTML side: the Jinja environment with its
compiled templates and the typeset strings catalogues. The main process builds one and fills every
subscriber's HTML with it; the render workers only lay that HTML out (:mod:`.pdf`).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError

from ..errors import ConfigError
from .charts import ChartKit, Dot, Point
from .model import GROUPS_SHOWN, Question, ReportModel, TrendPoint, verdict
from .pdf import PDF_VARIANT, Layout, SafeURLFetcher, folder_state, quiet_logs
from .text import LANG_TAGS, Formatter, load_strings, templates_dir
from .wording import typeset

__all__ = [
    "PDF_VARIANT",
    "Renderer",
    "SafeURLFetcher",
    "check_templates",
    "fill_html",
    "make_environment",
    "quiet_logs",
]

LANGUAGES = ("en", "fr")


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
        self.templates = Path(templates or templates_dir()).resolve()
        self.overrides = Path(overrides).resolve() if overrides else None
        self.overrides_state = folder_state(self.overrides)
        self.env = make_environment(self.templates, self.overrides)
        self.template = self.env.get_template("report.html.j2")
        self.macros = self.env.get_template("charts.svg.j2").module
        self.strings = {
            language: typeset_strings(load_strings(self.templates, language), language) for language in LANGUAGES
        }
        # HTML only (the main process of render_reports: the workers lay out): no fonts, no CSS
        self.layout = Layout(self.templates, self.overrides) if layout else None
        if self.layout is not None:
            self.fetcher, self.font_config, self.css = self.layout.fetcher, self.layout.font_config, self.layout.css
            self.base_url = self.layout.base_url

    def html(self, model: ReportModel) -> str:
        """The report's HTML."""
        strings = self.strings[model.language]
        fmt = Formatter(model.language)
        title = (
            f"{model.study_name} – {strings['title_final' if model.final else 'title_wave']} – {model.subscriber_name}"
        )
        # "for the Government of Ontario" where the config gives the name as it sits in a sentence, else worded
        # so that the plain name needs no article (as in the e-mail's subject)
        named = bool(model.subscriber_sentence) and model.subscriber_sentence != model.subscriber_name
        subject = strings["pdf_subject" if named else "pdf_subject_plain"].format(
            study=model.study_name,
            subscriber=model.subscriber_sentence if named else model.subscriber_name,
            wave=model.wave.label,
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
        assert self.layout is not None, "a Renderer(layout=False) only fills HTML"
        return self.layout.document(html)

    def pdf(self, model: ReportModel) -> tuple[bytes, int]:
        """The report as PDF bytes and its page count."""
        assert self.layout is not None, "a Renderer(layout=False) only fills HTML"
        return self.layout.pdf(self.html(model))


_html_renderer: Renderer | None = None


def html_renderer(templates: Path | None = None, overrides: Path | None = None) -> Renderer:
    """This process's HTML renderer (compiled once; again when the templates folder or the study's own
    template files change)."""
    global _html_renderer
    wanted = Path(overrides).resolve() if overrides else None
    r = _html_renderer
    if (
        r is None
        or r.templates != Path(templates or templates_dir()).resolve()
        or r.overrides != wanted
        or r.overrides_state != folder_state(wanted)
    ):
        r = _html_renderer = Renderer(templates, overrides, layout=False)
    return r


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


def check_templates(templates: Path, overrides: Path | None, models: dict[str, ReportModel]) -> dict[str, str]:
    """Fill the report's templates before anything is rendered or written: a template that fails for every
    subscriber is broken (a syntax error, an undefined variable) and is one clear ConfigError naming the
    file and line; one that fails for some subscribers only (their own questions reach a broken part) fails
    those reports alone, at render time. Normally costs one HTML fill (the first model succeeds), which is
    returned (id → HTML) so that it is not filled again."""
    try:
        renderer = html_renderer(templates, overrides)
    except TemplateError as exc:
        raise _broken(exc, templates, overrides) from None
    first: Exception | None = None
    for sub_id, model in models.items():
        try:
            return {sub_id: renderer.html(model)}
        except TemplateError as exc:
            first = first or exc
        except Exception:  # not the template's fault: that report fails at render time
            continue
    if first is not None:
        raise _broken(first, templates, overrides) from None
    return {}


def fill_html(
    templates: Path, overrides: Path | None, models: dict[str, ReportModel], done: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Each model's HTML (id → HTML; ``done``: already filled) and the ids whose HTML failed (id → one-line
    reason): one subscriber's failure is that subscriber's alone (see :func:`check_templates`)."""
    renderer = html_renderer(templates, overrides)
    pages: dict[str, str] = {}
    errors: dict[str, Exception] = {}
    for sub_id, model in models.items():
        if done and sub_id in done:
            pages[sub_id] = done[sub_id]
            continue
        try:
            pages[sub_id] = renderer.html(model)
        except Exception as exc:  # one report's failure is that report's alone
            errors[sub_id] = exc
    return pages, {s: f"{s}: {_reason(e, templates, overrides)}" for s, e in errors.items()}


def _reason(exc: Exception, templates: Path, overrides: Path | None) -> str:
    if isinstance(exc, TemplateError):
        return template_error(exc, templates, overrides)
    return f"{type(exc).__name__}: {exc}"


def _broken(exc: Exception, templates: Path, overrides: Path | None) -> ConfigError:
    return ConfigError(
        template_error(exc, templates, overrides),
        hint="fix the template (variables available: m, s, fmt, charts, title, subject, lang_tag), or remove"
        " [report] templates from wavetool.toml to use wavetool's own",
    )
