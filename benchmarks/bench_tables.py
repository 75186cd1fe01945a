"""Tables benchmark: every table of a 4-wave study (50,000 respondents a wave x 400 questions x 14 scopes)
with wavetool, against a straightforward pandas groupby script computing the same weighted frequencies
(n, weighted n and valid percent per wave, scope, question and code), in the same run.

Run ``python benchmarks/bench_tables.py`` (or ``make bench``). The first run writes the four .sav files
(seeded) and imports them with ``wavetool import`` into ``benchmarks/out/tables-study`` (cached).
Targets (issue 4): >= 20x faster than pandas (its wavetool < 1 s is printed for information only:
an absolute time depends on the machine). pandas is timed on data already in
memory (its loading from the study database is reported separately), which flatters pandas.
Targets (issue 12), ratios measured in the same run: the default tables (linearised variance, Wilson
intervals, BH adjustment, quality flags) take at most 1.15x the Kish tables as before issue 12
(variance = "kish", interval = "wald", adjust = "none", no flags), stay byte-identical across runs and
>= 20x faster than pandas. The two configurations alternate run by run, so load affects both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
WAVES, RESPONDENTS, QUESTIONS = 4, 50_000, 400
JURISDICTIONS = [f"J{i:02d}" for i in range(1, 11)]
SUBSCRIBERS = {"s-one": ["J01"], "s-two": ["J02", "J03"], "s-three": ["J04", "J05", "J06"]}
SCALE = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither",
    4: "Satisfied",
    5: "Very satisfied",
    8: "Don't know",
    9: "Refused",
}
TIME_TARGET, RATIO_TARGET, DESIGN_TARGET = 1.0, 20.0, 1.15
# Demographic banners for bench_banners (build_study(demographics=True) only): name -> (labels, shares).
# Code 9 is declared user-missing (not a banner column); the shares include it.
DEMOGRAPHICS = {
    "AGEGRP": ({1: "18-34", 2: "35-54", 3: "55-64", 4: "65+", 9: "Refused"}, [0.27, 0.34, 0.18, 0.19, 0.02]),
    "GENDER": ({1: "Man", 2: "Woman", 9: "Refused"}, [0.485, 0.495, 0.02]),
}


def config_text() -> str:
    lines = ['[study]\nname = "Tables benchmark"\n']
    lines += [f"[[waves]]\nnumber = {w}\n" for w in range(1, WAVES + 1)]
    lines.append("[jurisdictions]\n" + "".join(f'{j} = {{ en = "Jurisdiction {j}" }}\n' for j in JURISDICTIONS))
    for sub, codes in SUBSCRIBERS.items():
        listed = ", ".join(f'"{c}"' for c in codes)
        lines.append(
            f'[[subscribers]]\nid = "{sub}"\nname = "{sub}"\njurisdictions = [{listed}]\ncontacts = ["x@{sub}.example"]\n'
        )
    return "\n".join(lines)


def build_study(demographics: bool = False) -> Path:
    """The benchmark study (generated and imported once, then reused). ``demographics``: a separate copy
    with the DEMOGRAPHICS columns added after the 400 questions (drawn from their own seeded generator, so
    the questions' answers are the same as in the plain study); the plain study is unchanged."""
    study = OUT / f"tables-study-{RESPONDENTS}x{QUESTIONS}{'-demographics' if demographics else ''}"
    if (study / ".complete").exists():
        return study
    import shutil

    import pandas as pd
    import pyreadstat

    from wavetool.config import load_config
    from wavetool.ingest import import_wave
    from wavetool.status import init_study

    shutil.rmtree(study, ignore_errors=True)
    study.mkdir(parents=True)
    (study / "wavetool.toml").write_text(config_text(), encoding="utf-8")
    init_study(study)
    config = load_config(study)
    rng = np.random.default_rng(20200601)
    names = [f"Q{i}" for i in range(1, QUESTIONS + 1)]
    codes = np.array([1, 2, 3, 4, 5, 8, 9, np.nan])
    for wave in range(1, WAVES + 1):
        shares = np.array([0.08, 0.14, 0.26, 0.30, 0.15, 0.04, 0.02, 0.01]) + rng.normal(0, 0.004, 8)
        shares = np.abs(shares) / np.abs(shares).sum()
        columns: dict[str, object] = {
            "RESPID": np.arange(1, RESPONDENTS + 1, dtype=np.float64) + wave * 1_000_000,
            "PROV": rng.choice(np.array(JURISDICTIONS, dtype=object), size=RESPONDENTS),
            "WEIGHT": np.round(rng.lognormal(0.0, 0.4, size=RESPONDENTS), 6),
        }
        for name in names:
            columns[name] = codes[rng.choice(len(codes), size=RESPONDENTS, p=shares)]
        labels = {n: SCALE for n in names}
        missing = {n: [8, 9] for n in names}
        measure = {n: "ordinal" for n in names}
        if demographics:
            own = np.random.default_rng(19_000 + wave)
            for name, (scale, weights) in DEMOGRAPHICS.items():
                columns[name] = own.choice(np.array(list(scale), dtype=np.float64), size=RESPONDENTS, p=weights)
                labels[name], missing[name], measure[name] = scale, [9], "nominal"
        path = study / f"wave{wave}.sav"
        pyreadstat.write_sav(
            pd.DataFrame(columns),
            str(path),
            variable_value_labels=labels,
            missing_ranges=missing,
            variable_measure=measure,
        )
        import_wave(config, wave, [path])
        path.unlink()
    (study / ".complete").write_text("ok\n")
    return study


def scopes() -> list[str]:
    return ["all", *JURISDICTIONS, *SUBSCRIBERS]


def configs(study: Path) -> dict[str, object]:
    """The default tables (linearised, Wilson, BH, flags) and the Kish tables as before issue 12."""
    from dataclasses import replace

    from wavetool.config import load_config

    config = load_config(study)
    kish = replace(config.tables, variance="kish", interval="wald", adjust="none", cv_caution=0.0, cv_suppress=0.0)
    design = replace(config.tables, variance="linearized", interval="wilson", adjust="bh")
    return {"design": replace(config, tables=design), "kish": replace(config, tables=kish)}


def alternate(
    variants: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, tuple[list[float], list[float], Any, int]]:
    """Run each variant (a call returning a Tables) ``repeats`` times, the variants alternating so that a
    change of load hits all of them. Per variant: wall times, CPU times, the last result, and how many
    different CSV outputs the runs gave (1 = reproducible)."""
    import hashlib
    import io

    runs: dict[str, tuple[list[float], list[float], Any, set[str]]] = {n: ([], [], None, set()) for n in variants}
    for _ in range(repeats):
        for name, call in variants.items():
            times, cpu, _, outputs = runs[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            result = call()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            buffer = io.BytesIO()
            result.to_csv(buffer)
            outputs.add(hashlib.sha256(buffer.getvalue()).hexdigest())
            runs[name] = (times, cpu, result, outputs)
    return {name: (t, c, r, len(o)) for name, (t, c, r, o) in runs.items()}


def time_wavetool(study: Path, repeats: int) -> dict[str, tuple[list[float], list[float], object, int]]:
    """Per configuration (design, Kish): see :func:`alternate`."""
    from wavetool.stats import tabulate_waves
    from wavetool.store import read_store

    waves = list(range(1, WAVES + 1))
    with read_store(study) as con:
        tabulate_waves(configs(study)["kish"], [1], scopes=["all"], con=con)  # warm the caches
        variants = {
            name: (lambda config=config: tabulate_waves(config, waves, scopes=scopes(), con=con))
            for name, config in configs(study).items()
        }
        return alternate(variants, repeats)


def load_frames(study: Path) -> dict[int, object]:
    import duckdb

    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return {w: con.sql(f"SELECT * EXCLUDE (RESPID, PROV, WEIGHT) FROM wave_{w}").df() for w in range(1, WAVES + 1)}
    finally:
        con.close()


def pandas_tables(frames: dict[int, object]) -> object:
    """The straightforward script: melt each wave to long form, then for each scope group by question and
    code, summing respondents and weights; valid percent over codes 1-5."""
    import pandas as pd

    members = {"all": JURISDICTIONS, **{j: [j] for j in JURISDICTIONS}, **SUBSCRIBERS}
    out = []
    for wave, df in frames.items():
        long = df.drop(columns=["_id"]).melt(
            id_vars=["_jurisdiction", "_weight"], var_name="question", value_name="code"
        )
        for scope in scopes():
            part = long[long["_jurisdiction"].isin(members[scope])]
            freq = (
                part.groupby(["question", "code"], dropna=False)["_weight"]
                .agg(n="count", weighted_n="sum")
                .reset_index()
            )
            valid = freq["code"].isin([1, 2, 3, 4, 5])
            base = freq[valid].groupby("question")["weighted_n"].transform("sum")
            freq.loc[valid, "percent"] = 100 * freq.loc[valid, "weighted_n"] / base
            freq["wave"], freq["scope"] = wave, scope
            out.append(freq)
    return pd.concat(out, ignore_index=True)


def check_same(result: object, expected: object) -> int:
    """Compare wavetool's rows with pandas' on every valid code; return how many were compared."""
    rows = result.rows_table.to_pandas()
    rows = rows[(~rows["missing"]) & (rows["kind"] == "single")]
    exp = expected[expected["code"].isin([1, 2, 3, 4, 5])].copy()
    exp["code"] = exp["code"].astype(int).astype(str)
    merged = rows.merge(exp, on=["wave", "scope", "question", "code"], suffixes=("", "_pd"))
    assert len(merged) == len(exp) == len(rows), (len(merged), len(exp), len(rows))
    assert np.allclose(merged["weighted_n"], merged["weighted_n_pd"], rtol=1e-9)
    assert (merged["n"] == merged["n_pd"]).all()
    assert np.allclose(merged["percent"], merged["percent_pd"], rtol=1e-9)
    return len(merged)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else [])
    study = build_study()
    runs = time_wavetool(study, args.repeats)
    times, cpu, result, distinct = runs["design"]
    kish_times, kish_cpu, kish_result, kish_distinct = runs["kish"]
    start = time.perf_counter()
    frames = load_frames(study)
    load_time = time.perf_counter() - start
    start, start_cpu = time.perf_counter(), time.process_time()
    expected = pandas_tables(frames)
    pandas_time, pandas_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    compared = check_same(kish_result, expected)
    best, median = min(times), statistics.median(times)
    kish_median = statistics.median(kish_times)
    ratio = pandas_time / median
    design_ratio = median / kish_median
    print(f"tables: {WAVES} waves x {RESPONDENTS:,} respondents x {QUESTIONS} questions x {len(scopes())} scopes")
    print(
        f"  wavetool tabulate, linearised + Wilson + BH + flags: median {median:.3f} s, best {best:.3f} s over"
        f" {len(times)} runs -> {result.rows_table.num_rows:,} rows, {result.summaries_table.num_rows:,} summaries"
    )
    print(
        f"  wavetool tabulate, Kish + Wald (as before issue 12):  median {kish_median:.3f} s, best"
        f" {min(kish_times):.3f} s over {len(kish_times)} runs"
    )
    print(f"  pandas groupby (frequencies only):  {pandas_time:.3f} s (+ {load_time:.3f} s loading the waves)")
    print(
        f"  CPU time (all threads): wavetool median {statistics.median(cpu):.3f} s (Kish {statistics.median(kish_cpu):.3f} s),"
        f" pandas {pandas_cpu:.3f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        " (other work slows both)"
    )
    print(f"  same numbers on {compared:,} valid (wave, scope, question, code) cells")
    for name, count, n in (("design", distinct, len(times)), ("Kish", kish_distinct, len(kish_times))):
        print(
            f"  reproducible ({name}): {'yes, byte-identical CSV' if count == 1 else f'NO, {count} different CSVs'}"
            f" over {n} runs"
        )
    print(
        f"  ratio design / Kish tables: {design_ratio:.2f}x (target <= {DESIGN_TARGET:g}x):"
        f" {'met' if design_ratio <= DESIGN_TARGET else 'MISSED'}"
    )
    print(
        f"  ratio pandas / wavetool (design): {ratio:.1f}x (target >= {RATIO_TARGET:g}x): {'met' if ratio >= RATIO_TARGET else 'MISSED'}"
    )
    # issue 4's absolute time (< 1 s) depends on the machine: informational only, the targets are the ratios above
    print(f"  wavetool time {median:.3f} s (issue 4's < {TIME_TARGET:g} s is machine-dependent: no verdict)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
