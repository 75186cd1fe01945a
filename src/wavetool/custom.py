"""Custom questions owned by one subscriber: merged from a file keyed by respondent id, or found as
prefix columns (``custom_prefix``) in the main wave file.

"Not asked" is not "missing": only respondents of the subscriber's jurisdictions were asked. They are
the only rows of :func:`custom_select`; an eligible respondent without an answer is NULL (or keeps the
user-missing code the file gave). Everything here is keyed by subscriber, so one subscriber's questions
and answers never appear in a query run for another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .codebook import CORE_LANGUAGE, Codebook, MissingSpec, Variable, load_codebook, read_codebook_file
from .config import ROW_IDS, StudyConfig, Subscriber
from .errors import DataError, InputMissingError
from .ingest import DecodedFile, decode_file, file_sha256
from .ingest import _text_expr as id_text_expr  # the same canonical id text as the wave tables
from .store import first_row, quote, read_store, transaction, wave_table, write_store

MAX_LISTED = 5


@dataclass(frozen=True)
class CustomQuestion:
    """One subscriber's custom question in one wave; ``variable`` is named by the question."""

    subscriber: str
    wave: int
    question: str
    variable: Variable
    language: str
    source: str  # 'file' (merged) | 'prefix' (a column of the main wave file)


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


def custom_table(subscriber_id: str, wave: int) -> str:
    """The wide table holding a subscriber's merged custom answers for one wave (ids are slugs, so
    replacing '-' by '_' cannot make two subscribers' tables collide)."""
    return f"custom_{subscriber_id.replace('-', '_')}_{int(wave)}"


def _listed(values: list[Any], total: int) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_LISTED])
    return shown + (f" and {total - MAX_LISTED} more" if total > MAX_LISTED else "")


def _companion(path: Path) -> Path | None:
    candidate = path.with_name(f"{path.stem}-codebook.csv")
    return candidate if candidate.exists() else None


# --- preparing a file (no database needed) --------------------------------------------------------


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


# --- validating against the study and writing -----------------------------------------------------


def _imported(con: duckdb.DuckDBPyConnection, wave: int) -> bool:
    return bool(con.execute("SELECT 1 FROM waves WHERE wave = ?", [wave]).fetchall())


def _check_collisions(con: duckdb.DuckDBPyConnection, p: _Prepared) -> None:
    rows = con.execute(
        "SELECT name, question, owner, role FROM variables WHERE wave = ? AND (list_contains(?, name) OR list_contains(?, question))",
        [p.wave, p.questions, p.questions],
    ).fetchall()
    if not rows:
        return
    taken = {q for r in rows for q in (r[0], r[1]) if q in p.questions}
    first = next(q for q in p.questions if q in taken)
    name, question, owner, role = next(r for r in rows if first in (r[0], r[1]))
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
    key = [p.subscriber.id, p.wave]
    for table in ("custom_variables", "custom_value_labels", "custom_missing_values"):
        con.execute(f"DELETE FROM {table} WHERE subscriber = ? AND wave = ?", key)
    var_rows, label_rows, missing_rows = [], [], []
    for position, name in enumerate(p.questions, start=1):
        var = p.decoded.codebook.variables.get(name, Variable(name))
        var_rows.append((*key, name, position, var.label, var.type, var.measure, var.format, var.width))
        for code, label in var.value_labels.items():
            number = None
            if var.type != "string":
                try:
                    number = float(code)
                except ValueError:
                    number = None
            label_rows.append((*key, name, code, number, label))
        missing_rows += [(*key, name, s.kind, s.code, s.low, s.high) for s in var.missing]
    con.executemany("INSERT INTO custom_variables VALUES (?,?,?,?,?,?,?,?,?)", var_rows)
    if label_rows:
        con.executemany("INSERT INTO custom_value_labels VALUES (?,?,?,?,?,?)", label_rows)
    if missing_rows:
        con.executemany("INSERT INTO custom_missing_values VALUES (?,?,?,?,?,?,?)", missing_rows)


def _drop_merge(con: duckdb.DuckDBPyConnection, subscriber_id: str, wave: int) -> None:
    con.execute(f"DROP TABLE IF EXISTS {custom_table(subscriber_id, wave)}")
    for table in ("custom_merges", "custom_variables", "custom_value_labels", "custom_missing_values"):
        con.execute(f"DELETE FROM {table} WHERE subscriber = ? AND wave = ?", [subscriber_id, wave])


