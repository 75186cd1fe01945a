"""Migration 0006 (one codebook store keyed by owner) on a database the previous release made
(tests/data/prev-release/, see its README): the custom questions, their labels, value labels, missing
codes and owner, and a tabulation of them, are what that release gave; the migration is all or nothing
and runs once; a fresh database never has the old custom_* codebook tables."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from helpers import database_checksum
from wavetool.codebook import known_questions
from wavetool.config import load_config
from wavetool.custom import custom_questions, remove_custom
from wavetool.stats.questions import study_measures
from wavetool.store import connect, create_database, db_path, migrate, migrations, read_store

PREV = Path(__file__).parent / "data" / "prev-release"
OLD_TABLES = {"custom_variables", "custom_value_labels", "custom_missing_values"}
SUBSCRIBERS = ("british-columbia", "maritimes", "ontario", "quebec")


@pytest.fixture
def prev_study(tmp_path: Path) -> Path:
    """A private copy of the previous release's study: its database and its config."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(PREV / "wavetool.duckdb", db_path(study))
    shutil.copy(PREV / "wavetool.toml", study / "wavetool.toml")
    return study


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _versions(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()
    }


def _raw(study: Path) -> duckdb.DuckDBPyConnection:
    """The database opened without wavetool (no migration)."""
    return duckdb.connect(str(db_path(study)), read_only=True)


def _records(con: duckdb.DuckDBPyConnection, subscriber: str) -> list[dict]:
    return [
        {
            "owner": q.subscriber,
            "wave": q.wave,
            "question": q.question,
            "source": q.source,
            "language": q.language,
            "label": q.variable.label,
            "type": q.variable.type,
            "measure": q.variable.measure,
            "format": q.variable.format,
            "width": q.variable.width,
            "value_labels": q.variable.value_labels,
            "missing": [[s.kind, s.code, s.low, s.high] for s in q.variable.missing],
        }
        for q in custom_questions(con, 1, subscriber)
    ]


def test_the_fixture_is_a_previous_release_database(prev_study):
    con = _raw(prev_study)
    try:
        assert _versions(con) == [1, 2, 3, 5]
        assert OLD_TABLES <= _tables(con)
        assert con.execute("SELECT count(*) FROM custom_variables").fetchall() == [(9,)]
    finally:
        con.close()


def test_upgrade_keeps_every_custom_question_its_texts_codes_and_owner(prev_study):
    con = connect(prev_study)  # read-write: migration 0006 runs
    try:
        assert _versions(con) == [v for v, _, _ in migrations()]
        assert not OLD_TABLES & _tables(con)
        expected = json.loads((PREV / "custom-questions.json").read_text(encoding="utf-8"))
        assert [r for sub in SUBSCRIBERS for r in _records(con, sub)] == expected
        # Each merged question now sits in its subscriber's book, owned by it; nothing else moved there.
        books = con.execute(
            "SELECT book, owner, list(name ORDER BY position) FROM variables WHERE book <> '' GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert books == [
            ("british-columbia", "british-columbia", ["C1", "C2"]),
            ("ontario", "ontario", ["C1", "C2", "C3"]),
            ("quebec", "quebec", ["C1", "C2", "C3", "C4"]),
        ]
        assert con.execute("SELECT count(*) FROM value_labels WHERE book <> ''").fetchall() == [(54,)]
        assert con.execute("SELECT count(*) FROM missing_values WHERE book <> ''").fetchall() == [(18,)]
        # The core study's readers never see a subscriber's book.
        assert not {"c1", "c4"} & set(known_questions(con, 2))
        assert not {"C1", "C4"} & set(study_measures(con))
    finally:
        con.close()


def _csv_rows(text: str, columns: list[str]) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in csv.DictReader(io.StringIO(text))]


# A standard error of an estimate the row does not have (a question without a top box or a mean): the
# previous release wrote 0.0, this one leaves it empty, as the estimate is.
_SE_OF = {"topbox_se": "topbox", "mean_se": "mean"}


def _same_tables(now: str, recorded: str, columns: list[str]) -> None:
    """The tables equal the recorded ones: every text exactly, every number to 1e-12 relative (sums taken
    in another order differ in their last bits), and an SE without its estimate empty (see _SE_OF)."""
    new_rows, old_rows = list(csv.DictReader(io.StringIO(now))), list(csv.DictReader(io.StringIO(recorded)))
    assert len(new_rows) == len(old_rows)
    for new, old in zip(new_rows, old_rows, strict=True):
        for c in columns:
            a, b = new[c], old[c]
            if c in _SE_OF and new[_SE_OF[c]] == "" and b == "0.0":
                assert a == "", (c, new)
                continue
            try:
                x, y = float(a), float(b)
            except ValueError:
                assert a == b, (c, a, b, new)
                continue
            assert x == pytest.approx(y, rel=1e-12, abs=0), (c, a, b, new)


