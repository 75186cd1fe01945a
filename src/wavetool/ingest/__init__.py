"""Importing a wave's exports (.sav, .zsav, .por, .csv) into the study database, all or nothing.

Files are decoded, in streamed batches, into a private staging database and validated there before the
study lock is taken; the lock is held only for the one transaction that copies the staged rows into the
wave table and writes its codebook and provenance. Memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from .. import __version__
from ..codebook import Codebook, MrSet, Variable, code_text, load_codebook, read_codebook_file, save_codebook
from ..config import NO_WEIGHT, ROW_IDS, ColumnRoles, StudyConfig
from ..errors import DataError, InputMissingError, WavetoolError
from ..store import connect, first_row, quote, transaction, wave_table, write_store
from .csvfile import load_csv
from .labels import UnlabelledCodes
from .spss import load_spss, read_spss_codebook
from .staging import ENGINE_MEMORY, ROW, Staging, canonical_select, export_table, read_staged, staged_schema

SPSS_SUFFIXES = (".sav", ".zsav", ".por")
SUFFIXES = (*SPSS_SUFFIXES, ".csv")
MAX_LISTED = 5


class Progress:
    """Where an import reports what it is doing: ``step(message)`` and ``rows(done, total)``.

    A plain callable ``f(message)`` is accepted wherever a Progress is (see :func:`as_progress`)."""

    def step(self, message: str) -> None:  # pragma: no cover - interface
        pass

    def rows(self, done: int, total: int | None) -> None:  # pragma: no cover - interface
        pass


class _CallableProgress(Progress):
    def __init__(self, say: Callable[..., None]) -> None:
        self.say = say
        self.rows_callback = getattr(say, "rows", None)

    def step(self, message: str) -> None:
        self.say(message)

    def rows(self, done: int, total: int | None) -> None:
        if self.rows_callback:
            self.rows_callback(done, total)


def as_progress(progress: Progress | Callable[..., None] | None) -> Progress:
    """A Progress from a Progress, a ``f(message)`` callable (optionally with a ``.rows`` attribute) or None."""
    if isinstance(progress, Progress):
        return progress
    return _CallableProgress(progress) if progress else Progress()


@dataclass(frozen=True)
class DecodedFile:
    """One export decoded with its codebook and provenance. ``table`` holds its values for the in-memory
    :func:`decode_file`; a wave import keeps them in staging instead (``table`` is None)."""

    path: Path
    format: str
    table: pa.Table | None
    codebook: Codebook
    reader: str
    size: int
    sha256: str
    rows: int = 0
    columns: int = 0
    staged_as: str = ""  # the staged Arrow IPC file (wave imports)
    warnings: tuple[str, ...] = ()
    unlabelled: UnlabelledCodes | None = None
    kept: pa.Table | None = None  # the id, jurisdiction and weight columns (and __row), for validation


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
        mr_sets: dict[str, MrSet] = {}
        for earlier in waves:
            book = load_codebook(con, earlier)
            variables.update(book.variables)
            mr_sets.update(book.mr_sets)
    finally:
        con.close()
    return Codebook(variables=variables, mr_sets=mr_sets) if variables else None


def _check_file(path: Path) -> str:
    if not path.exists():
        raise InputMissingError(
            f"{path}: file not found", hint="check the path (relative paths are from the current folder)"
        )
    if path.is_dir():
        raise InputMissingError(f"{path}: is a folder, not a file", hint="name the export file itself")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'}", hint=f"wavetool reads {', '.join(SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="ask the vendor to re-send the export")
    return suffix


def _csv_codebook(
    path: Path, wave: int, config: StudyConfig, codebook_path: Path | None, wave_codebook: bool
) -> Codebook | None:
    wave_entry = config.waves.get(wave)
    companion = codebook_path or (
        config.resolve(wave_entry.codebook) if wave_codebook and wave_entry and wave_entry.codebook else None
    )
    if companion:
        return read_codebook_file(companion)
    return earlier_codebook(config.root, wave) if wave_codebook else None


def _stage_file(
    staging: Staging,
    name: str,
    path: Path,
    wave: int,
    config: StudyConfig,
    encoding: str | None,
    codebook_path: Path | None,
    wave_codebook: bool,
    progress: Progress,
    sha256: str | None = None,
    roles: ColumnRoles | None = None,
) -> DecodedFile:
    """Decode one export into the staged file ``name``; with ``roles``, keep those columns in memory and
    count the codes that are neither labelled nor missing in every other column."""
    suffix = _check_file(path)
    warnings: list[str] = []
    keep = list(dict.fromkeys(role_columns(roles, path.name).values())) if roles else []
    skip = set(keep) if roles else None
    target = staging.path(name)
    if suffix == ".csv":
        codebook, counter = load_csv(
            staging.con,
            name,
            path,
            _csv_codebook(path, wave, config, codebook_path, wave_codebook),
            staging.folder,
            encoding,
            skip,
        )
        staged = export_table(staging.con, name, target, keep)
        staging.con.execute(f"DROP TABLE {quote(name)}")
        reader = "duckdb read_csv"
    else:
        codebook, expected = read_spss_codebook(path, encoding)
        done = [0]

        def count(n: int | None) -> None:
            done[0] = 0 if n is None else done[0] + n
            progress.rows(done[0], expected)

        counter = UnlabelledCodes(codebook, skip) if skip is not None else None
        reader, staged = load_spss(target, path, codebook, expected, staging.folder, encoding, count, counter, keep)
        if suffix == ".por":
            text = [n for n, v in codebook.variables.items() if v.type == "string"]
            if text:
                warnings.append(
                    f"{path}: SPSS portable files hold ASCII text only; accented letters in {', '.join(text[:MAX_LISTED])}"
                    f"{' …' if len(text) > MAX_LISTED else ''} may have been lost (ask for a .sav to keep them)"
                )
    if staged.rows == 0:
        raise DataError(f"{path}: the file has no data rows (respondents)", hint="ask the vendor for the full export")
    return DecodedFile(
        path,
        suffix.lstrip("."),
        None,
        codebook,
        reader,
        path.stat().st_size,
        file_sha256(path) if sha256 is None else sha256,
        staged.rows,
        len(codebook.variables),
        str(staged.path),
        tuple(warnings),
        counter,
        staged.kept,
    )


def decode_file(
    path: Path,
    wave: int,
    config: StudyConfig,
    encoding: str | None = None,
    codebook_path: Path | None = None,
    *,
    wave_codebook: bool = True,
) -> DecodedFile:
    """Read one (small) export into an in-memory Arrow table with its codebook; DataError naming the file
    on any problem. Wave imports use the streamed, staged path of :func:`import_wave` instead.

    ``wave_codebook=False`` (custom-question files): a CSV's codebook is only ``codebook_path``, never the
    wave's configured codebook or an earlier wave's."""
    with Staging() as staging:
        decoded = _stage_file(
            staging, "decoded", Path(path), wave, config, encoding, codebook_path, wave_codebook, Progress()
        )
        staging.con.register("staged", read_staged(Path(decoded.staged_as)))
        select = canonical_select(staged_schema(Path(decoded.staged_as)), decoded.codebook)
        table = staging.con.sql(f"SELECT {select} FROM staged").to_arrow_table()
        staging.con.unregister("staged")
    return DecodedFile(
        decoded.path,
        decoded.format,
        table,
        decoded.codebook,
        decoded.reader,
        decoded.size,
        decoded.sha256,
        decoded.rows,
        decoded.columns,
        "",
        decoded.warnings,
    )


def _stacked_codebook(decoded: list[DecodedFile]) -> Codebook:
    if len(decoded) == 1:
        return decoded[0].codebook
    variables: dict[str, Variable] = {}
    mr_sets: dict[str, MrSet] = {}
    for item in decoded:
        for name, var in item.codebook.variables.items():
            if name in variables and variables[name].type != var.type:
                raise DataError(
                    f"{item.path}: column {name} is {var.type} here but {variables[name].type} in {decoded[0].path.name}",
                    hint="the files of one wave must agree on each column's type",
                )
            variables.setdefault(name, var)
        mr_sets.update(item.codebook.mr_sets)
    return Codebook(variables, mr_sets, decoded[0].codebook.encoding)


def _rows_text(rows: list[int], total: int) -> str:
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = f" and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"row{'s' if total > 1 else ''} {listed}{more}"


OPT_OUT = {
    "id": f"--id {ROW_IDS} (row numbers as ids)",
    "jurisdiction": "--jurisdiction-code CODE (one jurisdiction for every row of the file)",
    "weight": f"--weight {NO_WEIGHT} (unweighted)",
}


def role_columns(roles: ColumnRoles, file_name: str) -> dict[str, str]:
    """role -> the column of ``file_name`` that holds it; an opted-out role (``id = "row"``,
    ``weight = "none"``, a jurisdiction code for the file) has none."""
    columns = {}
    if not roles.row_ids:
        columns["id"] = roles.id
    if roles.code_for(file_name) is None:
        columns["jurisdiction"] = roles.jurisdiction
    if roles.weighted:
        columns["weight"] = roles.weight
    return columns


def resolve_roles(
    config: StudyConfig,
    wave: int,
    paths: list[Path],
    *,
    id_column: str | None = None,
    jurisdiction_column: str | None = None,
    weight_column: str | None = None,
    jurisdiction_codes: Sequence[str] | None = None,
) -> ColumnRoles:
    """The wave's roles with the command line's applied, checked before any file is decoded: one column
    one role, opt-outs that make sense for these files (DataError naming the file and the columns)."""
    first = paths[0]
    given = {"id": id_column, "jurisdiction": jurisdiction_column, "weight": weight_column}
    for role, value in given.items():
        if value is not None and not value.strip():
            raise DataError(
                f"{first}: --{role} is empty",
                hint=f"name the file's {role} column, or pass {OPT_OUT[role]}",
            )
    codes = _parse_codes(first, jurisdiction_codes or ())
    if jurisdiction_column and any(name == "" for name, _ in codes):
        raise DataError(
            f"{first}: --jurisdiction {jurisdiction_column} and --jurisdiction-code {dict(codes)['']} both say where"
            " every row's jurisdiction comes from",
            hint="keep one: the column, or the code (FILE=CODE gives one file a code and leaves the others to the column)",
        )
    roles = config.roles_for_wave(wave).merged(jurisdiction_code=codes, **given)
    names = {p.name for p in paths}
    unknown_files = [name for name, _ in roles.jurisdiction_code if name and name not in names]
    if unknown_files and codes:
        raise DataError(
            f"{first}: --jurisdiction-code {unknown_files[0]}=… names no file of this import"
            f" (files: {', '.join(sorted(names))})",
            hint="give FILE=CODE with the file's own name, or CODE alone for every file",
        )
    for path in paths:
        _one_column_one_role(path, role_columns(roles, path.name))
    _check_codes(config, first, roles)
    if roles.row_ids:
        _check_row_ids(config, wave, paths)
    return roles


def _parse_codes(path: Path, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for value in values:
        name, _, code = value.rpartition("=")
        if not code.strip():
            raise DataError(f"{path}: --jurisdiction-code {value!r} gives no code", hint="pass CODE or FILE=CODE")
        if name.strip() in pairs:
            raise DataError(
                f"{path}: --jurisdiction-code is given twice for {name.strip() or 'every file'}",
                hint="one code per file (FILE=CODE), or one CODE for every file",
            )
        pairs[name.strip()] = code.strip()
    if "" in pairs and len(pairs) > 1:
        raise DataError(
            f"{path}: --jurisdiction-code {pairs['']} (every file) and FILE=CODE both given",
            hint="give every file its code as FILE=CODE, or one CODE for all",
        )
    return tuple(pairs.items())


def _one_column_one_role(path: Path, columns: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for role, column in columns.items():
        if column in seen:
            other = seen[column]
            raise DataError(
                f"{path}: column {column} is given two roles, {other} and {role}",
                hint=f"one column, one role: pass --{role} with the file's {role} column, or {OPT_OUT[role]}",
            )
        seen[column] = role


def _check_codes(config: StudyConfig, path: Path, roles: ColumnRoles) -> None:
    if not config.jurisdictions:
        return  # the jurisdictions then come from the data's value labels; any code is its own
    for name, code in roles.jurisdiction_code:
        if code not in config.jurisdictions:
            raise DataError(
                f"{path}: jurisdiction code {code!r}{f' for {name}' if name else ''} is not one of the study's"
                f" jurisdictions ({', '.join(sorted(config.jurisdictions))})",
                hint="use a code listed in [jurisdictions] in wavetool.toml, or add it there",
            )


def _check_row_ids(config: StudyConfig, wave: int, paths: list[Path]) -> None:
    """Row numbers identify respondents only within one file, and nothing outside the file knows them."""
    if len(paths) > 1:
        raise DataError(
            f"{paths[1]}: --id {ROW_IDS} numbers each file's rows from 1, so the {len(paths)} files of wave {wave}"
            f" would share ids ({', '.join(p.name for p in paths)})",
            hint="import with the files' real id column (--id COLUMN), or stack them into one file first",
        )
    custom = [sub.id for sub in config.subscribers.values() if any(c.wave == wave for c in sub.custom)]
    merged = _merged_custom(config, wave)
    if custom or merged:
        who = ", ".join(sorted({*custom, *merged}))
        raise DataError(
            f"{paths[0]}: --id {ROW_IDS}: the custom questions of {who} for wave {wave} are matched to respondents"
            " by their real ids, which row numbers are not",
            hint="import with the file's respondent id column (--id COLUMN)",
        )


def _merged_custom(config: StudyConfig, wave: int) -> list[str]:
    try:
        con = connect(config.root, read_only=True, timeout=2.0)
    except WavetoolError:
        return []
    try:
        return [r[0] for r in con.execute("SELECT subscriber FROM custom_merges WHERE wave = ?", [wave]).fetchall()]
    finally:
        con.close()


def _check_roles(decoded: list[DecodedFile], roles: ColumnRoles) -> None:
    for item in decoded:
        names = list(item.codebook.variables)
        for role, column in role_columns(roles, item.path.name).items():
            if column not in names:
                raise DataError(
                    f"{item.path}: no {role} column {column!r} (columns: {', '.join(names[:12])}{', …' if len(names) > 12 else ''})",
                    hint=f"pass --{role} COLUMN or set [columns] {role} in wavetool.toml; without one, {OPT_OUT[role]}",
                )


def _text_expr(column: str, variable: Variable | None) -> str:
    """SQL giving an id or code column's canonical text: strings trimmed, numbers as '100001' not '100001.0'."""
    if variable is not None and variable.type == "string":
        return f"trim({column})"
    return (
        f"CASE WHEN {column} = floor({column}) AND abs({column}) < 1e15 THEN CAST(CAST({column} AS BIGINT) AS VARCHAR)"
        f" ELSE CAST({column} AS VARCHAR) END"
    )


