"""Banner tables benchmark: every table of the tables benchmark study (4 waves x 50,000 respondents x 400
questions x 14 scopes) with two banners, against the same tables without banners and against a pandas
groupby script computing the same banner column percents, in the same run; and one subscriber's data
book against the time its tables took.

The study is ``bench_tables.build_study(demographics=True)``: the tables benchmark's 400 questions (the
same answers) plus an age group (AGEGRP: 4 codes, 9 = refused, user-missing) and a gender (GENDER: 2
codes, 9 = refused), so the banners are the issue's shape: Total + 4 + 2 = 7 columns. Both AGEGRP and
GENDER are also tabulated as questions, with and without banners (402 questions). What is timed:
``tabulate_waves`` for waves 1-4 and all 14 scopes, default [tables] methods (linearised variance,
Wilson intervals, BH adjustment, quality flags), without banners and with ``banners=["AGEGRP",
"GENDER"]`` (column tests Bonferroni-adjusted); the two alternate run by run, so a change of load hits
both alike. pandas: melt each wave, then per scope and banner group by (banner code, question, code)
summing respondents and weights, and a valid percent per column; it is timed on data already in memory,
and its percents and counts are checked against wavetool's on every banner cell both have.
Targets (issue 13): banner tables <= 2.5x the tables without banners, byte-identical CSV across runs,
>= 20x faster than pandas; the book written in less time than its tables took.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tables

BANNERS = ["AGEGRP", "GENDER"]
RATIO_MAX, PANDAS_MIN = 2.5, 20.0


def time_tables(config, con, repeats):
    """Per configuration (no banners, banners), alternating run by run: see bench_tables.alternate."""
    from wavetool.stats import tabulate_waves

    waves = list(range(1, bench_tables.WAVES + 1))
    tabulate_waves(config, [1], scopes=["all"], con=con)  # warm the caches
    variants = {
        name: (
            lambda banners=banners: tabulate_waves(
                config, waves, scopes=bench_tables.scopes(), con=con, banners=banners
            )
        )
        for name, banners in (("plain", None), ("banners", BANNERS))
    }
    return bench_tables.alternate(variants, repeats)


def pandas_banners(frames):
    """Banner column percents the straightforward way: melt each wave, then per scope and banner column
    group by question and code."""
    import pandas as pd

    members = {
        "all": bench_tables.JURISDICTIONS,
        **{j: [j] for j in bench_tables.JURISDICTIONS},
        **bench_tables.SUBSCRIBERS,
    }
    out = []
    for wave, df in frames.items():
        long = df.drop(columns=["_id"]).melt(
            id_vars=["_jurisdiction", "_weight", *[f"_b_{b}" for b in BANNERS]], var_name="question", value_name="code"
        )
        long = long[~long["question"].isin([f"_b_{b}" for b in BANNERS])]
        for scope in bench_tables.scopes():
            part = long[long["_jurisdiction"].isin(members[scope])]
            for banner in BANNERS:
                freq = (
                    part.groupby([f"_b_{banner}", "question", "code"], dropna=False)["_weight"]
                    .agg(n="count", weighted_n="sum")
                    .reset_index()
                    .rename(columns={f"_b_{banner}": "banner_code"})
                )
                freq = freq[freq["banner_code"].isin(banner_codes(banner))]
                valid = freq["code"].isin([1, 2, 3, 4, 5])
                base = freq[valid].groupby(["banner_code", "question"])["weighted_n"].transform("sum")
                freq.loc[valid, "percent"] = 100 * freq.loc[valid, "weighted_n"] / base
                freq["wave"], freq["scope"], freq["banner"] = wave, scope, banner
                out.append(freq)
    return pd.concat(out, ignore_index=True)


def banner_codes(banner: str) -> list[int]:
    """A banner's columns: its valid (not user-missing) codes."""
    return [code for code in bench_tables.DEMOGRAPHICS[banner][0] if code != 9]


def load_frames(study):
    import duckdb

    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        extra = ", ".join(f"{b} AS _b_{b}" for b in BANNERS)
        return {
            w: con.sql(f"SELECT * EXCLUDE (RESPID, PROV, WEIGHT), {extra} FROM wave_{w}").df()
            for w in range(1, bench_tables.WAVES + 1)
        }
    finally:
        con.close()


