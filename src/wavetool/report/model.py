"""The report model: plain, language-resolved data for one subscriber's PDF.

The model is what the templates see, and nothing else: every label is already in the report's language
and every number is one that ``stats.tabulate`` computed. It is JSON-serialisable, which makes it cheap
to send to a render worker and lets its hash stand for "the inputs of this PDF".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..codebook import CORE_LANGUAGE
from ..custom import custom_questions
from ..errors import ConfigError, InputMissingError
from ..stats import Tables, drivers, tabulate_waves, weight_source
from ..stats.samples import sample_sizes
from ..stats.significance import compare_waves, z_critical
from ..store import read_store
from ..texts import set_title, translated
from .text import LOCALES, load_strings, templates_dir
from .wording import benchmark_sentence, subscriber_in_sentence, typeset


@dataclass(frozen=True)
class Category:
    """One answer code of a question: the subscriber's estimate beside the benchmark's."""

    code: str
    label: str
    missing: bool
    n: int | None
    weighted_n: float | None
    percent: float | None
    ci_low: float | None
    ci_high: float | None
    suppressed: bool
    bench_n: int | None = None
    bench_weighted_n: float | None = None
    bench_percent: float | None = None
    bench_ci_low: float | None = None
    bench_ci_high: float | None = None
    bench_suppressed: bool = False


@dataclass(frozen=True)
class TrendPoint:
    """A question's top-box (or an MR item's share) in one wave, for the subscriber and the benchmark.
    ``asked`` is False for a wave whose questionnaire did not have the question: that is not suppression."""

    wave: int
    wave_label: str
    topbox: float | None
    benchmark: float | None
    base_n: int | None
    suppressed: bool
    asked: bool = True


@dataclass(frozen=True)
class SetItem:
    """One line of a multiple-response set, on the set's own base."""

    code: str
    label: str
    percent: float | None
    ci_low: float | None
    ci_high: float | None
    bench_percent: float | None
    suppressed: bool
    trend: tuple[TrendPoint, ...] = ()


@dataclass(frozen=True)
class Question:
    """One question (core, multiple-response set or the subscriber's own) in the reported wave."""

    key: str  # the study-level question, e.g. "Q1", "$CHANNELS" or "C1" for a custom question
    number: str  # what the reader sees before the text, e.g. "Q1" ("" for variables such as AGEGRP)
    text: str
    kind: str  # 'single' | 'multiple' | 'custom'
    base_n: int
    base_weighted: float
    n_eff: float | None
    topbox: float | None
    topbox_ci_low: float | None
    topbox_ci_high: float | None
    bottombox: float | None
    mean: float | None
    sd: float | None
    benchmark_topbox: float | None
    benchmark_mean: float | None
    sig_benchmark: str  # 'higher' | 'lower' | ''
    previous_topbox: float | None
    sig_previous: str  # 'higher' | 'lower' | ''
    test: str
    suppressed: bool
    suppression_reason: str
    categories: tuple[Category, ...]
    trend: tuple[TrendPoint, ...] = ()
    theme: str = ""
    polarity: str = "positive"  # 'positive' | 'negative' (a higher top box is worse) | 'neutral'
    items: tuple[SetItem, ...] = ()  # multiple-response sets
    first_wave: int | None = None  # the first wave that asked it (within the report's span)
    quality: str = ""  # '' | 'E' (use with caution) | 'F' (too unreliable): from the tables' quality flag

    @property
    def has_boxes(self) -> bool:
        """Whether the question has a top box (a scale) rather than only a distribution."""
        return self.topbox is not None

    @property
    def valid(self) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if not c.missing)


@dataclass(frozen=True)
class Finding:
    """A statement for the key-findings page, backed by a significance test."""

    kind: str  # 'benchmark' | 'previous' | 'first' (wave 1 → this wave, full-study reports)
    direction: str  # 'higher' | 'lower'
    question: str
    number: str
    text: str
    value: float
    other: float
    difference: float  # percentage points, value - other
    theme: str = ""
    verdict: str = ""  # 'better' | 'worse' | '' (neutral polarity): what the direction means
    shown: bool = True  # on the key-findings pages (else in the table of further differences)


@dataclass(frozen=True)
class Headline:
    """One measure of the dashboard: the question's top box with everything needed to read it."""

    question: Question | None  # None: not asked in this wave
    key: str
    number: str
    text: str


@dataclass(frozen=True)
class Driver:
    """One attribute of the importance × performance analysis (from ``stats.drivers``)."""

    attribute: str
    number: str
    label: str
    importance: float
    importance_rank: int
    performance: float
    quadrant: str


@dataclass(frozen=True)
class Drivers:
    """The importance × performance analysis of one subscriber in the reported wave."""

    outcome: str
    outcome_text: str
    method: str  # 'shapley-lmg' | 'johnson-relative-weights'
    r2: float | None
    n: int | None
    items: tuple[Driver, ...]
    x_cut: float  # mean importance (100 / attributes): the quadrants' vertical split
    y_cut: float  # mean performance of the attributes: the horizontal split
    history: tuple[tuple[str, str, tuple[int | None, ...]], ...] = ()  # full study: (number, label, rank per wave)


@dataclass(frozen=True)
class GroupDifference:
    """A significant difference between groups of the subscriber's population (a banner column)."""

    banner: str  # e.g. "Age group"
    question: str
    number: str
    text: str
    group: str  # the column that differs
    value: float
    others: tuple[tuple[str, float | None], ...]  # the banner's other columns (label, top box)
    higher_than: tuple[str, ...]  # the columns it is significantly higher than


@dataclass(frozen=True)
class SampleRow:
    """Sample size of one group in one wave, with the margin of error it gives a 50% estimate."""

    wave: int
    group: str
    n: int
    weighted_n: float
    n_eff: float
    margin_of_error: float | None  # percentage points at the report's confidence level


@dataclass(frozen=True)
class SuppressedCell:
    wave: int
    question: str
    number: str
    text: str  # the question's text
    answer: str  # what was withheld: the whole question, the benchmark or the previous wave
    base_n: int | None
    reason: str


@dataclass(frozen=True)
class WaveInfo:
    number: int
    label: str
    fieldwork_start: str | None
    fieldwork_end: str | None


@dataclass(frozen=True)
class Theme:
    name: str
    questions: tuple[str, ...]  # question keys, in the order shown


