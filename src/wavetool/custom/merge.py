"""Merging a subscriber's custom-question file into a wave (all or nothing), and removing a merge."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from dataclasses import replace as with_fields  # `replace` is the merge flag here
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..codebook import Codebook, Variable, read_codebook_file
from ..codebook.persist import delete_codebook, load_codebook, save_codebook
from ..config import ROW_IDS, StudyConfig, Subscriber
from ..context import QUIET, Context
from ..errors import DataError, InputMissingError
from ..ingest.decode import DecodedFile, decode_file, file_sha256
from ..ingest.decode import id_text_sql as id_text_expr
from ..store import first_row, quote, transaction, wave_table, write_store
from .query import custom_table

MAX_LISTED = 5


@dataclass
class MergeResult:
    """What a merge did, for the CLI, ``--json`` and the pipeline."""

    subscriber: str
    wave: int
    status: str  # 'merged' | 'replaced' | 'unchanged'
    rows: int
    questions: list[str]
    file: str
    sha256: str
    table: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Prepared:
    """A decoded custom file checked for everything that does not need the database."""

    subscriber: Subscriber
    wave: int
    decoded: DecodedFile
    codebook_path: Path | None
    id_column: str
    questions: list[str]
    content: str


def _listed(values: list[Any], total: int) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_LISTED])
    return shown + (f" and {total - MAX_LISTED} more" if total > MAX_LISTED else "")


def _companion(path: Path) -> Path | None:
    candidate = path.with_name(f"{path.stem}-codebook.csv")
    return candidate if candidate.exists() else None


def _prepare(
    config: StudyConfig, subscriber_id: str, wave: int, file: Path, codebook: Path | None, encoding: str | None
) -> _Prepared:
    subscriber = config.subscriber(subscriber_id)
    config.wave(wave)
    file = Path(file)
    if file.suffix.lower() == ".csv" and codebook is None:
        codebook = _companion(file)
        if codebook is None:
            raise InputMissingError(
                f"{file}: a custom-question CSV needs a codebook (labels, value labels, missing codes)",
                hint=f"pass --codebook FILE (or put it beside the data as {file.stem}-codebook.csv)",
            )
    decoded = decode_file(file, wave, config, encoding, codebook, wave_codebook=False)
    id_column = config.roles_for_wave(wave).id
    if id_column == ROW_IDS:
        raise DataError(
            f'{file}: wave {wave}\'s respondents are identified by row numbers ([columns] id = "{ROW_IDS}"), so custom'
            " answers cannot be matched to them",
            hint=f"set the wave's real id column in [columns] id (or its [waves.columns]) and re-import wave {wave}",
        )
    names = decoded.table.column_names
    id_column = config.roles_for_wave(wave).resolved(names).id  # whatever its case, as SPSS matches names
    if id_column not in names:
        raise DataError(
            f"{file}: no respondent id column {id_column!r} (columns: {_listed(names, len(names))})",
            hint=f"a custom-question file is keyed by the wave's id column {id_column}",
        )
    if codebook is not None and file.suffix.lower() == ".csv":
        described = read_codebook_file(codebook).variables
        unknown = [n for n in names if n not in described]
        if unknown:
            raise DataError(
                f"{file}: column{'s' if len(unknown) > 1 else ''} {_listed(unknown, len(unknown))} not described in codebook {codebook}",
                hint="add the column(s) to the codebook, or remove them from the file",
            )
    questions = [n for n in names if n != id_column]
    if not questions:
        raise DataError(f"{file}: no custom-question columns besides {id_column}", hint="check you sent the right file")
    _check_ids(decoded, id_column)
    digest = hashlib.sha256(decoded.sha256.encode())
    if codebook is not None:
        digest.update(file_sha256(Path(codebook)).encode())
    digest.update(f"|{encoding or ''}".encode())
    return _Prepared(
        subscriber, wave, decoded, Path(codebook) if codebook else None, id_column, questions, digest.hexdigest()
    )


def _check_ids(decoded: DecodedFile, id_column: str) -> None:
    """Blank or duplicate respondent ids: DataError naming the first rows."""
    con = duckdb.connect()
    try:
        con.register(
            "incoming",
            decoded.table.select([id_column]).append_column(
                "__row", pa.array(range(1, decoded.table.num_rows + 1), pa.int64())
            ),
        )
        text = id_text_expr(quote(id_column), decoded.codebook.variables.get(id_column))
        blank = con.execute(f"SELECT __row FROM incoming WHERE {text} IS NULL OR {text} = '' ORDER BY __row").fetchall()
        if blank:
            rows = [r[0] for r in blank]
            raise DataError(
                f"{decoded.path}: column {id_column}: empty respondent id at row{'s' if len(rows) > 1 else ''} {_listed(rows, len(rows))}",
                hint="every row of a custom-question file needs the respondent's id",
            )
        dups = con.execute(
            f"SELECT {text}, list(__row ORDER BY __row) FROM incoming GROUP BY 1 HAVING count(*) > 1 ORDER BY min(__row)"
        ).fetchall()
    finally:
        con.close()
    if dups:
        first, rows = dups[0]
        raise DataError(
            f"{decoded.path}: column {id_column}: respondent id {first} appears {len(rows)} times (rows {_listed(rows, len(rows))});"
            f" {len(dups)} duplicated id{'s' if len(dups) > 1 else ''} in all (first: {_listed([d[0] for d in dups], len(dups))})",
            hint="each respondent may appear once; remove the duplicates or ask the subscriber for a corrected file",
        )


def _imported(con: duckdb.DuckDBPyConnection, wave: int) -> bool:
    return bool(con.execute("SELECT 1 FROM waves WHERE wave = ?", [wave]).fetchall())


def _check_collisions(con: duckdb.DuckDBPyConnection, p: _Prepared) -> None:
    # Names collide whatever their case (SPSS names ignore case): a custom c1 collides with a core C1.
    folded = [q.casefold() for q in p.questions]
    rows = con.execute(
        "SELECT name, question, owner, role FROM variables WHERE wave = ? AND book = ''"
        " AND (list_contains(?, lower(name)) OR list_contains(?, lower(question)))",
        [p.wave, folded, folded],
    ).fetchall()
    if not rows:
        return
    stored = {n.casefold() for r in rows for n in (r[0], r[1]) if n}
    taken = {q for q in p.questions if q.casefold() in stored}
    first = next(q for q in p.questions if q in taken)
    name, question, owner, role = next(
        r for r in rows if first.casefold() in {(r[0] or "").casefold(), (r[1] or "").casefold()}
    )
    what = f"the {role} column" if role else f"{owner}'s column" if owner else "the core question"
    raise DataError(
        f"{p.decoded.path}: column {first} collides with {what} {name} of wave {p.wave}"
        f" ({len(taken)} colliding column{'s' if len(taken) > 1 else ''}: {_listed(sorted(taken), len(taken))})",
        hint="custom questions need names of their own (e.g. C1, C2); rename the column(s) in the file and its codebook",
    )


def _check_respondents(con: duckdb.DuckDBPyConnection, config: StudyConfig, p: _Prepared) -> None:
    """Every id must be a respondent of this wave in one of the subscriber's jurisdictions."""
    stored_id = first_row(con, "SELECT id_column FROM waves WHERE wave = ?", [p.wave])
    if stored_id is not None and stored_id[0] == ROW_IDS:
        raise DataError(
            f"{p.decoded.path}: wave {p.wave} was imported with row numbers as respondent ids (--id {ROW_IDS}),"
            " so custom answers cannot be matched to its respondents",
            hint=f"re-import wave {p.wave} with its real id column (--id COLUMN --replace), then merge again",
        )
    ids = f"(SELECT DISTINCT {id_text_expr(quote(p.id_column), p.decoded.codebook.variables.get(p.id_column))} AS _id FROM incoming_custom)"
    absent = con.execute(
        f"SELECT i._id FROM {ids} i ANTI JOIN {wave_table(p.wave)} w ON w._id = i._id ORDER BY i._id"
    ).fetchall()
    total = p.decoded.table.num_rows
    if absent:
        absent_ids = [r[0] for r in absent]
        elsewhere = []
        for (other,) in con.execute("SELECT wave FROM waves WHERE wave <> ? ORDER BY wave", [p.wave]).fetchall():
            hits = first_row(con, f"SELECT count(*) FROM {ids} i SEMI JOIN {wave_table(other)} w ON w._id = i._id")[0]
            elsewhere.append((hits, other))
        hits, other = max(elsewhere, default=(0, None))
        if other is not None and hits * 2 >= total:
            raise DataError(
                f"{p.decoded.path}: this looks like a file for wave {other}, not wave {p.wave}: {hits} of its {total} ids are"
                f" wave-{other} respondents and {len(absent_ids)} are not in wave {p.wave} (first: {_listed(absent_ids, len(absent_ids))})",
                hint=f"merge it with --wave {other}, or ask for the wave-{p.wave} file",
            )
        raise DataError(
            f"{p.decoded.path}: column {p.id_column}: {len(absent_ids)} id{'s' if len(absent_ids) > 1 else ''} are not respondents"
            f" of wave {p.wave} (first: {_listed(absent_ids, len(absent_ids))})",
            hint="every id must exist in the imported wave; check the file is the right one for this wave",
        )
    codes = list(p.subscriber.jurisdictions)
    outside = con.execute(
        f"SELECT w._id, w._jurisdiction FROM {ids} i JOIN {wave_table(p.wave)} w ON w._id = i._id"
        " WHERE NOT list_contains(?, w._jurisdiction) ORDER BY w._id",
        [codes],
    ).fetchall()
    if outside:
        shown = [f"{i} ({j})" for i, j in outside]
        raise DataError(
            f"{p.decoded.path}: {len(outside)} respondent{'s' if len(outside) > 1 else ''} not in {p.subscriber.id}'s"
            f" jurisdiction{'s' if len(codes) > 1 else ''} {', '.join(codes)} (first: {_listed(shown, len(shown))})",
            hint="a subscriber's custom questions can only be answered by its own respondents; remove those rows or check --subscriber",
        )