def validate(
    con: duckdb.DuckDBPyConnection,
    decoded: list[DecodedFile],
    codebook: Codebook,
    roles: ColumnRoles,
    config: StudyConfig,
) -> list[str]:
    """Check ids, jurisdictions and weights in staging (raise DataError naming file, column and rows) and
    collect warnings about codes that are neither labelled nor missing."""
    _check_roles(decoded, roles)
    weight_var = codebook.variables.get(roles.weight)
    if roles.weighted and weight_var is not None and weight_var.type != "numeric":
        raise DataError(
            f"{decoded[0].path}: column {roles.weight}: the weight column is {weight_var.type}, not numeric",
            hint=f"pass --weight with the numeric weight column, or --weight {NO_WEIGHT} to import unweighted",
        )
    parts = []
    for index, item in enumerate(decoded):
        assert item.kept is not None
        con.register(f"kept_{index}", item.kept)
        columns = role_columns(roles, item.path.name)
        select = canonical_select(item.kept.schema, codebook, list(dict.fromkeys(columns.values())))
        inner = f"SELECT {', '.join([ROW, select] if select else [ROW])} FROM kept_{index}"
        parts.append(f"SELECT {index} AS __file, {_role_select(roles, item.path.name, codebook)} FROM ({inner})")
    con.execute(f"CREATE OR REPLACE TEMP VIEW incoming AS {' UNION ALL '.join(parts)}")
    id_text, jur_text, wt = "__id", "__jur", "__wt"

    def where(file_index: int) -> Path:
        return decoded[file_index].path

    blank = con.execute(
        f"SELECT __file, __row FROM incoming WHERE {id_text} IS NULL OR {id_text} = '' ORDER BY __file, __row"
    ).fetchall()
    if blank:
        first_file = blank[0][0]
        rows = [r[1] for r in blank if r[0] == first_file]
        raise DataError(
            f"{where(first_file)}: column {roles.id}: empty respondent id at {_rows_text(rows, len(blank))}",
            hint="every respondent needs an id; ask the vendor to fix the export",
        )
    dups = con.execute(
        f"SELECT id, count(*) OVER () FROM (SELECT {id_text} AS id, min([__file, __row]) AS first FROM incoming"
        " GROUP BY 1 HAVING count(*) > 1) ORDER BY first LIMIT 1"
    ).fetchall()
    if dups:
        first_id, n_dups = dups[0]
        places = con.execute(
            f"SELECT __file, __row FROM incoming WHERE {id_text} = ? ORDER BY __file, __row", [first_id]
        ).fetchall()
        if len({f for f, _ in places}) > 1:
            shown = ", ".join(f"{where(f).name} row {r}" for f, r in places[:MAX_LISTED])
        else:
            shown = _rows_text([r for _, r in places], len(places))
        raise DataError(
            f"{where(places[0][0])}: column {roles.id}: respondent id {first_id} appears {len(places)} times ({shown});"
            f" {n_dups} duplicated id{'s' if n_dups > 1 else ''} in all",
            hint="ids must be unique within a wave; remove the duplicates or ask the vendor",
        )
    known = _known_jurisdictions(config, codebook, roles)
    bad_jur = con.execute(
        f"SELECT coalesce(nullif({jur_text}, ''), '(blank)') AS code, count(*), min([__file, __row]) FROM incoming"
        f" WHERE {jur_text} IS NULL OR NOT list_contains(?, {jur_text}) GROUP BY 1 ORDER BY 3",
        [sorted(known)],
    ).fetchall()
    if bad_jur:
        code, _count, (file_index, row) = bad_jur[0]
        total = sum(r[1] for r in bad_jur)
        source = (
            "listed in [jurisdictions] in wavetool.toml"
            if config.jurisdictions
            else f"labelled in {roles.jurisdiction}'s value labels"
        )
        raise DataError(
            f"{where(file_index)}: column {roles.jurisdiction}, row {row}: unknown jurisdiction code {code!r}"
            f" ({total} row{'s' if total > 1 else ''} with codes not {source}: {', '.join(str(r[0]) for r in bad_jur[:MAX_LISTED])})",
            hint="add the code to [jurisdictions] in wavetool.toml, or fix the file",
        )
    bad_wt = con.execute(
        f"SELECT __file, __row, {wt}, count(*) OVER () FROM incoming"
        f" WHERE {wt} IS NULL OR isnan({wt}) OR isinf({wt}) OR {wt} <= 0 ORDER BY __file, __row LIMIT {MAX_LISTED}"
    ).fetchall()
    if bad_wt:
        file_index, row, value, total = bad_wt[0]
        shown = "blank" if value is None else code_text(value) if value == value else "NaN"
        rows = [r[1] for r in bad_wt if r[0] == file_index]
        raise DataError(
            f"{where(file_index)}: column {roles.weight}, row {row}: weight is {shown}; weights must be positive and finite"
            f" ({total} bad weight{'s' if total > 1 else ''}: {_rows_text(rows, total)})",
            hint="fix the weights, or import with another --weight column",
        )
    counts = UnlabelledCodes(codebook, {c for d in decoded for c in role_columns(roles, d.path.name).values()})
    counts.checks.clear()
    for item in decoded:
        if item.unlabelled is not None:
            counts.merge(item.unlabelled)
    return counts.warnings(", ".join(str(d.path) for d in decoded), MAX_LISTED)