@dataclass(frozen=True)
class ReportModel:
    """Everything one subscriber's report shows, already in the report's language."""

    subscriber_id: str
    subscriber_name: str
    subscriber_short: str  # for column headers: the jurisdiction's name, or the subscriber's
    language: str  # 'en' | 'fr'
    study_name: str
    wave: WaveInfo
    waves: tuple[WaveInfo, ...]  # waves 1..N (the trend's span)
    final: bool
    created: str  # ISO date the PDF carries as its creation date: from the data, never the clock
    jurisdictions: tuple[str, ...]  # display names of the subscriber's jurisdictions
    confidence: float
    min_base: int
    questions: tuple[Question, ...]
    custom: tuple[Question, ...]
    findings: tuple[Finding, ...]
    samples: tuple[SampleRow, ...]
    suppressed: tuple[SuppressedCell, ...]
    notes: tuple[str, ...]  # crosswalk and drift notes that affect comparisons
    weighting: tuple[str, ...] = field(default=())  # weighting variables (margins) used
    subscriber_sentence: str = ""  # the name as it sits in a sentence (or the plain name)
    benchmark_sentence: str = ""  # the one definition of the benchmark, as in the e-mail
    weighted: bool = True  # whether the weights vary at all (else nothing is called "weighted")
    headline: tuple[Headline, ...] = ()
    themes: tuple[Theme, ...] = ()
    drivers: Drivers | None = None
    groups: tuple[GroupDifference, ...] = ()
    groups_tested: int = 0  # banner comparisons tested (0: no banner analysis in this report)
    long_findings: tuple[Finding, ...] = ()  # full-study: wave 1 → this wave, every measure asked in both
    appendix: bool = False
    book_attached: bool = False  # the Excel data book goes out in the same e-mail ([delivery] attach)
    methods: dict[str, str] = field(default_factory=dict)  # variance, interval, adjust: what the tables used
    unweighted: tuple[int, ...] = field(default=())  # waves imported without a weight (--weight none)

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data (computed once: the model is immutable; do not modify it)."""
        return self._plain

    @cached_property
    def _plain(self) -> dict[str, Any]:
        return _plain(self)

    def sha256(self) -> str:
        """A stable hash of everything the report shows."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def question(self, key: str) -> Question | None:
        """The reported question ``key`` (core or custom), or None."""
        return next((q for q in self.questions + self.custom if q.key == key), None)

    @property
    def shown_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.shown)

    @property
    def further_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.shown)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportModel:
        """Rebuild a model sent as a dict (e.g. to a render worker)."""

        def trend(items: list[dict[str, Any]]) -> tuple[TrendPoint, ...]:
            return tuple(TrendPoint(**t) for t in items)

        def question(q: dict[str, Any] | None) -> Question | None:
            if q is None:
                return None
            return Question(
                **{
                    **q,
                    "categories": tuple(Category(**c) for c in q["categories"]),
                    "trend": trend(q["trend"]),
                    "items": tuple(SetItem(**{**i, "trend": trend(i["trend"])}) for i in q["items"]),
                }
            )

        drivers = data.get("drivers")
        return cls(
            **{
                **data,
                "wave": WaveInfo(**data["wave"]),
                "waves": tuple(WaveInfo(**w) for w in data["waves"]),
                "jurisdictions": tuple(data["jurisdictions"]),
                "questions": tuple(question(q) for q in data["questions"]),
                "custom": tuple(question(q) for q in data["custom"]),
                "findings": tuple(Finding(**f) for f in data["findings"]),
                "samples": tuple(SampleRow(**s) for s in data["samples"]),
                "suppressed": tuple(SuppressedCell(**s) for s in data["suppressed"]),
                "notes": tuple(data["notes"]),
                "weighting": tuple(data["weighting"]),
                "headline": tuple(
                    Headline(**{**h, "question": question(h["question"])}) for h in data.get("headline", [])
                ),
                "themes": tuple(Theme(t["name"], tuple(t["questions"])) for t in data.get("themes", [])),
                "drivers": (
                    Drivers(
                        **{
                            **drivers,
                            "items": tuple(Driver(**d) for d in drivers["items"]),
                            "history": tuple((h[0], h[1], tuple(h[2])) for h in drivers["history"]),
                        }
                    )
                    if drivers
                    else None
                ),
                "groups": tuple(
                    GroupDifference(
                        **{
                            **g,
                            "others": tuple(tuple(o) for o in g["others"]),
                            "higher_than": tuple(g["higher_than"]),
                        }
                    )
                    for g in data.get("groups", [])
                ),
                "long_findings": tuple(Finding(**f) for f in data.get("long_findings", [])),
                "unweighted": tuple(data.get("unweighted", ())),
            }
        )


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (the model's leaves are immutable): dataclasses to
    dicts, tuples to lists."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return value
    if kind is tuple or kind is list:
        return [_plain(v) for v in value]
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


FINDINGS_SHOWN = 14  # findings that fit on the key-findings page; the rest go to the table at the back


def verdict(direction: str, polarity: str) -> str:
    """What a significant 'higher'/'lower' top box means for a question of this polarity."""
    if polarity == "neutral" or direction not in ("higher", "lower"):
        return ""
    good = direction == "higher"
    return "better" if good == (polarity != "negative") else "worse"


def key_findings(
    questions: tuple[Question, ...] | list[Question], shown: int = FINDINGS_SHOWN, themes: list[str] | None = None
) -> tuple[Finding, ...]:
    """Every significant difference (from the significance flags only: each rests on a test ``tabulate``
    ran), ranked by size; the ``shown`` largest are marked for the key-findings page, the others for the
    table of further differences. Returned grouped by theme (in ``themes`` order), largest first within."""
    found = []
    for q in questions:
        if q.suppressed or q.topbox is None:
            continue
        pairs = (("benchmark", q.sig_benchmark, q.benchmark_topbox), ("previous", q.sig_previous, q.previous_topbox))
        for kind, flag, other in pairs:
            if flag in ("higher", "lower") and other is not None:
                found.append(
                    Finding(
                        kind,
                        flag,
                        q.key,
                        q.number,
                        q.text,
                        q.topbox,
                        other,
                        q.topbox - other,
                        theme=q.theme,
                        verdict=verdict(flag, q.polarity),
                    )
                )
    return _rank(found, shown, themes)


def _rank(found: list[Finding], shown: int, themes: list[str] | None) -> tuple[Finding, ...]:
    ranked = sorted(found, key=lambda f: (-abs(f.difference), _natural(f.question), f.kind))
    marked = [replace(f, shown=i < shown) for i, f in enumerate(ranked)]
    order = {name: i for i, name in enumerate(themes or [])}
    return tuple(sorted(marked, key=lambda f: (order.get(f.theme, len(order)), -abs(f.difference))))


# --- building the models from the tables -------------------------------------------------------------

_REPORTED_KINDS = ("single", "custom")  # multiple-response sets are reported through their items


class _Texts:
    """Question and answer texts in one language, collecting every missing translation at once."""

    def __init__(self, config: Any, language: str, languages: dict[tuple[int, str, str], str]) -> None:
        self.config, self.language, self.languages = config, language, languages
        self.missing: dict[str, str] = {}

    def get(self, wave: int, owner: str | None, name: str, code: str | None, source_text: str | None) -> str:

        key = f"{owner}:{name}" if owner else name
        if code is not None:
            key = f"{key}.{code}"
        source_language = self.languages.get((wave, owner or "", name), CORE_LANGUAGE)

        text = translated(self.config, self.language, key, source_text, source_language)
        if text is None:
            self.missing.setdefault(key, source_text or "")
            return source_text or key
        return typeset(text, self.language)

    def check(self, subscriber_id: str) -> None:

        if not self.missing:
            return
        keys = sorted(self.missing, key=_natural)
        shown = "; ".join(f'"{k}" ({self.missing[k]})' if self.missing[k] else f'"{k}"' for k in keys[:12])
        more = f" and {len(keys) - 12} more" if len(keys) > 12 else ""
        raise ConfigError(
            f"{self.config.path}: report for {subscriber_id} ({self.language}): {len(keys)} text(s) have no "
            f"[translations.{self.language}] entry: {shown}{more}",
            hint=f"add them under [translations.{self.language}] in wavetool.toml "
            "(see `wavetool codebook check-translations`)",
        )


def _natural(key: str) -> list[Any]:

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _waves_text(strings: dict[str, str], waves: tuple[int, ...] | list[int], language: str) -> str:
    from babel.lists import format_list  # lazy: babel loads its locale data on import; only report text needs it

    if len(waves) == 1:
        return strings["wave_one"].format(n=waves[0])
    return strings["wave_many"].format(list=format_list([str(w) for w in waves], locale=LOCALES[language]))


@dataclass(frozen=True)
class Computed:
    """Tables of the reported wave that ``wavetool run`` has just computed, for the reports to reuse rather
    than compute again: ``tables``, the wave's tables for at least ``all`` and every subscriber (the run's
    tables step); ``banners``, the wave's tables of the subscribers with their ``[banners]`` columns (the
    data books' step)."""

    wave: int
    tables: Tables
    banners: Tables


def build_models(
    config: Any,
    wave: int,
    subscriber_ids: list[str],
    *,
    final: bool = False,
    questions: list[str] | None = None,
    failures: dict[str, str] | None = None,
    computed: Computed | None = None,
) -> dict[str, ReportModel]:
    """One report model per subscriber from ``stats.tabulate`` of waves 1..``wave`` (the trend) in one
    read-only pass over the database.

    A subscriber whose model cannot be built (a missing translation, say) raises ConfigError listing every
    missing text, or, when ``failures`` is given, is recorded there (id → message) and left out, so that
    the other subscribers' reports are still made."""

    with read_store(config.root) as con:
        imported = {r[0] for r in con.execute("SELECT wave FROM waves").fetchall()}
        span = [w for w in sorted(config.waves) if w <= wave and w in imported]
        if wave not in span:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
            )
        if computed is None or computed.wave != wave or questions is not None:
            # the report reads the banner columns of its own wave only: the earlier waves go without them
            banner_names = list(getattr(getattr(config, "banners", None), "variables", ()) or ())
            own = tabulate_waves(
                config,
                [wave],
                scopes=["all", *subscriber_ids],
                questions=questions,
                con=con,
                banners=banner_names or None,
            )
            computed = Computed(wave, own, own)
        tables = _reusing(config, span, subscriber_ids, con, computed, questions)
        sizes = sample_sizes(con, span)
        weights = {w: weight_source(con, w) for w in span}
        languages = _custom_languages(con, span, subscriber_ids)
        members = _set_members(con)
        drivers = _drivers_rows(config, span if final else [wave], subscriber_ids, con, _without_banners(tables))
        banners = _banner_rows(tables, subscriber_ids, wave)

    data = _Data(tables, span, members)
    z = z_critical(config.tables.confidence)
    templates = templates_dir()
    models = {}
    for sub_id in subscriber_ids:
        try:
            model = _build_one(
                config, wave, sub_id, data, sizes, weights, languages, z, final, templates, drivers, banners
            )
        except ConfigError as exc:
            if failures is None:
                raise
            failures[sub_id] = exc.message
            continue
        models[sub_id] = ReportModel.from_dict(_canonical(model.to_dict()))
    return models


