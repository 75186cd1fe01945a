"""Banner columns' standard errors against R's `survey` package (the independent reference).

A banner column is a domain of the wave's design: its scope's jurisdictions, the column's banner codes and
the question's valid answers. So its linearised standard errors (top box, mean, each code's percent) must
equal ``svymean`` on ``subset(design, domain)`` of the whole wave's design, every respondent counting in
the strata's n_h. The reference gets each domain as a derived question (the answer where the respondent
is in the column, else missing), so `rsurvey.domain_estimates` subsets the same whole-wave design. The code
columns take the simple per-stratum formula (one key per jurisdiction and code) and the 18–54 net the
general one (two keys per jurisdiction): both are checked.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import duckdb
import pytest

from rsurvey import domain_estimates
from wavetool.codebook import harmonised_select
from wavetool.config import load_config
from wavetool.stats import tabulate
from wavetool.stats.questions import single_questions

WAVE = 4
QUESTIONS = ["Q1", "Q15"]
COLUMNS = {  # (banner, banner_code) -> the banner codes of the column
    ("AGEGRP", "1"): [1],
    ("AGEGRP", "2"): [2],
    ("AGEGRP", "3"): [3],
    ("AGEGRP", "4"): [4],
    ("AGEGRP", "18–54"): [1, 2],
    ("GENDER", "1"): [1],
    ("GENDER", "2"): [2],
}
REL = 1e-8


def close(a: float | None, b: float) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return math.isnan(b)
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def derived(position: int, question: str) -> str:
    """The reference's name of ``question`` restricted to banner column ``position`` of COLUMNS."""
    return f"{question}_col{position}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path):
    config = load_config(_imported_template)
    con = duckdb.connect(str(_imported_template / "wavetool.duckdb"), read_only=True)
    try:
        frame = con.sql(
            "SELECT _jurisdiction AS PROV, _weight AS WEIGHT, * EXCLUDE (_id, _jurisdiction, _weight) "
            f"FROM ({harmonised_select(con, config, WAVE)})"
        ).df()
        meta = {q.name: q for q in single_questions(con, config, WAVE)}
    finally:
        con.close()
    questions = {}
    for position, ((banner, _code), codes) in enumerate(COLUMNS.items()):
        inside = frame[banner].isin(codes)
        for q in QUESTIONS:
            frame[derived(position, q)] = frame[q].where(inside)
            questions[derived(position, q)] = (list(meta[q].valid_codes()), list(meta[q].top))
    frame = frame[["PROV", "WEIGHT", *questions]]
    scopes = {"quebec": ["QC"], "all": sorted(frame["PROV"].unique())}
    result = domain_estimates(tmp_path_factory.mktemp("r-banners"), {WAVE: frame}, scopes, questions, benchmarks=False)
    return config, result


def ref(result, scope: str, question: str, estimate: str):
    hit = result[(result.scope == scope) & (result.question == question) & (result.estimate == estimate)]
    assert len(hit) == 1, (scope, question, estimate)
    return hit.iloc[0]


@pytest.mark.slow  # runs R
@pytest.mark.parametrize("nets", [True, False], ids=["with-net", "codes-only"])
def test_banner_column_standard_errors_equal_r_survey(reference, nets):
    """With the net, the banner columns are rolled up apart from the scopes (the net's two keys per
    jurisdiction take the general formula); with codes only, together with them (one roll-up)."""
    config, result = reference
    every = dataclasses.replace(config.tables, min_base=1, cv_suppress=0)  # every estimate shown
    banners = config.banners if nets else dataclasses.replace(config.banners, nets={})
    columns = {column: codes for column, codes in COLUMNS.items() if nets or len(codes) == 1}
    tables = tabulate(
        dataclasses.replace(config, tables=every, banners=banners),
        WAVE,
        scopes=["quebec", "all"],
        questions=QUESTIONS,
        banners=["AGEGRP", "GENDER"],
    )
    summaries = tables.summaries_table.to_pandas()
    rows = tables.rows_table.to_pandas()
    compared = 0
    for position, (banner, code) in enumerate(COLUMNS):
        if (banner, code) not in columns:
            continue
        for scope in ("quebec", "all"):
            for q in QUESTIONS:
                name = derived(position, q)
                pick = (summaries.scope == scope) & (summaries.banner == banner) & (summaries.banner_code == code)
                s = summaries[pick & (summaries.question == q)]
                assert len(s) == 1, (scope, banner, code, q)
                s = s.iloc[0]
                top, mean = ref(result, scope, name, "top"), ref(result, scope, name, "mean")
                assert close(s.topbox / 100, top.est), (scope, banner, code, q)
                assert close(s.topbox_se / 100, top.se), (scope, banner, code, q, s.topbox_se, top.se)
                assert close(s.mean_se, mean.se), (scope, banner, code, q, s.mean_se, mean.se)
                pick = (rows.scope == scope) & (rows.banner == banner) & (rows.banner_code == code)
                for row in rows[pick & (rows.question == q) & ~rows.missing].itertuples():
                    r = ref(result, scope, name, row.code)
                    assert close(row.se / 100, r.se), (scope, banner, code, q, row.code, row.se, r.se)
                    compared += 1
    assert compared >= len(columns) * 2 * len(QUESTIONS) * 5
