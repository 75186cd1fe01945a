"""Raking checked against R's ``survey::rake`` (survey 4.1.1, Debian ``r-cran-survey``) on the sample study:
the respondents and starting weights are exported to CSV from the study's DuckDB file, R rakes them to the
same margins (the jurisdictions' shares of the starting weights included, when wavetool holds them), and
wavetool's stored weights must equal R's to 1e-8.

R's ``rake`` does not trim, so these tests switch trimming off. Without R the tests are skipped, except under
``CI=true``, where a missing Rscript is a failure (``make test`` installs it)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from wavetool.config import load_config
from wavetool.store import read_store
from wavetool.weighting import rake

pytestmark = pytest.mark.slow  # the R `survey::rake` cross-checks (make test-fast skips them)

R_RAKE = r"""
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = "character")
d$start <- as.numeric(d$start)
m <- read.csv(args[2], colClasses = c(variable = "character", code = "character", total = "numeric"))
vars <- unique(m$variable)
for (v in vars) d[[v]] <- factor(d[[v]])
design <- svydesign(ids = ~1, weights = ~start, data = d)
population <- lapply(vars, function(v) {
  x <- m[m$variable == v, ]
  out <- data.frame(factor(x$code, levels = levels(d[[v]])), Freq = x$total)
  names(out)[1] <- v
  out
})
raked <- rake(design, lapply(vars, function(v) as.formula(paste0("~", v))), population,
              control = list(maxit = 1000, epsilon = 1e-13, verbose = FALSE))
