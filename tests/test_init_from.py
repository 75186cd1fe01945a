"""`wavetool init DIR --from FILE`: a commented config seeded from a real export, that imports that file with
no edit; roles guessed only where one column fits (and said); jurisdictions from the jurisdiction column,
named from Statistics Canada's codes; a placeholder study name that report, run and send refuse."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from wavefiles import SAT, run_pspp
from wavetool.config import PLACEHOLDER_NAME, load_config

STATCAN = {10: "Newfoundland and Labrador", 24: "Quebec", 35: "Ontario", 48: "Alberta", 59: "British Columbia"}


def statcan_sav(path: Path, rows: int = 200, weight: str = "WT_FINAL", extra: dict | None = None) -> Path:
    """A vendor file coded with Statistics Canada's numeric province codes (as the issue's user had)."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "RESPID": np.arange(5001, 5001 + rows, dtype=float),
            "PROVINCE": rng.choice(np.array(list(STATCAN), dtype=float), size=rows),
            weight: np.round(rng.uniform(0.5, 2.0, size=rows), 4),
            "Q1": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 8.0], size=rows),
        }
        | (extra or {})
    )
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels={"RESPID": "Respondent ID", "PROVINCE": "Province of residence", weight: "Final weight"},
        variable_value_labels={"PROVINCE": {float(k): v for k, v in STATCAN.items()}, "Q1": SAT},
        missing_ranges={"Q1": [8, 9]},
    )
    return path


