"""Cross-check against GNU PSPP on the same .sav: FREQUENCIES with WEIGHT BY.

Compared, for wave 1 (wave1.sav) as a whole and for Ontario (SELECT IF PROV = 'ON'), on Q1 (scale with
8/9 user-missing and blanks), Q12 (routed: many blanks), Q20 (4-point) and GENDER (user-missing 9):
- the weighted frequency of every valid and missing code (PSPP prints 7 significant digits);
- PSPP's displayed Valid Percent (1 decimal) against ours rounded to 1 decimal;
- the valid percent to 0.01 percentage points against PSPP's own arithmetic: AGGREGATE of the weighted
  counts of the valid cases (SELECT IF NOT MISSING) and 100 * count / total, printed with 12 decimals.
Runs when `pspp` is on PATH (`make test` installs it where apt is available).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from wavetool.config import load_config
from wavetool.stats import tabulate

pytestmark = pytest.mark.skipif(shutil.which("pspp") is None, reason="GNU PSPP is not installed")

SAV = Path(__file__).resolve().parents[1] / "sample_data" / "inbox" / "wave-1" / "wave1.sav"
QUESTIONS = ("Q1", "Q12", "Q20", "GENDER")


def run_pspp(syntax: str, tmp_path: Path) -> list[list[str]]:
    script = tmp_path / "check.sps"
    out = tmp_path / "out.csv"
    script.write_text(syntax, encoding="utf-8")
    subprocess.run(
        ["pspp", "-O", "format=csv", "-o", str(out), str(script)], check=True, capture_output=True, timeout=120
    )
    return list(csv.reader(out.read_text(encoding="utf-8").splitlines()))


def frequency_tables(lines: list[list[str]]) -> dict[str, list[list[str]]]:
    """{table title: rows} of PSPP's CSV output (first occurrence of each title)."""
    tables: dict[str, list[list[str]]] = {}
    title = None
    for line in lines:
        if line and line[0].startswith("Table: "):
            title = line[0][len("Table: ") :]
            tables.setdefault(title, [])
            current = tables[title] if not tables[title] else None
        elif not line:
            title = None
        elif title and current is not None:
            current.append(line)
    return tables


def select(scope: str) -> str:
    return "" if scope == "all" else f"SELECT IF PROV = '{scope}'.\n"


@pytest.mark.parametrize("scope", ["all", "ON"])
def test_weighted_frequencies_and_valid_percents_match_pspp(imported_study, tmp_path, scope):
    tables = tabulate(load_config(imported_study), 1, scopes=[scope], questions=list(QUESTIONS))
    syntax = f"GET FILE='{SAV}'.\nWEIGHT BY WEIGHT.\n{select(scope)}FREQUENCIES VARIABLES={' '.join(QUESTIONS)}.\n"
    pspp_tables = frequency_tables(run_pspp(syntax, tmp_path))
    compared = 0
    for question in QUESTIONS:
        summary = tables.summary(1, scope, question)
        rows = tables.question_rows(1, scope, question)
        by_label = {("System missing" if r["code"] == "." else r["label"]): r for r in rows}
        pspp_rows = pspp_tables[summary["label"]][1:]  # skip the header row
        for kind, label, freq, _percent, valid_percent, *_ in pspp_rows:
            if kind == "Total" or label == "Total":
                continue
            ours = by_label["System missing" if label == "." else label]
            assert ours["weighted_n"] == pytest.approx(float(freq), rel=5e-7), (question, label)
            if valid_percent:
                assert ours["missing"] is False
                assert round(ours["percent"], 1) == pytest.approx(float(valid_percent.rstrip("%")), abs=0.051)
            else:
                assert ours["missing"] is True
            compared += 1
    assert compared >= 20


@pytest.mark.parametrize("scope", ["all", "ON"])
def test_valid_percents_to_a_hundredth_of_a_point(imported_study, tmp_path, scope):
    tables = tabulate(load_config(imported_study), 1, scopes=[scope], questions=list(QUESTIONS))
    for question in QUESTIONS:
        syntax = (
            f"GET FILE='{SAV}'.\nWEIGHT BY WEIGHT.\n{select(scope)}SELECT IF NOT MISSING({question}).\n"
            f"AGGREGATE OUTFILE=* /BREAK={question} /wn = N.\n"
            "COMPUTE one = 1.\nAGGREGATE OUTFILE=* MODE=ADDVARIABLES /BREAK=one /total = SUM(wn).\n"
            "COMPUTE pct = 100 * wn / total.\nFORMATS wn pct (F24.12).\n"
            f"LIST VARIABLES={question} wn pct.\n"
        )
        listing = frequency_tables(run_pspp(syntax, tmp_path))["Data List"][1:]
        ours = {r["code"]: r for r in tables.question_rows(1, scope, question) if not r["missing"]}
        assert {code for code, *_ in listing} == {c for c, r in ours.items() if r["n"]}
        for code, wn, pct in listing:
            assert ours[code]["weighted_n"] == pytest.approx(float(wn), abs=1e-9)
            assert abs(ours[code]["percent"] - float(pct)) < 0.01
            assert ours[code]["percent"] == pytest.approx(float(pct), abs=1e-9)
