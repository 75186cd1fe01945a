"""The fast reader (polars-readstat) and pyreadstat give the same table — every value, user-missing codes
included, row order, types — on the sample waves and on real-world SPSS files nobody on this project wrote;
and both agree with a plain pyreadstat read done here, independently of wavetool's code."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pyreadstat
import pytest

from helpers import REALWORLD
from wavetool.ingest.spss import load_spss, read_spss_codebook
from wavetool.ingest.staging import Staging, canonical_select, read_staged, staged_schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = [
    ROOT / "sample_data/inbox/wave-1/wave1.sav",
    ROOT / "sample_data/inbox/wave-2/wave2.zsav",
    ROOT / "sample_data/inbox/wave-3/wave3.por",
    ROOT / "sample_data/inbox/wave-1/custom-quebec.sav",
]
REAL = sorted(p for p in REALWORLD.glob("*") if p.suffix in (".sav", ".zsav", ".por")) if REALWORLD.exists() else []


def stage(staging: Staging, table: str, path: Path, only: str | None = None) -> str:
    """Decode ``path`` with one reader (or wavetool's choice) into DuckDB table ``table``, in canonical types."""
    codebook, expected = read_spss_codebook(path)
    reader, staged = load_spss(staging.path(table), path, codebook, expected, staging.folder, only=only)
    staging.con.register("staged", read_staged(staged.path))
    staging.con.execute(
        f"CREATE TABLE {table} AS SELECT {canonical_select(staged_schema(staged.path), codebook)} FROM staged"
    )
    staging.con.unregister("staged")
    return reader


def stage_both(path: Path) -> tuple[duckdb.DuckDBPyConnection, Staging, dict]:
    staging = Staging()
    assert stage(staging, "fast", path, only="polars-readstat") == "polars-readstat"
    assert stage(staging, "slow", path, only="pyreadstat") == "pyreadstat"
    return staging.con, staging, read_spss_codebook(path)[0].variables


def assert_same_table(path: Path) -> None:
    con, staging, variables = stage_both(path)
    try:
        fast_types = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'fast' ORDER BY column_index"
        ).fetchall()
        slow_types = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'slow' ORDER BY column_index"
        ).fetchall()
        assert fast_types == slow_types
        assert [name for name, _ in fast_types] == list(variables)
        n_fast, n_slow = (con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("fast", "slow"))
        assert n_fast == n_slow > 0
        # Row by row, in file order; IS DISTINCT FROM treats two NULLs as equal and NULL vs a code as different.
        condition = " OR ".join(f'f."{n}" IS DISTINCT FROM s."{n}"' for n in variables)
        differing = con.execute(
            f"SELECT f.rowid FROM fast f JOIN slow s ON f.rowid = s.rowid WHERE {condition} LIMIT 5"
        ).fetchall()
        assert differing == [], f"{path.name}: rows {differing} differ between readers"
    finally:
        staging.close()


def assert_matches_plain_pyreadstat(path: Path) -> None:
    """Numeric, non-date columns equal what pyreadstat itself returns with user_missing=True, read here."""
    read = pyreadstat.read_por if path.suffix == ".por" else pyreadstat.read_sav
    kwargs = {} if path.suffix == ".por" else {"user_missing": True}
    frame, _ = read(str(path), disable_datetime_conversion=True, **kwargs)
    con, staging, variables = stage_both(path)
    try:
        for name, var in variables.items():
            if var.type != "numeric":
                continue
            got = [r[0] for r in con.execute(f'SELECT "{name}" FROM fast ORDER BY rowid').fetchall()]
            want = [None if isinstance(v, float) and math.isnan(v) else float(v) for v in frame[name]]
            assert got == want, f"{path.name}: column {name}"
    finally:
        staging.close()


SAV_SAMPLE = [p for p in SAMPLE if p.suffix != ".por"]
SAV_REAL = [p for p in REAL if p.suffix != ".por"]
POR = [p for p in SAMPLE + REAL if p.suffix == ".por"]