def test_seeded_config_names_statcan_codes_and_imports_the_file_without_edit(tmp_path, cli):
    sav = statcan_sav(tmp_path / "vendor.sav")
    study = tmp_path / "mystudy"
    code, out, err = cli("init", study, "--from", sav)
    assert code == 0, err
    assert (
        "guessed id = RESPID" in out and "guessed weight = WT_FINAL" in out and "guessed jurisdiction = PROVINCE" in out
    )
    assert "named from Statistics Canada's codes" in out
    text = (study / "wavetool.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert data["columns"] == {"id": "RESPID", "jurisdiction": "PROVINCE", "weight": "WT_FINAL"}
    assert data["jurisdictions"]["24"] == {"en": "Quebec", "fr": "Québec"}
    assert data["jurisdictions"]["10"] == {"en": "Newfoundland and Labrador", "fr": "Terre-Neuve-et-Labrador"}
    assert sorted(data["jurisdictions"]) == ["10", "24", "35", "48", "59"]
    assert data["study"]["name"] == PLACEHOLDER_NAME
    assert sum(line.startswith("#") for line in text.splitlines()) >= 20  # commented

    code, out, err = cli("--study", study, "import", "--wave", "1", sav)
    assert code == 0, err
    assert "wave 1: imported 200 rows" in out
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--jurisdiction", "24", "--question", "Q1")
    assert code == 0, err
    assert "Très satisfait" in out


@pytest.mark.parametrize(
    "command", [["report", "--wave", "1"], ["run", "--wave", "1", "--no-send"], ["send", "--wave", "1"]]
)
def test_report_run_and_send_refuse_the_placeholder_name(tmp_path, cli, command):
    study = tmp_path / "mystudy"
    assert cli("init", study, "--from", statcan_sav(tmp_path / "vendor.sav"))[0] == 0
    code, out, err = cli("--study", study, *command)
    assert code == 78, err
    assert "study.name is still" in err and "set [study] name" in err
    assert not (study / "reports").exists() and not (study / "outbox").exists()


def test_once_named_report_is_no_longer_refused_for_the_name(tmp_path, cli):
    study = tmp_path / "mystudy"
    assert cli("init", study, "--from", statcan_sav(tmp_path / "vendor.sav"))[0] == 0
    path = study / "wavetool.toml"
    path.write_text(path.read_text().replace(PLACEHOLDER_NAME, "Citizens First 2020"), encoding="utf-8")
    assert load_config(study).name == "Citizens First 2020"
    load_config(study).require_name()  # raises nothing


def test_two_weight_columns_are_not_guessed_but_asked_for(tmp_path, cli):
    sav = statcan_sav(tmp_path / "vendor.sav", weight="WEIGHT", extra={"WT": np.ones(200)})
    code, _, err = cli("init", tmp_path / "s", "--from", sav)
    assert code == 65
    assert "cannot tell which column holds the weight (candidates: WEIGHT, WT)" in err and "--weight COLUMN" in err
    assert not (tmp_path / "s" / "wavetool.toml").exists()
    code, out, err = cli("init", tmp_path / "s", "--from", sav, "--weight", "wt")  # any case, file's spelling kept
    assert code == 0, err
    assert tomllib.loads((tmp_path / "s" / "wavetool.toml").read_text())["columns"]["weight"] == "WT"
    assert "guessed weight" not in out


def test_two_letter_codes_without_labels_and_own_codes(tmp_path, cli):
    frame = pd.DataFrame(
        {
            "CaseID": np.arange(1, 41, dtype=float),
            "PROV": np.array(["ON", "QC", "NU", "XX"] * 10, dtype=object),
            "WEIGHT": np.ones(40),
        }
    )
    sav = tmp_path / "letters.sav"
    pyreadstat.write_sav(frame, str(sav))
    code, out, err = cli("init", tmp_path / "s", "--from", sav, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["roles"] == {"id": "CaseID", "jurisdiction": "PROV", "weight": "WEIGHT"}
    assert result["jurisdictions"]["NU"] == {"en": "Nunavut", "fr": "Nunavut"}
    assert result["jurisdictions"]["QC"] == {"en": "Quebec", "fr": "Québec"}
    assert result["jurisdictions"]["XX"] == {"en": "XX", "fr": "XX"}  # not a standard code: the file's own
    assert any("XX" in note and "translate" in note for note in result["notes"])
    assert cli("--study", tmp_path / "s", "import", "--wave", "1", sav)[0] == 0


def test_a_label_that_disagrees_with_the_standard_code_is_kept(tmp_path, cli):
    """A vendor's code 10 meaning "Atlantic" is not Newfoundland: the file's label wins."""
    frame = pd.DataFrame({"RESPID": [1.0, 2.0], "REGION": [10.0, 20.0], "WEIGHT": [1.0, 1.0]})
    sav = tmp_path / "regions.sav"
    pyreadstat.write_sav(frame, str(sav), variable_value_labels={"REGION": {10.0: "Atlantic", 20.0: "Prairies"}})
    code, out, err = cli("init", tmp_path / "s", "--from", sav, "--jurisdiction", "REGION", "--json")
    assert code == 0, err
    assert json.loads(out)["jurisdictions"] == {
        "10": {"en": "Atlantic", "fr": "Atlantic"},
        "20": {"en": "Prairies", "fr": "Prairies"},
    }


def test_init_from_never_overwrites_a_config(tmp_path, cli):
    study = tmp_path / "s"
    study.mkdir()
    (study / "wavetool.toml").write_text("# mine\n", encoding="utf-8")
    code, _, err = cli("init", study, "--from", statcan_sav(tmp_path / "vendor.sav"))
    assert code == 78 and "never overwrites" in err
    assert (study / "wavetool.toml").read_text() == "# mine\n"


def test_a_por_made_by_pspp_from_pspps_own_example_seeds_a_study(tmp_path, cli):
    """PSPP's example hotel.sav (a real satisfaction survey file nobody here wrote), given the id, province
    and weight a vendor adds, exported to .por by PSPP: names come back upper case."""
    hotel = Path("/usr/share/pspp/examples/hotel.sav")
    if not hotel.exists():
        pytest.skip("PSPP's examples are not installed (apt-get install pspp)")
    por = tmp_path / "hotel.por"
    run_pspp(
        f"GET FILE='{hotel}'.\nCOMPUTE respid = $CASENUM.\nCOMPUTE prov = 35.\nIF ($CASENUM > 8) prov = 24.\n"
        "COMPUTE weight = 1 + MOD($CASENUM, 3) / 2.\nVALUE LABELS prov 35 'Ontario' 24 'Québec'.\n"
        f"EXPORT OUTFILE='{por}'.\n",
        tmp_path,
    )
    code, out, err = cli("init", tmp_path / "s", "--from", por)
    assert code == 0, err
    data = tomllib.loads((tmp_path / "s" / "wavetool.toml").read_text(encoding="utf-8"))
    assert data["columns"] == {"id": "RESPID", "jurisdiction": "PROV", "weight": "WEIGHT"}
    assert data["jurisdictions"] == {"24": {"en": "Quebec", "fr": "Québec"}, "35": {"en": "Ontario", "fr": "Ontario"}}
    code, out, err = cli("--study", tmp_path / "s", "import", "--wave", "1", por)
    assert code == 0, err
    assert "17 rows" in out


def test_plain_init_leaves_the_name_to_set_too(tmp_path, cli):
    """The example config no longer carries the sample study's name (a report went out under it)."""
    assert cli("init", tmp_path / "s")[0] == 0
    config = load_config(tmp_path / "s")
    assert config.name == PLACEHOLDER_NAME
    code, _, err = cli("--study", tmp_path / "s", "report", "--wave", "1")
    assert code == 78 and "study.name is still" in err


def test_a_csv_export_seeds_a_study_too(tmp_path, cli):
    csv = tmp_path / "w.csv"
    csv.write_text("RESPID,PROV,WEIGHT,Q1\n1,35,1.0,1\n2,24,0.5,2\n3,35,1.5,1\n4,62,1.0,2\n", encoding="utf-8")
    code, out, err = cli("init", tmp_path / "s", "--from", csv, "--json")
    assert code == 0, err
    assert json.loads(out)["jurisdictions"] == {
        "24": {"en": "Quebec", "fr": "Québec"},
        "35": {"en": "Ontario", "fr": "Ontario"},
        "62": {"en": "Nunavut", "fr": "Nunavut"},
    }
    code, out, err = cli("--study", tmp_path / "s", "import", "--wave", "1", csv)
    assert code == 0, err


def test_a_file_with_no_id_jurisdiction_or_weight_seeds_with_the_opt_outs(tmp_path, cli):
    """A bare satisfaction file (no id, no jurisdiction, no weight: PSPP's hotel.sav is one) is refused with
    the opt-outs named, then seeded with them, and the file imports with no edit, unweighted."""
    rng = np.random.default_rng(3)
    bare = tmp_path / "bare.sav"
    frame = pd.DataFrame({"v1": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=40), "v2": rng.choice([1.0, 2.0], size=40)})
    pyreadstat.write_sav(
        frame,
        str(bare),
        column_labels={"v1": "Satisfied with the service", "v2": "Used online"},
        variable_value_labels={"v1": SAT, "v2": {1.0: "Yes", 2.0: "No"}},
    )

    code, _, err = cli("init", tmp_path / "refused", "--from", bare)
    assert code == 65 and "cannot tell which column holds the id" in err and "--id row" in err
    assert not (tmp_path / "refused" / "wavetool.toml").exists()
    code, _, err = cli("init", tmp_path / "both", "--from", bare, "--jurisdiction", "v1", "--jurisdiction-code", "ON")
    assert code == 78 and "not both" in err

    study = tmp_path / "s"
    code, out, err = cli("init", study, "--from", bare, "--id", "row", "--weight", "none", "--jurisdiction-code", "ON")
    assert code == 0, err
    assert "id = row (row numbers are the ids" in out and "weight = none (unweighted" in out
    data = tomllib.loads((study / "wavetool.toml").read_text(encoding="utf-8"))
    assert data["columns"] == {"id": "row", "jurisdiction_code": "ON", "weight": "none"}
    assert data["jurisdictions"] == {"ON": {"en": "Ontario", "fr": "Ontario"}}
    code, out, err = cli("--study", study, "import", "--wave", "1", bare)
    assert code == 0, err
    assert "40 rows" in out
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--format", "json")
    assert code == 0, err
    tables = json.loads(out)
    assert tables["meta"]["weight"] == {"1": "unweighted"}
    v1 = [r for r in tables["rows"] if r["question"] == "v1" and r["code"] == "1"]
    assert v1 and v1[0]["n"] == int((frame.v1 == 1).sum())