def _known_jurisdictions(config: StudyConfig, codebook: Codebook, roles: ColumnRoles) -> set[str]:
    if config.jurisdictions:
        return set(config.jurisdictions)
    labelled = set(codebook.variables.get(roles.jurisdiction, Variable(roles.jurisdiction)).value_labels)
    return labelled | {code for _, code in roles.jurisdiction_code}


def _role_select(roles: ColumnRoles, file_name: str, codebook: Codebook) -> str:
    """``__row, __id, __jur, __wt`` of one file's rows (over its canonical columns and ``__row``): the role
    columns' text, or the opt-outs' row number, jurisdiction code and weight 1."""
    columns = role_columns(roles, file_name)
    code = roles.code_for(file_name)
    id_expr = (
        _text_expr(quote(columns["id"]), codebook.variables.get(columns["id"]))
        if "id" in columns
        else f"CAST({ROW} AS VARCHAR)"
    )
    jur_expr = (
        _text_expr(quote(columns["jurisdiction"]), codebook.variables.get(columns["jurisdiction"]))
        if code is None
        else "'" + code.replace("'", "''") + "'"
    )
    wt_expr = f"CAST({quote(columns['weight'])} AS DOUBLE)" if "weight" in columns else "CAST(1 AS DOUBLE)"
    return f"{ROW} AS __row, {id_expr} AS __id, {jur_expr} AS __jur, {wt_expr} AS __wt"


