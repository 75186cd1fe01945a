"""Decoding CSV exports with DuckDB's reader; types and labels come from a companion codebook."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

from ..codebook import Codebook, Variable
from ..errors import DataError
from ..store import first_row, quote

_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
                     "iso-8859-1": "latin-1", "utf-16": "utf-16"}


def _normal_encoding(encoding: str, path: Path) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"{path}: unknown encoding {encoding!r}", hint="use a Python codec name such as utf-8, latin-1 or cp1252") from None


def read_csv_data(path: Path, codebook: Codebook | None, encoding: str | None = None) -> tuple[pa.Table, Codebook]:
    """The CSV's values as an Arrow table typed by the codebook, and the codebook for its columns."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    source, cleanup = _as_duckdb_encoding(path, encoding)
    con = duckdb.connect()
    try:
        duck_encoding = _DUCKDB_ENCODINGS.get(_normal_encoding(encoding, path) if encoding else "utf-8", "utf-8")
        try:
            rel = con.sql(
                "SELECT * FROM read_csv(?, header = true, all_varchar = true, strict_mode = true,"
                " encoding = ?, null_padding = false)",
                params=[str(source), duck_encoding],
            )
            names = rel.columns
            raw = rel.to_arrow_table()
        except duckdb.Error as exc:
            raise _csv_error(path, exc, encoding) from None
        if raw.num_rows == 0:
            raise DataError(f"{path}: the file has a header but no data rows", hint="ask the vendor for the full export")
        codebook = _codebook_for(names, codebook, raw, con)
        return _typed(con, raw, codebook, path), codebook
    finally:
        con.close()
        if cleanup:
            Path(source).unlink(missing_ok=True)


def _as_duckdb_encoding(path: Path, encoding: str | None) -> tuple[Path, bool]:
    if encoding is None or _normal_encoding(encoding, path) in _DUCKDB_ENCODINGS:
        return path, False
    # DuckDB reads only UTF-8/16 and Latin-1 without an extension (which would need the network),
    # so other encodings are transcoded to a temporary UTF-8 copy first.
    with open(path, encoding=encoding, newline="") as src, tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", suffix=".csv", delete=False, newline=""
    ) as dst:
        try:
            for chunk in iter(lambda: src.read(1 << 20), ""):
                dst.write(chunk)
        except UnicodeDecodeError as exc:
            Path(dst.name).unlink(missing_ok=True)
            raise DataError(f"{path}: not valid {encoding}: {exc}", hint="check --encoding") from None
    return Path(dst.name), True


def _csv_error(path: Path, exc: duckdb.Error, encoding: str | None) -> DataError:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "unicode" in text.lower() or "utf" in text.lower() and "invalid" in text.lower():
        return DataError(
            f"{path}: the file is not valid UTF-8 (e.g. Latin-1 accents)",
            hint="pass --encoding latin-1 (or cp1252 for Windows exports)",
        )
    line = _line_of(text)
    where = f", line {line}" if line else ""
    if "expected" in text.lower() and "column" in text.lower():
        return DataError(f"{path}{where}: a row has a different number of fields than the header ({first})",
                         hint="fix the ragged row or ask the vendor to re-export the file")
    return DataError(f"{path}{where}: cannot parse CSV: {first}", hint="check the file is a comma-separated export with a header row")


def _line_of(text: str) -> int | None:
    import re

    match = re.search(r"[Ll]ine:?\s*(\d+)", text)
    return int(match[1]) if match else None


def _infer_type(con: duckdb.DuckDBPyConnection, raw: pa.Table, name: str) -> str:
    con.register("raw_infer", raw.select([name]))
    bad = first_row(
        con,
        f"SELECT count(*) FROM raw_infer WHERE {quote(name)} IS NOT NULL AND trim({quote(name)}) <> ''"
        f" AND TRY_CAST({quote(name)} AS DOUBLE) IS NULL",
    )[0]
    con.unregister("raw_infer")
    return "string" if bad else "numeric"


def _codebook_for(names: list[str], codebook: Codebook | None, raw: pa.Table, con: duckdb.DuckDBPyConnection) -> Codebook:
    known = codebook.variables if codebook else {}
    variables = {}
    for name in names:
        variables[name] = known.get(name) or Variable(name=name, type=_infer_type(con, raw, name))
    mr_sets = {k: s for k, s in (codebook.mr_sets if codebook else {}).items() if all(v in variables for v in s.variables)}
    return Codebook(variables=variables, mr_sets=mr_sets, encoding="utf-8")


def _typed(con: duckdb.DuckDBPyConnection, raw: pa.Table, codebook: Codebook, path: Path) -> pa.Table:
    con.register("raw", raw.append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64())))
    selects, checks = [], []
    for name, var in codebook.variables.items():
        col = quote(name)
        if var.type == "string":
            selects.append(f"{col}")
            continue
        target = {"date": "DATE", "datetime": "TIMESTAMP"}.get(var.type, "DOUBLE")
        blank = f"nullif(trim({col}), '')"
        selects.append(f"TRY_CAST({blank} AS {target}) AS {col}")
        checks.append((name, target, f"{blank} IS NOT NULL AND TRY_CAST({blank} AS {target}) IS NULL"))
    for name, target, bad in checks:
        row = first_row(con, f"SELECT __row, {quote(name)} FROM raw WHERE {bad} ORDER BY __row LIMIT 1")
        if row:
            raise DataError(
                f"{path}: line {row[0] + 1} (data row {row[0]}), column {name}: {row[1]!r} is not a valid {target.lower()} value",
                hint="fix the value, or declare the column as type string in the codebook",
            )
    table = con.sql(f"SELECT {', '.join(selects)} FROM raw ORDER BY __row").to_arrow_table()
    con.unregister("raw")
    return table

