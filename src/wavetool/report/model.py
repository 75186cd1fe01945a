"""The report model: plain, language-resolved data for one subscriber's PDF.

The model is what the templates see, and nothing else: every label is already in the report's language
and every number is one that ``stats.tabulate`` computed. It is JSON-serialisable, which makes it cheap
to send to a render worker and lets its hash stand for "the inputs of this PDF".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..codebook import CORE_LANGUAGE
from ..custom import custom_questions
from ..errors import ConfigError, InputMissingError
from ..stats import tabulate_waves, weight_source
from ..stats.samples import sample_sizes
from ..stats.significance import z_critical
from ..store import read_store
from ..texts import translated
from .text import LOCALES, load_strings, templates_dir


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
    """A question's top-box in one wave, for the subscriber and the benchmark."""

    wave: int
    wave_label: str
    topbox: float | None
    benchmark: float | None
    base_n: int | None
    suppressed: bool


@dataclass(frozen=True)
class Question:
    """One question (core or the subscriber's own) in the reported wave."""

    key: str  # the study-level question, e.g. "Q1" or "C1" for a custom question
    number: str  # what the reader sees before the text, e.g. "Q1"
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

    @property
    def has_boxes(self) -> bool:
        """Whether the question has a top box (a scale) rather than only a distribution."""
        return self.topbox is not None

    @property
    def middle(self) -> float | None:
        """The share neither in the top nor in the bottom box."""
        if self.topbox is None or self.bottombox is None:
            return None
        return max(0.0, 100.0 - self.topbox - self.bottombox)


@dataclass(frozen=True)
class Finding:
    """A statement for the key-findings page, backed by a significance test."""

    kind: str  # 'benchmark' | 'previous'
    direction: str  # 'higher' | 'lower'
    question: str
    number: str
    text: str
    value: float
    other: float
    difference: float  # percentage points, value - other


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
    unweighted: tuple[int, ...] = field(default=())  # waves imported without a weight (--weight none)

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data."""
        return asdict(self)

    def sha256(self) -> str:
        """A stable hash of everything the report shows."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportModel:
        """Rebuild a model sent as a dict (e.g. to a render worker)."""

        def question(q: dict[str, Any]) -> Question:
            return Question(
                **{
                    **q,
                    "categories": tuple(Category(**c) for c in q["categories"]),
                    "trend": tuple(TrendPoint(**t) for t in q["trend"]),
                }
            )

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
                "unweighted": tuple(data.get("unweighted", ())),
            }
        )


def key_findings(questions: tuple[Question, ...] | list[Question], limit: int = 5) -> tuple[Finding, ...]:
    """Findings from the significance flags only: every statement rests on a test ``tabulate`` ran.

    The largest significant differences from the benchmark first, then the largest significant
    changes since the previous wave; at most ``limit`` of each kind.
    """
    versus_benchmark, versus_previous = [], []
    for q in questions:
        if q.suppressed or q.topbox is None:
            continue
        if q.sig_benchmark in ("higher", "lower") and q.benchmark_topbox is not None:
            versus_benchmark.append(
                Finding(
                    "benchmark",
                    q.sig_benchmark,
                    q.key,
                    q.number,
                    q.text,
                    q.topbox,
                    q.benchmark_topbox,
                    q.topbox - q.benchmark_topbox,
                )
            )
        if q.sig_previous in ("higher", "lower") and q.previous_topbox is not None:
            versus_previous.append(
                Finding(
                    "previous",
                    q.sig_previous,
                    q.key,
                    q.number,
                    q.text,
                    q.topbox,
                    q.previous_topbox,
                    q.topbox - q.previous_topbox,
                )
            )

    def biggest(items: list[Finding]) -> list[Finding]:
        return sorted(items, key=lambda f: (-abs(f.difference), f.question))[:limit]

    return tuple(biggest(versus_benchmark) + biggest(versus_previous))


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
        return text

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


