"""A .por's text is decoded from its own bytes: PSPP (and SPSS, as in a real Pew Research .por) write UTF-8
into portable files, which pyreadstat turns into U+FFFD. Where bytes are neither UTF-8 nor the --encoding
given, one warning names the labels and columns affected, and no stored label holds U+FFFD."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyreadstat
import pytest

from wavefiles import SAT, run_pspp, wave_frame, write_por, write_sav, write_study
from wavetool.ingest.spss import read_spss_codebook

SYNTAX = """SET LOCALE='UTF-8'.
DATA LIST LIST /RESPID (F4.0) PROV (A2) WEIGHT (F4.2) Q1 (F2.0) TZ (A8) COMMENT (A20).
BEGIN DATA
1 ON 1.0 1 "EST" "Très bien"
2 ON 1.5 2 "PST" "plain"
3 QC 0.5 9 "EST" "Le délai"
4 QC 1.0 1 "MST" ""
END DATA.
VARIABLE LABELS Q1 'Êtes-vous satisfait des services ?'.
VALUE LABELS Q1 1 'Très satisfait' 2 'Pas du tout' 9 'Don’t know'.
MISSING VALUES Q1 (9).
EXPORT OUTFILE='{out}'.
"""


def pspp_por(folder: Path, syntax: str = SYNTAX) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "utf8.por"
    run_pspp(syntax.format(out=out), folder)
    return out


def test_pyreadstat_alone_garbles_this_file(tmp_path):
    """The premise: the file holds UTF-8, and the plain reader shows U+FFFD (so the test below can fail)."""
    por = pspp_por(tmp_path)
    assert "Très satisfait".encode() in por.read_bytes().replace(b"\r\n", b"")
    _, meta = pyreadstat.read_por(str(por))
    assert "\ufffd" in meta.variable_value_labels["Q1"][1.0]


def test_utf8_labels_and_values_decode_exactly(tmp_path):
    por = pspp_por(tmp_path)
    codebook, _ = read_spss_codebook(por)
    q1 = codebook.variables["Q1"]
    assert q1.label == "Êtes-vous satisfait des services ?"
    assert q1.value_labels == {"1": "Très satisfait", "2": "Pas du tout", "9": "Don’t know"}
    assert [m.code for m in q1.missing] == ["9"]


def test_import_of_a_utf8_por_stores_text_and_warns_of_nothing(tmp_path, cli):
    study = write_study(tmp_path / "study")
    por = pspp_por(tmp_path / "in")
    code, out, err = cli("--study", study, "import", "--wave", "1", por)
    assert code == 0, err
    assert "Warning" not in err and "TZ" not in err and "lost" not in err
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        labels = [r[0] for r in con.execute("SELECT label FROM value_labels WHERE wave = 1").fetchall()]
        texts = con.execute("SELECT label FROM variables WHERE wave = 1 AND name = 'Q1'").fetchall()
        comments = [r[0] for r in con.execute('SELECT "COMMENT" FROM wave_1 ORDER BY "RESPID"').fetchall()]
    finally:
        con.close()
    assert "Très satisfait" in labels and "Don’t know" in labels
    assert not any("\ufffd" in label for label in labels)
    assert texts == [("Êtes-vous satisfait des services ?",)]
    assert comments[:3] == ["Très bien", "plain", "Le délai"]


def _cp1252_por(tmp_path: Path) -> Path:
    """A portable file holding one windows-1252 byte (è = 0xE8) in a value label and a data value: PSPP writes
    the placeholder 'TrXs' and the byte is swapped in place (same length, so the file stays valid)."""
    por = pspp_por(tmp_path, SYNTAX.replace("Très", "TrXs"))
    data = por.read_bytes()
    assert data.count(b"TrXs") == 2, "a placeholder is split by a line break: change the syntax"
    por.write_bytes(data.replace(b"TrXs", b"Tr\xe8s"))
    return por


def test_undecodable_bytes_give_one_warning_and_no_replacement_character(tmp_path, cli):
    study = write_study(tmp_path / "study")
    por = _cp1252_por(tmp_path / "in")
    code, out, err = cli("--study", study, "import", "--wave", "1", por)
    assert code == 0, err
    warning_lines = [line for line in err.splitlines() if "lost" in line]
    assert len(warning_lines) == 1, err
    assert "Q1=1" in warning_lines[0] and "COMMENT" in warning_lines[0] and "TZ" not in warning_lines[0]
    assert "--encoding" in warning_lines[0]
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        labels = [r[0] for r in con.execute("SELECT label FROM value_labels WHERE wave = 1").fetchall()]
    finally:
        con.close()
    assert "Tr?s satisfait" in labels and not any("\ufffd" in label for label in labels)


def test_encoding_option_decodes_a_non_utf8_por(tmp_path, cli):
    study = write_study(tmp_path / "study")
    por = _cp1252_por(tmp_path / "in")
    code, out, err = cli("--study", study, "import", "--wave", "1", "--encoding", "cp1252", por)
    assert code == 0, err
    assert "lost" not in err
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        labels = [r[0] for r in con.execute("SELECT label FROM value_labels WHERE wave = 1").fetchall()]
        comments = [r[0] for r in con.execute('SELECT "COMMENT" FROM wave_1 ORDER BY "RESPID"').fetchall()]
    finally:
        con.close()
    assert "Très satisfait" in labels and comments[0] == "Très bien"


def test_sav_converted_to_por_by_pspp_keeps_accented_labels(tmp_path):
    sav = write_sav(tmp_path / "w.sav", wave_frame(20))
    por = write_por(sav, tmp_path / "w.por")
    codebook, _ = read_spss_codebook(por)
    assert codebook.variables["Q1"].value_labels["1"] == SAT[1.0]
    assert codebook.variables["Q1"].label == "Satisfaction générale « service »"


@pytest.mark.parametrize("name", ["pyreadstat__basic_sample.por"])
def test_real_ascii_por_is_unchanged(name):
    path = Path(__file__).resolve().parents[2] / "shared" / "realworld-spss" / name
    if not path.exists():
        pytest.skip(f"{path} absent (the real-world SPSS files live in ../shared/realworld-spss/)")
    _, meta = pyreadstat.read_por(str(path))
    codebook, _ = read_spss_codebook(path)
    for name, var in codebook.variables.items():
        plain = {
            str(int(k)) if isinstance(k, float) and k.is_integer() else str(k): v
            for k, v in (meta.variable_value_labels.get(name) or {}).items()
        }
        assert var.value_labels == plain