def _content_hash(hashes: list[str], roles: ColumnRoles, encoding: str | None, codebook_hash: str) -> str:
    digest = hashlib.sha256()
    for sha in hashes:
        digest.update(sha.encode())
    digest.update(f"{roles.id}|{roles.jurisdiction}|{roles.weight}|{encoding or ''}|{codebook_hash}".encode())
    if roles.jurisdiction_code:  # only then, so that the waves imported before the option keep their hash
        digest.update(f"|codes={sorted(roles.jurisdiction_code)}".encode())
    return digest.hexdigest()


def _stored_state(config: StudyConfig, wave: int) -> tuple[str, str] | None:
    """(content_sha256, review_status) of the wave as stored now, or None; read without the lock."""
    try:
        con = connect(config.root, read_only=True, timeout=2.0)
    except WavetoolError as exc:
        if isinstance(exc, InputMissingError):
            raise
        return None  # busy: decided again under the lock
    try:
        row = first_row(con, "SELECT content_sha256, review_status FROM waves WHERE wave = ?", [wave])
    finally:
        con.close()
    return (row[0], row[1]) if row else None


def import_wave(
    config: StudyConfig,
    wave: int,
    files: Sequence[Path],
    *,
    id_column: str | None = None,
    jurisdiction_column: str | None = None,
    weight_column: str | None = None,
    jurisdiction_codes: Sequence[str] | None = None,
    encoding: str | None = None,
    codebook_path: Path | None = None,
    replace: bool = False,
    progress: Progress | Callable[..., None] | None = None,
    lock_timeout: float | None = None,
) -> ImportResult:
    """Import one wave from one or more exports into the study database, all or nothing.

    Roles: ``id_column="row"`` numbers the rows (one file, no custom questions), ``weight_column="none"``
    imports unweighted (every weight 1), ``jurisdiction_codes`` (``["YT"]`` or ``["yt.sav=YT", ...]``)
    gives every row of a file one jurisdiction. Re-importing the same files (same roles and options) is a
    no-op; different files need ``replace``."""
    config.wave(wave)
    if not files:
        raise InputMissingError(f"wave {wave}: no files given", hint="name the wave's export file(s)")
    report = as_progress(progress)
    paths = [Path(p) for p in files]
    for path in paths:
        _check_file(path)
    roles = resolve_roles(
        config,
        wave,
        paths,
        id_column=id_column,
        jurisdiction_column=jurisdiction_column,
        weight_column=weight_column,
        jurisdiction_codes=jurisdiction_codes,
    )
    wave_entry = config.waves[wave]
    companion = codebook_path or (config.resolve(wave_entry.codebook) if wave_entry.codebook else None)
    uses_companion = companion is not None and any(p.suffix.lower() == ".csv" for p in paths)
    stored = _stored_state(config, wave)
    with ThreadPoolExecutor(max_workers=1) as hasher:
        # Hashing (provenance and the no-op check) runs beside decoding; hashlib releases the GIL.
        hashes = [hasher.submit(file_sha256, p) for p in paths]
        codebook_hash = file_sha256(companion) if uses_companion and companion and companion.exists() else ""

        def content() -> str:
            return _content_hash([h.result() for h in hashes], roles, encoding, codebook_hash)

        if stored and not replace and stored[0] == content():
            # The same files with the same options: nothing to decode, nothing to write.
            return ImportResult(
                wave,
                "unchanged",
                *_stored_size(config, wave),
                files=_stored_files(config, wave),
                roles=roles.describe(),
                review_status=stored[1],
            )
        with Staging() as staging:
            decoded = []
            for index, path in enumerate(paths):
                report.step(f"reading {path.name}")
                decoded.append(
                    _stage_file(
                        staging,
                        f"file_{index}",
                        path,
                        wave,
                        config,
                        encoding,
                        codebook_path,
                        True,
                        report,
                        sha256="",
                        roles=roles,
                    )
                )  # the hasher's sha256 is filled in below
            codebook = _stacked_codebook(decoded)
            report.step("validating")
            warnings = [w for d in decoded for w in d.warnings] + validate(
                staging.con, decoded, codebook, roles, config
            )
            digest = content()
            if stored and not replace:
                # Problems in the files are reported first; then this refusal (checked again under the lock).
                _refuse_existing(wave, paths)
            decoded = [_with_sha(d, hashes[i].result()) for i, d in enumerate(decoded)]
            report.step("writing")
            return _write(config, wave, decoded, codebook, roles, digest, warnings, staging, replace, lock_timeout)


