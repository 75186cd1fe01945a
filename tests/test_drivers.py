"""Drivers of satisfaction against independent computations on the exported rows: an exact all-subsets
Shapley decomposition by weighted least squares (itertools + numpy.linalg.lstsq, no correlation matrix),
Johnson's relative weights from the SVD of the weighted data matrix, listwise exclusion counts and top-2
boxes counted in pandas. Edge cases on small real .sav studies: a constant attribute, a constant outcome,
user-missing ranges, more than 15 attributes. The CLI's formats and ``wavetool run``'s CSV file."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from wavefiles import rewrite_sav, write_study
from wavetool.config import load_config, parse_config
from wavetool.errors import ConfigError, ExitCode
from wavetool.ingest import import_wave
from wavetool.stats import all_scopes, drivers, tabulate
from wavetool.stats.drivers import CONTRACT_COLUMNS

OUTCOME = "Q1"
ATTRIBUTES = ["Q2", "Q3", "Q4", "Q5", "Q6", "Q7", "Q8", "Q9", "Q10"]
USER_MISSING = (8.0, 9.0)  # the sample study's "Don't know" and "Refused" (sample_data/README.md)


# --- independent reference computations ----------------------------------------------------------------


def wls_r2(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> float:
    """R² of the weighted least-squares regression of y on the columns of x (with an intercept)."""
    if x.shape[1] == 0:
        return 0.0
    design = np.column_stack([np.ones(len(y)), x])
    root = np.sqrt(w)
    beta = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
    mean = np.sum(w * y) / np.sum(w)
    return 1.0 - np.sum(w * (y - design @ beta) ** 2) / np.sum(w * (y - mean) ** 2)


def exact_shapley(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each column's Shapley value in the R², by the textbook formula over every subset."""
    k = x.shape[1]
    r2 = {s: wls_r2(y, x[:, list(s)], w) for size in range(k + 1) for s in itertools.combinations(range(k), size)}
    out = np.zeros(k)
    for j in range(k):
        others = [i for i in range(k) if i != j]
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for s in itertools.combinations(others, size):
                out[j] += weight * (r2[tuple(sorted((*s, j)))] - r2[s])
    return out