def _reusing(
    config: Any, span: list[int], subscriber_ids: list[str], con: Any, computed: Computed, questions: Any = None
) -> Tables:
    """The tables of the report's waves with the reported wave's taken from ``computed``: the earlier waves
    (the trend) are tabulated here, without banners (the report reads banner columns of its own wave only).
    The same tables as one ``tabulate_waves`` call over the span: each (wave, scope) is computed alone."""
    scopes = ["all", *subscriber_ids]
    earlier = (
        [tabulate_waves(config, span[:-1], scopes=scopes, questions=questions, con=con)] if len(span) > 1 else []
    )  # the wave's own tables come from the run

    def scoped(table: Any, banner_rows: bool) -> Any:
        keep = pc.is_in(table["scope"], value_set=pa.array(scopes))
        if "banner" in table.column_names:
            named = pc.fill_null(pc.not_equal(table["banner"], ""), False)
            keep = pc.and_(keep, named if banner_rows else pc.invert(named))
        elif banner_rows:
            return table.slice(0, 0)
        return table.filter(keep)

    parts = [(t.rows_table, t.summaries_table, t.suppressed_table) for t in [*earlier, computed.tables]]
    plain = [tuple(scoped(x, False) for x in part) for part in parts]
    banner = (
        scoped(computed.banners.rows_table, True),
        scoped(computed.banners.summaries_table, True),
        scoped(computed.banners.suppressed_table, True),
    )
    rows, summaries, audit = (
        pa.concat_tables([*(p[i] for p in plain), banner[i]], promote_options="default") for i in range(3)
    )
    meta = dict(computed.tables.meta)
    if (computed.banners.meta or {}).get("banners"):
        meta["banners"] = computed.banners.meta["banners"]
    return Tables(rows, summaries, audit, meta)


