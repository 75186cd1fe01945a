"""Every statistic of `stats.tabulate` against an independent pure-Python computation on the same rows.

The study is built here from a real .sav written by pyreadstat and imported by wavetool; the expected
values are computed with plain loops over the DataFrame the .sav was written from, never from DuckDB.
Edges covered: weights, user-missing codes (8, 9), system-missing, an unlabelled valid code, suppression at
n = min_base - 1 and n = min_base, a jurisdiction of one respondent, a question nobody answered, equal
weights (weighted = unweighted) and --unweighted.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from edgestudy import CONFIG, MIN_BASE, MISSING, Z95, make_wave, write_sav
from wavetool.config import load_config
from wavetool.errors import ConfigError, DriftGateError, InputMissingError
from wavetool.ingest import import_wave
from wavetool.stats import tabulate
from wavetool.status import init_study
from wavetool.store import write_store


def build_study(root: Path, equal_weights: bool = False) -> tuple[Path, dict[int, pd.DataFrame]]:
    root.mkdir(parents=True)
    (root / "wavetool.toml").write_text(CONFIG, encoding="utf-8")
    init_study(root)
    config = load_config(root)
    frames = {}
    for wave in (1, 2):
        df = make_wave(wave, seed=wave * 7 + int(equal_weights), equal_weights=equal_weights)
        path = root / f"wave{wave}.sav"
        write_sav(df, path)
        import_wave(config, wave, [path])
        frames[wave] = df
    return root, frames


@pytest.fixture(scope="module")
def edge_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, pd.DataFrame]]:
    return build_study(tmp_path_factory.mktemp("edge") / "study")


# --- the independent computation ------------------------------------------------------------------


def members(df: pd.DataFrame, scope: str) -> list[dict]:
    provs = {"all": {"AA", "BB", "CC", "DD"}, "pair": {"BB", "CC"}}.get(scope, {scope})
    return [r for r in df.to_dict("records") if r["PROV"] in provs]


def is_valid(x: float, missing: tuple) -> bool:
    return not (x is None or (isinstance(x, float) and math.isnan(x)) or x in missing)


def expected(records: list[dict], q: str, missing: tuple, top: tuple, bottom: tuple, weighted: bool = True) -> dict:
    valid = [(r[q], r["WEIGHT"] if weighted else 1.0) for r in records if is_valid(r[q], missing)]
    n = len(valid)
    total = sum(w for _, w in valid)
    total2 = sum(w * w for _, w in valid)
    out: dict = {"n": n, "W": total, "counts": {}, "wcounts": {}, "percent": {}}
    for x, w in valid:
        out["counts"][x] = out["counts"].get(x, 0) + 1
        out["wcounts"][x] = out["wcounts"].get(x, 0.0) + w
    for r in records:
        x = r[q]
        if not is_valid(x, missing):
            key = "." if x is None or (isinstance(x, float) and math.isnan(x)) else x
            out["counts"][key] = out["counts"].get(key, 0) + 1
            out["wcounts"][key] = out["wcounts"].get(key, 0.0) + (r["WEIGHT"] if weighted else 1.0)
    if n == 0:
        return out
    out["neff"] = total * total / total2
    for x in out["wcounts"]:
        if x != "." and x not in missing:
            out["percent"][x] = 100 * out["wcounts"][x] / total
    if top:
        p = sum(w for x, w in valid if x in top) / total
        out["p_top"] = p
        out["p_bottom"] = sum(w for x, w in valid if x in bottom) / total
        mean = sum(w * x for x, w in valid) / total
        out["mean"] = mean
        out["sd"] = math.sqrt(sum(w * (x - mean) ** 2 for x, w in valid) / total * n / (n - 1)) if n > 1 else None
    return out


def verdict(d: float, se: float) -> str:
    if d == 0:
        return ""
    if se == 0 or abs(d) / se > Z95:
        return "higher" if d > 0 else "lower"
    return ""


# --- tests --------------------------------------------------------------------------------------


def test_frequencies_percents_cis_boxes_means_and_tests(edge_study):
    root, frames = edge_study
    tables = tabulate(load_config(root), 2, scopes=["all", "AA", "CC", "pair"])
    assert tables.rows and list(tables.rows[0])[:9] == [
        "wave",
        "scope",
        "question",
        "code",
        "label",
        "missing",
        "n",
        "weighted_n",
        "percent",
    ]
    checked = 0
    for scope in ("all", "AA", "CC", "pair"):
        mine = members(frames[2], scope)
        exp = expected(mine, "Q1", MISSING, (4.0, 5.0), (1.0, 2.0))
        s = tables.summary(2, scope, "Q1")
        assert s["kind"] == "single" and not s["suppressed"] and s["base_n"] == exp["n"]
        assert s["base_weighted"] == pytest.approx(exp["W"], rel=1e-12)
        assert s["n_eff"] == pytest.approx(exp["neff"], rel=1e-12)
        assert s["topbox"] == pytest.approx(100 * exp["p_top"], rel=1e-12)
        assert s["bottombox"] == pytest.approx(100 * exp["p_bottom"], rel=1e-12)
        half = Z95 * math.sqrt(exp["p_top"] * (1 - exp["p_top"]) / exp["neff"])
        assert s["topbox_ci_low"] == pytest.approx(max(0, 100 * (exp["p_top"] - half)), rel=1e-9, abs=1e-9)
        assert s["topbox_ci_high"] == pytest.approx(min(100, 100 * (exp["p_top"] + half)), rel=1e-9)
        assert s["mean"] == pytest.approx(exp["mean"], rel=1e-12)
        assert s["sd"] == pytest.approx(exp["sd"], rel=1e-12)
        assert s["mean_ci_low"] == pytest.approx(exp["mean"] - Z95 * exp["sd"] / math.sqrt(exp["neff"]), rel=1e-12)
        rows = {r["code"]: r for r in tables.question_rows(2, scope, "Q1")}
        for code, count in exp["counts"].items():
            key = "." if code == "." else str(int(code))
            assert rows[key]["n"] == count
            assert rows[key]["weighted_n"] == pytest.approx(exp["wcounts"][code], rel=1e-12)
            assert rows[key]["missing"] is (code == "." or code in MISSING)
            if code in exp["percent"]:
                p = exp["percent"][code] / 100
                assert rows[key]["percent"] == pytest.approx(100 * p, rel=1e-12)
                assert rows[key]["ci_high"] == pytest.approx(
                    min(100, 100 * (p + Z95 * math.sqrt(p * (1 - p) / exp["neff"]))), rel=1e-9
                )
                assert rows[key]["n_eff"] == pytest.approx(exp["neff"], rel=1e-12)
            else:
                assert rows[key]["percent"] is None and rows[key]["ci_low"] is None
        assert sum(r["percent"] for r in rows.values() if r["percent"] is not None) == pytest.approx(100.0)
        # labelled codes nobody chose still get a row, with zero counts
        assert set(rows) >= {"1", "2", "3", "4", "5", "8", "9", "."}
        checked += 1
    assert checked == 4


def test_benchmark_and_previous_wave_tests(edge_study):
    root, frames = edge_study
    tables = tabulate(load_config(root), 2, scopes=["AA", "pair", "all"])
    for scope in ("AA", "pair"):
        inside = members(frames[2], scope)
        provs = {"pair": {"BB", "CC"}}.get(scope, {scope})
        rest = [r for r in frames[2].to_dict("records") if r["PROV"] not in provs]
        prev = members(frames[1], scope)
        a, b, p = (expected(x, "Q1", MISSING, (4.0, 5.0), (1.0, 2.0)) for x in (inside, rest, prev))
        s = tables.summary(2, scope, "Q1")
        assert s["benchmark_topbox"] == pytest.approx(100 * b["p_top"], rel=1e-12)
        assert s["benchmark_mean"] == pytest.approx(b["mean"], rel=1e-12)
        se = math.sqrt(a["p_top"] * (1 - a["p_top"]) / a["neff"] + b["p_top"] * (1 - b["p_top"]) / b["neff"])
        assert s["sig_topbox_vs_benchmark"] == verdict(a["p_top"] - b["p_top"], se)
        se = math.sqrt(a["sd"] ** 2 / a["neff"] + b["sd"] ** 2 / b["neff"])
        assert s["sig_mean_vs_benchmark"] == verdict(a["mean"] - b["mean"], se)
        assert s["previous_topbox"] == pytest.approx(100 * p["p_top"], rel=1e-12)
        assert s["previous_mean"] == pytest.approx(p["mean"], rel=1e-12)
        se = math.sqrt(a["p_top"] * (1 - a["p_top"]) / a["neff"] + p["p_top"] * (1 - p["p_top"]) / p["neff"])
        assert s["sig_topbox_vs_previous"] == verdict(a["p_top"] - p["p_top"], se)
        se = math.sqrt(a["sd"] ** 2 / a["neff"] + p["sd"] ** 2 / p["neff"])
        assert s["sig_mean_vs_previous"] == verdict(a["mean"] - p["mean"], se)
        assert s["test"] == "two-sample z-test (unpooled), Kish n_eff, 95%"
    everyone = tables.summary(2, "all", "Q1")
    assert everyone["benchmark_topbox"] is None and everyone["sig_topbox_vs_benchmark"] == ""
    assert everyone["previous_topbox"] is not None


def test_suppression_edges_and_audit(edge_study):
    root, frames = edge_study
    tables = tabulate(load_config(root), 2, scopes=["BB", "CC", "DD"])
    below, at, one = (tables.summary(2, s, "Q1") for s in ("BB", "CC", "DD"))
    assert below["base_n"] == MIN_BASE - 1 and below["suppressed"] is True
    assert below["suppression_reason"] == f"unweighted base {MIN_BASE - 1} < min_base {MIN_BASE}"
    for key in (
        "base_weighted",
        "n_eff",
        "topbox",
        "topbox_ci_low",
        "bottombox",
        "mean",
        "sd",
        "mean_ci_high",
        "benchmark_topbox",
        "previous_mean",
    ):
        assert below[key] is None, key
    assert below["sig_topbox_vs_benchmark"] == "" and below["sig_mean_vs_previous"] == ""
    assert at["base_n"] == MIN_BASE and at["suppressed"] is False and at["topbox"] is not None
    assert one["base_n"] <= 1 and one["suppressed"] is True
    for row in tables.question_rows(2, "BB", "Q1"):
        assert row["suppressed"] is True and row["n"] is None and row["weighted_n"] is None and row["percent"] is None
        assert row["suppression_reason"] == below["suppression_reason"]
    assert all(r["n"] is not None for r in tables.question_rows(2, "CC", "Q1"))
    audit = {(a["scope"], a["question"], a["withheld"]): a for a in tables.suppressed}
    assert audit[("BB", "Q1", "question")]["base_n"] == MIN_BASE - 1
    assert ("CC", "Q1", "question") not in audit
    assert ("DD", "Q1", "question") in audit
    # CSV and JSON carry the same empty cells and flags
    import csv
    import io
    import json

    buffer = io.StringIO()
    tables.to_csv(buffer)
    csv_rows = [
        r for r in csv.DictReader(io.StringIO(buffer.getvalue())) if r["scope"] == "BB" and r["question"] == "Q1"
    ]
    assert csv_rows and all(r["percent"] == "" and r["n"] == "" and r["suppressed"] == "true" for r in csv_rows)
    doc = json.loads(tables.to_json())
    assert any(a["scope"] == "BB" and a["withheld"] == "question" for a in doc["suppressed"])


def test_jurisdiction_of_one_respondent_with_min_base_one(edge_study, tmp_path):
    root, frames = edge_study
    config = load_config(root)
    from dataclasses import replace

    loose = replace(config, tables=replace(config.tables, min_base=1))
    tables = tabulate(loose, 2, scopes=["DD"], questions=["Q2"])
    person = members(frames[2], "DD")[0]
    s = tables.summary(2, "DD", "Q2")
    if is_valid(person["Q2"], (9.0,)):
        assert s["base_n"] == 1 and not s["suppressed"]
        assert s["base_weighted"] == pytest.approx(person["WEIGHT"])
        assert s["n_eff"] == pytest.approx(1.0)
        row = next(r for r in tables.question_rows(2, "DD", "Q2") if r["code"] == str(int(person["Q2"])))
        assert row["percent"] == pytest.approx(100.0) and row["ci_low"] == pytest.approx(100.0)
    else:
        assert s["base_n"] == 0 and s["suppressed"]


def test_question_nobody_answered(edge_study):
    root, _ = edge_study
    tables = tabulate(load_config(root), 2, scopes=["all"], questions=["Q3"])
    s = tables.summary(2, "all", "Q3")
    assert s["base_n"] == 0 and s["suppressed"] is True
    assert s["suppression_reason"] == f"no valid responses (base 0 < min_base {MIN_BASE})"
    rows = tables.question_rows(2, "all", "Q3")
    assert [r["code"] for r in rows] == ["1", "2", "3", "4", "5", "8", "9", "."]
    assert all(r["percent"] is None for r in rows)


def test_nominal_item_has_no_box_or_mean_and_unlabelled_code_counts_as_valid(edge_study):
    root, frames = edge_study
    tables = tabulate(load_config(root), 2, scopes=["all"], questions=["Q2", "Q4"])
    q2 = tables.summary(2, "all", "Q2")
    assert q2["topbox"] is None and q2["mean"] is None and q2["topbox_ci_low"] is None
    exp = expected(members(frames[2], "all"), "Q4", (), (), ())
    rows = {r["code"]: r for r in tables.question_rows(2, "all", "Q4")}
    assert rows["7"]["label"] is None and rows["7"]["missing"] is False
    assert rows["7"]["percent"] == pytest.approx(exp["percent"][7.0], rel=1e-12)
    q4 = tables.summary(2, "all", "Q4")  # ordinal with 3 labelled codes: top-2 = the two highest labelled
    valid = [(r["Q4"], r["WEIGHT"]) for r in members(frames[2], "all")]
    assert q4["topbox"] == pytest.approx(
        100 * sum(w for x, w in valid if x in (2.0, 3.0)) / sum(w for _, w in valid), rel=1e-12
    )


def test_equal_weights_give_the_unweighted_numbers(tmp_path):
    root, frames = build_study(tmp_path / "equal", equal_weights=True)
    config = load_config(root)
    weighted = tabulate(config, 2, scopes=["all", "AA"])
    unweighted = tabulate(config, 2, scopes=["all", "AA"], weighted=False)
    assert weighted.meta["weight"] == {"2": "vendor"} and unweighted.meta["weight"] == {"2": "none"}
    for a, b in zip(weighted.rows, unweighted.rows, strict=True):
        assert a["code"] == b["code"]
        assert a["weighted_n"] == pytest.approx(a["n"]) if a["n"] is not None else True
        for key in ("n", "weighted_n", "percent", "ci_low", "topbox", "mean", "sd", "n_eff"):
            assert a[key] == pytest.approx(b[key], rel=1e-12) if a[key] is not None else b[key] is None
    s = weighted.summary(2, "AA", "Q1")
    assert s["n_eff"] == pytest.approx(s["base_n"])


def test_unweighted_flag_counts_respondents(edge_study):
    root, frames = edge_study
    tables = tabulate(load_config(root), 2, scopes=["AA"], weighted=False, questions=["Q1"])
    exp = expected(members(frames[2], "AA"), "Q1", MISSING, (4.0, 5.0), (1.0, 2.0), weighted=False)
    s = tables.summary(2, "AA", "Q1")
    assert s["base_weighted"] == exp["n"] and s["n_eff"] == pytest.approx(exp["n"])
    assert s["topbox"] == pytest.approx(100 * exp["p_top"], rel=1e-12)
    assert s["sd"] == pytest.approx(exp["sd"], rel=1e-12)


def test_errors(edge_study):
    root, _ = edge_study
    config = load_config(root)
    with pytest.raises(ConfigError, match="neither a jurisdiction code nor a subscriber"):
        tabulate(config, 2, scopes=["ZZ"])
    with pytest.raises(InputMissingError, match="no question NOPE"):
        tabulate(config, 2, questions=["NOPE"])
    with pytest.raises(ConfigError, match="wave 3 is not configured"):
        tabulate(config, 3)


def test_unreviewed_wave_is_refused(tmp_path):
    root, _ = build_study(tmp_path / "gate")
    with write_store(root) as con:
        con.execute("UPDATE waves SET review_status = 'unreviewed', drift = '[]' WHERE wave = 1")
    with pytest.raises(DriftGateError):
        tabulate(load_config(root), 2)  # wave 2's previous wave is wave 1


@pytest.mark.parametrize("failing", [1, 2])
def test_a_wave_whose_scan_fails_stops_the_tables_with_its_error(edge_study, monkeypatch, failing):
    """Wave 2's tables scan waves 1 and 2 on two threads, each wave's roll-up waiting for its scan (and
    wave 2's tables for wave 1's roll-up): a failed scan's error reaches the caller, and nothing waits for
    it forever."""
    import wavetool.stats as stats

    root, _ = edge_study
    scan = stats._collect_wave

    def failing_scan(con, config, wave, *args):
        if wave == failing:
            raise InputMissingError(f"wave {wave} went away")
        return scan(con, config, wave, *args)

    monkeypatch.setattr(stats, "_collect_wave", failing_scan)
    with pytest.raises(InputMissingError, match=f"wave {failing} went away"):
        tabulate(load_config(root), 2, scopes=["all", "AA"])


@pytest.mark.parametrize("failing", [1, 2])
def test_a_wave_whose_roll_up_fails_stops_the_tables_with_its_error(edge_study, monkeypatch, failing):
    """Wave 2's tables wait for wave 1's roll-up, on the other thread: a failed roll-up's error reaches the
    caller, and nothing waits for it forever."""
    import wavetool.stats as stats

    root, _ = edge_study
    roll_up = stats._aggregated

    def failing_roll_up(cursor, part, request):
        if part.wave == failing:
            raise InputMissingError(f"wave {part.wave} could not be rolled up")
        return roll_up(cursor, part, request)

    monkeypatch.setattr(stats, "_aggregated", failing_roll_up)
    with pytest.raises(InputMissingError, match=f"wave {failing} could not be rolled up"):
        tabulate(load_config(root), 2, scopes=["all", "AA"])


@pytest.mark.parametrize(("chosen", "backend"), [(None, "jemalloc"), ("system", "system")])
def test_arrow_buffers_come_from_a_pool_that_keeps_freed_pages(chosen, backend):
    """Importing the tables' engine makes Arrow allocate from jemalloc (with the decay it sets, which pyarrow
    cannot read back), unless ARROW_DEFAULT_MEMORY_POOL names a pool."""
    if backend == "jemalloc" and "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow has no jemalloc")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    code = "import wavetool.stats, pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == backend
