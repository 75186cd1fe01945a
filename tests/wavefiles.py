"""Helpers for the import tests: a small study, real wave files written with pyreadstat and GNU PSPP, and a
fingerprint of everything in a study database."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from wavetool.status import init_study

JURISDICTIONS = {
    "ON": ("Ontario", "Ontario"),
    "QC": ("Quebec", "Québec"),
    "BC": ("British Columbia", "Colombie-Britannique"),
}
SAT = {
    1.0: "Très insatisfait",
    2.0: "Insatisfait",
    3.0: "Ni l'un ni l'autre",
    4.0: "Satisfait",
    5.0: "Très satisfait",
    8.0: "Ne sait pas",
    9.0: "Refus",
}
LABELS = {
    "RESPID": "Respondent id",
    "PROV": "Province",
    "WEIGHT": "Final weight",
    "Q1": "Satisfaction générale « service »",
    "Q2": "Ease of access",
    "COMMENT": "Comment",
    "VISIT": "Date of the visit",
}
SPSS_EPOCH = dt.datetime(1582, 10, 14)


def write_study(folder: Path, extra: str = "", jurisdictions: bool = True) -> Path:
    """A study folder with four waves configured, three jurisdictions (unless not wanted) and one subscriber."""
    folder.mkdir(parents=True, exist_ok=True)
    juris = "\n".join(f'{code} = {{ en = "{en}", fr = "{fr}" }}' for code, (en, fr) in JURISDICTIONS.items())
    waves = "\n".join(f'[[waves]]\nnumber = {n}\nlabel = "Wave {n}"\n' for n in (1, 2, 3, 4))
    text = f'[study]\nname = "Test study"\n\n{waves}\n'
    if jurisdictions:
        text += f"[jurisdictions]\n{juris}\n\n"
        text += (
            '[[subscribers]]\nid = "ontario"\nname = "Ontario"\njurisdictions = ["ON"]\ncontacts = ["a@on.example"]\n\n'
        )
    text += extra
    (folder / "wavetool.toml").write_text(text, encoding="utf-8")
    init_study(folder)
    return folder


def wave_frame(rows: int = 40, seed: int = 1, first_id: int = 100001) -> pd.DataFrame:
    """A wave's answers: ids, jurisdictions, weights, two 1-5 questions with 8/9 codes and blanks, accented
    comments and a date."""
    rng = np.random.default_rng(seed)
    q1 = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=rows)
    q1[[1, 5]] = 8.0
    q1[[2]] = 9.0
    q1[[3]] = np.nan
    q2 = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 8.0], size=rows)
    q2[[4]] = np.nan
    comments = np.array(["", "Très bien", 'Staff were "great", thanks', "Le délai, trop long", ""], dtype=object)
    visit_days = rng.integers(0, 300, size=rows)
    visit = [(dt.datetime(2020, 6, 1) + dt.timedelta(days=int(d)) - SPSS_EPOCH).total_seconds() for d in visit_days]
    return pd.DataFrame(
        {
            "RESPID": np.arange(first_id, first_id + rows, dtype=float),
            "PROV": rng.choice(np.array(list(JURISDICTIONS), dtype=object), size=rows),
            "WEIGHT": np.round(rng.uniform(0.3, 3.0, size=rows), 6),
            "Q1": q1,
            "Q2": q2,
            "COMMENT": comments[np.arange(rows) % len(comments)],
            "VISIT": np.array(visit, dtype=float),
        }
    )


def write_sav(path: Path, frame: pd.DataFrame, compress: bool = False, missing: bool = True) -> Path:
    """The frame as a .sav (or .zsav with ``compress``) with labels, value labels, user-missing 8/9,
    measurement levels and formats."""
    labels = {n: LABELS.get(n, n) for n in frame.columns}
    pyreadstat.write_sav(
        frame,
        str(path),
        compress=compress,
        column_labels=labels,
        variable_value_labels={"Q1": SAT, "Q2": SAT, "PROV": {c: en for c, (en, _) in JURISDICTIONS.items()}},
        missing_ranges={"Q1": [8, 9], "Q2": [8, 9]} if missing else None,
        variable_measure={"Q1": "ordinal", "Q2": "ordinal", "PROV": "nominal", "WEIGHT": "scale", "RESPID": "scale"},
        variable_format={"Q1": "F1.0", "Q2": "F1.0", "WEIGHT": "F8.6", "RESPID": "F8.0", "VISIT": "DATE11"},
    )
    return path


def rewrite_sav(path: Path, frame: pd.DataFrame, meta: Any) -> Path:
    """``frame`` as a .sav at ``path`` with the metadata ``pyreadstat.read_sav`` gave for it (``meta``):
    labels, value labels, user-missing ranges and measurement levels, so an edited file stays the same file."""
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels=dict(zip(meta.column_names, meta.column_labels, strict=True)),
        variable_value_labels=meta.variable_value_labels,
        missing_ranges=meta.missing_ranges,
        variable_measure=meta.variable_measure,
    )
    return path


def pspp() -> str:
    """The GNU PSPP binary (tests that need it skip, saying why, where it is absent)."""
    binary = shutil.which("pspp")
    if binary is None:
        pytest.skip("GNU PSPP is not installed (make test installs it with apt where it can)")
    return binary


def run_pspp(syntax: str, folder: Path) -> None:
    script = folder / "job.sps"
    script.write_text(syntax, encoding="utf-8")
    done = subprocess.run(
        [pspp(), "-O", "format=txt", "-o", str(folder / "job.txt"), str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = (folder / "job.txt").read_text(encoding="utf-8", errors="replace") if (folder / "job.txt").exists() else ""
    assert done.returncode == 0 and "error" not in output.lower(), done.stdout + done.stderr + output


def write_por(sav: Path, por: Path) -> Path:
    """A portable file written by GNU PSPP from ``sav`` (MISSING VALUES survive in the .por)."""
    run_pspp(f"GET FILE='{sav}'.\nEXPORT OUTFILE='{por}'.\n", por.parent)
    return por


def db_digest(study: Path) -> str:
    """A sha256 of the contents of every table in the study database (rows sorted), and of the schema.

    DuckDB may rewrite its file (header, checkpoint) without any change of content, so "the database is
    unchanged" is asserted on the contents; tests where no read-write connection is ever opened also
    compare the file's bytes."""
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        digest = hashlib.sha256()
        tables = con.execute(
            "SELECT schema_name, table_name, sql FROM duckdb_tables() ORDER BY schema_name, table_name"
        ).fetchall()
        for schema, table, sql in tables:
            digest.update(f"{schema}.{table}:{sql}".encode())
            rows = con.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
            digest.update(repr(rows).encode())
        return digest.hexdigest()
    finally:
        con.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