_ROW_FIELDS = (
    "wave", "scope", "question", "code", "label", "missing", "n", "weighted_n", "percent", "ci_low", "ci_high",
    "suppressed",
)  # fmt: skip


def _records(table: Any, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The rows of an Arrow table of the tables engine as dicts, without its banner columns' rows (read
    by _banner_rows) and only ``columns`` (converting every row of every column costs more than the rest
    of the model); NaN as None."""
    if "banner" in table.column_names:
        table = table.filter(pc.fill_null(pc.equal(table["banner"], ""), True))
    if columns:
        table = table.select(list(columns))
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
    return rows


class _Data:
    """The tables of the report's waves, indexed for the model builders."""

    def __init__(self, tables: Any, span: list[int], members: set[str]) -> None:
        self.span = span
        self.members = members  # questions that are items of a multiple-response set
        self.rows: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        for row in _records(tables.rows_table, _ROW_FIELDS):
            self.rows.setdefault((row["wave"], row["scope"], row["question"]), []).append(row)
        self.summaries = {(s["wave"], s["scope"], s["question"]): s for s in _records(tables.summaries_table)}
        self.audit = tables.suppressed
        self.order: dict[str, int] = {}
        for key in self.summaries:
            self.order.setdefault(key[2], len(self.order))


def _build_one(
    config: Any,
    wave: int,
    sub_id: str,
    data: _Data,
    sizes: dict,
    weights: dict,
    languages: dict,
    z: float,
    final: bool,
    templates: Any,
    drivers: dict,
    banners: dict,
) -> ReportModel:
    subscriber = config.subscriber(sub_id)
    language = subscriber.language
    strings = load_strings(templates, language)
    texts = _Texts(config, language, languages)
    theme_of, theme_list = _themes(config, language, strings)
    built = _questions(config, wave, data, sub_id, texts, strings, theme_of)
    core = tuple(q for q in built if q.kind != "custom")
    custom = tuple(q for q in built if q.kind == "custom")
    notes = _notes(config, data.span, core, data.summaries, sub_id, strings, language)
    suppressed = _suppressed(data, sub_id, wave, texts, strings)
    texts.check(sub_id)
    present = {q.key for q in core}
    themes = [Theme(name, tuple(k for k in keys if k in present)) for name, keys in theme_list]
    listed = {k for t in themes for k in t.questions}
    rest = tuple(q.key for q in core if q.key not in listed)
    if rest:
        themes.append(Theme(typeset(strings["other_questions"], language), rest))
    themes = [t for t in themes if t.questions]
    theme_names = [t.name for t in themes] + [typeset(strings["custom_title"], language)]
    long_findings = _first_to_last(config, wave, data, core, sub_id, theme_names) if final else ()
    groups, tested = _groups(banners, sub_id, wave, core, texts)
    return ReportModel(
        subscriber_id=sub_id,
        subscriber_name=subscriber.display_name(language),
        subscriber_short=(
            config.jurisdictions[subscriber.jurisdictions[0]].name(language)
            if len(subscriber.jurisdictions) == 1 and subscriber.jurisdictions[0] in config.jurisdictions
            else subscriber.display_name(language)
        ),
        language=language,
        study_name=config.name_fr if language == "fr" else config.name,
        wave=_wave_info(config, wave, language),
        waves=tuple(_wave_info(config, w, language) for w in data.span),
        final=final,
        created=_created(config, wave),
        jurisdictions=tuple(
            config.jurisdictions[c].name(language) if c in config.jurisdictions else c for c in subscriber.jurisdictions
        ),
        confidence=config.tables.confidence,
        min_base=config.tables.min_base,
        questions=core,
        custom=custom,
        findings=key_findings(core + custom, themes=theme_names),
        samples=_samples(config, data.span, subscriber, sizes, z, strings, language),
        suppressed=suppressed,
        notes=notes,
        weighting=tuple(config.weighting.margins) if weights.get(wave) == "raked" else (),
        subscriber_sentence=typeset(subscriber_in_sentence(subscriber, language), language),
        benchmark_sentence=benchmark_sentence(config, subscriber, language),
        weighted=_weights_vary(sizes.get(wave, {})),
        unweighted=tuple(w for w in data.span if weights.get(w) == "unweighted"),
        headline=_headline(config, core + custom, texts, wave),
        themes=tuple(themes),
        drivers=_drivers(drivers.get(sub_id), core, wave, data.span),
        groups=groups,
        groups_tested=tested,
        long_findings=long_findings,
        appendix=config.report.appendix,
        book_attached="xlsx" in config.delivery.attach,
        methods=_methods(config),
    )


def _headline(config: Any, reported: tuple[Question, ...], texts: _Texts, wave: int) -> tuple[Headline, ...]:
    """The dashboard's measures: ``[report] headline``, else the first three rating questions."""
    by_key = {q.key: q for q in reported}
    singles = [q for q in reported if q.kind == "single"]
    # a wave too small to report shows its rating questions as withheld rather than an empty dashboard
    rated = [q.key for q in singles if q.has_boxes] or [q.key for q in singles if q.suppressed]
    keys = list(config.report.headline) or rated[:3]
    result = []
    for key in keys:
        q = by_key.get(key)
        if q is not None:
            result.append(Headline(q, key, q.number, q.text))
        else:  # not asked in this wave: named by its translation where there is one, else by its number
            text = (config.translations.get(texts.language) or {}).get(key, "")
            result.append(Headline(None, key, _number(key) or key, text))
    return tuple(result)