def check_same(result, expected) -> int:
    rows = result.rows_table.to_pandas()
    # pandas' groupby has no row for a code nobody in the column chose; wavetool shows it with n = 0
    rows = rows[(~rows["missing"]) & (rows["banner"] != "") & (rows["percent"].notna()) & (rows["n"] > 0)]
    exp = expected[expected["code"].isin([1, 2, 3, 4, 5])].copy()
    exp["code"] = exp["code"].astype(int).astype(str)
    exp["banner_code"] = exp["banner_code"].astype(int).astype(str)
    keys = ["wave", "scope", "banner", "banner_code", "question", "code"]
    merged = rows.merge(exp, on=keys, suffixes=("", "_pd"))
    assert len(merged) == len(rows), (len(merged), len(rows))
    assert np.allclose(merged["percent"], merged["percent_pd"], rtol=1e-9)
    assert (merged["n"] == merged["n_pd"]).all()
    return len(merged)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    from wavetool.config import load_config
    from wavetool.databook import write_databook
    from wavetool.store import read_store

    study = bench_tables.build_study(demographics=True)
    config = load_config(study)
    config = dataclasses.replace(config, banners=dataclasses.replace(config.banners, variables=tuple(BANNERS)))
    with read_store(study) as con:
        runs = time_tables(config, con, args.repeats)
        from wavetool.stats import tabulate

        start = time.perf_counter()
        book_tables = tabulate(config, bench_tables.WAVES, scopes=["s-two"], con=con, banners=BANNERS)
        book_tables_time = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_databook(config, book_tables, "s-two", Path(tmp) / "s-two.xlsx")
        book_time = time.perf_counter() - start
    plain, plain_cpu, plain_result, _ = runs["plain"]
    banner_times, banner_cpu, result, distinct = runs["banners"]
    frames = load_frames(study)
    start = time.perf_counter()
    expected = pandas_banners(frames)
    pandas_time = time.perf_counter() - start
    plain_m, banner_m = statistics.median(plain), statistics.median(banner_times)
    ratio, speedup = banner_m / plain_m, pandas_time / banner_m
    columns = 1 + sum(len(v["columns"]) for v in result.meta["banners"]["variables"])
    questions = len({q for q in plain_result.summaries_table.column("question").to_pylist()})
    print(
        f"banner tables: {bench_tables.WAVES} waves x {bench_tables.RESPONDENTS:,} x {questions} questions x {len(bench_tables.scopes())} scopes, banners {', '.join(BANNERS)} (Total + {columns - 1} = {columns} columns)"
    )
    print(
        f"  tables without banners: median {plain_m:.3f} s ({plain_result.rows_table.num_rows:,} rows); with banners: median {banner_m:.3f} s ({result.rows_table.num_rows:,} rows), over {len(plain)} alternating runs each"
    )
    print(
        f"  CPU time (all threads): without banners median {statistics.median(plain_cpu):.3f} s, with banners {statistics.median(banner_cpu):.3f} s (ratio {statistics.median(banner_cpu) / statistics.median(plain_cpu):.2f}x); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"  ratio banners / plain: {ratio:.2f}x (target <= {RATIO_MAX:g}x): {'met' if ratio <= RATIO_MAX else 'MISSED'}"
    )
    print(
        f"  pandas groupby (banner percents only): {pandas_time:.3f} s; ratio pandas / wavetool {speedup:.1f}x (target >= {PANDAS_MIN:g}x): {'met' if speedup >= PANDAS_MIN else 'MISSED'}"
    )
    compared = check_same(result, expected)
    print(
        f"  same numbers on {compared:,} banner cells; reproducible: {'yes, byte-identical CSV' if distinct == 1 else f'NO, {distinct} different CSVs'} over {len(banner_times)} runs"
    )
    print(
        f"  one subscriber's book (s-two, wave 4, {questions} questions): tables {book_tables_time:.3f} s, book {book_time:.3f} s -> ratio {book_time / book_tables_time:.2f} (target < 1): {'met' if book_time < book_tables_time else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
