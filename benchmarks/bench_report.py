"""Report benchmark: the summary design (issue 14) against the design before it, measured in one run.

Run ``python benchmarks/bench_report.py`` (or ``make bench``). Two studies are built once from the sample
data in ``benchmarks/out``: ``report-study`` (waves 1-2 imported, custom questions merged, 14 subscribers:
the sample's four plus one per remaining province or territory, French for Quebec and New Brunswick) and
``report-study-full`` (all four sample waves, the sample's four subscribers).

The baseline is the report design as it was before issue 14, kept verbatim in ``benchmarks/baseline/``
(its model, charts, renderer and templates): 13-page reports of nine core questions for the 14-subscriber
study, and a 35-page wave-4 report for Ontario with every question.

Targets (issue 14), each a ratio measured here, so the machine's absolute speed cancels out:

1. the 14 summary reports (every question) in <= 0.7x the wall time of the baseline's 14 reports, both
   built and rendered the same way (models from one tabulation, 2 render workers);
2. Ontario's wave-4 summary in <= 1/4 of the CPU of the baseline's wave-4 report (warm, one process);
3. wavetool's own CPU (queries, models, charts, templating, workers) <= 15 % of WeasyPrint's, for the 14
   summaries: the main process, every render worker's CPU and the one-off import of WeasyPrint in the
   forkserver, less WeasyPrint's CPU for the very same 14 HTML documents in this process.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT / "benchmarks"))
WAVE = 2
BASELINE_QUESTIONS = ["Q1", "Q2", "Q3", "Q5", "Q10", "Q15", "Q19", "Q22", "Q28"]  # its 13-page reports
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
WALL_TARGET, ONTARIO_TARGET, OVERHEAD_TARGET = 0.7, 0.25, 0.15


def build_study(name: str = "report-study", waves: tuple[int, ...] = (1, 2), extra: bool = True) -> Path:
    """A benchmark study (built once, then reused)."""
    from wavetool.config import load_config
    from wavetool.custom import merge_from_config
    from wavetool.ingest import import_wave
    from wavetool.status import init_study

    files = {1: "wave1.sav", 2: "wave2.zsav", 3: "wave3.por", 4: "wave4.csv"}
    study = OUT / name
    if (study / ".ready").exists():
        return study
    shutil.rmtree(study, ignore_errors=True)
    study.mkdir(parents=True)
    shutil.copytree(ROOT / "sample_data" / "inbox", study / "inbox")
    text = (ROOT / "sample_data" / "wavetool.toml").read_text(encoding="utf-8")
    if extra:
        more = "".join(
            f'\n[[subscribers]]\nid = "{sub}"\nname = "Subscriber {sub}"\nname_fr = "Abonné {sub}"\n'
            f'jurisdictions = {codes!r}\nlanguage = "{lang}"\ncontacts = ["x@{sub}.example"]\n'.replace("'", '"')
            for sub, (codes, lang) in EXTRA.items()
        )
        marker = "\n[[crosswalk]]"
        text = text.replace(marker, more + marker, 1)
    (study / "wavetool.toml").write_text(text, encoding="utf-8")
    init_study(study)
    config = load_config(study)
    for wave in waves:
        import_wave(config, wave, [study / f"inbox/wave-{wave}/{files[wave]}"])
        merge_from_config(config, wave)
    (study / ".ready").write_text("ok\n")
    return study


def weasyprint_import_cpu() -> float:
    """CPU seconds to import what the forkserver preloads once (``wavetool.report.pdf``: WeasyPrint and the
    render workers' functions), in a fresh interpreter."""
    code = "import time; import wavetool.report.pdf; print(time.process_time())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    baseline = subprocess.run(
        [sys.executable, "-c", "import time; print(time.process_time())"], capture_output=True, text=True, check=True
    ).stdout
    return float(out) - float(baseline)


def weasyprint_only(renderer, documents: list[str]) -> tuple[float, list[int]]:
    """WeasyPrint's CPU for HTML documents (warm: one rendered first, not counted), and their pages."""
    from weasyprint import HTML

    from wavetool.report.render import PDF_VARIANT

    def render(html: str) -> int:
        doc = HTML(string=html, base_url=renderer.base_url, url_fetcher=renderer.fetcher).render(
            font_config=renderer.font_config, stylesheets=[renderer.css], pdf_variant=PDF_VARIANT
        )
        doc.write_pdf(pdf_variant=PDF_VARIANT)
        return len(doc.pages)

    render(documents[0])
    pages, seconds = [], 0.0
    for html in documents:
        start = time.process_time()
        pages.append(render(html))
        seconds += time.process_time() - start
    return seconds, pages


# --- the baseline design, rendered the way render_reports rendered it: 2 workers ------------------------

_baseline_renderer = None


def _baseline_init() -> None:
    global _baseline_renderer
    from baseline.report_v1.render import Renderer

    _baseline_renderer = Renderer()


def _baseline_task(model_data: dict) -> int:
    from baseline.report_v1.model import ReportModel

    _, pages = _baseline_renderer.pdf(ReportModel.from_dict(model_data))
    return pages