def _first_to_last(
    config: Any, wave: int, data: _Data, core: tuple[Question, ...], sub_id: str, themes: list[str]
) -> tuple[Finding, ...]:
    """Full-study report: every rating question asked in the first wave and in this one, its change over
    the study tested with the standard errors the tables computed (design-based where the tables are;
    Kish's n_eff otherwise), the p-values adjusted together as the tables adjust theirs. One row per
    question, significant or not, grouped by theme."""
    first = data.span[0]
    if first == wave:
        return ()
    rows, pairs = [], []
    for q in core:
        a, b = data.summaries.get((first, sub_id, q.key)), data.summaries.get((wave, sub_id, q.key))
        if not a or not b or a["topbox"] is None or b["topbox"] is None or a["suppressed"] or b["suppressed"]:
            continue
        rows.append((q, a, b))
        pairs.append((b["topbox"], _topbox_se(b), a["topbox"], _topbox_se(a)))
    tests = compare_waves(pairs, config.tables.confidence, str(getattr(config.tables, "adjust", "none")))
    result = []
    for (q, a, b), (flag, _p, _q) in zip(rows, tests, strict=True):
        result.append(
            Finding(
                "first",
                flag,
                q.key,
                q.number,
                q.text,
                b["topbox"],
                a["topbox"],
                b["topbox"] - a["topbox"],
                theme=q.theme,
                verdict=verdict(flag, q.polarity),
            )
        )
    order = {name: i for i, name in enumerate(themes)}
    return tuple(sorted(result, key=lambda f: (order.get(f.theme, len(order)), not f.direction, -abs(f.difference))))


def _topbox_se(summary: dict[str, Any]) -> float:
    """The top box's standard error in percentage points: the tables' own (``topbox_se``), else the
    binomial one on Kish's effective base."""
    if summary.get("topbox_se") is not None:
        return float(summary["topbox_se"])
    p, n_eff = summary["topbox"] / 100.0, summary.get("n_eff") or 0.0
    return 100.0 * (p * (1 - p) / n_eff) ** 0.5 if n_eff > 0 else 0.0


def _without_banners(tables: Any) -> Any:
    """The tables without their banner columns (``stats.drivers`` reads one top box per scope and
    question from the summaries it is given)."""
    summaries = tables.summaries_table
    if "banner" not in summaries.column_names:
        return tables
    plain = pc.fill_null(pc.equal(summaries["banner"], ""), True)
    return Tables(tables.rows_table, summaries.filter(plain), tables.suppressed_table, tables.meta)


def _drivers_rows(
    config: Any, waves: list[int], subscriber_ids: list[str], con: Any, tables: Any
) -> dict[str, dict[int, dict[str, Any]]]:
    """``stats.drivers`` of each subscriber in ``waves``: {subscriber: {wave: {"rows": [...], "skipped":
    reason}}}; empty where the study configures no drivers analysis."""
    spec = getattr(config, "drivers", None)
    if spec is None or spec.outcome is None:
        return {}
    result: dict[str, dict[int, dict[str, Any]]] = {sub: {} for sub in subscriber_ids}
    for w in waves:
        try:
            found = drivers(config, w, scopes=subscriber_ids, con=con, tables=tables)
        except ConfigError:
            continue  # e.g. an attribute not asked in that wave: no drivers for it
        for row in found.rows:
            result[row["scope"]].setdefault(w, {"rows": [], "skipped": ""})["rows"].append(row)
        for row in found.skipped:
            result[row["scope"]].setdefault(w, {"rows": [], "skipped": ""})["skipped"] = row.get("reason") or ""
    return result


def _drivers(
    found: dict[int, dict[str, Any]] | None, core: tuple[Question, ...], wave: int, span: list[int]
) -> Drivers | None:
    """The drivers section's model: the attributes with their question's text in the report's language."""
    if not found or wave not in found or not found[wave]["rows"]:
        return None
    rows = found[wave]["rows"]
    by_key = {q.key: q for q in core}
    items = []
    for r in rows:
        q = by_key.get(r["attribute"])
        if r["performance"] is None or not r["quadrant"]:
            continue
        items.append(
            Driver(
                attribute=r["attribute"],
                number=_number(r["attribute"]),
                label=q.text if q is not None else r["label"],
                importance=r["importance"],
                importance_rank=r["importance_rank"],
                performance=r["performance"],
                quadrant=r["quadrant"],
            )
        )
    if not items:
        return None
    outcome = rows[0]["outcome"]
    history = []
    if len(span) > 1:
        for item in items:
            ranks = []
            for w in span:
                match = [x for x in found.get(w, {}).get("rows", []) if x["attribute"] == item.attribute]
                ranks.append(match[0]["importance_rank"] if match else None)
            history.append((item.number, item.label, tuple(ranks)))
    return Drivers(
        outcome=outcome,
        outcome_text=by_key[outcome].text if outcome in by_key else outcome,
        method=rows[0]["method"],
        r2=rows[0]["r2"],
        n=rows[0]["n"],
        items=tuple(items),
        x_cut=100.0 / len(rows),
        y_cut=sum(i.performance for i in items) / len(items),
        history=tuple(history),
    )


def _banner_rows(tables: Any, subscriber_ids: list[str], wave: int) -> dict[str, Any]:
    """The banner columns of each subscriber's questions in the reported ``wave`` (the tables' banner
    summaries) and the banners' definitions: {"meta": [...], subscriber: [summary, ...]}; empty without
    ``[banners]``. Selected in Arrow first: only these rows become Python dicts."""
    meta = (tables.meta or {}).get("banners")
    if not meta:
        return {}

    table = tables.summaries_table
    wanted = pc.and_(
        pc.and_(pc.fill_null(pc.not_equal(table["banner"], ""), False), pc.equal(table["wave"], wave)),
        pc.is_in(table["scope"], value_set=pa.array(subscriber_ids, pa.string())),
    )
    table = table.filter(wanted)
    columns = ["wave", "scope", "question", "kind", "banner", "banner_code", "banner_label", "column"]
    columns += ["topbox", "topbox_sig_columns", "suppressed"]
    result: dict[str, Any] = {"meta": meta["variables"]}
    for s in table.select(columns).to_pylist():
        if s["scope"] in subscriber_ids and s["kind"] != "multiple":
            result.setdefault(s["scope"], []).append(s)
    return result


GROUPS_SHOWN = 6  # group differences described in words (all of them are in the data book)


