"""sql.py: the one canonical code text (SQL and Python agree), literals, identifiers, the missing condition."""

from __future__ import annotations

import duckdb
import pytest

from wavetool.codebook import MissingSpec, Variable, is_missing_code
from wavetool.sql import code_text, code_text_sql, literal, missing_condition, quote, text_list

CODES = [0.0, -0.0, 1.0, -1.0, -9.0, -99.0, 1.5, -1.5, -0.25, 0.1, 1 / 3, 2.5e-7, 9.99, -2.5, 123456789012345.0]
CODES += [1e15, 1e16, -1e17, 999999999999999999.0, 1e18, 1e20, float("inf"), float("-inf")]


@pytest.mark.parametrize("value", CODES)
def test_sql_code_text_is_the_python_code_text(value: float) -> None:
    con = duckdb.connect()
    sql = con.execute(f"SELECT {code_text_sql('x')} FROM (SELECT ?::DOUBLE AS x)", [value]).fetchall()[0][0]
    assert sql == code_text(value)


def test_the_rule_on_negative_and_fractional_codes() -> None:
    assert [code_text(v) for v in (-1.0, -9.0, -1.5, -0.25, 1.5, 2.0, -0.0)] == [
        "-1",
        "-9",
        "-1.5",
        "-0.25",
        "1.5",
        "2",
        "0",
    ]
    assert code_text(1e16) == "10000000000000000" and code_text(1e18) == "1e+18"
    assert code_text("ON") == "ON" and code_text(True) == "1"
    con = duckdb.connect()
    assert con.execute(f"SELECT {code_text_sql('x', string=True)} FROM (SELECT '  A1 ' AS x)").fetchall() == [("A1",)]


def test_literals_and_identifiers_survive_quotes() -> None:
    con = duckdb.connect()
    tricky = "l'Île \"d'Orléans\""
    assert con.execute(
        f"SELECT {literal(tricky)}, {literal(None)}, {literal(2.5)}, {text_list(['a', tricky])}"
    ).fetchall() == [(tricky, None, 2.5, ["a", tricky])]
    con.execute(f"CREATE TABLE t ({quote(tricky)} INTEGER)")
    assert con.execute(f"SELECT {quote(tricky)} FROM t").description[0][0] == tricky


def test_the_missing_condition_agrees_with_the_python_rule() -> None:
    specs = (
        MissingSpec("value", "-9", -9.0, -9.0),
        MissingSpec("range", None, 97.0, None),
        MissingSpec("range", None, None, -90.0),
    )
    values = [-99.0, -91.0, -90.0, -9.0, -8.5, 0.0, 1.5, 96.9, 97.0, 1000.0]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT x, {missing_condition('x', specs)} FROM unnest(?::DOUBLE[]) AS u(x) ORDER BY x", [values]
    ).fetchall()
    assert rows == [(v, is_missing_code(specs, v)) for v in sorted(values)]
    assert [v for v, missing in rows if missing] == [-99.0, -91.0, -90.0, -9.0, 97.0, 1000.0]
    string = (MissingSpec("value", "N/A"), MissingSpec("value", "l'x"))
    got = con.execute(
        f"SELECT x, {missing_condition('x', string, string=True)} FROM unnest(['N/A', 'l''x', 'ok']) AS u(x)"
    ).fetchall()
    assert got == [("N/A", True), ("l'x", True), ("ok", False)]
    assert Variable("Q", type="string", missing=string).is_missing_code("N/A")
    assert missing_condition("x", ()) == "FALSE"
