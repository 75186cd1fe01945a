"""The codebook: variable and value labels, user-missing codes, measurement levels and
multiple-response sets, as read from a file's dictionary and kept as data in the study database."""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from .errors import DataError, InputMissingError
from .store import first_row

MEASURES = ("nominal", "ordinal", "scale", "unknown")
TYPES = ("numeric", "string", "date", "datetime")


def code_text(value: Any) -> str:
    """The canonical text of a code: ``1.0`` -> ``'1'``, ``1.5`` -> ``'1.5'``, ``'ON'`` -> ``'ON'``."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


@dataclass(frozen=True)
class MissingSpec:
    """One user-missing declaration: a discrete code or an inclusive numeric range."""

    kind: str  # 'value' | 'range'
    code: str | None = None
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.kind == "value":
            return self.code or ""
        low = "LO" if self.low is None or math.isinf(self.low) else code_text(self.low)
        high = "HI" if self.high is None or math.isinf(self.high) else code_text(self.high)
        return f"{low} THRU {high}"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str | None = None
    type: str = "numeric"
    measure: str = "unknown"
    format: str | None = None
    width: int | None = None
    value_labels: dict[str, str] = field(default_factory=dict)
    missing: tuple[MissingSpec, ...] = ()

    def is_missing_code(self, code: Any) -> bool:
        """Whether ``code`` is declared user-missing for this variable."""
        text = code_text(code)
        for spec in self.missing:
            if spec.kind == "value" and spec.code == text:
                return True
            if spec.kind == "range" and isinstance(code, (int, float)):
                low = -math.inf if spec.low is None else spec.low
                high = math.inf if spec.high is None else spec.high
                if low <= float(code) <= high:
                    return True
        return False


@dataclass(frozen=True)
class MrSet:
    name: str
    label: str | None
    type: str  # 'dichotomy' | 'category'
    counted_value: str | None
    variables: tuple[str, ...]


@dataclass(frozen=True)
class Codebook:
    variables: dict[str, Variable]
    mr_sets: dict[str, MrSet] = field(default_factory=dict)
    encoding: str | None = None

    def restricted_to(self, names: list[str]) -> Codebook:
        """This codebook for the given columns only, in that order (unknown names get a bare entry)."""
        variables = {n: self.variables.get(n, Variable(name=n)) for n in names}
        sets = {k: s for k, s in self.mr_sets.items() if all(v in variables for v in s.variables)}
        return replace(self, variables=variables, mr_sets=sets)


# --- from SPSS metadata (pyreadstat) -------------------------------------------------------------


def _spss_type(readstat_type: str, format_: str | None) -> str:
    if readstat_type == "string":
        return "string"
    fmt = (format_ or "").upper()
    if fmt.startswith(("DATETIME", "YMDHMS")):
        return "datetime"
    if fmt.startswith(("DATE", "ADATE", "EDATE", "SDATE", "JDATE")):
        return "date"
    return "numeric"


def _width(format_: str | None) -> int | None:
    digits = "".join(ch if ch.isdigit() else " " for ch in (format_ or "")).split()
    return int(digits[0]) if digits else None


def from_pyreadstat(meta: Any, por_missing: dict[str, tuple[MissingSpec, ...]] | None = None) -> Codebook:
    """Build a Codebook from pyreadstat metadata read with ``user_missing=True``."""
    variables = {}
    labels = dict(zip(meta.column_names, meta.column_labels or [None] * len(meta.column_names)))
    for name in meta.column_names:
        fmt = (meta.original_variable_types or {}).get(name)
        rtype = (meta.readstat_variable_types or {}).get(name, "double")
        vtype = _spss_type(rtype, fmt)
        missing: list[MissingSpec] = []
        for rng in (meta.missing_ranges or {}).get(name, []):
            lo, hi = rng["lo"], rng["hi"]
            if isinstance(lo, str) or lo == hi:
                missing.append(MissingSpec("value", code_text(lo), *(2 * [None if isinstance(lo, str) else float(lo)])))
            else:
                missing.append(MissingSpec("range", None, float(lo), float(hi)))
        if por_missing and name in por_missing:
            missing = list(por_missing[name])
        value_labels = {code_text(k): str(v) for k, v in (meta.variable_value_labels or {}).get(name, {}).items()}
        measure = (meta.variable_measure or {}).get(name, "unknown") or "unknown"
        variables[name] = Variable(
            name=name,
            label=labels.get(name) or None,
            type=vtype,
            measure=measure if measure in MEASURES else "unknown",
            format=fmt,
            width=(meta.variable_storage_width or {}).get(name) if vtype == "string" else _width(fmt),
            value_labels=value_labels,
            missing=tuple(missing),
        )
    mr_sets = {}
    for set_name, spec in (getattr(meta, "mr_sets", None) or {}).items():
        mr_sets[set_name] = MrSet(
            name=set_name,
            label=spec.get("label"),
            type="dichotomy" if spec.get("type") == "D" else "category",
            counted_value=code_text(spec["counted_value"]) if spec.get("counted_value") is not None else None,
            variables=tuple(spec.get("variable_list", [])),
        )
    return Codebook(variables=variables, mr_sets=mr_sets, encoding=meta.file_encoding)


# --- from a companion codebook file ---------------------------------------------------------------


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("true", "yes", "1", "y", "x")


def read_codebook_file(path: Path) -> Codebook:
    """Read a companion codebook: a long CSV (variable,label,type,measure,format,code,code_label,missing)
    or a TOML file with one ``[variables.NAME]`` table per variable."""
    path = Path(path)
    if not path.exists():
        raise InputMissingError(f"{path}: codebook file not found", hint="check the wave's `codebook` path in wavetool.toml")
    if path.suffix.lower() == ".toml":
        return _read_codebook_toml(path)
    return _read_codebook_csv(path)


def _read_codebook_csv(path: Path) -> Codebook:
    required = {"variable", "label", "type", "measure", "format", "code", "code_label", "missing"}
    draft: dict[str, dict[str, Any]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            absent = required - set(reader.fieldnames or [])
            if absent:
                raise DataError(
                    f"{path}: codebook lacks column(s) {', '.join(sorted(absent))}",
                    hint="the header must be variable,label,type,measure,format,code,code_label,missing",
                )
            for line, row in enumerate(reader, start=2):
                name = (row["variable"] or "").strip()
                if not name:
                    raise DataError(f"{path}: line {line}: empty `variable`")
                entry = draft.setdefault(name, {"name": name, "value_labels": {}, "missing": []})
                code = (row["code"] or "").strip()
                if not code:
                    vtype = (row["type"] or "numeric").strip() or "numeric"
                    if vtype not in TYPES:
                        raise DataError(f"{path}: line {line}, column type: {vtype!r} is not one of {', '.join(TYPES)}")
                    measure = (row["measure"] or "unknown").strip() or "unknown"
                    if measure not in MEASURES:
                        raise DataError(f"{path}: line {line}, column measure: {measure!r} is not one of {', '.join(MEASURES)}")
                    entry.update(label=row["label"] or None, type=vtype, measure=measure, format=row["format"] or None)
                    continue
                code = _normal_code(code)
                if row["code_label"]:
                    entry["value_labels"][code] = row["code_label"]
                if _truthy(row["missing"] or ""):
                    entry["missing"].append(_missing_value(code))
    except UnicodeDecodeError:
        raise DataError(f"{path}: codebook is not UTF-8", hint="save the codebook as UTF-8") from None
    return Codebook(variables={n: _variable_from_draft(d) for n, d in draft.items()}, encoding="utf-8")


def _normal_code(code: str) -> str:
    try:
        return code_text(float(code))
    except ValueError:
        return code


def _missing_value(code: str) -> MissingSpec:
    try:
        number = float(code)
    except ValueError:
        return MissingSpec("value", code)
    return MissingSpec("value", code_text(number), number, number)


def _variable_from_draft(d: dict[str, Any]) -> Variable:
    return Variable(
        name=d["name"],
        label=d.get("label"),
        type=d.get("type", "numeric"),
        measure=d.get("measure", "unknown"),
        format=d.get("format"),
        width=_width(d.get("format")),
        value_labels=d["value_labels"],
        missing=tuple(d["missing"]),
    )


def _read_codebook_toml(path: Path) -> Codebook:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid TOML codebook: {exc}") from None
    variables = {}
    for name, spec in (data.get("variables") or {}).items():
        if not isinstance(spec, dict):
            raise DataError(f"{path}: variables.{name} must be a table")
        unknown = set(spec) - {"label", "type", "measure", "format", "values", "missing", "missing_range"}
        if unknown:
            raise DataError(f"{path}: variables.{name}: unknown key {sorted(unknown)[0]!r}")
        missing = [_missing_value(code_text(c)) for c in spec.get("missing", [])]
        if "missing_range" in spec:
            low, high = spec["missing_range"]
            missing.append(MissingSpec("range", None, float(low), float(high)))
        variables[name] = _variable_from_draft(
            {
                "name": name,
                "label": spec.get("label"),
                "type": spec.get("type", "numeric"),
                "measure": spec.get("measure", "unknown"),
                "format": spec.get("format"),
                "value_labels": {_normal_code(str(k)): str(v) for k, v in (spec.get("values") or {}).items()},
                "missing": missing,
            }
        )
    return Codebook(variables=variables, encoding="utf-8")


# --- to and from the study database ---------------------------------------------------------------


def save_codebook(
    con: duckdb.DuckDBPyConnection,
    wave: int,
    codebook: Codebook,
    roles: dict[str, str],
    owners: dict[str, str],
    questions: dict[str, str] | None = None,
) -> None:
    """Write a wave's codebook into the codebook tables (inside the caller's transaction)."""
    for table in ("variables", "value_labels", "missing_values", "mr_sets"):
        con.execute(f"DELETE FROM {table} WHERE wave = ?", [wave])
    role_of = {column: role for role, column in roles.items()}
    questions = questions or {}
    var_rows, label_rows, missing_rows = [], [], []
    for position, var in enumerate(codebook.variables.values(), start=1):
        var_rows.append(
            (wave, var.name, position, var.label, var.type, var.measure, var.format, var.width,
             role_of.get(var.name), owners.get(var.name), questions.get(var.name, var.name))
        )
        for code, label in var.value_labels.items():
            label_rows.append((wave, var.name, code, _as_number(code) if var.type != "string" else None, label))
        for spec in var.missing:
            missing_rows.append((wave, var.name, spec.kind, spec.code, spec.low, spec.high))
    if var_rows:
        con.executemany("INSERT INTO variables VALUES (?,?,?,?,?,?,?,?,?,?,?)", var_rows)
    if label_rows:
        con.executemany("INSERT INTO value_labels VALUES (?,?,?,?,?)", label_rows)
    if missing_rows:
        con.executemany("INSERT INTO missing_values VALUES (?,?,?,?,?,?)", missing_rows)
    for mr in codebook.mr_sets.values():
        con.execute(
            "INSERT INTO mr_sets VALUES (?,?,?,?,?,?)",
            [wave, mr.name, mr.label, mr.type, mr.counted_value, list(mr.variables)],
        )


def _as_number(code: str) -> float | None:
    try:
        return float(code)
    except ValueError:
        return None


def load_codebook(con: duckdb.DuckDBPyConnection, wave: int) -> Codebook:
    """A wave's codebook as stored in the database."""
    labels: dict[str, dict[str, str]] = {}
    for variable, code, label in con.execute(
        "SELECT variable, code, label FROM value_labels WHERE wave = ? ORDER BY variable, code_num NULLS LAST, code",
        [wave],
    ).fetchall():
        labels.setdefault(variable, {})[code] = label
    missing: dict[str, list[MissingSpec]] = {}
    for variable, kind, code, low, high in con.execute(
        "SELECT variable, kind, code, low, high FROM missing_values WHERE wave = ? ORDER BY variable, low, code",
        [wave],
    ).fetchall():
        missing.setdefault(variable, []).append(MissingSpec(kind, code, low, high))
    variables = {}
    for name, label, vtype, measure, fmt, width in con.execute(
        "SELECT name, label, type, measure, format, width FROM variables WHERE wave = ? ORDER BY position",
        [wave],
    ).fetchall():
        variables[name] = Variable(name, label, vtype, measure, fmt, width, labels.get(name, {}), tuple(missing.get(name, ())))
    mr_sets = {
        name: MrSet(name, label, mtype, counted, tuple(vars_))
        for name, label, mtype, counted, vars_ in con.execute(
            "SELECT name, label, type, counted_value, variables FROM mr_sets WHERE wave = ? ORDER BY name", [wave]
        ).fetchall()
    }
    encoding = first_row(con, "SELECT encoding FROM waves WHERE wave = ?", [wave])
    return Codebook(variables=variables, mr_sets=mr_sets, encoding=encoding[0] if encoding else None)


