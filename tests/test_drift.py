"""Wave harmonisation: every kind of codebook drift, the crosswalk that explains it, the gate and approval."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyreadstat
import pytest

from wavetool.codebook import ensure_reviewed, harmonised_codebook, harmonised_select
from wavetool.config import load_config
from wavetool.drift import diff_waves
from wavetool.errors import DriftGateError, ExitCode
from wavetool.ingest import import_wave
from wavetool.status import init_study

SAT = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither",
    4: "Satisfied",
    5: "Very satisfied",
    8: "Don't know",
    9: "Refused",
}
YESNO = {1: "Yes", 2: "No"}
BASE_CONFIG = """
[study]
name = "Drift test"
[columns]
id = "RESPID"
jurisdiction = "PROV"
weight = "WEIGHT"
[[waves]]
number = 1
[[waves]]
number = 2
[[waves]]
number = 3
[jurisdictions]
ON = { en = "Ontario", fr = "Ontario" }
QC = { en = "Quebec", fr = "Québec" }
"""


def base_spec() -> dict[str, dict]:
    """The wave-1 questions: label, value labels, missing codes, values for 6 respondents."""
    return {
        "Q1": {"label": "Overall satisfaction", "labels": dict(SAT), "missing": [8, 9], "values": [1, 2, 3, 4, 5, 8]},
        "Q2": {"label": "Ease of access", "labels": dict(SAT), "missing": [8, 9], "values": [5, 4, 3, 2, 1, 9]},
        "Q3": {"label": "Used online services", "labels": dict(YESNO), "missing": [], "values": [1, 2, 1, 2, 1, 2]},
    }


def write_wave(path: Path, wave: int, spec: dict[str, dict]) -> Path:
    frame = pd.DataFrame(
        {
            "RESPID": [wave * 1000 + i for i in range(1, 7)],
            "PROV": ["ON", "QC", "ON", "QC", "ON", "QC"],
            "WEIGHT": [1.0, 0.5, 1.5, 1.0, 0.8, 1.2],
        }
    )
    labels = {"RESPID": "Respondent", "PROV": "Province", "WEIGHT": "Weight"}
    value_labels, missing = {}, {}
    for name, item in spec.items():
        frame[name] = item["values"]
        labels[name] = item["label"]
        if item["labels"]:
            value_labels[name] = item["labels"]
        if item["missing"]:
            missing[name] = item["missing"]
    pyreadstat.write_sav(
        frame, str(path), column_labels=labels, variable_value_labels=value_labels, missing_ranges=missing
    )
    return path


@pytest.fixture
def study(tmp_path: Path):
    """A tiny study: ``make(wave, spec, crosswalk="")`` writes a .sav and imports it; returns the result."""
    folder = tmp_path / "drift"
    init_study(folder)

    def make(wave: int, spec: dict[str, dict], crosswalk: str = "", replace: bool = False):
        (folder / "wavetool.toml").write_text(BASE_CONFIG + crosswalk, encoding="utf-8")
        config = load_config(folder)
        return import_wave(config, wave, [write_wave(tmp_path / f"w{wave}.sav", wave, spec)], replace=replace)

    make.folder = folder
    return make


def drift_of(study, wave: int = 2) -> list[dict]:
    con = duckdb.connect(str(study.folder / "wavetool.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT review_status, drift FROM waves WHERE wave = ?", [wave]).fetchall()[0]
    finally:
        con.close()
    return row[0], json.loads(row[1]) if row[1] else []


def only(records: list[dict], change: str) -> dict:
    found = [r for r in records if r["change"] == change]
    assert len(found) == 1, records
    return found[0]


def test_sample_study_drift_is_caught_and_explained_by_its_crosswalk(imported_study: Path) -> None:
    config = load_config(imported_study)
    con = duckdb.connect(str(imported_study / "wavetool.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT wave, review_status FROM waves ORDER BY wave").fetchall() == [
            (1, "approved"),
            (2, "approved"),
            (3, "approved"),
            (4, "approved"),
        ]
        added = diff_waves(con, config, 1, 2)
        reworded = diff_waves(con, config, 2, 3)
        renamed = diff_waves(con, config, 3, 4)
        stored = json.loads(con.execute("SELECT drift FROM waves WHERE wave = 4").fetchall()[0][0])
        harmonised = [set(harmonised_codebook(con, config, w)) for w in (1, 2, 3, 4)]
    finally:
        con.close()
    assert [(r["question"], r["change"], r["gates"]) for r in added] == [
        (q, "added", False) for q in ("Q24", "Q25", "Q26", "Q27")
    ]
    notes = {e.question: e.note for e in config.crosswalk}
    assert [(r["question"], r["change"], r["explained_by"], r["gates"]) for r in reworded] == [
        ("Q3", "value label changed", notes["Q3"], False)
    ]
    assert "'Neutral' in wave 3" in reworded[0]["detail"]
    assert {(r["question"], r["change"], r["explained_by"]) for r in renamed} == {
        ("Q3", "value label changed", notes["Q3"]),
        ("Q5", "renamed", notes["Q5"]),
    }
    assert {(r["question"], r["change"]) for r in stored} == {("Q3", "value label changed"), ("Q5", "renamed")}
    # The four waves line up as one question each: Q5 everywhere, never Q5A; COVID items from wave 2.
    assert all("Q5" in h and "Q5A" not in h for h in harmonised)
    assert harmonised[1] == harmonised[2] == harmonised[3] == harmonised[0] | {"Q24", "Q25", "Q26", "Q27"}


def test_added_question_is_listed_but_does_not_gate(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q4"] = {"label": "A new question", "labels": dict(YESNO), "missing": [], "values": [1] * 6}
    assert study(2, spec).review_status == "approved"
    status, records = drift_of(study)
    assert status == "approved"
    assert only(records, "added")["question"] == "Q4" and not only(records, "added")["gates"]


def test_dropped_question_gates(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    del spec["Q2"]
    assert study(2, spec).review_status == "unreviewed"
    record = only(drift_of(study)[1], "dropped")
    assert record["question"] == "Q2" and record["gates"] and record["explained_by"] is None
    assert "not in wave 2" in record["detail"]


def test_unexplained_rename_suggests_a_crosswalk_entry_and_the_entry_clears_the_gate(study, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    study(1, base_spec())
    spec = base_spec()
    spec["Q2B"] = spec.pop("Q2")
    assert study(2, spec).review_status == "unreviewed"
    record = only(drift_of(study)[1], "renamed")
    assert record["gates"] and record["variable_a"] == "Q2" and record["variable_b"] == "Q2B"
    assert 'variable = "Q2B"' in record["suggestion"] and "waves = [2]" in record["suggestion"]
    assert not [r for r in drift_of(study)[1] if r["change"] in ("added", "dropped")]

    code, out, err = cli("--study", study.folder, "codebook", "review", "--wave", "2")
    assert code == ExitCode.DRIFT_GATE and "Q2 renamed" in out
    crosswalk = '[[crosswalk]]\nquestion = "Q2"\nvariable = "Q2B"\nwaves = [2]\nnote = "Q2 is Q2B in wave 2"\n'
    (study.folder / "wavetool.toml").write_text(BASE_CONFIG + crosswalk, encoding="utf-8")
    code, out, err = cli("--study", study.folder, "codebook", "review", "--wave", "2")
    assert code == 0, err
    status, records = drift_of(study)
    assert status == "approved"
    assert only(records, "renamed")["explained_by"] == "Q2 is Q2B in wave 2"
    config = load_config(study.folder)
    con = duckdb.connect(str(study.folder / "wavetool.duckdb"), read_only=True)
    try:
        rows = con.execute(f'SELECT "Q2" FROM ({harmonised_select(con, config, 2)}) ORDER BY _id').fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == spec["Q2B"]["values"]


def test_rename_explained_by_crosswalk_at_import_does_not_gate(study) -> None:
    crosswalk = '[[crosswalk]]\nquestion = "Q2"\nvariable = "Q2B"\nwaves = [2]\n'
    study(1, base_spec(), crosswalk)
    spec = base_spec()
    spec["Q2B"] = spec.pop("Q2")
    assert study(2, spec, crosswalk).review_status == "approved"
    record = only(drift_of(study)[1], "renamed")
    assert not record["gates"] and "variable Q2B" in record["explained_by"]


def test_type_change_gates(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q3"] = {"label": "Used online services", "labels": {}, "missing": [], "values": ["yes", "no"] * 3}
    assert study(2, spec).review_status == "unreviewed"
    record = only(drift_of(study)[1], "type changed")
    assert record["question"] == "Q3" and record["detail"] == "numeric in wave 1, string in wave 2"


def test_question_label_change_gates(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q1"]["label"] = "Overall satisfaction with the website"
    assert study(2, spec).review_status == "unreviewed"
    assert "website" in only(drift_of(study)[1], "label changed")["detail"]


def test_value_label_change_gates_unless_reworded_in_crosswalk(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q1"]["labels"][3] = "Neutral"
    assert study(2, spec).review_status == "unreviewed"
    record = only(drift_of(study)[1], "value label changed")
    assert record["detail"] == "code 3: 'Neither' in wave 1, 'Neutral' in wave 2" and record["gates"]

    crosswalk = '[[crosswalk]]\nquestion = "Q1"\nwaves = [2]\nlabels_reworded = true\nnote = "code 3 reworded"\n'
    assert study(2, spec, crosswalk, replace=True).review_status == "approved"
    assert only(drift_of(study)[1], "value label changed")["explained_by"] == "code 3 reworded"


def test_code_added_and_removed_gate(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q3"]["labels"] = {1: "Yes", 3: "Not sure"}
    assert study(2, spec).review_status == "unreviewed"
    records = drift_of(study)[1]
    assert only(records, "code added")["detail"] == "3 'Not sure' new in wave 2"
    assert only(records, "code removed")["detail"] == "2 'No' not in wave 2"
    assert all(r["gates"] for r in records)


def test_missing_codes_change_gates(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q2"]["missing"] = [9]
    assert study(2, spec).review_status == "unreviewed"
    assert only(drift_of(study)[1], "missing codes changed")["detail"] == "8, 9 in wave 1, 9 in wave 2"


def test_reversed_scale_with_crosswalk_recode_lines_up(study) -> None:
    recode = '[[crosswalk]]\nquestion = "Q1"\nwaves = [2]\nnote = "Q1 reversed in wave 2"\n[crosswalk.recode]\n1 = 5\n2 = 4\n4 = 2\n5 = 1\n'
    study(1, base_spec(), recode)
    spec = base_spec()
    spec["Q1"]["labels"] = {
        5: "Very dissatisfied",
        4: "Dissatisfied",
        3: "Neither",
        2: "Satisfied",
        1: "Very satisfied",
        8: "Don't know",
        9: "Refused",
    }
    spec["Q1"]["values"] = [5, 4, 3, 2, 1, 8]  # the same answers as wave 1, coded the other way round
    assert study(2, spec, recode).review_status == "approved"
    records = drift_of(study)[1]
    assert [(r["change"], r["explained_by"], r["gates"]) for r in records] == [
        ("recoded", "Q1 reversed in wave 2", False)
    ]
    config = load_config(study.folder)
    con = duckdb.connect(str(study.folder / "wavetool.duckdb"), read_only=True)
    try:
        q1 = [
            r[0] for r in con.execute(f'SELECT "Q1" FROM ({harmonised_select(con, config, 2)}) ORDER BY _id').fetchall()
        ]
    finally:
        con.close()
    assert q1 == [1, 2, 3, 4, 5, 8]


def test_unreviewed_wave_blocks_use_until_approved(study, cli, tmp_path: Path) -> None:
    study(1, base_spec())
    spec = base_spec()
    del spec["Q2"]
    study(2, spec)
    con = duckdb.connect(str(study.folder / "wavetool.duckdb"), read_only=True)
    try:
        ensure_reviewed(con, [1])  # wave 1 alone is fine
        with pytest.raises(DriftGateError) as caught:
            ensure_reviewed(con, [1, 2])
    finally:
        con.close()
    assert "wave 2" in caught.value.message and "Q2 dropped" in caught.value.message
    assert "codebook approve --wave 2" in caught.value.hint and "codebook diff 1 2" in caught.value.hint
    assert caught.value.exit_code == ExitCode.DRIFT_GATE == 79

    out = tmp_path / "blocked.sav"
    code, _, err = cli("--study", study.folder, "export", "--format", "sav", "--output", out)
    assert code == 79 and "Q2 dropped" in err and not out.exists()

    code, out_text, err = cli("--study", study.folder, "codebook", "approve", "--wave", "2")
    assert code == 0 and "accepted: Q2 dropped" in out_text
    con = duckdb.connect(str(study.folder / "wavetool.duckdb"), read_only=True)
    try:
        ensure_reviewed(con, [1, 2])
        status, reviewed = con.execute("SELECT review_status, reviewed_at FROM waves WHERE wave = 2").fetchall()[0]
    finally:
        con.close()
    assert status == "approved" and reviewed is not None
    # A hand approval survives a later review with the same crosswalk.
    assert cli("--study", study.folder, "codebook", "review")[0] == 0
    assert drift_of(study)[0] == "approved"


def test_reimporting_an_earlier_wave_rereviews_the_next(study) -> None:
    study(1, base_spec())
    study(2, base_spec())
    assert drift_of(study)[0] == "approved"
    spec = base_spec()
    spec["Q1"]["missing"] = [9]
    study(1, spec, replace=True)
    status, records = drift_of(study, 2)
    assert status == "unreviewed" and only(records, "missing codes changed")["question"] == "Q1"


def test_drift_compares_with_the_previous_imported_wave(study) -> None:
    study(1, base_spec())
    spec = base_spec()
    spec["Q1"]["labels"][1] = "Very unhappy"
    study(3, spec)  # wave 2 not imported yet: compared with wave 1
    status, records = drift_of(study, 3)
    assert status == "unreviewed" and only(records, "value label changed")["wave_a"] == 1
