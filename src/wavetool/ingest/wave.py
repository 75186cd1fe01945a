"""The wave import: decode → validate → one transaction that writes the wave table, its codebook and its
files, and the drift gate's verdict. The custom-answer check (which reads merged custom questions, a layer
above decode) runs after the commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import replace as with_fields
from pathlib import Path

import duckdb

from .. import __version__
from ..codebook import Codebook, known_questions, question_map, save_codebook
from ..codebook.persist import delete_codebook
from ..config import ROW_IDS, ColumnRoles, StudyConfig
from ..context import QUIET, Context
from ..custom.query import unmatched_custom_answers
from ..drift import review_drift
from ..errors import DataError, ExitCode, InputMissingError, WavetoolError
from ..store import connect, first_row, quote, read_store, transaction, wave_table, write_store
from .decode import (
    DecodedFile,
    check_file,
    file_sha256,
    stacked_codebook,
    stage_file,
)
from .staging import ENGINE_MEMORY, ROW, Staging, canonical_select, read_staged, staged_schema
from .validate import resolve_roles, role_select, validate


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

    @property
    def exit_code(self) -> int:
        """0: an import either commits or raises; drift only warns here (the gate stops tables and reports)."""
        return int(ExitCode.OK)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _content_hash(hashes: list[str], roles: ColumnRoles, encoding: str | None, codebook_hash: str) -> str:
    digest = hashlib.sha256()
    for sha in hashes:
        digest.update(sha.encode())
    digest.update(f"{roles.id}|{roles.jurisdiction}|{roles.weight}|{encoding or ''}|{codebook_hash}".encode())
    if roles.jurisdiction_code:  # only then, so that the waves imported before the option keep their hash
        digest.update(f"|codes={sorted(roles.jurisdiction_code)}".encode())
    return digest.hexdigest()


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
    """The subscribers with custom answers merged into ``wave`` (read without the lock)."""
    try:
        con = connect(config.root, read_only=True, timeout=2.0)
    except WavetoolError:
        return []
    try:
        return [r[0] for r in con.execute("SELECT subscriber FROM custom_merges WHERE wave = ?", [wave]).fetchall()]
    finally:
        con.close()


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
    lock_timeout: float | None = None,
    ctx: Context = QUIET,
) -> ImportResult:
    """Import one wave from one or more exports into the study database, all or nothing.

    Roles: ``id_column="row"`` numbers the rows (one file, no custom questions), ``weight_column="none"``
    imports unweighted (every weight 1), ``jurisdiction_codes`` (``["YT"]`` or ``["yt.sav=YT", ...]``)
    gives every row of a file one jurisdiction. Re-importing the same files (same roles and options) is a
    no-op; different files need ``replace``. Reports its steps and rows read through ``ctx.progress``;
    ``imported_at`` is ``ctx``'s clock."""
    config.wave(wave)
    if not files:
        raise InputMissingError(f"wave {wave}: no files given", hint="name the wave's export file(s)")
    report = ctx.progress
    paths = [Path(p) for p in files]
    for path in paths:
        check_file(path)
    roles = resolve_roles(
        config,
        wave,
        paths,
        id_column=id_column,
        jurisdiction_column=jurisdiction_column,
        weight_column=weight_column,
        jurisdiction_codes=jurisdiction_codes,
    )
    if roles.row_ids:
        _check_row_ids(config, wave, paths)
    wave_entry = config.waves[wave]
    companion = codebook_path or (config.resolve(wave_entry.codebook) if wave_entry.codebook else None)
    uses_companion = companion is not None and any(p.suffix.lower() == ".csv" for p in paths)
    stored = _stored_state(config, wave)
    with ThreadPoolExecutor(max_workers=1) as hasher:
        # Hashing (provenance and the no-op check) runs beside decoding; hashlib releases the GIL.
        hashes = [hasher.submit(file_sha256, p) for p in paths]
        codebook_hash = file_sha256(companion) if uses_companion and companion and companion.exists() else ""

        given = roles  # the no-op check compares the roles as asked for, before the file's spelling is known

        def content() -> str:
            return _content_hash([h.result() for h in hashes], given, encoding, codebook_hash)

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
                    stage_file(
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
            codebook = stacked_codebook(decoded)
            roles = roles.resolved(list(codebook.variables))  # `respid` is the file's RESPID, as in SPSS
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
            return _write(
                config, wave, decoded, codebook, roles, digest, warnings, staging, replace, lock_timeout, ctx.now()
            )


def _refuse_existing(wave: int, paths: list[Path]) -> None:
    raise DataError(
        f"wave {wave} is already imported from different files than {', '.join(p.name for p in paths)}",
        hint=f"pass --replace to swap wave {wave} for these files (atomically), or check the wave number",
    )


def _with_sha(item: DecodedFile, sha256: str) -> DecodedFile:
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
    imported_at: dt.datetime,
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
                _write_wave(con, config, wave, decoded, codebook, roles, content, rows, sources, imported_at)
                result.review_status, result.drift = review_drift(con, config, wave)
        finally:
            for source in sources:
                con.unregister(source)
        if existing:  # after the commit: a replaced wave may have orphaned a subscriber's merged answers
            result.warnings += unmatched_custom_answers(con, config, wave)
    return result


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _drop_wave(con: duckdb.DuckDBPyConnection, wave: int) -> None:
    con.execute(f"DROP TABLE IF EXISTS {wave_table(wave)}")
    for table in ("waves", "wave_files"):
        con.execute(f"DELETE FROM {table} WHERE wave = ?", [wave])
    delete_codebook(con, wave)


def _owners(config: StudyConfig, names: list[str]) -> dict[str, str]:
    owners = {}
    for sub in config.subscribers.values():
        if sub.custom_prefix:
            prefix = sub.custom_prefix.casefold()
            owners.update({n: sub.id for n in names if n.casefold().startswith(prefix)})
    return owners


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
    imported_at: dt.datetime,
) -> None:
    names = list(codebook.variables)
    parts = []
    for item, source in zip(decoded, sources, strict=True):
        # the role columns (or their opt-outs) per file, over the file's rows in canonical types
        inner = f"SELECT {ROW}, {canonical_select(staged_schema(Path(item.staged_as)), codebook)} FROM {quote(source)}"
        parts.append(
            f"SELECT __id AS _id, __jur AS _jurisdiction, __wt AS _weight, * EXCLUDE (__row, __id, __jur, __wt)"
            f" FROM (SELECT {role_select(roles, item.path.name, codebook)}, * EXCLUDE ({ROW}) FROM ({inner}))"
        )
    con.execute(f"CREATE TABLE {wave_table(wave)} AS {' UNION ALL '.join(parts)}")
    used = {role: column for d in decoded for role, column in roles.columns_for(d.path.name).items()}
    save_codebook(
        con, wave, codebook, used, _owners(config, names), question_map(config, wave, names, known_questions(con, wave))
    )
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
            imported_at,
            __version__,
        ],
    )
    for position, d in enumerate(decoded, start=1):
        con.execute(
            "INSERT INTO wave_files VALUES (?,?,?,?,?,?,?,?,?)",
            [wave, position, d.path.name, str(d.path.resolve()), d.format, d.size, d.sha256, d.rows, d.columns],
        )
