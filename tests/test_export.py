"""Export of the harmonised data: .sav round trip against the original files, Parquet metadata, CSV +
codebook, and custom columns only for the subscriber asked for."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pyreadstat
import pytest

from wavetool.config import load_config
from wavetool.custom import merge_from_config
from wavetool.ingest import import_wave
from wavetool.status import init_study
from wavetool.store import read_store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

QUESTIONS = ("Q1", "Q3", "Q5", "Q12", "Q24", "CH_1", "GENDER", "AGEGRP")


def original_waves() -> dict[int, dict[str, list]]:
    """Each sample wave's columns read straight from its file (pyreadstat / csv), no wavetool involved."""
    inbox = SAMPLE / "inbox"
    waves = {}
    for wave, name in ((1, "wave-1/wave1.sav"), (2, "wave-2/wave2.zsav")):
        frame, _ = pyreadstat.read_sav(str(inbox / name), user_missing=True)
        waves[wave] = {
            c: [None if isinstance(v, float) and math.isnan(v) else v for v in frame[c]] for c in frame.columns
        }
    if shutil.which("pspp"):
        # pyreadstat reads a .por's user-missing codes as blanks; GNU PSPP writes them out as codes.
        with tempfile.TemporaryDirectory() as tmp:
            syntax, out = Path(tmp) / "w3.sps", Path(tmp) / "w3.csv"
            syntax.write_text(
                f"IMPORT FILE='{inbox / 'wave-3/wave3.por'}'.\n"
                f"SAVE TRANSLATE /OUTFILE='{out}' /TYPE=CSV /FIELDNAMES /REPLACE.\n",
                encoding="utf-8",
            )
            subprocess.run(["pspp", str(syntax)], check=True, capture_output=True)
            waves[3] = _csv_columns(out)
    waves[4] = _csv_columns(inbox / "wave-4/wave4.csv")
    waves[4]["Q5"] = waves[4].pop("Q5A")
    return waves


def _csv_columns(path: Path) -> dict[str, list]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        c: [float(r[c]) if r[c].strip() and c not in ("PROV", "COMMENT") else (r[c].strip() or None) for r in rows]
        for c in rows[0]
    }


def counts(values: list) -> Counter:
    return Counter(None if v is None else float(v) for v in values)


@pytest.fixture(scope="module")
def originals() -> dict[int, dict[str, list]]:
    return original_waves()


