"""Confidentiality as a property: for every pair of distinct subscribers A and B in the sample study, what
B receives or can ask for about itself — its report PDF, its tables in every format, its exports and its
e-mail — holds none of A's custom question texts or answers, and no figure for a jurisdiction B does not own.

The study is run through the whole cron pipeline once (wave 1, e-mail to the outbox), as a user would.
"""

from __future__ import annotations

import email
import email.policy
import io
import itertools
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pyreadstat
import pytest
from pypdf import PdfReader

from helpers import copy_sample
from wavetool.codebook import harmonised_codebook
from wavetool.config import load_config
from wavetool.custom import custom_questions
from wavetool.export import export_data
from wavetool.pipeline import run_wave
from wavetool.stats import tabulate
from wavetool.store import read_store

pytestmark = pytest.mark.slow
WAVE = 1


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    study = copy_sample(tmp_path_factory.mktemp("confidential") / "study")
    config_file = study / "wavetool.toml"  # the data book travels with the report
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace("[delivery]\n", '[delivery]\nattach = ["pdf", "xlsx"]\n', 1), encoding="utf-8")
    summary = run_wave(load_config(study), WAVE, send=True)
    assert summary.exit_code == 0
    return study


def book_text(source: Path | bytes) -> str:
    """Every cell of every sheet of a data book (and its sheet names), as text."""
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(source) if isinstance(source, bytes) else source, read_only=True)
    cells = [" ".join(wb.sheetnames)]
    for ws in wb.worksheets:
        cells += [str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    return "\n".join(cells)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _words(text: str) -> str:
    # PDF extraction breaks lines where the layout wrapped them; compare on single-spaced text.
    return " ".join(text.split())


def secrets_of(config, study: Path, owner: str, viewer: str) -> set[str]:
    """A's custom question texts (and their translations) and A's answer labels that B has no reason to
    show: labels that are neither B's own custom labels nor labels of a core question."""
    with read_store(study) as con:
        mine = custom_questions(con, WAVE, owner)
        theirs = custom_questions(con, WAVE, viewer)
        core = harmonised_codebook(con, config, WAVE)
    core_labels = {label for var in core.values() for label in var.value_labels.values()}
    viewer_labels = {label for q in theirs for label in q.variable.value_labels.values()}
    viewer_texts = {q.variable.label for q in theirs}
    secrets = set()
    for q in mine:
        secrets.add(q.variable.label)
        for language in ("en", "fr"):
            translated = config.translations.get(language, {}).get(f"{owner}:{q.question}")
            if translated:
                secrets.add(translated)
        secrets |= {label for label in q.variable.value_labels.values() if label not in core_labels | viewer_labels}
    # Respondents' own open-ended words (core data, e.g. "Très satisfait" in a comment) are not A's secrets.
    with read_store(study) as con:
        comments = " ".join(
            r[0] for r in con.execute(f"SELECT COMMENT FROM wave_{WAVE} WHERE COMMENT <> ''").fetchall()
        )
    return {_words(s) for s in secrets - viewer_texts if s and len(s) > 3 and not shows(comments, s)}


def foreign_jurisdiction_names(config, viewer: str) -> set[str]:
    own = set(config.subscribers[viewer].jurisdictions)
    return {name for code, j in config.jurisdictions.items() if code not in own for name in (j.en, j.fr)}


def viewer_materials(config, study: Path, viewer: str, tmp_path: Path) -> dict[str, str]:
    """Everything B receives or can ask for, as text."""
    materials = {"report": pdf_text(study / "reports" / f"wave-{WAVE}" / f"{viewer}.pdf")}
    tables = tabulate(config, WAVE, scopes=[viewer])
    csv_buffer = io.StringIO()
    tables.to_csv(csv_buffer)
    materials["tables.csv"] = csv_buffer.getvalue()
    materials["tables.json"] = tables.to_json()
    parquet = tmp_path / f"{viewer}-tables.parquet"
    tables.to_parquet(parquet)
    materials["tables.parquet"] = json.dumps(pq.read_table(parquet).to_pylist(), default=str, ensure_ascii=False)
    sav = tmp_path / f"{viewer}.sav"
    export_data(config, [WAVE], viewer, "sav", sav)
    frame, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    materials["export.sav"] = json.dumps(
        [meta.column_labels, meta.variable_value_labels, frame.astype(str).to_dict("list")],
        default=str,
        ensure_ascii=False,
    )
    csv_export = tmp_path / f"{viewer}.csv"
    export_data(config, [WAVE], viewer, "csv", csv_export)
    materials["export.csv"] = "\n".join(p.read_text(encoding="utf-8") for p in tmp_path.glob(f"{viewer}*.csv"))
    materials["email"] = "\n".join(mail_texts(config, study, viewer))
    materials["book"] = book_text(study / "tables" / f"wave-{WAVE}" / f"{viewer}.xlsx")
    banner = tabulate(config, WAVE, scopes=[viewer], banners=list(config.banners.variables))
    materials["banner tables"] = banner.to_json()
    return materials


def mail_texts(config, study: Path, viewer: str) -> list[str]:
    contacts = set(config.subscribers[viewer].contacts)
    texts = []
    for path in sorted((study / "outbox").rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients = {a.addr_spec for a in message["To"].addresses} if message["To"] else set()
        if recipients & contacts:
            assert recipients <= contacts, f"{path.name} mixes subscribers: {recipients}"
            parts = [str(message["Subject"])]
            for part in message.walk():
                if part.get_content_type() in ("text/plain", "text/html"):
                    parts.append(part.get_content())
                elif part.get_content_type() == "application/pdf":
                    parts.append(pdf_text_bytes(part.get_content()))
                elif part.get_content_type().endswith("spreadsheetml.sheet"):
                    parts.append(book_text(part.get_content()))
            texts.append("\n".join(parts))
    assert len(texts) == 1, f"{viewer} should receive exactly one message, got {len(texts)}"
    return texts


def shows(text: str, phrase: str) -> bool:
    """Whether ``phrase`` appears in ``text`` as whole words (so "Refus" is not found in "Refused")."""
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", text) is not None


def pdf_text_bytes(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_no_subscriber_sees_another_subscribers_questions_answers_or_jurisdictions(delivered, tmp_path):
    config = load_config(delivered)
    subscribers = sorted(config.subscribers)
    materials = {
        b: {k: _words(v) for k, v in viewer_materials(config, delivered, b, tmp_path).items()} for b in subscribers
    }
    checked = 0
    for owner, viewer in itertools.permutations(subscribers, 2):
        for secret in secrets_of(config, delivered, owner, viewer):
            for name, text in materials[viewer].items():
                assert not shows(text, secret), f"{viewer}'s {name} shows {owner}'s {secret!r}"
                checked += 1
    for viewer in subscribers:
        for name in foreign_jurisdiction_names(config, viewer):
            for kind in ("report", "email", "book"):
                assert not shows(materials[viewer][kind], name), f"{viewer}'s {kind} names {name}"
        scopes = {row["scope"] for row in json.loads(tabulate(config, WAVE, scopes=[viewer]).to_json())["rows"]}
        assert scopes == {viewer}
    assert checked > 100  # the property was really exercised
    for viewer in subscribers:  # the book really went with the report
        assert "spreadsheetml" in "".join(
            p.read_text(errors="replace") for p in (delivered / "outbox").rglob("*.eml") if viewer in p.name
        )


def test_each_subscriber_still_sees_its_own_custom_questions(delivered, tmp_path):
    """The other half of the property: the filter does not simply drop everything."""
    config = load_config(delivered)
    with read_store(delivered) as con:
        own = {s: [q.variable.label for q in custom_questions(con, WAVE, s)] for s in config.subscribers}
    for viewer, texts in own.items():
        report = _words(pdf_text(delivered / "reports" / f"wave-{WAVE}" / f"{viewer}.pdf"))
        language = config.subscribers[viewer].language
        for question in texts:
            shown = question
            if language == "en" and viewer == "quebec":
                shown = config.translations["en"].get(f"{viewer}:{question}", question)
            assert _words(shown) in report or (language == "fr" and _words(question) in report), (viewer, question)
