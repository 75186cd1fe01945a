"""Exporting the harmonised data: waves stacked with a ``wave`` column, one column per study-level
question, as Parquet, CSV (+ a companion codebook) or SPSS .sav, with labels kept where the format can
hold them.

Without a subscriber an export holds the core questions only: no custom and no prefix column of any
subscriber. With ``subscriber`` it holds only that subscriber's respondents (those of its
jurisdictions, all of whom were asked its questions), the core questions and its custom questions: no
row of a jurisdiction it does not own and no other subscriber's column is ever selected.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from . import __version__
from .codebook import (
    MissingSpec,
    Variable,
    ensure_reviewed,
    harmonised_codebook,
    harmonised_select,
    load_codebook,
)
from .config import StudyConfig
from .custom import CustomQuestion, custom_questions, custom_select
from .errors import DataError, InputMissingError, OutputError
from .fsutil import atomic_path
from .sql import code_text_sql, literal
from .store import quote, read_store

FORMATS = ("parquet", "csv", "sav")
WAVE_COLUMN = "wave"
SQL_TYPES = {"numeric": "DOUBLE", "string": "VARCHAR", "date": "DATE", "datetime": "TIMESTAMP"}
_SPSS_NAME = re.compile(r"^[A-Za-z@#$][A-Za-z0-9_.@#$]{0,63}$")


def format_for(output: Path, fmt: str | None) -> str:
    """The export format: ``fmt`` if given, else the output file's suffix."""
    chosen = (fmt or Path(output).suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise DataError(
            f"{output}: unknown export format {chosen or '(none)'!r}",
            hint=f"pass --format {'|'.join(FORMATS)} (or name the output .parquet, .csv or .sav)",
        )
    return chosen


def _merge_order(orders: list[list[str]]) -> list[str]:
    """One column order from each wave's: new questions go after their predecessor in their own wave."""
    merged: list[str] = []
    for order in orders:
        previous = None
        for name in order:
            if name not in merged:
                merged.insert(merged.index(previous) + 1 if previous in merged else len(merged), name)
            previous = name
    return merged


def _merge_variables(versions: list[Variable]) -> Variable:
    """A question's variable across waves: the latest wave's texts, value labels of every wave (later
    waves' wording wins), user-missing codes of every wave."""
    latest = versions[-1]
    labels: dict[str, str] = {}
    missing: dict[str, MissingSpec] = {}
    for var in versions:
        labels.update(var.value_labels)
        missing.update({spec.describe(): spec for spec in var.missing})
    types = {v.type for v in versions}
    vtype = latest.type if len(types) == 1 else "string"
    return Variable(
        latest.name,
        latest.label,
        vtype,
        latest.measure,
        latest.format if len(types) == 1 else None,
        latest.width,
        dict(sorted(labels.items(), key=lambda kv: _code_key(kv[0]))),
        tuple(missing.values()),
    )


def _code_key(code: str) -> tuple[int, float, str]:
    try:
        return (0, float(code), "")
    except ValueError:
        return (1, 0.0, code)


def _plan(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, waves: list[int], subscriber: str | None
) -> tuple[str, dict[str, Variable], list[str]]:
    """The stacking SQL, the codebook of every exported column (in column order), the custom questions."""
    roles = config.columns
    per_wave = {w: harmonised_codebook(con, config, w) for w in waves}
    customs: dict[int, list[CustomQuestion]] = (
        {w: custom_questions(con, w, subscriber) for w in waves} if subscriber else {}
    )
    books = {w: load_codebook(con, w) for w in waves}
    role_vars = {}
    for role, name in (("id", roles.id), ("jurisdiction", roles.jurisdiction), ("weight", roles.weight)):
        versions = []
        for w in waves:
            stored = con.execute(
                "SELECT name FROM variables WHERE wave = ? AND book = '' AND role = ?", [w, role]
            ).fetchall()
            if stored:
                versions.append(books[w].variables[stored[0][0]])
        merged = _merge_variables(versions) if versions else Variable(name)
        role_vars[name] = Variable(
            name,
            merged.label,
            merged.type,
            merged.measure,
            merged.format,
            merged.width,
            merged.value_labels,
            merged.missing,
        )
    questions = {
        q: _merge_variables([per_wave[w][q] for w in waves if q in per_wave[w]])
        for q in _merge_order([list(per_wave[w]) for w in waves])
    }
    custom_vars = {}
    if subscriber:
        for q in _merge_order([[c.question for c in customs[w]] for w in waves]):
            custom_vars[q] = _merge_variables([c.variable for w in waves for c in customs[w] if c.question == q])
    wave_var = Variable(
        WAVE_COLUMN,
        "Wave",
        "numeric",
        "ordinal",
        "F2.0",
        2,
        {str(n): config.waves[n].label for n in waves if n in config.waves},
    )
    columns: dict[str, Variable] = {WAVE_COLUMN: wave_var, **role_vars}
    extra: dict[str, Variable] = {}
    for name in [*questions, *extra, *custom_vars]:
        if name in columns:
            raise DataError(
                f"cannot export: column {name} would appear twice (a question has the name of a"
                f" {'custom question' if name in custom_vars else 'reserved column'})",
                hint="rename the question (crosswalk) or the custom question",
            )
        columns[name] = questions.get(name) or extra.get(name) or custom_vars[name]

    id_numeric = role_vars[roles.id].type == "numeric"
    parts = []
    for w in waves:
        have = per_wave[w]
        mine = {c.question for c in customs.get(w, [])}
        select = [
            f"{w}::DOUBLE AS {quote(WAVE_COLUMN)}",
            f"{'TRY_CAST(h._id AS DOUBLE)' if id_numeric else 'h._id'} AS {quote(roles.id)}",
            f"h._jurisdiction AS {quote(roles.jurisdiction)}",
            f"h._weight AS {quote(roles.weight)}",
        ]
        for name, var in columns.items():
            if name in (WAVE_COLUMN, roles.id, roles.jurisdiction, roles.weight):
                continue
            target = SQL_TYPES.get(var.type, "VARCHAR")
            if name in custom_vars:
                source = f"c.{quote(name)}" if name in mine else "NULL"
                select.append(f"CAST({source} AS {target}) AS {quote(name)}")
            else:
                source = f"h.{quote(name)}" if name in have else "NULL"
                select.append(f"CAST({source} AS {target}) AS {quote(name)}")
        # A subscriber's export holds its own respondents only: figures for jurisdictions it does not own
        # must never reach it (its benchmark is an aggregate, in its report).
        join = f" JOIN ({custom_select(con, config, w, subscriber)}) AS c ON c._id = h._id" if subscriber else ""
        parts.append(f"SELECT {', '.join(select)} FROM ({harmonised_select(con, config, w)}) AS h{join}")
    order = f"{quote(WAVE_COLUMN)}, {quote(roles.id)}"
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY {order}", columns, list(custom_vars)


def export_data(
    config: StudyConfig, waves: list[int] | None, subscriber: str | None, fmt: str | None, output: Path
) -> dict[str, Any]:
    """Write the harmonised data of ``waves`` (default: every imported wave), stacked, to ``output`` as
    Parquet, CSV or .sav. Unreviewed waves are refused (drift gate). Returns a summary."""
    output = Path(output)
    fmt = format_for(output, fmt)
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OutputError(
            f"{output}: cannot write the export: folder {folder} {'is not writable' if folder.is_dir() else 'does not exist'}",
            hint="create the folder first, or choose another --output",
        )
    if subscriber:
        config.subscriber(subscriber)
    with read_store(config.root) as con:
        stored = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        chosen = sorted(set(waves)) if waves else stored
        absent = [w for w in chosen if w not in stored]
        if not chosen or absent:
            raise InputMissingError(
                f"wave {absent[0] if absent else '(any)'} is not imported, nothing to export",
                hint="run `wavetool import --wave N FILE` first (see `wavetool status`)",
            )
        ensure_reviewed(con, chosen)
        sql, columns, custom_names = _plan(con, config, chosen, subscriber)
        data = con.sql(sql).to_arrow_table()
    warnings: list[str] = []
    codebook_path = None
    if fmt == "parquet":
        _atomic(output, lambda tmp: _write_parquet(data, columns, tmp, config, chosen, subscriber))
    elif fmt == "csv":
        codebook_path = output.with_name(f"{output.stem}-codebook.csv")
        _atomic(output, lambda tmp: _write_csv(data, columns, tmp))
        _atomic(codebook_path, lambda tmp: warnings.extend(_write_codebook_csv(columns, tmp)))
    else:
        _check_spss_names(columns)
        _atomic(output, lambda tmp: _write_sav(data, columns, tmp, config))
    return {
        "output": str(output),
        "format": fmt,
        "waves": chosen,
        "subscriber": subscriber,
        "rows": data.num_rows,
        "columns": data.num_columns,
        "custom_questions": custom_names,
        "codebook": str(codebook_path) if codebook_path else None,
        "warnings": warnings,
    }


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename: no half-written export."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot write the export: {exc.strerror or exc}",
            hint="check the folder exists and is writable, and the disk is not full",
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _metadata(var: Variable) -> dict[bytes, bytes]:
    missing = [{"kind": s.kind, "code": s.code, "low": s.low, "high": s.high} for s in var.missing]
    values = {
        "label": var.label or "",
        "type": var.type,
        "measure": var.measure,
        "format": var.format or "",
        "value_labels": json.dumps(var.value_labels, ensure_ascii=False),
        "missing": json.dumps(missing),
    }
    return {f"wavetool.{k}".encode(): str(v).encode("utf-8") for k, v in values.items()}


def _write_parquet(
    data: pa.Table,
    columns: dict[str, Variable],
    path: Path,
    config: StudyConfig,
    waves: list[int],
    subscriber: str | None,
) -> None:
    import pyarrow.parquet as pq  # lazy: a heavy optional module, only for --format parquet

    fields = [data.schema.field(name).with_metadata(_metadata(columns[name])) for name in data.column_names]
    about = {"study": config.name, "waves": waves, "subscriber": subscriber, "wavetool_version": __version__}
    schema = pa.schema(fields, metadata={b"wavetool": json.dumps(about, ensure_ascii=False).encode("utf-8")})
    pq.write_table(data.cast(schema), path)


def _write_csv(data: pa.Table, columns: dict[str, Variable], path: Path) -> None:
    con = duckdb.connect()
    try:
        con.register("export_data", data)
        select = []
        for name in data.column_names:
            col = quote(name)
            if columns[name].type == "numeric":
                # Codes as 1, not 1.0; decimals (weights) at full precision.
                select.append(f"{code_text_sql(col)} AS {col}")
            else:
                select.append(col)
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM export_data) TO {literal(str(path))} (FORMAT csv, HEADER true)"
        )
    finally:
        con.close()


