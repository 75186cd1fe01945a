"""Tables of the sample study against the source files read independently (pyreadstat + pandas, plain
loops): a multiple-response set, a subscriber's pooled scope with its custom questions ("not asked" is not
a row), the crosswalk-renamed question, and the CLI's formats."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from wavetool.config import load_config
from wavetool.custom import merge_from_config
from wavetool.stats import all_scopes, tabulate

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def wave1() -> pd.DataFrame:
    df, _ = pyreadstat.read_sav(str(SAMPLE / "inbox/wave-1/wave1.sav"), user_missing=True)
    return df


@pytest.fixture
def merged_study(imported_study: Path) -> Path:
    merge_from_config(load_config(imported_study))
    return imported_study


def test_multiple_response_set_percent_of_respondents_and_of_responses(imported_study, wave1):
    tables = tabulate(load_config(imported_study), 1, scopes=["all", "ON"], questions=["$CHANNELS"])
    items = [f"CH_{i}" for i in range(1, 7)]
    for scope, frame in (("all", wave1), ("ON", wave1[wave1.PROV == "ON"])):
        records = frame.to_dict("records")
        answered = [r for r in records if any(r[c] == 1 for c in items)]
        base_w = sum(r["WEIGHT"] for r in answered)
        responses = sum(r["WEIGHT"] for r in records for c in items if r[c] == 1)
        s = tables.summary(1, scope, "$CHANNELS")
        assert s["kind"] == "multiple" and s["base_n"] == len(answered)
        assert s["base_weighted"] == pytest.approx(base_w, rel=1e-12)
        assert s["n_eff"] == pytest.approx(base_w**2 / sum(r["WEIGHT"] ** 2 for r in answered), rel=1e-12)
        rows = {r["code"]: r for r in tables.question_rows(1, scope, "$CHANNELS")}
        for c in items:
            w = sum(r["WEIGHT"] for r in records if r[c] == 1)
            assert rows[c]["n"] == sum(1 for r in records if r[c] == 1)
            assert rows[c]["percent"] == pytest.approx(100 * w / base_w, rel=1e-12)
            assert rows[c]["percent_of_responses"] == pytest.approx(100 * w / responses, rel=1e-12)
        none = rows["."]
        assert none["missing"] is True and none["n"] == len(records) - len(answered)
        assert sum(rows[c]["percent_of_responses"] for c in items) == pytest.approx(100.0)


def test_mr_set_defined_in_wave1_is_tabulated_in_the_csv_wave(imported_study):
    tables = tabulate(load_config(imported_study), 4, questions=["$CHANNELS"])
    assert tables.summary(4, "all", "$CHANNELS")["base_n"] > 0


def test_subscriber_scope_pools_jurisdictions_and_adds_only_its_custom_questions(merged_study, wave1):
    config = load_config(merged_study)
    tables = tabulate(config, 1, scopes=all_scopes(config))
    questions = {(s["scope"], s["question"], s["kind"]) for s in tables.summaries}
    custom = {(scope, q) for scope, q, kind in questions if kind == "custom"}
    assert {
        ("ontario", "C1"),
        ("ontario", "C3"),
        ("quebec", "C4"),
        ("maritimes", "C2"),
        ("british-columbia", "BC_1"),
    } <= custom
    assert {scope for scope, _ in custom} == {"ontario", "quebec", "maritimes", "british-columbia"}
    assert not any(q.startswith("BC_") for scope, q, _ in questions if scope != "british-columbia")
    # the pooled maritimes scope equals NS + NB respondents on a core question
    pooled = wave1[wave1.PROV.isin(["NS", "NB"])]
    valid = pooled[pooled.Q1.isin([1, 2, 3, 4, 5])]
    s = tables.summary(1, "maritimes", "Q1")
    assert s["base_n"] == len(valid)
    assert s["topbox"] == pytest.approx(100 * valid[valid.Q1 >= 4].WEIGHT.sum() / valid.WEIGHT.sum(), rel=1e-12)


def test_custom_question_counts_eligible_respondents_only(merged_study, wave1):
    """Quebec's file lacks ~6% of QC respondents: they were asked (eligible) and did not answer, so they
    are system-missing; respondents outside QC were not asked and are not counted at all."""
    custom, _ = pyreadstat.read_sav(str(SAMPLE / "inbox/wave-1/custom-quebec.sav"), user_missing=True)
    qc = wave1[wave1.PROV == "QC"][["RESPID", "WEIGHT"]].merge(custom, on="RESPID", how="left")
    config = load_config(merged_study)
    unflagged = replace(config, tables=replace(config.tables, cv_suppress=0))  # every percent shown (no F)
    tables = tabulate(unflagged, 1, scopes=["quebec"], questions=["C1"])
    rows = {r["code"]: r for r in tables.question_rows(1, "quebec", "C1")}
    valid = qc[qc.C1.isin([1, 2, 3, 4, 5])]
    assert sum(r["n"] for r in rows.values()) == len(qc)  # every eligible respondent, nobody else
    assert rows["."]["n"] == int(qc.C1.isna().sum())
    assert rows["8"]["missing"] and rows["8"]["n"] == int((qc.C1 == 8).sum())
    for code in range(1, 6):
        w = valid[valid.C1 == code].WEIGHT.sum()
        assert rows[str(code)]["percent"] == pytest.approx(100 * w / valid.WEIGHT.sum(), rel=1e-12)
    s = tables.summary(1, "quebec", "C1")
    assert s["kind"] == "custom" and s["benchmark_topbox"] is None and s["sig_topbox_vs_benchmark"] == ""
    mean = (valid.C1 * valid.WEIGHT).sum() / valid.WEIGHT.sum()
    assert s["mean"] == pytest.approx(mean, rel=1e-12)
    n = len(valid)
    sd = math.sqrt((valid.WEIGHT * (valid.C1 - mean) ** 2).sum() / valid.WEIGHT.sum() * n / (n - 1))
    assert s["sd"] == pytest.approx(sd, rel=1e-12)


def test_same_named_custom_questions_of_two_subscribers_stay_apart(merged_study):
    tables = tabulate(load_config(merged_study), 1, scopes=["ontario", "quebec"], questions=["C1"])
    on, qc = tables.summary(1, "ontario", "C1"), tables.summary(1, "quebec", "C1")
    assert on["label"] == "Satisfaction with ServiceOntario" and "Québec" in qc["label"]
    assert on["base_n"] != qc["base_n"]


def test_renamed_question_is_compared_with_the_previous_wave(imported_study):
    tables = tabulate(load_config(imported_study), 4, questions=["Q5"])
    s = tables.summary(4, "all", "Q5")
    assert s["previous_topbox"] is not None and s["topbox"] is not None


def test_cli_csv_json_parquet_and_table(imported_study, cli, tmp_path):
    code, out, err = cli("--study", imported_study, "tabulate", "--wave", "2", "--all", "--format", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("wave,scope,question,code,label,missing,n,weighted_n,percent,n_eff,ci_low,ci_high")
    records = list(csv.DictReader(io.StringIO(out)))
    scopes = {r["scope"] for r in records}
    assert {"all", "ON", "NU", "ontario", "maritimes"} <= scopes
    withheld = [r for r in records if r["suppressed"] == "true"]
    assert withheld and all(r["percent"] == "" and r["suppression_reason"] for r in withheld)
    missing_rows = [r for r in records if r["missing"] == "true"]
    assert missing_rows and all(r["percent"] == "" for r in missing_rows)

    target = tmp_path / "out" / "w2.parquet"
    code, _, err = cli(
        "--study", imported_study, "tabulate", "--wave", "2", "-j", "NU", "--format", "parquet", "--output", target
    )
    assert code == 0, err
    table = pq.read_table(target)
    assert table.column_names[:9] == [
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
    audit = pq.read_table(tmp_path / "out" / "w2-suppressed.parquet").to_pylist()
    assert any(a["scope"] == "NU" for a in audit) == any(table.column("suppressed").to_pylist())

    code, out, _ = cli("--study", imported_study, "tabulate", "--wave", "2", "-j", "QC", "-q", "Q1", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and {r["scope"] for r in doc["rows"]} == {"QC"} and doc["summaries"][0]["question"] == "Q1"
    assert doc["meta"]["weight"] == {"2": "vendor"}

    code, out, _ = cli("--study", imported_study, "tabulate", "--wave", "2", "-j", "QC", "-q", "Q1")
    assert code == 0 and "Very satisfied" in out and "top-2" in out


def test_cli_errors(imported_study, cli):
    code, _, err = cli("--study", imported_study, "tabulate", "--wave", "2", "-j", "XX")
    assert code == 78 and "neither a jurisdiction code nor a subscriber id" in err
    code, _, err = cli("--study", imported_study, "tabulate", "--wave", "2", "-q", "Q99")
    assert code == 66 and "Q99" in err
    code, _, err = cli("--study", imported_study, "tabulate", "--wave", "2", "--format", "parquet")
    assert code == 2


def test_tables_are_byte_for_byte_reproducible(merged_study):
    """Same data, same bytes: the cron pipeline relies on an unchanged CSV meaning unchanged tables."""
    config = load_config(merged_study)
    outputs = set()
    for _ in range(4):
        buffer = io.BytesIO()
        tabulate(config, 2, scopes=all_scopes(config)).to_csv(buffer)
        outputs.add(buffer.getvalue())
    assert len(outputs) == 1