def new_study(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    init_study(folder)
    shutil.copy(SAMPLE / "wavetool.toml", folder / "wavetool.toml")
    return folder


def test_sav_round_trip_gives_the_same_frequencies(imported_study: Path, cli, tmp_path: Path, originals) -> None:
    out = tmp_path / "all.sav"
    code, stdout, err = cli("--study", imported_study, "export", "--format", "sav", "--output", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["rows"] == 14800
    _, meta = pyreadstat.read_sav(str(out), user_missing=True, metadataonly=True)
    assert meta.variable_value_labels["Q3"][3.0] == "Neither satisfied nor dissatisfied"
    assert meta.missing_ranges["Q1"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]
    assert "Q5A" not in meta.column_names and not any(c.startswith(("BC_", "C1")) for c in meta.column_names)

    again = new_study(tmp_path, "again")
    import_wave(load_config(again), 1, [out])
    con = duckdb.connect(str(again / "wavetool.duckdb"), read_only=True)
    try:
        for question in QUESTIONS:
            got = {}
            for wave, value, n in con.execute(
                f'SELECT "wave", "{question}", count(*) FROM wave_1 GROUP BY ALL'
            ).fetchall():
                got.setdefault(int(wave), Counter())[value] = n
            for wave, columns in originals.items():
                expected = counts(columns[question]) if question in columns else Counter({None: len(columns["RESPID"])})
                assert got[wave] == expected, (question, wave)
        # Weighted sums per code, to the decimal, against numpy on the original files.
        for wave, columns in originals.items():
            codes = np.array([np.nan if v is None else v for v in columns["Q1"]], dtype=float)
            weights = np.array(columns["WEIGHT"], dtype=float)
            for code in (1.0, 5.0, 8.0):
                (total,) = con.execute(
                    'SELECT sum("WEIGHT") FROM wave_1 WHERE "wave" = ? AND "Q1" = ?', [wave, code]
                ).fetchall()[0]
                assert total == pytest.approx(weights[codes == code].sum(), abs=1e-9)
        labels = dict(con.execute("SELECT code, label FROM value_labels WHERE variable = 'Q1'").fetchall())
        missing = sorted(r[0] for r in con.execute("SELECT code FROM missing_values WHERE variable = 'Q1'").fetchall())
    finally:
        con.close()
    assert labels["1"] == "Very dissatisfied" and labels["9"] == "Refused" and missing == ["8", "9"]


def test_csv_export_with_codebook_imports_back(imported_study: Path, cli, tmp_path: Path, originals) -> None:
    out = tmp_path / "w12.csv"
    code, stdout, err = cli("--study", imported_study, "export", "--wave", "1", "--wave", "2", "--output", out)
    assert code == 0, err
    codebook = tmp_path / "w12-codebook.csv"
    assert codebook.exists() and str(codebook) in stdout
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:5] == ["wave", "RESPID", "PROV", "WEIGHT", "Q1"] and "Q24" in header
    again = new_study(tmp_path, "csvback")
    import_wave(load_config(again), 1, [out], codebook_path=codebook)
    con = duckdb.connect(str(again / "wavetool.duckdb"), read_only=True)
    try:
        got = Counter(
            dict(
                ((int(w), v), n)
                for w, v, n in con.execute('SELECT "wave", "Q24", count(*) FROM wave_1 GROUP BY ALL').fetchall()
            )
        )
        missing = sorted(r[0] for r in con.execute("SELECT code FROM missing_values WHERE variable = 'Q24'").fetchall())
    finally:
        con.close()
    expected = Counter({(1, None): len(originals[1]["RESPID"])})
    expected.update({(2, k): n for k, n in counts(originals[2]["Q24"]).items()})
    assert got == expected and missing == ["8", "9"]


def test_parquet_keeps_labels_in_column_metadata(imported_study: Path, cli, tmp_path: Path, originals) -> None:
    out = tmp_path / "w34.parquet"
    code, _, err = cli("--study", imported_study, "export", "--wave", "3", "--wave", "4", "--output", out)
    assert code == 0, err
    table = pq.read_table(out)
    meta = table.schema.field("Q3").metadata
    assert meta[b"wavetool.label"].decode() == "Satisfaction with the time it took to get the service"
    assert json.loads(meta[b"wavetool.value_labels"])["3"] == "Neither satisfied nor dissatisfied"
    assert [m["code"] for m in json.loads(meta[b"wavetool.missing"])] == ["8", "9"]
    assert json.loads(table.schema.metadata[b"wavetool"])["waves"] == [3, 4]
    data = table.to_pydict()
    assert Counter(data["wave"]) == {3.0: 4200, 4.0: len(originals[4]["RESPID"])}
    q5_wave4 = [v for w, v in zip(data["wave"], data["Q5"], strict=True) if w == 4.0]
    assert Counter(q5_wave4) == counts(originals[4]["Q5"])  # Q5A of wave 4 exported as Q5


def custom_texts(config, subscriber: str) -> set[str]:
    from wavetool.custom import custom_questions

    con = duckdb.connect(str(config.root / "wavetool.duckdb"), read_only=True)
    try:
        return {q.variable.label for w in (1, 2, 3, 4) for q in custom_questions(con, w, subscriber)}
    finally:
        con.close()


def test_subscriber_export_holds_only_its_own_custom_questions(imported_study: Path, cli, tmp_path: Path) -> None:
    config = load_config(imported_study)
    merge_from_config(config)
    texts = {s: custom_texts(config, s) for s in config.subscribers}
    plain = tmp_path / "plain.sav"
    assert cli("--study", imported_study, "export", "--output", plain)[0] == 0
    _, meta = pyreadstat.read_sav(str(plain), metadataonly=True)
    assert "ELIGIBLE" not in meta.column_names and not {"C1", "BC_1", "BC_2"} & set(meta.column_names)
    assert not set(meta.column_labels) & set().union(*texts.values())

    ontario_file = {}
    with open(imported_study / "inbox/wave-1/custom-ontario.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            ontario_file[float(row["RESPID"])] = float(row["C1"]) if row["C1"] else None
    for subscriber in config.subscribers:
        out = tmp_path / f"{subscriber}.sav"
        code, _, err = cli(
            "--study", imported_study, "export", "--wave", "1", "--subscriber", subscriber, "--output", out
        )
        assert code == 0, err
        frame, meta = pyreadstat.read_sav(str(out), user_missing=True)
        labels = set(meta.column_labels)
        assert texts[subscriber] <= labels
        for other in config.subscribers:
            if other != subscriber:
                assert not labels & texts[other], (subscriber, other)
        jurisdictions = set(config.subscribers[subscriber].jurisdictions)
        inside = frame["PROV"].isin(jurisdictions)
        assert inside.all()  # its own respondents only: no microdata of jurisdictions it does not own
        with read_store(imported_study) as con:
            own = con.execute(
                "SELECT count(*) FROM wave_1 WHERE list_contains(?, _jurisdiction)", [sorted(jurisdictions)]
            ).fetchall()[0][0]
        assert len(frame) == own
        assert "ELIGIBLE" not in frame.columns
        assert ("BC_1" in frame.columns) == (subscriber == "british-columbia")
        if subscriber == "ontario":
            got = {
                rid: (None if math.isnan(v) else v)
                for rid, v in zip(frame.loc[inside, "RESPID"], frame.loc[inside, "C1"], strict=True)
            }
            assert {k: v for k, v in got.items() if k in ontario_file} == ontario_file
            assert all(v is None for k, v in got.items() if k not in ontario_file)
            assert meta.missing_ranges["C1"] == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}]


def test_export_of_an_unimported_wave_is_refused(sample_study: Path, cli, tmp_path: Path) -> None:
    code, _, err = cli("--study", sample_study, "export", "--wave", "2", "--output", tmp_path / "x.sav")
    assert code == 66 and "wave 2 is not imported" in err and not (tmp_path / "x.sav").exists()


def test_export_errors(imported_study: Path, cli, tmp_path: Path) -> None:
    code, _, err = cli("--study", imported_study, "export", "--output", tmp_path / "nowhere" / "x.sav")
    assert code == 73 and "cannot write the export" in err
    code, _, err = cli("--study", imported_study, "export", "--output", tmp_path / "x.xlsx")
    assert code == 65 and "unknown export format 'xlsx'" in err
    code, _, err = cli("--study", imported_study, "export", "--subscriber", "nobody", "--output", tmp_path / "x.sav")
    assert code == 78 and "unknown subscriber 'nobody'" in err
    assert not list(tmp_path.glob("*.sav")) and not list(tmp_path.glob(".*.tmp"))
