"""PDF reports: what a subscriber reads, checked on real PDFs rendered from the imported sample study.

Numbers are checked against ``stats.tabulate`` formatted independently here with Babel's CLDR patterns,
texts against the codebook in the database, and the tagged-PDF metadata with pypdf.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from babel.numbers import format_percent
from pypdf import PdfReader

from helpers import copy_sample
from wavetool.cli import main
from wavetool.config import load_config
from wavetool.custom import custom_questions, merge_from_config
from wavetool.report import render_reports
from wavetool.report.build import MANIFEST
from wavetool.report.charts import BENCH, INK, MUTED, SUBJECT, WHITE, contrast, text_on
from wavetool.report.pdf import Layout
from wavetool.report.render import Renderer, SafeURLFetcher, make_environment
from wavetool.report.text import load_strings, templates_dir
from wavetool.stats import tabulate
from wavetool.store import read_store, write_store

INJECTION = '<img src="file:///etc/passwd"><link rel="attachment" href="file:///etc/passwd">'
PERCENT = {"en": ("en_CA", "#,##0.0%"), "fr": ("fr_CA", "#,##0.0\u00a0%")}


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def flat(text: str) -> str:
    """Text with line breaks and runs of spaces folded, for phrases a line break may split."""
    return re.sub(r"[ \n]+", " ", text)


def pct(value: float, language: str) -> str:
    locale, pattern = PERCENT[language]
    return format_percent(value / 100, format=pattern, locale=locale)


def make_study(base: Path, template: Path) -> Path:
    study = base / "study"
    shutil.copytree(template, study)
    (study / ".wavetool.lock").unlink(missing_ok=True)
    merge_from_config(load_config(study))
    return study


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, _imported_template: Path) -> tuple[Path, object]:
    """The sample study (custom questions merged) with every wave-4 report rendered in a 2-worker pool."""
    study = make_study(tmp_path_factory.mktemp("reports"), _imported_template)
    result = render_reports(load_config(study), 4, jobs=2)
    assert result.ok, result.failed
    return study, result


@pytest.fixture
def merged_study(tmp_path: Path, _imported_template: Path) -> Path:
    return make_study(tmp_path, _imported_template)


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_every_subscriber_gets_a_tagged_pdf_in_its_language(rendered):
    study, result = rendered
    config = load_config(study)
    folder = study / "reports" / "wave-4"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["wave"] == 4 and manifest["final"] is False
    assert sorted(manifest["reports"]) == sorted(config.subscribers)
    for sub_id, subscriber in config.subscribers.items():
        entry = manifest["reports"][sub_id]
        path = folder / entry["file"]
        reader = PdfReader(str(path))
        assert entry["pages"] == len(reader.pages) > 5
        assert entry["language"] == subscriber.language
        root = reader.trailer["/Root"]
        assert root["/Lang"] == {"en": "en-CA", "fr": "fr-CA"}[subscriber.language]
        assert "/StructTreeRoot" in root
        assert subscriber.display_name() in reader.metadata["/Title"]
        assert reader.metadata["/Subject"]
        assert reader.metadata["/CreationDate"] == "D:20210131"  # wave 4's fieldwork end, not the clock
        assert subscriber.display_name() in flat(pdf_text(path))
    assert not list(folder.glob(".*.tmp"))


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_numbers_equal_tabulate(rendered):
    """Every rating question's top box, interval, benchmark and previous wave as tabulate gives them."""
    study, _ = rendered
    config = load_config(study)
    for sub_id in ("ontario", "quebec"):
        language = config.subscribers[sub_id].language
        text = pdf_text(study / "reports" / "wave-4" / f"{sub_id}.pdf")
        tables = tabulate(config, 4, scopes=[sub_id])
        checked = 0
        for summary in tables.summaries:
            if summary["scope"] != sub_id or summary["kind"] != "single" or summary["topbox"] is None:
                continue
            for key in ("topbox", "topbox_ci_low", "topbox_ci_high", "benchmark_topbox", "previous_topbox"):
                assert pct(summary[key], language) in text, (sub_id, summary["question"], key)
                checked += 1
        assert checked >= 100


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_benchmark_is_all_other_respondents(rendered):
    """The benchmark top box printed for Q1 equals a count over the other jurisdictions' rows, computed
    here in Python from the stored answers (valid codes 1-5, top box 4-5, weighted)."""
    study, _ = rendered
    config = load_config(study)
    with read_store(study) as con:
        answers = con.execute("SELECT _jurisdiction, _weight, Q1 FROM wave_4").fetchall()
    others = [(w, q) for j, w, q in answers if j != "ON" and q is not None and 1 <= q <= 5]
    total = sum(w for w, _ in others)
    text = pdf_text(study / "reports" / "wave-4" / "ontario.pdf")
    share = 100 * sum(w for w, q in others if q >= 4) / total
    assert pct(share, "en") in text
    assert config.subscribers["ontario"].jurisdictions == ("ON",)


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_own_custom_questions_only(rendered):
    study, _ = rendered
    config = load_config(study)
    own: dict[str, set[str]] = {}
    with read_store(study) as con:
        for sub_id in config.subscribers:
            own[sub_id] = {cq.variable.label for cq in custom_questions(con, 4, sub_id) if cq.variable.label}
    english_of_quebec = {v for k, v in config.translations["en"].items() if k.startswith("quebec:C") and "." not in k}
    for sub_id in config.subscribers:
        text = flat(pdf_text(study / "reports" / "wave-4" / f"{sub_id}.pdf"))
        for label in own[sub_id]:
            assert label in text, (sub_id, label)
        for other, labels in own.items():
            if other == sub_id:
                continue
            for label in labels | (english_of_quebec if other == "quebec" else set()):
                assert label not in text, (sub_id, "shows", other, label)


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_french_report_is_french(rendered):
    study, _ = rendered
    config = load_config(study)
    raw = pdf_text(study / "reports" / "wave-4" / "quebec.pdf")
    text = flat(raw)
    for phrase in (
        "Faits saillants",
        "En un coup d’œil",
        "Résultats par thème",
        "Méthodologie",
        "Vos questions",
        "Point de comparaison",
        config.translations["fr"]["Q1"],
        "Gouvernement du Québec",
        "Vague 4 (janvier 2021)",
        "31 janvier 2021",
    ):
        assert phrase in text, phrase
    assert re.search(r"\d,\d\u00a0%", raw), "French percentages use a decimal comma and a no-break space"
    assert not re.search(r"\d\.\d%", raw), "no English-formatted percentage in the French report"
    for english in ("Key findings", "Results by theme", "Benchmark", "Overall satisfaction with the service"):
        assert english not in text