def _write_codebook_csv(columns: dict[str, Variable], path: Path) -> list[str]:
    """The long codebook (the format `wavetool import --codebook` reads) for a CSV export."""
    warnings = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variable", "label", "type", "measure", "format", "code", "code_label", "missing"])
        for name, var in columns.items():
            writer.writerow([name, var.label or "", var.type, var.measure, var.format or "", "", "", ""])
            codes = dict(var.value_labels)
            for spec in var.missing:
                if spec.kind == "value" and spec.code is not None:
                    codes.setdefault(spec.code, "")
                elif spec.kind == "range":
                    warnings.append(f"{name}: missing range {spec.describe()} cannot be written to a CSV codebook")
            for code in sorted(codes, key=_code_key):
                writer.writerow(
                    [name, "", "", "", "", code, codes[code], "true" if var.is_missing_code(_as_code(code)) else ""]
                )
    return warnings


def _as_code(code: str) -> Any:
    try:
        return float(code)
    except ValueError:
        return code


def _check_spss_names(columns: dict[str, Variable]) -> None:
    bad = [n for n in columns if not _SPSS_NAME.match(n) or len(n.encode("utf-8")) > 64]
    if bad:
        raise DataError(
            f"cannot export to .sav: {bad[0]!r} is not a valid SPSS variable name"
            f"{f' ({len(bad)} invalid names)' if len(bad) > 1 else ''}",
            hint="export as --format parquet or csv, or rename the question",
        )


