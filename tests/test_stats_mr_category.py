"""A multiple-category set (SPSS MRSETS /MCGROUP: "reasons", up to three mentions, each a code) tabulated by
wavetool against plain loops over the rows the .sav was written from.

A respondent gave response c when any of the set's variables holds c; the base is the respondents who gave
at least one valid response; percent of responses divides by the sum over codes. The .sav gets its set from
GNU PSPP (pyreadstat cannot write multiple-response sets), so this runs where `pspp` is on PATH (`make test`
installs it where apt is available).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from wavetool.config import load_config
from wavetool.ingest import import_wave
from wavetool.stats import tabulate
from wavetool.status import init_study

pytestmark = pytest.mark.skipif(shutil.which("pspp") is None, reason="GNU PSPP is not installed")

MENTIONS = ("REASON1", "REASON2", "REASON3")
REASONS = {1.0: "Price", 2.0: "Quality", 3.0: "Speed", 4.0: "Staff", 5.0: "Location", 9.0: "Refused"}
VALID = (1.0, 2.0, 3.0, 4.0, 5.0)
CONFIG = """
[study]
name = "Category set study"
[[waves]]
number = 1
[jurisdictions]
AA = { en = "Alpha" }
BB = { en = "Bravo" }
[tables]
min_base = 5
"""


def make_rows(seed: int = 11) -> pd.DataFrame:
    """Up to three mentions; later mentions blank more often; the same code twice in one respondent now
    and then (counted once); 9 (refused) is user-missing; 5 is never given by BB (a zero row)."""
    rng = np.random.default_rng(seed)
    n = 240
    prov = np.where(rng.random(n) < 0.6, "AA", "BB")
    data: dict[str, object] = {
        "RESPID": np.arange(1, n + 1, dtype=float),
        "PROV": prov,
        "WEIGHT": np.round(rng.lognormal(0, 0.45, size=n), 6),
    }
    for i, name in enumerate(MENTIONS):
        codes = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 9.0], size=n, p=[0.25, 0.25, 0.2, 0.15, 0.1, 0.05])
        codes[(prov == "BB") & (codes == 5.0)] = 4.0
        codes[rng.random(n) < 0.15 + 0.3 * i] = np.nan
        data[name] = codes
    df = pd.DataFrame(data)
    df.loc[df.index % 17 == 0, "REASON2"] = df.loc[df.index % 17 == 0, "REASON1"]  # duplicate mentions
    df.loc[df.index % 13 == 0, list(MENTIONS)] = np.nan  # no response at all
    return df


@pytest.fixture(scope="module")
def category_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("mcgroup") / "study"
    root.mkdir()
    (root / "wavetool.toml").write_text(CONFIG, encoding="utf-8")
    init_study(root)
    df = make_rows()
    sav = root / "wave1.sav"
    pyreadstat.write_sav(
        df,
        str(sav),
        column_labels={"RESPID": "Id", "PROV": "Province", "WEIGHT": "Weight"}
        | {m: f"Reason, mention {i + 1}" for i, m in enumerate(MENTIONS)},
        variable_value_labels={m: REASONS for m in MENTIONS},
        missing_ranges={m: [9.0] for m in MENTIONS},
        variable_measure={m: "nominal" for m in MENTIONS},
    )
    (root / "sets.sps").write_text(
        f"GET FILE='{sav}'.\n"
        f"MRSETS /MCGROUP NAME=$REASONS LABEL='Reasons for choosing' VARIABLES={' '.join(MENTIONS)}.\n"
        f"SAVE OUTFILE='{sav}'.\n",
        encoding="utf-8",
    )
    subprocess.run(["pspp", str(root / "sets.sps")], check=True, capture_output=True, timeout=120)
    import_wave(load_config(root), 1, [sav])
    return root, df


def expected(records: list[dict]) -> dict:
    """Respondents per code (a code mentioned twice counts once), by plain loops."""
    given = [(r, {r[m] for m in MENTIONS if r[m] in VALID}) for r in records]
    answered = [(r, codes) for r, codes in given if codes]
    base_w = sum(r["WEIGHT"] for r, _ in answered)
    per_code = {c: [r["WEIGHT"] for r, codes in answered if c in codes] for c in VALID}
    responses = sum(sum(ws) for ws in per_code.values())
    return {
        "base_n": len(answered),
        "base_w": base_w,
        "n_eff": base_w**2 / sum(r["WEIGHT"] ** 2 for r, _ in answered),
        "n": {c: len(ws) for c, ws in per_code.items()},
        "percent": {c: 100 * sum(ws) / base_w for c, ws in per_code.items()},
        "of_responses": {c: 100 * sum(ws) / responses for c, ws in per_code.items()},
        "none_n": len(records) - len(answered),
    }


@pytest.mark.parametrize("scope", ["all", "AA", "BB"])
def test_category_set_counts_respondents_per_code(category_study, scope):
    root, df = category_study
    tables = tabulate(load_config(root), 1, scopes=[scope], questions=["$REASONS"])
    records = [r for r in df.to_dict("records") if scope == "all" or r["PROV"] == scope]
    exp = expected(records)

    summary = tables.summary(1, scope, "$REASONS")
    assert summary["kind"] == "multiple" and summary["label"] == "Reasons for choosing"
    assert summary["base_n"] == exp["base_n"]
    assert summary["base_weighted"] == pytest.approx(exp["base_w"], rel=1e-12)
    assert summary["n_eff"] == pytest.approx(exp["n_eff"], rel=1e-12)

    rows = tables.question_rows(1, scope, "$REASONS")
    assert [r["code"] for r in rows] == ["1", "2", "3", "4", "5", "."]  # codes in order; refused is no response
    assert [r["label"] for r in rows[:5]] == [REASONS[c] for c in VALID]
    by_code = {r["code"]: r for r in rows}
    for c in VALID:
        row = by_code[str(int(c))]
        assert row["n"] == exp["n"][c]
        assert row["percent"] == pytest.approx(exp["percent"][c], rel=1e-12)
        assert row["percent_of_responses"] == pytest.approx(exp["of_responses"][c], rel=1e-12)
    assert sum(by_code[str(int(c))]["percent_of_responses"] for c in VALID) == pytest.approx(100.0)
    assert by_code["."]["missing"] is True and by_code["."]["n"] == exp["none_n"]
    if scope == "BB":
        assert by_code["5"]["n"] == 0 and by_code["5"]["percent"] == 0.0
    # a respondent can give several reasons: percents of respondents add up to more than 100
    assert sum(by_code[str(int(c))]["percent"] for c in VALID) > 100.0 + 1e-9
