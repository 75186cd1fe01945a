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
from .sql import code_text
from .store import first_row

MEASURES = ("nominal", "ordinal", "scale", "unknown")
TYPES = ("numeric", "string", "date", "datetime")


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
    labels = dict(zip(meta.column_names, meta.column_labels or [None] * len(meta.column_names), strict=True))
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
        raise InputMissingError(
            f"{path}: codebook file not found", hint="check the wave's `codebook` path in wavetool.toml"
        )
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
                        raise DataError(
                            f"{path}: line {line}, column measure: {measure!r} is not one of {', '.join(MEASURES)}"
                        )
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
            (
                wave,
                var.name,
                position,
                var.label,
                var.type,
                var.measure,
                var.format,
                var.width,
                role_of.get(var.name),
                owners.get(var.name),
                questions.get(var.name, var.name),
            )
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
        variables[name] = Variable(
            name, label, vtype, measure, fmt, width, labels.get(name, {}), tuple(missing.get(name, ()))
        )
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
    columns += [f"{expr} AS {quote(question)}" for question, expr in harmonised_columns(con, config, wave).items()]
    return f"SELECT {', '.join(columns)} FROM {wave_table(wave)}"


def harmonised_columns(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, str]:
    """question -> SQL expression over the wave table giving that question's answers (the columns of
    :func:`harmonised_select`; the tables use them directly to aggregate many questions in one query)."""
    from .store import quote

    columns = {}
    for variable, question in core_variables(con, wave):
        recode = _recode_for(config, question, wave)
        expr = quote(variable)
        if recode:
            cases = " ".join(f"WHEN {old!r} THEN {new!r}" for old, new in recode.items())
            expr = f"CASE {expr} {cases} ELSE {expr} END"
        columns[question] = expr
    return columns


def in_study_coding(var: Variable, recode: dict[float, float]) -> Variable:
    """``var`` with its value labels and user-missing codes moved into the study's coding by a crosswalk
    recode (unchanged without one)."""
    if not recode:
        return var
    labels = {
        code_text(recode.get(float(c), float(c))) if _as_number(c) is not None else c: lbl
        for c, lbl in var.value_labels.items()
    }
    return replace(var, value_labels=labels, missing=tuple(_recode_missing(spec, recode) for spec in var.missing))


def harmonised_codebook(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, Variable]:
    """A wave's core questions keyed by study-level question, with codes in the study's coding."""
    book = load_codebook(con, wave)
    result = {}
    for variable, question in core_variables(con, wave):
        var = in_study_coding(book.variables[variable], _recode_for(config, question, wave))
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
            hint=f"see `wavetool codebook diff {_previous_label(con, wave)} {wave}`; add a [[crosswalk]] entry that explains it"
            f" and run `wavetool codebook review --wave {wave}`, or accept it with `wavetool codebook approve --wave {wave}`",
        )


def drift_summary(drift: Any) -> str:
    """A one-line description of stored drift records."""
    import json

    items = json.loads(drift) if isinstance(drift, str) else (drift or [])
    # Only what gates: added questions and crosswalk-explained changes are listed by `codebook diff`.
    items = [d for d in items if d.get("gates", d.get("explained_by") is None and d.get("change") != "added")]
    parts = [f"{d.get('question', '?')} {d.get('change', 'changed')}" for d in items[:5]]
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return (", ".join(parts) + more) or "unexplained changes"


# --- drift between waves: diff, the gate, review and approval ------------------------------------
#
# Waves are compared question by question (the study-level identity, crosswalk renames applied), in
# the study's coding (crosswalk recodes applied). Measurement levels, formats, widths and MR sets are
# not compared: they differ with the export format (a .por keeps no measure, a CSV no MR set) and do
# not change what an answer means.

CORE_LANGUAGE = "en"  # the language of the main wave files' labels (a custom file's is its subscriber's)
DRIFT_KINDS = (
    "added",
    "dropped",
    "renamed",
    "type changed",
    "label changed",
    "value label changed",
    "code added",
    "code removed",
    "missing codes changed",
    "recoded",
)


def _recode_missing(spec: MissingSpec, recode: dict[float, float]) -> MissingSpec:
    if spec.kind != "value" or spec.low is None or spec.low not in recode:
        return spec
    new = recode[spec.low]
    return MissingSpec("value", code_text(new), new, new)


def question_map(config: Any, wave: int, names: list[str]) -> dict[str, str]:
    """The study-level question of each variable of ``wave``: its own name unless a crosswalk entry
    for that wave maps the variable to a question (e.g. Q5A in wave 4 answers Q5)."""
    questions = {n: n for n in names}
    for entry in config.crosswalk:
        if entry.variable and wave in entry.waves and entry.variable in questions:
            questions[entry.variable] = entry.question
    return questions


