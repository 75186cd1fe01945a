"""The summary report as a subscriber reads it: complete and true key findings, "not asked" versus
"suppressed", multiple-response sets, polarity, names and typography, the page budget and the layout of
every page, the benchmark sentence shared with the e-mail, the full-study report and one subscriber's
failure staying its own.

Text is extracted from real PDFs with pypdf and checked against ``stats.tabulate`` / ``stats.drivers`` of
the same database; the page layout is read from WeasyPrint's laid-out boxes.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from babel.numbers import format_percent
from pypdf import PdfReader
from scipy.stats import norm
from weasyprint.formatting_structure import boxes as B

from wavetool.config import load_config
from wavetool.custom import merge_from_config
from wavetool.deliver.message import compose
from wavetool.report import render_reports
from wavetool.report.model import Computed, build_models
from wavetool.report.render import Renderer
from wavetool.report.text import load_strings, templates_dir
from wavetool.stats import all_scopes, drivers, tabulate
from wavetool.store import write_store

pytestmark = pytest.mark.slow  # every test here renders PDFs (make test-fast skips them)

PERCENT = {"en": ("en_CA", "#,##0.0%"), "fr": ("fr_CA", "#,##0.0\u00a0%")}
SPACES = re.compile(r"[\s\u00a0\u202f]+")


def pct(value: float, language: str) -> str:
    locale, pattern = PERCENT[language]
    return format_percent(value / 100, format=pattern, locale=locale)


def flat(text: str) -> str:
    """Whitespace of any kind (line breaks, no-break and thin spaces) folded to one space."""
    return SPACES.sub(" ", text)


def pages_text(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(str(path)).pages]


def section_pages(pages: list[str], title: str, next_titles: list[str]) -> str:
    """The text of the pages from the one whose first heading is ``title`` up to (not including) the
    first page that starts with one of ``next_titles``."""
    start = next((i for i, t in enumerate(pages) if _starts(t, title)), None)
    assert start is not None, f"no page starts with {title!r}"
    end = next((i for i in range(start + 1, len(pages)) if any(_starts(pages[i], n) for n in next_titles)), None)
    return "\n".join(pages[start:end])


def _starts(text: str, title: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and flat(lines[0]).strip() == flat(title).strip()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path) -> Path:
    dest = tmp_path_factory.mktemp("summary") / "study"
    shutil.copytree(_imported_template, dest)
    (dest / ".wavetool.lock").unlink(missing_ok=True)
    merge_from_config(load_config(dest))
    return dest


@pytest.fixture(scope="module")
def wave4(study: Path) -> Path:
    result = render_reports(load_config(study), 4, jobs=2)
    assert result.ok, result.failed
    return study / "reports" / "wave-4"


@pytest.fixture
def own_study(tmp_path: Path, study: Path) -> Path:
    dest = tmp_path / "study"
    shutil.copytree(study, dest, ignore=shutil.ignore_patterns("reports"))
    (dest / ".wavetool.lock").unlink(missing_ok=True)
    return dest


def test_every_significant_difference_is_on_the_findings_pages_or_in_the_remainder(study, wave4):
    config = load_config(study)
    tables = tabulate(config, 4, scopes=list(config.subscribers))
    for sub_id, subscriber in config.subscribers.items():
        s = load_strings(templates_dir(), subscriber.language)
        pages = pages_text(wave4 / f"{sub_id}.pdf")
        findings = flat(section_pages(pages, s["findings_title"], [s["drivers_title"], s["themes_title"]]))
        has_further = any(_starts(p, s["further_title"]) for p in pages)
        further = flat(section_pages(pages, s["further_title"], [s["appendix_title"]])) if has_further else ""
        expected = {"benchmark": 0, "previous": 0}
        for summary in tables.summaries:
            if summary["scope"] != sub_id or summary["wave"] != 4 or summary["topbox"] is None:
                continue
            for kind, flag, other in (
                ("benchmark", summary["sig_topbox_vs_benchmark"], summary["benchmark_topbox"]),
                ("previous", summary["sig_topbox_vs_previous"], summary["previous_topbox"]),
            ):
                if flag not in ("higher", "lower"):
                    continue
                expected[kind] += 1
                value, against = pct(summary["topbox"], subscriber.language), pct(other, subscriber.language)
                line = re.compile(
                    rf"{summary['question']} .{{0,200}}?{re.escape(flat(value))}.{{0,60}}?{re.escape(flat(against))}"
                )
                assert line.search(findings) or line.search(further), (sub_id, summary["question"], kind)
        assert sum(expected.values()) > 5, sub_id
        counts = s["findings_counts"].format(benchmark=expected["benchmark"], previous=expected["previous"])
        assert flat(counts) in findings, sub_id
        # the false comfort of the old page is gone
        assert "sampling variation alone" not in flat(" ".join(pages))


def test_the_findings_page_points_at_the_remainder_table_by_its_page(wave4):
    pages = pages_text(wave4 / "quebec.pdf")
    text = flat(" ".join(pages))
    match = re.search(r"« Autres écarts significatifs », page (\d+)", text)
    assert match, "the findings page names the table of further differences and its page"
    assert _starts(pages[int(match.group(1)) - 1], "Autres écarts significatifs")


def test_summary_page_budget_english_and_french(study, wave4, tmp_path):
    for pdf in wave4.glob("*.pdf"):
        assert len(PdfReader(str(pdf)).pages) <= 12, pdf.name
    # The same subscriber in English: the French report is at most 10 % longer.
    config_path = study / "wavetool.toml"
    english = tmp_path / "english"
    shutil.copytree(study, english, ignore=shutil.ignore_patterns("reports"))
    (english / ".wavetool.lock").unlink(missing_ok=True)
    text = config_path.read_text(encoding="utf-8").replace(
        'jurisdictions = ["QC"]\nlanguage = "fr"', 'jurisdictions = ["QC"]\nlanguage = "en"'
    )
    (english / "wavetool.toml").write_text(text, encoding="utf-8")
    result = render_reports(load_config(english), 4, subscribers=["quebec"], jobs=1)
    assert result.ok, result.failed
    en_pages = result.reports["quebec"]["pages"]
    fr_pages = len(PdfReader(str(wave4 / "quebec.pdf")).pages)
    assert fr_pages <= 1.1 * en_pages, (fr_pages, en_pages)


@pytest.mark.slow  # renders the four final reports and Quebec's in English
def test_final_report_page_budget_english_and_french(study, tmp_path):
    """The whole-study report (`--final`) keeps the summary's budget too: at most 12 pages, French no more
    than 10 % longer than the same subscriber's report in English."""
    final = tmp_path / "final"
    result = render_reports(load_config(study), 4, final=True, output_dir=final, jobs=2)
    assert result.ok, result.failed
    pages = {sub_id: entry["pages"] for sub_id, entry in result.reports.items()}
    assert len(pages) == 4 and max(pages.values()) <= 12, pages
    for sub_id, count in pages.items():
        assert len(PdfReader(str(final / "wave-4" / f"{sub_id}.pdf")).pages) == count
    english = tmp_path / "english"
    shutil.copytree(study, english, ignore=shutil.ignore_patterns("reports"))
    (english / ".wavetool.lock").unlink(missing_ok=True)
    text = (study / "wavetool.toml").read_text(encoding="utf-8")
    text = text.replace('jurisdictions = ["QC"]\nlanguage = "fr"', 'jurisdictions = ["QC"]\nlanguage = "en"')
    (english / "wavetool.toml").write_text(text, encoding="utf-8")
    result = render_reports(load_config(english), 4, final=True, subscribers=["quebec"], jobs=1)
    assert result.ok, result.failed
    en_pages = result.reports["quebec"]["pages"]
    assert pages["quebec"] <= 1.1 * en_pages, (pages["quebec"], en_pages)


