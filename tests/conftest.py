"""Shared fixtures: the sample study imported once per test session, copied for each test; the delivery
fixtures of mailhelpers.py. Plain helpers live in helpers.py (no test imports another test module)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# The shared helpers, re-exported for modules that still import them from conftest.
from helpers import REALWORLD, ROOT, SAMPLE, SAMPLE_FILES, copy_sample, database_checksum  # noqa: F401
from mailhelpers import pdf_bytes, smtp_server, study  # noqa: F401  (delivery fixtures, see mailhelpers.py)
from wavetool.cli import main
from wavetool.config import load_config
from wavetool.ingest import import_wave


@pytest.fixture(scope="session")
def _imported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = copy_sample(tmp_path_factory.mktemp("sample") / "study")
    config = load_config(folder)
    for wave, rel in SAMPLE_FILES.items():
        import_wave(config, wave, [folder / rel])
    return folder


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


@pytest.fixture
def db_checksum():
    """``db_checksum(study)`` -> {table: checksum of its rows}, to assert a failed command changed nothing."""
    return database_checksum
