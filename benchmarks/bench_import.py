"""Import benchmark: wavetool's whole import of a 200,000-row x 300-variable .sav against pyreadstat.

Run ``python benchmarks/bench_import.py`` (or ``make bench``). The first run generates the file (seeded,
cached under ``benchmarks/out/``). Each measurement runs in its own child process so its peak memory
(``ru_maxrss``) is its own. Targets (issue 2): wavetool's import takes less time than ``pyreadstat.read_sav``
alone (ratio < 1.0) and peaks under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ROWS, VARIABLES = 200_000, 300
JURISDICTIONS = ("NL", "PE", "NS", "NB", "QC", "ON", "MB", "SK", "AB", "BC", "YT", "NT", "NU")
SCALE = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither",
    4: "Satisfied",
    5: "Very satisfied",
    8: "Don't know",
    9: "Refused",
}
TIME_TARGET, MEMORY_TARGET_MB = 1.0, 1536


def bench_file(rows: int = ROWS, variables: int = VARIABLES) -> Path:
    """The benchmark .sav (generated once, seeded): RESPID, PROV, WEIGHT, COMMENT and 1-5 scale
    questions with value labels, 8/9 declared user-missing and ~1% system-missing."""
    path = OUT / f"bench_{rows}x{variables}.sav"
    if path.exists():
        return path
    import numpy as np
    import pandas as pd
    import pyreadstat

    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20200601)
    questions = [f"Q{i}" for i in range(1, variables - 3)]
    columns: dict[str, object] = {
        "RESPID": np.arange(1, rows + 1, dtype=np.float64) + 100000,
        "PROV": rng.choice(np.array(JURISDICTIONS, dtype=object), size=rows),
        "WEIGHT": np.round(rng.lognormal(0.0, 0.4, size=rows), 6),
    }
    codes = np.array([1, 2, 3, 4, 5, 8, 9, np.nan])
    shares = np.array([0.08, 0.14, 0.26, 0.30, 0.15, 0.04, 0.02, 0.01])
    for name in questions:
        columns[name] = codes[rng.choice(len(codes), size=rows, p=shares)]
    comments = np.array(["", "", "", "Très bien, merci", 'Staff were "great", thanks', "Trop long"], dtype=object)
    columns["COMMENT"] = comments[rng.integers(0, len(comments), size=rows)]
    frame = pd.DataFrame(columns)
    tmp = path.with_suffix(".tmp")
    pyreadstat.write_sav(
        frame,
        str(tmp),
        column_labels={n: f"Question {n[1:]} of the benchmark" for n in questions}
        | {"RESPID": "Respondent id", "PROV": "Province", "WEIGHT": "Final weight", "COMMENT": "Comment"},
        variable_value_labels={n: SCALE for n in questions} | {"PROV": {j: j for j in JURISDICTIONS}},
        missing_ranges={n: [8, 9] for n in questions},
        variable_measure={n: "ordinal" for n in questions},
        variable_format={n: "F1.0" for n in questions} | {"WEIGHT": "F8.6", "RESPID": "F8.0"},
    )
    tmp.rename(path)
    return path


def _study(path: Path) -> Path:
    study = OUT / "study"
    study.mkdir(parents=True, exist_ok=True)
    jurisdictions = "\n".join(f'{j} = {{ en = "{j}" }}' for j in JURISDICTIONS)
    (study / "wavetool.toml").write_text(
        f'[study]\nname = "Benchmark"\n\n[[waves]]\nnumber = 1\n\n[jurisdictions]\n{jurisdictions}\n', encoding="utf-8"
    )
    return study


# Each child prints one JSON line: the seconds of the measured call and the process's peak RSS.
_WAVETOOL = """
import resource, shutil, time, json, sys
from pathlib import Path
from wavetool.config import load_config
from wavetool.status import init_study
from wavetool.ingest import import_wave
study, file = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("wavetool.duckdb", "wavetool.duckdb.wal"):
    (study / name).unlink(missing_ok=True)
init_study(study)
config = load_config(study)
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage.ru_utime + usage.ru_stime
start = time.perf_counter()
result = import_wave(config, 1, [file])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu0, "peak_kb": usage.ru_maxrss,
                  "rows": result.rows, "columns": result.columns, "reader": result.files[0]["reader"]}))
"""

_PYREADSTAT = """
import resource, time, json, sys
import pyreadstat
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage.ru_utime + usage.ru_stime
start = time.perf_counter()
frame, meta = pyreadstat.read_sav(sys.argv[1])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu0, "peak_kb": usage.ru_maxrss,
                  "rows": len(frame), "columns": frame.shape[1]}))
"""


def _measure(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Generate (once) and import the benchmark file; print times, peak memory and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measurement, interleaved (best time is kept)"
    )
    args = parser.parse_args(argv)
    path = bench_file()
    study = _study(path)
    print(f"bench_import: {path.name} ({path.stat().st_size / 1e6:.0f} MB, {ROWS:,} rows x {VARIABLES} variables)")
    ours_runs, base_runs = [], []
    for _ in range(args.repeat):  # interleaved, so a busy machine slows both sides alike
        ours_runs.append(_measure(_WAVETOOL, str(study), str(path)))
        base_runs.append(_measure(_PYREADSTAT, str(path)))
    ours = min(ours_runs, key=lambda r: r["seconds"])
    base = min(base_runs, key=lambda r: r["seconds"])
    assert ours["rows"] == base["rows"] == ROWS and ours["columns"] == base["columns"] == VARIABLES
    ratio = ours["seconds"] / base["seconds"]
    cpu_ratio = min(r["cpu"] for r in ours_runs) / min(r["cpu"] for r in base_runs)
    peak_mb = max(r["peak_kb"] for r in ours_runs) / 1024
    print(
        f"  wavetool import (codebook + data into DuckDB, {ours['reader']}): {ours['seconds']:.2f} s wall,"
        f" {min(r['cpu'] for r in ours_runs):.2f} s CPU, peak {peak_mb:.0f} MB"
    )
    print(
        f"  pyreadstat.read_sav (baseline):                 {base['seconds']:.2f} s wall,"
        f" {min(r['cpu'] for r in base_runs):.2f} s CPU, peak {max(r['peak_kb'] for r in base_runs) / 1024:.0f} MB"
    )
    ours_walls = ", ".join(f"{r['seconds']:.1f}" for r in ours_runs)
    base_walls = ", ".join(f"{r['seconds']:.1f}" for r in base_runs)
    print(
        f"  best of {args.repeat} interleaved runs each; all wall times: wavetool {ours_walls}; pyreadstat {base_walls}"
    )
    time_ok, memory_ok = ratio < TIME_TARGET, peak_mb < MEMORY_TARGET_MB
    print(
        f"  ratio wavetool / pyreadstat: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target < {TIME_TARGET}) {'OK' if time_ok else 'MISSED'}"
    )
    print(f"  peak memory: {peak_mb:.0f} MB (target < {MEMORY_TARGET_MB} MB) {'OK' if memory_ok else 'MISSED'}")
    return 0 if time_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