def _question_view(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> dict[str, tuple[str, Variable]]:
    """question -> (variable name, harmonised Variable) for every non-role column of a stored wave."""
    book = load_codebook(con, wave)
    view = {}
    for name, question in con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND role IS NULL ORDER BY position", [wave]
    ).fetchall():
        view[question] = (name, in_study_coding(book.variables[name], _recode_for(config, question, wave)))
    return view


def _entry_text(entry: Any) -> str:
    if entry.note:
        return entry.note
    parts = [f"question {entry.question}", f"waves {list(entry.waves)}"]
    if entry.variable:
        parts.insert(1, f"variable {entry.variable}")
    if entry.recode:
        parts.append("recode")
    if entry.labels_reworded:
        parts.append("labels reworded")
    return "crosswalk " + ", ".join(parts) + f" (v{entry.version})"


def _crosswalk_note(
    config: Any, question: str, waves: tuple[int, int], kind: str, variables: tuple[str, ...] = ()
) -> str | None:
    """The crosswalk entry (as text) that explains a ``kind`` of change of ``question`` between two waves."""
    for entry in config.crosswalk:
        if entry.question != question or not set(entry.waves) & set(waves):
            continue
        if kind == "renamed" and entry.variable and entry.variable in variables:
            return _entry_text(entry)
        if kind == "reworded" and entry.labels_reworded:
            return _entry_text(entry)
        if kind == "recoded" and entry.recode:
            return _entry_text(entry)
    return None


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def _record(
    question: str,
    change: str,
    detail: str,
    a: int,
    b: int,
    var_a: str | None,
    var_b: str | None,
    explained_by: str | None = None,
    gates: bool | None = None,
    suggestion: str | None = None,
) -> dict[str, Any]:
    return {
        "question": question,
        "change": change,
        "detail": detail,
        "explained_by": explained_by,
        "gates": (explained_by is None) if gates is None else gates,
        "wave_a": a,
        "wave_b": b,
        "variable_a": var_a,
        "variable_b": var_b,
        "suggestion": suggestion,
    }


def _fmt_labels(labels: dict[str, str], codes: list[str]) -> str:
    return ", ".join(f"{c} {labels[c]!r}" for c in codes)


def _compare_question(
    config: Any, question: str, a: int, b: int, var_a: str, old: Variable, var_b: str, new: Variable
) -> list[dict[str, Any]]:
    """Every difference of one question between wave ``a`` and wave ``b``."""
    out = []
    rec = lambda change, detail, note=None, gates=None: out.append(  # noqa: E731
        _record(question, change, detail, a, b, var_a, var_b, note, gates)
    )
    if var_a != var_b:
        rec(
            "renamed",
            f"variable {var_a} in wave {a} is {var_b} in wave {b}",
            _crosswalk_note(config, question, (a, b), "renamed", (var_a, var_b)),
        )
    recodes = {w: _recode_for(config, question, w) for w in (a, b)}
    if recodes[a] != recodes[b]:
        shown = "; ".join(
            f"wave {w}: " + ", ".join(f"{code_text(k)}→{code_text(v)}" for k, v in r.items())
            for w, r in recodes.items()
            if r
        )
        rec(
            "recoded",
            f"codes recoded to the study's coding ({shown})",
            _crosswalk_note(config, question, (a, b), "recoded"),
            False,
        )
    if old.type != new.type:
        rec("type changed", f"{old.type} in wave {a}, {new.type} in wave {b}")
    reworded = _crosswalk_note(config, question, (a, b), "reworded")
    if _norm(old.label) != _norm(new.label):
        rec("label changed", f"{old.label!r} in wave {a}, {new.label!r} in wave {b}", reworded)
    removed = [c for c in old.value_labels if c not in new.value_labels]
    added = [c for c in new.value_labels if c not in old.value_labels]
    if removed:
        rec("code removed", f"{_fmt_labels(old.value_labels, removed)} not in wave {b}")
    if added:
        rec("code added", f"{_fmt_labels(new.value_labels, added)} new in wave {b}")
    for code in old.value_labels:
        if code in new.value_labels and _norm(old.value_labels[code]) != _norm(new.value_labels[code]):
            rec(
                "value label changed",
                f"code {code}: {old.value_labels[code]!r} in wave {a}, {new.value_labels[code]!r} in wave {b}",
                reworded,
            )
    old_missing = sorted(s.describe() for s in old.missing)
    new_missing = sorted(s.describe() for s in new.missing)
    if old_missing != new_missing:
        rec(
            "missing codes changed",
            f"{', '.join(old_missing) or 'none'} in wave {a}, {', '.join(new_missing) or 'none'} in wave {b}",
        )
    return out


