"""Importing a wave's exports (.sav, .zsav, .por, .csv) into the study database, all or nothing.

Files are decoded and validated before the study lock is taken; the lock is held only for the one
transaction that writes the wave table, its codebook and its provenance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from .. import __version__
from ..codebook import Codebook, Variable, code_text, load_codebook, read_codebook_file, save_codebook
from ..config import ColumnRoles, StudyConfig
from ..errors import DataError, InputMissingError, WavetoolError
from ..store import connect, first_row, quote, transaction, wave_table, write_store
from .csvfile import read_csv_data
from .spss import read_spss_codebook, read_spss_data

SPSS_SUFFIXES = (".sav", ".zsav", ".por")
SUFFIXES = (*SPSS_SUFFIXES, ".csv")
MAX_LISTED = 5

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DecodedFile:
    """One export read into memory: its values, codebook and provenance."""

    path: Path
    format: str
    table: pa.Table
    codebook: Codebook
    reader: str
    size: int
    sha256: str


@dataclass
class ImportResult:
    """What an import did, for the CLI and ``--json``."""

    wave: int
    status: str  # 'imported' | 'replaced' | 'unchanged'
    rows: int
    columns: int
    files: list[dict[str, object]]
    roles: dict[str, str]
    review_status: str = "approved"
    drift: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def earlier_codebook(study: Path, wave: int) -> Codebook | None:
    """The latest codebook entry of each variable in the waves before ``wave`` (for a CSV without one)."""
    try:
        con = connect(study, read_only=True)
    except WavetoolError:
        return None
    try:
        waves = [r[0] for r in con.execute("SELECT wave FROM waves WHERE wave < ? ORDER BY wave", [wave]).fetchall()]
        variables: dict[str, Variable] = {}
        mr_sets = {}
        for earlier in waves:
            book = load_codebook(con, earlier)
            variables.update(book.variables)
            mr_sets.update(book.mr_sets)
    finally:
        con.close()
    return Codebook(variables=variables, mr_sets=mr_sets) if variables else None


def decode_file(
    path: Path, wave: int, config: StudyConfig, encoding: str | None = None, codebook_path: Path | None = None,
    *, wave_codebook: bool = True,
) -> DecodedFile:
    """Read one export into Arrow with its codebook; raise DataError naming the file on any problem.

    ``wave_codebook=False`` (custom-question files): a CSV's codebook is only ``codebook_path``, never the
    wave's configured codebook or an earlier wave's."""
    path = Path(path)
    if not path.exists():
        raise InputMissingError(f"{path}: file not found", hint="check the path (relative paths are from the current folder)")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'}", hint=f"wavetool reads {', '.join(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    if suffix == ".csv":
        companion = codebook_path or (config.resolve(config.waves[wave].codebook)
                                      if wave_codebook and wave in config.waves and config.waves[wave].codebook else None)
        codebook = read_codebook_file(companion) if companion else earlier_codebook(config.root, wave) if wave_codebook else None
        table, codebook = read_csv_data(path, codebook, encoding)
        reader = "duckdb read_csv"
    else:
        codebook = read_spss_codebook(path, encoding)
        table, reader = read_spss_data(path, codebook, encoding)
        if encoding:
            codebook = Codebook(codebook.variables, codebook.mr_sets, encoding)
    return DecodedFile(path, suffix.lstrip("."), table, codebook, reader, path.stat().st_size, file_sha256(path))


def _stack(decoded: list[DecodedFile]) -> tuple[pa.Table, Codebook]:
    if len(decoded) == 1:
        return decoded[0].table, decoded[0].codebook
    variables: dict[str, Variable] = {}
    mr_sets = {}
    for item in decoded:
        for name, var in item.codebook.variables.items():
            if name in variables and variables[name].type != var.type:
                raise DataError(
                    f"{item.path}: column {name} is {var.type} here but {variables[name].type} in {decoded[0].path.name}",
                    hint="the files of one wave must agree on each column's type",
                )
            variables.setdefault(name, var)
        mr_sets.update(item.codebook.mr_sets)
    table = pa.concat_tables([d.table for d in decoded], promote_options="permissive")
    return table.select(list(variables)), Codebook(variables, mr_sets, decoded[0].codebook.encoding)


def _check_roles(table: pa.Table, roles: ColumnRoles, files: str) -> None:
    for role in ("id", "jurisdiction", "weight"):
        column = getattr(roles, role)
        if column not in table.column_names:
            raise DataError(
                f"{files}: no {role} column {column!r} (columns: {', '.join(table.column_names[:12])}"
                f"{', …' if table.num_columns > 12 else ''})",
                hint=f"pass --{role} COLUMN or set [columns] {role} in wavetool.toml",
            )


def _rows_text(rows: list[int], total: int) -> str:
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = f" and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"row{'s' if total > 1 else ''} {listed}{more}"


def validate(
    con: duckdb.DuckDBPyConnection, table: pa.Table, codebook: Codebook, roles: ColumnRoles, config: StudyConfig, files: str
) -> list[str]:
    """Check ids, jurisdictions and weights (raise DataError) and collect warnings about unlabelled codes."""
    _check_roles(table, roles, files)
    con.register("incoming", table.select([roles.id, roles.jurisdiction, roles.weight]).append_column(
        "__row", pa.array(range(1, table.num_rows + 1), pa.int64())))
    rid, jur, wt = quote(roles.id), quote(roles.jurisdiction), quote(roles.weight)
    id_text = _text_expr(rid, codebook.variables.get(roles.id))
    jur_text = _text_expr(jur, codebook.variables.get(roles.jurisdiction))

    blank = con.execute(f"SELECT __row FROM incoming WHERE {id_text} IS NULL OR {id_text} = '' ORDER BY __row").fetchall()
    if blank:
        raise DataError(f"{files}: column {roles.id}: empty respondent id at {_rows_text([r[0] for r in blank], len(blank))}",
                        hint="every respondent needs an id; ask the vendor to fix the export")
    dups = con.execute(
        f"SELECT {id_text} AS id, list(__row ORDER BY __row) FROM incoming GROUP BY 1 HAVING count(*) > 1 ORDER BY min(__row)"
    ).fetchall()
    if dups:
        first_id, rows = dups[0]
        raise DataError(
            f"{files}: column {roles.id}: respondent id {first_id} appears {len(rows)} times ({_rows_text(rows, len(rows))});"
            f" {len(dups)} duplicated id{'s' if len(dups) > 1 else ''} in all",
            hint="ids must be unique within a wave; remove the duplicates or ask the vendor",
        )
    known = _known_jurisdictions(config, codebook, roles)
    bad_jur = con.execute(
        f"SELECT coalesce({jur_text}, '(blank)') AS code, count(*), min(__row) FROM incoming"
        f" WHERE {jur_text} IS NULL OR NOT list_contains(?, {jur_text}) GROUP BY 1 ORDER BY 3",
        [sorted(known)],
    ).fetchall()
    if bad_jur:
        code, count, row = bad_jur[0]
        total = sum(r[1] for r in bad_jur)
        raise DataError(
            f"{files}: column {roles.jurisdiction}, row {row}: unknown jurisdiction code {code!r}"
            f" ({total} row{'s' if total > 1 else ''} with unknown codes: {', '.join(str(r[0]) for r in bad_jur[:MAX_LISTED])})",
            hint="add the code to [jurisdictions] in wavetool.toml, or fix the file",
        )
    if codebook.variables.get(roles.weight, Variable(roles.weight)).type != "numeric" or not pa.types.is_floating(
        table.schema.field(roles.weight).type
    ) and not pa.types.is_integer(table.schema.field(roles.weight).type):
        raise DataError(f"{files}: column {roles.weight}: the weight column is not numeric", hint="pass --weight with the numeric weight column")
    bad_wt = con.execute(
        f"SELECT __row, {wt} FROM incoming WHERE {wt} IS NULL OR isnan({wt}) OR isinf({wt}) OR {wt} <= 0 ORDER BY __row"
    ).fetchall()
    if bad_wt:
        row, value = bad_wt[0]
        shown = "blank" if value is None else repr(value)
        raise DataError(
            f"{files}: column {roles.weight}, row {row}: weight is {shown}; weights must be positive and finite"
            f" ({len(bad_wt)} bad weight{'s' if len(bad_wt) > 1 else ''}, {_rows_text([r[0] for r in bad_wt], len(bad_wt))})",
            hint="fix the weights, or import with another --weight column",
        )
    con.unregister("incoming")
    return _unlabelled_code_warnings(con, table, codebook, roles, files)


def _text_expr(column: str, variable: Variable | None) -> str:
    if variable is not None and variable.type == "string":
        return f"trim({column})"
    # Numeric ids and codes are stored as their canonical text: 100001.0 -> '100001'.
    return (f"CASE WHEN {column} = floor({column}) AND abs({column}) < 1e15 THEN CAST(CAST({column} AS BIGINT) AS VARCHAR)"
            f" ELSE CAST({column} AS VARCHAR) END")


def _known_jurisdictions(config: StudyConfig, codebook: Codebook, roles: ColumnRoles) -> set[str]:
    if config.jurisdictions:
        return set(config.jurisdictions)
    return set(codebook.variables.get(roles.jurisdiction, Variable(roles.jurisdiction)).value_labels)


def _unlabelled_code_warnings(
    con: duckdb.DuckDBPyConnection, table: pa.Table, codebook: Codebook, roles: ColumnRoles, files: str
) -> list[str]:
    labelled = [
        v for v in codebook.variables.values()
        if v.value_labels and v.type == "numeric" and v.name not in (roles.id, roles.weight, roles.jurisdiction)
        and v.name in table.column_names
    ]
    if not labelled:
        return []
    con.register("incoming_all", table.select([v.name for v in labelled]))
    parts = []
    for v in labelled:
        codes = [float(c) for c in v.value_labels if _is_number(c)]
        missing = [s for s in v.missing]
        conditions = [f"{quote(v.name)} IS NOT NULL", f"NOT list_contains({codes!r}::DOUBLE[], {quote(v.name)})"]
        for spec in missing:
            if spec.kind == "value" and spec.low is not None:
                conditions.append(f"{quote(v.name)} <> {spec.low!r}")
            elif spec.kind == "range":
                low = "-'inf'::DOUBLE" if spec.low is None or spec.low == float("-inf") else repr(spec.low)
                high = "'inf'::DOUBLE" if spec.high is None or spec.high == float("inf") else repr(spec.high)
                conditions.append(f"NOT ({quote(v.name)} BETWEEN {low} AND {high})")
        parts.append(
            f"SELECT {v.name!r} AS variable, count(*) AS n, list(DISTINCT {quote(v.name)})[1:5] AS codes"
            f" FROM incoming_all WHERE {' AND '.join(conditions)}"
        )
    rows = con.execute(" UNION ALL ".join(parts)).fetchall()
    con.unregister("incoming_all")
    flagged = [(name, n, codes) for name, n, codes in rows if n]
    warnings = [
        f"{files}: column {name}: {n} value{'s' if n > 1 else ''} neither labelled nor missing"
        f" (e.g. {', '.join(code_text(c) for c in sorted(codes))})"
        for name, n, codes in flagged[:MAX_LISTED]
    ]
    if len(flagged) > MAX_LISTED:
        warnings.append(f"{files}: {len(flagged) - MAX_LISTED} more columns have unlabelled codes")
    return warnings


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _content_hash(decoded: list[DecodedFile], roles: ColumnRoles, encoding: str | None) -> str:
    digest = hashlib.sha256()
    for item in decoded:
        digest.update(item.sha256.encode())
    digest.update(f"{roles.id}|{roles.jurisdiction}|{roles.weight}|{encoding or ''}".encode())
    return digest.hexdigest()


def import_wave(
    config: StudyConfig,
    wave: int,
    files: Sequence[Path],
    *,
    id_column: str | None = None,
    jurisdiction_column: str | None = None,
    weight_column: str | None = None,
    encoding: str | None = None,
    codebook_path: Path | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    lock_timeout: float | None = None,
) -> ImportResult:
    """Import one wave from one or more exports into the study database, all or nothing."""
    config.wave(wave)
    if not files:
        raise InputMissingError(f"wave {wave}: no files given", hint="name the wave's export file(s)")
    say = progress or (lambda _msg: None)
    roles = config.roles_for_wave(wave).merged(id=id_column, jurisdiction=jurisdiction_column, weight=weight_column)
    decoded = []
    for path in files:
        say(f"reading {Path(path).name}")
        decoded.append(decode_file(Path(path), wave, config, encoding, codebook_path))
    names = ", ".join(str(d.path) for d in decoded)
    table, codebook = _stack(decoded)
    say("validating")
    scratch = duckdb.connect()
    try:
        warnings = validate(scratch, table, codebook, roles, config, names)
    finally:
        scratch.close()
    content = _content_hash(decoded, roles, encoding)
    file_rows = [
        {"file_name": d.path.name, "path": str(d.path.resolve()), "format": d.format, "size": d.size, "sha256": d.sha256,
         "rows": d.table.num_rows, "columns": d.table.num_columns, "reader": d.reader}
        for d in decoded
    ]
    say("writing")
    timeout = config.pipeline.lock_timeout if lock_timeout is None else lock_timeout
    with write_store(config.root, timeout=timeout, purpose=f"wavetool import --wave {wave}") as con:
        existing = first_row(con, "SELECT content_sha256 FROM waves WHERE wave = ?", [wave])
        result = ImportResult(wave, "imported", table.num_rows, table.num_columns, file_rows, roles.__dict__.copy(), warnings=warnings)
        if existing and existing[0] == content and not replace:
            result.status = "unchanged"
            row = first_row(con, "SELECT review_status FROM waves WHERE wave = ?", [wave])
            result.review_status = row[0]
            return result
        if existing and not replace:
            raise DataError(
                f"wave {wave} is already imported from different files",
                hint=f"pass --replace to swap wave {wave} for these files",
            )
        with transaction(con):
            if existing:
                _drop_wave(con, wave)
                result.status = "replaced"
            _write_wave(con, config, wave, table, codebook, roles, decoded, content)
            result.review_status, result.drift = _review(con, config, wave, codebook)
            con.execute("UPDATE waves SET review_status = ?, drift = ? WHERE wave = ?",
                        [result.review_status, _json(result.drift) if result.drift else None, wave])
    return result


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _drop_wave(con: duckdb.DuckDBPyConnection, wave: int) -> None:
    con.execute(f"DROP TABLE IF EXISTS {wave_table(wave)}")
    for table in ("waves", "wave_files", "variables", "value_labels", "missing_values", "mr_sets"):
        con.execute(f"DELETE FROM {table} WHERE wave = ?", [wave])


def _owners(config: StudyConfig, names: list[str]) -> dict[str, str]:
    owners = {}
    for sub in config.subscribers.values():
        if sub.custom_prefix:
            owners.update({n: sub.id for n in names if n.startswith(sub.custom_prefix)})
    return owners


def _questions(config: StudyConfig, wave: int, names: list[str]) -> dict[str, str]:
    questions = {n: n for n in names}
    for entry in config.crosswalk:
        if entry.variable and wave in entry.waves and entry.variable in questions:
            questions[entry.variable] = entry.question
    return questions


def _write_wave(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, table: pa.Table, codebook: Codebook,
    roles: ColumnRoles, decoded: list[DecodedFile], content: str,
) -> None:
    con.register("incoming", table)
    id_text = _text_expr(quote(roles.id), codebook.variables.get(roles.id))
    jur_text = _text_expr(quote(roles.jurisdiction), codebook.variables.get(roles.jurisdiction))
    con.execute(
        f"CREATE TABLE {wave_table(wave)} AS SELECT {id_text} AS _id, {jur_text} AS _jurisdiction,"
        f" CAST({quote(roles.weight)} AS DOUBLE) AS _weight, * FROM incoming"
    )
    con.unregister("incoming")
    names = list(codebook.variables)
    save_codebook(con, wave, codebook, {"id": roles.id, "jurisdiction": roles.jurisdiction, "weight": roles.weight},
                  _owners(config, names), _questions(config, wave, names))
    con.execute(
        "INSERT INTO waves (wave, table_name, id_column, jurisdiction_column, weight_column, rows, columns, encoding,"
        " reader, content_sha256, imported_at, wavetool_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [wave, wave_table(wave), roles.id, roles.jurisdiction, roles.weight, table.num_rows, table.num_columns,
         codebook.encoding, ", ".join(sorted({d.reader for d in decoded})), content,
         dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0), __version__],
    )
    for position, d in enumerate(decoded, start=1):
        con.execute(
            "INSERT INTO wave_files VALUES (?,?,?,?,?,?,?,?,?)",
            [wave, position, d.path.name, str(d.path.resolve()), d.format, d.size, d.sha256, d.table.num_rows, d.table.num_columns],
        )


def _review(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, codebook: Codebook) -> tuple[str, list[dict[str, object]]]:
    """The drift gate's verdict on this wave's codebook against the previous wave's."""
    from ..codebook import review_drift

    return review_drift(con, config, wave)


__all__ = ["ImportResult", "decode_file", "file_sha256", "import_wave"]
