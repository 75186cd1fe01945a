"""Every validation error of `wavetool import`: a one-line message naming the file (and column and row where
there is one), the documented exit code, no traceback, and the study database exactly as it was.

All these errors are found before the study lock is taken, so the database file is never even opened for
writing: its bytes are compared as well as its contents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wavefiles import db_digest, file_digest, wave_frame, write_sav, write_study

Case = Callable[[Path], tuple[list[str], list[str]]]  # folder -> (import arguments after --wave, expected texts)


def sav_with(edit: Callable) -> Case:
    def build(folder: Path) -> tuple[list[str], list[str]]:
        frame = wave_frame(rows=30, seed=7, first_id=200001)
        expected = edit(frame)
        path = write_sav(folder / "wave2.sav", frame)
        return [str(path)], ["wave2.sav", *expected]

    return build


def csv_with(text: Callable[[str], str], encoding: str = "utf-8", extra: list[str] | None = None) -> Case:
    def build(folder: Path) -> tuple[list[str], list[str]]:
        frame = wave_frame(rows=30, seed=7, first_id=200001).drop(columns=["VISIT"])
        path = folder / "wave2.csv"
        path.write_text(text(frame.to_csv(index=False, na_rep="", lineterminator="\n")), encoding=encoding)
        return [str(path), *(extra or [])], ["wave2.csv"]

    return build


def drop(column: str) -> Callable:
    def edit(frame):
        frame.drop(columns=[column], inplace=True)
        return [
            repr(column),
            f"--{ {'RESPID': 'id', 'PROV': 'jurisdiction', 'WEIGHT': 'weight'}[column] }".replace(" ", ""),
        ]

    return edit


def duplicate_ids(frame):
    frame.loc[6, "RESPID"] = frame.loc[2, "RESPID"]
    return ["column RESPID", "respondent id 200003 appears 2 times", "rows 3, 7"]


def blank_id(frame):
    frame.loc[3, "RESPID"] = np.nan
    return ["column RESPID", "empty respondent id at row 4"]


def unknown_jurisdiction(frame):
    frame.loc[11, "PROV"] = "XX"
    return ["column PROV, row 12", "unknown jurisdiction code 'XX'"]


def weight_value(value, shown: str) -> Callable:
    def edit(frame):
        frame.loc[4, "WEIGHT"] = value
        return [f"column WEIGHT, row 5: weight is {shown}", "positive and finite"]

    return edit


def ragged(text: str) -> str:
    lines = text.splitlines()
    lines[8] += ",extra"
    return "\n".join(lines) + "\n"


CASES: dict[str, tuple[Case, list[str]]] = {
    "missing id column": (sav_with(drop("RESPID")), ["no id column"]),
    "missing jurisdiction column": (sav_with(drop("PROV")), ["no jurisdiction column"]),
    "missing weight column": (sav_with(drop("WEIGHT")), ["no weight column"]),
    "duplicate ids": (sav_with(duplicate_ids), []),
    "blank id": (sav_with(blank_id), []),
    "unknown jurisdiction": (sav_with(unknown_jurisdiction), []),
    "negative weight": (sav_with(weight_value(-1.5, "-1.5")), []),
    "zero weight": (sav_with(weight_value(0.0, "0")), []),
    "blank weight": (sav_with(weight_value(np.nan, "blank")), []),
    "NaN weight in a CSV": (
        csv_with(
            lambda t: (
                t.replace("\n200005,", "\n200005,XX,", 1)
                .replace(",XX,ON,", ",ON,")
                .replace(",XX,QC,", ",QC,")
                .replace(",XX,BC,", ",BC,")
            )
        ),
        [],
    ),
    "wrong encoding without --encoding": (csv_with(lambda t: t, encoding="cp1252"), ["not valid UTF-8", "--encoding"]),
    "ragged CSV": (csv_with(ragged), ["line 9: the row has 7 fields but the header has 6"]),
    "header-only CSV": (csv_with(lambda t: t.splitlines()[0] + "\n"), ["header but no data rows"]),
}


def _nan_weight_case(folder: Path) -> tuple[list[str], list[str]]:
    frame = wave_frame(rows=30, seed=7, first_id=200001).drop(columns=["VISIT"])
    frame["WEIGHT"] = frame["WEIGHT"].astype(object)
    frame.loc[4, "WEIGHT"] = "NaN"
    path = folder / "wave2.csv"
    frame.to_csv(path, index=False, na_rep="")
    return [str(path)], ["wave2.csv", "column WEIGHT, row 5: weight is NaN"]


CASES["NaN weight in a CSV"] = (_nan_weight_case, [])


def _file_case(name: str, content: bytes, expected: list[str]) -> Case:
    def build(folder: Path) -> tuple[list[str], list[str]]:
        path = folder / name
        path.write_bytes(content)
        return [str(path)], [name, *expected]

    return build


def _truncated(folder: Path) -> tuple[list[str], list[str]]:
    whole = write_sav(folder / "whole.sav", wave_frame(rows=400, seed=8, first_id=200001))
    data = whole.read_bytes()
    path = folder / "wave2.sav"
    path.write_bytes(data[: len(data) * 2 // 3])
    return [str(path)], ["wave2.sav", "SPSS file", "truncated"]


def _no_rows(folder: Path) -> tuple[list[str], list[str]]:
    path = write_sav(folder / "wave2.sav", wave_frame(rows=30, seed=8).iloc[0:0])
    return [str(path)], ["wave2.sav", "no data rows"]


CASES.update(
    {
        ".sav without respondents": (_no_rows, []),
        "empty file": (_file_case("wave2.sav", b"", ["the file is empty"]), []),
        "empty CSV": (_file_case("wave2.csv", b"", ["the file is empty"]), []),
        "random bytes named .sav": (
            _file_case("wave2.sav", np.random.default_rng(1).bytes(4096), ["not a readable SPSS file"]),
            [],
        ),
        "truncated .sav": (_truncated, []),
        "unsupported extension": (
            _file_case("wave2.xlsx", b"PK\x03\x04 not a wave", ["unsupported file type .xlsx", ".sav"]),
            [],
        ),
    }
)


@pytest.fixture
def study_with_wave_1(tmp_path):
    study = write_study(tmp_path / "study")
    wave1 = write_sav(tmp_path / "wave1.sav", wave_frame(rows=30, seed=1))
    from wavetool.config import load_config
    from wavetool.ingest import import_wave

    import_wave(load_config(study), 1, [wave1])
    return study


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A temporary folder of this test's own, where imports put their staging database."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_validation_error_is_clear_and_changes_nothing(name, study_with_wave_1, tmp_path, private_tmp, cli):
    study = study_with_wave_1
    build, more = CASES[name]
    folder = tmp_path / "input"
    folder.mkdir()
    args, expected = build(folder)
    before, before_bytes = db_digest(study), file_digest(study / "wavetool.duckdb")

    code, out, err = cli("--study", study, "import", "--wave", "2", *args)

    assert code == 65, err
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines[0].startswith("Error: ") and len([x for x in lines if x.startswith("Error:")]) == 1, err
    assert any(x.startswith("Hint: ") for x in lines), err
    assert expected[0] in lines[0]  # the file, on the Error line
    for text in expected + more:
        assert text in err, f"{text!r} not in {err!r}"
    assert db_digest(study) == before
    assert file_digest(study / "wavetool.duckdb") == before_bytes
    assert not (study / "wavetool.duckdb.wal").exists()
    assert list(private_tmp.iterdir()) == [], "staging folder left behind"


def test_reimport_of_different_files_without_replace_refuses(study_with_wave_1, tmp_path, cli):
    study = study_with_wave_1
    other = write_sav(tmp_path / "other.sav", wave_frame(rows=25, seed=99))
    before = db_digest(study)
    code, out, err = cli("--study", study, "import", "--wave", "1", other)
    assert code == 65
    assert err.startswith("Error: wave 1 is already imported from different files than other.sav")
    assert "--replace" in err and "Traceback" not in err
    assert db_digest(study) == before


def test_missing_file_is_exit_66(study_with_wave_1, tmp_path, cli):
    code, _, err = cli("--study", study_with_wave_1, "import", "--wave", "2", tmp_path / "nowhere.sav")
    assert code == 66 and f"Error: {tmp_path / 'nowhere.sav'}: file not found" in err


def test_invalid_value_in_a_csv_names_line_and_column(study_with_wave_1, tmp_path, cli):
    frame = wave_frame(rows=30, seed=7, first_id=200001).drop(columns=["VISIT"])
    frame["Q2"] = frame["Q2"].astype(object)
    frame.loc[6, "Q2"] = "five"
    path = tmp_path / "wave2.csv"
    frame.to_csv(path, index=False, na_rep="")
    before = db_digest(study_with_wave_1)
    code, _, err = cli("--study", study_with_wave_1, "import", "--wave", "2", path, "--codebook", _codebook(tmp_path))
    assert code == 65
    assert "wave2.csv: line 8 (data row 7), column Q2: 'five' is not a valid double value" in err
    assert db_digest(study_with_wave_1) == before


def _codebook(folder: Path) -> Path:
    path = folder / "codebook.csv"
    path.write_text(
        "variable,label,type,measure,format,code,code_label,missing\nQ2,Ease,numeric,ordinal,F1.0,,,\n"
        "PROV,Province,string,nominal,A2,,,\n",
        encoding="utf-8",
    )
    return path


def test_jurisdictions_from_value_labels_when_the_config_lists_none(tmp_path, cli):
    study = write_study(tmp_path / "study", jurisdictions=False)
    frame = wave_frame(rows=30, seed=3)
    frame.loc[9, "PROV"] = "NU"  # not among PROV's value labels (ON, QC, BC)
    path = write_sav(tmp_path / "wave1.sav", frame)
    code, _, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 65
    assert "column PROV, row 10: unknown jurisdiction code 'NU'" in err and "labelled in PROV's value labels" in err


def test_unlabelled_codes_are_warnings_with_a_count(tmp_path, cli):
    study = write_study(tmp_path / "study")
    frame = wave_frame(rows=30, seed=3)
    frame.loc[[3, 4, 5], "Q2"] = [6.0, 7.0, 6.0]
    path = write_sav(tmp_path / "wave1.sav", frame)
    code, out, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 0, err
    assert f"Warning: {path}: column Q2: 3 values neither labelled nor missing (e.g. 6, 7)" in err
    assert "imported 30 rows" in out
