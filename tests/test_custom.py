"""Custom questions: merging (each refusal leaves the database unchanged), "not asked" vs "missing",
namespacing per subscriber, list and remove."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pyreadstat
import pytest

from wavefiles import rewrite_sav
from wavetool.config import load_config
from wavetool.custom import custom_questions, custom_select, list_custom, merge_custom, merge_from_config
from wavetool.errors import DataError

SUBSCRIBERS = ("ontario", "quebec", "british-columbia", "maritimes")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def file_answers(study: Path, subscriber: str, wave: int) -> dict[str, dict[str, float | None]]:
    """{respondent id: {question: value}} read straight from the sample custom file (not via wavetool)."""
    inbox = study / "inbox" / f"wave-{wave}"
    if subscriber == "quebec":
        frame, _ = pyreadstat.read_sav(str(inbox / "custom-quebec.sav"), user_missing=True)
        return {
            str(int(row.pop("RESPID"))): {k: (None if v != v else v) for k, v in row.items()}
            for row in frame.to_dict("records")
        }
    answers = {}
    for row in read_csv_rows(inbox / f"custom-{subscriber}.csv"):
        rid = row.pop("RESPID")
        answers[rid] = {k: (float(v) if v.strip() else None) for k, v in row.items()}
    return answers


def wave_jurisdictions(wave: int) -> dict[str, str]:
    """{respondent id: PROV} of a sample wave, read from its .sav/.zsav (waves 1-2)."""
    path = (
        Path(__file__).resolve().parents[1]
        / "sample_data"
        / "inbox"
        / f"wave-{wave}"
        / ("wave1.sav" if wave == 1 else "wave2.zsav")
    )
    frame, _ = pyreadstat.read_sav(str(path), usecols=["RESPID", "PROV"])
    return {str(int(r)): p for r, p in zip(frame["RESPID"], frame["PROV"], strict=True)}


@pytest.fixture
def merged_study(imported_study: Path) -> Path:
    merge_from_config(load_config(imported_study))
    return imported_study


def query(study: Path, sql_for) -> list[tuple]:
    config = load_config(study)
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return con.execute(sql_for(con, config)).fetchall()
    finally:
        con.close()


def test_merge_from_config_merges_every_file_once(imported_study: Path, db_checksum) -> None:
    config = load_config(imported_study)
    results = merge_from_config(config)
    expected = {(s.id, cf.wave) for s in config.subscribers.values() for cf in s.custom}
    assert {(r.subscriber, r.wave) for r in results} == expected and len(results) == 13
    assert all(r.status == "merged" for r in results)
    ontario1 = next(r for r in results if (r.subscriber, r.wave) == ("ontario", 1))
    assert ontario1.rows == len(read_csv_rows(imported_study / "inbox/wave-1/custom-ontario.csv"))
    assert ontario1.questions == ["C1", "C2", "C3"]
    before = db_checksum(imported_study)
    again = merge_from_config(config, 2)
    assert [(r.subscriber, r.status) for r in again] == [("ontario", "unchanged"), ("quebec", "unchanged")]
    assert db_checksum(imported_study) == before


@pytest.mark.parametrize("subscriber", ["ontario", "quebec", "maritimes"])
def test_custom_select_has_eligible_respondents_only_with_the_files_answers(
    merged_study: Path, subscriber: str
) -> None:
    config = load_config(merged_study)
    jurisdictions = set(config.subscribers[subscriber].jurisdictions)
    eligible = {rid for rid, prov in wave_jurisdictions(1).items() if prov in jurisdictions}
    answers = file_answers(merged_study, subscriber, 1)
    rows = query(merged_study, lambda con, cfg: custom_select(con, cfg, 1, subscriber))
    questions = [q.question for q in query_questions(merged_study, 1, subscriber)]
    assert {r[0] for r in rows} == eligible  # "not asked" respondents are not rows at all
    assert all(r[1] in jurisdictions for r in rows)
    asked_without_file_row = 0
    for row in rows:
        got = dict(zip(questions, row[3:], strict=True))
        if row[0] in answers:
            assert got == answers[row[0]]  # user-missing 8/9 keep their codes, blanks are NULL
        else:
            asked_without_file_row += 1
            assert all(v is None for v in got.values())  # eligible, no answer: missing, not "not asked"
    assert asked_without_file_row == len(eligible) - len(answers)
    if subscriber == "quebec":
        assert asked_without_file_row > 0  # ~6% of QC respondents are absent from Quebec's file
    assert any(8.0 in r[3:] or 9.0 in r[3:] for r in rows)


def query_questions(study: Path, wave: int, subscriber: str):
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return custom_questions(con, wave, subscriber)
    finally:
        con.close()


def test_prefix_columns_belong_to_their_subscriber_only(merged_study: Path) -> None:
    bc = query_questions(merged_study, 1, "british-columbia")
    assert [(q.question, q.source) for q in bc] == [
        ("BC_1", "prefix"),
        ("BC_2", "prefix"),
        ("C1", "file"),
        ("C2", "file"),
    ]
    assert bc[0].variable.label == "BC: Satisfaction with Service BC centres" and bc[0].variable.name == "BC_1"
    for other in ("ontario", "quebec", "maritimes"):
        assert not {q.question for q in query_questions(merged_study, 1, other)} & {"BC_1", "BC_2"}
    quebec = query_questions(merged_study, 1, "quebec")
    assert quebec[0].language == "fr" and quebec[0].variable.label == "Satisfaction à l'égard de Services Québec"
    assert quebec[0].variable.value_labels["1"] == "Très insatisfait" and [
        m.code for m in quebec[0].variable.missing
    ] == ["8", "9"]


def test_no_query_path_returns_another_subscribers_custom_data(merged_study: Path) -> None:
    """Ontario, Quebec, BC and the Maritimes all have a C1: each query run for one returns only its own."""
    config = load_config(merged_study)
    listed = list_custom(config)
    for subscriber in SUBSCRIBERS:
        own = file_answers(merged_study, subscriber, 1)
        own_texts = {q.variable.label for q in query_questions(merged_study, 1, subscriber)}
        rows = query(merged_study, lambda con, cfg, s=subscriber: custom_select(con, cfg, 1, s))
        ids = {r[0] for r in rows}
        for other in SUBSCRIBERS:
            if other == subscriber:
                continue
            other_ids = set(file_answers(merged_study, other, 1))
            assert not ids & other_ids, (subscriber, other)
            other_texts = {q.variable.label for q in query_questions(merged_study, 1, other)}
            assert not own_texts & other_texts
            mine = list_custom(config, subscriber=subscriber)
            assert mine and {r["subscriber"] for r in mine} == {subscriber}
            assert not {r["text"] for r in mine} & other_texts
        c1 = [q.question for q in query_questions(merged_study, 1, subscriber)].index("C1") + 3
        assert {r[0]: r[c1] for r in rows if r[0] in own} == {rid: a["C1"] for rid, a in own.items()}
    assert {r["subscriber"] for r in listed} == set(SUBSCRIBERS)


def test_custom_list_json(merged_study: Path, cli) -> None:
    code, out, err = cli("--study", merged_study, "custom", "list", "--wave", "1", "--subscriber", "quebec", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["question"] for r in rows] == ["C1", "C2", "C3", "C4"]
    first = rows[0]
    assert (first["subscriber"], first["wave"], first["text"], first["source"]) == (
        "quebec",
        1,
        "Satisfaction à l'égard de Services Québec",
        "file",
    )
    answers = file_answers(merged_study, "quebec", 1)
    eligible = sum(1 for p in wave_jurisdictions(1).values() if p == "QC")
    assert first["eligible"] == eligible and first["rows"] == len(answers)
    assert first["answered"] == sum(1 for a in answers.values() if a["C1"] is not None and a["C1"] not in (8.0, 9.0))
    assert first["sha256"] and first["file"] == "custom-quebec.sav"


# --- refusals: message, exit code, nothing changed ------------------------------------------------


def write_custom(
    folder: Path, name: str, rows: list[list[object]], header: list[str], codebook_vars: list[str]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    with open(folder / f"{name}-codebook.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variable", "label", "type", "measure", "format", "code", "code_label", "missing"])
        for var in codebook_vars:
            writer.writerow([var, f"Label of {var}", "numeric", "nominal", "F8.0", "", "", ""])
            if var != "RESPID":
                writer.writerow([var, "", "", "", "", "1", "Yes", ""])
                writer.writerow([var, "", "", "", "", "9", "Refused", "true"])
    return data


def ontario_ids(wave: int, n: int) -> list[str]:
    return [rid for rid, prov in wave_jurisdictions(wave).items() if prov == "ON"][:n]


def refused(cli, study: Path, db_checksum, *args: object) -> tuple[int, str]:
    before = db_checksum(study)
    code, out, err = cli("--study", study, "custom", "merge", *args)
    assert db_checksum(study) == before, "a refused merge changed the database"
    assert out == ""
    return code, err


def test_refuses_ids_not_in_the_wave(imported_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    ids = [*ontario_ids(1, 3), "999001", "999002"]
    f = write_custom(tmp_path, "bad", [[i, 1] for i in ids], ["RESPID", "C1"], ["RESPID", "C1"])
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    assert code == 65
    assert "column RESPID: 2 ids are not respondents of wave 1 (first: 999001, 999002)" in err


def test_refuses_respondents_of_other_jurisdictions(imported_study: Path, cli, db_checksum) -> None:
    f = imported_study / "inbox/wave-1/custom-ontario.csv"
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "quebec", "--wave", "1")
    total = len(read_csv_rows(f))
    first = sorted(r["RESPID"] for r in read_csv_rows(f))[0]
    assert code == 65
    assert f"{total} respondents not in quebec's jurisdiction QC (first: {first} (ON)" in err


def test_refuses_duplicate_ids(imported_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    ids = ontario_ids(1, 4)
    f = write_custom(
        tmp_path, "dup", [[ids[0], 1], [ids[1], 1], [ids[0], 9], [ids[2], 1]], ["RESPID", "C1"], ["RESPID", "C1"]
    )
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    assert code == 65 and f"respondent id {ids[0]} appears 2 times (rows 1, 3); 1 duplicated id in all" in err


def test_refuses_columns_missing_from_the_codebook(imported_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    ids = ontario_ids(1, 2)
    f = write_custom(tmp_path, "extra", [[i, 1, 1] for i in ids], ["RESPID", "C1", "C9"], ["RESPID", "C1"])
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    assert code == 65 and "column C9 not described in codebook" in err


def test_refuses_names_of_core_questions(imported_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    ids = ontario_ids(1, 2)
    f = write_custom(tmp_path, "core", [[i, 1, 1] for i in ids], ["RESPID", "C1", "Q1"], ["RESPID", "C1", "Q1"])
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    assert code == 65 and "column Q1 collides with the core question Q1 of wave 1" in err


def test_refuses_another_subscribers_prefix_column_name(imported_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    ids = ontario_ids(1, 2)
    f = write_custom(tmp_path, "prefix", [[i, 1] for i in ids], ["RESPID", "BC_1"], ["RESPID", "BC_1"])
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    assert code == 65 and "collides with british-columbia's column BC_1" in err


def test_refuses_a_file_for_another_wave(imported_study: Path, cli, db_checksum) -> None:
    f = imported_study / "inbox/wave-2/custom-ontario.csv"
    code, err = refused(cli, imported_study, db_checksum, f, "--subscriber", "ontario", "--wave", "1")
    n = len(read_csv_rows(f))
    assert code == 65 and f"looks like a file for wave 2, not wave 1: {n} of its {n} ids are wave-2 respondents" in err
    assert "--wave 2" in err


def test_refuses_unknown_subscriber_missing_codebook_and_unimported_wave(
    sample_study: Path, cli, db_checksum, tmp_path: Path
) -> None:
    from wavetool.ingest import import_wave

    import_wave(load_config(sample_study), 1, [sample_study / "inbox/wave-1/wave1.sav"])
    code, err = refused(
        cli,
        sample_study,
        db_checksum,
        sample_study / "inbox/wave-1/custom-quebec.sav",
        "--subscriber",
        "yukon",
        "--wave",
        "1",
    )
    assert code == 78 and "unknown subscriber 'yukon'" in err
    lonely = tmp_path / "lonely.csv"
    shutil.copy(sample_study / "inbox/wave-1/custom-ontario.csv", lonely)
    code, err = refused(cli, sample_study, db_checksum, lonely, "--subscriber", "ontario", "--wave", "1")
    assert code == 66 and "needs a codebook" in err and "--codebook" in err
    code, err = refused(
        cli,
        sample_study,
        db_checksum,
        sample_study / "inbox/wave-2/custom-quebec.sav",
        "--subscriber",
        "quebec",
        "--wave",
        "2",
    )
    assert code == 66 and "wave 2 is not imported" in err


def test_remerge_is_a_noop_and_replace_swaps(merged_study: Path, cli, db_checksum, tmp_path: Path) -> None:
    f = merged_study / "inbox/wave-1/custom-ontario.csv"
    before = db_checksum(merged_study)
    code, out, err = cli("--study", merged_study, "custom", "merge", f, "--subscriber", "ontario", "--wave", "1")
    assert code == 0 and "already merged, nothing changed" in out and db_checksum(merged_study) == before

    ids = ontario_ids(1, 3)
    new = write_custom(tmp_path, "new", [[i, 1] for i in ids], ["RESPID", "C7"], ["RESPID", "C7"])
    code, err = refused(cli, merged_study, db_checksum, new, "--subscriber", "ontario", "--wave", "1")
    assert code == 65 and "already has custom questions merged for wave 1" in err and "--replace" in err

    code, out, err = cli(
        "--study", merged_study, "custom", "merge", new, "--subscriber", "ontario", "--wave", "1", "--replace", "--json"
    )
    assert code == 0, err
    assert json.loads(out)[0]["status"] == "replaced"
    assert [q.question for q in query_questions(merged_study, 1, "ontario")] == ["C7"]
    rows = query(merged_study, lambda con, cfg: custom_select(con, cfg, 1, "ontario"))
    assert sorted(r[0] for r in rows if r[3] is not None) == sorted(ids)


def test_merge_from_config_is_all_or_nothing(imported_study: Path, db_checksum) -> None:
    toml = imported_study / "wavetool.toml"
    text = toml.read_text(encoding="utf-8")
    # Maritimes' wave-3 entry points at Ontario's file: every other file is fine, none may be merged.
    toml.write_text(
        text.replace('file = "inbox/wave-3/custom-maritimes.csv"', 'file = "inbox/wave-3/custom-ontario.csv"').replace(
            'codebook = "inbox/wave-3/custom-maritimes-codebook.csv"',
            'codebook = "inbox/wave-3/custom-ontario-codebook.csv"',
        ),
        encoding="utf-8",
    )
    before = db_checksum(imported_study)
    with pytest.raises(DataError, match="not in maritimes's jurisdictions NS, NB"):
        merge_from_config(load_config(imported_study))
    assert db_checksum(imported_study) == before


def test_remove_questions(merged_study: Path, cli, db_checksum) -> None:
    code, out, err = cli("--study", merged_study, "custom", "remove", "--subscriber", "ontario", "--wave", "2", "C3")
    assert code == 0 and "removed C3; kept C1, C2" in out
    assert [q.question for q in query_questions(merged_study, 2, "ontario")] == ["C1", "C2"]
    # The file now differs from what is stored: re-merging it is not a silent no-op.
    f = merged_study / "inbox/wave-2/custom-ontario.csv"
    code, err = refused(cli, merged_study, db_checksum, f, "--subscriber", "ontario", "--wave", "2")
    assert code == 65 and "questions removed since" in err
    code, _, err = cli(
        "--study", merged_study, "custom", "remove", "--subscriber", "british-columbia", "--wave", "1", "BC_1"
    )
    assert code == 65 and "BC_1 is a column of the main wave-1 file" in err
    code, out, _ = cli("--study", merged_study, "custom", "remove", "--subscriber", "quebec", "--wave", "3")
    assert code == 0 and query_questions(merged_study, 3, "quebec") == []
    code, _, err = cli("--study", merged_study, "custom", "remove", "--subscriber", "quebec", "--wave", "3")
    assert code == 66 and "no custom questions merged for wave 3" in err
    tables = {r[0] for r in query(merged_study, lambda con, cfg: "SELECT table_name FROM duckdb_tables()")}
    assert "custom_quebec_3" not in tables and "custom_quebec_2" in tables


def test_merge_custom_library_result(imported_study: Path) -> None:
    config = load_config(imported_study)
    result = merge_custom(config, "quebec", 1, imported_study / "inbox/wave-1/custom-quebec.sav")
    assert (result.status, result.questions, result.table) == ("merged", ["C1", "C2", "C3", "C4"], "custom_quebec_1")
    assert merge_custom(config, "quebec", 1, imported_study / "inbox/wave-1/custom-quebec.sav").status == "unchanged"


def test_replacing_the_wave_reports_custom_answers_that_no_longer_match(
    merged_study: Path, cli, tmp_path: Path
) -> None:
    """A corrected wave export drops some of Ontario's custom respondents and moves others to Quebec: the
    replace goes through, says so once per subscriber, and those answers are counted nowhere."""
    sav = merged_study / "inbox" / "wave-1" / "wave1.sav"
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    custom_ids = [row["RESPID"] for row in read_csv_rows(merged_study / "inbox" / "wave-1" / "custom-ontario.csv")]
    dropped, moved = {float(i) for i in custom_ids[:5]}, {float(i) for i in custom_ids[5:8]}
    frame = frame[~frame["RESPID"].isin(dropped)].copy()
    frame.loc[frame["RESPID"].isin(moved), "PROV"] = "QC"
    corrected = tmp_path / "wave1-corrected.sav"
    rewrite_sav(corrected, frame, meta)

    code, out, err = cli("--study", merged_study, "import", "--wave", "1", "--replace", corrected)

    assert code == 0, err
    assert "replaced" in out
    notices = [line for line in err.splitlines() if "custom answers" in line]
    assert notices == [
        f"Warning: wave 1: ontario's custom answers (custom-ontario.csv): 5 are no longer respondents of the wave"
        f" and 3 are now outside its jurisdictions, of {len(custom_ids)}; they are not counted. Merge a custom file"
        " that matches the new wave (`wavetool custom merge FILE --subscriber ontario --wave 1 --replace`)"
    ]
    rows = query(merged_study, lambda con, cfg: f"SELECT _id FROM ({custom_select(con, cfg, 1, 'ontario')})")
    assert {r[0] for r in rows} == {str(int(i)) for i in frame.loc[frame["PROV"] == "ON", "RESPID"]}
    assert not {r[0] for r in rows} & {str(int(i)) for i in dropped | moved}

    # Replacing it again with the original file: every custom answer matches again, nothing to report.
    code, _, err = cli("--study", merged_study, "import", "--wave", "1", "--replace", sav)
    assert code == 0 and "custom answers" not in err