@pytest.mark.slow  # tabulates waves 1-4 three times
def test_reports_reuse_the_runs_tables_and_show_the_same(study):
    """`wavetool run` hands the report the wave's tables (tables step) and banner tables (data books step):
    the models built from them are the models the report builds on its own, to the hash."""
    config = load_config(study)
    subscribers = list(config.subscribers)
    computed = Computed(
        4,
        tabulate(config, 4, scopes=all_scopes(config)),
        tabulate(config, 4, scopes=subscribers, banners=list(config.banners.variables)),
    )
    reused = build_models(config, 4, subscribers, final=True, computed=computed)
    own = build_models(config, 4, subscribers, final=True)
    assert {s: m.sha256() for s, m in reused.items()} == {s: m.sha256() for s, m in own.items()}
    assert any(m.groups for m in own.values()) and any(m.drivers for m in own.values())


def test_no_suppressed_where_the_tables_suppress_nothing_and_not_asked_is_not_suppressed(study):
    config = load_config(study)
    result = render_reports(config, 2, subscribers=["ontario", "british-columbia"], jobs=1)
    assert result.ok, result.failed
    tables = tabulate(config, 2, scopes=["ontario", "british-columbia"])
    for sub_id in ("ontario", "british-columbia"):
        text = flat(" ".join(pages_text(study / "reports" / "wave-2" / f"{sub_id}.pdf")))
        audited = [a for a in tables.suppressed if a["scope"] == sub_id and a["wave"] == 2]
        if not audited:
            assert "Suppressed" not in text, sub_id
            assert "No estimate in this report had to be suppressed." in text
        else:
            assert "Estimates suppressed in this wave" in text
    # Q24-Q27 were added in wave 2: their previous wave reads "not asked", never "Suppressed".
    text = flat(" ".join(pages_text(study / "reports" / "wave-2" / "ontario.pdf")))
    assert re.search(r"Q24 COVID-19[^%]*?\d%[^Q]*?not asked", text), "Q24's previous wave is 'not asked'"