def diff_waves(con: duckdb.DuckDBPyConnection, config: Any, a: int, b: int) -> list[dict[str, Any]]:
    """Per question, how wave ``b``'s codebook differs from wave ``a``'s: added, dropped, renamed (with the
    crosswalk entry that explains it, or a suggestion when the label matches), type, label, value-label,
    code and missing-code changes. Each record says whether it ``gates`` (changes an existing question
    without a crosswalk explanation) and what ``explained_by`` it."""
    for wave in (a, b):
        if not con.execute("SELECT 1 FROM waves WHERE wave = ?", [wave]).fetchall():
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
            )
    old_view, new_view = _question_view(con, config, a), _question_view(con, config, b)
    records: list[dict[str, Any]] = []
    dropped = [q for q in old_view if q not in new_view]
    added = [q for q in new_view if q not in old_view]
    for question, (var_a, old) in old_view.items():
        if question in new_view:
            var_b, new = new_view[question]
            records.extend(_compare_question(config, question, a, b, var_a, old, var_b, new))
    for question in dropped:
        var_a, old = old_view[question]
        twin = next(
            (
                q
                for q in added
                if _norm(new_view[q][1].label) == _norm(old.label) and old.label and new_view[q][1].type == old.type
            ),
            None,
        )
        if twin is not None:
            added.remove(twin)
            suggestion = f'[[crosswalk]]\nquestion = "{question}"\nvariable = "{new_view[twin][0]}"\nwaves = [{b}]'
            records.append(
                _record(
                    question,
                    "renamed",
                    f"{var_a} (wave {a}) looks renamed to {new_view[twin][0]} (wave {b}): same label {old.label!r}",
                    a,
                    b,
                    var_a,
                    new_view[twin][0],
                    suggestion=suggestion,
                )
            )
            continue
        records.append(
            _record(question, "dropped", f"{var_a} ({old.label or 'no label'}) is not in wave {b}", a, b, var_a, None)
        )
    for question in added:
        var_b, new = new_view[question]
        # A new question changes no existing one: listed, never gating.
        records.append(
            _record(
                question,
                "added",
                f"{var_b} ({new.label or 'no label'}) is new in wave {b}",
                a,
                b,
                None,
                var_b,
                gates=False,
            )
        )
    order = {q: i for i, q in enumerate([*old_view, *(q for q in new_view if q not in old_view)])}
    records.sort(key=lambda r: (order.get(r["question"], len(order)), DRIFT_KINDS.index(r["change"])))
    return records


def _previous_wave(con: duckdb.DuckDBPyConnection, wave: int) -> int | None:
    row = first_row(con, "SELECT max(wave) FROM waves WHERE wave < ?", [wave])
    return row[0] if row and row[0] is not None else None


def _previous_label(con: duckdb.DuckDBPyConnection, wave: int) -> str:
    previous = _previous_wave(con, wave)
    return str(previous if previous is not None else wave - 1)


