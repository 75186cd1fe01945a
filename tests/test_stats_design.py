"""Design-based statistics (issue 12) against independent references: R's `survey` package for linearised
standard errors (percents, top boxes, means; scopes, benchmarks, previous wave), Korn-Graubard intervals and
the design-based tests, R's `p.adjust` for BH and Holm, Wilson from its closed form in numpy.

The data R reads are exported from the study database the test built (the sample study, or a small study
with the edge cases), never computed by the SQL under test."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from edgestudy import CONFIG, make_wave, write_sav
from rsurvey import domain_estimates, p_adjust, rscript
from wavetool.codebook import harmonised_select
from wavetool.config import load_config
from wavetool.custom import merge_from_config
from wavetool.ingest import import_wave
from wavetool.stats import all_scopes, tabulate, tabulate_waves
from wavetool.stats.questions import single_questions
from wavetool.status import init_study

pytestmark = pytest.mark.slow  # the R `survey` cross-checks (make test-fast skips them)

Z95 = 1.959963984540054
REL = 1e-8


def close(a: float | None, b: float | None, rel: float = REL, abs_: float = 1e-12) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None and (b is None or math.isnan(b))
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def export(study: Path, waves: list[int], extra: tuple[str, ...] = ()) -> dict[int, pd.DataFrame]:
    """Each wave's respondents as the tables see them (harmonised questions), read from the study DB."""
    config = load_config(study)
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        frames = {}
        for wave in waves:
            select = harmonised_select(con, config, wave)
            cols = "".join(f", wave_{wave}.{c}" for c in extra)
            frames[wave] = con.sql(
                f"SELECT h._jurisdiction AS PROV, h._weight AS WEIGHT{cols}, h.* EXCLUDE (_id, _jurisdiction, _weight) "
                f"FROM ({select}) h JOIN wave_{wave} USING (_id)"
                if extra
                else f"SELECT _jurisdiction AS PROV, _weight AS WEIGHT, * EXCLUDE (_id, _jurisdiction, _weight) FROM ({select})"
            ).df()
        return frames
    finally:
        con.close()