def codebook_rows(con: duckdb.DuckDBPyConnection, wave: int, variable: str | None = None) -> list[dict[str, Any]]:
    """The stored codebook of a wave (or one variable) as plain records, for display and JSON."""
    codebook = load_codebook(con, wave)
    if variable is not None and variable not in codebook.variables:
        raise InputMissingError(
            f"wave {wave}: no variable {variable!r}",
            hint="run `wavetool codebook --wave N` to list the variables",
        )
    names = [variable] if variable else list(codebook.variables)
    meta = {
        row[0]: row[1:]
        for row in con.execute("SELECT name, role, owner, question FROM variables WHERE wave = ?", [wave]).fetchall()
    }
    rows = []
    for name in names:
        var = codebook.variables[name]
        role, owner, question = meta.get(name, (None, None, None))
        rows.append(
            {
                "wave": wave,
                "name": name,
                "question": question,
                "label": var.label,
                "type": var.type,
                "measure": var.measure,
                "format": var.format,
                "width": var.width,
                "role": role,
                "owner": owner,
                "value_labels": var.value_labels,
                "missing": [spec.describe() for spec in var.missing],
            }
        )
    return rows


def review_drift(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> tuple[str, list[dict[str, Any]]]:
    """The drift gate's verdict for ``wave`` against the previous imported wave: ('approved' or
    'unreviewed', the unexplained differences). Filled in by the harmonisation work (issue 3)."""
    return "approved", []


# --- harmonised questions (one identity across waves) --------------------------------------------


def _recode_for(config: Any, question: str, wave: int) -> dict[float, float]:
    for entry in config.crosswalk:
        if entry.question == question and wave in entry.waves and entry.recode:
            return entry.recode
    return {}


def core_variables(con: duckdb.DuckDBPyConnection, wave: int) -> list[tuple[str, str]]:
    """(variable, question) of a wave's core questions: not a role column, not a subscriber's own."""
    return con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND role IS NULL AND owner IS NULL ORDER BY position",
        [wave],
    ).fetchall()


