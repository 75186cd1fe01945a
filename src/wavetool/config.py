"""The study configuration (``wavetool.toml``), loaded once into frozen, validated objects.

Every unknown key is an error naming the file and the key's dotted path, so a typo in a config
never silently changes what is imported, tabulated or sent.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "wavetool.toml"
# \A...\Z, not ^...$: `$` also matches before a final line break ("ontario\n" is no file name).
SLUG_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")
# The local part is an RFC 5322 dot-atom: no leading, trailing or doubled dot.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL_RE = re.compile(
    rf"\A{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+\Z"
)
LANGUAGES = ("en", "fr")
# The study name `wavetool init --from` writes: `report`, `run` and `send` refuse it (StudyConfig.require_name),
# so that no report goes out titled by a name nobody chose.
PLACEHOLDER_NAME = "CHANGE ME: the study's name"
# A study's waves are its [[waves]] entries (Citizens First has four; a tracker may run more). The bound only
# keeps a typo such as 20201 from becoming a wave.
MAX_WAVE = 99


ROW_IDS = "row"  # `id = "row"`: the file has no respondent id; row numbers are the ids
NO_WEIGHT = "none"  # `weight = "none"`: the file has no weight; every respondent weighs 1 (unweighted)
ROLE_KEYS = ("id", "jurisdiction", "weight", "jurisdiction_code", "strata", "cluster")


@dataclass(frozen=True)
class ColumnRoles:
    """Which file columns hold the respondent id, the jurisdiction and the final weight, or the explicit
    opt-outs: ``id = "row"`` (row numbers as ids), ``weight = "none"`` (unweighted) and ``jurisdiction_code``
    ((file name, code) pairs; file name "" = every file): the jurisdiction of every row of a file without
    a jurisdiction column; and (optional) the sampling design's strata (default: the jurisdiction) and
    clusters (PSUs; default: none)."""

    id: str = "RESPID"
    jurisdiction: str = "PROV"
    weight: str = "WEIGHT"
    jurisdiction_code: tuple[tuple[str, str], ...] = ()
    strata: str | None = None
    cluster: str | None = None

    def merged(self, **overrides: Any) -> ColumnRoles:
        """These roles with the non-empty ``overrides`` applied. A jurisdiction column given without a
        jurisdiction code replaces an inherited code (the column is then what holds the jurisdiction)."""
        values = {k: v for k, v in overrides.items() if v}
        if values.get("jurisdiction") and "jurisdiction_code" not in values:
            values["jurisdiction_code"] = ()
        return ColumnRoles(**{**self.__dict__, **values})

    @property
    def row_ids(self) -> bool:
        return self.id == ROW_IDS

    @property
    def weighted(self) -> bool:
        return self.weight != NO_WEIGHT

    def code_for(self, file_name: str) -> str | None:
        """The jurisdiction code every row of ``file_name`` gets, or None (its jurisdiction column holds it)."""
        codes = dict(self.jurisdiction_code)
        return codes.get(file_name, codes.get(""))

    def columns_for(self, file_name: str) -> dict[str, str]:
        """role -> the column of ``file_name`` that holds it; an opted-out role (``id = "row"``,
        ``weight = "none"``, a jurisdiction code for the file) has none."""
        columns = {}
        if not self.row_ids:
            columns["id"] = self.id
        if self.code_for(file_name) is None:
            columns["jurisdiction"] = self.jurisdiction
        if self.weighted:
            columns["weight"] = self.weight
        return columns

    def describe(self) -> dict[str, Any]:
        """The roles as shown in ``import --json`` and stored with a wave."""
        out: dict[str, Any] = {"id": self.id, "jurisdiction": self.jurisdiction, "weight": self.weight}
        if self.jurisdiction_code:
            out["jurisdiction_code"] = {name or "*": code for name, code in self.jurisdiction_code}
        return out

    def columns(self) -> list[str]:
        """The id, jurisdiction and weight columns, in that order."""
        return [self.id, self.jurisdiction, self.weight]

    def resolved(self, names: list[str]) -> ColumnRoles:
        """These roles spelled as the file spells them (SPSS names match whatever their case: ``respid`` is
        the file's ``RESPID``); a role no column matches, and an opt-out (``row``, ``none``), is left as it is."""

        def spelled(column: str | None) -> str | None:
            return (find_column(names, column) or column) if column else column

        return replace(
            self,
            id=self.id if self.row_ids else spelled(self.id),
            jurisdiction=spelled(self.jurisdiction),
            weight=spelled(self.weight) if self.weighted else self.weight,
            strata=spelled(self.strata),
            cluster=spelled(self.cluster),
        )


@dataclass(frozen=True)
class Wave:
    number: int
    label: str
    label_fr: str
    fieldwork_start: dt.date | None
    fieldwork_end: dt.date | None
    inbox: str | None = None
    codebook: str | None = None
    column_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Jurisdiction:
    code: str
    en: str
    fr: str

    def name(self, language: str) -> str:
        return self.fr if language == "fr" else self.en


@dataclass(frozen=True)
class CustomFile:
    """A custom-question file that ``wavetool run`` merges for a subscriber."""

    wave: int
    file: str
    codebook: str | None = None


@dataclass(frozen=True)
class Subscriber:
    id: str
    name: str
    name_fr: str
    jurisdictions: tuple[str, ...]
    language: str
    contacts: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str | None = None
    custom_prefix: str | None = None
    custom: tuple[CustomFile, ...] = ()
    # The name as it sits inside a sentence ("the Government of Ontario", "le gouvernement du Québec");
    # None: reports use wording that needs no article.
    sentence_name: str | None = None
    sentence_name_fr: str | None = None

    def display_name(self, language: str | None = None) -> str:
        return self.name_fr if (language or self.language) == "fr" else self.name

    def in_sentence(self, language: str | None = None) -> str | None:
        """The configured in-sentence name (``sentence_name`` / ``sentence_name_fr``), or None."""
        return self.sentence_name_fr if (language or self.language) == "fr" else self.sentence_name


@dataclass(frozen=True)
class CrosswalkEntry:
    """An explained difference between waves: a rename, a recode or a reworded label."""

    question: str
    waves: tuple[int, ...]
    variable: str | None = None
    recode: dict[float, float] = field(default_factory=dict)
    labels_reworded: bool = False
    note: str = ""
    version: int = 1


@dataclass(frozen=True)
class ScaleBoxes:
    top: tuple[float, ...]
    bottom: tuple[float, ...]


VARIANCES = ("linearized", "kish")
INTERVALS = ("wilson", "korn-graubard", "wald")
ADJUSTMENTS = ("bh", "holm", "none")


@dataclass(frozen=True)
class TablesConfig:
    min_base: int = 30
    confidence: float = 0.95
    scales: dict[str, ScaleBoxes] = field(default_factory=dict)
    variance: str = "linearized"  # or "kish" (Wald on Kish's n_eff: the tables before issue 12)
    interval: str = "wilson"
    adjust: str = "bh"
    cv_caution: float = 16.6  # percent; 0 = no E flags
    cv_suppress: float = 33.3  # percent; 0 = no F flags
    min_effective_base: float = 0.0  # 0 = off
    # [tables.scales.Q] polarity: 'positive' (the top box is good, the default), 'negative', 'neutral'
    polarity: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BannersConfig:
    """``[banners]``: the subgroup columns of banner tables and data books."""

    variables: tuple[str, ...] = ()
    nets: dict[str, dict[str, tuple[float, ...]]] = field(default_factory=dict)  # variable -> name -> codes
    adjust: str = "bonferroni"


BANNER_ADJUSTMENTS = ("bonferroni", "bh", "none")


@dataclass(frozen=True)
class WeightingConfig:
    margins: dict[str, dict[str, float]] = field(default_factory=dict)
    max_iterations: int = 1000
    tolerance: float = 1e-6
    trim: tuple[float, float] | None = None
    # hold each jurisdiction's share of the starting weights as an extra margin when the jurisdiction is not one
    keep_jurisdiction_totals: bool = True


@dataclass(frozen=True)
class ReportTheme:
    """A group of questions shown together in the report (``[[report.themes]]``)."""

    name: str
    name_fr: str
    questions: tuple[str, ...]


@dataclass(frozen=True)
class ReportConfig:
    output_dir: str = "reports"
    jobs: int | None = None
    timeout: float = 300.0
    templates: str | None = None
    headline: tuple[str, ...] = ()  # the dashboard's measures (default: the first three rating questions)
    appendix: bool = False  # add the detailed per-question tables back to the PDF
    benchmark_label: dict[str, str] = field(default_factory=dict)  # language → the benchmark's definition
    themes: tuple[ReportTheme, ...] = ()


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"
    user: str | None = None
    password_env: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class DeliveryConfig:
    transport: str = "outbox"
    attach: tuple[str, ...] = ("pdf",)
    outbox_dir: str = "outbox"
    sender: str = ""  # [delivery] from: required to compose a message (no default address would be true)
    reply_to: str | None = None
    rate_limit: float | None = None
    max_retries: int = 3
    smtp: SmtpConfig | None = None


@dataclass(frozen=True)
class PipelineConfig:
    lock_timeout: float = 60.0


@dataclass(frozen=True)
class DriversConfig:
    """``[drivers]``: the drivers-of-satisfaction analysis (``wavetool drivers``). ``outcome`` is None when
    the study has no such analysis configured."""

    outcome: str | None = None
    attributes: tuple[str, ...] = ()
    min_base: int = 100
    replicates: int = 0
    seed: int = 20200601


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``wavetool.toml`` says about a study; ``root`` is the study folder."""

    root: Path
    path: Path
    name: str
    name_fr: str
    columns: ColumnRoles
    waves: dict[int, Wave]
    jurisdictions: dict[str, Jurisdiction]
    subscribers: dict[str, Subscriber]
    crosswalk: tuple[CrosswalkEntry, ...] = ()
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    scale_translations: dict[str, dict[str, str]] = field(default_factory=dict)  # answer text -> translation
    tables: TablesConfig = TablesConfig()
    weighting: WeightingConfig = WeightingConfig()
    report: ReportConfig = ReportConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    pipeline: PipelineConfig = PipelineConfig()
    banners: BannersConfig = BannersConfig()
    drivers: DriversConfig = DriversConfig()

    def require_name(self) -> None:
        """A ConfigError when [study] name is still the placeholder of `wavetool init`."""
        if self.name.strip() == PLACEHOLDER_NAME or not self.name.strip():
            raise ConfigError(
                f"{self.path}: study.name is still {self.name!r}: it is the title of every report and e-mail",
                hint=f'set [study] name (and name_fr) in {self.path.name}, e.g. name = "Citizens First 2020"',
            )

    def roles_for_wave(self, wave: int) -> ColumnRoles:
        """Column roles for ``wave``: the study's roles with that wave's overrides applied."""
        overrides = self.waves[wave].column_overrides if wave in self.waves else {}
        return self.columns.merged(**overrides)

    def wave(self, number: int) -> Wave:
        """The configured wave ``number``, or a ConfigError listing the configured ones."""
        if number not in self.waves:
            known = ", ".join(str(n) for n in sorted(self.waves)) or "none"
            raise ConfigError(
                f"{self.path}: wave {number} is not configured (configured waves: {known})",
                hint=f"add a [[waves]] entry with number = {number}",
            )
        return self.waves[number]

    def subscriber(self, subscriber_id: str) -> Subscriber:
        """The subscriber ``subscriber_id``, or a ConfigError listing the known ids."""
        if subscriber_id not in self.subscribers:
            known = ", ".join(sorted(self.subscribers)) or "none"
            raise ConfigError(
                f"{self.path}: unknown subscriber {subscriber_id!r} (known: {known})",
                hint="check the id against the [[subscribers]] entries",
            )
        return self.subscribers[subscriber_id]

    def resolve(self, relative: str | Path) -> Path:
        """A path from the config, taken relative to the study folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


class _Section:
    """A TOML table being read: tracks the dotted path for errors and rejects unknown keys."""

    def __init__(self, file: Path, path: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: [{path}] must be a table, not {type(data).__name__}")
        self.file, self.path, self.data = file, path, data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str, hint: str | None = None) -> ConfigError:
        return ConfigError(
            f"{self.file}: {self.key(name)}: {problem}",
            hint=hint or f"fix `{self.key(name)}` in {self.file.name} (see the commented example from `wavetool init`)",
        )

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise self.error(unknown[0], "unknown key", hint=f"allowed keys here: {', '.join(sorted(allowed))}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(name, f"must be {_kind_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise self.error(name, f"must be {_kind_name(kind)}, not {type(value).__name__} {value!r}")
        return value

    def strings(self, name: str, required: bool = False) -> tuple[str, ...]:
        value = self.get(name, list, default=[], required=required)
        if not all(isinstance(v, str) for v in value):
            raise self.error(name, "must be a list of strings")
        return tuple(value)

    def section(self, name: str) -> _Section:
        return _Section(self.file, self.key(name), self.data.get(name, {}))


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def find_column(names: list[str], wanted: str) -> str | None:
    """The column of ``names`` that ``wanted`` names, as SPSS matches names (whatever their case): the exact
    spelling first, else the one name equal ignoring case; None when there is none (or two)."""
    if wanted in names:
        return wanted
    folded = [n for n in names if n.casefold() == wanted.casefold()]
    return folded[0] if len(folded) == 1 else None


def by_name(table: dict[str, Any], key: str) -> Any:
    """``table[key]`` for a config table keyed by variable or question names (``[tables.scales]``, translation
    keys), matched as SPSS matches names: the exact key first, else the one key equal ignoring case."""
    if key in table:
        return table[key]
    folded = [k for k in table if k.casefold() == key.casefold()]
    return table[folded[0]] if len(folded) == 1 else None


def find_study(start: Path) -> Path:
    """The study folder holding ``start`` (as git finds a repository): the first of ``start`` and the folders
    above it that holds a wavetool.toml; a ConfigError naming ``start`` when none does."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise ConfigError(
        f"{start}: not a study folder (no {CONFIG_NAME} here or in any folder above it)",
        hint=f"cd into the study folder, pass --study DIR (or set WAVETOOL_STUDY), or run `wavetool init {start}`",
    )


def load_config(study: Path) -> StudyConfig:
    """Read and validate ``study/wavetool.toml`` (or the file ``study`` itself)."""
    study = Path(study)
    path = study if study.is_file() else study / CONFIG_NAME
    if not path.exists():
        raise ConfigError(
            f"{path.absolute()}: no study configuration here",
            hint=f"run `wavetool init {study}` or pass --study DIR (or set WAVETOOL_STUDY)",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="save the file as UTF-8") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path) -> StudyConfig:
    """Validate an already-parsed TOML document into a :class:`StudyConfig`."""
    top = _Section(path, "", data)
    top.check_keys(
        {
            "study",
            "columns",
            "waves",
            "jurisdictions",
            "subscribers",
            "crosswalk",
            "translations",
            "tables",
            "weighting",
            "report",
            "delivery",
            "pipeline",
            "banners",
            "drivers",
        }
    )
    study = top.section("study")
    study.check_keys({"name", "name_fr"})
    name = study.get("name", str, required=True)
    columns = _parse_columns(top.section("columns"), ColumnRoles())
    jurisdictions = _parse_jurisdictions(top.section("jurisdictions"))
    config = StudyConfig(
        root=path.parent.resolve(),
        path=path,
        name=name,
        name_fr=study.get("name_fr", str, default=name),
        columns=columns,
        waves=_parse_waves(top, path),
        jurisdictions=jurisdictions,
        subscribers=_parse_subscribers(top, path, jurisdictions),
        crosswalk=_parse_crosswalk(top, path),
        translations=_parse_translations(top.section("translations")),
        scale_translations=_parse_scale_translations(top.section("translations")),
        tables=_parse_tables(top.section("tables")),
        weighting=_parse_weighting(top.section("weighting")),
        report=_parse_report(top.section("report")),
        delivery=_parse_delivery(top.section("delivery")),
        pipeline=_parse_pipeline(top.section("pipeline")),
        banners=_parse_banners(top.section("banners")),
        drivers=_parse_drivers(top.section("drivers")),
    )
    return config


def _parse_columns(sec: _Section, base: ColumnRoles) -> ColumnRoles:
    return base.merged(**_role_values(sec))


def _role_values(sec: _Section) -> dict[str, Any]:
    """The role keys of a ``[columns]`` table (study-wide or a wave's): column names, or the opt-outs
    ``id = "row"``, ``weight = "none"`` and ``jurisdiction_code = "CODE"`` / ``{ "file.sav" = "CODE" }``."""
    sec.check_keys(set(ROLE_KEYS))
    values: dict[str, Any] = {}
    for key in ("id", "jurisdiction", "weight"):
        value = sec.get(key, str)
        if value is not None and not value.strip():
            opt_out = {"id": f' or "{ROW_IDS}" (row numbers as ids)', "weight": f' or "{NO_WEIGHT}" (unweighted)'}
            raise sec.error(
                key,
                "is empty: name the column" + opt_out.get(key, '; a file without one takes jurisdiction_code = "CODE"'),
            )
        values[key] = value
    for key in ("strata", "cluster"):  # design roles: a column name, or absent
        values[key] = sec.get(key, str)
    code = sec.data.get("jurisdiction_code")
    if code is not None:
        pairs = {"": code} if isinstance(code, str) else code if isinstance(code, dict) else None
        if not pairs or not all(isinstance(v, str) and v.strip() for v in pairs.values()):
            raise sec.error("jurisdiction_code", 'must be a jurisdiction code ("YT") or a table of file name = code')
        if values.get("jurisdiction") and "" in pairs:
            raise sec.error(
                "jurisdiction_code",
                f"gives every file one jurisdiction, but jurisdiction = {values['jurisdiction']!r} names a column: keep one",
            )
        values["jurisdiction_code"] = tuple((name, c.strip()) for name, c in pairs.items())
    return values


def _items(top: _Section, name: str, path: Path) -> list[_Section]:
    value = top.data.get(name, [])
    if not isinstance(value, list):
        raise top.error(name, "must be an array of tables ([[" + name + "]])")
    return [_Section(path, f"{name}[{i}]", item) for i, item in enumerate(value)]


def _date(sec: _Section, name: str) -> dt.date | None:
    value = sec.get(name, (dt.date, str))
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise sec.error(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value


def _parse_waves(top: _Section, path: Path) -> dict[int, Wave]:
    waves: dict[int, Wave] = {}
    for sec in _items(top, "waves", path):
        sec.check_keys(
            {"number", "label", "label_fr", "fieldwork_start", "fieldwork_end", "inbox", "codebook", "columns"}
        )
        number = sec.get("number", int, required=True)
        if not 1 <= number <= MAX_WAVE:
            raise sec.error("number", f"{number} is not a wave number 1-{MAX_WAVE}")
        if number in waves:
            raise sec.error("number", f"wave {number} is listed twice")
        overrides = _role_values(sec.section("columns"))
        label = sec.get("label", str, default=f"Wave {number}")
        start, end = _date(sec, "fieldwork_start"), _date(sec, "fieldwork_end")
        if start and end and end < start:
            raise sec.error("fieldwork_end", f"{end} is before fieldwork_start {start}")
        waves[number] = Wave(
            number=number,
            label=label,
            label_fr=sec.get("label_fr", str, default=label),
            fieldwork_start=start,
            fieldwork_end=end,
            inbox=sec.get("inbox", str),
            codebook=sec.get("codebook", str),
            column_overrides={k: v for k, v in overrides.items() if v is not None},
        )
    return dict(sorted(waves.items()))


def _parse_jurisdictions(sec: _Section) -> dict[str, Jurisdiction]:
    result = {}
    for code, names in sec.data.items():
        item = _Section(sec.file, sec.key(code), names)
        item.check_keys({"en", "fr"})
        en = item.get("en", str, required=True)
        result[code] = Jurisdiction(code=code, en=en, fr=item.get("fr", str, default=en))
    return result


def _parse_subscribers(top: _Section, path: Path, jurisdictions: dict[str, Jurisdiction]) -> dict[str, Subscriber]:
    subscribers: dict[str, Subscriber] = {}
    for sec in _items(top, "subscribers", path):
        sec.check_keys(
            {
                "id",
                "name",
                "name_fr",
                "jurisdictions",
                "language",
                "contacts",
                "cc",
                "bcc",
                "reply_to",
                "custom_prefix",
                "custom",
                "sentence_name",
                "sentence_name_fr",
            }
        )
        sub_id = sec.get("id", str, required=True)
        if not SLUG_RE.match(sub_id):
            raise sec.error(
                "id",
                f"{sub_id!r} is not a safe id",
                hint="use lowercase letters, digits and hyphens only (it becomes a file name)",
            )
        if sub_id in subscribers:
            raise sec.error("id", f"duplicate subscriber id {sub_id!r}", hint="each subscriber needs its own id")
        codes = sec.strings("jurisdictions", required=True)
        if not codes:
            raise sec.error("jurisdictions", "must list at least one jurisdiction code")
        for code in codes:
            if jurisdictions and code not in jurisdictions:
                raise sec.error(
                    "jurisdictions",
                    f"unknown jurisdiction code {code!r}",
                    hint=f"known codes: {', '.join(jurisdictions)}",
                )
        language = sec.get("language", str, default="en")
        if language not in LANGUAGES:
            raise sec.error("language", f"{language!r} is not one of en, fr")
        addresses = {}
        for key in ("contacts", "cc", "bcc"):
            addresses[key] = sec.strings(key, required=key == "contacts")
            for address in addresses[key]:
                if not EMAIL_RE.match(address):
                    raise sec.error(
                        key,
                        f"{address!r} is not a valid e-mail address",
                        hint="use full addresses like analyst@example.org",
                    )
        reply_to = sec.get("reply_to", str)
        if reply_to is not None and not EMAIL_RE.match(reply_to):  # "" is no address either
            raise sec.error("reply_to", f"{reply_to!r} is not a valid e-mail address")
        custom = []
        for i, item in enumerate(sec.data.get("custom", [])):
            c = _Section(path, f"{sec.path}.custom[{i}]", item)
            c.check_keys({"wave", "file", "codebook"})
            custom.append(
                CustomFile(
                    wave=c.get("wave", int, required=True),
                    file=c.get("file", str, required=True),
                    codebook=c.get("codebook", str),
                )
            )
        name = sec.get("name", str, required=True)
        subscribers[sub_id] = Subscriber(
            id=sub_id,
            name=name,
            name_fr=sec.get("name_fr", str, default=name),
            jurisdictions=codes,
            language=language,
            contacts=addresses["contacts"],
            cc=addresses["cc"],
            bcc=addresses["bcc"],
            reply_to=reply_to,
            custom_prefix=sec.get("custom_prefix", str),
            custom=tuple(custom),
            sentence_name=sec.get("sentence_name", str),
            sentence_name_fr=sec.get("sentence_name_fr", str),
        )
    return subscribers


def _number_key(sec: _Section, key: str) -> float:
    try:
        return float(key)
    except ValueError:
        raise sec.error(key, "must be a numeric code") from None


def _parse_crosswalk(top: _Section, path: Path) -> tuple[CrosswalkEntry, ...]:
    entries = []
    for sec in _items(top, "crosswalk", path):
        sec.check_keys({"question", "variable", "waves", "recode", "labels_reworded", "note", "version"})
        waves = sec.get("waves", list, required=True)
        if not waves or not all(isinstance(w, int) and 1 <= w <= MAX_WAVE for w in waves):
            raise sec.error("waves", f"must be a non-empty list of wave numbers 1-{MAX_WAVE}")
        recode_sec = sec.section("recode")
        recode = {}
        for key, value in recode_sec.data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise recode_sec.error(key, "must map a code to a numeric code")
            recode[_number_key(recode_sec, key)] = float(value)
        entries.append(
            CrosswalkEntry(
                question=sec.get("question", str, required=True),
                waves=tuple(waves),
                variable=sec.get("variable", str),
                recode=recode,
                labels_reworded=sec.get("labels_reworded", bool, default=False),
                note=sec.get("note", str, default=""),
                version=sec.get("version", int, default=1),
            )
        )
    return tuple(entries)


SCALES_KEY = "scales"


def _parse_translations(sec: _Section) -> dict[str, dict[str, str]]:
    sec.check_keys(set(LANGUAGES))
    result = {}
    for language in LANGUAGES:
        table = sec.section(language)
        for key in table.data:
            if not (key == SCALES_KEY and isinstance(table.data[key], dict)):
                table.get(key, str)
        result[language] = {k: v for k, v in table.data.items() if isinstance(v, str)}
    return result


def _parse_scale_translations(sec: _Section) -> dict[str, dict[str, str]]:
    """``[translations.<language>.scales]``: an answer's text in the source language -> its text in
    ``language``, for every value label of every question that uses that answer (a shared scale is translated
    once). A table, so that a question named "scales" may still have its own string key."""
    result: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        table = sec.section(language)
        if not isinstance(table.data.get(SCALES_KEY), dict):
            result[language] = {}
            continue
        scales = table.section(SCALES_KEY)
        for key in scales.data:
            scales.get(key, str)
        result[language] = dict(scales.data)
    return result


def _parse_tables(sec: _Section) -> TablesConfig:
    sec.check_keys(
        {"min_base", "confidence", "scales", "variance", "interval", "adjust", "cv_caution", "cv_suppress"}
        | {"min_effective_base"}
    )
    min_base = sec.get("min_base", int, default=30)
    if min_base < 1:
        raise sec.error("min_base", "must be at least 1")
    confidence = sec.get("confidence", float, default=0.95)
    if not 0.5 < confidence < 1:
        raise sec.error("confidence", "must be between 0.5 and 1, e.g. 0.95")
    scales, polarity = {}, {}
    scales_sec = sec.section("scales")
    for question in scales_sec.data:
        s = scales_sec.section(question)
        s.check_keys({"top", "bottom", "polarity"})
        boxes: dict[str, Any] = {}
        for key in ("top", "bottom"):
            codes = s.get(key, list, default=[])
            if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in codes):
                raise s.error(key, "must be a list of numeric codes")
            boxes[key] = tuple(float(c) for c in codes)
        polarity[question] = s.get("polarity", str, default="positive")
        if polarity[question] not in ("positive", "negative", "neutral"):
            raise s.error("polarity", f"{polarity[question]!r} is not one of positive, negative, neutral")
        if "top" in s.data or "bottom" in s.data:  # polarity alone keeps the automatic boxes
            scales[question] = ScaleBoxes(**boxes)
    choices = {}
    for key, allowed in (("variance", VARIANCES), ("interval", INTERVALS), ("adjust", ADJUSTMENTS)):
        choices[key] = sec.get(key, str, default=allowed[0])
        if choices[key] not in allowed:
            raise sec.error(key, f"{choices[key]!r} is not one of {', '.join(allowed)}")
    limits = {}
    for key, default in (("cv_caution", 16.6), ("cv_suppress", 33.3), ("min_effective_base", 0.0)):
        limits[key] = sec.get(key, float, default=default)
        if limits[key] < 0:
            raise sec.error(key, "must be 0 (off) or more")
    if limits["cv_caution"] and limits["cv_suppress"] and limits["cv_caution"] > limits["cv_suppress"]:
        raise sec.error("cv_caution", f"{limits['cv_caution']:g} is above cv_suppress {limits['cv_suppress']:g}")
    return TablesConfig(min_base=min_base, confidence=confidence, scales=scales, **choices, **limits, polarity=polarity)


def _parse_weighting(sec: _Section) -> WeightingConfig:
    sec.check_keys({"margins", "max_iterations", "tolerance", "trim", "keep_jurisdiction_totals"})
    margins = {}
    margins_sec = sec.section("margins")
    for variable in margins_sec.data:
        m = margins_sec.section(variable)
        shares = {code: m.get(code, float) for code in m.data}
        if shares and abs(sum(shares.values()) - 1.0) > 1e-6:
            raise margins_sec.error(variable, f"shares sum to {sum(shares.values()):.6f}, not 1")
        margins[variable] = shares
    trim = sec.get("trim", list)
    if trim is not None and (
        len(trim) != 2 or not all(isinstance(t, (int, float)) for t in trim) or not 0 < trim[0] < trim[1]
    ):
        raise sec.error("trim", "must be [low, high] with 0 < low < high, e.g. [0.2, 5.0]")
    return WeightingConfig(
        margins=margins,
        max_iterations=sec.get("max_iterations", int, default=1000),
        tolerance=sec.get("tolerance", float, default=1e-6),
        trim=(float(trim[0]), float(trim[1])) if trim else None,
        keep_jurisdiction_totals=sec.get("keep_jurisdiction_totals", bool, default=True),
    )


def _parse_report(sec: _Section) -> ReportConfig:
    sec.check_keys({"output_dir", "jobs", "timeout", "templates", "headline", "appendix", "benchmark_label", "themes"})
    jobs = sec.get("jobs", int)
    if jobs is not None and jobs < 1:
        raise sec.error("jobs", "must be at least 1")
    label_sec = sec.section("benchmark_label")
    label_sec.check_keys(set(LANGUAGES))
    labels = {language: label_sec.get(language, str) for language in LANGUAGES if language in label_sec.data}
    themes = []
    for i, item in enumerate(sec.get("themes", list, default=[])):
        t = _Section(sec.file, f"{sec.path}.themes[{i}]", item)
        t.check_keys({"name", "name_fr", "questions"})
        name = t.get("name", str, required=True)
        themes.append(ReportTheme(name, t.get("name_fr", str, default=name), t.strings("questions", required=True)))
    return ReportConfig(
        output_dir=sec.get("output_dir", str, default="reports"),
        jobs=jobs,
        timeout=sec.get("timeout", float, default=300.0),
        templates=sec.get("templates", str),
        headline=sec.strings("headline"),
        appendix=sec.get("appendix", bool, default=False),
        benchmark_label=labels,
        themes=tuple(themes),
    )


def _parse_delivery(sec: _Section) -> DeliveryConfig:
    sec.check_keys({"transport", "outbox_dir", "from", "reply_to", "rate_limit", "max_retries", "smtp", "attach"})
    attach = sec.strings("attach") if "attach" in sec.data else ("pdf",)
    if "pdf" not in attach or any(a not in ATTACHMENTS for a in attach) or len(set(attach)) != len(attach):
        raise sec.error(
            "attach",
            f"{list(attach)!r} must list pdf and optionally xlsx, each once",
            hint='e.g. attach = ["pdf", "xlsx"]',
        )
    transport = sec.get("transport", str, default="outbox")
    if transport not in ("outbox", "smtp"):
        raise sec.error("transport", f"{transport!r} is not one of outbox, smtp")
    smtp = None
    if "smtp" in sec.data:
        s = sec.section("smtp")
        s.check_keys({"host", "port", "security", "user", "password_env", "timeout"})
        security = s.get("security", str, default="starttls")
        if security not in ("starttls", "tls", "none"):
            raise s.error("security", f"{security!r} is not one of starttls, tls, none")
        smtp = SmtpConfig(
            host=s.get("host", str, required=True),
            port=s.get("port", int, default=587),
            security=security,
            user=s.get("user", str),
            password_env=s.get("password_env", str),
            timeout=s.get("timeout", float, default=30.0),
        )
    if transport == "smtp" and smtp is None:
        raise sec.error(
            "smtp", 'is required when transport = "smtp"', hint="add a [delivery.smtp] table with host and port"
        )
    reply_to = sec.get("reply_to", str)
    if reply_to is not None and not EMAIL_RE.match(reply_to):  # "" is no address either
        raise sec.error("reply_to", f"{reply_to!r} is not a valid e-mail address")
    rate = sec.get("rate_limit", float)
    if rate is not None and rate <= 0:
        raise sec.error("rate_limit", "must be a positive number of messages per second")
    return DeliveryConfig(
        transport=transport,
        outbox_dir=sec.get("outbox_dir", str, default="outbox"),
        sender=sec.get("from", str, default=DeliveryConfig.sender),
        reply_to=reply_to,
        rate_limit=rate,
        max_retries=sec.get("max_retries", int, default=3),
        smtp=smtp,
        attach=attach,
    )


ATTACHMENTS = ("pdf", "xlsx")


def _parse_banners(sec: _Section) -> BannersConfig:
    sec.check_keys({"variables", "nets", "adjust"})
    variables = sec.strings("variables")
    for name in variables:
        if variables.count(name) > 1 or not name:
            raise sec.error("variables", f"{name!r} is listed twice" if name else "a name is empty")
    adjust = sec.get("adjust", str, default="bonferroni")
    if adjust not in BANNER_ADJUSTMENTS:
        raise sec.error("adjust", f"{adjust!r} is not one of {', '.join(BANNER_ADJUSTMENTS)}")
    nets_sec = sec.section("nets")
    nets: dict[str, dict[str, tuple[float, ...]]] = {}
    for variable in nets_sec.data:
        if variable not in variables:
            raise nets_sec.error(
                variable, "is not one of [banners] variables", hint=f"variables: {', '.join(variables)}"
            )
        table = nets_sec.section(variable)
        nets[variable] = {}
        for name in table.data:
            codes = table.get(name, list)
            if not codes or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in codes):
                raise table.error(name, "must be a non-empty list of numeric codes, e.g. [1, 2]")
            try:
                float(name)
            except ValueError:
                pass
            else:
                raise table.error(name, "a net's name must not be a code", hint='name it, e.g. "18–44" = [1, 2]')
            if not name.strip():
                raise table.error(name, "a net needs a name")
            nets[variable][name] = tuple(sorted({float(c) for c in codes}))
    return BannersConfig(variables=variables, nets=nets, adjust=adjust)


def _parse_pipeline(sec: _Section) -> PipelineConfig:
    sec.check_keys({"lock_timeout"})
    timeout = sec.get("lock_timeout", float, default=60.0)
    if timeout < 0:
        raise sec.error("lock_timeout", "must be zero or more seconds")
    return PipelineConfig(lock_timeout=timeout)


def _parse_drivers(sec: _Section) -> DriversConfig:
    sec.check_keys({"outcome", "attributes", "min_base", "replicates", "seed"})
    outcome = sec.get("outcome", str)
    attributes = sec.strings("attributes")
    if outcome is None and attributes:
        raise sec.error("outcome", "is required with attributes", hint='name the outcome question, e.g. outcome = "Q1"')
    if outcome is not None and not attributes:
        raise sec.error(
            "attributes", "must list at least one attribute question", hint='e.g. attributes = ["Q2", "Q3"]'
        )
    if outcome is not None and outcome in attributes:
        raise sec.error("attributes", f"lists the outcome {outcome!r}; an outcome cannot explain itself")
    repeated = sorted({a for a in attributes if attributes.count(a) > 1})
    if repeated:
        raise sec.error("attributes", f"lists {', '.join(repeated)} more than once")
    min_base = sec.get("min_base", int, default=100)
    if min_base < 1:
        raise sec.error("min_base", "must be at least 1")
    replicates = sec.get("replicates", int, default=0)
    if replicates < 0:
        raise sec.error("replicates", "must be 0 (no bootstrap) or a number of bootstrap replicates, e.g. 200")
    seed = sec.get("seed", int, default=DriversConfig.seed)
    if seed < 0:
        raise sec.error("seed", "must be zero or a positive integer")
    return DriversConfig(outcome=outcome, attributes=attributes, min_base=min_base, replicates=replicates, seed=seed)


def example_config() -> str:
    """The commented example configuration that ``wavetool init`` writes."""

    return files("wavetool").joinpath("example_config.toml").read_text(encoding="utf-8")