def _save_custom_codebook(con: duckdb.DuckDBPyConnection, p: _Prepared) -> None:
    """The file's codebook of its questions (in file order), as the subscriber's book of the wave: every
    variable owned by the subscriber, named by its question."""
    known = p.decoded.codebook.variables
    book = Codebook({name: with_fields(known.get(name, Variable(name)), name=name) for name in p.questions})
    sub = p.subscriber.id
    save_codebook(con, p.wave, book, roles={}, owners=dict.fromkeys(p.questions, sub), book=sub)


def _drop_merge(con: duckdb.DuckDBPyConnection, subscriber_id: str, wave: int) -> None:
    con.execute(f"DROP TABLE IF EXISTS {custom_table(subscriber_id, wave)}")
    con.execute("DELETE FROM custom_merges WHERE subscriber = ? AND wave = ?", [subscriber_id, wave])
    delete_codebook(con, wave, book=subscriber_id)


def _write(
    con: duckdb.DuckDBPyConnection,
    config: StudyConfig,
    p: _Prepared,
    replace: bool,
    from_config: bool = False,
    ctx: Context = QUIET,
) -> MergeResult:
    """Validate a prepared file against the study and store it (inside the caller's transaction)."""
    sub, wave, decoded = p.subscriber.id, p.wave, p.decoded
    table = custom_table(sub, wave)
    result = MergeResult(
        sub, wave, "merged", decoded.table.num_rows, list(p.questions), str(decoded.path), decoded.sha256, table
    )
    if not _imported(con, wave):
        raise InputMissingError(
            f"wave {wave} is not imported, so {decoded.path} cannot be merged",
            hint=f"run `wavetool import --wave {wave} FILE` first",
        )
    existing = first_row(
        con, "SELECT content_sha256, file_name FROM custom_merges WHERE subscriber = ? AND wave = ?", [sub, wave]
    )
    if existing and existing[0] == p.content and (not replace or from_config):
        result.status = "unchanged"
        return result
    _check_collisions(con, p)
    con.register("incoming_custom", decoded.table)
    try:
        _check_respondents(con, config, p)
        if existing and not replace:
            raise DataError(
                f"{sub} already has custom questions merged for wave {wave} from {existing[1]}"
                f"{' (with questions removed since)' if not existing[0] else ' (a different file)'}",
                hint=f"pass --replace to swap them for {decoded.path.name}, atomically",
            )
        if existing:
            _drop_merge(con, sub, wave)
            result.status = "replaced"
        id_expr = id_text_expr(quote(p.id_column), decoded.codebook.variables.get(p.id_column))
        columns = ", ".join(quote(q) for q in p.questions)
        con.execute(f"CREATE TABLE {table} AS SELECT {id_expr} AS _id, {columns} FROM incoming_custom")
    finally:
        con.unregister("incoming_custom")
    con.execute(
        "INSERT INTO custom_merges VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            sub,
            wave,
            table,
            decoded.path.name,
            str(decoded.path.resolve()),
            decoded.format,
            decoded.size,
            decoded.sha256,
            p.content,
            str(p.codebook_path.resolve()) if p.codebook_path else None,
            decoded.table.num_rows,
            p.subscriber.language,
            decoded.reader,
            ctx.now(),
        ],
    )
    _save_custom_codebook(con, p)
    return result