def _refuse_existing(wave: int, paths: list[Path]) -> None:
    raise DataError(
        f"wave {wave} is already imported from different files than {', '.join(p.name for p in paths)}",
        hint=f"pass --replace to swap wave {wave} for these files (atomically), or check the wave number",
    )


def _with_sha(item: DecodedFile, sha256: str) -> DecodedFile:
    from dataclasses import replace as with_fields

    return with_fields(item, sha256=sha256)


def _stored_size(config: StudyConfig, wave: int) -> tuple[int, int]:
    with _read(config) as con:
        row = first_row(con, "SELECT rows, columns FROM waves WHERE wave = ?", [wave])
    return (row[0], row[1]) if row else (0, 0)


def _stored_files(config: StudyConfig, wave: int) -> list[dict[str, object]]:
    with _read(config) as con:
        rows = con.execute(
            "SELECT f.file_name, f.path, f.format, f.size, f.sha256, f.rows, f.columns, w.reader FROM wave_files f"
            " JOIN waves w USING (wave) WHERE wave = ? ORDER BY position",
            [wave],
        ).fetchall()
    keys = ("file_name", "path", "format", "size", "sha256", "rows", "columns", "reader")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _read(config: StudyConfig):  # type: ignore[no-untyped-def]
    from ..store import read_store

    return read_store(config.root)


