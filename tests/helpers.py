"""Test helpers shared by the test modules (import them from here, never from another test module): the
sample study's paths, the real-world SPSS files, a fresh copy of the sample study, a database checksum."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from wavetool.status import init_study

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SAMPLE_FILES = {
    1: "inbox/wave-1/wave1.sav",
    2: "inbox/wave-2/wave2.zsav",
    3: "inbox/wave-3/wave3.por",
    4: "inbox/wave-4/wave4.csv",
}
REALWORLD = ROOT.parent / "shared" / "realworld-spss"


def copy_sample(dest: Path) -> Path:
    """A fresh study folder holding the sample config and inbox, with an empty database."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / "wavetool.toml", dest / "wavetool.toml")
    shutil.copytree(SAMPLE / "inbox", dest / "inbox")
    init_study(dest)
    return dest


def database_checksum(study: Path) -> dict[str, str]:
    """{table: md5 of all its rows (order-independent)} for every table of a study database."""
    con = duckdb.connect(str(Path(study) / "wavetool.duckdb"), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {
            name: con.execute(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::VARCHAR), ',' ORDER BY md5(t::VARCHAR))), '') FROM \"{name}\" t"
            ).fetchall()[0][0]
            for name in names
        }
    finally:
        con.close()