def johnson_weights(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Johnson (2000) from the data: the weighted, standardised X = P Δ Qᵀ; Z = P Qᵀ is its closest
    orthonormal matrix; β = Zᵀy regresses y on Z, Λ = ZᵀX regresses X on Z; ε_j = Σ_k Λ_kj² β_k²."""
    share = w / w.sum()

    def standardised(v: np.ndarray) -> np.ndarray:
        centred = v - share @ v
        return np.sqrt(share)[:, None] * centred / np.sqrt(share @ centred**2)

    xs, ys = standardised(x), standardised(y[:, None])[:, 0]
    p, _, qt = np.linalg.svd(xs, full_matrices=False)
    z = p @ qt
    beta, lam = z.T @ ys, z.T @ xs
    return (lam**2 * (beta**2)[:, None]).sum(axis=0)


def listwise(frame: pd.DataFrame, names: list[str], missing: tuple[float, ...] = USER_MISSING) -> pd.DataFrame:
    values = frame[names]
    return frame[(values.notna() & ~values.isin(missing)).all(axis=1)]


# --- the sample study -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path) -> pd.DataFrame:
    """Waves 1 and 4 exported by `wavetool export` (harmonised: wave 4's Q5A is Q5 there)."""
    from wavetool.cli import main

    out = tmp_path_factory.mktemp("export") / "waves.parquet"
    assert main(["--study", str(_imported_template), "export", "--wave", "1", "--wave", "4", "--output", str(out)]) == 0
    return pd.read_parquet(out)


SCOPE_PROVINCES = {"all": None, "NS": ["NS"], "ON": ["ON"], "maritimes": ["NS", "NB"], "quebec": ["QC"]}


@pytest.mark.parametrize("wave", [1, 4])
def test_importance_is_the_exact_shapley_decomposition_of_the_weighted_r2(imported_study, exported, wave):
    config = load_config(imported_study)
    result = drivers(config, wave, scopes=list(SCOPE_PROVINCES))
    assert result.table.column_names[: len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS)
    for scope, provinces in SCOPE_PROVINCES.items():
        frame = exported[exported.wave == wave]
        if provinces:
            frame = frame[frame.PROV.isin(provinces)]
        valid = listwise(frame, [OUTCOME, *ATTRIBUTES])
        y, x, w = valid[OUTCOME].to_numpy(float), valid[ATTRIBUTES].to_numpy(float), valid.WEIGHT.to_numpy(float)
        expected = exact_shapley(y, x, w)
        rows = result.scope_rows(scope)
        assert [r["attribute"] for r in rows] == ATTRIBUTES
        got = np.array([r["r2_share"] for r in rows])
        assert np.abs(got - expected).max() < 1e-10
        importance = np.array([r["importance"] for r in rows])
        assert np.abs(importance - 100 * expected / expected.sum()).max() < 1e-10
        assert importance.sum() == pytest.approx(100.0, abs=1e-10)
        assert all(abs(r["r2"] - wls_r2(y, x, w)) < 1e-10 for r in rows)
        assert all(r["n"] == len(valid) and r["method"] == "shapley-lmg" for r in rows)
        assert rows[0]["n_eff"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
        order = np.argsort(-importance, kind="stable")
        assert [rows[i]["importance_rank"] for i in order] == list(range(1, len(ATTRIBUTES) + 1))


@pytest.mark.slow  # two exact Shapley decompositions in numpy (make test-fast skips it)
def test_weights_are_honoured(imported_study, exported):
    """The unweighted decomposition of the same rows differs from wavetool's, the weighted one does not."""
    valid = listwise(exported[exported.wave == 4], [OUTCOME, *ATTRIBUTES])
    y, x, w = valid[OUTCOME].to_numpy(float), valid[ATTRIBUTES].to_numpy(float), valid.WEIGHT.to_numpy(float)
    got = np.array([r["r2_share"] for r in drivers(load_config(imported_study), 4).rows])
    assert np.abs(got - exact_shapley(y, x, w)).max() < 1e-10
    assert np.abs(got - exact_shapley(y, x, np.ones_like(w))).max() > 1e-4


def test_listwise_exclusions_are_counted_and_performance_is_the_tables_top2_box(imported_study, exported):
    config = load_config(imported_study)
    result = drivers(config, 4, scopes=["all", "maritimes"])
    tables = tabulate(config, 4, scopes=["all", "maritimes"], questions=ATTRIBUTES)
    names = [OUTCOME, *ATTRIBUTES]
    for scope, provinces in (("all", None), ("maritimes", ["NS", "NB"])):
        frame = exported[exported.wave == 4]
        if provinces:
            frame = frame[frame.PROV.isin(provinces)]
        any_blank = frame[names].isna().any(axis=1)
        any_missing = frame[names].isin(USER_MISSING).any(axis=1)
        info = next(s for s in result.scopes if s["scope"] == scope)
        assert info["respondents"] == len(frame)
        assert info["excluded_blank"] == int(any_blank.sum())
        assert info["excluded_user_missing"] == int((~any_blank & any_missing).sum())
        assert info["n"] == int((~any_blank & ~any_missing).sum()) == len(frame) - int((any_blank | any_missing).sum())
        rows = {r["attribute"]: r for r in result.scope_rows(scope)}
        performances = []
        for a in ATTRIBUTES:
            assert rows[a]["user_missing"] == int(frame[a].isin(USER_MISSING).sum())
            assert rows[a]["blank"] == int(frame[a].isna().sum())
            answered = frame[frame[a].notna() & ~frame[a].isin(USER_MISSING)]
            top = 100 * answered.WEIGHT[answered[a] >= 4].sum() / answered.WEIGHT.sum()
            assert rows[a]["performance"] == pytest.approx(top, rel=1e-10)
            # the same sums, added in another order (the drivers' scan, not the tables' cells): equal to 1e-13
            assert rows[a]["performance"] == pytest.approx(tables.summary(4, scope, a)["topbox"], rel=1e-13)
            performances.append(rows[a]["performance"])
        mean_perf = sum(performances) / len(performances)
        for a in ATTRIBUTES:
            high = rows[a]["importance"] > 100 / len(ATTRIBUTES)
            good = rows[a]["performance"] >= mean_perf
            assert (
                rows[a]["quadrant"]
                == {
                    (True, False): "priority",
                    (True, True): "strength",
                    (False, True): "surplus",
                    (False, False): "secondary",
                }[(high, good)]
            )
    assert {r["quadrant"] for r in result.rows} >= {"priority", "surplus"}


def test_a_scope_under_min_base_gets_no_drivers_and_says_why(imported_study, exported):
    config = load_config(imported_study)
    result = drivers(config, 4, scopes=["NL", "ON"])
    n_nl = len(listwise(exported[(exported.wave == 4) & (exported.PROV == "NL")], [OUTCOME, *ATTRIBUTES]))
    assert n_nl < 100
    assert [s["scope"] for s in result.skipped] == ["NL"]
    assert result.skipped[0]["reason"] == f"listwise valid base {n_nl} < [drivers] min_base 100"
    assert result.skipped[0]["n"] == n_nl
    assert result.scope_rows("NL") == [] and len(result.scope_rows("ON")) == len(ATTRIBUTES)
    toml = imported_study / "wavetool.toml"
    toml.write_text(toml.read_text().replace("min_base = 100", f"min_base = {n_nl}"), encoding="utf-8")
    again = drivers(load_config(imported_study), 4, scopes=["NL"])
    assert again.skipped == [] and len(again.scope_rows("NL")) == len(ATTRIBUTES)


@pytest.mark.slow  # bootstrap replicates (make test-fast skips it)
def test_bootstrap_is_reproducible_and_its_intervals_hold_the_estimate(imported_study):
    toml = imported_study / "wavetool.toml"
    toml.write_text(toml.read_text().replace("replicates = 0", "replicates = 60"), encoding="utf-8")
    config = load_config(imported_study)
    scopes = ["all", "ON", "maritimes", "NS"]
    first, second = drivers(config, 4, scopes=scopes), drivers(config, 4, scopes=scopes)
    assert first.table.equals(second.table)
    for r in first.rows:
        assert r["importance_ci_low"] <= r["importance"] <= r["importance_ci_high"]
        assert r["importance_ci_high"] - r["importance_ci_low"] > 0
    widths = {
        s: np.mean([r["importance_ci_high"] - r["importance_ci_low"] for r in first.scope_rows(s)]) for s in scopes
    }
    assert widths["all"] < widths["ON"] < widths["NS"]  # a smaller sample, a wider interval
    assert "Rao-Wu" in first.meta["bootstrap"] and "seed 20200601" in first.meta["bootstrap"]
    toml.write_text(toml.read_text().replace("seed = 20200601", "seed = 7"), encoding="utf-8")
    other = drivers(load_config(imported_study), 4, scopes=scopes)
    assert other.table.column("importance").equals(first.table.column("importance"))
    assert not other.table.column("importance_ci_low").equals(first.table.column("importance_ci_low"))
    plain = drivers(replace(config, drivers=replace(config.drivers, replicates=0)), 4)
    assert plain.table.column("importance_ci_low").null_count == plain.table.num_rows


# --- small real studies for the edge cases ---------------------------------------------------------------

SCALE = {1.0: "Poor", 2.0: "Fair", 3.0: "Good", 4.0: "Very good", 5.0: "Excellent", 8.0: "Don't know", 9.0: "Refused"}


def synthetic_study(folder: Path, attributes: int, rows: int = 900, seed: int = 3, drivers_toml: str = "") -> Path:
    """A study whose wave 1 is a real .sav: outcome Y and attributes A1..Ak (1-5 with 8/9 user-missing)
    loading on one factor, three jurisdictions, unequal weights. A3 declares the range 7-9 user-missing."""
    names = [f"A{i}" for i in range(1, attributes + 1)]
    extra = drivers_toml or (
        f'[drivers]\noutcome = "Y"\nattributes = [{", ".join(repr(n).replace(chr(39), chr(34)) for n in names)}]\n'
        "min_base = 50\n"
    )
    study = write_study(folder, extra=extra)
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=rows)
    prov = np.array(["ON", "QC", "BC"], dtype=object)[np.arange(rows) % 3]
    data: dict[str, object] = {
        "RESPID": np.arange(1, rows + 1, dtype=float),
        "PROV": prov,
        "WEIGHT": np.round(rng.lognormal(0, 0.5, size=rows), 6),
    }

    def rating(latent: np.ndarray) -> np.ndarray:
        return np.clip(np.round(3 + 1.2 * latent), 1, 5)

    for i, name in enumerate(names):
        answers = rating((0.3 + 0.6 * (i % 4) / 3) * factor + rng.normal(scale=0.8, size=rows))
        answers[rng.random(rows) < 0.04] = 8.0
        answers[rng.random(rows) < 0.01] = np.nan
        data[name] = answers
    outcome = rating(factor + sum(0.2 * (i % 3) * np.nan_to_num(data[n]) for i, n in enumerate(names[:3])) / 5)
    outcome[rng.random(rows) < 0.03] = 9.0
    data["Y"] = outcome
    if attributes >= 3:
        a3 = data["A3"]
        a3[rng.random(rows) < 0.05] = 7.0  # user-missing through the declared range only
    frame = pd.DataFrame(data)
    path = study / "wave1.sav"
    labels = {n: SCALE for n in ["Y", *names]}
    missing = {n: [8.0, 9.0] for n in ["Y", *names]}
    if attributes >= 3:
        missing["A3"] = [{"lo": 7.0, "hi": 9.0}]
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels={"Y": "Overall satisfaction", **{n: f"Attribute {n}" for n in names}},
        variable_value_labels={**labels, "PROV": {"ON": "Ontario", "QC": "Quebec", "BC": "British Columbia"}},
        missing_ranges=missing,
        variable_measure={**{n: "ordinal" for n in ["Y", *names]}, "PROV": "nominal"},
    )
    return study


def _import(study: Path) -> pd.DataFrame:
    frame, _ = pyreadstat.read_sav(str(study / "wave1.sav"), user_missing=True)
    import_wave(load_config(study), 1, [study / "wave1.sav"])
    return frame


def test_an_attribute_constant_in_a_scope_gets_importance_0_and_a_note(tmp_path):
    study = synthetic_study(tmp_path / "s", attributes=4)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    qc = frame.PROV == "QC"
    frame.loc[qc & frame.A2.isin([1.0, 2.0, 3.0, 5.0]), "A2"] = 4.0  # QC: every valid A2 answer is 4
    frame.loc[(frame.PROV == "BC") & frame.Y.between(1, 5), "Y"] = 5.0  # BC: the outcome is constant
    rewrite_sav(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    result = drivers(load_config(study), 1, scopes=["all", "QC", "BC"])
    names = ["A1", "A2", "A3", "A4"]
    missing = {"A3": (7.0, 8.0, 9.0)}

    def valid_rows(scope_frame: pd.DataFrame) -> pd.DataFrame:
        ok = scope_frame[["Y", *names]].notna().all(axis=1) & ~scope_frame[["Y", "A1", "A2", "A4"]].isin([8, 9]).any(
            axis=1
        )
        return scope_frame[ok & ~scope_frame.A3.isin(missing["A3"])]

    qc_rows = {r["attribute"]: r for r in result.scope_rows("QC")}
    assert qc_rows["A2"]["importance"] == 0 and qc_rows["A2"]["importance_rank"] == 4
    assert qc_rows["A2"]["note"].startswith("constant in this scope (every valid answer is 4)")
    valid = valid_rows(frame[qc])
    others = ["A1", "A3", "A4"]
    expected = exact_shapley(valid.Y.to_numpy(float), valid[others].to_numpy(float), valid.WEIGHT.to_numpy(float))
    assert np.abs(np.array([qc_rows[a]["r2_share"] for a in others]) - expected).max() < 1e-10
    assert sum(r["importance"] for r in qc_rows.values()) == pytest.approx(100.0, abs=1e-10)
    assert qc_rows["A1"]["n"] == len(valid)  # the user-missing range 7-9 of A3 is excluded
    every = valid_rows(frame)
    expected_all = exact_shapley(every.Y.to_numpy(float), every[names].to_numpy(float), every.WEIGHT.to_numpy(float))
    assert np.abs(np.array([r["r2_share"] for r in result.scope_rows("all")]) - expected_all).max() < 1e-10
    bc = next(s for s in result.scopes if s["scope"] == "BC")
    assert bc["status"] == "skipped"
    assert bc["reason"] == "the outcome Y is constant in this scope (every valid answer is 5)"


def test_a_scope_where_nobody_answered_the_outcome_gets_no_drivers_and_the_counts(tmp_path):
    study = synthetic_study(tmp_path / "s", attributes=3)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    qc = frame.PROV == "QC"
    frame.loc[qc, "Y"] = np.where(np.arange(qc.sum()) % 4 == 0, np.nan, 9.0)  # refused or blank, all of them
    rewrite_sav(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    result = drivers(load_config(study), 1, scopes=["QC", "ON"])
    blank, refused = int(frame.Y[qc].isna().sum()), int((frame.Y[qc] == 9).sum())
    assert [s["scope"] for s in result.skipped] == ["QC"]
    assert result.skipped[0]["reason"] == (
        f"no respondent with a valid answer to Y and to every attribute (Y: {refused} user-missing, {blank} blank)"
    )
    assert result.skipped[0]["respondents"] == int(qc.sum()) and result.skipped[0]["n"] == 0
    assert len(result.scope_rows("ON")) == 3


def test_bootstrap_keeps_a_stratum_of_one_respondent_and_a_scope_sees_only_its_own_strata(tmp_path):
    toml = '[drivers]\noutcome = "Y"\nattributes = ["A1", "A2", "A3"]\nmin_base = 50\nreplicates = 80\nseed = 11\n'
    study = synthetic_study(tmp_path / "s", attributes=3, drivers_toml=toml)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    bc = np.flatnonzero(frame.PROV == "BC")
    frame.loc[bc[1:], "PROV"] = "ON"  # BC keeps a single respondent
    rewrite_sav(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    config = load_config(study)
    result = drivers(config, 1, scopes=["all", "ON", "QC"])
    assert [s["scope"] for s in result.scopes if s["status"] == "ok"] == ["all", "ON", "QC"]
    for r in result.rows:
        assert r["importance_ci_low"] <= r["importance"] <= r["importance_ci_high"]
    # QC's replicates come from QC's respondents alone: its intervals do not move when ON's answers change
    frame.loc[frame.PROV == "ON", "A1"] = frame.loc[frame.PROV == "ON", "A2"]
    rewrite_sav(sav, frame, meta)
    import_wave(config, 1, [sav], replace=True)
    again = drivers(load_config(study), 1, scopes=["ON", "QC"])
    assert again.scope_rows("QC") == result.scope_rows("QC")
    assert again.scope_rows("ON") != result.scope_rows("ON")


def test_two_identical_attributes_share_their_importance_equally(tmp_path):
    study = synthetic_study(tmp_path / "s", attributes=4)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    frame["A4"] = frame["A1"]  # perfectly collinear: every subset holding both has a singular matrix
    rewrite_sav(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    rows = drivers(load_config(study), 1).rows
    names = ["A1", "A2", "A3", "A4"]
    values = frame[["Y", *names]]
    valid = frame[~(values.isna().any(axis=1) | values.isin([8.0, 9.0]).any(axis=1) | frame.A3.isin([7.0]))]
    expected = exact_shapley(valid.Y.to_numpy(float), valid[names].to_numpy(float), valid.WEIGHT.to_numpy(float))
    assert np.abs(np.array([r["r2_share"] for r in rows]) - expected).max() < 1e-10
    assert rows[0]["importance"] == pytest.approx(rows[3]["importance"], abs=1e-10)
    assert rows[0]["importance_rank"] == rows[3]["importance_rank"]


@pytest.mark.slow  # a wide study built and imported (make test-fast skips it)
def test_more_than_15_attributes_use_johnsons_relative_weights(tmp_path):
    study = synthetic_study(tmp_path / "s", attributes=17, rows=1500)
    frame = _import(study)
    names = [f"A{i}" for i in range(1, 18)]
    result = drivers(load_config(study), 1, scopes=["all", "ON"])
    for scope, subset in (("all", frame), ("ON", frame[frame.PROV == "ON"])):
        values = subset[["Y", *names]]
        bad = values.isna().any(axis=1) | values.isin([8.0, 9.0]).any(axis=1) | subset.A3.isin([7.0])
        valid = subset[~bad]
        y, x, w = valid.Y.to_numpy(float), valid[names].to_numpy(float), valid.WEIGHT.to_numpy(float)
        rows = result.scope_rows(scope)
        assert {r["method"] for r in rows} == {"johnson-relative-weights"}
        expected = johnson_weights(y, x, w)
        assert np.abs(np.array([r["r2_share"] for r in rows]) - expected).max() < 1e-10
        assert rows[0]["r2"] == pytest.approx(wls_r2(y, x, w), abs=1e-10)
        assert sum(r["importance"] for r in rows) == pytest.approx(100.0, abs=1e-10)
    assert "Johnson" in result.meta["method"]["johnson-relative-weights"]


def test_bootstrap_of_johnsons_relative_weights(tmp_path):
    """Beyond 15 attributes the replicates are decomposed by relative weights too, in one batch."""
    names = [f"A{i}" for i in range(1, 18)]
    listed = ", ".join(f'"{n}"' for n in names)
    toml = f'[drivers]\noutcome = "Y"\nattributes = [{listed}]\nmin_base = 50\nreplicates = 30\n'
    study = synthetic_study(tmp_path / "s", attributes=17, rows=1500, drivers_toml=toml)
    _import(study)
    result = drivers(load_config(study), 1, scopes=["all", "ON"])
    assert {r["method"] for r in result.rows} == {"johnson-relative-weights"} and len(result.rows) == 34
    for r in result.rows:
        assert r["importance_ci_low"] <= r["importance"] <= r["importance_ci_high"]
        assert r["importance_ci_high"] > r["importance_ci_low"]


@pytest.mark.slow  # 2^15 subsets in numpy (make test-fast skips it)
def test_15_attributes_are_still_exact_shapley(tmp_path):
    study = synthetic_study(tmp_path / "s", attributes=15, rows=450)
    frame = _import(study)
    names = [f"A{i}" for i in range(1, 16)]
    result = drivers(load_config(study), 1)
    values = frame[["Y", *names]]
    valid = frame[~(values.isna().any(axis=1) | values.isin([8.0, 9.0]).any(axis=1) | frame.A3.isin([7.0]))]
    y, x, w = valid.Y.to_numpy(float), valid[names].to_numpy(float), valid.WEIGHT.to_numpy(float)
    assert {r["method"] for r in result.rows} == {"shapley-lmg"}
    assert sum(r["r2_share"] for r in result.rows) == pytest.approx(wls_r2(y, x, w), abs=1e-10)
    expected = exact_shapley(y, x, w)  # 2^15 weighted regressions
    assert np.abs(np.array([r["r2_share"] for r in result.rows]) - expected).max() < 1e-10


def _rewrite(sav: Path, frame: pd.DataFrame, meta: Any) -> None:
    """Write the edited ``frame`` back over ``sav`` with its codebook (new columns get none)."""
    pyreadstat.write_sav(
        frame,
        str(sav),
        column_labels={n: lbl for n, lbl in zip(meta.column_names, meta.column_labels, strict=True) if n in frame},
        variable_value_labels=meta.variable_value_labels,
        missing_ranges=meta.missing_ranges,
        variable_measure=meta.variable_measure,
    )


DESIGN_TOML = '[columns]\nstrata = "STRAT"\ncluster = "PSU"\n'
DRIVERS4 = '[drivers]\noutcome = "Y"\nattributes = ["A1", "A2", "A3", "A4"]\nmin_base = 20\n'


def clustered_study(folder: Path, drivers_toml: str = DRIVERS4) -> Path:
    """synthetic_study with a stratified, clustered design: two strata S1/S2 across the jurisdictions and
    PSUs of about 12 respondents within each (jurisdiction, stratum); in QC almost nobody rates A4 in its
    top box (a top-2 box near 1.5 %, whose CV the tables flag F)."""
    study = synthetic_study(folder, attributes=4, drivers_toml=DESIGN_TOML + drivers_toml)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    order = np.arange(len(frame))
    frame["STRAT"] = np.where(order % 5 < 2, "S1", "S2")
    frame["PSU"] = [f"{p}-{s}-{i // 36}" for p, s, i in zip(frame.PROV, frame.STRAT, order, strict=True)]
    qc_top = (frame.PROV == "QC") & frame.A4.isin([4.0, 5.0])
    frame.loc[qc_top & (order % 20 != 0), "A4"] = 3.0
    _rewrite(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    return study


def _same_performance(result: Any, tables: Any, scopes: list[str]) -> list[float | None]:
    """Each attribute's performance in every scope that got drivers equals the tables' top-2 box, withheld
    (None) exactly where the tables withhold it; returns them."""
    seen = []
    for scope in scopes:
        for row in result.scope_rows(scope):
            expected = tables.summary(1, scope, row["attribute"])["topbox"]
            if expected is None:
                assert row["performance"] is None, (scope, row["attribute"], row["performance"])
            else:  # the same sums, added in another order
                assert row["performance"] == pytest.approx(expected, rel=1e-13), (scope, row["attribute"])
            seen.append(row["performance"])
    return seen


@pytest.mark.parametrize(
    "tables_config",
    [
        {},  # linearised variance over the strata and PSUs, F above a CV of 33.3 %
        {"variance": "kish"},
        {"min_effective_base": 400.0, "cv_suppress": 0.0},
    ],
)
def test_performance_alone_is_the_tables_top2_box_withheld_where_they_withhold_it(tmp_path, tables_config):
    study = clustered_study(tmp_path / "s")
    config = load_config(study)
    config = replace(config, tables=replace(config.tables, **tables_config))
    scopes = all_scopes(config)
    tables = tabulate(config, 1, scopes=scopes)
    alone = drivers(config, 1, scopes=scopes)
    assert [s["scope"] for s in alone.skipped] == []
    seen = _same_performance(alone, tables, scopes)
    assert None in seen and sum(v is not None for v in seen) >= 4  # the test sees both
    given = drivers(config, 1, scopes=scopes, tables=tables)
    assert given.table.column("performance").to_pylist() == tables_topboxes(given, tables)
    if not tables_config:  # QC's A4: withheld as F (its CV), not for its base
        qc = tables.summary(1, "QC", "A4")
        assert qc["topbox"] is None and "CV" in qc["suppression_reason"] and qc["base_n"] > 200
    if "min_effective_base" in tables_config:
        assert {r["scope"] for r in alone.rows if r["performance"] is None} == {"ON", "QC", "BC", "ontario"}


def tables_topboxes(result: Any, tables: Any) -> list[float | None]:
    return [tables.summary(1, r["scope"], r["attribute"])["topbox"] for r in result.rows]


def test_performance_from_tables_with_banners_reads_the_total_rows(tmp_path):
    """Tables tabulated with banners hold, beside each Total summary, one per banner column with the same
    wave, scope and question; the drivers' performance is the Total's."""
    study = synthetic_study(tmp_path / "s", attributes=4)
    _import(study)
    config = load_config(study)
    scopes = ["all", "ON"]
    plain = tabulate(config, 1, scopes=scopes)
    banners = tabulate(config, 1, scopes=scopes, banners=["A1"])
    assert banners.summaries_table.num_rows > plain.summaries_table.num_rows
    given = drivers(config, 1, scopes=scopes, tables=banners)
    totals = [s for s in banners.summaries if s["banner"] == ""]
    total = {(s["scope"], s["question"]): s["topbox"] for s in totals}
    assert given.table.column("performance").to_pylist() == [total[(r["scope"], r["attribute"])] for r in given.rows]
    for row in given.rows:  # the Total is the scope's top-2 box (its cells summed another way: to 1e-13)
        assert row["performance"] == pytest.approx(
            plain.summary(1, row["scope"], row["attribute"])["topbox"], rel=1e-13
        )
    assert {r["attribute"]: r["performance"] for r in given.scope_rows("ON")}["A1"] < 100  # not A1 = 5's 100 %


def test_bootstrap_resamples_within_the_configured_strata_and_psus(tmp_path):
    """Rao-Wu within ``[columns] strata`` (not the jurisdictions), drawing ``[columns] cluster`` PSUs: with
    a stratum per respondent, or a single PSU per stratum, there is nothing to resample and every replicate
    is the sample itself (an interval of width 0); without the roles the same answers give wide ones."""
    boot = DRIVERS4 + "replicates = 40\nseed = 5\n"
    study = synthetic_study(tmp_path / "s", attributes=4, drivers_toml=boot)
    sav = study / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    frame["STRAT"] = [f"h{i}" for i in range(len(frame))]  # every respondent a stratum of their own
    frame["PSU"] = frame["PROV"]  # one PSU per jurisdiction
    _rewrite(sav, frame, meta)
    import_wave(load_config(study), 1, [sav])
    toml = study / "wavetool.toml"
    plain = toml.read_text(encoding="utf-8")

    def widths(roles: str) -> list[float]:
        toml.write_text(roles + plain, encoding="utf-8")
        result = drivers(load_config(study), 1, scopes=["all", "ON"])
        assert len(result.rows) == 8
        return [r["importance_ci_high"] - r["importance_ci_low"] for r in result.rows]

    assert min(widths("")) > 1.0  # strata = jurisdictions, respondents drawn
    assert widths('[columns]\nstrata = "STRAT"\n') == [0.0] * 8
    assert widths('[columns]\ncluster = "PSU"\n') == [0.0] * 8  # strata = jurisdictions of one PSU each
    assert min(widths('[columns]\nstrata = "PSU"\n')) > 1.0  # PSU names the jurisdictions: as without roles


# --- configuration ----------------------------------------------------------------------------------------


def _config_with(text: str, tmp_path: Path):
    base = '[study]\nname = "x"\n[[waves]]\nnumber = 1\n'
    return parse_config(__import__("tomllib").loads(base + text), tmp_path / "wavetool.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q2"]\ncolour = 1\n', "drivers.colour: unknown key"),
        ('[drivers]\nattributes = ["Q2"]\n', "drivers.outcome: is required with attributes"),
        ('[drivers]\noutcome = "Q1"\n', "drivers.attributes: must list at least one attribute"),
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q1", "Q2"]\n', "drivers.attributes: lists the outcome 'Q1'"),
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q2", "Q2"]\n', "drivers.attributes: lists Q2 more than once"),
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q2"]\nmin_base = 0\n', "drivers.min_base: must be at least 1"),
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q2"]\nreplicates = -1\n', "drivers.replicates: must be 0"),
        ('[drivers]\noutcome = "Q1"\nattributes = [2]\n', "drivers.attributes: must be a list of strings"),
        ('[drivers]\noutcome = "Q1"\nattributes = ["Q2"]\nseed = "x"\n', "drivers.seed: must be an integer"),
    ],
)
def test_bad_drivers_config_names_the_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        _config_with(text, tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'wavetool.toml'}: {message}")


def test_drivers_config_defaults(tmp_path):
    spec = _config_with('[drivers]\noutcome = "Q1"\nattributes = ["Q2", "Q3"]\n', tmp_path).drivers
    assert (spec.outcome, spec.attributes, spec.min_base, spec.replicates) == ("Q1", ("Q2", "Q3"), 100, 0)
    assert _config_with("", tmp_path).drivers.outcome is None


# --- the CLI and the run ----------------------------------------------------------------------------------


@pytest.mark.slow  # four CLI runs (make test-fast skips it)
def test_cli_table_csv_json_and_parquet(imported_study, cli, tmp_path):
    code, out, err = cli("--study", imported_study, "drivers", "--wave", "4", "--jurisdiction", "ON", "-j", "PE")
    assert code == 0, err
    assert "Wave 4 · ON" in out and "priority" in out and "\x1b[" not in out
    assert "listwise valid base" in out and "[drivers] min_base 100" in out  # PE, with its reason
    config = load_config(imported_study)
    expected = drivers(config, 4, scopes=["ON"])
    top = min(expected.rows, key=lambda r: r["importance_rank"])
    assert f"{top['importance']:.1f}" in out

    code, out, _ = cli("--study", imported_study, "drivers", "--wave", "4", "--subscriber", "maritimes", "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].startswith(",".join(CONTRACT_COLUMNS) + ",importance_ci_low,importance_ci_high")
    assert [r["attribute"] for r in rows] == ATTRIBUTES and {r["scope"] for r in rows} == {"maritimes"}
    assert sum(float(r["importance"]) for r in rows) == pytest.approx(100.0)

    code, out, _ = cli("--study", imported_study, "drivers", "--wave", "4", "--all", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert len(data["scopes"]) == len(all_scopes(config))
    assert {s["scope"] for s in data["scopes"] if s["status"] == "skipped"} >= {"NL", "PE", "YT", "NT", "NU"}
    assert "shapley-lmg" in data["meta"]["method"] and data["meta"]["outcome"] == "Q1"

    target = tmp_path / "drivers.parquet"
    code, _, err = cli("--study", imported_study, "drivers", "-w", "4", "--all", "-f", "parquet", "-o", target)
    assert code == 0 and "wrote" in err
    back = pq.read_table(target)
    assert back.num_rows == len(data["drivers"]) and back.column_names[:13] == list(CONTRACT_COLUMNS)
    assert json.loads(back.schema.metadata[b"wavetool"])["outcome"] == "Q1"
    assert pq.read_table(tmp_path / "drivers-scopes.parquet").num_rows == len(data["scopes"])


def test_cli_help_names_the_config_keys(cli):
    code, out, _ = cli("drivers", "--help")
    assert code == 0 and "[drivers] min_base" in " ".join(out.split()) and "Example: wavetool drivers" in out


def test_cli_errors_name_the_config_and_key(imported_study, cli):
    toml = imported_study / "wavetool.toml"
    text = toml.read_text()
    toml.write_text(text.replace('"Q9", "Q10"]', '"Q9", "QX"]'), encoding="utf-8")
    code, _, err = cli("--study", imported_study, "drivers", "--wave", "4")
    assert code == ExitCode.CONFIG
    assert f"{toml}: drivers.attributes: 'QX' is not a question of wave 4" in err
    toml.write_text(text.replace('outcome = "Q1"', 'outcome = "COMMENT"'), encoding="utf-8")
    code, _, err = cli("--study", imported_study, "drivers", "--wave", "4")
    assert code == ExitCode.CONFIG and "drivers.outcome: 'COMMENT' is a string question" in err
    toml.write_text(text[: text.index("[drivers]")], encoding="utf-8")  # the sample config ends with it
    code, _, err = cli("--study", imported_study, "drivers", "--wave", "4")
    assert code == ExitCode.CONFIG and "no drivers analysis configured" in err and "Hint:" in err
    toml.write_text(text, encoding="utf-8")
    code, _, err = cli("--study", imported_study, "drivers", "--wave", "3", "-j", "XX")
    assert code == ExitCode.CONFIG and "'XX' is neither a jurisdiction code nor a subscriber id" in err


@pytest.mark.slow  # runs the pipeline (make test-fast skips it)
def test_run_writes_the_drivers_csv_beside_the_tables(sample_study, cli):
    code, out, err = cli("--study", sample_study, "run", "--wave", "1", "--no-send", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["tables"]["drivers"]["file"] == "tables/wave-1-drivers.csv"
    written = (sample_study / "tables" / "wave-1-drivers.csv").read_bytes()
    assert written.decode().splitlines()[0].startswith(",".join(CONTRACT_COLUMNS))
    # the run takes the attributes' top-2 boxes from the tables it writes: the same figures, to the last digit
    tables = list(csv.DictReader(io.StringIO((sample_study / "tables" / "wave-1.csv").read_text())))
    topbox = {(r["scope"], r["question"]): r["topbox"] for r in tables}
    rows = list(csv.DictReader(io.StringIO(written.decode())))
    assert {r["scope"] for r in rows} >= {"all", "ON", "QC", "ontario", "maritimes"}
    assert all(r["performance"] == topbox[(r["scope"], r["attribute"])] for r in rows)
    config = load_config(sample_study)
    buffer = io.BytesIO()
    scopes = all_scopes(config)
    drivers(config, 1, scopes=scopes, tables=tabulate(config, 1, scopes=scopes)).to_csv(buffer)
    assert written == buffer.getvalue()
    code, out, err = cli("--study", sample_study, "run", "--wave", "1", "--no-send", "--json")
    assert code == 0 and json.loads(out)["tables"]["drivers"]["changed"] is False
    code, out, _ = cli("--study", sample_study, "status", "--json")
    manifest = json.loads(out)["runs"][0]["manifest"]
    assert manifest["drivers"] == {
        "file": "tables/wave-1-drivers.csv",
        "sha256": summary["tables"]["drivers"]["sha256"],
    }


def test_the_numpy_user_missing_test_decides_as_the_sql_condition_the_tables_use():
    """The drivers sum in numpy what the tables select in SQL: both must call the same answers user-missing
    (discrete codes, closed and open ranges, a blank never)."""
    import duckdb

    from wavetool.codebook import MissingSpec
    from wavetool.sql import missing_condition
    from wavetool.stats.drivers import _user_missing

    specs = (
        MissingSpec("value", "9", 9.0, 9.0),
        MissingSpec("range", None, 96.0, 98.0),
        MissingSpec("range", None, None, -1.0),
        MissingSpec("value", "DK", None, None),  # a string code: never matches a number
    )
    values = np.array([np.nan, -5.0, -1.0, -0.5, 0.0, 1.0, 8.0, 9.0, 95.5, 96.0, 97.2, 98.0, 98.5, 99.0])
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, x DOUBLE)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?)", [[i, None if np.isnan(v) else float(v)] for i, v in enumerate(values)]
    )
    sql = con.sql(f"SELECT coalesce({missing_condition('x', specs)}, FALSE) FROM t ORDER BY i").fetchall()
    assert _user_missing(specs, values).tolist() == [row[0] for row in sql]
    # nan -5 -1 -0.5 0 1 8 9 | 95.5 96 97.2 98 98.5 99
    expected = [False, True, True, False, False, False, False, True, False, True, True, True, False, False]
    assert _user_missing(specs, values).tolist() == expected