def baseline_wall(config, subscribers: list[str], jobs: int) -> tuple[float, list[int]]:
    """Wall seconds for the baseline's 14 reports: models from one tabulation, then a pool of ``jobs``
    workers (started before the models are built, as render_reports does)."""
    from baseline.report_v1.model import build_models

    start = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["baseline.report_v1.render"])
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_baseline_init) as pool:
        for _ in range(jobs):
            pool.submit(os.getpid)
        models = build_models(config, WAVE, subscribers, questions=BASELINE_QUESTIONS)
        pages = list(pool.map(_baseline_task, [models[s].to_dict() for s in subscribers]))
    seconds = time.perf_counter() - start
    # The forkserver is one per process and keeps its first preload: stop it, so that the summary's workers
    # fork from a server that preloaded what `wavetool report` preloads (as in a run of its own), not the
    # baseline's modules (its workers would import the summary's renderer themselves, each one).
    multiprocessing.forkserver._forkserver._stop()
    return seconds, pages


def ontario_cpu() -> tuple[float, int, float, int]:
    """CPU of one warm render of Ontario's wave-4 report, baseline and summary: (baseline s, pages,
    summary s, pages). Models are built first and not counted (the same tabulation feeds both)."""
    from baseline.report_v1.model import build_models as baseline_models
    from baseline.report_v1.render import Renderer as BaselineRenderer

    from wavetool.config import load_config
    from wavetool.report.model import build_models
    from wavetool.report.render import Renderer

    config = load_config(build_study("report-study-full", (1, 2, 3, 4), extra=False))
    old_model = baseline_models(config, 4, ["ontario", "quebec"])
    new_model = build_models(config, 4, ["ontario", "quebec"])
    results = []
    for renderer, models in ((BaselineRenderer(), old_model), (Renderer(), new_model)):
        renderer.pdf(models["quebec"])  # warm-up, not counted
        start = time.process_time()
        _, pages = renderer.pdf(models["ontario"])
        results += [time.process_time() - start, pages]
    return results[0], results[1], results[2], results[3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="render workers (the targets are for 2 cores)")
    args = parser.parse_args(argv)

    from wavetool.config import load_config
    from wavetool.report import render_reports
    from wavetool.report.model import build_models
    from wavetool.report.render import Renderer

    config = load_config(build_study())
    subscribers = list(config.subscribers)
    assert len(subscribers) == 14, subscribers

    old_wall, old_pages = baseline_wall(config, subscribers, args.jobs)
    import_cpu = weasyprint_import_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = render_reports(config, WAVE, output_dir=tmp, jobs=args.jobs)
        wall = time.perf_counter() - wall0
        main_cpu = time.process_time() - cpu0
    if result.failed:
        print(f"FAILED: {result.failed}")
        return 1
    workers_cpu = sum(cpu for pid, cpu in result.worker_cpu.items() if pid != os.getpid())
    wavetool_cpu = main_cpu + workers_cpu + import_cpu
    renderer = Renderer()
    models = build_models(config, WAVE, subscribers)
    documents = [renderer.html(models[s]) for s in subscribers]
    weasy_cpu, pages = weasyprint_only(renderer, documents)
    own = (wavetool_cpu - weasy_cpu) / weasy_cpu
    old_cpu, old_n, new_cpu, new_n = ontario_cpu()

    print(f"report benchmark: {args.jobs} workers on {os.cpu_count()} CPUs")
    print(
        f"  14 reports, wave {WAVE}   : summary {min(pages)}-{max(pages)} pages (mean {sum(pages) / len(pages):.1f}), "
        f"baseline {min(old_pages)}-{max(old_pages)} pages (mean {sum(old_pages) / len(old_pages):.1f})"
    )
    print(
        f"  wall                  : summary {wall:6.2f} s, baseline {old_wall:6.2f} s, ratio {wall / old_wall:.2f} "
        f"(target <= {WALL_TARGET})"
    )
    print(
        f"  Ontario wave 4 (CPU)  : summary {new_cpu:.2f} s for {new_n} pages, baseline {old_cpu:.2f} s for "
        f"{old_n} pages, ratio {new_cpu / old_cpu:.2f} (target <= {ONTARIO_TARGET})"
    )
    print(
        f"  wavetool CPU          : {wavetool_cpu:6.2f} s = main {main_cpu:.2f} + workers {workers_cpu:.2f} "
        f"+ renderer import {import_cpu:.2f}"
    )
    print(f"  WeasyPrint CPU        : {weasy_cpu:6.2f} s (same HTML, this process, warm)")
    print(f"  wavetool's own        : {own:6.1%} of WeasyPrint's (target <= {OVERHEAD_TARGET:.0%})")
    ok = wall <= WALL_TARGET * old_wall and new_cpu <= ONTARIO_TARGET * old_cpu and own <= OVERHEAD_TARGET
    print("  verdict               : " + ("PASS" if ok else "MISS"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