@pytest.mark.slow  # renders every subscriber's report (make test-fast skips it)
def test_rerun_renders_nothing_and_is_byte_identical(rendered, tmp_path):
    study, first = rendered
    config = load_config(study)
    folder = study / "reports" / "wave-4"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.pdf")}
    again = render_reports(config, 4, jobs=2)
    assert again.rendered == [] and sorted(again.unchanged) == sorted(config.subscribers)
    assert all(entry["rendered"] is False for entry in again.reports.values())
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.pdf")} == before
    # A fresh render of the same inputs elsewhere gives the same bytes (deterministic, no clock, no ids).
    fresh = render_reports(config, 4, subscribers=["quebec"], output_dir=tmp_path / "out", jobs=1)
    assert fresh.rendered == ["quebec"]
    for sub_id in ("quebec",):
        assert (tmp_path / "out" / "wave-4" / f"{sub_id}.pdf").read_bytes() == before[f"{sub_id}.pdf"][0]
        assert fresh.reports[sub_id]["sha256"] == first.reports[sub_id]["sha256"]


def test_injected_label_is_printed_as_text_never_fetched(merged_study):
    with write_store(merged_study) as con:
        con.execute(
            "UPDATE value_labels SET label = ? WHERE wave = 4 AND variable = 'AGEGRP' AND code = '1'", [INJECTION]
        )
    config = load_config(merged_study)
    result = render_reports(config, 4, subscribers=["ontario"], questions=["Q1", "AGEGRP"], jobs=1)
    assert result.ok, result.failed
    path = merged_study / "reports" / "wave-4" / "ontario.pdf"
    text = flat(pdf_text(path))
    assert '<img src="file:///etc/passwd">' in text
    data = path.read_bytes()
    assert b"/EmbeddedFiles" not in data and b"root:x:0:0" not in data


