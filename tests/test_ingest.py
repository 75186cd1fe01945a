"""Importing real .sav, .zsav, .por and .csv files: what lands in the database (values, user-missing codes
kept as codes, blanks as NULL) and in the codebook (labels, value labels, missing codes, measure, format,
non-ASCII text, multiple-response sets, encoding)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import duckdb
import pyreadstat
import pytest

from helpers import REALWORLD
from wavefiles import LABELS, SAT, db_digest, run_pspp, wave_frame, write_por, write_sav, write_study
from wavetool.codebook import load_codebook
from wavetool.config import load_config
from wavetool.ingest import import_wave
from wavetool.store import read_store


def rows(study: Path, sql: str, params: list | None = None) -> list[tuple]:
    with read_store(study) as con:
        return con.execute(sql, params or []).fetchall()


def expected_counts(values) -> dict:
    """Code -> count in what the test wrote (NaN counted as None): the independent side of a comparison."""
    counts: dict = {}
    for v in values:
        key = None if isinstance(v, float) and math.isnan(v) else float(v)
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
def study(tmp_path):
    return write_study(tmp_path / "study")


@pytest.mark.parametrize("compress", [False, True], ids=["sav", "zsav"])
def test_sav_and_zsav_import_values_and_codebook(study, tmp_path, cli, compress):
    frame = wave_frame()
    path = write_sav(tmp_path / ("wave1.zsav" if compress else "wave1.sav"), frame, compress=compress)
    code, out, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 0, err
    assert f"wave 1: imported 40 rows x 7 columns from {path.name}" in out

    # Values: 8 and 9 stay codes, the blank is NULL; every value as written.
    got = dict(rows(study, "SELECT Q1, count(*) FROM wave_1 GROUP BY 1"))
    assert got == expected_counts(frame["Q1"])
    assert got[8.0] == 2 and got[9.0] == 1 and got[None] == 1
    table = rows(
        study, "SELECT _id, _jurisdiction, _weight, RESPID, PROV, WEIGHT, COMMENT, VISIT FROM wave_1 ORDER BY rowid"
    )
    assert [r[0] for r in table] == [str(int(v)) for v in frame["RESPID"]]
    assert [r[1] for r in table] == list(frame["PROV"]) == [r[4] for r in table]
    assert [r[2] for r in table] == list(frame["WEIGHT"])
    assert [r[6] for r in table] == list(frame["COMMENT"])
    assert "Très bien" in [r[6] for r in table]
    assert [r[7] for r in table] == [dt.date(1582, 10, 14) + dt.timedelta(seconds=s) for s in frame["VISIT"]]

    # Codebook.
    var = {
        r[0]: r[1:]
        for r in rows(study, "SELECT name, label, type, measure, format, width, role FROM variables WHERE wave = 1")
    }
    assert var["Q1"] == (LABELS["Q1"], "numeric", "ordinal", "F1.0", 1, None)
    assert var["RESPID"][-1] == "id" and var["PROV"][-1] == "jurisdiction" and var["WEIGHT"][-1] == "weight"
    assert var["PROV"][1:3] == ("string", "nominal")
    assert var["VISIT"][1] == "date"
    labels = dict(rows(study, "SELECT code, label FROM value_labels WHERE wave = 1 AND variable = 'Q1'"))
    assert labels == {("8" if k == 8 else "9" if k == 9 else str(int(k))): v for k, v in SAT.items()}
    assert labels["1"] == "Très insatisfait"
    missing = rows(
        study, "SELECT kind, code, low, high FROM missing_values WHERE wave = 1 AND variable = 'Q1' ORDER BY low"
    )
    assert missing == [("value", "8", 8.0, 8.0), ("value", "9", 9.0, 9.0)]
    assert rows(study, "SELECT encoding, reader, rows, columns FROM waves WHERE wave = 1") == [
        ("UTF-8", "polars-readstat", 40, 7)
    ]

    # The CLI shows it, non-ASCII intact.
    code, out, err = cli("--study", study, "codebook", "--wave", "1", "Q1", "--json")
    assert code == 0, err
    shown = json.loads(out)[0]
    assert shown["label"] == "Satisfaction générale « service »" and shown["missing"] == ["8", "9"]
    assert shown["value_labels"]["9"] == "Refus"


def test_por_written_by_pspp_keeps_user_missing(study, tmp_path):
    frame = wave_frame(seed=3)
    por = write_por(write_sav(tmp_path / "w.sav", frame), tmp_path / "wave3.por")
    result = import_wave(load_config(study), 3, [por])
    assert result.status == "imported" and result.rows == 40
    assert dict(rows(study, "SELECT Q1, count(*) FROM wave_3 GROUP BY 1")) == expected_counts(frame["Q1"])
    assert rows(study, "SELECT code FROM missing_values WHERE wave = 3 AND variable = 'Q2' ORDER BY code") == [
        ("8",),
        ("9",),
    ]
    assert rows(study, "SELECT label FROM value_labels WHERE wave = 3 AND variable = 'Q1' AND code = '8'") == [
        ("Ne sait pas",)
    ]
    assert rows(study, "SELECT encoding FROM waves WHERE wave = 3") == [(None,)]  # a .por declares none
    # PSPP writes UTF-8 text into a .por: accented comments survive, and nothing warns of lost text.
    assert sorted(r[0] for r in rows(study, "SELECT DISTINCT COMMENT FROM wave_3")) == sorted(set(frame["COMMENT"]))
    assert not any("lost" in w for w in result.warnings)


def test_csv_with_csv_codebook(study, tmp_path):
    frame = wave_frame(seed=4, first_id=400001)
    csv = tmp_path / "wave4.csv"
    frame.drop(columns=["VISIT"]).to_csv(csv, index=False, na_rep="")
    codebook = tmp_path / "wave4-codebook.csv"
    lines = [
        "variable,label,type,measure,format,code,code_label,missing",
        "RESPID,Respondent id,numeric,scale,F8.0,,,",
        "PROV,Province,string,nominal,A2,,,",
        "WEIGHT,Final weight,numeric,scale,F8.6,,,",
        '"Q1","Satisfaction générale « service »",numeric,ordinal,F1.0,,,',
    ]
    lines += [f'Q1,,,,,{int(k)},"{v}",{"true" if k in (8, 9) else ""}' for k, v in SAT.items()]
    lines += [
        "Q2,Ease of access,numeric,ordinal,F1.0,,,",
        "Q2,,,,,8,Don't know,true",
        "COMMENT,Comment,string,nominal,A200,,,",
    ]
    codebook.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_wave(load_config(study), 4, [csv], codebook_path=codebook)
    assert result.rows == 40 and result.files[0]["reader"] == "duckdb read_csv"
    assert dict(rows(study, "SELECT Q1, count(*) FROM wave_4 GROUP BY 1")) == expected_counts(frame["Q1"])
    assert rows(study, "SELECT COMMENT FROM wave_4 ORDER BY rowid LIMIT 3") == [
        ("",),
        ("Très bien",),
        ('Staff were "great", thanks',),
    ]
    assert rows(study, "SELECT label, measure, format FROM variables WHERE wave = 4 AND name = 'Q1'") == [
        ("Satisfaction générale « service »", "ordinal", "F1.0")
    ]
    assert rows(study, "SELECT code FROM missing_values WHERE wave = 4 AND variable = 'Q1' ORDER BY code") == [
        ("8",),
        ("9",),
    ]
    assert rows(study, "SELECT label FROM value_labels WHERE wave = 4 AND variable = 'Q1' AND code = '5'") == [
        ("Très satisfait",)
    ]
    assert rows(study, "SELECT typeof(Q1), typeof(RESPID), typeof(PROV) FROM wave_4 LIMIT 1") == [
        ("DOUBLE", "DOUBLE", "VARCHAR")
    ]


def test_csv_with_toml_codebook_from_the_config(tmp_path):
    codebook = tmp_path / "study" / "wave4.toml"
    study = write_study(tmp_path / "study", extra="")
    config_text = (
        (study / "wavetool.toml")
        .read_text(encoding="utf-8")
        .replace('number = 4\nlabel = "Wave 4"\n', 'number = 4\nlabel = "Wave 4"\ncodebook = "wave4.toml"\n')
    )
    (study / "wavetool.toml").write_text(config_text, encoding="utf-8")
    codebook.write_text(
        '[variables.Q1]\nlabel = "Qualité du service"\ntype = "numeric"\nmeasure = "ordinal"\nformat = "F1.0"\n'
        'missing = [8, 9]\nvalues = { 1 = "Très mauvaise", 5 = "Très bonne", 8 = "Ne sait pas", 9 = "Refus" }\n'
        '[variables.Q2]\nlabel = "Ease"\nmissing_range = [7, 9]\n'
        '[variables.PROV]\ntype = "string"\n',
        encoding="utf-8",
    )
    frame = wave_frame(seed=5)
    csv = tmp_path / "wave4.csv"
    frame.drop(columns=["VISIT"]).to_csv(csv, index=False, na_rep="")
    result = import_wave(load_config(study), 4, [csv])
    assert result.status == "imported"
    assert dict(rows(study, "SELECT Q1, count(*) FROM wave_4 GROUP BY 1")) == expected_counts(frame["Q1"])
    assert rows(study, "SELECT label, measure FROM variables WHERE wave = 4 AND name = 'Q1'") == [
        ("Qualité du service", "ordinal")
    ]
    assert rows(study, "SELECT kind, low, high FROM missing_values WHERE wave = 4 AND variable = 'Q2'") == [
        ("range", 7.0, 9.0)
    ]
    assert rows(study, "SELECT label FROM value_labels WHERE wave = 4 AND variable = 'Q1' AND code = '1'") == [
        ("Très mauvaise",)
    ]
    # Columns the codebook does not describe are typed from their values.
    assert rows(study, "SELECT type FROM variables WHERE wave = 4 AND name IN ('COMMENT', 'WEIGHT') ORDER BY name") == [
        ("string",),
        ("numeric",),
    ]
    # Codes 2, 3, 4 of Q1 are neither labelled nor missing: a warning, not an error.
    assert any("column Q1" in w and "neither labelled nor missing" in w for w in result.warnings)


def test_csv_without_codebook_uses_an_earlier_spss_waves_codebook(study, tmp_path):
    write_sav(tmp_path / "wave1.sav", wave_frame(seed=1))
    import_wave(load_config(study), 1, [tmp_path / "wave1.sav"])
    frame = wave_frame(seed=2, first_id=200001)
    csv = tmp_path / "wave2.csv"
    frame.drop(columns=["VISIT"]).to_csv(csv, index=False, na_rep="")
    import_wave(load_config(study), 2, [csv])
    with read_store(study) as con:
        book1, book2 = load_codebook(con, 1), load_codebook(con, 2)
    assert book2.variables["Q1"].value_labels == book1.variables["Q1"].value_labels
    assert book2.variables["Q1"].missing == book1.variables["Q1"].missing
    assert book2.variables["Q1"].label == LABELS["Q1"] and book2.variables["PROV"].type == "string"
    assert dict(rows(study, "SELECT Q1, count(*) FROM wave_2 GROUP BY 1")) == expected_counts(frame["Q1"])


def test_cp1252_csv_with_encoding(study, tmp_path):
    frame = wave_frame(seed=6)
    csv = tmp_path / "wave4.csv"
    frame.drop(columns=["VISIT"]).to_csv(csv, index=False, na_rep="", encoding="cp1252")
    result = import_wave(load_config(study), 4, [csv], encoding="cp1252")
    assert result.status == "imported"
    assert ("Le délai, trop long",) in rows(study, "SELECT DISTINCT COMMENT FROM wave_4")


def test_multiple_response_sets_survive(study, tmp_path):
    source = REALWORLD / "pyreadstat__multiple_response_simple_alltypes.sav"
    if not source.exists():
        pytest.skip(f"{source} is absent (the shared real-world SPSS files)")
    # PSPP adds the role columns to the real file and keeps its MR sets (pyreadstat cannot write them).
    target = tmp_path / "mr.sav"
    run_pspp(
        f"GET FILE='{source}'.\nCOMPUTE RESPID = $CASENUM.\nSTRING PROV (A2).\nCOMPUTE PROV = 'QC'.\n"
        f"COMPUTE WEIGHT = 1.\nSAVE OUTFILE='{target}'.\n",
        tmp_path,
    )
    result = import_wave(load_config(study), 1, [target])
    assert result.status == "imported"
    sets = {
        r[0]: r[1:]
        for r in rows(study, "SELECT name, label, type, counted_value, variables FROM mr_sets WHERE wave = 1")
    }
    assert sets["mymrset"] == ("My multiple response set", "dichotomy", "1", ["bool1", "bool2", "bool3"])
    assert sets["categorical_array"][1:] == ("category", None, ["ca_subvar_1", "ca_subvar_2", "ca_subvar_3"])
    # Its user-missing x (7, 8, 99) and z (range -999..0 plus 999) are kept as declared and as codes.
    assert rows(
        study, "SELECT kind, code, low, high FROM missing_values WHERE wave = 1 AND variable = 'z' ORDER BY kind"
    ) == [("range", None, -999.0, 0.0), ("value", "999", 999.0, 999.0)]
    frame, _ = pyreadstat.read_sav(str(source), user_missing=True)
    assert [r[0] for r in rows(study, "SELECT x FROM wave_1 ORDER BY rowid")] == [
        None if math.isnan(v) else v for v in frame["x"]
    ]
    assert [r[0] for r in rows(study, "SELECT z FROM wave_1 ORDER BY rowid")] == [
        None if math.isnan(v) else v for v in frame["z"]
    ]
    assert 999.0 in frame["z"].tolist() and 8.0 in frame["x"].tolist()  # the user-missing codes are there to keep
    assert rows(study, "SELECT upper(encoding) FROM waves WHERE wave = 1") == [("WINDOWS-1252",)]


def test_columns_given_on_the_command_line_override_the_config(study, tmp_path, cli):
    frame = wave_frame().rename(columns={"RESPID": "ID", "PROV": "REGION", "WEIGHT": "WT"})
    path = write_sav(tmp_path / "wave1.sav", frame)
    code, _, err = cli(
        "--study", study, "import", "--wave", "1", path, "--id", "ID", "--jurisdiction", "REGION", "--weight", "WT"
    )
    assert code == 0, err
    assert rows(study, "SELECT id_column, jurisdiction_column, weight_column FROM waves") == [("ID", "REGION", "WT")]
    assert rows(study, "SELECT name FROM variables WHERE role IS NOT NULL ORDER BY role") == [
        ("ID",),
        ("REGION",),
        ("WT",),
    ]


def test_several_files_for_one_wave_are_stacked(study, tmp_path):
    a = write_sav(tmp_path / "part-a.sav", wave_frame(rows=30, seed=1, first_id=100001))
    b = write_sav(tmp_path / "part-b.sav", wave_frame(rows=20, seed=2, first_id=100031))
    result = import_wave(load_config(study), 1, [a, b])
    assert result.rows == 50 and [f["rows"] for f in result.files] == [30, 20]
    assert rows(study, "SELECT min(RESPID), max(RESPID), count(DISTINCT _id) FROM wave_1") == [(100001.0, 100050.0, 50)]
    assert rows(study, "SELECT file_name FROM wave_files ORDER BY position") == [("part-a.sav",), ("part-b.sav",)]


def test_provenance_is_recorded(study, tmp_path):
    import hashlib

    from wavetool import __version__

    path = write_sav(tmp_path / "wave1.sav", wave_frame())
    import_wave(load_config(study), 1, [path])
    ((name, size, sha, n, cols),) = rows(study, "SELECT file_name, size, sha256, rows, columns FROM wave_files")
    assert (name, size, n, cols) == ("wave1.sav", path.stat().st_size, 40, 7)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    ((version, imported_at),) = rows(study, "SELECT wavetool_version, imported_at FROM waves")
    assert version == __version__
    assert abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - imported_at).total_seconds()) < 120


def test_replace_swaps_and_same_file_again_gives_same_contents(study, tmp_path, cli):
    first = write_sav(tmp_path / "first.sav", wave_frame(seed=1))
    second = write_sav(tmp_path / "second.sav", wave_frame(rows=25, seed=9))
    assert cli("--study", study, "import", "--wave", "1", first)[0] == 0
    code, out, err = cli("--study", study, "import", "--wave", "1", second, "--replace")
    assert code == 0, err
    assert "replaced 25 rows" in out
    assert rows(study, "SELECT rows FROM waves WHERE wave = 1") == [(25,)]
    assert rows(study, "SELECT count(*) FROM wave_1") == [(25,)]
    assert rows(study, "SELECT file_name FROM wave_files") == [("second.sav",)]
    assert rows(study, "SELECT count(DISTINCT wave) FROM variables") == [(1,)]

    before = db_digest_without_time(study)
    code, out, err = cli("--study", study, "import", "--wave", "1", second, "--replace")
    assert code == 0 and "replaced" in out
    assert db_digest_without_time(study) == before


def db_digest_without_time(study: Path) -> str:
    import hashlib

    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        digest = hashlib.sha256()
        for (table,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name <> 'schema_migrations' ORDER BY 1"
        ).fetchall():
            exclude = " EXCLUDE (imported_at)" if table == "waves" else ""
            digest.update(repr(con.execute(f'SELECT *{exclude} FROM "{table}" ORDER BY ALL').fetchall()).encode())
        return digest.hexdigest()
    finally:
        con.close()


def test_unchanged_reimport_is_a_no_op(study, tmp_path, cli):
    path = write_sav(tmp_path / "wave1.sav", wave_frame())
    assert cli("--study", study, "import", "--wave", "1", path)[0] == 0
    before_db = db_digest(study)
    before_bytes = (study / "wavetool.duckdb").read_bytes()
    code, out, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 0, err
    assert "already imported, nothing changed" in out
    assert db_digest(study) == before_db
    assert (study / "wavetool.duckdb").read_bytes() == before_bytes  # not even opened for writing
    code, out, _ = cli("--study", study, "import", "--wave", "1", path, "--json")
    assert json.loads(out)["status"] == "unchanged"


def test_status_shows_waves_respondents_and_subscribers(study, tmp_path, cli):
    frame = wave_frame()
    path = write_sav(tmp_path / "wave1.sav", frame)
    assert cli("--study", study, "import", "--wave", "1", path)[0] == 0
    code, out, err = cli("--study", study, "status", "--json")
    assert code == 0, err
    data = json.loads(out)
    (wave,) = data["waves"]
    assert wave["wave"] == 1 and wave["rows"] == 40 and wave["files"][0]["file_name"] == "wave1.sav"
    counts = {r["jurisdiction"]: r["waves"]["1"] for r in data["respondents"]}
    assert counts == frame["PROV"].value_counts().to_dict()
    assert [s["id"] for s in data["subscribers"]] == ["ontario"]
    code, out, err = cli("--study", study, "status")
    assert code == 0 and "wave1.sav" in out and "Respondents per jurisdiction" in out and "ontario" in out
