"""Column roles and their explicit opt-outs (issue 15): `--weight none` (unweighted), `--jurisdiction-code`
(a file without a jurisdiction column; files of several jurisdictions stack), `--id row` (row numbers as
ids), on the command line and in `[columns]` / `[waves.columns]`. Real .sav files written by pyreadstat,
imported through the CLI and checked in the study database and in what tables and reports show."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyreadstat
import pytest
from pypdf import PdfReader

from wavefiles import db_digest, wave_frame, write_sav, write_study
from wavetool.config import load_config
from wavetool.errors import ConfigError


def rows(study: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def set_wave_columns(study: Path, wave: int, lines: str) -> None:
    """Give wave ``wave`` its own [waves.columns] table in the study's config."""
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    entry = f'[[waves]]\nnumber = {wave}\nlabel = "Wave {wave}"\n'
    assert entry in text
    path.write_text(text.replace(entry, f"{entry}[waves.columns]\n{lines}\n"), encoding="utf-8")


def test_weight_none_imports_every_weight_1_and_tables_say_unweighted(tmp_path, cli):
    study = write_study(tmp_path / "study")
    wave = write_sav(tmp_path / "pilot.sav", wave_frame(rows=40).drop(columns=["WEIGHT"]))
    code, out, err = cli("--study", study, "import", "--wave", "1", wave, "--weight", "none", "--json")
    assert code == 0, err
    assert json.loads(out)["roles"]["weight"] == "none"
    assert rows(study, "SELECT count(*), min(_weight), max(_weight) FROM wave_1") == [(40, 1.0, 1.0)]
    assert rows(study, "SELECT weight_column FROM waves WHERE wave = 1") == [("none",)]
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--question", "Q1", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["meta"]["weight"] == {"1": "unweighted"}
    q1 = [r for r in doc["rows"] if r["question"] == "Q1" and r["scope"] == "all"]
    assert q1 and all(r["weighted_n"] == r["n"] for r in q1)
    code, out, _ = cli("--study", study, "tabulate", "--wave", "1", "--question", "Q1")
    assert code == 0 and "weight wave 1: unweighted" in out


def test_report_of_an_unweighted_wave_says_so(tmp_path, cli):
    study = write_study(tmp_path / "study")
    # (fieldwork dates set: a report of a wave without them fails today, a separate bug)
    path = study / "wavetool.toml"
    path.write_text(
        path.read_text().replace(
            'label = "Wave 1"\n', 'label = "Wave 1"\nfieldwork_start = 2020-09-01\nfieldwork_end = 2020-10-15\n', 1
        )
    )
    wave = write_sav(tmp_path / "pilot.sav", wave_frame(rows=60).drop(columns=["WEIGHT"]))
    assert cli("--study", study, "import", "--wave", "1", wave, "--weight", "none")[0] == 0
    code, _, err = cli("--study", study, "report", "--wave", "1")
    assert code == 0, err
    text = " ".join(page.extract_text() for page in PdfReader(study / "reports" / "wave-1" / "ontario.pdf").pages)
    text = " ".join(text.split())
    assert "Unweighted results (wave 1)" in text  # the methodology: an unweighted wave says so
    assert "All figures are estimates from the survey" in text  # the cover claims no weighting
    assert "Results are weighted so that" not in text and "All figures are weighted estimates" not in text


def test_weight_none_per_wave_in_the_config(tmp_path, cli):
    study = write_study(tmp_path / "study")
    set_wave_columns(study, 2, 'weight = "none"')
    first = write_sav(tmp_path / "w1.sav", wave_frame(rows=40))
    second = write_sav(tmp_path / "w2.sav", wave_frame(rows=40, seed=2, first_id=200001).drop(columns=["WEIGHT"]))
    assert cli("--study", study, "import", "--wave", "1", first)[0] == 0
    code, _, err = cli("--study", study, "import", "--wave", "2", second)
    assert code == 0, err
    assert rows(study, "SELECT wave, weight_column FROM waves ORDER BY wave") == [(1, "WEIGHT"), (2, "none")]
    assert rows(study, "SELECT count(DISTINCT _weight) FROM wave_1")[0][0] > 1
    assert rows(study, "SELECT DISTINCT _weight FROM wave_2") == [(1.0,)]