def _write(
    con: duckdb.DuckDBPyConnection, config: StudyConfig, p: _Prepared, replace: bool, from_config: bool = False
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
            dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
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
            return _write(con, config, prepared, replace)


def merge_from_config(config: StudyConfig, wave: int | None = None) -> list[MergeResult]:
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
            return [_write(con, config, p, replace=True, from_config=True) for p in prepared]


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
        merged = [
            r[0]
            for r in con.execute(
                "SELECT name FROM custom_variables WHERE subscriber = ? AND wave = ? ORDER BY position",
                [subscriber_id, wave],
            ).fetchall()
        ]
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
                    con, "SELECT 1 FROM variables WHERE wave = ? AND name = ? AND owner = ?", [wave, q, subscriber_id]
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
                    for table, column in (
                        ("custom_variables", "name"),
                        ("custom_value_labels", "variable"),
                        ("custom_missing_values", "variable"),
                    ):
                        con.execute(
                            f"DELETE FROM {table} WHERE subscriber = ? AND wave = ? AND {column} = ?",
                            [subscriber_id, wave, q],
                        )
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


# --- reading custom questions ---------------------------------------------------------------------


def _has_custom_tables(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'custom_merges'").fetchall())


def _merged_codebook(con: duckdb.DuckDBPyConnection, wave: int, subscriber_id: str) -> tuple[Codebook, str | None]:
    key = [subscriber_id, wave]
    labels: dict[str, dict[str, str]] = {}
    for variable, code, label in con.execute(
        "SELECT variable, code, label FROM custom_value_labels WHERE subscriber = ? AND wave = ? ORDER BY variable, code_num NULLS LAST, code",
        key,
    ).fetchall():
        labels.setdefault(variable, {})[code] = label
    missing: dict[str, list[MissingSpec]] = {}
    for variable, kind, code, low, high in con.execute(
        "SELECT variable, kind, code, low, high FROM custom_missing_values WHERE subscriber = ? AND wave = ? ORDER BY variable, low, code",
        key,
    ).fetchall():
        missing.setdefault(variable, []).append(MissingSpec(kind, code, low, high))
    variables = {
        name: Variable(name, label, vtype, measure, fmt, width, labels.get(name, {}), tuple(missing.get(name, ())))
        for name, label, vtype, measure, fmt, width in con.execute(
            "SELECT name, label, type, measure, format, width FROM custom_variables WHERE subscriber = ? AND wave = ? ORDER BY position",
            key,
        ).fetchall()
    }
    language = first_row(con, "SELECT language FROM custom_merges WHERE subscriber = ? AND wave = ?", key)
    return Codebook(variables), language[0] if language else None


def custom_questions(con: duckdb.DuckDBPyConnection, wave: int, subscriber_id: str) -> list[CustomQuestion]:
    """A subscriber's custom questions in ``wave``: prefix columns of the main file (in file order),
    then the questions merged from its custom file."""
    result = []
    prefix = con.execute(
        "SELECT name, question FROM variables WHERE wave = ? AND owner = ? ORDER BY position", [wave, subscriber_id]
    ).fetchall()
    if prefix:
        book = load_codebook(con, wave)
        for name, question in prefix:
            var = book.variables[name]
            result.append(
                CustomQuestion(
                    subscriber_id,
                    wave,
                    question,
                    Variable(
                        question, var.label, var.type, var.measure, var.format, var.width, var.value_labels, var.missing
                    ),
                    CORE_LANGUAGE,
                    "prefix",
                )
            )
    if _has_custom_tables(con) and first_row(
        con, "SELECT 1 FROM custom_merges WHERE subscriber = ? AND wave = ?", [subscriber_id, wave]
    ):
        merged, language = _merged_codebook(con, wave, subscriber_id)
        for name, var in merged.variables.items():
            result.append(CustomQuestion(subscriber_id, wave, name, var, language or CORE_LANGUAGE, "file"))
    return result


def unmatched_custom_answers(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int) -> list[str]:
    """One notice per subscriber whose merged custom answers for ``wave`` no longer all belong to its own
    respondents of the wave (after the wave was replaced): those answers are not counted anywhere, since only
    the subscriber's respondents are ever read (custom_select), but the coordinator should know."""
    if not _has_custom_tables(con):
        return []
    notices = []
    merges = con.execute(
        "SELECT subscriber, table_name, file_name FROM custom_merges WHERE wave = ? AND content_sha256 <> ''"
        " ORDER BY subscriber",
        [wave],
    ).fetchall()
    for subscriber_id, table, file_name in merges:
        if subscriber_id not in config.subscribers:
            continue
        codes = _jurisdiction_list(config.subscribers[subscriber_id].jurisdictions)
        total, absent, outside = first_row(
            con,
            f"SELECT count(*), count(*) FILTER (WHERE w._id IS NULL),"
            f" count(*) FILTER (WHERE w._id IS NOT NULL AND NOT list_contains({codes}, w._jurisdiction))"
            f" FROM {table} c LEFT JOIN {wave_table(wave)} w ON w._id = c._id",
        )
        if absent or outside:
            parts = [f"{absent} are no longer respondents of the wave"] if absent else []
            parts += [f"{outside} are now outside its jurisdictions"] if outside else []
            notices.append(
                f"wave {wave}: {subscriber_id}'s custom answers ({file_name}): {' and '.join(parts)}, of {total};"
                " they are not counted. Merge a custom file that matches the new wave"
                f" (`wavetool custom merge FILE --subscriber {subscriber_id} --wave {wave} --replace`)"
            )
    return notices


def _jurisdiction_list(codes: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + c.replace("'", "''") + "'" for c in codes) + "]"


def custom_select(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int, subscriber_id: str) -> str:
    """SQL: the subscriber's ELIGIBLE respondents of ``wave`` (jurisdiction among its own) with ``_id``,
    ``_jurisdiction``, ``_weight`` and one column per custom question named by the question. Eligible
    respondents without an answer are NULL (or their user-missing code); others are not rows at all."""
    subscriber = config.subscriber(subscriber_id)
    questions = custom_questions(con, wave, subscriber_id)
    names = [q.question for q in questions]
    clash = next((n for n in names if names.count(n) > 1 or n in ("_id", "_jurisdiction", "_weight")), None)
    if clash:
        raise DataError(
            f"wave {wave}: {subscriber_id}'s custom question {clash} is both a main-file column and a merged question",
            hint=f"rename one, or `wavetool custom remove --subscriber {subscriber_id} --wave {wave} {clash}`",
        )
    columns = ["w._id", "w._jurisdiction", "w._weight"]
    merged_table = None
    for q in questions:
        if q.source == "prefix":
            variable = first_row(
                con,
                "SELECT name FROM variables WHERE wave = ? AND owner = ? AND question = ?",
                [wave, subscriber_id, q.question],
            )[0]
            columns.append(f"w.{quote(variable)} AS {quote(q.question)}")
        else:
            merged_table = custom_table(subscriber_id, wave)
            columns.append(f"c.{quote(q.question)} AS {quote(q.question)}")
    join = f" LEFT JOIN {merged_table} AS c ON c._id = w._id" if merged_table else ""
    return (
        f"SELECT {', '.join(columns)} FROM {wave_table(wave)} AS w{join}"
        f" WHERE list_contains({_jurisdiction_list(subscriber.jurisdictions)}, w._jurisdiction)"
    )


def missing_sql(column: str, var: Variable) -> str:
    """A SQL condition true where ``column`` holds one of ``var``'s user-missing codes."""
    parts = []
    for spec in var.missing:
        if spec.kind == "value" and var.type == "string" and spec.code is not None:
            parts.append(f"{column} = '{spec.code.replace(chr(39), chr(39) * 2)}'")
        elif spec.kind == "value" and spec.low is not None:
            parts.append(f"{column} = {spec.low!r}")
        elif spec.kind == "range":
            low = "'-inf'::DOUBLE" if spec.low is None else repr(float(spec.low))
            high = "'inf'::DOUBLE" if spec.high is None else repr(float(spec.high))
            parts.append(f"{column} BETWEEN {low} AND {high}")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def list_custom(config: StudyConfig, wave: int | None = None, subscriber: str | None = None) -> list[dict[str, Any]]:
    """What each subscriber has in each wave: one record per custom question with its text, where it came
    from, how many eligible respondents there are and how many answered (not blank, not user-missing)."""
    subscribers = [config.subscriber(subscriber)] if subscriber else list(config.subscribers.values())
    rows: list[dict[str, Any]] = []
    with read_store(config.root) as con:
        waves = [r[0] for r in con.execute("SELECT wave FROM waves ORDER BY wave").fetchall()]
        has_tables = _has_custom_tables(con)
        for w in waves:
            if wave is not None and w != wave:
                continue
            files = {}
            if has_tables:
                files = {
                    r[0]: r[1:]
                    for r in con.execute(
                        "SELECT subscriber, file_name, sha256, rows FROM custom_merges WHERE wave = ?", [w]
                    ).fetchall()
                }
            for sub in subscribers:
                questions = custom_questions(con, w, sub.id)
                if not questions:
                    continue
                counts = ["count(*)"] + [
                    f"count({quote(q.question)}) FILTER (WHERE NOT coalesce({missing_sql(quote(q.question), q.variable)}, FALSE))"
                    for q in questions
                ]
                totals = first_row(con, f"SELECT {', '.join(counts)} FROM ({custom_select(con, config, w, sub.id)})")
                main_file = ", ".join(
                    r[0]
                    for r in con.execute(
                        "SELECT file_name FROM wave_files WHERE wave = ? ORDER BY position", [w]
                    ).fetchall()
                )
                for q, answered in zip(questions, totals[1:], strict=True):
                    file_name, sha, file_rows = (
                        files.get(sub.id, (None, None, None)) if q.source == "file" else (main_file, None, None)
                    )
                    rows.append(
                        {
                            "subscriber": sub.id,
                            "wave": w,
                            "question": q.question,
                            "text": q.variable.label,
                            "language": q.language,
                            "source": q.source,
                            "type": q.variable.type,
                            "value_labels": len(q.variable.value_labels),
                            "missing": [s.describe() for s in q.variable.missing],
                            "eligible": totals[0],
                            "answered": answered,
                            "rows": file_rows,
                            "file": file_name,
                            "sha256": sha,
                        }
                    )
    return rows


__all__ = [
    "CustomQuestion",
    "MergeResult",
    "custom_questions",
    "custom_select",
    "custom_table",
    "list_custom",
    "merge_custom",
    "merge_from_config",
    "missing_sql",
    "remove_custom",
]
