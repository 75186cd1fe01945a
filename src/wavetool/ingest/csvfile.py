"""Decoding CSV exports with DuckDB's reader into staging; types and labels come from a codebook."""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

import duckdb

from ..codebook import Codebook, Variable
from ..errors import DataError
from ..sql import escaped, quote
from .labels import UnlabelledCodes

_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "latin-1": "latin-1", "iso8859-1": "latin-1", "utf-16": "utf-16"}
_DELIMITERS = (",", ";", "\t", "|")


def _normal_encoding(encoding: str, path: Path) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataError(
            f"{path}: unknown encoding {encoding!r}", hint="use a Python codec name such as utf-8, latin-1 or cp1252"
        ) from None


def load_csv(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    codebook: Codebook | None,
    workdir: Path,
    encoding: str | None = None,
    skip_counting: set[str] | None = None,
) -> tuple[Codebook, UnlabelledCodes | None]:
    """Load the CSV's values into ``table`` of the staging database, typed by the codebook (columns it
    does not describe are numeric when every value is a number, else text); the codebook of its columns
    and, unless ``skip_counting`` is None, the unlabelled codes of its columns but those."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    source = _as_duckdb_encoding(path, encoding, workdir)
    names, delimiter = _header(source, path)
    raw = f"{table}__raw"
    columns = "{" + ", ".join(f"'{escaped(n)}': 'VARCHAR'" for n in names) + "}"
    try:
        # The dialect is given, not sniffed: a sniffer confused by one ragged row reads the file as one
        # column; with it fixed, DuckDB names the line that has the wrong number of fields.
        con.execute(
            f"CREATE TABLE {quote(raw)} AS SELECT * FROM read_csv(?, auto_detect = false, header = true,"
            f" delim = ?, quote = '\"', escape = '\"', columns = {columns}, strict_mode = true,"
            f" null_padding = false, encoding = ?)",
            [str(source), delimiter, "utf-8" if source != path else _duckdb_encoding(encoding, path)],
        )
    except duckdb.Error as exc:
        raise _csv_error(path, exc) from None
    finally:
        if source != path:
            source.unlink(missing_ok=True)
    if con.execute(f"SELECT count(*) FROM {quote(raw)}").fetchall()[0][0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows", hint="ask the vendor for the full export")
    codebook = _codebook_for(names, codebook, con, raw)
    _check_values(con, raw, codebook, path)
    con.execute(
        f"CREATE TABLE {quote(table)} AS SELECT {', '.join(_typed(n, v) for n, v in codebook.variables.items())}"
        f" FROM {quote(raw)}"
    )
    con.execute(f"DROP TABLE {quote(raw)}")
    counter = None
    if skip_counting is not None:
        counter = UnlabelledCodes(codebook, skip_counting)
        counter.count_table(con, table)
    return codebook, counter


def _duckdb_encoding(encoding: str | None, path: Path) -> str:
    return _DUCKDB_ENCODINGS.get(_normal_encoding(encoding, path) if encoding else "utf-8", "utf-8")


def _as_duckdb_encoding(path: Path, encoding: str | None, workdir: Path) -> Path:
    """``path`` itself when DuckDB reads its encoding; else a UTF-8 copy in the staging folder."""
    if encoding is None or _normal_encoding(encoding, path) in _DUCKDB_ENCODINGS:
        return path
    # DuckDB reads only UTF-8/16 and Latin-1 without an extension (which would need the network),
    # so other encodings (cp1252, mac-roman, ...) are transcoded to UTF-8 first, in 1 MiB pieces.
    target = workdir / f"{path.stem}.utf8.csv"
    with open(path, encoding=encoding, newline="") as src, open(target, "w", encoding="utf-8", newline="") as dst:
        try:
            for chunk in iter(lambda: src.read(1 << 20), ""):
                dst.write(chunk)
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid {encoding}: {exc}", hint="check --encoding") from None
    return target


def _header(source: Path, path: Path) -> tuple[list[str], str]:
    """The column names of the header row and the delimiter it uses."""
    with open(source, "rb") as handle:
        first = handle.readline(1 << 20)
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise DataError(
            f"{path}: the first line is empty; expected a header row of column names",
            hint="the export must start with a header row",
        )
    delimiter = max(_DELIMITERS, key=text.count)
    names = [n.strip() for n in next(csv.reader([text], delimiter=delimiter))]
    blank = [i for i, n in enumerate(names, start=1) if not n]
    if blank:
        raise DataError(
            f"{path}: header column {blank[0]} has no name", hint="every column needs a name in the header row"
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{path}: column {name} appears twice in the header", hint="column names must be unique")
        seen.add(name)
    return names, delimiter


def _csv_error(path: Path, exc: duckdb.Error) -> DataError:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    lower = text.lower()
    if "unicode" in lower or "not utf-8" in lower or ("utf" in lower and "invalid" in lower):
        line = _line_of(text)
        return DataError(
            f"{path}{f', line {line}' if line else ''}: the file is not valid UTF-8 (e.g. Latin-1 accents)",
            hint="pass --encoding latin-1 (or cp1252 for Windows exports)",
        )
    line = _line_of(text)
    where = f", line {line}" if line else ""
    expected = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if expected:
        return DataError(
            f"{path}{where}: the row has {expected[2]} fields but the header has {expected[1]}",
            hint="fix the ragged row (often an unquoted comma in a text answer) or ask the vendor to re-export",
        )
    if "quote" in lower:
        return DataError(
            f"{path}{where}: unterminated quoted field ({first})", hint="a text answer is missing its closing quote"
        )
    return DataError(
        f"{path}{where}: cannot parse CSV: {first}", hint="check the file is a delimited export with a header row"
    )


def _line_of(text: str) -> int | None:
    match = re.search(r"[Ll]ine:?\s*(\d+)", text)
    return int(match[1]) if match else None


def _codebook_for(names: list[str], codebook: Codebook | None, con: duckdb.DuckDBPyConnection, raw: str) -> Codebook:
    known = codebook.variables if codebook else {}
    unknown = [n for n in names if n not in known]
    inferred: dict[str, str] = {}
    if unknown:
        # One pass over the file decides every undescribed column: numeric when all its values are numbers.
        checks = ", ".join(
            f"bool_and({quote(n)} IS NULL OR trim({quote(n)}) = '' OR TRY_CAST({quote(n)} AS DOUBLE) IS NOT NULL)"
            for n in unknown
        )
        flags = con.execute(f"SELECT {checks} FROM {quote(raw)}").fetchall()[0]
        inferred = {n: "numeric" if ok else "string" for n, ok in zip(unknown, flags, strict=True)}
    variables = {n: known.get(n) or Variable(name=n, type=inferred[n]) for n in names}
    mr_sets = {
        k: s for k, s in (codebook.mr_sets if codebook else {}).items() if all(v in variables for v in s.variables)
    }
    return Codebook(variables=variables, mr_sets=mr_sets, encoding="utf-8")


_TARGETS = {"date": "DATE", "datetime": "TIMESTAMP"}


def _typed(name: str, var: Variable) -> str:
    col = quote(name)
    if var.type == "string":
        # SPSS has no blank-versus-NULL distinction for text: a blank answer is '' in every format.
        return f"coalesce({col}, '') AS {col}"
    return f"TRY_CAST(nullif(trim({col}), '') AS {_TARGETS.get(var.type, 'DOUBLE')}) AS {col}"


def _check_values(con: duckdb.DuckDBPyConnection, raw: str, codebook: Codebook, path: Path) -> None:
    """The first value that is not a valid number/date in a numeric/date column: DataError naming it."""
    checks = [(n, _TARGETS.get(v.type, "DOUBLE")) for n, v in codebook.variables.items() if v.type != "string"]
    if not checks:
        return
    bad = [
        f"nullif(trim({quote(n)}), '') IS NOT NULL AND TRY_CAST(nullif(trim({quote(n)}), '') AS {t}) IS NULL"
        for n, t in checks
    ]
    firsts = con.execute(
        f"SELECT {', '.join(f'min(rowid) FILTER (WHERE {b})' for b in bad)} FROM {quote(raw)}"
    ).fetchall()[0]
    found = [(rowid, name, target) for rowid, (name, target) in zip(firsts, checks, strict=True) if rowid is not None]
    if not found:
        return
    rowid, name, target = min(found)
    value = con.execute(f"SELECT {quote(name)} FROM {quote(raw)} WHERE rowid = ?", [rowid]).fetchall()[0][0]
    row = rowid + 1
    more = f" ({len(found)} columns have invalid values)" if len(found) > 1 else ""
    raise DataError(
        f"{path}: line {_line_of_row(con, raw, list(codebook.variables), rowid)} (data row {row}), column {name}:"
        f" {value!r} is not a valid {target.lower()} value{more}",
        hint="fix the value, or declare the column as type string in the codebook",
    )


def _line_of_row(con: duckdb.DuckDBPyConnection, raw: str, names: list[str], rowid: int) -> int:
    """The line of the file (header = line 1) on which the data row ``rowid`` starts: quoted values of
    the rows before it may hold line breaks (CRLF, LF or CR), each of which starts a new line."""
    breaks = " + ".join(f"len(regexp_extract_all(coalesce({quote(n)}, ''), '\\r\\n|\\r|\\n'))" for n in names)
    extra = con.execute(f"SELECT coalesce(sum({breaks}), 0) FROM {quote(raw)} WHERE rowid < ?", [rowid]).fetchall()
    return rowid + 2 + int(extra[0][0])