def test_files_of_several_jurisdictions_without_the_column_stack(tmp_path, cli):
    study = write_study(tmp_path / "study")
    on = write_sav(tmp_path / "on.sav", wave_frame(rows=30, seed=3).drop(columns=["PROV"]))
    qc = write_sav(tmp_path / "qc.sav", wave_frame(rows=25, seed=4, first_id=200001).drop(columns=["PROV"]))
    code, out, err = cli(
        "--study", study, "import", "--wave", "1", on, qc,
        "--jurisdiction-code", "on.sav=ON", "--jurisdiction-code", "qc.sav=QC", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["roles"]["jurisdiction_code"] == {"on.sav": "ON", "qc.sav": "QC"}
    assert rows(study, "SELECT _jurisdiction, count(*), min(_id) FROM wave_1 GROUP BY 1 ORDER BY 1") == [
        ("ON", 30, "100001"),
        ("QC", 25, "200001"),
    ]
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--jurisdiction", "QC", "--format", "json")
    assert code == 0, err
    bases = {s["base_n"] for s in json.loads(out)["summaries"] if s["question"] == "Q2" and s["scope"] == "QC"}
    q2 = wave_frame(rows=25, seed=4)["Q2"]
    assert bases == {int((q2.notna() & ~q2.isin([8.0, 9.0])).sum())}  # Quebec's valid answers, from the file


def test_one_code_for_every_file_and_a_boost_file_beside_a_main_file(tmp_path, cli):
    study = write_study(tmp_path / "study")
    single = write_sav(tmp_path / "bc.sav", wave_frame(rows=20, seed=5).drop(columns=["PROV"]))
    code, _, err = cli("--study", study, "import", "--wave", "1", single, "--jurisdiction-code", "BC")
    assert code == 0, err
    assert rows(study, "SELECT DISTINCT _jurisdiction FROM wave_1") == [("BC",)]
    # a main sample with its PROV column, and a Quebec boost file without one (set in the wave's config)
    set_wave_columns(study, 2, 'jurisdiction_code = { "boost.sav" = "QC" }')
    main = write_sav(tmp_path / "main.sav", wave_frame(rows=40, seed=6, first_id=300001))
    boost = write_sav(tmp_path / "boost.sav", wave_frame(rows=15, seed=7, first_id=400001).drop(columns=["PROV"]))
    code, _, err = cli("--study", study, "import", "--wave", "2", main, boost)
    assert code == 0, err
    main_counts = wave_frame(rows=40, seed=6)["PROV"].value_counts().to_dict()
    expected = {**main_counts, "QC": main_counts.get("QC", 0) + 15}
    assert dict(rows(study, "SELECT _jurisdiction, count(*) FROM wave_2 GROUP BY 1")) == expected
    assert rows(study, "SELECT count(*) FROM wave_2 WHERE _id >= '400001' AND _jurisdiction = 'QC'") == [(15,)]


def test_a_file_without_the_column_and_without_a_code_changes_nothing(tmp_path, cli):
    study = write_study(tmp_path / "study")
    assert cli("--study", study, "import", "--wave", "1", write_sav(tmp_path / "w1.sav", wave_frame()))[0] == 0
    before = db_digest(study)
    coded = write_sav(tmp_path / "qc.sav", wave_frame(rows=20, seed=8, first_id=500001).drop(columns=["PROV"]))
    uncoded = write_sav(tmp_path / "on.sav", wave_frame(rows=20, seed=9, first_id=600001).drop(columns=["PROV"]))
    code, _, err = cli(
        "--study", study, "import", "--wave", "1", "--replace", coded, uncoded, "--jurisdiction-code", "qc.sav=QC"
    )
    assert code == 65
    assert "on.sav: no jurisdiction column 'PROV'" in err and "--jurisdiction-code CODE" in err
    assert db_digest(study) == before


def test_row_ids_number_the_rows_and_custom_questions_are_refused(tmp_path, cli):
    study = write_study(tmp_path / "study")
    frame = wave_frame(rows=30).drop(columns=["RESPID"])
    code, _, err = cli(
        "--study", study, "import", "--wave", "1", write_sav(tmp_path / "anon.sav", frame), "--id", "row"
    )
    assert code == 0, err
    assert rows(study, "SELECT min(_id::INT), max(_id::INT), count(DISTINCT _id) FROM wave_1") == [(1, 30, 30)]
    assert rows(study, "SELECT id_column FROM waves") == [("row",)]
    # Ontario's custom answers keyed by RESPID cannot be matched to row numbers: refused, nothing changes
    custom = tmp_path / "custom.sav"
    pyreadstat.write_sav(
        wave_frame(rows=30)[["RESPID"]].assign(C1=1.0), str(custom), variable_value_labels={"C1": {1.0: "Yes"}}
    )
    before = db_digest(study)
    code, _, err = cli("--study", study, "custom", "merge", custom, "--subscriber", "ontario", "--wave", "1")
    assert code == 65
    assert "custom.sav" in err and "row numbers as respondent ids" in err and "--id COLUMN" in err
    assert db_digest(study) == before


def test_roles_and_opt_outs_in_the_config(tmp_path):
    study = write_study(tmp_path / "study", extra='[columns]\nid = "row"\nweight = "none"\njurisdiction_code = "ON"\n')
    set_wave_columns(study, 3, 'jurisdiction = "PROVINCE"')
    set_wave_columns(study, 4, 'jurisdiction_code = { "a.sav" = "QC", "b.sav" = "BC" }')
    config = load_config(study)
    one = config.roles_for_wave(1)
    assert one.row_ids and not one.weighted and one.code_for("x.sav") == "ON"
    assert config.roles_for_wave(3).code_for("x.sav") is None  # a wave's own column replaces the study's code
    assert config.roles_for_wave(3).jurisdiction == "PROVINCE"
    four = config.roles_for_wave(4)
    assert (four.code_for("a.sav"), four.code_for("b.sav"), four.code_for("c.sav")) == ("QC", "BC", None)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ('weight = ""', 'columns.weight: is empty: name the column or "none"'),
        ('id = " "', 'columns.id: is empty: name the column or "row"'),
        ('jurisdiction = "PROV"\njurisdiction_code = "ON"', "keep one"),
        ("jurisdiction_code = 3", "must be a jurisdiction code"),
        ('jurisdiction_code = { "a.sav" = "" }', "must be a jurisdiction code"),
    ],
)
def test_bad_role_settings_are_config_errors(tmp_path, columns, message):
    study = write_study(tmp_path / "study", extra=f"[columns]\n{columns}\n")
    with pytest.raises(ConfigError) as error:
        load_config(study)
    assert message in str(error.value)