def test_fetcher_serves_only_data_and_templates(tmp_path):
    from weasyprint.urls import FatalURLFetchingError

    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        templates = templates_dir()
        fetcher = SafeURLFetcher(templates)
        assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"
        assert b"@page" in fetcher.fetch((templates / "report.css").as_uri()).read()
        for url in (
            "file:///etc/passwd",
            (templates / ".." / "pyproject.toml").as_uri(),
            f"http://127.0.0.1:{server.server_port}/x.png",
            "ftp://127.0.0.1/x",
        ):
            with pytest.raises(FatalURLFetchingError):
                fetcher.fetch(url)
        renderer = Renderer()
        for html in (
            f'<p>x</p><img src="http://127.0.0.1:{server.server_port}/pixel.png">',
            '<link rel="attachment" href="file:///etc/passwd"><p>x</p>',
            f'<link rel="stylesheet" href="http://127.0.0.1:{server.server_port}/s.css"><p>x</p>',
        ):
            with pytest.raises(FatalURLFetchingError):
                renderer.document(html).write_pdf()
        assert hits == []
    finally:
        server.shutdown()


def test_autoescape_is_on_for_every_template_name():
    env = make_environment(templates_dir())
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x=INJECTION).startswith("&lt;img")
    assert "&lt;img" in env.get_template("charts.svg.j2").module.spark(
        {
            "width": 1,
            "height": 1,
            "title": INJECTION,
            "dots": [],
            "path": "",
            "last": None,
            "colours": {k: "#000000" for k in ("ink", "muted", "subject", "bench", "grid", "white", "on_subject")},
        }
    )


@pytest.mark.slow  # renders reports (make test-fast skips it)
def test_suppressed_cells_are_shown_as_suppressed(merged_study):
    path = merged_study / "wavetool.toml"
    path.write_text(path.read_text().replace("min_base = 30", "min_base = 500"))
    config = load_config(merged_study)
    tables = tabulate(config, 4, scopes=["maritimes"], questions=["Q1", "Q12"])
    assert tables.summary(4, "maritimes", "Q12")["suppressed"], "Q12 (online users only) falls under 500"
    result = render_reports(config, 4, subscribers=["maritimes"], questions=["Q1", "Q12"], jobs=1)
    assert result.ok, result.failed
    text = flat(pdf_text(merged_study / "reports" / "wave-4" / "maritimes.pdf"))
    assert "Suppressed: only" in text and "(the minimum is 500)" in text
    assert "Estimates suppressed in this wave" in text  # the methodology's list of what was withheld


@pytest.mark.slow  # renders reports (make test-fast skips it)
def test_wave_without_fieldwork_dates_renders(merged_study):
    """A study seeded by `init --from` may not give fieldwork dates yet: the report leaves them out (it used to
    stop with an internal error on the empty date)."""
    path = merged_study / "wavetool.toml"
    path.write_text(re.sub(r"^fieldwork_(start|end) = .*\n", "", path.read_text(), flags=re.M))
    config = load_config(merged_study)
    assert config.wave(4).fieldwork_end is None
    result = render_reports(config, 4, subscribers=["ontario"], questions=["Q1"], jobs=1)
    assert result.ok, result.failed
    text = flat(pdf_text(merged_study / "reports" / "wave-4" / "ontario.pdf"))
    assert "Fieldwork" not in text


def test_missing_french_translation_fails_that_report_listing_it(merged_study):
    path = merged_study / "wavetool.toml"
    text = path.read_text()
    # Q1.3's French comes from the shared scale: without that entry, every question using the answer lacks it
    text = re.sub(r'^"Neither satisfied nor dissatisfied" = .*\n', "", text, flags=re.M)
    text = re.sub(r'^"Q2" = .*\n', "", text, flags=re.M)
    path.write_text(text)
    result = render_reports(
        load_config(merged_study), 4, subscribers=["quebec", "ontario"], questions=["Q1", "Q2"], jobs=1
    )
    assert '"Q1.3"' in result.failed["quebec"] and '"Q2"' in result.failed["quebec"]
    assert not (merged_study / "reports" / "wave-4" / "quebec.pdf").exists()
    assert result.rendered == ["ontario"]


@pytest.mark.slow  # renders reports (make test-fast skips it)
def test_failed_or_timed_out_render_leaves_no_pdf_and_is_not_listed(merged_study, monkeypatch):
    config = load_config(merged_study)
    first = render_reports(config, 4, subscribers=["ontario"], questions=["Q1"], jobs=1)
    assert first.ok
    folder = merged_study / "reports" / "wave-4"

    def boom(self, html):
        raise RuntimeError("layout exploded")

    monkeypatch.setattr(Layout, "pdf", boom)
    # Changed inputs (another question set) → must re-render → fails: the stale PDF goes away.
    result = render_reports(config, 4, subscribers=["ontario"], questions=["Q2"], jobs=1)
    assert "layout exploded" in result.failed["ontario"]
    assert not (folder / "ontario.pdf").exists()
    assert "ontario" not in json.loads((folder / MANIFEST).read_text())["reports"]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()

    path = merged_study / "wavetool.toml"
    path.write_text(
        path.read_text().replace('[report]\noutput_dir = "reports"', '[report]\noutput_dir = "reports"\ntimeout = 0.05')
    )
    result = render_reports(load_config(merged_study), 4, subscribers=["ontario"], questions=["Q3"], jobs=1)
    assert "gave up after 0.05 s" in result.failed["ontario"]
    assert not (folder / "ontario.pdf").exists()


