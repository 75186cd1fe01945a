"""Shared fixtures: the sample study imported once per test session, copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wavetool.cli import main
from wavetool.config import load_config
from wavetool.ingest import import_wave
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


@pytest.fixture(scope="session")
def _imported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    study = copy_sample(tmp_path_factory.mktemp("sample") / "study")
    config = load_config(study)
    for wave, rel in SAMPLE_FILES.items():
        import_wave(config, wave, [study / rel])
    return study


@pytest.fixture
def sample_study(tmp_path: Path) -> Path:
    """A study folder with the sample config and inbox and an empty database."""
    return copy_sample(tmp_path / "study")


@pytest.fixture
def imported_study(tmp_path: Path, _imported_template: Path) -> Path:
    """A study folder with all four sample waves imported (a private copy per test)."""
    dest = tmp_path / "study"
    shutil.copytree(_imported_template, dest)
    (dest / ".wavetool.lock").unlink(missing_ok=True)
    return dest


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in-process: ``cli("--study", d, "status")`` -> (exit code, stdout, stderr).

    Output is captured (not a terminal), as under cron; COLUMNS is pinned wide so a test runner's own
    terminal width never folds a table cell the test looks for."""
    monkeypatch.setenv("COLUMNS", "300")

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def database_checksum(study: Path) -> dict[str, str]:
    """{table: md5 of all its rows (order-independent)} for every table of a study database."""
    import duckdb

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


@pytest.fixture
def db_checksum():
    """``db_checksum(study)`` -> {table: checksum of its rows}, to assert a failed command changed nothing."""
    return database_checksum
