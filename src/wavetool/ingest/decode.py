"""Decode: one vendor file (SPSS .sav/.zsav/.por or CSV) → a staged Arrow table with its codebook and
provenance. Reads the study database (an earlier wave's codebook for a bare CSV) but never writes it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..codebook import Codebook, MrSet, Variable, load_codebook, read_codebook_file
from ..config import ColumnRoles, StudyConfig
from ..context import Progress
from ..errors import DataError, InputMissingError, WavetoolError
from ..sql import code_text_sql
from ..store import connect, quote
from .csvfile import load_csv
from .labels import UnlabelledCodes
from .por import por_text
from .spss import load_spss, read_spss_codebook
from .staging import Staging, canonical_select, export_table, read_staged, staged_schema

SPSS_SUFFIXES = (".sav", ".zsav", ".por")


SUFFIXES = (*SPSS_SUFFIXES, ".csv")


MAX_LISTED = 5


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


def check_file(path: Path) -> str:
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


def stage_file(
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
    suffix = check_file(path)
    warnings: list[str] = []
    keep = list(dict.fromkeys(roles.columns_for(path.name).values())) if roles else []
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
        keep = (
            list(dict.fromkeys(roles.resolved(list(codebook.variables)).columns_for(path.name).values()))
            if roles
            else []
        )
        staged = export_table(staging.con, name, target, keep)
        staging.con.execute(f"DROP TABLE {quote(name)}")
        reader = "duckdb read_csv"
    else:
        codebook, expected = read_spss_codebook(path, encoding)
        done = [0]

        def count(n: int | None) -> None:
            done[0] = 0 if n is None else done[0] + n
            progress.count(done[0], expected)

        counter = UnlabelledCodes(codebook, skip) if skip is not None else None
        keep = (
            list(dict.fromkeys(roles.resolved(list(codebook.variables)).columns_for(path.name).values()))
            if roles
            else []
        )
        reader, staged = load_spss(target, path, codebook, expected, staging.folder, encoding, count, counter, keep)
        if suffix == ".por":
            lost = por_text(path, encoding).warning(path, MAX_LISTED)
            warnings.extend([lost] if lost else [])
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
        decoded = stage_file(
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


def stacked_codebook(decoded: list[DecodedFile]) -> Codebook:
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


def id_text_sql(column: str, variable: Variable | None) -> str:
    """SQL giving an id or code column's canonical text: strings trimmed, numbers as '100001' not '100001.0'."""
    return code_text_sql(column, string=variable is not None and variable.type == "string")