@pytest.mark.slow  # renders reports (make test-fast skips it)
def test_cli_report_json_and_bad_subscriber(merged_study, capsys):
    code = main(["--study", str(merged_study), "report", "--wave", "1", "--subscriber", "british-columbia", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rendered"] == ["british-columbia"]
    entry = out["reports"]["british-columbia"]
    assert entry["file"] == "british-columbia.pdf" and entry["language"] == "en"
    assert (merged_study / "reports" / "wave-1" / "british-columbia.pdf").exists()
    code = main(["--study", str(merged_study), "report", "--wave", "1", "--subscriber", "../etc"])
    err = capsys.readouterr().err
    assert code == 78 and "not a safe subscriber id" in err


def test_report_without_subscribers_says_so(tmp_path, capsys):
    """A config with no [[subscribers]]: `report` says there is nothing to render (exit 78, as documented)
    instead of succeeding silently; `run` is not affected (it renders no reports)."""
    study = copy_sample(tmp_path / "alone")
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("[[subscribers]]"), text.index("[[crosswalk]]")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    assert not load_config(study).subscribers
    code = main(["--study", str(study), "report", "--wave", "1"])
    err = capsys.readouterr().err
    assert code == 78, err
    assert "no [[subscribers]]" in err and "no report to render" in err and "Traceback" not in err
    exit_codes = (Path(__file__).parents[1] / "docs" / "exit-codes.md").read_text(encoding="utf-8")
    assert "| 78 |" in exit_codes and "no `[[subscribers]]`" in exit_codes


def test_strings_catalogues_match():
    en, fr = load_strings(templates_dir(), "en"), load_strings(templates_dir(), "fr")
    assert set(en) == set(fr)
    for key in en:
        assert re.findall(r"{(\w+)}", en[key]) == re.findall(r"{(\w+)}", fr[key]) or sorted(
            re.findall(r"{(\w+)}", en[key])
        ) == sorted(re.findall(r"{(\w+)}", fr[key])), key


def test_text_colours_have_enough_contrast():
    css = (templates_dir() / "report.css").read_text()
    colours = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", css))
    assert colours
    for colour in colours | {INK, MUTED, SUBJECT, BENCH}:
        assert contrast(colour, WHITE) >= 4.5, colour
    from wavetool.report.charts import BOTTOM_BOX, MIDDLE_BOX, TOP_BOX

    for fill in (TOP_BOX, MIDDLE_BOX, BOTTOM_BOX, SUBJECT):
        assert contrast(text_on(fill), fill) >= 4.5, fill


@pytest.mark.slow  # renders reports (make test-fast skips it)
def test_study_templates_override_wavetools_own(merged_study):
    """`[report] templates = DIR`: a coordinator's own report.html.j2 is used; the other files stay
    wavetool's; a template edit re-renders (the inputs hash covers the study's templates too)."""
    own = merged_study / "my-templates"
    own.mkdir()
    builtin = (templates_dir() / "report.html.j2").read_text(encoding="utf-8")
    marker = "</body>"
    assert marker in builtin
    (own / "report.html.j2").write_text(
        builtin.replace(marker, "<p>Prepared by the Coordination Office</p>" + marker, 1), encoding="utf-8"
    )
    config_path = merged_study / "wavetool.toml"
    config_path.write_text(
        config_path.read_text(encoding="utf-8").replace("[report]\n", '[report]\ntemplates = "my-templates"\n', 1),
        encoding="utf-8",
    )
    config = load_config(merged_study)
    result = render_reports(config, 1, subscribers=["ontario"], jobs=1, questions=["Q1"])
    assert result.rendered == ["ontario"]
    pdf = merged_study / "reports" / "wave-1" / "ontario.pdf"
    assert "Prepared by the Coordination Office" in flat(pdf_text(pdf))
    assert render_reports(config, 1, subscribers=["ontario"], jobs=1, questions=["Q1"]).unchanged == ["ontario"]
    (own / "report.html.j2").write_text(builtin, encoding="utf-8")
    assert render_reports(config, 1, subscribers=["ontario"], jobs=1, questions=["Q1"]).rendered == ["ontario"]
    assert "Coordination Office" not in pdf_text(pdf)


def _text_width(text: str, size: float) -> float:
    """Width of ``text`` in DejaVu Sans (the charts' font) from the font's own advance widths."""
    import subprocess

    from fontTools.ttLib import TTFont

    path = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans"], capture_output=True, text=True).stdout
    font = TTFont(path)
    cmap, advances = font.getBestCmap(), font["hmtx"]
    return sum(advances[cmap[ord(c)]][0] for c in text) * size / font["head"].unitsPerEm


@pytest.mark.parametrize("language", ["en", "fr"])
def test_chart_legends_stay_inside_their_chart(language):
    """Every legend label ends inside its chart's width, measured with the font's real metrics (a French
    legend once ran off the overview chart's right edge)."""
    import base64
    import xml.etree.ElementTree as ET

    from wavetool.report.charts import ChartKit, Dot, Point
    from wavetool.report.text import Formatter

    renderer = Renderer()
    strings = renderer.strings[language]
    kit = ChartKit(renderer.macros, Formatter(language), strings)
    subject = "Maritime Provinces Service Partnership"  # the longest sample subscriber name
    charts = [
        kit.trend("t", [Point("W1", 40.0, 35.0), Point("W2", 45.0, 36.0)], subject, strings["benchmark"]),
        kit.spark("t", [Point("W1", 40.0, None), Point("W2", None, None), Point("W3", 45.0, None)], subject),
        kit.drivers(
            "t",
            [
                Dot(f"Q{i}", 5 + (i % 4) * 0.3, 60 + (i % 3) * 0.5, "priority" if i % 2 else "surplus")
                for i in range(2, 11)
            ],
            11.1,
            60.5,
            (strings["drivers_importance"], strings["drivers_performance"]),
            {k: strings["drivers_q_" + k] for k in ("priority", "strength", "secondary", "surplus")},
        ),
    ]
    svg_ns = "{http://www.w3.org/2000/svg}"
    for chart in charts:
        root = ET.fromstring(base64.b64decode(chart.uri.split(",", 1)[1]))
        width = float(root.get("width"))
        for node in root.iter(f"{svg_ns}text"):
            if not node.text or node.get("text-anchor") in ("end", "middle"):
                continue
            size = float(node.get("font-size") or root.get("font-size") or 10)
            right = float(node.get("x")) + _text_width(node.text, size)
            assert right <= width, f"{language}: {node.text!r} ends at {right:.0f} > {width:.0f}"


def test_drivers_chart_labels_never_overlap():
    """Nine attributes bunched together (the worst case: nearly equal importance and performance) still get
    labels that overlap neither each other nor any dot, inside the plot."""
    import base64
    import xml.etree.ElementTree as ET

    from wavetool.report.charts import ChartKit, Dot
    from wavetool.report.text import Formatter

    renderer = Renderer()
    strings = renderer.strings["en"]
    kit = ChartKit(renderer.macros, Formatter("en"), strings)
    dots = [Dot(f"Q{i}", 11 + (i % 3) * 0.2, 60 + (i % 4) * 0.3, "priority") for i in range(2, 11)]
    quadrants = {k: strings["drivers_q_" + k] for k in ("priority", "strength", "secondary", "surplus")}
    chart = kit.drivers("t", dots, 11.1, 60.5, ("x", "y"), quadrants)
    root = ET.fromstring(base64.b64decode(chart.uri.split(",", 1)[1]))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [n for n in root.iter(f"{ns}text") if re.fullmatch(r"Q\d+", n.text or "")]
    assert len(labels) == len(dots)
    boxes = [
        (float(n.get("x")), float(n.get("y")) - 9, float(n.get("x")) + _text_width(n.text, 9), float(n.get("y")))
        for n in labels
    ]
    marks = [
        (float(c.get("cx")) - 4, float(c.get("cy")) - 4, float(c.get("cx")) + 4, float(c.get("cy")) + 4)
        for c in root.iter(f"{ns}circle")
    ]
    marks += [
        (float(r.get("x")), float(r.get("y")), float(r.get("x")) + 8, float(r.get("y")) + 8)
        for r in root.iter(f"{ns}rect")
        if r.get("width") == "8"
    ]

    def overlap(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlap(a, b), (a, b)
        for m in marks:
            assert not overlap(a, m), (a, m)
    assert "Q2" in chart.alt and "Priorities" in chart.alt
