"""Report benchmark: 14 subscriber reports of ~10 pages and ~20 charts each, rendered by
``render_reports`` in a 2-worker pool, against WeasyPrint's own CPU time for the very same HTML, in the
same run.

Run ``python benchmarks/bench_report.py`` (or ``make bench``). The first run builds a study from the
sample data (waves 1-2 imported, custom questions merged) with 14 subscribers: the sample's four plus one
per remaining province or territory (French for Quebec and New Brunswick), in ``benchmarks/out/report-study``.

Targets (issue 5): < 10 s wall for the 14 reports on 2 cores, and everything wavetool adds on top of
WeasyPrint (queries, models, charts, templating, workers) <= 15% of the CPU.

CPU accounting: the main process (queries, models, hashing, writing), plus every render worker's own CPU
(each reports its cumulative ``process_time``), plus the one-off import of WeasyPrint in the forkserver
(measured in a fresh interpreter), against the sum of ``HTML(...).write_pdf(...)`` CPU for the same 14
HTML documents in this process (warm: one document rendered first and not counted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
WAVE = 2
QUESTIONS = ["Q1", "Q2", "Q3", "Q5", "Q10", "Q15", "Q19", "Q22", "Q28"]
EXTRA = {  # id: (jurisdictions, language)
    "newfoundland": (["NL"], "en"),
    "pei": (["PE"], "en"),
    "nova-scotia": (["NS"], "en"),
    "new-brunswick": (["NB"], "fr"),
    "manitoba": (["MB"], "en"),
    "saskatchewan": (["SK"], "en"),
    "alberta": (["AB"], "en"),
    "yukon": (["YT"], "en"),
    "northwest-territories": (["NT"], "en"),
    "nunavut": (["NU"], "en"),
}
WALL_TARGET, OVERHEAD_TARGET = 10.0, 0.15


def build_study() -> Path:
    """The 14-subscriber study (built once, then reused)."""
    from wavetool.config import load_config
    from wavetool.custom import merge_from_config
    from wavetool.ingest import import_wave
    from wavetool.status import init_study

    study = OUT / "report-study"
    if (study / ".ready").exists():
        return study
    shutil.rmtree(study, ignore_errors=True)
    study.mkdir(parents=True)
    shutil.copytree(ROOT / "sample_data" / "inbox", study / "inbox")
    text = (ROOT / "sample_data" / "wavetool.toml").read_text(encoding="utf-8")
    extra = "".join(
        f'\n[[subscribers]]\nid = "{sub}"\nname = "Subscriber {sub}"\nname_fr = "Abonné {sub}"\n'
        f'jurisdictions = {codes!r}\nlanguage = "{lang}"\ncontacts = ["x@{sub}.example"]\n'.replace("'", '"')
        for sub, (codes, lang) in EXTRA.items()
    )
    marker = "\n[[crosswalk]]"
    text = text.replace(marker, extra + marker, 1)
    (study / "wavetool.toml").write_text(text, encoding="utf-8")
    init_study(study)
    config = load_config(study)
    import_wave(config, 1, [study / "inbox/wave-1/wave1.sav"])
    import_wave(config, 2, [study / "inbox/wave-2/wave2.zsav"])
    merge_from_config(config, 1)
    merge_from_config(config, 2)
    (study / ".ready").write_text("ok\n")
    return study


def weasyprint_import_cpu() -> float:
    """CPU seconds to import the renderer in a fresh interpreter (what the forkserver preloads once)."""
    code = "import time; import wavetool.report.render as r; print(time.process_time())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    baseline = subprocess.run(
        [sys.executable, "-c", "import time; print(time.process_time())"], capture_output=True, text=True, check=True
    ).stdout
    return float(out) - float(baseline)


def weasyprint_only(config, subscribers: list[str]) -> tuple[float, list[int], list[int]]:
    """WeasyPrint's CPU for the same HTML documents: (seconds, pages per report, charts per report)."""
    from weasyprint import HTML

    from wavetool.report.model import build_models
    from wavetool.report.render import PDF_VARIANT, Renderer

    renderer = Renderer()
    models = build_models(config, WAVE, subscribers, questions=QUESTIONS)
    documents = [renderer.html(models[s]) for s in subscribers]

    def render(html: str) -> tuple[bytes, int]:
        doc = HTML(string=html, base_url=renderer.base_url, url_fetcher=renderer.fetcher).render(
            font_config=renderer.font_config, stylesheets=[renderer.css], pdf_variant=PDF_VARIANT
        )
        return doc.write_pdf(pdf_variant=PDF_VARIANT), len(doc.pages)

    render(documents[0])  # warm-up, not counted
    pages, seconds = [], 0.0
    for html in documents:
        start = time.process_time()
        _, n = render(html)
        seconds += time.process_time() - start
        pages.append(n)
    return seconds, pages, [html.count("<img ") for html in documents]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="render workers (the target is for 2 cores)")
    args = parser.parse_args(argv)

    from wavetool.config import load_config
    from wavetool.report import render_reports

    study = build_study()
    config = load_config(study)
    subscribers = list(config.subscribers)
    assert len(subscribers) == 14, subscribers

    import_cpu = weasyprint_import_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = render_reports(config, WAVE, output_dir=tmp, jobs=args.jobs, questions=QUESTIONS)
        wall = time.perf_counter() - wall0
        main_cpu = time.process_time() - cpu0
    if result.failed:
        print(f"FAILED: {result.failed}")
        return 1
    workers_cpu = sum(cpu for pid, cpu in result.worker_cpu.items() if pid != os.getpid())
    wavetool_cpu = main_cpu + workers_cpu + import_cpu
    weasy_cpu, pages, charts = weasyprint_only(config, subscribers)
    overhead = (wavetool_cpu - weasy_cpu) / wavetool_cpu

    print(
        f"report benchmark: {len(subscribers)} reports, wave {WAVE}, {len(QUESTIONS)} core questions + custom, "
        f"{args.jobs} workers on {os.cpu_count()} CPUs"
    )
    print(f"  pages per report  : {min(pages)}-{max(pages)} (mean {sum(pages) / len(pages):.1f})")
    print(f"  charts per report : {min(charts)}-{max(charts)} (mean {sum(charts) / len(charts):.1f})")
    print(f"  wall              : {wall:6.2f} s   (target < {WALL_TARGET:.0f} s)")
    print(
        f"  wavetool CPU      : {wavetool_cpu:6.2f} s   = main {main_cpu:.2f} + workers {workers_cpu:.2f} "
        f"+ renderer import {import_cpu:.2f}"
    )
    print(f"  WeasyPrint CPU    : {weasy_cpu:6.2f} s   (same HTML, this process, warm)")
    print(
        f"  overhead          : {overhead:6.1%}   (target <= {OVERHEAD_TARGET:.0%}); "
        f"ratio wavetool/WeasyPrint CPU {wavetool_cpu / weasy_cpu:.2f}"
    )
    ok = wall < WALL_TARGET and overhead <= OVERHEAD_TARGET
    print("  verdict           : " + ("PASS" if ok else "MISS"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