def test_multiple_response_set_shown_as_a_set_on_its_own_base(study, wave4):
    config = load_config(study)
    tables = tabulate(config, 4, scopes=["ontario"], questions=["$CHANNELS"])
    summary = tables.summary(4, "ontario", "$CHANNELS")
    text = flat(" ".join(pages_text(wave4 / "ontario.pdf")))
    assert f"base: {summary['base_n']:,} respondents" in text
    for row in tables.question_rows(4, "ontario", "$CHANNELS"):
        if row["percent"] is not None:
            label = row["label"].rsplit(":", 1)[1].strip()
            assert re.search(rf"{re.escape(label)} {re.escape(pct(row['percent'], 'en'))}", text), label
    assert "Not selected" not in text and "Selected" not in text
    assert "CH_" not in text and "$CHANNELS" not in text


def test_negative_polarity_is_drawn_and_worded(study, wave4):
    config = load_config(study)
    model = build_models(config, 4, ["ontario"])["ontario"]
    q23 = model.question("Q23")
    assert q23.polarity == "negative"
    for finding in model.findings:
        if finding.question == "Q23":
            assert finding.verdict == ("better" if finding.direction == "lower" else "worse")
    text = flat(" ".join(pages_text(wave4 / "ontario.pdf")))
    assert "(a higher share is unfavourable)" in text
    q1 = [f for f in model.findings if f.question == "Q1" and f.kind == "previous"]
    assert q1 and q1[0].direction == "higher" and q1[0].verdict == "better"


def test_client_pages_carry_no_internal_words_and_names_read_naturally(wave4):
    for pdf in wave4.glob("*.pdf"):
        text = flat(" ".join(pages_text(pdf)))
        for word in ("wavetool", "tabulate", "AGEGRP", "GENDER", "CH_", "$CHANNELS", "Middle", "Intermédiaire", "…"):
            assert word not in text, (pdf.name, word)
        for wrong in ("for Government of", "pour Gouvernement", "de le ", "à le "):
            assert wrong not in text, (pdf.name, wrong)
    text = flat(" ".join(pages_text(wave4 / "quebec.pdf")))
    assert "demandées par le gouvernement du Québec" in text  # the configured in-sentence name


