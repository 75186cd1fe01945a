"""`wavetool codebook`: show (unchanged), diff, approve, review and check-translations as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from wavetool.config import load_config
from wavetool.custom import merge_from_config
from wavetool.texts import translated


def test_show_still_works_without_a_subcommand(imported_study: Path, cli) -> None:
    code, out, err = cli("--study", imported_study, "codebook", "--wave", "4", "Q5A")
    assert code == 0, err
    assert "question: Q5" in out and "Staff were courteous" in out
    code, out, _ = cli("--study", imported_study, "codebook", "--wave", "1", "--json")
    assert code == 0 and {r["name"] for r in json.loads(out)} >= {"Q1", "BC_1", "COMMENT"}


def test_diff_table_and_json(imported_study: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # whole cells on one line, whatever the test runner's terminal
    code, out, err = cli("--study", imported_study, "codebook", "diff", "3", "4")
    assert code == 0, err
    assert "Codebook differences, wave 3 -> wave 4" in out
    assert "variable Q5 in wave 3 is Q5A in wave 4" in out and "renamed Q5A in the wave-4 export" in out
    assert "2 difference(s), 0 unexplained by the crosswalk" in out
    code, out, _ = cli("--study", imported_study, "codebook", "diff", "1", "2", "--json")
    records = json.loads(out)
    assert code == 0 and [(r["question"], r["change"]) for r in records] == [
        (q, "added") for q in ("Q24", "Q25", "Q26", "Q27")
    ]
    assert all({"question", "change", "detail", "explained_by", "gates"} <= set(r) for r in records)
    code, out, _ = cli("--study", imported_study, "codebook", "diff", "1", "1")
    assert code == 0 and "no differences" in out


def test_diff_and_approve_need_imported_waves(sample_study: Path, cli) -> None:
    code, _, err = cli("--study", sample_study, "codebook", "diff", "1", "2")
    assert code == 66 and "wave 1 is not imported" in err
    code, _, err = cli("--study", sample_study, "codebook", "approve", "--wave", "3")
    assert code == 66 and "wave 3 is not imported" in err


def test_approve_an_approved_wave_changes_nothing(imported_study: Path, cli, db_checksum) -> None:
    before = db_checksum(imported_study)
    code, out, _ = cli("--study", imported_study, "codebook", "approve", "--wave", "4")
    assert code == 0 and "already approved" in out and db_checksum(imported_study) == before
    code, out, _ = cli("--study", imported_study, "codebook", "review", "--json")
    assert code == 0 and [r["review_status"] for r in json.loads(out)] == ["approved"] * 4


def test_translated_picks_source_or_config_text(sample_study: Path) -> None:
    config = load_config(sample_study)
    assert translated(config, "en", "Q1", "Overall satisfaction") == "Overall satisfaction"
    assert translated(config, "fr", "Q1", "Overall satisfaction") == "Satisfaction globale à l'égard du service reçu"
    assert translated(config, "fr", "Q1.3", "Neither") == "Ni satisfait ni insatisfait"
    assert (
        translated(config, "en", "quebec:C1", "Satisfaction à l'égard de Services Québec", "fr")
        == "Satisfaction with Services Québec"
    )
    assert (
        translated(config, "fr", "quebec:C1", "Satisfaction à l'égard de Services Québec", "fr")
        == "Satisfaction à l'égard de Services Québec"
    )
    assert translated(config, "fr", "ontario:C1", "Satisfaction with ServiceOntario") is None


def test_check_translations_lists_what_lacks_a_text(imported_study: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    merge_from_config(load_config(imported_study))
    code, out, err = cli("--study", imported_study, "codebook", "check-translations", "--json")
    assert code == 0, err
    gaps = json.loads(out)
    keys = {(g["key"], g["language"]) for g in gaps}
    assert not [g for g in gaps if g["owner"] in ("core", "quebec")]  # the sample config has them all
    assert ("ontario:C1", "fr") in keys and ("ontario:C1.9", "fr") in keys
    assert ("british-columbia:BC_1", "fr") in keys and ("maritimes:C2", "fr") in keys
    assert all(g["language"] == "fr" for g in gaps)
    ontario_c1 = next(g for g in gaps if g["key"] == "ontario:C1")
    assert ontario_c1 == {
        "owner": "ontario",
        "kind": "question",
        "key": "ontario:C1",
        "language": "fr",
        "source_language": "en",
        "source_text": "Satisfaction with ServiceOntario",
    }

    toml = imported_study / "wavetool.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace('"Q3.3" = "Ni satisfait ni insatisfait"\n', "").replace(
            '"quebec:C2" = "Used clicSÉQUR in the past 12 months"\n', ""
        ),
        encoding="utf-8",
    )
    code, out, _ = cli("--study", imported_study, "codebook", "check-translations", "--strict")
    assert code == 65
    assert "Q3.3" in out and "quebec:C2 " in out.replace("│", " ") and "lack a translation" in out
    assert "A utilisé clicSÉQUR" in out