def build_models(
    config: Any, wave: int, subscriber_ids: list[str], *, final: bool = False, questions: list[str] | None = None
) -> dict[str, ReportModel]:
    """One report model per subscriber from ``stats.tabulate`` of waves 1..``wave`` (the trend) in one
    read-only pass over the database. Raises ConfigError listing every missing translation."""

    with read_store(config.root) as con:
        imported = {r[0] for r in con.execute("SELECT wave FROM waves").fetchall()}
        span = [w for w in sorted(config.waves) if w <= wave and w in imported]
        if wave not in span:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE...` first"
            )
        tables = tabulate_waves(config, span, scopes=["all", *subscriber_ids], questions=questions, con=con)
        sizes = sample_sizes(con, span)
        weights = {w: weight_source(con, w) for w in span}
        languages = _custom_languages(con, span, subscriber_ids)

    rows: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for row in tables.rows:
        rows.setdefault((row["wave"], row["scope"], row["question"]), []).append(row)
    summaries = {(s["wave"], s["scope"], s["question"]): s for s in tables.summaries}
    audit = tables.suppressed
    z = z_critical(config.tables.confidence)
    templates = templates_dir()
    models = {}
    for sub_id in subscriber_ids:
        subscriber = config.subscriber(sub_id)
        language = subscriber.language
        strings = load_strings(templates, language)
        texts = _Texts(config, language, languages)
        built = _questions(config, wave, span, sub_id, summaries, rows, texts, strings)
        core = tuple(q for q, kind in built if kind != "custom")
        custom = tuple(q for q, kind in built if kind == "custom")
        notes = _notes(config, span, core, summaries, sub_id, strings, language)
        suppressed = _suppressed(audit, sub_id, wave, summaries, texts, strings)
        texts.check(sub_id)
        models[sub_id] = ReportModel(
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
            waves=tuple(_wave_info(config, w, language) for w in span),
            final=final,
            created=_created(config, wave),
            jurisdictions=tuple(
                config.jurisdictions[c].name(language) if c in config.jurisdictions else c
                for c in subscriber.jurisdictions
            ),
            confidence=config.tables.confidence,
            min_base=config.tables.min_base,
            questions=core,
            custom=custom,
            findings=key_findings(core + custom),
            samples=_samples(config, span, subscriber, sizes, z, strings, language),
            suppressed=suppressed,
            notes=notes,
            weighting=tuple(config.weighting.margins) if weights.get(wave) == "raked" else (),
            unweighted=tuple(w for w in span if weights.get(w) == "unweighted"),
        )
        models[sub_id] = ReportModel.from_dict(_canonical(models[sub_id].to_dict()))
    return models


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


def _questions(
    config: Any,
    wave: int,
    span: list[int],
    sub_id: str,
    summaries: dict,
    rows: dict,
    texts: _Texts,
    strings: dict[str, str],
) -> list[tuple[Question, str]]:
    result = []
    for (w, scope, name), summary in summaries.items():
        if w != wave or scope != sub_id or summary["kind"] not in _REPORTED_KINDS:
            continue
        owner = sub_id if summary["kind"] == "custom" else None
        categories = _categories(
            wave,
            owner,
            name,
            rows.get((wave, sub_id, name), []),
            rows.get((wave, "all", name), []) if owner is None else [],
            config.tables.min_base,
            texts,
            strings,
        )
        trend = []
        for t in span:
            s = summaries.get((t, sub_id, name))
            wave_label = _wave_info(config, t, texts.language).label
            if s is None:
                trend.append(TrendPoint(t, wave_label, None, None, None, False))
            else:
                trend.append(
                    TrendPoint(t, wave_label, s["topbox"], s["benchmark_topbox"], s["base_n"], bool(s["suppressed"]))
                )
        present = [p for p in trend if p.base_n is not None]
        result.append(
            (
                Question(
                    key=name,
                    number=name,
                    text=texts.get(wave, owner, name, None, summary["label"]),
                    kind=summary["kind"],
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
                    trend=tuple(trend) if len(present) > 1 else (),
                ),
                summary["kind"],
            )
        )
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
        label = strings["system_missing"] if code == "." else texts.get(wave, owner, name, code, r["label"])
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
    for q in core:
        first = min((w for w in span if (w, sub_id, q.key) in summaries), default=None)
        if first is not None and first > span[0]:
            notes.append(strings["note_added"].format(question=q.number, text=q.text, wave=first))
    return tuple(notes)


def _suppressed(
    audit: list[dict[str, Any]], sub_id: str, wave: int, summaries: dict, texts: _Texts, strings: dict[str, str]
) -> tuple[SuppressedCell, ...]:
    what = {
        "question": strings["whole_question"],
        "benchmark": strings["benchmark"],
        "previous wave": strings["previous_wave"],
    }
    result = []
    for a in audit:
        if a["scope"] != sub_id or a["wave"] > wave:
            continue
        summary = summaries.get((a["wave"], sub_id, a["question"]))
        if summary is None or summary["kind"] not in _REPORTED_KINDS:
            continue
        owner = sub_id if summary["kind"] == "custom" else None
        result.append(
            SuppressedCell(
                wave=a["wave"],
                question=a["question"],
                number=a["question"],
                text=texts.get(a["wave"], owner, a["question"], None, summary["label"]),
                answer=what.get(a["withheld"], a["withheld"]),
                base_n=a["base_n"],
                reason=a["reason"] or "",
            )
        )
    return tuple(result)
