"""Sentences of the report that must be true of the study they describe: the benchmark of a study with no
one outside the subscriber, the data book "delivered with this report" only when it is, and a dashboard
that says its measures are withheld rather than showing nothing. Read from the rendered PDF and the e-mail."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from pypdf import PdfReader

from wavefiles import SAT
from wavetool.config import load_config
from wavetool.deliver.message import compose
from wavetool.report import render_reports

pytestmark = pytest.mark.slow  # renders PDFs (make test-fast skips them)

BOOK_SENTENCE = "The full per-question detail is in the Excel data book delivered with this report."


def one_jurisdiction_study(root: Path, rows: int, attach: str = "") -> Path:
    """A study whose only jurisdiction is the subscriber's (PSPP's hotel.sav shape: no id, no weight)."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({f"v{i}": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=rows) for i in (1, 2, 3)})
    root.mkdir(parents=True)
    sav = root / "w1.sav"
    pyreadstat.write_sav(
        frame,
        str(sav),
        column_labels={"v1": "Satisfied with the service", "v2": "Value for money", "v3": "Staff were helpful"},
        variable_value_labels={v: SAT for v in ("v1", "v2", "v3")},
    )
    (root / "wavetool.toml").write_text(
        f"""[study]
name = "Hotel guests"
[columns]
id = "row"
jurisdiction_code = "ON"
weight = "none"
[[waves]]
number = 1
[jurisdictions]
ON = {{ en = "Ontario", fr = "Ontario" }}
[[subscribers]]
id = "ontario"
name = "Government of Ontario"
jurisdictions = ["ON"]
contacts = ["research@ontario.example"]
[tables.scales.v1]
top = [4, 5]
bottom = [1, 2]
[tables.scales.v2]
top = [4, 5]
bottom = [1, 2]
[tables.scales.v3]
top = [4, 5]
bottom = [1, 2]
[delivery]
transport = "outbox"
from = "Hotel study <study@hotel.example>"
{attach}
""",
        encoding="utf-8",
    )
    from wavetool.ingest import import_wave
    from wavetool.status import init_study

    init_study(root)
    import_wave(load_config(root), 1, [sav])
    return root


def pdf_text(path: Path) -> str:
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in PdfReader(path).pages))
    return re.sub(r"(\w)- (\w)", r"\1-\2", text)  # a line broken after a hyphen


def render(study: Path) -> str:
    config = load_config(study)
    result = render_reports(config, 1, subscribers=["ontario"], jobs=1)
    assert result.ok, result.failed
    return pdf_text(study / "reports" / "wave-1" / "ontario.pdf")


def test_a_study_with_no_one_outside_the_subscriber_has_no_benchmark_in_pdf_and_email(tmp_path):
    study = one_jurisdiction_study(tmp_path / "s", rows=120)
    text = render(study)
    sentence = "There is no benchmark: every respondent of the study is in Ontario."
    assert sentence in text
    assert "everyone surveyed outside" not in text
    config = load_config(study)
    letter = compose(config, config.subscribers["ontario"], 1, final=False, pages=5, attachment="ontario.pdf")
    assert sentence in letter.text


def test_the_data_book_is_said_to_come_with_the_report_only_when_it_is_attached(tmp_path):
    assert BOOK_SENTENCE not in render(one_jurisdiction_study(tmp_path / "pdf-only", rows=120))
    attached = one_jurisdiction_study(tmp_path / "with-book", rows=120, attach='attach = ["pdf", "xlsx"]')
    assert BOOK_SENTENCE in render(attached)


def test_a_wave_too_small_to_report_shows_its_headline_measures_as_withheld(tmp_path):
    text = render(one_jurisdiction_study(tmp_path / "small", rows=17))
    glance = text.split("At a glance", 2)[2].split("Key findings")[0]
    assert glance.count("Not reported: too few respondents.") == 3
    assert "Satisfied with the service" in glance
