"""Two processes at once: `wavetool tabulate` started over and over while `import --wave 2 --replace` swaps
a ~150,000-row wave in and out in another process.

Every tabulate either succeeds with the old wave or the new one, entirely (its Q1 counts and weighted
percents equal an independent pandas computation on one of the two files), or exits 75 saying the study is
busy; never a traceback or another exit code. Afterwards the database is consistent. Marked slow.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from helpers import SAMPLE

pytestmark = pytest.mark.slow

COPIES = 63  # 2,400 sample respondents x 63 = 151,200 rows
TABULATE_LOOPS = 2


def big_wave_2(path: Path) -> pd.DataFrame:
    """The sample's wave 2 repeated to 151,200 respondents with fresh ids and a different Q1, written with
    the same dictionary (labels, value labels, missing values, formats), so the drift review still passes."""
    frame, meta = pyreadstat.read_sav(str(SAMPLE / "inbox/wave-2/wave2.zsav"), user_missing=True)
    big = pd.concat([frame] * COPIES, ignore_index=True)
    big["RESPID"] = 2_000_000 + np.arange(len(big), dtype=float)
    rng = np.random.default_rng(2020)
    big["Q1"] = rng.choice(
        [1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 9.0, np.nan], len(big), p=[0.1, 0.1, 0.2, 0.3, 0.2, 0.05, 0.03, 0.02]
    )
    pyreadstat.write_sav(
        big,
        str(path),
        column_labels=meta.column_names_to_labels,
        variable_value_labels=meta.variable_value_labels,
        missing_ranges=meta.missing_ranges,
        variable_measure=meta.variable_measure,
        variable_format=meta.original_variable_types,
        variable_display_width=meta.variable_display_width,
    )
    return big


def expected_q1(frame: pd.DataFrame) -> dict[str, tuple[int, float, float | None]]:
    """{code: (n, weighted n, weighted % of valid answers)} for Q1, computed with pandas from the file's rows."""
    codes = frame["Q1"].map(lambda v: "." if math.isnan(v) else str(int(v)))
    weights = frame["WEIGHT"]
    valid_total = weights[frame["Q1"].between(1, 5)].sum()
    result = {}
    for code in sorted(set(codes)):
        chosen = codes == code
        weighted = float(weights[chosen].sum())
        percent = 100 * weighted / valid_total if code in {"1", "2", "3", "4", "5"} else None
        result[code] = (int(chosen.sum()), weighted, percent)
    return result


def tabulated_q1(stdout: str) -> dict[str, tuple[int, float, float | None]]:
    rows = [r for r in json.loads(stdout)["rows"] if r["question"] == "Q1" and r["scope"] == "all"]
    return {r["code"]: (r["n"], r["weighted_n"], r["percent"] if not r["missing"] else None) for r in rows}


def same(got: dict, want: dict) -> bool:
    if got.keys() != want.keys():
        return False
    for code, (n, weighted, percent) in want.items():
        g_n, g_weighted, g_percent = got[code]
        if g_n != n or not math.isclose(g_weighted, weighted, rel_tol=1e-9):
            return False
        if (percent is None) != (g_percent is None) or (percent is not None and not math.isclose(g_percent, percent)):
            return False
    return True


def wavetool(study: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wavetool", "--study", str(study), *args], capture_output=True, text=True, timeout=300
    )


def test_tabulate_during_a_large_replacing_import_reads_old_or_new_wave_or_exits_75(imported_study, tmp_path):
    study = imported_study
    old_file = SAMPLE / "inbox/wave-2/wave2.zsav"
    new_file = tmp_path / "wave2-large.sav"
    old = expected_q1(pyreadstat.read_sav(str(old_file), user_missing=True)[0])
    new = expected_q1(big_wave_2(new_file))
    assert sum(v[0] for v in new.values()) == 2400 * COPIES

    tabulate = ("tabulate", "--wave", "2", "--question", "Q1", "--format", "json")
    before = wavetool(study, *tabulate)
    assert before.returncode == 0 and same(tabulated_q1(before.stdout), old), before.stderr

    results: list[tuple[float, float, subprocess.CompletedProcess]] = []
    stop = threading.Event()

    def keep_tabulating() -> None:
        while not stop.is_set():
            started = time.monotonic()
            done = wavetool(study, *tabulate)
            results.append((started, time.monotonic(), done))

    loops = [threading.Thread(target=keep_tabulating) for _ in range(TABULATE_LOOPS)]
    for loop in loops:
        loop.start()
    imports = []
    try:
        time.sleep(1.0)
        for source in (new_file, old_file, new_file):  # swap in, out and in again: ends with the large wave
            started = time.monotonic()
            done = wavetool(study, "import", "--wave", "2", "--replace", str(source))
            imports.append((started, time.monotonic()))
            assert done.returncode == 0, done.stderr
            assert "replaced" in done.stdout
    finally:
        stop.set()
        for loop in loops:
            loop.join(timeout=300)

    outcomes = {"old": 0, "new": 0, "busy": 0}
    for _, _, done in results:
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
        if done.returncode == 75:
            assert "study is busy (held by PID " in done.stderr, done.stderr
            outcomes["busy"] += 1
            continue
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
        got = tabulated_q1(done.stdout)
        assert same(got, old) or same(got, new), f"a mix of the old and the new wave 2: {got}"
        outcomes["old" if same(got, old) else "new"] += 1
    overlapping = [r for r in results if any(r[0] < end and r[1] > start for start, end in imports)]
    assert len(overlapping) >= 3, (len(overlapping), outcomes)

    after = wavetool(study, *tabulate)
    assert after.returncode == 0 and same(tabulated_q1(after.stdout), new), after.stderr
    status = wavetool(study, "status", "--json")
    assert status.returncode == 0, status.stderr
    waves = {w["wave"]: w for w in json.loads(status.stdout)["waves"]}
    assert waves[2]["rows"] == 2400 * COPIES and waves[2]["review_status"] == "approved"
    assert [f["file_name"] for f in waves[2]["files"]] == [new_file.name]
    assert {w: waves[w]["rows"] for w in (1, 3, 4)} == {1: 3000, 3: 4200, 4: 5200}
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        for wave, meta in waves.items():
            (count,) = con.execute(f"SELECT count(*) FROM wave_{wave}").fetchall()[0]
            assert count == meta["rows"]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {t for t in tables if re.fullmatch(r"wave_\d+", t)} == {"wave_1", "wave_2", "wave_3", "wave_4"}
        ids = con.execute("SELECT count(DISTINCT _id), min(_id), max(_id) FROM wave_2").fetchall()[0]
        assert ids == (2400 * COPIES, "2000000", "2151199")
    finally:
        con.close()
