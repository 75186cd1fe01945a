"""SPSS variable names are case-insensitive, and so are wavetool's: a .por stores names in upper case, and the
same data as a .sav (lower-case names) and as its .por gives no drift; roles, crosswalk entries and config keys
that name variables match whatever the case, and the file's own spelling is what is shown."""

from __future__ import annotations

import json

import duckdb

from wavefiles import wave_frame, write_por, write_sav, write_study

LOWER = '[columns]\nid = "respid"\njurisdiction = "prov"\nweight = "weight"\n'


def lower_case_sav(path, seed=1, first_id=100001):
    frame = wave_frame(60, seed=seed, first_id=first_id)
    write_sav(path, frame)
    # the same file with lower-case names: rename in the frame and write again with the same metadata
    import pyreadstat

    _, meta = pyreadstat.read_sav(str(path), metadataonly=True, user_missing=True)
    lower = frame.rename(columns=str.lower)
    pyreadstat.write_sav(
        lower,
        str(path),
        column_labels={k.lower(): v for k, v in meta.column_names_to_labels.items()},
        variable_value_labels={k.lower(): v for k, v in meta.variable_value_labels.items()},
        missing_ranges={"q1": [8, 9], "q2": [8, 9]},
        variable_measure={"q1": "ordinal", "q2": "ordinal", "prov": "nominal"},
        variable_format={"q1": "F1.0", "q2": "F1.0", "weight": "F8.6", "respid": "F8.0", "visit": "DATE11"},
    )
    return path


def rows(study, sql):
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_same_data_as_sav_and_por_gives_no_drift(tmp_path, cli):
    study = write_study(tmp_path / "study", extra=LOWER)
    sav = lower_case_sav(tmp_path / "w1.sav")
    por = write_por(lower_case_sav(tmp_path / "w2.sav", seed=2, first_id=200001), tmp_path / "w2.por")
    assert b"RESPID" in por.read_bytes() and b"respid" not in por.read_bytes()  # PSPP's .por: upper case
    code, out, err = cli("--study", study, "import", "--wave", "1", sav)
    assert code == 0, err
    code, out, err = cli("--study", study, "import", "--wave", "2", por)  # roles "respid" find "RESPID"
    assert code == 0, err
    assert "drifted" not in err
    assert rows(study, "SELECT review_status FROM waves WHERE wave = 2") == [("approved",)]
    code, out, err = cli("--study", study, "codebook", "diff", "1", "2", "--json")
    assert code == 0, err
    assert json.loads(out) == []  # no rename q1 -> Q1, no added/dropped
    # the question keeps the first wave's spelling; wave 2's variable keeps its own
    assert rows(study, "SELECT name, question FROM variables WHERE wave = 2 AND name = 'Q1'") == [("Q1", "q1")]
    code, out, err = cli("--study", study, "tabulate", "--wave", "2", "--question", "q1", "--format", "json")
    assert code == 0, err
    summary = json.loads(out)["summaries"][0]
    assert summary["question"] == "q1" and summary["previous_topbox"] is not None  # compared with wave 1


def test_role_options_match_whatever_the_case(tmp_path, cli):
    study = write_study(tmp_path / "study")  # [columns] default: RESPID, PROV, WEIGHT
    code, out, err = cli("--study", study, "import", "--wave", "1", lower_case_sav(tmp_path / "w1.sav"))
    assert code == 0, err  # RESPID finds respid
    code, out, err = cli(
        "--study",
        study,
        "import",
        "--wave",
        "2",
        "--id",
        "ReSpId",
        lower_case_sav(tmp_path / "w2.sav", first_id=300001),
    )
    assert code == 0, err
    assert rows(study, "SELECT id_column, jurisdiction_column, weight_column FROM waves WHERE wave = 2") == [
        ("respid", "prov", "weight")
    ]


def test_crosswalk_and_config_keys_match_whatever_the_case(tmp_path, cli):
    extra = (
        LOWER
        + '[[crosswalk]]\nquestion = "Q1"\nvariable = "Q2X"\nwaves = [2]\nnote = "renamed"\n'
        + "[tables.scales.Q2]\ntop = [5]\nbottom = [1]\n"
        + '[translations.fr]\n"Q2" = "Facilité"\n"Q2.5" = "Tout à fait"\n'
    )
    study = write_study(tmp_path / "study", extra=extra)
    assert cli("--study", study, "import", "--wave", "1", lower_case_sav(tmp_path / "w1.sav"))[0] == 0
    w2 = lower_case_sav(tmp_path / "w2.sav", seed=2, first_id=200001)
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(w2), user_missing=True)
    frame = frame.rename(columns={"q1": "q2x"})
    labels = {("q2x" if k == "q1" else k): v for k, v in meta.variable_value_labels.items()}
    pyreadstat.write_sav(
        frame,
        str(w2),
        column_labels={("q2x" if k == "q1" else k): v for k, v in meta.column_names_to_labels.items()},
        variable_value_labels=labels,
        missing_ranges={"q2x": [8, 9], "q2": [8, 9]},
        variable_measure={"q2x": "ordinal", "q2": "ordinal", "prov": "nominal"},
    )
    code, out, err = cli("--study", study, "import", "--wave", "2", w2)
    assert code == 0, err
    assert rows(study, "SELECT review_status FROM waves WHERE wave = 2") == [("approved",)], err
    assert rows(study, "SELECT question FROM variables WHERE wave = 2 AND name = 'q2x'") == [("q1",)]
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--question", "q2", "--format", "json")
    summary = json.loads(out)["summaries"][0]
    top = sum(r["percent"] or 0 for r in json.loads(out)["rows"] if r["code"] == "5" and not r["missing"])
    assert abs(summary["topbox"] - top) < 1e-9  # [tables.scales.Q2] top = [5] applied to q2
    from wavetool.config import load_config
    from wavetool.texts import translated

    config = load_config(study)
    assert translated(config, "fr", "q2", "Ease of access", "en") == "Facilité"
    assert translated(config, "fr", "q2.5", "Très satisfait", "en") == "Tout à fait"