def merge_custom(
    config: StudyConfig,
    subscriber_id: str,
    wave: int,
    file: Path,
    codebook: Path | None = None,
    replace: bool = False,
    encoding: str | None = None,
    ctx: Context = QUIET,
) -> MergeResult:
    """Merge a subscriber's custom-question file (SPSS, or CSV + codebook) keyed by respondent id into
    ``wave``, all or nothing. Re-merging the same file is a no-op; ``replace`` swaps a different one."""
    prepared = _prepare(config, subscriber_id, wave, Path(file), Path(codebook) if codebook else None, encoding)
    with write_store(
        config.root,
        timeout=config.pipeline.lock_timeout,
        purpose=f"wavetool custom merge --subscriber {subscriber_id} --wave {wave}",
    ) as con:
        with transaction(con):
            return _write(con, config, prepared, replace, ctx=ctx)


def merge_from_config(config: StudyConfig, wave: int | None = None, ctx: Context = QUIET) -> list[MergeResult]:
    """Merge every ``[[subscribers.custom]]`` file the config lists for ``wave`` (all waves when None),
    in one transaction. The config is the source of truth: a changed file replaces the merged one, the
    same file is left alone ('unchanged')."""
    entries = [(sub, cf) for sub in config.subscribers.values() for cf in sub.custom if wave is None or cf.wave == wave]
    prepared = [
        _prepare(
            config, sub.id, cf.wave, config.resolve(cf.file), config.resolve(cf.codebook) if cf.codebook else None, None
        )
        for sub, cf in entries
    ]
    if not prepared:
        return []
    with write_store(
        config.root,
        timeout=config.pipeline.lock_timeout,
        purpose=f"wavetool custom merge --from-config{f' --wave {wave}' if wave else ''}",
    ) as con:
        with transaction(con):
            return [_write(con, config, p, replace=True, from_config=True, ctx=ctx) for p in prepared]


