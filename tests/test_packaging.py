"""A plain (non-editable) wheel carries everything wavetool reads at run time — templates, e-mail templates,
migrations, the example config — and runs the whole pipeline without the source checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT, copy_sample

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("wavetool-*.whl")
    return built


def test_wheel_ships_templates_migrations_and_example_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "wavetool/templates/report.html.j2",
        "wavetool/templates/report.css",
        "wavetool/templates/charts.svg.j2",
        "wavetool/templates/strings/fr.toml",
        "wavetool/templates/email/subject.fr.txt",
        "wavetool/migrations/0001_core.sql",
        "wavetool/example_config.toml",
    ):
        assert required in names, required
    templates = {p for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert {f"wavetool/templates/{p.relative_to(ROOT / 'templates').as_posix()}" for p in templates} <= names


def test_installed_wheel_runs_the_pipeline_without_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    study = copy_sample(tmp_path / "study")
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import wavetool, sys; from wavetool.cli import main; "
        f"assert wavetool.__file__.startswith({str(site)!r}), wavetool.__file__; "
        "sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--study", str(study), "run", "--wave", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert len(list((study / "reports" / "wave-1").glob("*.pdf"))) == 4
    assert len(list((study / "outbox").glob("*.eml"))) == 4
