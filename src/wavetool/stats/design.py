"""The sampling design as the tables see it: which jurisdiction, stratum and PSU every cell key belongs to.

Cells (:mod:`wavetool.stats.frequencies`) are sums per *key*; the roll-up (:mod:`wavetool.stats.rollup`)
never parses a key. Two small tables, built here from one cheap GROUP BY over the wave, say what a key is:

- ``keys`` (key, jurisdiction, owner, stratum, psu): every cell key of the wave. ``owner`` is NULL for the
  core answers and the subscriber id for that subscriber's custom answers; ``psu`` is NULL when the
  respondents are their own PSUs (no ``[columns] cluster``), else the key holds exactly one PSU.
- ``strata`` (stratum, n_h): the units of each stratum over ALL the wave's respondents (in any scope,
  valid or not): respondents, or PSUs with a cluster column. A domain's linearised variance uses them.

A key must lie inside one jurisdiction (scopes are made of jurisdictions) and one stratum (the variance
sums by stratum), and, with clusters, inside one PSU. The default key is therefore the jurisdiction itself
(strata = jurisdictions, the design of ``svydesign(ids=~1, strata=~PROV, weights=~WEIGHT)``); a
``[columns] strata`` or ``cluster`` role appends the stratum and PSU to it. Anyone needing finer cells
(e.g. banner columns) appends to the key with :meth:`Design.refined`, and the same two tables follow.
A subscriber's custom answers are keyed ``@<subscriber>`` + the core key, so they keep their stratum.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from ..config import StudyConfig
from ..errors import ConfigError
from ..store import quote, wave_table

SEP = "\x1f"  # joins the parts of a key (the ASCII unit separator: in no code or value)
CUSTOM_KEY = "@"  # a custom answer's key: '@' + subscriber + SEP + core key

KEYS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("jurisdiction", pa.string()),
        ("owner", pa.string()),
        ("stratum", pa.string()),
        ("psu", pa.string()),
    ]
)
STRATA_SCHEMA = pa.schema([("stratum", pa.string()), ("n_h", pa.int64())])


def _text(expr: str) -> str:
    return f"coalesce(CAST({expr} AS VARCHAR), '')"


def _joined(parts: list[str]) -> str:
    return f" || '{SEP}' || ".join(parts) if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class Design:
    """SQL expressions over a wave's rows giving each respondent's stratum, PSU (None: the respondent
    itself) and cell key; ``extra`` are the refinements appended to the key."""

    stratum_sql: str = "_jurisdiction"
    psu_sql: str | None = None
    extra: tuple[str, ...] = ()
    description: str = "strata = jurisdiction, no clusters"

    @property
    def key_sql(self) -> str:
        parts = ["_jurisdiction"]
        if self.stratum_sql != "_jurisdiction":
            parts.append(_text(self.stratum_sql))
        if self.psu_sql is not None:
            parts.append(_text(self.psu_sql))
        return _joined([*parts, *(_text(e) for e in self.extra)])

    @property
    def columns(self) -> list[str]:
        """SQL of the design columns a source must carry besides ``_jurisdiction`` (see :meth:`key_sql`)."""
        return [e for e in (self.stratum_sql, self.psu_sql, *self.extra) if e is not None and e != "_jurisdiction"]

    def refined(self, *extra_sql: str) -> Design:
        """This design with finer keys: each SQL expression's value appended to the key."""
        return Design(self.stratum_sql, self.psu_sql, (*self.extra, *extra_sql), self.description)


def wave_design(con: duckdb.DuckDBPyConnection, config: StudyConfig, wave: int) -> Design:
    """The design of ``wave`` from the ``[columns] strata`` / ``cluster`` roles; a ConfigError when a
    named column is not in the imported wave."""
    roles = config.roles_for_wave(wave)
    present = {
        r[0].lower()
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [wave_table(wave)]
        ).fetchall()
    }
    exprs = {}
    for role in ("strata", "cluster"):
        name = getattr(roles, role)
        if name is None:
            continue
        if name.lower() not in present:
            raise ConfigError(
                f"{config.path}: [columns] {role} = {name!r}, but wave {wave} has no column {name}",
                hint=f"name a column of the wave's file, or remove the {role} role",
            )
        exprs[role] = quote(name)
    strata = exprs.get("strata", "_jurisdiction")
    text = f"strata = {roles.strata or 'jurisdiction'}, " + (
        f"clusters (PSUs) = {roles.cluster}" if roles.cluster else "no clusters"
    )
    return Design(stratum_sql=strata, psu_sql=exprs.get("cluster"), description=text)


def design_tables(
    con: duckdb.DuckDBPyConnection, source: str, design: Design, owners: dict[str, tuple[str, ...]] | None = None
) -> tuple[pa.Table, pa.Table]:
    """The ``keys`` and ``strata`` tables of one wave's respondents ``source`` (a table or a parenthesised
    query with ``_jurisdiction`` and the design columns); ``owners`` maps each subscriber whose custom
    answers are tabulated to its jurisdictions, whose keys it gets a copy of."""
    psu = "NULL" if design.psu_sql is None else _text(design.psu_sql)
    keys = con.sql(
        f"SELECT DISTINCT {design.key_sql} AS key, _jurisdiction AS jurisdiction, NULL::VARCHAR AS owner, "
        f"{_text(design.stratum_sql)} AS stratum, {psu}::VARCHAR AS psu FROM {source} ORDER BY key"
    ).to_arrow_table()
    units = "count(*)" if design.psu_sql is None else f"count(DISTINCT {psu})"
    strata = con.sql(
        f"SELECT {_text(design.stratum_sql)} AS stratum, {units}::BIGINT AS n_h FROM {source} GROUP BY ALL ORDER BY 1"
    ).to_arrow_table()
    keys = keys.cast(KEYS_SCHEMA)
    custom = [keys]
    for subscriber, jurisdictions in (owners or {}).items():
        rows = [r for r in keys.to_pylist() if r["jurisdiction"] in jurisdictions]
        for r in rows:
            r["key"], r["owner"] = custom_key(subscriber, r["key"]), subscriber
        custom.append(pa.Table.from_pylist(rows, schema=KEYS_SCHEMA))
    return pa.concat_tables(custom), strata.cast(STRATA_SCHEMA)


def custom_key(subscriber: str, core_key: str) -> str:
    """The key of a subscriber's custom answers given by respondents of core key ``core_key``."""
    return f"{CUSTOM_KEY}{subscriber}{SEP}{core_key}"


def custom_key_sql(subscriber: str, core_key_sql: str) -> str:
    """SQL of :func:`custom_key` over a source whose core key is ``core_key_sql``."""
    literal = "'" + (CUSTOM_KEY + subscriber + SEP).replace("'", "''") + "'"
    return f"{literal} || {core_key_sql}"
