"""Validate decoded files before anything is written: the id, jurisdiction and weight roles, duplicate
ids, unknown jurisdictions, bad weights, unlabelled codes."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..codebook import Codebook, Variable, code_text
from ..config import ColumnRoles, StudyConfig
from ..errors import DataError
from ..store import quote
from .decode import MAX_LISTED, DecodedFile, id_text_sql
from .labels import UnlabelledCodes
from .staging import ROW, canonical_select


def _rows_text(rows: list[int], total: int) -> str:
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = f" and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"row{'s' if total > 1 else ''} {listed}{more}"


def _check_roles(decoded: list[DecodedFile], roles: ColumnRoles) -> None:
    for item in decoded:
        names = list(item.codebook.variables)
        for role in ("id", "jurisdiction", "weight"):
            column = getattr(roles, role)
            if column not in names:
                raise DataError(
                    f"{item.path}: no {role} column {column!r} (columns: {', '.join(names[:12])}{', …' if len(names) > 12 else ''})",
                    hint=f"pass --{role} COLUMN or set [columns] {role} in wavetool.toml",
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
    weight_var = codebook.variables[roles.weight]
    if weight_var.type != "numeric":
        raise DataError(
            f"{decoded[0].path}: column {roles.weight}: the weight column is {weight_var.type}, not numeric",
            hint="pass --weight with the numeric weight column",
        )
    parts = []
    for index, item in enumerate(decoded):
        assert item.kept is not None
        con.register(f"kept_{index}", item.kept)
        select = canonical_select(item.kept.schema, codebook, [roles.id, roles.jurisdiction, roles.weight])
        parts.append(f"SELECT {index} AS __file, {ROW} AS __row, {select} FROM kept_{index}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW incoming AS {' UNION ALL '.join(parts)}")
    rid, jur, wt = quote(roles.id), quote(roles.jurisdiction), quote(roles.weight)
    id_text = id_text_sql(rid, codebook.variables.get(roles.id))
    jur_text = id_text_sql(jur, codebook.variables.get(roles.jurisdiction))

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
    counts = UnlabelledCodes(codebook, {roles.id, roles.jurisdiction, roles.weight})
    counts.checks.clear()
    for item in decoded:
        if item.unlabelled is not None:
            counts.merge(item.unlabelled)
    return counts.warnings(", ".join(str(d.path) for d in decoded), MAX_LISTED)


def _known_jurisdictions(config: StudyConfig, codebook: Codebook, roles: ColumnRoles) -> set[str]:
    if config.jurisdictions:
        return set(config.jurisdictions)
    return set(codebook.variables.get(roles.jurisdiction, Variable(roles.jurisdiction)).value_labels)