def _write(
    config: StudyConfig,
    wave: int,
    decoded: list[DecodedFile],
    codebook: Codebook,
    roles: ColumnRoles,
    content: str,
    warnings: list[str],
    staging: Staging,
    replace: bool,
    lock_timeout: float | None,
) -> ImportResult:
    file_rows = [
        {
            "file_name": d.path.name,
            "path": str(d.path.resolve()),
            "format": d.format,
            "size": d.size,
            "sha256": d.sha256,
            "rows": d.rows,
            "columns": d.columns,
            "reader": d.reader,
        }
        for d in decoded
    ]
    rows = sum(d.rows for d in decoded)
    result = ImportResult(
        wave, "imported", rows, len(codebook.variables), file_rows, roles.describe(), warnings=warnings
    )
    timeout = config.pipeline.lock_timeout if lock_timeout is None else lock_timeout
    with write_store(config.root, timeout=timeout, purpose=f"wavetool import --wave {wave}") as con:
        existing = first_row(con, "SELECT content_sha256, review_status FROM waves WHERE wave = ?", [wave])
        if existing and existing[0] == content and not replace:
            result.status, result.review_status = "unchanged", existing[1]
            return result
        if existing and not replace:
            _refuse_existing(wave, [d.path for d in decoded])
        sources = [f"__staged_{index}" for index in range(len(decoded))]
        for source, item in zip(sources, decoded, strict=True):
            con.register(source, read_staged(Path(item.staged_as)))
        # DuckDB's share of memory while it compresses the rows; beyond it, it spills to disk.
        con.execute(f"SET memory_limit = '{ENGINE_MEMORY}'")
        try:
            with transaction(con):
                if existing:
                    _drop_wave(con, wave)
                    result.status = "replaced"
                _write_wave(con, config, wave, decoded, codebook, roles, content, rows, sources)
                if existing:
                    from ..custom import unmatched_custom_answers  # custom builds on ingest

                    result.warnings += unmatched_custom_answers(con, config, wave)
                result.review_status, result.drift = _review(con, config, wave, codebook)
                con.execute(
                    "UPDATE waves SET review_status = ?, drift = ? WHERE wave = ?",
                    [result.review_status, _json(result.drift) if result.drift else None, wave],
                )
        finally:
            for source in sources:
                con.unregister(source)
    return result


