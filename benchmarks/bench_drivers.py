"""Drivers benchmark: the drivers of satisfaction for every scope and wave of the tables benchmark's study
(4 waves x 50,000 respondents x 400 questions x 14 scopes; built by ``bench_tables.build_study``), against
the time of all the tables of the same study, measured in the same run.

Target (issue 12): drivers for every scope and wave take under 20 % of the tables' time. Two measures,
each with its verdict: as ``wavetool run`` computes them (one read of the answers per wave, summed per
design cell in numpy; the attributes' top-2 boxes taken from the tables just made), and alone as
``wavetool drivers`` does (the same read also sums each attribute's valid and top-box answers per design
cell, from which the top-2 boxes and the tables' withholding follow). The study's answers are independent draws, so the
importances are noise; the work is the same as on real data. Run ``python benchmarks/bench_drivers.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tables import QUESTIONS, RESPONDENTS, WAVES, build_study, scopes

ATTRIBUTES = 10  # Q2..Q11 explain Q1: the size of a typical service-attribute battery
RATIO_TARGET = 0.20


def _timed(function, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=200, help="bootstrap replicates for the extra measure")
    args = parser.parse_args(argv if argv is not None else [])
    from wavetool.config import DriversConfig, load_config
    from wavetool.stats import drivers, tabulate_waves
    from wavetool.store import read_store

    study = build_study()
    config = load_config(study)
    spec = DriversConfig(outcome="Q1", attributes=tuple(f"Q{i}" for i in range(2, ATTRIBUTES + 2)))
    config = replace(config, drivers=spec)
    waves = list(range(1, WAVES + 1))
    with read_store(study) as con:
        tables_times, tables = _timed(lambda: tabulate_waves(config, waves, scopes=scopes(), con=con), args.repeats)
        alone_times, results = _timed(
            lambda: [drivers(config, w, scopes=scopes(), con=con) for w in waves], args.repeats
        )
        given_times, _ = _timed(
            lambda: [drivers(config, w, scopes=scopes(), con=con, tables=tables) for w in waves], args.repeats
        )
        boot = replace(config, drivers=replace(spec, replicates=args.replicates))
        boot_times, _ = _timed(lambda: [drivers(boot, w, scopes=scopes(), con=con) for w in waves], 1)
    tables_median = statistics.median(tables_times)
    alone, given = statistics.median(alone_times), statistics.median(given_times)
    ratio = alone / tables_median
    rows = sum(r.table.num_rows for r in results)
    skipped = sum(len(r.skipped) for r in results)
    print(
        f"drivers: {WAVES} waves x {RESPONDENTS:,} respondents x {QUESTIONS} questions x {len(scopes())} scopes, "
        f"outcome Q1 on {ATTRIBUTES} attributes"
    )
    print(f"  all tables (tabulate, every question):  median {tables_median:.3f} s over {len(tables_times)} runs")
    print(f"  drivers, every scope and wave (alone):  median {alone:.3f} s -> {rows} rows, {skipped} scopes skipped")
    print(f"  drivers given the tables (as in `run`): median {given:.3f} s")
    print(f"  drivers with {args.replicates} bootstrap replicates (alone): {boot_times[0]:.3f} s (no target)")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work slows both)")
    given_ratio = given / tables_median
    print(
        f"  ratio drivers / tables, as `run` computes them (the tables given): {given_ratio:.3f} "
        f"(target < {RATIO_TARGET:g}): {'met' if given_ratio < RATIO_TARGET else 'MISSED'}"
    )
    print(
        f"  ratio drivers / tables, alone (the {ATTRIBUTES} attributes' top-2 boxes from the same scan): {ratio:.3f} "
        f"(target < {RATIO_TARGET:g}): {'met' if ratio < RATIO_TARGET else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