def test_upgraded_database_tabulates_and_describes_as_the_previous_release_did(prev_study, cli):
    code, out, err = cli(
        "--study",
        prev_study,
        "tabulate",
        "--wave",
        "1",
        *("--subscriber", "ontario", "--subscriber", "quebec", "--subscriber", "british-columbia"),
        *(arg for q in ("C1", "C2", "C3", "C4", "BC_1", "BC_2") for arg in ("--question", q)),
        "--format",
        "csv",
    )
    assert code == 0, err
    recorded = (PREV / "tabulate-wave-1.csv").read_text(encoding="utf-8")
    columns = next(csv.reader(io.StringIO(recorded)))  # new columns may only come after these
    assert next(csv.reader(io.StringIO(out)))[: len(columns)] == columns
    _same_tables(out, recorded, columns)
    assert {r[2] for r in _csv_rows(out, columns)} == {"C1", "C2", "C3", "C4", "BC_1", "BC_2"}

    code, out, err = cli("--study", prev_study, "codebook", "check-translations", "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads((PREV / "check-translations.json").read_text(encoding="utf-8"))
    code, out, err = cli("--study", prev_study, "codebook", "show", "--wave", "1", "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads((PREV / "codebook-wave-1.json").read_text(encoding="utf-8"))


def test_a_read_only_command_upgrades_the_database_first(prev_study, cli):
    code, out, err = cli("--study", prev_study, "custom", "list", "--wave", "1", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert {(r["subscriber"], r["question"]) for r in listed if r["source"] == "file"} == {
        ("british-columbia", "C1"),
        ("british-columbia", "C2"),
        ("ontario", "C1"),
        ("ontario", "C2"),
        ("ontario", "C3"),
        ("quebec", "C1"),
        ("quebec", "C2"),
        ("quebec", "C3"),
        ("quebec", "C4"),
    }
    con = _raw(prev_study)
    try:
        assert _versions(con)[-1] == migrations()[-1][0]
        assert not OLD_TABLES & _tables(con)
    finally:
        con.close()


def test_the_migration_runs_once_and_opening_again_changes_nothing(prev_study):
    connect(prev_study).close()
    upgraded = database_checksum(prev_study)
    con = connect(prev_study)
    try:
        assert migrate(con) == []
    finally:
        con.close()
    with read_store(prev_study) as con:
        assert con.execute("SELECT count(*) FROM variables WHERE book <> ''").fetchall() == [(9,)]
    assert database_checksum(prev_study) == upgraded


def test_a_failed_migration_changes_nothing(prev_study):
    before = database_checksum(prev_study)
    con = duckdb.connect(str(db_path(prev_study)))
    # Make the last table rebuild fail, after variables and value_labels were already rebuilt.
    con.execute("CREATE TABLE mr_sets_new (x INTEGER)")
    con.close()
    with pytest.raises(duckdb.Error, match="mr_sets_new"):
        connect(prev_study)
    con = duckdb.connect(str(db_path(prev_study)))
    try:
        assert _versions(con) == [1, 2, 3, 5]
        assert "question" in _columns(con, "variables") and "book" not in _columns(con, "variables")
        con.execute("DROP TABLE mr_sets_new")
    finally:
        con.close()
    assert database_checksum(prev_study) == before


def test_a_fresh_database_has_only_the_owner_keyed_store(tmp_path):
    create_database(tmp_path)
    con = _raw(tmp_path)
    try:
        assert not OLD_TABLES & _tables(con)
        for table in ("variables", "value_labels", "missing_values", "mr_sets"):
            assert "book" in _columns(con, table), table
    finally:
        con.close()


def test_remove_and_re_merge_on_an_upgraded_database(prev_study):
    config = load_config(prev_study)
    remove_custom(config, "quebec", 1, ["C4"])
    with read_store(prev_study) as con:
        assert [q.question for q in custom_questions(con, 1, "quebec")] == ["C1", "C2", "C3"]
        assert con.execute(
            "SELECT count(*) FROM value_labels WHERE book = 'quebec' AND variable = 'C4'"
        ).fetchall() == [(0,)]
        ontario = _records(con, "ontario")
    remove_custom(config, "quebec", 1)
    with read_store(prev_study) as con:
        assert custom_questions(con, 1, "quebec") == []
        assert con.execute("SELECT count(*) FROM variables WHERE book = 'quebec'").fetchall() == [(0,)]
        assert _records(con, "ontario") == ontario  # another subscriber's book is untouched
