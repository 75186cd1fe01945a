"""Raking: the stored weights reproduce the margins to 1e-6 and equal an independent pure-Python raking;
the tables use them; failures exit 81 and change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wavetool.config import load_config
from wavetool.stats import tabulate
from wavetool.store import read_store
from wavetool.weighting import rake

MARGINS = {"AGEGRP": {1.0: 0.27, 2.0: 0.33, 3.0: 0.17, 4.0: 0.23}, "GENDER": {1.0: 0.49, 2.0: 0.505, 3.0: 0.005}}
USER_MISSING = {"GENDER": {9.0}, "AGEGRP": set()}


def stored(study: Path, wave: int) -> list[dict]:
    with read_store(study) as con:
        cols = con.execute(
            f"SELECT column_name FROM duckdb_columns() WHERE table_name = 'wave_{wave}' AND column_name LIKE '_weight%'"
        ).fetchall()
        names = [c[0] for c in cols]
        rows = con.execute(
            f"SELECT _id, _jurisdiction, AGEGRP, GENDER, {', '.join(names)} FROM wave_{wave} ORDER BY _id"
        ).fetchall()
    return [dict(zip(["_id", "_jurisdiction", "AGEGRP", "GENDER", *names], r, strict=True)) for r in rows]


def independent_rake(
    records: list[dict], start: str, trim: tuple[float, float] | None, iterations: int, hold_jurisdictions: bool = True
) -> list[float]:
    """Plain-loop rim weighting: one variable at a time, respondents with a missing answer untouched,
    then (with ``hold_jurisdictions``) each jurisdiction back to its share of the starting weights, then
    trim to the bounds and rescale to mean 1; a fixed number of passes."""
    w = [r[start] for r in records]
    mean = sum(w) / len(w)
    w = [x / mean for x in w]
    held = shares(records, w, "_jurisdiction")
    margins = {**MARGINS, "_jurisdiction": held} if hold_jurisdictions else MARGINS
    for _ in range(iterations):
        for variable, shares_ in margins.items():
            totals: dict[float, float] = {}
            for r, x in zip(records, w, strict=True):
                code = r[variable]
                if code is not None and code not in USER_MISSING.get(variable, ()):
                    totals[code] = totals.get(code, 0.0) + x
            grand = sum(totals.values())
            for i, r in enumerate(records):
                code = r[variable]
                if code in totals:
                    w[i] *= shares_[code] * grand / totals[code]
        if trim:
            w = [min(max(x, trim[0]), trim[1]) for x in w]
            mean = sum(w) / len(w)
            w = [x / mean for x in w]
    return w


def shares(records: list[dict], weights: list[float], variable: str) -> dict:
    totals: dict = {}
    for r, x in zip(records, weights, strict=True):
        code = r[variable]
        if code is not None and code not in USER_MISSING.get(variable, ()):
            totals[code] = totals.get(code, 0.0) + x
    grand = sum(totals.values())
    return {c: v / grand for c, v in totals.items()}


@pytest.mark.slow  # pure-Python reference raking (make test-fast skips it)
def test_rake_reproduces_margins_and_matches_independent_raking(imported_study, cli):
    _edit_config(imported_study, "tolerance = 1e-6", "tolerance = 1e-11")  # converged well past the comparison
    code, out, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 0, err
    assert "converged" in out and "weighting efficiency" in out and "design effect" in out
    records = stored(imported_study, 2)
    raked = [r["_weight_raked"] for r in records]
    assert all(r["_weight"] == r["_weight_raked"] for r in records)  # the weight tables read
    for variable, target in MARGINS.items():
        got = shares(records, raked, variable)
        for code_, share in target.items():
            assert abs(got[code_] - share) < 1e-6, (variable, code_)
    config = load_config(imported_study)
    assert config.weighting.trim == (0.2, 5.0)
    assert min(raked) >= 0.2 - 1e-9 and max(raked) <= 5.0 + 1e-9
    expected = independent_rake(records, "_weight_vendor", config.weighting.trim, iterations=400)
    assert np.max(np.abs(np.array(raked) - np.array(expected))) < 1e-9
    # the jurisdictions keep their shares of the vendor weight (the default keep_jurisdiction_totals)
    before, after = (
        shares(records, [r["_weight_vendor"] for r in records], "_jurisdiction"),
        shares(records, raked, "_jurisdiction"),
    )
    assert len(before) == 13 and all(abs(after[j] - before[j]) < 1e-9 for j in before)
    # the vendor weight is kept
    with read_store(imported_study) as con:
        vendor = con.execute("SELECT WEIGHT, _weight_vendor FROM wave_2").fetchall()
        log = con.execute(
            "SELECT iterations, converged, efficiency, design_effect, trimmed FROM weightings WHERE wave = 2"
        ).fetchall()
    assert all(abs(a - b) < 1e-12 for a, b in vendor)
    n = len(raked)
    efficiency = sum(raked) ** 2 / (n * sum(x * x for x in raked))
    assert (
        log[0][1] is True
        and log[0][2] == pytest.approx(100 * efficiency)
        and log[0][3] == pytest.approx(1 / efficiency)
    )


def test_tables_use_the_raked_weight_and_vendor_restores(imported_study, cli):
    config = load_config(imported_study)
    before = tabulate(config, 2, questions=["AGEGRP"]).question_rows(2, "all", "AGEGRP")
    rake(config, 2)
    after = tabulate(config, 2, questions=["AGEGRP"])
    assert after.meta["weight"] == {"2": "raked"}
    percents = {r["code"]: r["percent"] for r in after.question_rows(2, "all", "AGEGRP")}
    for code_, share in MARGINS["AGEGRP"].items():
        assert abs(percents[str(int(code_))] - 100 * share) < 1e-4
    code, out, _ = cli("--study", imported_study, "weight", "--wave", "2", "--vendor")
    assert code == 0 and "vendor weight restored" in out
    restored = tabulate(config, 2, questions=["AGEGRP"]).question_rows(2, "all", "AGEGRP")
    assert [r["weighted_n"] for r in restored] == pytest.approx([r["weighted_n"] for r in before], rel=1e-12)


@pytest.mark.slow  # pure-Python reference raking to 1000 iterations (make test-fast skips it)
def test_from_uniform_start(imported_study):
    config = load_config(imported_study)
    result = rake(config, 3, base="uniform")
    records = stored(imported_study, 3)
    expected = independent_rake([{**r, "one": 1.0} for r in records], "one", config.weighting.trim, iterations=1000)
    assert result.base == "uniform" and result.converged
    assert np.max(np.abs(np.array([r["_weight_raked"] for r in records]) - np.array(expected))) < 1e-5
    # from equal weights, the held jurisdiction shares are the unweighted ones
    counts = {
        j: sum(r["_jurisdiction"] == j for r in records) / len(records) for j in {r["_jurisdiction"] for r in records}
    }
    assert {j.code: j.before for j in result.jurisdictions} == pytest.approx(counts, abs=1e-15)
    assert result.jurisdiction_totals == "held"


def _edit_config(study: Path, old: str, new: str) -> None:
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _table_state(study: Path) -> tuple:
    with read_store(study) as con:
        return (
            con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'wave_2'").fetchall(),
            con.execute("SELECT sum(_weight) FROM wave_2").fetchall(),
            con.execute("SELECT count(*) FROM weightings").fetchall(),
        )


def test_absent_margin_category_is_exit_81_and_nothing_changes(imported_study, cli):
    _edit_config(
        imported_study, "1 = 0.27\n2 = 0.33\n3 = 0.17\n4 = 0.23", "1 = 0.27\n2 = 0.33\n3 = 0.17\n4 = 0.13\n6 = 0.1"
    )
    before = _table_state(imported_study)
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 81 and "AGEGRP = 6" in err and "absent from the data" in err
    assert _table_state(imported_study) == before


def test_code_without_a_share_is_exit_81(imported_study, cli):
    _edit_config(imported_study, "2 = 0.505\n3 = 0.005", "2 = 0.51")
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 81 and "GENDER code 3" in err


def test_non_convergence_is_exit_81(imported_study, cli):
    _edit_config(imported_study, "trim = [0.2, 5.0]", "trim = [0.95, 1.05]")
    before = _table_state(imported_study)
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 81 and "did not converge" in err
    assert _table_state(imported_study) == before


def test_keep_jurisdiction_totals_must_be_a_boolean(imported_study, cli):
    _edit_config(imported_study, "[weighting]\n", '[weighting]\nkeep_jurisdiction_totals = "yes"\n')
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 78 and "weighting.keep_jurisdiction_totals" in err and "true or false" in err


def test_margin_variables_match_whatever_their_case(imported_study, cli):
    """SPSS names are case-insensitive: `[weighting.margins.agegrp]` rakes AGEGRP, as `[weighting.margins.AGEGRP]`."""
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 0, err
    upper = stored(imported_study, 2)
    path = imported_study / "wavetool.toml"
    path.write_text(path.read_text().replace("[weighting.margins.AGEGRP]", "[weighting.margins.agegrp]"))
    code, _, err = cli("--study", imported_study, "weight", "--wave", "2")
    assert code == 0, err  # it used to be: [weighting.margins.agegrp]: wave 2 has no variable agegrp
    assert stored(imported_study, 2) == upper
