"""Codebooks from outside the database: SPSS metadata (pyreadstat) and companion codebook files
(CSV or TOML) beside a CSV data file."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path
from typing import Any

from ..errors import DataError, InputMissingError
from ..sql import code_text
from .model import MEASURES, TYPES, Codebook, MissingSpec, MrSet, Variable

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