def test_french_typography(study):
    config = load_config(study)
    model = build_models(config, 4, ["quebec"])["quebec"]
    html = Renderer().html(model)
    texts = [html] + [
        base64.b64decode(uri).decode("utf-8")
        for uri in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    ]
    for text in texts:
        plain = re.sub(r"<[^>]+>", "\n", text)
        bad = re.search(r".{0,30}\w[ \u00a0]?[:;!?](\s|$)", plain)
        assert not bad, bad.group(0) if bad else ""
        assert not re.search(r"«[ \u00a0]|[ \u00a0]»", plain)
        assert not re.search(r"\w…", plain), "no label shortened with an ellipsis"
    assert "\u202f:" in html and "«\u202f" in html


def test_email_benchmark_sentence_is_the_pdfs(study, wave4):
    config = load_config(study)
    for sub_id, subscriber in config.subscribers.items():
        letter = compose(config, subscriber, 4, final=False, pages=9, attachment="x.pdf")
        model = build_models(config, 4, [sub_id])[sub_id]
        sentence = model.benchmark_sentence
        assert sentence and flat(sentence) in flat(letter.text) and flat(sentence) in flat(letter.html)
        text = flat(" ".join(pages_text(wave4 / f"{sub_id}.pdf")))
        assert text.count(flat(sentence)) >= 2, sub_id  # the cover and the methodology
        assert "all respondents" not in flat(letter.text).replace("all other respondents", "")


def test_benchmark_label_overrides_the_wording_everywhere(own_study):
    path = own_study / "wavetool.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            '[report]\noutput_dir = "reports"',
            '[report]\noutput_dir = "reports"\nbenchmark_label = { en = "Benchmark: the rest of the '
            'survey, outside {places}." }\n',
        ),
        encoding="utf-8",
    )
    config = load_config(own_study)
    result = render_reports(config, 4, subscribers=["ontario"], jobs=1)
    assert result.ok, result.failed
    text = flat(" ".join(pages_text(own_study / "reports" / "wave-4" / "ontario.pdf")))
    assert "Benchmark: the rest of the survey, outside Ontario." in text
    letter = compose(config, config.subscribers["ontario"], 4, final=False, pages=9, attachment="x.pdf")
    assert "Benchmark: the rest of the survey, outside Ontario." in letter.text


def _layout(model) -> list[tuple[float, list[str], list[str]]]:
    """Per page: how full it is (0-1 of the content height), the sections on it, the texts outside it."""
    renderer = Renderer()
    document = renderer.document(renderer.html(model))
    result = []
    for page in document.pages:
        box = page._page_box
        html = box.children[0]
        top, left, height, width = box.content_box_y(), box.content_box_x(), box.height, box.width
        bottom, outside, sections = top, [], []
        for b in html.descendants():
            if getattr(b, "is_table_wrapper", False):
                groups = [g for g in b.descendants() if isinstance(g, B.TableRowGroupBox) and not g.is_header]
                if not any(g.children for g in groups):
                    outside.append("a table caption without its table")
            if b.element_tag == "section" and isinstance(b, B.BlockBox) and b.element is not None:
                sections.append(b.element.get("id") or b.element.get("class"))
            if isinstance(b, (B.LineBox, B.InlineReplacedBox, B.BlockReplacedBox, B.TableRowBox)):
                bottom = max(bottom, b.position_y + b.margin_height())
            if isinstance(b, (B.TextBox, B.InlineReplacedBox, B.BlockReplacedBox)):
                if b.position_x + b.margin_width() > left + width + 0.5 or b.position_x < left - 0.5:
                    outside.append(getattr(b, "text", b.element_tag))
        result.append(((bottom - top) / height, sections, outside))
    return result