def _verdict(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> tuple[str, list[dict[str, Any]]]:
    previous = _previous_wave(con, wave)
    if previous is None:
        return "approved", []
    records = diff_waves(con, config, previous, wave)
    return ("unreviewed" if any(r["gates"] for r in records) else "approved"), records


def _store_verdict(con: duckdb.DuckDBPyConnection, wave: int, status: str, records: list[dict[str, Any]]) -> None:
    import json

    drift = json.dumps(records, ensure_ascii=False, sort_keys=True) if records else None
    con.execute("UPDATE waves SET review_status = ?, drift = ? WHERE wave = ?", [status, drift, wave])


def review_drift(con: duckdb.DuckDBPyConnection, config: Any, wave: int) -> tuple[str, list[dict[str, Any]]]:
    """The drift gate's verdict for ``wave`` against the previous imported wave: ('approved' or
    'unreviewed', every difference found). Called inside the import transaction; a difference the
    crosswalk explains, or a question added, does not gate. The next imported wave, compared with this
    one, is re-reviewed too (unless a coordinator approved it by hand)."""
    status, records = _verdict(con, config, wave)
    following = first_row(con, "SELECT min(wave) FROM waves WHERE wave > ? AND reviewed_at IS NULL", [wave])
    nearest_next = first_row(con, "SELECT min(wave) FROM waves WHERE wave > ?", [wave])
    if following and following[0] is not None and following[0] == nearest_next[0]:
        _store_verdict(con, following[0], *_verdict(con, config, following[0]))
    return status, records


def review_waves(config: Any, waves: list[int] | None = None) -> list[dict[str, Any]]:
    """Re-run the drift gate with the current crosswalk (after adding an entry): the crosswalk's renames
    are re-applied to the stored question mapping, then every wave is reviewed against the previous one.
    Waves a coordinator approved by hand stay approved."""
    from .store import transaction, write_store

    results = []
    with (
        write_store(config.root, timeout=config.pipeline.lock_timeout, purpose="wavetool codebook review") as con,
        transaction(con),
    ):
        stored = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        for wave in waves or stored:
            if wave not in stored:
                raise InputMissingError(
                    f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
                )
        for wave in stored:
            names = [r[0] for r in con.execute("SELECT name FROM variables WHERE wave = ?", [wave]).fetchall()]
            for name, question in question_map(config, wave, names).items():
                con.execute(
                    "UPDATE variables SET question = ? WHERE wave = ? AND name = ? AND question <> ?",
                    [question, wave, name, question],
                )
        for wave in stored:
            manual = first_row(con, "SELECT reviewed_at FROM waves WHERE wave = ?", [wave])[0]
            status, records = _verdict(con, config, wave)
            if manual is not None:
                status = "approved"
            _store_verdict(con, wave, status, records)
            if not waves or wave in waves:
                results.append(
                    {
                        "wave": wave,
                        "review_status": status,
                        "approved_by_hand": manual is not None,
                        "drift": [r for r in records if r["gates"]],
                    }
                )
    return results


def approve_wave(config: Any, wave: int) -> dict[str, Any]:
    """Accept a wave's drift by hand: review_status 'approved', reviewed_at now (the drift is kept)."""
    import datetime as dt

    from .store import transaction, write_store

    with write_store(
        config.root, timeout=config.pipeline.lock_timeout, purpose=f"wavetool codebook approve --wave {wave}"
    ) as con:
        row = first_row(con, "SELECT review_status, drift FROM waves WHERE wave = ?", [wave])
        if row is None:
            raise InputMissingError(
                f"wave {wave} is not imported", hint=f"run `wavetool import --wave {wave} FILE` first"
            )
        if row[0] == "approved":  # nothing to accept; a hand approval would also freeze the verdict
            reviewed = first_row(con, "SELECT reviewed_at FROM waves WHERE wave = ?", [wave])[0]
            return {
                "wave": wave,
                "previous_status": "approved",
                "review_status": "approved",
                "reviewed_at": reviewed.isoformat() if reviewed else None,
                "accepted": None,
            }
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        with transaction(con):
            con.execute("UPDATE waves SET review_status = 'approved', reviewed_at = ? WHERE wave = ?", [now, wave])
    return {
        "wave": wave,
        "previous_status": row[0],
        "review_status": "approved",
        "reviewed_at": now.isoformat(),
        "accepted": drift_summary(row[1]) if row[0] == "unreviewed" else None,
    }


def codebook_diff(config: Any, a: int, b: int) -> list[dict[str, Any]]:
    """`wavetool codebook diff A B`: :func:`diff_waves` on the study database."""
    from .store import read_store

    with read_store(config.root) as con:
        return diff_waves(con, config, a, b)


# --- texts in English and French ------------------------------------------------------------------


def translated(
    config: Any, language: str, key: str, source_text: str | None, source_language: str = CORE_LANGUAGE
) -> str | None:
    """The text of a question or value label in ``language``: the source text when it is already in that
    language, else the config's ``[translations.<language>]`` entry for ``key`` ("Q1", "Q1.1" for code 1,
    "quebec:C1" and "quebec:C1.1" for a subscriber's custom question), else None."""
    if language == source_language:
        return source_text or None
    return (config.translations.get(language) or {}).get(key) or None


def _text_items(key: str, var: Variable) -> list[tuple[str, str, str | None]]:
    items = [("question", key, var.label)]
    items += [("value label", f"{key}.{code}", label) for code, label in var.value_labels.items()]
    return items


def translation_gaps(config: Any) -> list[dict[str, Any]]:
    """Every core question, value label and subscriber custom question (of the imported waves) lacking
    an English or a French text: [{owner, kind, key, language, source_language, source_text}]."""
    from .config import LANGUAGES
    from .custom import custom_questions
    from .store import read_store

    with read_store(config.root) as con:
        waves = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        core: dict[str, Variable] = {}
        for wave in waves:  # the latest wave's text of each question wins
            core.update(harmonised_codebook(con, config, wave))
        custom: dict[tuple[str, str], tuple[Variable, str]] = {}
        for wave in waves:
            for sub in config.subscribers:
                for cq in custom_questions(con, wave, sub):
                    custom[(sub, cq.question)] = (cq.variable, cq.language)
    items = [
        ("core", key_kind, key, text, CORE_LANGUAGE)
        for q, var in core.items()
        for key_kind, key, text in _text_items(q, var)
    ]
    for (sub, question), (var, language) in custom.items():
        items += [(sub, kind, key, text, language) for kind, key, text in _text_items(f"{sub}:{question}", var)]
    gaps = []
    for owner, kind, key, text, source_language in items:
        for language in LANGUAGES:
            if translated(config, language, key, text, source_language) is None:
                gaps.append(
                    {
                        "owner": owner,
                        "kind": kind,
                        "key": key,
                        "language": language,
                        "source_language": source_language,
                        "source_text": text,
                    }
                )
    return gaps