def _groups(
    banners: dict[str, Any], sub_id: str, wave: int, core: tuple[Question, ...], texts: _Texts
) -> tuple[tuple[GroupDifference, ...], int]:
    """The significant top-box differences between banner columns of the subscriber's population (the
    tables' column tests: the letters of the columns a column is significantly higher than), largest first,
    and how many column comparisons were tested."""
    if not banners:
        return (), 0
    codes = {(b["variable"], c["column"]): set(c["codes"]) for b in banners["meta"] for c in b["columns"]}
    banner_label = {b["variable"]: b["label"] for b in banners["meta"]}
    by_key = {q.key: q for q in core if q.has_boxes and not q.suppressed}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in banners.get(sub_id, []):
        if s["wave"] == wave and s["question"] in by_key:
            cells.setdefault((s["question"], s["banner"]), []).append(s)
    found, tested = [], 0
    for (question, banner), columns in cells.items():
        live = [c for c in columns if c["topbox"] is not None and not c["suppressed"]]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                tested += not (codes[(banner, a["column"])] & codes[(banner, b["column"])])

        def name(c: dict[str, Any], banner: str = banner) -> str:
            if len(codes[(banner, c["column"])]) > 1:  # a net: its configured name
                return typeset(c["banner_label"], texts.language)
            return texts.get(wave, None, banner, c["banner_code"], c["banner_label"])

        letters = {c["column"]: c for c in live}
        for c in live:
            lower = [letters[x] for x in (c["topbox_sig_columns"] or "") if x in letters]
            if not lower:
                continue
            q = by_key[question]
            found.append(
                GroupDifference(
                    banner=texts.get(wave, None, banner, None, banner_label.get(banner, banner)),
                    question=question,
                    number=q.number,
                    text=q.text,
                    group=name(c),
                    value=c["topbox"],
                    others=tuple((name(o), o["topbox"]) for o in live if o is not c),
                    higher_than=tuple(name(o) for o in lower),
                )
            )
    gap = {id(g): g.value - max(v for label, v in g.others if label in g.higher_than) for g in found}
    found.sort(key=lambda g: (-gap[id(g)], _natural(g.question)))
    return tuple(found), tested


def _weights_vary(per_jurisdiction: dict[str, tuple[int, float, float]]) -> bool:
    """Whether any two respondents of the wave have different weights: n·Σw² = (Σw)² exactly when all
    weights are equal (Cauchy-Schwarz); with equal weights nothing is described as "weighted"."""
    n = sum(v[0] for v in per_jurisdiction.values())
    sw = sum(v[1] for v in per_jurisdiction.values())
    sw2 = sum(v[2] for v in per_jurisdiction.values())
    return n > 0 and n * sw2 - sw * sw > 1e-9 * sw * sw


def _methods(config: Any) -> dict[str, str]:
    """How the tables computed their intervals and tests (the methodology page names them)."""
    tables = config.tables
    return {
        "variance": str(getattr(tables, "variance", "kish")),
        "interval": str(getattr(tables, "interval", "wald")),
        "adjust": str(getattr(tables, "adjust", "none")),
        "cv_caution": f"{getattr(tables, 'cv_caution', 0.0):g}",
        "cv_suppress": f"{getattr(tables, 'cv_suppress', 0.0):g}",
        "banner_adjust": str(getattr(getattr(config, "banners", None), "adjust", "none")),
    }


def _themes(config: Any, language: str, strings: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, list[str]]]]:
    """Question key → theme name, and the themes in order, from ``[[report.themes]]``."""
    theme_of: dict[str, str] = {}
    ordered = []
    for theme in config.report.themes:
        name = typeset(theme.name_fr if language == "fr" else theme.name, language)
        ordered.append((name, list(theme.questions)))
        for key in theme.questions:
            theme_of.setdefault(key, name)
    return theme_of, ordered


def _set_members(con: Any) -> set[str]:
    """The questions that are items of a multiple-response set (reported through their set)."""
    question = {
        (w, name): q
        for w, name, q in con.execute(
            "SELECT wave, name, question FROM variables WHERE book = '' AND role IS NULL"
        ).fetchall()
    }
    members = set()
    for w, variables in con.execute("SELECT wave, variables FROM mr_sets WHERE book = ''").fetchall():
        members.update(question.get((w, v), v) for v in variables or [])
    return members


def _number(key: str) -> str:
    """The question number a reader sees: "Q1", "C2", "BC_1"; none for a variable name like AGEGRP."""
    return key if re.fullmatch(r"[A-Za-z]{1,3}_?\d+[A-Za-z]?", key) else ""


def _questions(
    config: Any,
    wave: int,
    data: _Data,
    sub_id: str,
    texts: _Texts,
    strings: dict[str, str],
    theme_of: dict[str, str],
) -> list[Question]:
    language = texts.language
    custom_theme = typeset(strings["custom_title"], language)
    result = []
    for (w, scope, name), summary in data.summaries.items():
        if w != wave or scope != sub_id or name in data.members:
            continue
        kind = summary["kind"]
        owner = sub_id if kind == "custom" else None
        mine = data.rows.get((wave, sub_id, name), [])
        everyone = data.rows.get((wave, "all", name), []) if owner is None else []
        trend = _trend(config, data, sub_id, name, "topbox", language)
        items: tuple[SetItem, ...] = ()
        if kind == "multiple":
            full = _set_items(config, wave, data, sub_id, name, mine, everyone, texts)
            text = typeset(set_title(config, language, name, summary["label"], [i.label for i in full]), language)
            items = _strip_common_prefix(full)
            categories: list[Category] = []
        else:
            text = texts.get(wave, owner, name, None, summary["label"])
            categories = _categories(wave, owner, name, mine, everyone, config.tables.min_base, texts, strings)
        present = [p for p in trend if p.asked]
        first = min((w for w in data.span if (w, sub_id, name) in data.summaries), default=None)
        result.append(
            Question(
                key=name,
                number=_number(name),
                text=text,
                kind=kind,
                base_n=summary["base_n"],
                base_weighted=summary["base_weighted"],
                n_eff=summary["n_eff"],
                topbox=summary["topbox"],
                topbox_ci_low=summary["topbox_ci_low"],
                topbox_ci_high=summary["topbox_ci_high"],
                bottombox=summary["bottombox"],
                mean=summary["mean"],
                sd=summary["sd"],
                benchmark_topbox=summary["benchmark_topbox"],
                benchmark_mean=summary["benchmark_mean"],
                sig_benchmark=summary["sig_topbox_vs_benchmark"] or "",
                previous_topbox=summary["previous_topbox"],
                sig_previous=summary["sig_topbox_vs_previous"] or "",
                test=summary["test"] or "",
                suppressed=bool(summary["suppressed"]),
                suppression_reason=summary["suppression_reason"] or "",
                categories=tuple(categories),
                trend=tuple(trend) if len(present) > 1 and summary["topbox"] is not None else (),
                theme=custom_theme if kind == "custom" else theme_of.get(name, ""),
                polarity=_polarity(config, sub_id, name, kind),
                items=items,
                first_wave=first,
                quality=str(summary.get("quality") or ""),
            )
        )
    result.sort(key=lambda q: data.order.get(q.key, 0))
    return result