def test_pages_are_filled_and_no_text_runs_outside_its_box(study):
    config = load_config(study)
    models = build_models(config, 4, list(config.subscribers))
    for sub_id, model in models.items():
        pages = _layout(model)
        last_page = {}
        for number, (_fill, sections, _out) in enumerate(pages):
            for section in sections:
                last_page[section] = number
        for number, (fill, sections, outside) in enumerate(pages):
            assert not outside, (sub_id, number + 1, outside[:3])
            if number == 0 or any(last_page[s] == number for s in sections):
                continue  # the cover, or a section's last page
            assert fill >= 0.5, (sub_id, number + 1, round(fill, 2), sections)


def test_a_half_empty_page_inside_a_section_fails_the_layout_check(study):
    """The check above can fail: a forced page break inside the results leaves a page half empty."""
    config = load_config(study)
    model = build_models(config, 4, ["ontario"])["ontario"]
    renderer = Renderer()
    html = renderer.html(model).replace(
        '<table class="data results">', '<table class="data results" style="break-before: page">', 2
    )
    document = renderer.document(html)
    fills = []
    for page in document.pages:
        box = page._page_box
        bottom = box.content_box_y()
        for b in box.children[0].descendants():
            if isinstance(b, (B.LineBox, B.TableRowBox, B.InlineReplacedBox)):
                bottom = max(bottom, b.position_y + b.margin_height())
        fills.append((bottom - box.content_box_y()) / box.height)
    assert min(fills[1:-1]) < 0.5


def test_drivers_section_agrees_with_stats_drivers(study, wave4):
    config = load_config(study)
    found = drivers(config, 4, scopes=["ontario", "quebec"])
    for sub_id in ("ontario", "quebec"):
        language = config.subscribers[sub_id].language
        s = load_strings(templates_dir(), language)
        pages = pages_text(wave4 / f"{sub_id}.pdf")
        text = flat(section_pages(pages, s["drivers_title"], [s["themes_title"]]))
        rows = [r for r in found.rows if r["scope"] == sub_id]
        assert rows
        for r in rows:
            assert re.search(
                rf"\b{r['importance_rank']} {r['attribute']} .*?{re.escape(flat(pct(r['importance'], language)))}", text
            ), r
        priorities = [r["attribute"] for r in rows if r["quadrant"] == "priority"]
        sentence = text[text.index(flat(s["drivers_priorities"].split("{")[0])) :] if priorities else ""
        for attribute in priorities:
            assert attribute in sentence[:600]
    # the chart has alt text naming every attribute
    model = build_models(config, 4, ["ontario"])["ontario"]
    html = Renderer().html(model)
    alt = re.search(r'alt="(Scatter chart[^"]*)"', html).group(1)
    for r in (r for r in found.rows if r["scope"] == "ontario"):
        assert r["attribute"] in alt


def test_full_study_report_tests_wave_1_against_wave_4(own_study):
    config = load_config(own_study)
    result = render_reports(config, 4, subscribers=["ontario"], final=True, jobs=1)
    assert result.ok, result.failed
    text = flat(" ".join(pages_text(own_study / "reports" / "wave-4" / "ontario.pdf")))
    assert "Full-study report" in text and "The study from Wave 1 to Wave 4" in text
    assert "asked in both Wave 1 (June 2020) and Wave 4 (January 2021)" in text
    first, last = tabulate(config, 1, scopes=["ontario"]), tabulate(config, 4, scopes=["ontario"])
    pairs = []
    for s4 in last.summaries:
        s1 = first.summary(1, "ontario", s4["question"])
        if s4["scope"] != "ontario" or s4["kind"] != "single" or s4["topbox"] is None or s1 is None:
            continue
        if s1["topbox"] is None or s4["question"].startswith("CH_"):
            continue
        pairs.append((s4["question"], s1["topbox"], s1["topbox_se"], s4["topbox"], s4["topbox_se"]))
    assert len(pairs) >= 20
    # independent computation: z-tests and Benjamini-Hochberg in numpy
    diff = np.array([p[3] - p[1] for p in pairs])
    se = np.sqrt(np.array([p[2] ** 2 + p[4] ** 2 for p in pairs]))
    p = 2 * norm.sf(np.abs(diff) / se)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1, np.minimum.accumulate(ranked[::-1])[::-1])
    for (question, v1, _, v4, _), d, q in zip(pairs, diff, adjusted, strict=True):
        verdict = ("up" if d > 0 else "down") if q < 0.05 else "no significant change"
        pattern = rf"{question} [^%]*?{re.escape(pct(v1, 'en'))} {re.escape(pct(v4, 'en'))} \S+ pts {verdict}"
        assert re.search(pattern, text), (question, verdict)