write.csv(data.frame(id = d$id, w = weights(raked)), args[3], row.names = FALSE)
"""

MISSING = "missing"  # the level a respondent with no valid answer on a margin variable gets in R


@pytest.fixture
def rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Rscript is not installed (apt-get install r-base-core r-cran-survey; `make test` does)")
        pytest.skip("Rscript is not installed")
    return path


def _edit(study: Path, old: str, new: str) -> None:
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _exact_untrimmed(study: Path) -> None:
    """Trimming off (R's rake has none) and wavetool converged far past the 1e-8 comparison."""
    _edit(study, "trim = [0.2, 5.0]\n", "")
    _edit(study, "tolerance = 1e-6", "tolerance = 1e-12")


def _respondents(study: Path, wave: int) -> list[dict]:
    """The wave's respondents from the study database: id, jurisdiction, margin answers (user-missing codes as
    the 'missing' level), starting (vendor) weight and the stored raked weight."""
    with read_store(study) as con:
        rows = con.execute(
            f"SELECT _id, _jurisdiction, AGEGRP, GENDER, _weight_vendor, _weight FROM wave_{wave} ORDER BY _id"
        ).fetchall()
    missing = {"AGEGRP": set(), "GENDER": {9.0}}  # the sample codebook's user-missing codes

    def level(variable: str, value: float | None) -> str:
        return MISSING if value is None or value in missing[variable] else str(int(value))

    return [
        {"id": i, "PROV": j, "AGEGRP": level("AGEGRP", a), "GENDER": level("GENDER", g), "vendor": v, "raked": w}
        for i, j, a, g, v, w in rows
    ]


def _share_of(records: list[dict], weights: np.ndarray, variable: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for r, w in zip(records, weights, strict=True):
        totals[r[variable]] = totals.get(r[variable], 0.0) + w
    return {k: v / sum(totals.values()) for k, v in totals.items()}


def _r_rake(
    rscript: str, tmp: Path, records: list[dict], start: np.ndarray, totals: dict[str, dict[str, float]]
) -> np.ndarray:
    """R's raked weights, in ``records`` order, for ``totals`` = {variable: {level: population total}}."""
    data, margins, out, script = tmp / "data.csv", tmp / "margins.csv", tmp / "raked.csv", tmp / "rake.R"
    variables = list(totals)
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *variables, "start"])
        for r, s in zip(records, start, strict=True):
            writer.writerow([r["id"], *(r[v] for v in variables), repr(float(s))])
    with margins.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variable", "code", "total"])
        for variable, levels in totals.items():
            writer.writerows([variable, code, repr(float(total))] for code, total in levels.items())
    script.write_text(R_RAKE, encoding="utf-8")
    done = subprocess.run([rscript, str(script), str(data), str(margins), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "not converge" not in done.stderr, done.stderr
    with out.open(newline="") as f:
        by_id = {row["id"]: float(row["w"]) for row in csv.DictReader(f)}
    return np.array([by_id[r["id"]] for r in records])


def _configured_totals(config, records: list[dict], raked: np.ndarray, n: float) -> dict[str, dict[str, float]]:
    """The configured margins as population totals for R. Respondents wavetool leaves out of a margin (a
    missing answer) keep their weight at that step; in R they are a level of their own whose total is the
    weight they end with. That one figure comes from wavetool; every other respondent's weight is R's own."""
    totals = {}
    for variable, shares in config.weighting.margins.items():
        left_out = float(sum(w for r, w in zip(records, raked, strict=True) if r[variable] == MISSING))
        totals[variable] = {code: share * (n - left_out) for code, share in shares.items()}
        if left_out:
            totals[variable][MISSING] = left_out
    return totals


def test_held_jurisdiction_totals_equal_survey_rake(imported_study: Path, cli, rscript: str, tmp_path: Path) -> None:
    _exact_untrimmed(imported_study)
    code, out, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 0, err
    assert "Jurisdiction shares: held at their shares of the starting weights" in out
    config = load_config(imported_study)
    records = _respondents(imported_study, 2)
    start = np.array([r["vendor"] for r in records]) / np.mean([r["vendor"] for r in records])
    raked = np.array([r["raked"] for r in records])
    n = float(len(records))
    totals = _configured_totals(config, records, raked, n)
    totals["PROV"] = {j: share * n for j, share in _share_of(records, start, "PROV").items()}
    expected = _r_rake(rscript, tmp_path, records, start, totals)
    assert np.max(np.abs(raked - expected)) < 1e-8
    # and the jurisdictions' shares did not move
    before, after = _share_of(records, start, "PROV"), _share_of(records, raked, "PROV")
    assert len(before) == 13 and max(abs(after[j] / before[j] - 1) for j in before) < 1e-9


def test_jurisdiction_as_a_configured_margin_equals_survey_rake(
    imported_study: Path, rscript: str, tmp_path: Path
) -> None:
    """When the jurisdiction is a margin, its configured shares are used (nothing else held), from equal weights."""
    _exact_untrimmed(imported_study)
    provinces = ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
    population = [0.116, 0.135, 0.036, 0.021, 0.014, 0.026, 0.001, 0.001, 0.388, 0.004, 0.226, 0.031, 0.001]
    shares = "\n".join(f"{p} = {s}" for p, s in zip(provinces, population, strict=True))
    _edit(
        imported_study, "[weighting.margins.AGEGRP]", f"[weighting.margins.PROV]\n{shares}\n[weighting.margins.AGEGRP]"
    )
    config = load_config(imported_study)
    result = rake(config, 3, base="uniform")
    assert result.jurisdiction_totals == "margin"
    records = _respondents(imported_study, 3)
    raked = np.array([r["raked"] for r in records])
    n = float(len(records))
    totals = _configured_totals(config, records, raked, n)
    expected = _r_rake(rscript, tmp_path, records, np.ones(len(records)), totals)
    assert np.max(np.abs(raked - expected)) < 1e-8
    assert {j.code: j.after for j in result.jurisdictions} == pytest.approx(
        dict(zip(provinces, population, strict=True)), abs=1e-12
    )


def test_keep_jurisdiction_totals_false_lets_them_move_as_survey_rake_does(
    imported_study: Path, cli, rscript: str, tmp_path: Path
) -> None:
    """The opt-out is today's raking: the configured margins only, and the jurisdiction shares move."""
    _exact_untrimmed(imported_study)
    _edit(imported_study, "[weighting]\n", "[weighting]\nkeep_jurisdiction_totals = false\n")
    code, out, err = cli("--study", imported_study, "weight", "--wave", "2", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["jurisdiction_totals"] == "free"
    config = load_config(imported_study)
    records = _respondents(imported_study, 2)
    start = np.array([r["vendor"] for r in records]) / np.mean([r["vendor"] for r in records])
    raked = np.array([r["raked"] for r in records])
    expected = _r_rake(rscript, tmp_path, records, start, _configured_totals(config, records, raked, len(records)))
    assert np.max(np.abs(raked - expected)) < 1e-8
    before, after = _share_of(records, start, "PROV"), _share_of(records, raked, "PROV")
    moved = {j: after[j] / before[j] - 1 for j in before}
    assert max(abs(m) for m in moved.values()) > 0.01  # the shift keep_jurisdiction_totals exists to prevent
    for row in shown["jurisdictions"]:  # the JSON shows each share before and after
        assert row["before"] == pytest.approx(before[row["code"]], abs=1e-12)
        assert row["after"] == pytest.approx(after[row["code"]], abs=1e-12)
