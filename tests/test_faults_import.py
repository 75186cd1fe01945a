"""kill -9 during an import: the wave is either fully there or absent, status works, and the import then
succeeds. Marked slow (make test and CI run it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from wavetool.store import read_store

pytestmark = pytest.mark.slow
ROWS = 120_000


def _big_wave(path: Path) -> None:
    rng = np.random.default_rng(7)
    data = {
        "RESPID": np.arange(1, ROWS + 1, dtype=float),
        "PROV": rng.choice(["ON", "QC", "BC", "AB"], ROWS),
        "WEIGHT": rng.uniform(0.5, 2.0, ROWS),
    }
    for i in range(1, 61):
        values = rng.integers(1, 6, ROWS).astype(float)
        values[rng.random(ROWS) < 0.05] = 8
        data[f"Q{i}"] = values
    labels = {f"Q{i}": {1: "Very dissatisfied", 5: "Very satisfied", 8: "Don't know"} for i in range(1, 61)}
    pyreadstat.write_sav(
        pd.DataFrame(data), str(path), variable_value_labels=labels, missing_ranges={f"Q{i}": [8] for i in range(1, 61)}
    )


def _import(study: Path, wave_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "wavetool", "--study", str(study), "import", "--wave", "1", str(wave_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wave_state(study: Path) -> int | None:
    with read_store(study) as con:
        meta = con.execute("SELECT rows FROM waves WHERE wave = 1").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        variables = con.execute("SELECT count(*) FROM variables WHERE wave = 1").fetchall()[0][0]
        if not meta:
            assert "wave_1" not in tables and variables == 0, "half-imported wave left behind"
            return None
        count = con.execute("SELECT count(*) FROM wave_1").fetchall()[0][0]
        assert count == meta[0][0] == ROWS and variables == 63
        return count


def test_kill_9_during_import_leaves_wave_absent_or_complete(sample_study, tmp_path):
    wave_file = tmp_path / "big.sav"
    _big_wave(wave_file)
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "wavetool", "init", str(reference)], check=True, capture_output=True)
    (reference / "wavetool.toml").write_text((sample_study / "wavetool.toml").read_text())
    started = time.monotonic()
    proc = _import(reference, wave_file)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    duration = time.monotonic() - started

    outcomes = []
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.97):
        study = tmp_path / f"kill-{fraction}"
        subprocess.run([sys.executable, "-m", "wavetool", "init", str(study)], check=True, capture_output=True)
        (study / "wavetool.toml").write_text((sample_study / "wavetool.toml").read_text())
        proc = _import(study, wave_file)
        time.sleep(duration * fraction)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        outcomes.append(_wave_state(study))
        status = subprocess.run(
            [sys.executable, "-m", "wavetool", "--study", str(study), "status", "--json"],
            capture_output=True,
            text=True,
        )
        assert status.returncode == 0, status.stderr
        rerun = _import(study, wave_file)
        assert rerun.wait(timeout=120) == 0, rerun.stderr.read()
        assert _wave_state(study) == ROWS
    assert None in outcomes  # at least one kill landed before the commit