def test_one_subscribers_missing_translation_fails_only_its_report(own_study, cli):
    path = own_study / "wavetool.toml"
    text = re.sub(r'^"Q2" = .*\n', "", path.read_text(encoding="utf-8"), flags=re.M)
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("--study", own_study, "report", "--wave", "4")
    assert code == 73, (out, err)
    assert "quebec" in out + err and '"Q2"' in out + err
    folder = own_study / "reports" / "wave-4"
    assert not (folder / "quebec.pdf").exists()
    for sub_id in ("ontario", "british-columbia", "maritimes"):
        assert (folder / f"{sub_id}.pdf").exists(), sub_id


def test_one_subscribers_template_error_fails_only_its_report(own_study):
    """A study template that breaks only on a question one subscriber has (Quebec's C4) fails that report;
    the others are rendered."""
    own = own_study / "my-templates"
    own.mkdir()
    builtin = (templates_dir() / "report.html.j2").read_text(encoding="utf-8")
    broken = builtin.replace(
        "{{ results_table(m.custom, s.custom_title, false) }}",
        "{%- for q in m.custom %}{% if q.key == 'C4' %}{{ q.no_such_field.x }}{% endif %}{% endfor %}"
        "{{ results_table(m.custom, s.custom_title, false) }}",
        1,
    )
    assert broken != builtin
    (own / "report.html.j2").write_text(broken, encoding="utf-8")
    path = own_study / "wavetool.toml"
    path.write_text(path.read_text().replace("[report]\n", '[report]\ntemplates = "my-templates"\n', 1))
    result = render_reports(load_config(own_study), 4, jobs=1)
    assert set(result.failed) == {"quebec"}, result.failed
    assert "report.html.j2: line" in result.failed["quebec"] and "no_such_field" in result.failed["quebec"]
    assert sorted(result.rendered) == ["british-columbia", "maritimes", "ontario"]


def test_weighted_only_when_weights_vary(own_study):
    with write_store(own_study) as con:
        for wave in (1, 2, 3, 4):
            con.execute(f"UPDATE wave_{wave} SET _weight = 1.0")
    config = load_config(own_study)
    result = render_reports(config, 4, subscribers=["ontario"], jobs=1)
    assert result.ok, result.failed
    text = flat(" ".join(pages_text(own_study / "reports" / "wave-4" / "ontario.pdf")))
    assert "weight" in text.lower()  # the methodology says every respondent has the same weight
    assert "weighted" not in text.lower(), re.search(r".{60}weighted.{60}", text.lower())


def test_appendix_adds_the_detailed_tables_back(own_study):
    path = own_study / "wavetool.toml"
    path.write_text(path.read_text().replace("[report]\n", "[report]\nappendix = true\n", 1))
    config = load_config(own_study)
    result = render_reports(config, 4, subscribers=["ontario"], jobs=1, questions=["Q1", "Q15"])
    assert result.ok, result.failed
    text = " ".join(pages_text(own_study / "reports" / "wave-4" / "ontario.pdf"))
    assert "Appendix: detailed tables" in text
    tables = tabulate(config, 4, scopes=["ontario"], questions=["Q1", "Q15"])
    for question in ("Q1", "Q15"):
        for row in tables.question_rows(4, "ontario", question):
            if row["percent"] is not None:
                assert pct(row["percent"], "en") in text, (question, row["code"])


def test_cli_exit_code_is_documented():
    codes = (Path(__file__).resolve().parents[1] / "docs" / "exit-codes.md").read_text(encoding="utf-8")
    assert re.search(r"73.*report", codes)