def _json(value: object) -> str:
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
    con: duckdb.DuckDBPyConnection,
    config: StudyConfig,
    wave: int,
    decoded: list[DecodedFile],
    codebook: Codebook,
    roles: ColumnRoles,
    content: str,
    rows: int,
    sources: list[str],
) -> None:
    names = list(codebook.variables)
    parts = []
    for item, source in zip(decoded, sources, strict=True):
        # the role columns (or their opt-outs) per file, over the file's rows in canonical types
        inner = f"SELECT {ROW}, {canonical_select(staged_schema(Path(item.staged_as)), codebook)} FROM {quote(source)}"
        parts.append(
            f"SELECT __id AS _id, __jur AS _jurisdiction, __wt AS _weight, * EXCLUDE (__row, __id, __jur, __wt)"
            f" FROM (SELECT {_role_select(roles, item.path.name, codebook)}, * EXCLUDE ({ROW}) FROM ({inner}))"
        )
    con.execute(f"CREATE TABLE {wave_table(wave)} AS {' UNION ALL '.join(parts)}")
    used = {role: column for d in decoded for role, column in role_columns(roles, d.path.name).items()}
    save_codebook(con, wave, codebook, used, _owners(config, names), _questions(config, wave, names))
    con.execute(
        "INSERT INTO waves (wave, table_name, id_column, jurisdiction_column, weight_column, rows, columns, encoding,"
        " reader, content_sha256, imported_at, wavetool_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            wave,
            wave_table(wave),
            roles.id,
            used.get("jurisdiction", ""),  # '' when every file's jurisdiction is a --jurisdiction-code
            roles.weight,
            rows,
            len(names),
            codebook.encoding,
            ", ".join(sorted({d.reader for d in decoded})),
            content,
            dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
            __version__,
        ],
    )
    for position, d in enumerate(decoded, start=1):
        con.execute(
            "INSERT INTO wave_files VALUES (?,?,?,?,?,?,?,?,?)",
            [wave, position, d.path.name, str(d.path.resolve()), d.format, d.size, d.sha256, d.rows, d.columns],
        )


def _review(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, codebook: Codebook
) -> tuple[str, list[dict[str, object]]]:
    """The drift gate's verdict on this wave's codebook against the previous wave's."""
    from ..codebook import review_drift

    return review_drift(con, config, wave)


__all__ = ["DecodedFile", "ImportResult", "Progress", "decode_file", "file_sha256", "import_wave", "validate"]
