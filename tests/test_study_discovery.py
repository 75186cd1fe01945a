"""The study folder is found upward from the current directory (as git finds a repository), and a "not a
study" error names the folder it looked in."""

from __future__ import annotations

import os
import subprocess
import sys

from wavefiles import write_study

ENV = {k: v for k, v in os.environ.items() if k != "WAVETOOL_STUDY"} | {"COLUMNS": "200"}


def run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "wavetool", *args], cwd=cwd, capture_output=True, text=True, env=ENV)


def test_status_from_a_subfolder_finds_the_study(tmp_path):
    study = write_study(tmp_path / "study")
    deep = study / "inbox" / "wave-1"
    deep.mkdir(parents=True)
    done = run(deep, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert '"study": "Test study"' in done.stdout and str(study.resolve()) in done.stdout


def test_outside_any_study_the_error_names_the_folder(tmp_path):
    outside = tmp_path / "elsewhere" / "sub"
    outside.mkdir(parents=True)
    done = run(outside, "status")
    assert done.returncode == 78
    assert done.stderr.startswith(f"Error: {outside.resolve()}: not a study folder"), done.stderr
    assert "Traceback" not in done.stderr and "--study" in done.stderr


def test_explicit_study_that_is_not_one_names_its_config_path(tmp_path):
    done = run(tmp_path, "--study", "nowhere", "status")
    assert done.returncode == 78
    assert done.stderr.startswith(f"Error: {(tmp_path / 'nowhere' / 'wavetool.toml').resolve()}: no study"), done.stderr
