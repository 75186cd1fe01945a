"""Validate decoded files before anything is written: the id, jurisdiction and weight roles, duplicate
ids, unknown jurisdictions, bad weights, unlabelled codes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from ..codebook import Codebook, Variable, code_text
from ..config import NO_WEIGHT, ROW_IDS, ColumnRoles, StudyConfig
from ..errors import DataError
from ..store import quote
from .decode import MAX_LISTED, DecodedFile, id_text_sql
from .labels import UnlabelledCodes
from .staging import ROW, canonical_select


def _rows_text(rows: list[int], total: int) -> str:
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = f" and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"row{'s' if total > 1 else ''} {listed}{more}"


OPT_OUT = {
    "id": f"--id {ROW_IDS} (row numbers as ids)",
    "jurisdiction": "--jurisdiction-code CODE (one jurisdiction for every row of the file)",
    "weight": f"--weight {NO_WEIGHT} (unweighted)",
}


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
    """The wave's roles with the command line's applied, checked before any file is decoded: one column,
    one role, and jurisdiction codes that name these files and the study's jurisdictions (DataError naming
    the file and the columns)."""
    first = paths[0]
    given = {"id": id_column, "jurisdiction": jurisdiction_column, "weight": weight_column}
    for role, value in given.items():
        if value is not None and not value.strip():
            raise DataError(
                f"{first}: --{role} is empty", hint=f"name the file's {role} column, or pass {OPT_OUT[role]}"
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
        _one_column_one_role(path, roles.columns_for(path.name))
    _check_codes(config, first, roles)
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


def role_select(roles: ColumnRoles, file_name: str, codebook: Codebook) -> str:
    """``__row, __id, __jur, __wt`` of one file's rows (over its canonical columns and ``__row``): the role
    columns' text, or the opt-outs' row number, jurisdiction code and weight 1."""
    columns = roles.columns_for(file_name)
    code = roles.code_for(file_name)
    id_expr = (
        id_text_sql(quote(columns["id"]), codebook.variables.get(columns["id"]))
        if "id" in columns
        else f"CAST({ROW} AS VARCHAR)"
    )
    jur_expr = (
        id_text_sql(quote(columns["jurisdiction"]), codebook.variables.get(columns["jurisdiction"]))
        if code is None
        else "'" + code.replace("'", "''") + "'"
    )
    wt_expr = f"CAST({quote(columns['weight'])} AS DOUBLE)" if "weight" in columns else "CAST(1 AS DOUBLE)"
    return f"{ROW} AS __row, {id_expr} AS __id, {jur_expr} AS __jur, {wt_expr} AS __wt"


def _check_roles(decoded: list[DecodedFile], roles: ColumnRoles) -> None:
    for item in decoded:
        names = list(item.codebook.variables)
        for role, column in roles.columns_for(item.path.name).items():
            if column not in names:
                raise DataError(
                    f"{item.path}: no {role} column {column!r} (columns: {', '.join(names[:12])}{', …' if len(names) > 12 else ''})",
                    hint=f"pass --{role} COLUMN or set [columns] {role} in wavetool.toml; without one, {OPT_OUT[role]}",
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
        columns = roles.columns_for(item.path.name)
        select = canonical_select(item.kept.schema, codebook, list(dict.fromkeys(columns.values())))
        inner = f"SELECT {', '.join([ROW, select] if select else [ROW])} FROM kept_{index}"
        parts.append(f"SELECT {index} AS __file, {role_select(roles, item.path.name, codebook)} FROM ({inner})")
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
    counts = UnlabelledCodes(codebook, {c for d in decoded for c in roles.columns_for(d.path.name).values()})
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