def _spss_missing(var: Variable) -> list[Any] | None:
    if not var.missing:
        return None
    values = [s for s in var.missing if s.kind == "value"]
    ranges = [s for s in var.missing if s.kind == "range"]
    if len(ranges) > 1 or (ranges and len(values) > 1) or len(values) > 3:
        raise DataError(
            f"cannot export to .sav: {var.name} has user-missing codes SPSS cannot hold"
            f" ({', '.join(s.describe() for s in var.missing)}; SPSS allows 3 codes, or one range and one code)",
            hint="export as --format parquet, which keeps every missing code",
        )
    out: list[Any] = []
    for spec in ranges:
        out.append({"lo": -1e300 if spec.low is None else spec.low, "hi": 1e300 if spec.high is None else spec.high})
    for spec in values:
        out.append(spec.code if var.type == "string" else spec.low)
    return out


def _write_sav(data: pa.Table, columns: dict[str, Variable], path: Path, config: StudyConfig) -> None:
    import pyreadstat  # lazy: heavy (C extension), only for a .sav export

    frame = data.to_pandas()
    labels = {n: v.label for n, v in columns.items() if v.label}
    value_labels = {}
    for name, var in columns.items():
        if var.value_labels:
            value_labels[name] = {
                (code if var.type == "string" else float(code)): text for code, text in var.value_labels.items()
            }
    missing = {n: m for n, v in columns.items() if (m := _spss_missing(v))}
    measures = {n: v.measure for n, v in columns.items() if v.measure in ("nominal", "ordinal", "scale")}
    formats = {n: v.format for n, v in columns.items() if v.format and v.type in ("numeric", "string")}
    for name, var in columns.items():
        if var.type == "string":
            width = max(1, int(frame[name].fillna("").astype(str).str.encode("utf-8").str.len().max() or 1))
            formats[name] = f"A{max(width, var.width or 1)}"
            frame[name] = frame[name].fillna("")
    pyreadstat.write_sav(
        frame,
        str(path),
        file_label=config.name[:64],
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_ranges=missing,
        variable_measure=measures,
        variable_format=formats,
        compress=False,
    )


__all__ = ["FORMATS", "export_data", "format_for"]