@pytest.mark.parametrize("path", SAV_SAMPLE, ids=[p.name for p in SAV_SAMPLE])
def test_readers_agree_on_the_sample_waves(path):
    assert_same_table(path)
    assert_matches_plain_pyreadstat(path)


@pytest.mark.skipif(not REAL, reason=f"{REALWORLD} is absent (the shared real-world SPSS files)")
@pytest.mark.parametrize("path", SAV_REAL, ids=[p.name for p in SAV_REAL])
def test_readers_agree_on_real_world_files(path):
    assert_same_table(path)
    assert_matches_plain_pyreadstat(path)


@pytest.mark.parametrize("path", POR, ids=[p.name for p in POR])
def test_por_values_are_exact_and_keep_user_missing_codes(path):
    """A .por is read by pyreadstat (exact base-30 decoding) from a copy without its missing-value records:
    every value pyreadstat returns for the original is there unchanged, and where the original read gives a
    blank only because the code was declared missing, the code itself is there (as polars-readstat, which
    ignores the declarations, also sees it)."""
    staging = Staging()
    try:
        codebook, _ = read_spss_codebook(path)
        con = staging.con
        assert stage(staging, "ours", path) == "pyreadstat"
        stage(staging, "fast", path, only="polars-readstat")
        plain, _ = pyreadstat.read_por(str(path), disable_datetime_conversion=True)
        declared = 0
        for name, var in codebook.variables.items():
            if var.type != "numeric":
                continue
            ours = [r[0] for r in con.execute(f'SELECT "{name}" FROM ours ORDER BY rowid').fetchall()]
            fast = [r[0] for r in con.execute(f'SELECT "{name}" FROM fast ORDER BY rowid').fetchall()]
            for mine, theirs, raw in zip(ours, plain[name], fast, strict=True):
                if not math.isnan(theirs):
                    assert mine == theirs, name
                elif mine is not None:
                    assert var.is_missing_code(mine) and mine == raw, name
                    declared += 1
                else:
                    assert raw is None, name
        if any(v.missing for v in codebook.variables.values()):
            assert declared > 0
    finally:
        staging.close()


def test_user_missing_codes_are_values_not_blanks_in_the_fast_reader():
    """The sample wave 1 declares 8 and 9 missing on Q1: the fast reader must return them as 8 and 9."""
    con, staging, variables = stage_both(SAMPLE[0])
    try:
        assert [s.code for s in variables["Q1"].missing] == ["8", "9"]
        counts = dict(
            con.execute("SELECT Q1, count(*) FROM fast WHERE Q1 IN (8, 9) OR Q1 IS NULL GROUP BY 1").fetchall()
        )
        frame, _ = pyreadstat.read_sav(str(SAMPLE[0]), user_missing=True, usecols=["Q1"])
        assert counts[8.0] == int((frame["Q1"] == 8).sum()) > 0
        assert counts[9.0] == int((frame["Q1"] == 9).sum()) > 0
        assert counts[None] == int(frame["Q1"].isna().sum()) > 0
    finally:
        staging.close()


@pytest.mark.skipif(not (REALWORLD / "haven__datetime.sav").exists(), reason="real-world SPSS files absent")
def test_haven_datetime_reads_its_dates(tmp_path, cli):
    """pyreadstat.read_sav raises OverflowError on this file by default; wavetool reads it (dates as dates, a
    far-future timestamp kept, a TIME as seconds) and, as a wave, fails with a plain validation error."""
    path = REALWORLD / "haven__datetime.sav"
    con, staging, variables = stage_both(path)
    try:
        assert (variables["date"].type, variables["date.posix"].type, variables["time"].type) == (
            "date",
            "datetime",
            "numeric",
        )
        dates = con.execute(
            'SELECT CAST("date" AS VARCHAR), year("date.posix"), "time" FROM fast ORDER BY rowid'
        ).fetchall()
        assert dates[0][0] == "2014-09-22" and dates[0][1] > 100_000 and dates[0][2] == pytest.approx(43870.09)
    finally:
        staging.close()
    from wavefiles import write_study

    study = write_study(tmp_path / "study")
    code, out, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 65 and "Traceback" not in err
    assert err.startswith(f"Error: {path}: no id column 'RESPID'")