def remove_custom(
    config: StudyConfig, subscriber_id: str, wave: int, questions: list[str] | None = None
) -> dict[str, Any]:
    """Remove a subscriber's merged custom questions of a wave (all, or the named ones)."""
    config.subscriber(subscriber_id)
    with write_store(
        config.root,
        timeout=config.pipeline.lock_timeout,
        purpose=f"wavetool custom remove --subscriber {subscriber_id} --wave {wave}",
    ) as con:
        merged = list(load_codebook(con, wave, book=subscriber_id).variables)
        if not merged:
            raise InputMissingError(
                f"{subscriber_id} has no custom questions merged for wave {wave}", hint="see `wavetool custom list`"
            )
        chosen = list(questions or merged)
        unknown = [q for q in chosen if q not in merged]
        if unknown:
            prefix = [
                q
                for q in unknown
                if first_row(
                    con,
                    "SELECT 1 FROM variables WHERE wave = ? AND name = ? AND owner = ? AND book = ''",
                    [wave, q, subscriber_id],
                )
            ]
            if prefix:
                raise DataError(
                    f"{prefix[0]} is a column of the main wave-{wave} file, not a merged custom question",
                    hint="prefix columns go away only by re-importing the wave without them",
                )
            raise DataError(
                f"{subscriber_id} has no merged custom question {unknown[0]} in wave {wave} (it has {', '.join(merged)})",
                hint="see `wavetool custom list`",
            )
        with transaction(con):
            if set(chosen) == set(merged):
                _drop_merge(con, subscriber_id, wave)
            else:
                for q in chosen:
                    con.execute(f"ALTER TABLE {custom_table(subscriber_id, wave)} DROP COLUMN {quote(q)}")
                delete_codebook(con, wave, book=subscriber_id, names=chosen)
                # The stored questions are no longer the file's: re-merging it must not be a no-op.
                con.execute(
                    "UPDATE custom_merges SET content_sha256 = '' WHERE subscriber = ? AND wave = ?",
                    [subscriber_id, wave],
                )
    return {
        "subscriber": subscriber_id,
        "wave": wave,
        "removed": chosen,
        "kept": [q for q in merged if q not in chosen],
    }