def _polarity(config: Any, sub_id: str, name: str, kind: str) -> str:
    polarity = config.tables.polarity
    key = f"{sub_id}:{name}" if kind == "custom" else name
    return polarity.get(key) or polarity.get(name) or "positive"


def _trend(config: Any, data: _Data, sub_id: str, name: str, field_name: str, language: str) -> list[TrendPoint]:
    """The question's top box in every wave of the span; a wave without the question is "not asked"."""
    trend = []
    for t in data.span:
        s = data.summaries.get((t, sub_id, name))
        label = _wave_info(config, t, language).label
        if s is None:
            trend.append(TrendPoint(t, label, None, None, None, False, asked=False))
        else:
            trend.append(TrendPoint(t, label, s[field_name], s["benchmark_topbox"], s["base_n"], bool(s["suppressed"])))
    return trend


def _set_items(
    config: Any,
    wave: int,
    data: _Data,
    sub_id: str,
    name: str,
    mine: list[dict[str, Any]],
    everyone: list[dict[str, Any]],
    texts: _Texts,
) -> tuple[SetItem, ...]:
    """A multiple-response set's lines on the set's own base, with the benchmark share (all other
    respondents: the ``all`` scope's counts minus the subscriber's, on the set's base) and each line's trend."""
    summary_all = data.summaries.get((wave, "all", name))
    mine_summary = data.summaries[(wave, sub_id, name)]
    bench_base = None
    if summary_all is not None:
        bench_base = summary_all["base_weighted"] - mine_summary["base_weighted"]
        if summary_all["base_n"] - mine_summary["base_n"] < config.tables.min_base:
            bench_base = None
    all_by_code = {r["code"]: r for r in everyone}
    items = []
    for r in mine:
        if r["missing"] or r["code"] == ".":
            continue
        a = all_by_code.get(r["code"])
        bench = None
        if a is not None and bench_base and a["weighted_n"] is not None and r["weighted_n"] is not None:
            bench = 100.0 * (a["weighted_n"] - r["weighted_n"]) / bench_base
        trend = []
        for t in data.span:
            rows = {x["code"]: x for x in data.rows.get((t, sub_id, name), [])}
            label = _wave_info(config, t, texts.language).label
            if (t, sub_id, name) not in data.summaries:
                trend.append(TrendPoint(t, label, None, None, None, False, asked=False))
            elif r["code"] in rows:
                x = rows[r["code"]]
                trend.append(TrendPoint(t, label, x["percent"], None, x["n"], bool(x["suppressed"])))
            else:
                trend.append(TrendPoint(t, label, None, None, None, False, asked=False))
        label = texts.get(wave, None, r["code"], None, r["label"]) if r["code"] in data.members else r["label"]
        items.append(
            SetItem(
                code=r["code"],
                label=label,
                percent=r["percent"],
                ci_low=r["ci_low"],
                ci_high=r["ci_high"],
                bench_percent=bench,
                suppressed=bool(r["suppressed"]),
                trend=tuple(trend) if sum(p.asked for p in trend) > 1 else (),
            )
        )
    return tuple(items)


def _common_head(items: tuple[SetItem, ...]) -> str | None:
    heads = {i.label.rsplit(":", 1)[0].strip() for i in items if ":" in i.label}
    return heads.pop() if len(heads) == 1 and all(":" in i.label for i in items) else None


def _strip_common_prefix(items: tuple[SetItem, ...]) -> tuple[SetItem, ...]:
    """Item labels "Channel used…: In person", "Channel used…: Telephone" → "In person", "Telephone"
    (the shared part is the set's title)."""
    if _common_head(items):
        return tuple(replace(i, label=i.label.rsplit(":", 1)[1].strip()) for i in items)
    return tuple(items)


def _canonical(value: Any) -> Any:
    """Floats rounded to 10 significant digits. DuckDB's parallel sums differ from run to run in the
    last bits; the report prints at most 2 decimals, and the model's hash must not see that noise."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _wave_info(config: Any, number: int, language: str) -> WaveInfo:
    w = config.wave(number)
    return WaveInfo(
        number=number,
        label=w.label_fr if language == "fr" else w.label,
        fieldwork_start=w.fieldwork_start.isoformat() if w.fieldwork_start else None,
        fieldwork_end=w.fieldwork_end.isoformat() if w.fieldwork_end else None,
    )


def _created(config: Any, wave: int) -> str:
    """The report's date: the end of the wave's fieldwork (from the config, never the clock)."""
    w = config.wave(wave)
    date = w.fieldwork_end or w.fieldwork_start
    return date.isoformat() if date else ""


def _custom_languages(con: Any, waves: list[int], subscriber_ids: list[str]) -> dict[tuple[int, str, str], str]:
    """The language of each custom question's labels: (wave, subscriber, question) → 'en' | 'fr'."""

    result = {}
    for w in waves:
        for sub in subscriber_ids:
            for cq in custom_questions(con, w, sub):
                result[(w, sub, cq.question)] = cq.language
    return result


