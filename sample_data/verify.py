#!/usr/bin/env python3
"""Read the generated sample study back and check it (run after generate.py)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pyreadstat

HERE = Path(__file__).resolve().parent
cfg = tomllib.loads((HERE / "wavetool.toml").read_text(encoding="utf-8"))
ok = True


def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok &= bool(cond)


waves = {}
for w, f in [(1, "wave1.sav"), (2, "wave2.zsav")]:
    df, m = pyreadstat.read_sav(str(HERE / f"inbox/wave-{w}" / f), user_missing=True)
    waves[w] = df
    check(m.missing_ranges.get("Q1") == [{"lo": 8.0, "hi": 8.0}, {"lo": 9.0, "hi": 9.0}], f"{f}: Q1 missing 8;9")
    check(
        m.variable_measure["Q1"] == "ordinal"
        and m.original_variable_types["COMMENT"] == "A200"
        and m.original_variable_types["PROV"] == "A2",
        f"{f}: measure/format",
    )
    check("Q24" in df.columns if w == 2 else "Q24" not in df.columns, f"{f}: COVID items from wave 2")
    print("     mr_sets:", m.mr_sets)
    check(df["COMMENT"].str.contains("«").any(), f"{f}: accented comments present")
df, m = pyreadstat.read_por(str(HERE / "inbox/wave-3/wave3.por"))  # read_por has no user_missing
waves[3] = df
check(m.variable_value_labels["Q3"][3] == "Neutral", "wave3.por: Q3.3 reworded")
check(
    df["COMMENT"].map(lambda s: s.isascii()).all() and m.original_variable_types["COMMENT"] == "A200",
    "wave3.por: ASCII comments, A200",
)
out = subprocess.run(
    ["pspp", "-O", "format=txt", "-o", "-", "/dev/stdin"],
    capture_output=True,
    text=True,
    input=f"IMPORT FILE='{HERE}/inbox/wave-3/wave3.por'.\nDISPLAY DICTIONARY.\n",
).stdout
check("8; 9" in out and out.count("8; 9") >= 30, f"wave3.por: pspp shows missing 8; 9 on {out.count('8; 9')} variables")
cb = pd.read_csv(HERE / "inbox/wave-4/wave4-codebook.csv", dtype=str, keep_default_na=False)
types = {r.variable: r.type for r in cb[cb.code == ""].itertuples()}
df4 = pd.read_csv(
    HERE / "inbox/wave-4/wave4.csv",
    dtype={k: (str if t == "string" else float) for k, t in types.items()},
    keep_default_na=False,
    na_values={k: [""] for k, t in types.items() if t == "numeric"},
)
waves[4] = df4
check(list(df4.columns) == list(types), "wave4.csv columns == codebook variables")
check("Q5A" in df4.columns and "Q5" not in df4.columns, "wave4: Q5 renamed Q5A")
for v in cb[cb.code != ""].variable.unique():
    codes = set(cb[(cb.variable == v)].code) - {""}
    if types[v] == "numeric":
        vals = {str(int(x)) for x in df4[v].dropna().unique()}
        check(vals <= codes or v in ("RESPID",), f"wave4 {v}: all values labelled")
check(set(cb[cb.missing == "true"].code) == {"8", "9"}, "codebook missing codes are 8/9")
for w, d in waves.items():
    prev = waves.get(w - 1)
    if prev is not None:
        added, removed = set(d.columns) - set(prev.columns), set(prev.columns) - set(d.columns)
        print(f"     wave {w - 1}->{w}: added {sorted(added)} removed {sorted(removed)}")
    vc = d["PROV"].value_counts()
    check(len(vc) == 13 and vc.min() >= 40 and d.RESPID.is_unique, f"wave {w}: n={len(d)}, min per PROV {vc.min()}")
    check(d.WEIGHT.between(0.2, 5).all(), f"wave {w}: weights in [0.2, 5], mean {d.WEIGHT.mean():.3f}")
    check(
        d.loc[d.PROV != "BC", "BC_1"].isna().all() and d.loc[d.PROV == "BC", "BC_1"].notna().mean() > 0.9,
        f"wave {w}: BC_ only BC",
    )
ids = pd.concat([d.RESPID for d in waves.values()])
check(ids.is_unique, "RESPID unique across study")
for s in cfg["subscribers"]:
    for c in s.get("custom", []):
        p = HERE / c["file"]
        d = waves[c["wave"]]
        if p.suffix == ".sav":
            cdf, cm = pyreadstat.read_sav(str(p), user_missing=True)
        else:
            cdf = pd.read_csv(p)
            check((HERE / c["codebook"]).exists(), f"{c['codebook']} exists")
        prov = d.set_index("RESPID").PROV.reindex(cdf.RESPID)
        check(
            prov.notna().all() and prov.isin(s["jurisdictions"]).all(),
            f"{c['file']}: {len(cdf)} ids in wave & in {s['jurisdictions']}",
        )
print("ALL OK" if ok else "SOME CHECKS FAILED")
sys.exit(0 if ok else 1)
