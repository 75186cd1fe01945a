"""The edge study shared by the statistics tests (test_stats, test_stats_design): its config, a wave's
rows with every edge the tables must handle, and the .sav they are written to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

MIN_BASE = 10
Z95 = 1.959963984540054  # standard-normal 97.5% quantile
MISSING = (8.0, 9.0)
SCALE = {1.0: "Very bad", 2.0: "Bad", 3.0: "Neutral", 4.0: "Good", 5.0: "Very good", 8.0: "Don't know", 9.0: "Refused"}

CONFIG = f"""
[study]
name = "Edge study"
[[waves]]
number = 1
[[waves]]
number = 2
[jurisdictions]
AA = {{ en = "Alpha" }}
BB = {{ en = "Bravo" }}
CC = {{ en = "Charlie" }}
DD = {{ en = "Delta" }}
[[subscribers]]
id = "pair"
name = "Bravo and Charlie"
jurisdictions = ["BB", "CC"]
contacts = ["a@pair.example"]
[tables]
min_base = {MIN_BASE}
# the tables as before issue 12 (Kish-Wald, unadjusted, no CV flags); test_stats_design checks the defaults
variance = "kish"
interval = "wald"
adjust = "none"
cv_caution = 0
cv_suppress = 0
"""


def make_wave(wave: int, seed: int, equal_weights: bool = False) -> pd.DataFrame:
    """AA: 150 respondents; BB: Q1 answered validly by exactly MIN_BASE - 1; CC: exactly MIN_BASE;
    DD: one respondent. Q3 nobody answered (all blank or refused)."""
    rng = np.random.default_rng(seed)
    sizes = {"AA": 150, "BB": MIN_BASE + 3, "CC": MIN_BASE + 2, "DD": 1}
    prov = [p for p, k in sizes.items() for _ in range(k)]
    n = len(prov)
    q1 = rng.choice([1, 2, 3, 4, 5, 8, 9], size=n, p=[0.1, 0.15, 0.2, 0.3, 0.2, 0.03, 0.02]).astype(float)
    q1[rng.random(n) < 0.04] = np.nan
    prov_arr = np.array(prov)
    # exact valid bases for BB and CC: set the first k valid, the rest missing
    for code, valid in (("BB", MIN_BASE - 1), ("CC", MIN_BASE)):
        idx = np.flatnonzero(prov_arr == code)
        q1[idx[:valid]] = rng.choice([1, 2, 3, 4, 5], size=valid)
        q1[idx[valid:]] = np.resize([8.0, 9.0, np.nan], len(idx) - valid)
    q2 = rng.choice([1, 2, 9], size=n, p=[0.55, 0.4, 0.05]).astype(float)
    q4 = rng.choice([1, 2, 3, 7], size=n, p=[0.3, 0.3, 0.3, 0.1]).astype(float)  # 7 is valid but unlabelled
    q3 = np.where(rng.random(n) < 0.5, np.nan, 9.0)
    weight = np.ones(n) if equal_weights else np.round(rng.lognormal(0, 0.5, size=n), 6)
    return pd.DataFrame(
        {
            "RESPID": np.arange(1, n + 1) + wave * 10000,
            "PROV": prov,
            "WEIGHT": weight,
            "Q1": q1,
            "Q2": q2,
            "Q3": q3,
            "Q4": q4,
        }
    )


def write_sav(df: pd.DataFrame, path: Path) -> None:
    pyreadstat.write_sav(
        df,
        str(path),
        column_labels={
            "RESPID": "Id",
            "PROV": "Province",
            "WEIGHT": "Weight",
            "Q1": "Satisfaction",
            "Q2": "Used it",
            "Q3": "Nobody answered",
            "Q4": "Frequency of use",
        },
        variable_value_labels={
            "Q1": SCALE,
            "Q2": {1.0: "Yes", 2.0: "No", 9.0: "Refused"},
            "Q3": SCALE,
            "Q4": {1.0: "Rarely", 2.0: "Sometimes", 3.0: "Often"},
        },
        missing_ranges={"Q1": [8.0, 9.0], "Q2": [9.0], "Q3": [8.0, 9.0]},
        variable_measure={"Q1": "ordinal", "Q2": "nominal", "Q3": "ordinal", "Q4": "ordinal"},
    )
