"""The study database: migrations recorded and applied to old databases; the study lock (a second import
waits, then fails with exit 75 naming the holder); DuckDB's own lock reported the same way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from wavefiles import db_digest, wave_frame, write_sav, write_study
from wavetool.errors import StudyLockedError
from wavetool.store import connect, db_path, migrations, read_store


def test_migrations_are_recorded(tmp_path):
    study = write_study(tmp_path / "study")
    shipped = migrations()
    assert [v for v, _, _ in shipped][:1] == [1] and len({v for v, _, _ in shipped}) == len(shipped)
    with read_store(study) as con:
        recorded = con.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert [(v, n) for v, n, _ in recorded] == [(v, n) for v, n, _ in shipped]
    assert all(applied is not None for _, _, applied in recorded)


def test_opening_an_old_database_applies_the_new_migrations(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    # A database as the first release left it: only migration 0001 applied.
    version, name, sql = migrations()[0]
    con = duckdb.connect(str(db_path(study)))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])
    con.execute(
        "INSERT INTO waves (wave, table_name, id_column, jurisdiction_column, weight_column, rows, columns, reader,"
        " content_sha256, imported_at, wavetool_version) VALUES (1, 'wave_1', 'RESPID', 'PROV', 'WEIGHT', 0, 0, 'x', 'y',"
        " now()::TIMESTAMP, '0.0.1')"
    )
    con.close()

    con = connect(study)  # read-write: migrates
    try:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
        kept = con.execute("SELECT wavetool_version FROM waves").fetchall()
    finally:
        con.close()
    assert versions == [v for v, _, _ in migrations()]
    assert kept == [("0.0.1",)]  # the old data survives the upgrade
    con = connect(study)  # nothing left to apply: opening again changes nothing
    try:
        assert [
            r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        ] == versions
    finally:
        con.close()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from wavetool.store import study_lock
with study_lock(Path(sys.argv[1]), timeout=5, purpose="test holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(study: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_LOCK), str(study), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def _study_with_timeout(tmp_path: Path, seconds: float) -> Path:
    return write_study(tmp_path / "study", extra=f"[pipeline]\nlock_timeout = {seconds}\n")


def test_second_import_waits_then_fails_busy_with_exit_75(tmp_path, cli):
    study = _study_with_timeout(tmp_path, 1.0)
    wave = write_sav(tmp_path / "wave1.sav", wave_frame())
    before = db_digest(study)
    holder = _hold_lock(study, 30)
    try:
        started = time.monotonic()
        code, out, err = cli("--study", study, "import", "--wave", "1", wave)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert code == 75, err
    assert f"study is busy (held by PID {holder.pid}: test holder)" in err
    assert "Traceback" not in err
    assert waited >= 1.0
    assert db_digest(study) == before


def test_second_import_waits_for_the_lock_and_then_succeeds(tmp_path, cli):
    study = _study_with_timeout(tmp_path, 30.0)
    wave = write_sav(tmp_path / "wave1.sav", wave_frame())
    holder = _hold_lock(study, 1.5)
    started = time.monotonic()
    code, out, err = cli("--study", study, "import", "--wave", "1", wave)
    holder.wait()
    assert code == 0, err
    assert time.monotonic() - started >= 1.0
    assert "imported 40 rows" in out


HOLD_DATABASE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
time.sleep(30)
"""


def test_database_held_by_another_process_is_reported_with_its_pid(tmp_path):
    study = write_study(tmp_path / "study")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD_DATABASE), str(db_path(study))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StudyLockedError) as info:
            connect(study, read_only=True, timeout=0.5)
    finally:
        holder.kill()
        holder.wait()
    assert f"study is busy (held by PID {holder.pid})" in str(info.value)