def _categories(
    wave: int,
    owner: str | None,
    name: str,
    mine: list[dict[str, Any]],
    everyone: list[dict[str, Any]],
    min_base: int,
    texts: _Texts,
    strings: dict[str, str],
) -> list[Category]:
    """The subscriber's rows with the benchmark beside them. The benchmark (all other respondents) is
    the ``all`` scope minus the subscriber's own cells: both are sums of the same weights, so the
    difference is exact and agrees with tabulate's benchmark top-box."""
    by_code = {r["code"]: r for r in everyone}
    bench: dict[str, tuple[int, float]] = {}
    for r in mine:
        a = by_code.get(r["code"])
        if a is not None and a["n"] is not None and r["n"] is not None:
            bench[r["code"]] = (a["n"] - r["n"], a["weighted_n"] - r["weighted_n"])
    valid_codes = [r["code"] for r in mine if not r["missing"] and r["code"] in bench]
    bench_base_n = sum(bench[c][0] for c in valid_codes)
    bench_base_w = sum(bench[c][1] for c in valid_codes)
    bench_ok = bool(bench) and bench_base_n >= min_base and bench_base_w > 0
    result = []
    for r in mine:
        code = r["code"]
        label = (
            typeset(strings["system_missing"], texts.language)
            if code == "."
            else texts.get(wave, owner, name, code, r["label"])
        )
        b = bench.get(code)
        bench_percent = 100.0 * b[1] / bench_base_w if (b and bench_ok and not r["missing"]) else None
        result.append(
            Category(
                code=code,
                label=label,
                missing=bool(r["missing"]),
                n=r["n"],
                weighted_n=r["weighted_n"],
                percent=r["percent"],
                ci_low=r["ci_low"],
                ci_high=r["ci_high"],
                suppressed=bool(r["suppressed"]),
                bench_n=b[0] if b else None,
                bench_weighted_n=b[1] if b else None,
                bench_percent=bench_percent,
                bench_suppressed=bool(bench) and not bench_ok,
            )
        )
    return result


def _samples(
    config: Any, span: list[int], subscriber: Any, sizes: dict, z: float, strings: dict[str, str], language: str
) -> tuple[SampleRow, ...]:
    def row(w: int, group: str, parts: list[tuple[int, float, float]]) -> SampleRow:
        n = sum(p[0] for p in parts)
        sw = sum(p[1] for p in parts)
        sw2 = sum(p[2] for p in parts)
        n_eff = sw * sw / sw2 if sw2 else 0.0
        moe = 100.0 * z * (0.25 / n_eff) ** 0.5 if n_eff > 0 else None
        return SampleRow(w, group, n, sw, n_eff, moe)

    result = []
    mine = set(subscriber.jurisdictions)
    for w in span:
        per = sizes[w]
        for code in subscriber.jurisdictions:
            if code in per:
                name = config.jurisdictions[code].name(language) if code in config.jurisdictions else code
                result.append(row(w, name, [per[code]]))
        if len(subscriber.jurisdictions) > 1:
            result.append(
                row(w, subscriber.display_name(language), [per[c] for c in subscriber.jurisdictions if c in per])
            )
        others = [v for c, v in per.items() if c not in mine]
        if others:
            result.append(row(w, strings["benchmark_group"], others))
    return tuple(result)


def _notes(
    config: Any,
    span: list[int],
    core: tuple[Question, ...],
    summaries: dict,
    sub_id: str,
    strings: dict[str, str],
    language: str,
) -> tuple[str, ...]:
    """Comparability notes, generated in the report's language from the crosswalk's structure (its free
    ``note`` is in one language only) and from when each question was first asked."""
    shown = {q.key: q for q in core}
    notes = []
    for entry in config.crosswalk:
        q = shown.get(entry.question)
        waves = [w for w in entry.waves if w in span]
        if q is None or not waves:
            continue
        waves_text = _waves_text(strings, waves, language)
        if entry.variable and entry.variable != entry.question:
            notes.append(
                strings["note_renamed"].format(
                    question=q.number, text=q.text, variable=entry.variable, waves=waves_text
                )
            )
        if entry.recode:
            notes.append(strings["note_recoded"].format(question=q.number, text=q.text, waves=waves_text))
        if entry.labels_reworded:
            notes.append(strings["note_reworded"].format(question=q.number, text=q.text, waves=waves_text))
    added: dict[int, list[Question]] = {}
    for q in core:
        first = min((w for w in span if (w, sub_id, q.key) in summaries), default=None)
        if first is not None and first > span[0]:
            added.setdefault(first, []).append(q)
    for first, questions in sorted(added.items()):
        if len(questions) == 1:
            q = questions[0]
            notes.append(strings["note_added"].format(question=q.number or q.text, text=q.text, wave=first))
        else:
            from babel.lists import format_list  # lazy: babel loads its locale data on import

            names = format_list([q.number or q.text for q in questions], locale=LOCALES[language])
            notes.append(strings["note_added_many"].format(questions=names, wave=first))

    return tuple(typeset(n, language) for n in notes)


def _suppressed(
    data: _Data, sub_id: str, wave: int, texts: _Texts, strings: dict[str, str]
) -> tuple[SuppressedCell, ...]:
    """What the tables withheld for this subscriber in the reported wave, in the reader's words: the answer
    (its label, not its code) or the comparison, and why (too few respondents, or too unreliable)."""
    what = {
        "question": strings["whole_question"],
        "benchmark": strings["benchmark"],
        "previous wave": strings["previous_wave"],
    }
    result = []
    for a in data.audit:
        if a["scope"] != sub_id or a["wave"] != wave or a["question"] in data.members or a.get("banner"):
            continue  # banner columns' suppressions are the data book's
        summary = data.summaries.get((a["wave"], sub_id, a["question"]))
        if summary is None:
            continue
        owner = sub_id if summary["kind"] == "custom" else None
        withheld = a["withheld"] or ""
        answer = what.get(withheld, withheld)
        if withheld.startswith("code "):
            code = withheld[5:]
            row = next((r for r in data.rows.get((wave, sub_id, a["question"]), []) if r["code"] == code), None)
            label = row["label"] if row else code
            answer = texts.get(wave, owner, a["question"], code, label) if summary["kind"] != "multiple" else label
        reason = a["reason"] or ""
        why = strings["reason_unreliable"] if "cv" in reason.lower() else strings["reason_base"]
        result.append(
            SuppressedCell(
                wave=a["wave"],
                question=a["question"],
                number=_number(a["question"]),
                text=(
                    texts.get(a["wave"], owner, a["question"], None, summary["label"])
                    if summary["kind"] != "multiple"
                    else a["question"]
                ),
                answer=typeset(answer, texts.language),
                base_n=a["base_n"],
                reason=typeset(why, texts.language),
            )
        )
    return tuple(result)