def question_codes(study: Path, wave: int, names: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """(valid codes, top-box codes) of each question, from the codebook (metadata, not figures)."""
    config = load_config(study)
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        found = {q.name: q for q in single_questions(con, config, wave)}
    finally:
        con.close()
    observed = {n: set() for n in names}  # an unlabelled answer that is not declared missing is valid too
    for frame in export(study, [wave]).values():
        for n in names:
            observed[n] |= {float(v) for v in frame[n].dropna().unique()}
    return {
        n: (sorted(c for c in set(found[n].codes) | observed[n] if not found[n].is_missing(c)), list(found[n].top))
        for n in names
    }


def with_tables(study: Path, **tables: object):
    config = load_config(study)
    return replace(config, tables=replace(config.tables, **tables))


# --- the sample study: 13 jurisdictions, real province weights -------------------------------------------

SCOPES = {"all": None, "NL": ["NL"], "PE": ["PE"], "ON": ["ON"], "maritimes": ["NS", "NB"]}
QUESTIONS = ["Q1", "Q14", "Q17"]


@pytest.fixture(scope="module")
def sample_reference(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path):
    rscript()
    study = _imported_template
    frames = export(study, [3, 4])
    codes = question_codes(study, 4, QUESTIONS)
    jurisdictions = sorted(frames[4].PROV.unique())
    scopes = {k: (v or jurisdictions) for k, v in SCOPES.items()}
    reference = domain_estimates(tmp_path_factory.mktemp("r-sample"), frames, scopes, codes)
    return study, reference


def ref(reference: pd.DataFrame, wave: int, scope: str, side: str, question: str, estimate: str) -> pd.Series:
    hit = reference[
        (reference.wave == wave)
        & (reference.scope == scope)
        & (reference.side == side)
        & (reference.question == question)
        & (reference.estimate == estimate)
    ]
    assert len(hit) == 1, (wave, scope, side, question, estimate)
    return hit.iloc[0]


def test_linearised_se_of_percents_boxes_and_means_equal_r_survey(sample_reference):
    study, reference = sample_reference
    config = with_tables(study, min_base=1, cv_suppress=0)  # every percent shown, to compare them all
    tables = tabulate(config, 4, scopes=list(SCOPES), questions=QUESTIONS)
    compared = 0
    for scope in SCOPES:
        for q in QUESTIONS:
            s = tables.summary(4, scope, q)
            top, mean = ref(reference, 4, scope, "scope", q, "top"), ref(reference, 4, scope, "scope", q, "mean")
            assert close(s["topbox"] / 100, top.est, rel=1e-12)
            assert close(s["topbox_se"] / 100, top.se), (scope, q, s["topbox_se"], top.se)
            assert close(s["mean_se"], mean.se), (scope, q)
            assert close(s["n_eff_design"], top.est * (1 - top.est) / top.se**2)
            assert close(s["deff"], s["base_n"] * top.se**2 / (top.est * (1 - top.est)))
            for row in tables.question_rows(4, scope, q):
                if row["missing"]:
                    continue
                r = ref(reference, 4, scope, "scope", q, row["code"])
                assert close(row["se"] / 100, r.se), (scope, q, row["code"], row["se"], r.se)
                compared += 1
    assert compared >= 5 * 3 * 5


def test_design_based_tests_use_r_standard_errors_of_benchmark_and_previous_wave(sample_reference):
    """p = 2(1 - Φ(|d| / √(se₁² + se₂²))) with every se from R: benchmark (every other jurisdiction, a
    subset of the same design) and the same scope in wave 3."""
    from scipy.special import ndtr

    study, reference = sample_reference
    tables = tabulate(with_tables(study, min_base=1, cv_suppress=0), 4, scopes=list(SCOPES), questions=QUESTIONS)
    checked = 0
    for scope in SCOPES:
        for q in QUESTIONS:
            s = tables.summary(4, scope, q)
            for estimate, column in (("top", "topbox"), ("mean", "mean")):
                mine = ref(reference, 4, scope, "scope", q, estimate)
                others = [("previous", ref(reference, 3, scope, "scope", q, estimate))]
                if scope != "all":
                    others.append(("benchmark", ref(reference, 4, scope, "bench", q, estimate)))
                for name, other in others:
                    z = (mine.est - other.est) / math.sqrt(mine.se**2 + other.se**2)
                    expected = 2 * ndtr(-abs(z))
                    got = s[f"p_{column}_vs_{name}"]
                    assert close(got, expected, rel=1e-7), (scope, q, estimate, name, got, expected)
                    checked += 1
    assert checked == len(SCOPES) * len(QUESTIONS) * 2 * 2 - len(QUESTIONS) * 2


def test_korn_graubard_equals_svyciprop_beta(sample_reference):
    study, reference = sample_reference
    tables = tabulate(
        with_tables(study, min_base=1, interval="korn-graubard", cv_suppress=0),
        4,
        scopes=list(SCOPES),
        questions=QUESTIONS,
    )
    for scope in SCOPES:
        for q in QUESTIONS:
            s = tables.summary(4, scope, q)
            top = ref(reference, 4, scope, "scope", q, "top")
            assert close(s["topbox_ci_low"] / 100, top.ci_low, rel=1e-7), (scope, q, s["topbox_ci_low"], top.ci_low)
            assert close(s["topbox_ci_high"] / 100, top.ci_high, rel=1e-7), (scope, q)


def wilson(p: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def test_wilson_interval_on_the_design_effective_base_from_its_closed_form(sample_reference):
    study, reference = sample_reference
    tables = tabulate(with_tables(study, min_base=1, cv_suppress=0), 4, scopes=list(SCOPES), questions=QUESTIONS)
    for scope in SCOPES:
        for q in QUESTIONS:
            s = tables.summary(4, scope, q)
            top = ref(reference, 4, scope, "scope", q, "top")
            low, high = wilson(np.array([top.est]), np.array([top.est * (1 - top.est) / top.se**2]))
            assert close(s["topbox_ci_low"] / 100, float(low[0])) and close(s["topbox_ci_high"] / 100, float(high[0]))
            for row in tables.question_rows(4, scope, q):
                if not row["missing"]:
                    r = ref(reference, 4, scope, "scope", q, row["code"])
                    # nobody (or everybody) chose it: no design effective base, Kish's n_eff stands in
                    n = row["n_eff"] if r.se == 0 else r.est * (1 - r.est) / r.se**2
                    low, high = wilson(np.array([r.est]), np.array([n]))
                    assert close(row["ci_low"] / 100, float(low[0])), (scope, q, row["code"])
                    assert close(row["ci_high"] / 100, float(high[0]))
            assert close(s["mean_ci_low"], s["mean"] - Z95 * s["mean_se"], rel=1e-12)
            assert close(s["mean_ci_high"], s["mean"] + Z95 * s["mean_se"], rel=1e-12)


@pytest.mark.parametrize("method", ["bh", "holm"])
def test_adjusted_p_values_equal_r_p_adjust_and_decide_the_flags(sample_reference, tmp_path, method):
    study, _ = sample_reference
    config = with_tables(study, adjust=method)
    tables = tabulate(config, 4, scopes=all_scopes(config))
    tests = ("topbox_vs_benchmark", "mean_vs_benchmark", "topbox_vs_previous", "mean_vs_previous")
    families: dict[str, list[tuple[dict, str]]] = {}
    for s in tables.summaries:
        for t in tests:
            if s[f"p_{t}"] is not None:
                families.setdefault(s["scope"], []).append((s, t))
            else:
                assert s[f"p_adj_{t}"] is None and s[f"sig_{t}"] == ""
    assert sum(len(v) for v in families.values()) > 400
    adjusted = p_adjust(
        tmp_path,
        {k: [s[f"p_{t}"] for s, t in v] for k, v in families.items()},
        method.upper() if method == "bh" else method,
    )
    flagged = raw_flagged = 0
    for scope, entries in families.items():
        for (s, t), expected in zip(entries, adjusted[scope], strict=True):
            assert close(s[f"p_adj_{t}"], expected, rel=1e-12), (scope, s["question"], t)
            sig = s[f"sig_{t}"]
            assert (sig != "") == (expected < 0.05), (scope, s["question"], t, sig, expected)
            flagged += sig != ""
            raw_flagged += s[f"p_{t}"] < 0.05
    assert flagged <= raw_flagged


@pytest.mark.parametrize("method", ["bh", "holm"])
def test_adjust_families_equals_r_p_adjust_with_ties_gaps_and_interleaved_families(tmp_path, method):
    """The vectorised adjustment the tables use, on families given in any order, with tied p-values,
    exact 0 and 1, and untested entries (NaN) left out of their family, against R's p.adjust."""
    from wavetool.stats.significance import adjust_families

    rng = np.random.default_rng(12)
    p = np.round(rng.random(300), 2)  # rounding makes ties
    p[:5] = [0.0, 1.0, 0.0, 1e-12, 1.0]
    p[rng.random(300) < 0.15] = np.nan
    family = rng.integers(0, 7, 300)  # interleaved, unsorted
    got = adjust_families(p, family, method)
    assert np.isnan(got[np.isnan(p)]).all()
    members = {f"f{f}": np.flatnonzero((family == f) & ~np.isnan(p)) for f in np.unique(family)}
    expected = p_adjust(
        tmp_path, {k: list(p[i]) for k, i in members.items()}, method.upper() if method == "bh" else method
    )
    for name, index in members.items():
        assert np.allclose(got[index], expected[name], rtol=1e-14, atol=0), name
    # families given already sorted (as the tables' are) give the same values
    order = np.argsort(family, kind="stable")
    assert np.array_equal(adjust_families(p[order], family[order], method), got[order], equal_nan=True)
    assert len(adjust_families(np.array([]), np.array([], dtype=int), method)) == 0  # a wave with no test


def test_kish_wald_unadjusted_reproduces_the_tables_before_issue_12(sample_reference):
    """The contract columns: with variance = "kish", interval = "wald", adjust = "none" and no CV flags the
    old formulas hold exactly (n_eff = (Σw)²/Σw², p ± z√(p(1−p)/n_eff), m ± z·s/√n_eff)."""
    study, _ = sample_reference
    old = with_tables(study, variance="kish", interval="wald", adjust="none", cv_caution=0, cv_suppress=0)
    tables = tabulate(old, 4, scopes=list(SCOPES), questions=QUESTIONS)
    for s in tables.summaries:
        if s["suppressed"]:
            continue
        p, n = s["topbox"] / 100, s["n_eff"]
        half = Z95 * math.sqrt(p * (1 - p) / n)
        assert s["topbox_ci_low"] == max(0.0, 100 * (p - half)) or close(
            s["topbox_ci_low"], 100 * (p - half), rel=1e-12
        )
        assert close(s["mean_ci_high"], s["mean"] + Z95 * s["sd"] / math.sqrt(n), rel=1e-12)
        assert s["test"] == "two-sample z-test (unpooled), Kish n_eff, 95%" and s["quality"] == ""
    assert list(tables.summaries_table.column_names[:27]) == [
        *"wave scope question kind label base_n base_weighted n_eff topbox topbox_ci_low topbox_ci_high".split(),
        *"bottombox mean sd mean_ci_low mean_ci_high benchmark_topbox benchmark_mean sig_topbox_vs_benchmark".split(),
        *"sig_mean_vs_benchmark previous_topbox previous_mean sig_topbox_vs_previous sig_mean_vs_previous".split(),
        "test",
        "suppressed",
        "suppression_reason",
    ]
    assert tables.summaries_table.column_names[27:] == [
        "topbox_se", "mean_se", "deff", "n_eff_design",
        "p_topbox_vs_benchmark", "p_mean_vs_benchmark", "p_topbox_vs_previous", "p_mean_vs_previous",
        "p_adj_topbox_vs_benchmark", "p_adj_mean_vs_benchmark", "p_adj_topbox_vs_previous", "p_adj_mean_vs_previous",
        "quality",
    ]  # fmt: skip
    assert tables.rows_table.column_names[-14:] == [
        "se", "topbox_se", "mean_se", "deff", "n_eff_design",
        "p_topbox_vs_benchmark", "p_mean_vs_benchmark", "p_topbox_vs_previous", "p_mean_vs_previous",
        "p_adj_topbox_vs_benchmark", "p_adj_mean_vs_benchmark", "p_adj_topbox_vs_previous", "p_adj_mean_vs_previous",
        "quality",
    ]  # fmt: skip


def test_quality_flags_by_cv_and_f_is_withheld_and_audited(sample_reference):
    study, reference = sample_reference
    tables = tabulate(load_config(study), 4, scopes=list(SCOPES), questions=QUESTIONS)
    audit = {(a["scope"], a["question"], a["withheld"]): a for a in tables.suppressed}
    seen = set()
    for scope in SCOPES:
        for q in QUESTIONS:
            if tables.summary(4, scope, q)["suppressed"]:  # under min_base: no flags, nothing shown
                assert all(r["quality"] == "" and r["percent"] is None for r in tables.question_rows(4, scope, q))
                continue
            for row in tables.question_rows(4, scope, q):
                if row["missing"]:
                    continue
                r = ref(reference, 4, scope, "scope", q, row["code"])
                cv = r.se / r.est if r.est > 0 else None
                expected = "" if cv is None else "F" if cv > 0.333 else "E" if cv >= 0.166 else ""
                assert row["quality"] == expected, (scope, q, row["code"], cv)
                seen.add(expected)
                if expected == "F":
                    assert row["percent"] is None and row["ci_low"] is None and row["se"] is None
                    assert row["suppressed"] is True and "cv_suppress 33.3%" in row["suppression_reason"]
                    assert (scope, q, f"code {row['code']}") in audit
                else:
                    assert row["percent"] is not None and (scope, q, f"code {row['code']}") not in audit
    assert seen >= {"", "E", "F"}


ROW_ESTIMATES = ("percent", "n_eff", "ci_low", "ci_high", "percent_of_responses", "se", "deff", "n_eff_design")


def test_an_f_row_shows_no_estimate_only_its_counts(imported_study, tmp_path):
    """Every row flagged F (single codes and multiple-response items) withholds each of its estimates, the
    share of responses of an item too; its n and weighted n stay (counts, not estimates), as on the CSV."""
    config = load_config(imported_study)
    tables = tabulate(config, 4, scopes=all_scopes(config))
    flagged = [r for r in tables.rows if r["quality"] == "F"]
    assert {r["kind"] for r in flagged} >= {"single", "multiple"}
    for row in flagged:
        assert all(row[c] is None for c in ROW_ESTIMATES), {c: row[c] for c in ROW_ESTIMATES}
        assert row["n"] > 0 and row["weighted_n"] > 0 and row["suppressed"] is True
    kept = [r for r in tables.rows if r["kind"] == "multiple" and r["quality"] != "F" and not r["suppressed"]]
    assert kept and all(r["percent_of_responses"] is not None for r in kept if r["code"] != ".")
    path = tmp_path / "tables.csv"
    tables.write(path, "csv")
    with path.open(encoding="utf-8") as handle:
        written = [r for r in csv.DictReader(handle) if r["quality"] == "F"]
    assert len(written) == len(flagged) and all(r[c] == "" for r in written for c in ROW_ESTIMATES)


def test_min_effective_base_suppresses_on_the_design_effective_base(sample_reference):
    study, _ = sample_reference
    plain = tabulate(load_config(study), 4, scopes=["PE", "NL", "ON"], questions=["Q1"])
    bases = {s["scope"]: s["n_eff_design"] for s in plain.summaries}
    limit = sorted(bases.values())[1]  # between the smallest and the largest
    tables = tabulate(with_tables(study, min_effective_base=limit), 4, scopes=["PE", "NL", "ON"], questions=["Q1"])
    for s in tables.summaries:
        small = bases[s["scope"]] < limit
        assert s["suppressed"] is small and (s["topbox"] is None) is small
        if small:
            assert (
                s["suppression_reason"].startswith("effective base ")
                and f"< min_effective_base {limit:g}" in s["suppression_reason"]
            )
            assert any(a["scope"] == s["scope"] and a["withheld"] == "question" for a in tables.suppressed)


def test_methods_are_named_in_meta(sample_reference):
    study, _ = sample_reference
    tables = tabulate(load_config(study), 4, scopes=["ON"], questions=["Q1"])
    methods = tables.meta["methods"]
    assert "linearisation" in methods["variance"] and "Wilson" in methods["interval"]
    assert "Benjamini-Hochberg" in methods["adjust"] and methods["design"] == {
        "4": "strata = jurisdiction, no clusters"
    }
    assert "linearised design SE, Benjamini-Hochberg" in tables.summaries[0]["test"]


# --- edge cases: a stratum of one respondent, p = 0 and 1, no valid answers, equal weights, clusters ------

EDGE_CONFIG = CONFIG.replace(
    'variance = "kish"\ninterval = "wald"\nadjust = "none"\ncv_caution = 0\ncv_suppress = 0\n', ""
)


def edge_study(root: Path, frames: dict[int, pd.DataFrame], extra: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "wavetool.toml").write_text(EDGE_CONFIG.replace("[tables]\n", extra + "[tables]\n"), encoding="utf-8")
    init_study(root)
    config = load_config(root)
    for wave, df in frames.items():
        path = root / f"wave{wave}.sav"
        write_sav(df, path)
        import_wave(config, wave, [path])
    return root


EDGE_SCOPES = {"all": ["AA", "BB", "CC", "DD"], "AA": ["AA"], "DD": ["DD"], "pair": ["BB", "CC"]}
EDGE_Q = ["Q1", "Q2", "Q4"]


def compare_edge(study: Path, reference: pd.DataFrame, waves: list[int]) -> int:
    tables = tabulate_waves(with_tables(study, min_base=1, cv_suppress=0), waves, scopes=list(EDGE_SCOPES))
    compared = 0
    for wave in waves:
        for scope in EDGE_SCOPES:
            for q in EDGE_Q:
                s = tables.summary(wave, scope, q)
                if q == "Q1":
                    top = ref(reference, wave, scope, "scope", q, "top")
                    assert close(s["topbox_se"] / 100, top.se), (wave, scope, s["topbox_se"], top.se)
                    assert close(s["mean_se"], ref(reference, wave, scope, "scope", q, "mean").se)
                for row in tables.question_rows(wave, scope, q):
                    if not row["missing"] and row["percent"] is not None:
                        r = ref(reference, wave, scope, "scope", q, row["code"])
                        assert close(row["se"] / 100, r.se), (wave, scope, q, row["code"], row["se"], r.se)
                        compared += 1
    return compared


def test_edges_stratum_of_one_respondent_and_a_scope_of_one_stratum_equal_r(tmp_path):
    frames = {w: make_wave(w, seed=w * 7) for w in (1, 2)}
    study = edge_study(tmp_path / "study", frames)
    reference = domain_estimates(
        tmp_path / "r", export(study, [1, 2]), EDGE_SCOPES, question_codes(study, 2, EDGE_Q), benchmarks=False
    )
    assert compare_edge(study, reference, [1, 2]) > 40


def test_edges_p_zero_p_one_no_valid_answers_and_intervals(tmp_path):
    frames = {w: make_wave(w, seed=w * 7) for w in (1, 2)}
    study = edge_study(tmp_path / "study", frames)
    tables = tabulate(with_tables(study, min_base=1), 2, scopes=["DD", "AA"])
    person = frames[2][frames[2].PROV == "DD"].iloc[0]
    rows = [r for r in tables.question_rows(2, "DD", "Q4") if not r["missing"]]
    assert len(rows) >= 3
    for row in rows:  # one respondent: one code at 100 %, the others at 0 %
        assert row["se"] == 0.0 and row["ci_low"] is not None
        if row["code"] == str(int(person.Q4)):
            assert row["percent"] == 100.0 and row["ci_high"] == 100.0 and row["ci_low"] < 100.0
        else:
            assert row["percent"] == 0.0 and row["ci_low"] == 0.0 and row["ci_high"] > 0.0  # never 0-0
    for scope in ("DD", "AA"):  # nobody answered Q3: no base, no estimate, no interval
        s = tables.summary(2, scope, "Q3")
        assert s["base_n"] == 0 and s["topbox_se"] is None and s["quality"] == ""
        for row in tables.question_rows(2, scope, "Q3"):
            assert row["percent"] is None and row["ci_low"] is None and row["se"] is None
    codes_aa = [r for r in tables.question_rows(2, "AA", "Q1") if not r["missing"]]
    assert all(0 <= r["ci_low"] <= r["percent"] <= r["ci_high"] <= 100 for r in codes_aa if r["percent"] is not None)


def test_equal_weights_in_a_single_stratum_give_the_srs_standard_error(tmp_path):
    frames = {w: make_wave(w, seed=w * 7, equal_weights=True) for w in (1, 2)}
    study = edge_study(tmp_path / "study", frames)
    tables = tabulate(with_tables(study, min_base=1, cv_suppress=0), 2, scopes=["AA"], questions=["Q4"])
    aa = frames[2][frames[2].PROV == "AA"]
    n = len(aa)  # Q4 has no missing answers: the domain is the whole stratum
    for row in tables.question_rows(2, "AA", "Q4"):
        if row["missing"]:
            continue
        p = float((aa.Q4 == float(row["code"])).mean())
        assert close(row["se"] / 100, math.sqrt(p * (1 - p) / (n - 1)), rel=1e-12), row["code"]


def test_cluster_column_with_a_lonely_psu_equals_r(tmp_path):
    """[columns] cluster = "PSU": variance between PSUs within strata (nest = TRUE); DD has one PSU (a
    lonely stratum: survey.lonely.psu = "adjust"), AA's PSUs are groups of ten respondents."""
    frames = {}
    for w in (1, 2):
        df = make_wave(w, seed=w * 7)
        df["PSU"] = [
            f"{p}{i // 10}" if p == "AA" else f"{p}{i % 3}" for p, i in zip(df.PROV, range(len(df)), strict=True)
        ]
        frames[w] = df
    study = edge_study(tmp_path / "study", frames, extra='[columns]\ncluster = "PSU"\n')
    reference = domain_estimates(
        tmp_path / "r",
        export(study, [1, 2], extra=("PSU",)),
        EDGE_SCOPES,
        question_codes(study, 2, EDGE_Q),
        cluster="PSU",
        benchmarks=False,
    )
    assert compare_edge(study, reference, [1, 2]) > 40
    kg = tabulate(with_tables(study, min_base=1, interval="korn-graubard", cv_suppress=0), 2, scopes=["all", "AA"])
    for scope in ("all", "AA"):
        s, top = kg.summary(2, scope, "Q1"), ref(reference, 2, scope, "scope", "Q1", "top")
        assert close(s["topbox_ci_low"] / 100, top.ci_low, rel=1e-7) and close(
            s["topbox_ci_high"] / 100, top.ci_high, rel=1e-7
        )
    assert kg.meta["methods"]["design"]["2"] == "strata = jurisdiction, clusters (PSUs) = PSU"


@pytest.fixture
def merged_study(imported_study: Path) -> Path:
    merge_from_config(load_config(imported_study))
    return imported_study


def test_custom_question_se_equals_r_on_the_whole_wave_design(merged_study, tmp_path):
    """A subscriber's custom answers keep their stratum: the domain (Quebec's valid C1 answers) is a subset
    of the whole wave's design (every jurisdiction's respondents count in n_h)."""
    from wavetool.custom import custom_select
    from wavetool.stats.questions import custom_question_list

    config = load_config(merged_study)
    con = duckdb.connect(str(merged_study / "wavetool.duckdb"), read_only=True)
    try:
        frame = con.sql(
            f"SELECT w._jurisdiction AS PROV, w._weight AS WEIGHT, c.C1 FROM wave_1 w "
            f"LEFT JOIN ({custom_select(con, config, 1, 'quebec')}) c USING (_id)"
        ).df()
        c1 = next(q for q in custom_question_list(con, config, 1, "quebec") if q.name == "C1")
    finally:
        con.close()
    valid = sorted(
        {c for c in c1.codes if not c1.is_missing(c)}
        | {float(v) for v in frame.C1.dropna().unique() if not c1.is_missing(v)}
    )
    reference = domain_estimates(
        tmp_path / "r", {1: frame}, {"quebec": ["QC"]}, {"C1": (valid, list(c1.top))}, benchmarks=False
    )
    tables = tabulate(with_tables(merged_study, cv_suppress=0), 1, scopes=["quebec"], questions=["C1"])
    s = tables.summary(1, "quebec", "C1")
    if c1.top:
        assert close(s["topbox_se"] / 100, ref(reference, 1, "quebec", "scope", "C1", "top").se)
        assert close(s["mean_se"], ref(reference, 1, "quebec", "scope", "C1", "mean").se)
    rows = [r for r in tables.question_rows(1, "quebec", "C1") if not r["missing"]]
    assert rows
    for row in rows:
        assert close(row["se"] / 100, ref(reference, 1, "quebec", "scope", "C1", row["code"]).se), row["code"]


def test_strata_column_other_than_the_jurisdiction_equals_r(tmp_path):
    """[columns] strata = "REGION": AA's respondents fall in two strata, one of which BB shares (a
    stratum across jurisdictions); the domains' variances sum over the configured strata."""
    frames = {}
    for w in (1, 2):
        df = make_wave(w, seed=w * 7)
        df["REGION"] = [
            ("R1" if i % 2 else "R2") if p == "AA" else ("R2" if p == "BB" else f"R-{p}")
            for p, i in zip(df.PROV, range(len(df)), strict=True)
        ]
        frames[w] = df
    study = edge_study(tmp_path / "study", frames, extra='[columns]\nstrata = "REGION"\n')
    reference = domain_estimates(
        tmp_path / "r",
        export(study, [1, 2], extra=("REGION",)),
        EDGE_SCOPES,
        question_codes(study, 2, EDGE_Q),
        stratum="REGION",
        benchmarks=False,
    )
    assert compare_edge(study, reference, [1, 2]) > 40


def test_multiple_response_items_se_equals_r(_imported_template, tmp_path):
    """An item of a multiple-response set is a proportion of the set's base (respondents who gave any):
    R's svymean of the item indicator over that domain."""
    study = _imported_template
    frame = export(study, [1])[1]
    items = [f"CH_{i}" for i in range(1, 7)]
    base = (frame[items] == 1).any(axis=1)
    for item in items:  # the item as a 0/1 answer of the base, missing outside it
        frame[f"{item}_in"] = np.where(base, (frame[item] == 1).astype(float), np.nan)
    scopes = {"all": sorted(frame.PROV.unique()), "maritimes": ["NS", "NB"], "PE": ["PE"]}
    questions = {f"{item}_in": ([0.0, 1.0], [1.0]) for item in items}
    reference = domain_estimates(tmp_path / "r", {1: frame}, scopes, questions, benchmarks=False)
    tables = tabulate(with_tables(study, min_base=1, cv_suppress=0), 1, scopes=list(scopes), questions=["$CHANNELS"])
    for scope in scopes:
        rows = {r["code"]: r for r in tables.question_rows(1, scope, "$CHANNELS")}
        for item in items:
            r = ref(reference, 1, scope, "scope", f"{item}_in", "top")
            assert close(rows[item]["percent"] / 100, r.est, rel=1e-12)
            assert close(rows[item]["se"] / 100, r.se), (scope, item, rows[item]["se"], r.se)


@pytest.mark.parametrize("roles", ['[columns]\ncluster = "PSU"\n', '[columns]\nstrata = "REGION"\n'])
def test_a_domain_whose_valid_answers_are_all_equal_has_a_mean_se_of_exactly_0(tmp_path, roles):
    """The general path (clusters, or strata other than the jurisdictions) as the simple one: a mean's
    linearised variance below the rounding noise of its cancelling terms is 0, not 1e-10. AA answers Q1
    with 2 (or user-missing / blank) only: its mean is 2 with no spread, in every PSU and stratum."""
    frames = {}
    for w in (1, 2):
        df = make_wave(w, seed=w * 9)
        aa = df.PROV == "AA"
        df.loc[aa & df.Q1.between(1, 5), "Q1"] = 2.0  # (these data gave 8.7e-11 with strata, before)
        df["PSU"] = [f"{p}{i // 10}" for p, i in zip(df.PROV, range(len(df)), strict=True)]
        df["REGION"] = [
            ("R1" if i % 2 else "R2") if p == "AA" else "R3" for p, i in zip(df.PROV, range(len(df)), strict=True)
        ]
        frames[w] = df
    study = edge_study(tmp_path / "study", frames, extra=roles)
    tables = tabulate(with_tables(study, min_base=1, cv_suppress=0), 2, scopes=["AA", "all"])
    aa = tables.summary(2, "AA", "Q1")
    assert aa["mean"] == 2.0 and aa["sd"] == 0.0
    assert aa["mean_se"] == 0.0 and aa["mean_ci_low"] == aa["mean_ci_high"] == 2.0
    assert tables.summary(2, "all", "Q1")["mean_se"] > 0.01  # a domain with spread keeps its variance


def test_domain_sums_equal_a_plain_loop_over_each_domains_keys():
    """rollup.domain_sums (the numpy roll-up every scope, benchmark and variance term goes through) against
    a dictionary loop: rows in any order, several rows of one (key, group), keys in no domain, a domain
    whose keys hold no row, a pair whose key no cell holds (a NULL code), overlapping domains."""
    import pyarrow as pa

    from wavetool.stats.rollup import domain_sums

    rng = np.random.default_rng(7)
    key = rng.integers(0, 6, 400)
    group = rng.integers(0, 9, 400)
    values = {"w": rng.random(400), "n": rng.integers(1, 5, 400).astype(float)}
    pairs = pa.table(
        {
            "scope": pa.array([0, 0, 0, 1, 2, 2, 3, 3], pa.int32()),
            "key": pa.array([0, 1, 2, 2, 3, None, 5, 7], pa.int32()),  # key 4 in no domain, 7 holds no row
        }
    )
    domain, where, sums = domain_sums(key, group, values, pairs, 9)
    expected: dict[tuple[int, int], dict[str, float]] = {}
    for scope, k in zip(pairs.column("scope").to_pylist(), pairs.column("key").to_pylist(), strict=True):
        for i in np.flatnonzero(key == k) if k is not None else []:
            cell = expected.setdefault((scope, int(group[i])), {"w": 0.0, "n": 0.0})
            for name in cell:
                cell[name] += values[name][i]
    got = list(zip(domain.tolist(), where.tolist(), strict=True))
    assert got == sorted(expected)  # every non-empty (domain, group), in that order
    for name in ("w", "n"):
        assert np.allclose(sums[name], [expected[cell][name] for cell in got], rtol=1e-14, atol=0)
    assert sums["n"].dtype == np.float64
    empty = domain_sums(key[:0], group[:0], {"w": values["w"][:0]}, pairs, 9)
    assert len(empty[0]) == 0 and empty[2]["w"].dtype == np.float64


def test_roll_up_stages_refuse_several_waves_at_once():
    """aggregate and report sum and join one wave's cells at a time (the report's joins leave the wave out of
    their keys): handed two waves, they refuse rather than mix them."""
    import duckdb
    import pyarrow as pa

    from wavetool.stats.rollup import aggregate, report

    two = pa.table({"wave": pa.array([1, 2], pa.int32())})
    none = pa.table({"wave": pa.array([], pa.int32())})
    con = duckdb.connect()
    with pytest.raises(ValueError, match=r"one wave at a time, not waves \[1, 2\]"):
        aggregate(con, {"cells": two, "mr": none})
    with pytest.raises(ValueError, match=r"one wave at a time, not waves \[1, 2\]"):
        report(con, {"targets": none, "classified": two, "mr_rolled": none}, z=1.96, min_base=30, test="z")