def harmonised_select(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> str:
    """SQL selecting a wave's respondents with one column per study-level question (crosswalk renames
    and recodes applied) beside ``_id``, ``_jurisdiction`` and ``_weight``. Subscriber-owned columns are
    never part of it."""
    from .store import quote, wave_table

    columns = ["_id", "_jurisdiction", "_weight"]
    for variable, question in core_variables(con, wave):
        recode = _recode_for(config, question, wave)
        expr = quote(variable)
        if recode:
            cases = " ".join(f"WHEN {old!r} THEN {new!r}" for old, new in recode.items())
            expr = f"CASE {expr} {cases} ELSE {expr} END"
        columns.append(f"{expr} AS {quote(question)}")
    return f"SELECT {', '.join(columns)} FROM {wave_table(wave)}"


def harmonised_codebook(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, Variable]:
    """A wave's core questions keyed by study-level question, with codes in the study's coding."""
    book = load_codebook(con, wave)
    result = {}
    for variable, question in core_variables(con, wave):
        var = book.variables[variable]
        recode = _recode_for(config, question, wave)
        if recode:
            labels = {code_text(recode.get(float(c), float(c))) if _as_number(c) is not None else c: lbl
                      for c, lbl in var.value_labels.items()}
            var = replace(var, value_labels=labels)
        result[question] = replace(var, name=question)
    return result


def ensure_reviewed(con: duckdb.DuckDBPyConnection, waves: list[int] | tuple[int, ...]) -> None:
    """Refuse (DriftGateError) to use a wave whose codebook drift has not been reviewed."""
    from .errors import DriftGateError

    rows = con.execute(
        "SELECT wave, drift FROM waves WHERE review_status = 'unreviewed' AND list_contains(?, wave) ORDER BY wave",
        [list(waves)],
    ).fetchall()
    if rows:
        wave, drift = rows[0]
        raise DriftGateError(
            f"wave {wave}'s codebook drifted from the previous wave and has not been reviewed: {drift_summary(drift)}",
            hint=f"see `wavetool codebook diff {wave - 1} {wave}`; add a [[crosswalk]] entry that explains it, "
            f"or run `wavetool codebook approve --wave {wave}`",
        )


def drift_summary(drift: Any) -> str:
    """A one-line description of stored drift records."""
    import json

    items = json.loads(drift) if isinstance(drift, str) else (drift or [])
    parts = [f"{d.get('question', '?')} {d.get('change', 'changed')}" for d in items[:5]]
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return (", ".join(parts) + more) or "unexplained changes"
