"""Property-based tests (hypothesis) of the CSV reader, the config loader and the weighted statistics.

- CSV: random valid waves (unique ids, configured jurisdictions, positive finite weights, 1-5 answers with
  user-missing 8/9 and blanks, free text with commas, quotes, newlines and accents, any delimiter, line
  ending, BOM and column order) round-trip through ``import_wave`` value for value; one random defect at a
  random row is a one-line DataError naming the file, the column and the row, and the database is unchanged.
- Config: random valid ``wavetool.toml`` files load into exactly the frozen objects they describe; one
  random invalid mutation is a ConfigError naming the file and the dotted key, never another exception.
- Statistics: on random studies imported from real .sav files, every scope's weighted valid percents
  match a pure-Python computation and sum to 100; scaling every weight by a constant changes no percent,
  box, mean, SD, n_eff or interval, multiplies weighted counts by it, and never changes unweighted counts.

Studies are copied from one template per module (an empty study costs ~70 ms to create, a copy ~1 ms).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
import os
import shutil
import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from wavefiles import db_digest, file_digest
from wavetool.config import (
    ColumnRoles,
    CustomFile,
    Jurisdiction,
    StudyConfig,
    Subscriber,
    TablesConfig,
    Wave,
    load_config,
)
from wavetool.errors import ConfigError, DataError
from wavetool.ingest import import_wave
from wavetool.stats import all_scopes, tabulate
from wavetool.status import init_study
from wavetool.store import read_store

# `make test-fast` sets WAVETOOL_TEST_FAST=1: a quarter of the examples for the edit-test loop; `make test` runs them all
FAST = os.environ.get("WAVETOOL_TEST_FAST") == "1"


def example_count(full: int) -> int:
    return max(10, full // 4) if FAST else full


SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}


# --- a tiny TOML writer (independent of the loader under test) ------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: quote and backslash escaped, every control character as \\uXXXX."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def toml_text(doc: dict[str, Any]) -> str:
    """``doc`` as TOML: top-level scalars first, then ``[table]``s and ``[[array]]``s of tables."""

    def is_tables(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict | list)]
    lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in doc.items() if isinstance(v, list) and not is_tables(v)]
    for key, value in doc.items():
        items = [(f"[{toml_string(key)}]", value)] if isinstance(value, dict) else []
        items += [(f"[[{toml_string(key)}]]", v) for v in value] if is_tables(value) else []
        for header, table in items:
            lines += ["", header, *(f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    text = toml_text(doc)
    assert tomllib.loads(text) == doc, "the test's TOML writer is wrong"
    path.write_text(text, encoding="utf-8")
    return path


# --- the study the CSV and statistics properties import into ---------------------------------------------

JURISDICTIONS = {
    "NL": "Newfoundland and Labrador",
    "PE": "Prince Edward Island",
    "NS": "Nova Scotia",
    "NB": "New Brunswick",
    "QC": "Quebec",
    "ON": "Ontario",
    "MB": "Manitoba",
    "SK": "Saskatchewan",
    "AB": "Alberta",
    "BC": "British Columbia",
    "YT": "Yukon",
    "NT": "Northwest Territories",
    "NU": "Nunavut",
}
CODES = list(JURISDICTIONS)
STUDY = {
    "study": {"name": "Propriétés « test »"},
    "columns": {"id": "RESPID", "jurisdiction": "PROV", "weight": "WEIGHT"},
    "waves": [{"number": n, "label": f"Wave {n}"} for n in (1, 2, 3, 4)],
    "jurisdictions": {code: {"en": name} for code, name in JURISDICTIONS.items()},
    "subscribers": [
        {"id": "ontario", "name": "Ontario", "jurisdictions": ["ON"], "contacts": ["a@on.example"]},
        {"id": "maritimes", "name": "Maritimes", "jurisdictions": ["NS", "NB"], "contacts": ["m@mar.example"]},
        {"id": "prairies", "name": "Prairies", "jurisdictions": ["MB", "SK", "AB"], "contacts": ["p@pr.example"]},
    ],
    "tables": {"min_base": 1},  # nothing suppressed: every statistic is checked
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each example's study copy and files live (removed after the example)."""
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty study with the test config (min_base 1, 13 jurisdictions, 3 subscribers)."""
    folder = tmp_path_factory.mktemp("template") / "study"
    folder.mkdir()
    write_toml(folder / "wavetool.toml", STUDY)
    init_study(folder)
    return folder


@contextlib.contextmanager
def study_copy(source: Path, examples: Path) -> Iterator[Path]:
    """A private copy of the study ``source`` for one example; its folder's parent holds the example's files."""
    folder = Path(tempfile.mkdtemp(dir=examples)) / "study"
    shutil.copytree(source, folder)
    (folder / ".wavetool.lock").unlink(missing_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


# --- 1. the CSV reader ------------------------------------------------------------------------------------

ANSWERS = [1, 2, 3, 4, 5, 8, 9, None]
CODE_LABELS = {1: "Très insatisfait", 2: "Insatisfait, plutôt", 3: "Ni l'un ni l'autre \"neutre\"", 4: "Satisfait"}
CODE_LABELS |= {5: "Très satisfait", 8: "Ne sait pas", 9: "Refus"}
# Printable text of any script plus the characters a CSV must quote or keep: delimiters, quotes, line breaks.
TEXT = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs", "Cc")),
        st.sampled_from([",", ";", "\t", "|", '"', "'", "\n", "\r", " ", "é", "É", "ç", "«", "»", "\\"]),
    ),
    max_size=25,
)
LABEL = TEXT.filter(lambda s: s != "")
WEIGHTS = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
SCORES = st.none() | st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


def csv_field(value: str, delimiter: str) -> str:
    """One CSV field as RFC 4180 writes it: quoted (quotes doubled) when it holds the delimiter, a quote
    or a line break. (Python's csv writer leaves a lone CR unquoted when the line ending is LF.)"""
    if any(ch in value for ch in (delimiter, '"', "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


@dataclass
class WaveTable:
    """A wave's respondents as the test means them, and the spelling it writes them with."""

    ids: list[int]
    codes: list[str]
    weights: list[float]
    answers: dict[str, list[int | None]]  # Q1.. -> codes, None = blank
    labels: dict[str, str]
    scores: list[float | None]
    comments: list[str]
    columns: list[str]  # the file's column order
    delimiter: str
    newline: str
    bom: bool
    spelling: dict[tuple[int, str], str]  # (row, numeric column) -> how the cell is written

    @property
    def rows(self) -> int:
        return len(self.ids)

    def value(self, row: int, column: str) -> Any:
        """The value of a cell as the study should store it."""
        if column in self.answers:
            answer = self.answers[column][row]
            return None if answer is None else float(answer)
        return {
            "RESPID": float(self.ids[row]),
            "PROV": self.codes[row],
            "WEIGHT": self.weights[row],
            "SCORE": self.scores[row],
            "COMMENT": self.comments[row],
        }[column]

    def cell(self, row: int, column: str) -> str:
        if (row, column) in self.spelling:
            return self.spelling[(row, column)]
        value = self.value(row, column)
        return "" if value is None else value if isinstance(value, str) else repr(value)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """The CSV and its long codebook (variable,label,type,measure,format,code,code_label,missing)."""
        data = folder / "wave.csv"
        lines = [self.columns, *([self.cell(r, c) for c in self.columns] for r in range(self.rows))]
        text = "".join(self.delimiter.join(csv_field(v, self.delimiter) for v in line) + self.newline for line in lines)
        data.write_text(text, encoding="utf-8-sig" if self.bom else "utf-8", newline="")
        book = folder / "wave-codebook.csv"
        with open(book, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["variable", "label", "type", "measure", "format", "code", "code_label", "missing"])
            writer.writerow(["RESPID", "Respondent id", "numeric", "nominal", "F13.0", "", "", ""])
            writer.writerow(["PROV", "Province", "string", "nominal", "A2", "", "", ""])
            writer.writerow(["WEIGHT", "Final weight", "numeric", "scale", "F12.6", "", "", ""])
            for question, label in self.labels.items():
                writer.writerow([question, label, "numeric", "ordinal", "F1.0", "", "", ""])
                for code, code_label in CODE_LABELS.items():
                    writer.writerow([question, "", "", "", "", code, code_label, "true" if code in (8, 9) else ""])
            writer.writerow(["SCORE", "A score", "numeric", "scale", "F16.4", "", "", ""])
            writer.writerow(["COMMENT", "Commentaire, « libre »", "string", "nominal", "A200", "", "", ""])
        return data, book

    def physical_line(self, row: int) -> int:
        """The line of the file (header = line 1) on which data row ``row`` (0-based) starts."""
        return 2 + row + sum(c.count("\n") + c.replace("\r\n", "").count("\r") for c in self.comments[:row])


@st.composite
def wave_tables(draw: st.DrawFn, min_rows: int = 1, max_rows: int = 12) -> WaveTable:
    n = draw(st.integers(min_rows, max_rows))
    column = lambda strategy: draw(st.lists(strategy, min_size=n, max_size=n))  # noqa: E731
    ids = draw(st.lists(st.integers(1, 10**12), min_size=n, max_size=n, unique=True))
    questions = [f"Q{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    answers = {q: column(st.sampled_from(ANSWERS)) for q in questions}
    table = WaveTable(
        ids=ids,
        codes=column(st.sampled_from(CODES)),
        weights=column(WEIGHTS),
        answers=answers,
        labels={q: draw(LABEL) for q in questions},
        scores=column(SCORES),
        comments=column(TEXT),
        columns=draw(st.permutations(["RESPID", "PROV", "WEIGHT", *questions, "SCORE", "COMMENT"])),
        delimiter=draw(st.sampled_from([",", ";", "\t", "|"])),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        bom=draw(st.booleans()),
        spelling={},
    )
    # Vendors spell the same numbers differently: 5, 5.0, " 5 "; a blank may be spaces.
    for q in questions:
        for r, answer in enumerate(answers[q]):
            options = [" ", "  "] if answer is None else [f"{answer}.0", f" {answer}", f"{answer} ", f"{answer}.000"]
            if draw(st.booleans()):
                table.spelling[(r, q)] = draw(st.sampled_from(options))
    return table


def read_wave(study: Path, wave: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The stored wave table: its column names and its rows by ``_id``."""
    with read_store(study) as con:
        cursor = con.execute(f"SELECT * FROM wave_{wave}")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    return names, {row[0]: dict(zip(names, row, strict=True)) for row in rows}


@settings(max_examples=example_count(40), **SETTINGS)
@given(table=wave_tables())
def test_valid_csv_round_trips_value_for_value(table: WaveTable, template: Path, examples: Path) -> None:
    with study_copy(template, examples) as study:
        data, book = table.write(study.parent)
        note(data.read_bytes().decode("utf-8-sig"))
        result = import_wave(load_config(study), 1, [data], codebook_path=book)
        assert (result.status, result.rows) == ("imported", table.rows)
        names, stored = read_wave(study, 1)
        assert names == ["_id", "_jurisdiction", "_weight", *table.columns]
        assert sorted(stored) == sorted(str(i) for i in table.ids)
        for r, respondent in enumerate(table.ids):
            row = stored[str(respondent)]
            assert (row["_jurisdiction"], row["_weight"]) == (table.codes[r], table.weights[r])
            expected = {c: table.value(r, c) for c in table.columns}
            assert {c: row[c] for c in table.columns} == expected, f"data row {r + 1}"
        with read_store(study) as con:
            labels = dict(con.execute("SELECT name, label FROM variables WHERE wave = 1").fetchall())
            missing = con.execute(
                "SELECT variable, list(low ORDER BY low) FROM missing_values WHERE wave = 1 GROUP BY 1"
            ).fetchall()
            code_labels = con.execute(
                "SELECT variable, code_num, label FROM value_labels WHERE wave = 1 ORDER BY 1, 2"
            ).fetchall()
        assert {q: labels[q] for q in table.labels} == table.labels
        assert dict(missing) == {q: [8.0, 9.0] for q in table.labels}
        assert code_labels == [(q, float(c), text) for q in sorted(table.labels) for c, text in CODE_LABELS.items()]


NUMERIC = ["RESPID", "WEIGHT", "Q1", "SCORE"]
# Tokens no reader may take for a number (DuckDB reads 'nan', 'inf' and '1e5' as doubles, so none of
# those letters appear in the random ones).
NOT_NUMBERS = st.one_of(
    st.sampled_from(["N/A", "1,5", "5 5", "1.2.3", "--1", "DK", "approx. 3", "٣", "½", "0x1A", "1e", "."]),
    st.text(st.sampled_from("abcdoxyzéç?#/,;'\" \n"), min_size=1, max_size=8).filter(lambda t: t.strip() != ""),
)
BAD_WEIGHTS = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),  # zero, negative, -0.0 and -inf
    st.sampled_from([math.nan, math.inf, None]),
)
UNKNOWN_CODES = st.text(st.sampled_from("ABCXYZonqcé0-9"), min_size=1, max_size=4).filter(lambda c: c not in CODES)


def shown_weight(value: float | None) -> str:
    if value is None:
        return "blank"
    if math.isnan(value):
        return "NaN"
    # The canonical code text (ARCHITECTURE.md, sql.code_text): integer digits for an integral value below
    # 1e18, else the shortest double text (-1e+18).
    return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)


@pytest.fixture(scope="module")
def populated(template: Path, examples: Path) -> Path:
    """The template study with a valid wave 1 imported: the invalid files are imported as wave 2."""
    folder = examples.parent / "populated" / "study"
    shutil.copytree(template, folder)
    n = 6
    table = WaveTable(
        ids=list(range(1, n + 1)),
        codes=CODES[:n],
        weights=[0.5 + r for r in range(n)],
        answers={"Q1": ANSWERS[:n]},
        labels={"Q1": "Satisfaction"},
        scores=[None, 1.5, -2.0, 0.0, 3.25, None],
        comments=["", "Très bien", 'dit "merci", puis\nparti', "", "«»", "x"],
        columns=["RESPID", "PROV", "WEIGHT", "Q1", "SCORE", "COMMENT"],
        delimiter=",",
        newline="\n",
        bom=False,
        spelling={},
    )
    data, book = table.write(folder.parent)
    import_wave(load_config(folder), 1, [data], codebook_path=book)
    return folder


@settings(max_examples=example_count(40), **SETTINGS)
@given(
    table=wave_tables(min_rows=2),
    defect=st.sampled_from(["duplicate id", "not a number", "weight", "code"]),
    data=st.data(),
)
def test_invalid_csv_fails_naming_file_column_and_row(
    table: WaveTable, defect: str, data: st.DataObject, populated: Path, examples: Path
) -> None:
    r = data.draw(st.integers(1, table.rows - 1), label="row (0-based) of the defect")
    if defect == "duplicate id":
        first = data.draw(st.integers(0, r - 1), label="row it duplicates")
        table.ids[r] = table.ids[first]
        expected = f"column RESPID: respondent id {table.ids[r]} appears 2 times (rows {first + 1}, {r + 1})"
    elif defect == "not a number":
        column = data.draw(st.sampled_from(NUMERIC))
        token = data.draw(NOT_NUMBERS)
        table.spelling[(r, column)] = token
        line = table.physical_line(r)
        expected = f"line {line} (data row {r + 1}), column {column}: {token!r} is not a valid double value"
    elif defect == "weight":
        table.weights[r] = data.draw(BAD_WEIGHTS)
        table.spelling[(r, "WEIGHT")] = "" if table.weights[r] is None else repr(table.weights[r])
        expected = f"column WEIGHT, row {r + 1}: weight is {shown_weight(table.weights[r])}; weights must be positive"
    else:
        table.codes[r] = data.draw(UNKNOWN_CODES)
        expected = f"column PROV, row {r + 1}: unknown jurisdiction code {table.codes[r]!r}"
    with study_copy(populated, examples) as study:
        data_file, book = table.write(study.parent)
        note(data_file.read_bytes().decode("utf-8-sig"))
        before = (db_digest(study), file_digest(study / "wavetool.duckdb"))
        with pytest.raises(DataError) as raised:
            import_wave(load_config(study), 2, [data_file], codebook_path=book)
        message = str(raised.value)
        assert message.startswith(f"{data_file}: "), message
        assert expected in message
        assert "\n" not in message and raised.value.hint
        assert (db_digest(study), file_digest(study / "wavetool.duckdb")) == before


# --- 2. the config loader ---------------------------------------------------------------------------------

# Any text: every script, quotes, backslashes and control characters (the writer escapes what TOML must).
NAMES = st.text(st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from("éèàçÉ«»'\"\\ \t\n")), max_size=30)
SLUGS = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?\Z")
_ATOM = st.from_regex(r"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,8}\Z")
_LABEL = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?\Z")
EMAILS = st.builds(
    lambda local, domain: ".".join(local) + "@" + ".".join(domain),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=2, max_size=3),
)
DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31))


@dataclass
class ConfigCase:
    """A config as a TOML document, and the objects it must load into."""

    doc: dict[str, Any]
    name: str
    name_fr: str
    waves: dict[int, Wave]
    jurisdictions: dict[str, Jurisdiction]
    subscribers: dict[str, Subscriber]
    tables: TablesConfig

    def expected(self, path: Path) -> StudyConfig:
        return StudyConfig(
            root=path.parent.resolve(),
            path=path,
            name=self.name,
            name_fr=self.name_fr,
            columns=ColumnRoles(),
            waves=self.waves,
            jurisdictions=self.jurisdictions,
            subscribers=self.subscribers,
            tables=self.tables,
            translations={"en": {}, "fr": {}},  # no [translations]: an empty table per language
            scale_translations={"en": {}, "fr": {}},  # no [translations.LANG.scales] either
        )


def optional(draw: st.DrawFn, table: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> Any:
    """Maybe draw a value for ``key`` and put it in ``table``; the value, or None when left out."""
    if not draw(st.booleans()):
        return None
    value = draw(strategy)
    table[key] = value
    return value


@st.composite
def wave_entry(draw: st.DrawFn, number: int) -> tuple[dict[str, Any], Wave]:
    entry: dict[str, Any] = {"number": number}
    label = optional(draw, entry, "label", NAMES)
    label_fr = optional(draw, entry, "label_fr", NAMES)
    start, end = sorted(draw(st.lists(DATES, min_size=2, max_size=2)))
    start = optional(draw, entry, "fieldwork_start", st.sampled_from([start, start.isoformat()]))
    end = optional(draw, entry, "fieldwork_end", st.sampled_from([end, end.isoformat()]))
    label = f"Wave {number}" if label is None else label
    wave = Wave(
        number=number,
        label=label,
        label_fr=label if label_fr is None else label_fr,
        fieldwork_start=dt.date.fromisoformat(start) if isinstance(start, str) else start,
        fieldwork_end=dt.date.fromisoformat(end) if isinstance(end, str) else end,
    )
    return entry, wave


@st.composite
def subscriber_entry(draw: st.DrawFn, sub_id: str, codes: list[str], waves: list[int]) -> tuple[dict, Subscriber]:
    name = draw(NAMES)
    entry: dict[str, Any] = {
        "id": sub_id,
        "name": name,
        "jurisdictions": draw(st.lists(st.sampled_from(codes), min_size=1, max_size=len(codes), unique=True)),
        "contacts": draw(st.lists(EMAILS, min_size=1, max_size=3)),
    }
    name_fr = optional(draw, entry, "name_fr", NAMES)
    language = optional(draw, entry, "language", st.sampled_from(["en", "fr"]))
    cc = optional(draw, entry, "cc", st.lists(EMAILS, max_size=2))
    bcc = optional(draw, entry, "bcc", st.lists(EMAILS, max_size=2))
    reply_to = optional(draw, entry, "reply_to", EMAILS)
    prefix = optional(draw, entry, "custom_prefix", st.from_regex(r"\A[A-Z]{2}_\Z"))
    custom = optional(
        draw,
        entry,
        "custom",
        st.lists(
            st.fixed_dictionaries(
                {"wave": st.sampled_from(waves), "file": NAMES.filter(bool)}, optional={"codebook": NAMES}
            ),
            max_size=2,
        ),
    )
    subscriber = Subscriber(
        id=sub_id,
        name=name,
        name_fr=name if name_fr is None else name_fr,
        jurisdictions=tuple(entry["jurisdictions"]),
        language=language or "en",
        contacts=tuple(entry["contacts"]),
        cc=tuple(cc or ()),
        bcc=tuple(bcc or ()),
        reply_to=reply_to,
        custom_prefix=prefix,
        custom=tuple(CustomFile(c["wave"], c["file"], c.get("codebook")) for c in custom or ()),
    )
    return entry, subscriber


@st.composite
def configs(draw: st.DrawFn, min_subscribers: int = 0) -> ConfigCase:
    name = draw(NAMES)
    study: dict[str, Any] = {"name": name}
    name_fr = optional(draw, study, "name_fr", NAMES)
    numbers = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4, unique=True))
    waves = [draw(wave_entry(n)) for n in numbers]
    codes = draw(st.lists(st.from_regex(r"\A[A-Z]{2}\Z"), min_size=1, max_size=13, unique=True))
    jurisdictions = {}
    for code in codes:
        jurisdictions[code] = {"en": draw(NAMES)}
        optional(draw, jurisdictions[code], "fr", NAMES)
    ids = draw(st.lists(SLUGS, min_size=min_subscribers, max_size=4, unique=True))
    subscribers = [draw(subscriber_entry(i, codes, numbers)) for i in ids]
    doc: dict[str, Any] = {"study": study, "waves": [w for w, _ in waves], "jurisdictions": jurisdictions}
    if subscribers:
        doc["subscribers"] = [s for s, _ in subscribers]
    tables: dict[str, Any] = {}
    min_base = optional(draw, tables, "min_base", st.integers(1, 1000))
    if tables or draw(st.booleans()):
        doc["tables"] = tables
    return ConfigCase(
        doc=doc,
        name=name,
        name_fr=name if name_fr is None else name_fr,
        waves={w.number: w for _, w in waves},
        jurisdictions={c: Jurisdiction(c, j["en"], j.get("fr", j["en"])) for c, j in jurisdictions.items()},
        subscribers={s.id: s for _, s in subscribers},
        tables=TablesConfig(min_base=min_base or 30),
    )


@pytest.fixture(scope="module")
def config_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("configs")


@settings(max_examples=example_count(150), **SETTINGS)
@given(case=configs())
def test_valid_config_loads_into_what_it_says(case: ConfigCase, config_folder: Path) -> None:
    path = write_toml(config_folder / "wavetool.toml", case.doc)
    config = load_config(config_folder)
    assert config == case.expected(path)
    assert list(config.waves) == sorted(config.waves)
    with pytest.raises(FrozenInstanceError):
        config.name = "changed"  # type: ignore[misc]
    if config.subscribers:
        with pytest.raises(FrozenInstanceError):
            next(iter(config.subscribers.values())).contacts = ()  # type: ignore[misc]


# Every key the loader knows anywhere: an unknown key is drawn from names that are none of these.
KNOWN_KEYS = {
    *("study", "columns", "waves", "jurisdictions", "subscribers", "crosswalk", "translations", "tables"),
    *("weighting", "report", "delivery", "pipeline", "name", "name_fr", "id", "jurisdiction", "weight", "number"),
    *("label", "label_fr", "fieldwork_start", "fieldwork_end", "inbox", "codebook", "en", "fr", "language"),
    *("contacts", "cc", "bcc", "reply_to", "custom_prefix", "custom", "wave", "file", "min_base", "confidence"),
    *("scales", "margins", "max_iterations", "tolerance", "trim", "output_dir", "jobs", "timeout", "transport"),
    "keep_jurisdiction_totals",
    "jurisdiction_code",
    *("outbox_dir", "from", "rate_limit", "max_retries", "smtp", "lock_timeout"),
}
UNKNOWN_KEYS = st.from_regex(r"\A[a-z][a-z0-9_]{0,11}\Z").filter(lambda k: k not in KNOWN_KEYS)
SCALARS = st.one_of(NAMES, st.integers(-(2**63), 2**63 - 1), st.booleans())
# Ids that are no safe file name: a path separator, '..', uppercase, spaces, an edge hyphen, too long, empty.
BAD_SLUGS = st.one_of(
    st.builds(
        lambda a, bad, b: a + bad + b,
        st.from_regex(r"\A[a-z0-9-]{0,6}\Z"),
        st.sampled_from(["/", "..", "../../etc", " ", "\t", "_", "é", "\\", *"ABCXYZ"]),
        st.from_regex(r"\A[a-z0-9-]{0,6}\Z"),
    ),
    SLUGS.map(str.upper).filter(lambda s: s != s.lower()),
    SLUGS.map(lambda s: "-" + s),
    SLUGS.map(lambda s: s + "-"),
    SLUGS.map(lambda s: s + "\n"),  # a regex's `$` matches before a final line break
    st.just("x" * 65),
    st.just(""),
)
BAD_EMAILS = st.one_of(
    EMAILS.map(lambda e: e.replace("@", "")),
    EMAILS.map(lambda e: e.replace("@", "@@")),
    EMAILS.map(lambda e: e.replace("@", " @")),
    EMAILS.map(lambda e: e + "."),
    EMAILS.map(lambda e: e.replace("@", "@-")),
    EMAILS.map(lambda e: e.replace("@", "..@", 1)),
    EMAILS.map(lambda e: "." + e),
    EMAILS.map(lambda e: e.replace("@", ".@", 1)),
    EMAILS.map(lambda e: e.replace(".", "..", 1) if "." in e.split("@")[1] else e + ".."),
    EMAILS.map(lambda e: e + "\n"),
    EMAILS.map(lambda e: f"Analyst <{e}>"),
    EMAILS.map(lambda e: "@" + e.split("@")[1]),
    _ATOM.map(lambda local: local + "@localhost"),
    st.just(""),
)


def mutate(doc: dict[str, Any], data: st.DataObject) -> str:
    """Make one random invalid edit to ``doc``; the dotted key the error must name."""
    kinds = ["unknown key", "wave number"] + (["bad slug", "bad e-mail"] if doc.get("subscribers") else [])
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind == "unknown key":
        places: list[tuple[str, dict[str, Any]]] = [("", doc), ("study.", doc["study"])]
        places += [(f"waves[{i}].", w) for i, w in enumerate(doc["waves"])]
        places += [(f"jurisdictions.{c}.", j) for c, j in doc["jurisdictions"].items()]
        for i, s in enumerate(doc.get("subscribers", [])):
            places.append((f"subscribers[{i}].", s))
            places += [(f"subscribers[{i}].custom[{k}].", c) for k, c in enumerate(s.get("custom", []))]
        for section in ("columns", "tables", "report", "delivery", "pipeline"):
            places.append((f"{section}.", doc.setdefault(section, {})))
        prefix, table = data.draw(st.sampled_from(places), label="table")
        key = data.draw(UNKNOWN_KEYS, label="key")
        table[key] = data.draw(SCALARS, label="value")
        return prefix + key
    if kind == "wave number":
        i = data.draw(st.integers(0, len(doc["waves"]) - 1), label="wave")
        doc["waves"][i]["number"] = data.draw(st.integers(-(2**63), 2**63 - 1).filter(lambda n: not 1 <= n <= 99))
        return f"waves[{i}].number"
    i = data.draw(st.integers(0, len(doc["subscribers"]) - 1), label="subscriber")
    sub = doc["subscribers"][i]
    if kind == "bad slug":
        sub["id"] = data.draw(BAD_SLUGS, label="id")
        return f"subscribers[{i}].id"
    field = data.draw(st.sampled_from(["contacts", "cc", "bcc", "reply_to"]), label="field")
    address = data.draw(BAD_EMAILS, label="address")
    if field == "reply_to":
        sub[field] = address
    else:
        addresses = sub.setdefault(field, [])
        addresses.insert(data.draw(st.integers(0, len(addresses)), label="position"), address)
    return f"subscribers[{i}].{field}"


@settings(max_examples=example_count(200), **SETTINGS)
@given(case=configs(), data=st.data())
def test_invalid_config_names_file_and_dotted_key(case: ConfigCase, data: st.DataObject, config_folder: Path) -> None:
    key = mutate(case.doc, data)
    path = write_toml(config_folder / "wavetool.toml", case.doc)
    with pytest.raises(ConfigError) as raised:
        load_config(config_folder)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert "\n" not in message and raised.value.hint


# --- 3. the statistics ------------------------------------------------------------------------------------

SCALE = {1.0: "Very poor", 2.0: "Poor", 3.0: "Fair", 4.0: "Good", 5.0: "Very good", 8.0: "Don't know", 9.0: "Refused"}
CHOICE = {1.0: "Online", 2.0: "Phone", 3.0: "In person", 9.0: "Refused"}
# Q1 is an ordinal 1-5 scale (top box 4-5, bottom box 1-2, mean) with 8/9 user-missing; Q2 a nominal
# choice with 9 user-missing and an unlabelled code 7 a vendor added (valid: it is not declared missing).
QUESTIONS = {"Q1": (SCALE, [8.0, 9.0], "ordinal"), "Q2": (CHOICE, [9.0], "nominal")}
Q_ANSWERS = {"Q1": [*SCALE, None], "Q2": [*CHOICE, 7.0, None]}


@dataclass
class Sample:
    codes: list[str]
    weights: list[float]
    answers: dict[str, list[float | None]]

    def write_sav(self, path: Path, factor: float = 1.0) -> Path:
        """A real .sav with labels, measures and user-missing codes; weights multiplied by ``factor``."""
        frame = pd.DataFrame(
            {
                "RESPID": [float(i) for i in range(1, len(self.codes) + 1)],
                "PROV": self.codes,
                "WEIGHT": [w * factor for w in self.weights],
                **{q: [math.nan if a is None else a for a in values] for q, values in self.answers.items()},
            }
        )
        pyreadstat.write_sav(
            frame,
            str(path),
            column_labels={"RESPID": "Id", "PROV": "Province", "WEIGHT": "Weight", "Q1": "Quality", "Q2": "Channel"},
            variable_value_labels={q: labels for q, (labels, _, _) in QUESTIONS.items()},
            missing_ranges={q: missing for q, (_, missing, _) in QUESTIONS.items()},
            variable_measure={"RESPID": "nominal", "PROV": "nominal", "WEIGHT": "scale"}
            | {q: measure for q, (_, _, measure) in QUESTIONS.items()},
        )
        return path

    def expected(self, members: set[str], question: str) -> dict[str, Any]:
        """Pure-Python counts and weighted statistics of ``question`` among respondents of ``members``."""
        missing = QUESTIONS[question][1]
        counts: Counter[float | None] = Counter()
        weights: defaultdict[float | None, float] = defaultdict(float)
        for code, weight, answer in zip(self.codes, self.weights, self.answers[question], strict=True):
            if code in members:
                counts[answer] += 1
                weights[answer] += weight
        valid = {a: w for a, w in weights.items() if a is not None and a not in missing}
        base = sum(valid.values())
        return {
            "n": counts,
            "weighted_n": weights,
            "base_n": sum(counts[a] for a in valid),
            "percent": {a: 100 * w / base for a, w in valid.items()} if base else {},
            "topbox": 100 * (valid.get(4.0, 0) + valid.get(5.0, 0)) / base if base else None,
            "mean": sum(a * w for a, w in valid.items()) / base if base else None,
        }


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    n = draw(st.integers(1, 40))
    # Respondents concentrate in a few jurisdictions so that most scopes have a base and some have none.
    present = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=6, unique=True))
    return Sample(
        codes=draw(st.lists(st.sampled_from(present), min_size=n, max_size=n)),
        weights=draw(st.lists(st.floats(0.05, 20.0), min_size=n, max_size=n)),
        answers={q: draw(st.lists(st.sampled_from(values), min_size=n, max_size=n)) for q, values in Q_ANSWERS.items()},
    )


def scope_members(scope: str) -> set[str]:
    if scope == "all":
        return set(CODES)
    subscriber = next((s for s in STUDY["subscribers"] if s["id"] == scope), None)
    return set(subscriber["jurisdictions"]) if subscriber else {scope}


def row_value(row: dict[str, Any]) -> float | None:
    return None if row["code"] == "." else float(row["code"])


def close(a: float | None, b: float | None, rel: float = 0.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


# Statistics a weight scale factor cancels out of (sd: weighted SD with n/(n-1); n_eff: Kish).
INVARIANT = ("topbox", "topbox_ci_low", "topbox_ci_high", "bottombox", "mean", "sd", "mean_ci_low", "mean_ci_high")


# Found by this property (kept so a fresh checkout tries them too): a single valid code must be exactly
# 100 % (its base summed from the same rows), and equal answers must have an SD of exactly 0, not 6e-8.
ONE_VALID_CODE = Sample(
    codes=["NL"] * 3 + ["ON"] + ["NL"] * 8 + ["QC"],
    weights=[
        4.381902200480607,
        5.3927254365606805,
        6.096985763564232,
        9.24046955419859,
        11.341851292470107,
        12.216444958101496,
        14.233566537924524,
        14.924854250580264,
        14.00249731694114,
        19.325871392919193,
        *[0.3333333333333333] * 3,
    ],
    answers={"Q1": [1.0] * 10 + [5.0, 5.0, 1.0], "Q2": [1.0] * 13},
)
EQUAL_ANSWERS = Sample(
    codes=["NL"] * 3 + ["PE"] + ["NL"] * 7 + ["PE", "NL"],
    weights=[1.0, 1.0, 1.0, 9.24046955419859] + [1.0] * 7 + [0.5, 1.0],
    answers={"Q1": [2.0, 2.0, 2.0, 5.0] + [2.0] * 7 + [5.0, 2.0], "Q2": [1.0] * 13},
)


@pytest.mark.slow  # 25 studies tabulated (make test-fast skips it)
@settings(max_examples=example_count(25), **SETTINGS)
@given(sample=samples(), factor=st.one_of(st.sampled_from([0.37, 12.5]), st.floats(0.01, 100.0)))
@example(sample=ONE_VALID_CODE, factor=0.37)
@example(sample=EQUAL_ANSWERS, factor=0.37)
def test_weighted_percents_sum_to_100_and_ignore_the_weights_scale(
    sample: Sample, factor: float, template: Path, examples: Path
) -> None:
    scopes = all_scopes(load_config(template))
    tables = []
    for scale in (1.0, factor):
        with study_copy(template, examples) as study:
            config = load_config(study)
            import_wave(config, 1, [sample.write_sav(study.parent / "wave1.sav", scale)])
            unflagged = replace(config, tables=replace(config.tables, cv_suppress=0))  # no F: every percent shown
            tables.append(tabulate(unflagged, 1, scopes=scopes))
    plain, scaled = tables
    for scope in scopes:
        for question in QUESTIONS:
            expected = sample.expected(scope_members(scope), question)
            summary, other = plain.summary(1, scope, question), scaled.summary(1, scope, question)
            rows, other_rows = plain.question_rows(1, scope, question), scaled.question_rows(1, scope, question)
            assert summary["base_n"] == other["base_n"] == expected["base_n"], (scope, question)
            assert [(r["code"], r["missing"]) for r in rows] == [(r["code"], r["missing"]) for r in other_rows]
            if expected["base_n"] == 0:
                continue
            valid = [r for r in rows if not r["missing"]]
            assert abs(sum(r["percent"] for r in valid) - 100.0) <= 1e-9, (scope, question)
            assert {row_value(r) for r in rows} >= set(expected["n"]), "every observed answer has a row"
            for row, twin in zip(rows, other_rows, strict=True):
                value = row_value(row)
                assert row["n"] == twin["n"] == expected["n"][value], (scope, question, row["code"])
                assert close(row["weighted_n"], expected["weighted_n"][value], rel=1e-12)
                assert close(twin["weighted_n"], factor * row["weighted_n"], rel=1e-9)
                if not row["missing"]:
                    assert close(row["percent"], expected["percent"].get(value, 0.0))
                    assert close(twin["percent"], row["percent"]), (scope, question, row["code"])
                    assert close(twin["ci_low"], row["ci_low"]) and close(twin["ci_high"], row["ci_high"])
            assert close(summary["topbox"], expected["topbox"] if question == "Q1" else None)
            assert close(summary["mean"], expected["mean"] if question == "Q1" else None)
            assert close(other["base_weighted"], factor * summary["base_weighted"], rel=1e-9)
            assert close(other["n_eff"], summary["n_eff"], rel=1e-9)
            for stat in INVARIANT:
                assert close(other[stat], summary[stat]), (scope, question, stat)


def test_an_empty_reply_to_is_not_an_address(config_folder: Path) -> None:
    """Found by the property above: ``reply_to = ""`` used to load (and silently fall back to the study's)."""
    doc = {"study": {"name": "S"}, "waves": [{"number": 1}], "jurisdictions": {"ON": {"en": "Ontario"}}}
    doc["subscribers"] = [{"id": "on", "name": "On", "jurisdictions": ["ON"], "contacts": ["a@b.ca"], "reply_to": ""}]
    path = write_toml(config_folder / "wavetool.toml", doc)
    with pytest.raises(ConfigError, match=r"subscribers\[0\]\.reply_to: '' is not a valid e-mail address"):
        load_config(config_folder)
    del doc["subscribers"]
    doc["delivery"] = {"reply_to": ""}
    write_toml(path, doc)
    with pytest.raises(ConfigError, match=r"delivery\.reply_to: '' is not a valid e-mail address"):
        load_config(config_folder)
