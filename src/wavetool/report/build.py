"""``render_reports``: build every subscriber's model, render the changed ones in a process pool and
write the PDFs and ``manifest.json`` atomically.

A report is re-rendered only when its inputs changed: the inputs hash covers the report model (every
number and label it shows, which already reflects the database content of the waves used and the config
parts used), the templates, and the renderer versions. Rendering is deterministic, so an unchanged
report would come out byte-identical anyway; skipping it just saves the time.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import multiprocessing
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import weasyprint
from filelock import FileLock, Timeout

from .. import __version__
from ..config import SLUG_RE, StudyConfig
from ..context import QUIET, Context
from ..errors import ConfigError, ExitCode, OutputError, StudyLockedError
from ..fsutil import write_atomic
from .manifest import MANIFEST, read_manifest, report_folder, write_manifest
from .model import Computed, ReportModel, build_models
from .pdf import init_worker, render_task
from .render import check_templates, fill_html, templates_dir


@dataclass
class RenderResult:
    """What ``render_reports`` did, per subscriber."""

    wave: int
    final: bool
    folder: Path
    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # subscriber id → one-line reason
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # the manifest entries of this run
    worker_cpu: dict[int, float] = field(default_factory=dict)  # render process id → its CPU seconds

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        """73 (cannot create) if any report failed, else 0."""
        return int(ExitCode.CANT_CREATE if self.failed else ExitCode.OK)

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def to_dict(self) -> dict[str, Any]:
        return {
            "wave": self.wave,
            "final": self.final,
            "folder": str(self.folder),
            "manifest": str(self.manifest),
            "rendered": self.rendered,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "reports": self.reports,
        }


def templates_sha256(templates: Path) -> str:
    """A hash of every template file (name and content), in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in templates.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(templates).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def inputs_sha256(model: ReportModel, templates_hash: str) -> str:
    """The hash that decides whether a report must be rendered again."""
    parts = [model.sha256(), templates_hash, f"wavetool {__version__}", f"weasyprint {weasyprint.__version__}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _chosen(config: StudyConfig, subscribers: list[str] | tuple[str, ...] | None) -> list[str]:
    ids = list(subscribers) if subscribers else list(config.subscribers)
    if not ids:  # nothing to render is a mistake to say, not a silent success
        raise ConfigError(
            f"{config.path}: no [[subscribers]]: there is no report to render",
            hint="add a [[subscribers]] entry (id, name, jurisdictions, language, contacts); see docs/configuration.md",
        )
    for sub_id in ids:
        if not SLUG_RE.match(sub_id):
            raise ConfigError(
                f"{sub_id!r} is not a safe subscriber id", hint="ids are lowercase letters, digits and hyphens"
            )
        config.subscriber(sub_id)  # unknown → ConfigError listing the known ones
    return list(dict.fromkeys(ids))


def render_reports(
    config: StudyConfig,
    wave: int,
    *,
    subscribers: list[str] | tuple[str, ...] | None = None,
    output_dir: Path | str | None = None,
    final: bool = False,
    jobs: int | None = None,
    questions: list[str] | None = None,
    computed: Computed | None = None,
    ctx: Context = QUIET,
) -> RenderResult:
    """Render one PDF per subscriber for ``wave`` into ``<output>/wave-N/<id>.pdf`` with a manifest.

    Reports whose inputs did not change since the last run are left alone. A report that fails (or times
    out after ``[report] timeout`` seconds) is listed in ``failed``, has no PDF and is not in the manifest;
    the others are still written. ``questions`` restricts the core questions (for benchmarks and tests).
    ``computed``: the wave's tables and banner tables already computed (by ``wavetool run``), reused.
    Each finished report is counted through ``ctx.progress``.
    """
    config.wave(wave)
    ids = _chosen(config, subscribers)
    folder = report_folder(config, wave, output_dir)
    templates, overrides = templates_dir(), study_templates(config)
    # Reports never rendered here are certain to be rendered: start the workers now, so that their set-up
    # (WeasyPrint, fonts, CSS) overlaps the queries that build the models.
    unlisted = [s for s in ids if s not in read_manifest(folder, wave, missing_ok=True)["reports"]]
    pool = _start_pool(jobs or config.report.jobs, len(unlisted), templates, overrides) if unlisted else None
    try:
        return _render_models(
            config, wave, ids, folder, templates, overrides, pool, final, jobs, ctx, questions, computed
        )
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _counted(ctx: Context, done: int, total: int, subscriber_id: str, status: str) -> None:
    ctx.progress.count(done, total)
    ctx.progress.step(f"{done}/{total} {subscriber_id} {status}")


def _render_models(
    config: StudyConfig,
    wave: int,
    ids: list[str],
    folder: Path,
    templates: Path,
    overrides: Path | None,
    pool: cf.ProcessPoolExecutor | None,
    final: bool,
    jobs: int | None,
    ctx: Context,
    questions: list[str] | None,
    computed: Computed | None = None,
) -> RenderResult:

    # One subscriber's problem (a missing translation, a template error in the text of its own questions, a
    # failed render) fails that subscriber's report only; the others are still rendered.
    failures: dict[str, str] = {}
    models = build_models(config, wave, ids, final=final, questions=questions, failures=failures, computed=computed)
    # Before anything is written (not even the report folder): a template broken for everyone is one error.
    filled = check_templates(templates, overrides, {s: models[s] for s in ids if s in models})
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the report folder: {exc.strerror}") from None
    tpl_hash = templates_sha256(templates) + (templates_sha256(overrides) if overrides else "")
    result = RenderResult(wave=wave, final=final, folder=folder)
    try:
        lock = FileLock(str(folder / ".manifest.lock"), timeout=config.pipeline.lock_timeout)
        lock.acquire()
    except Timeout:
        raise StudyLockedError(
            f"{folder}: another `wavetool report` is writing here", hint="wait for it to finish, then run again"
        ) from None
    try:
        _remove_temporaries(folder)
        manifest = read_manifest(folder, wave, missing_ok=True)
        entries: dict[str, dict[str, Any]] = dict(manifest.get("reports", {}))
        todo: dict[str, tuple[ReportModel, str]] = {}
        done = 0
        for sub_id in ids:
            if sub_id in failures:
                entries.pop(sub_id, None)
                with contextlib.suppress(FileNotFoundError):
                    (folder / f"{sub_id}.pdf").unlink()  # its inputs changed and no new report could be made
                result.failed[sub_id] = failures[sub_id]
                done += 1
                _counted(ctx, done, len(ids), sub_id, "failed")
                continue
            model = models[sub_id]
            key = inputs_sha256(model, tpl_hash)
            old = entries.get(sub_id)
            pdf_path = folder / f"{sub_id}.pdf"
            if old and old.get("inputs_sha256") == key and _sha256_file(pdf_path) == old.get("sha256"):
                entries[sub_id] = {**old, "rendered": False}
                result.unchanged.append(sub_id)
                done += 1
                _counted(ctx, done, len(ids), sub_id, "unchanged")
            else:
                todo[sub_id] = (model, key)
        # The HTML of every report to render, filled here (one Jinja environment for all of them); one that
        # breaks on one subscriber's content fails that report alone.
        pages, broken = fill_html(templates, overrides, {s: m for s, (m, _k) in todo.items()}, filled)
        # A report about to be rendered again leaves the manifest first and comes back only once its new PDF
        # is in place (the manifest is rewritten after each one), so a kill at any moment never leaves an
        # entry whose file differs from it, and the reports finished before the kill are kept.
        stale = [sub_id for sub_id in todo if entries.pop(sub_id, None) is not None]
        if stale or failures:
            write_manifest(folder, wave, final, entries)
        for sub_id, reason in broken.items():
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{sub_id}.pdf").unlink()
            result.failed[sub_id] = reason
            done += 1
            _counted(ctx, done, len(ids), sub_id, "failed")

        for sub_id, outcome in _render_all(
            pages, jobs or config.report.jobs, config.report.timeout, templates, overrides, pool
        ):
            model, key = todo[sub_id]
            pdf_path = folder / f"{sub_id}.pdf"
            if "pid" in outcome:
                result.worker_cpu[outcome["pid"]] = max(result.worker_cpu.get(outcome["pid"], 0.0), outcome["cpu"])
            if outcome["ok"]:
                try:
                    write_atomic(pdf_path, outcome["pdf"])
                except OSError as exc:
                    raise OutputError(f"{pdf_path}: cannot write the report: {exc.strerror}") from None
                entries[sub_id] = {
                    "file": pdf_path.name,
                    "sha256": hashlib.sha256(outcome["pdf"]).hexdigest(),
                    "pages": outcome["pages"],
                    "language": model.language,
                    "final": final,
                    "inputs_sha256": key,
                    "rendered": True,
                }
                write_manifest(folder, wave, final, entries)
                result.rendered.append(sub_id)
            else:
                # The inputs changed and the new report could not be made: an older PDF would be stale.
                entries.pop(sub_id, None)
                with contextlib.suppress(FileNotFoundError):
                    pdf_path.unlink()
                result.failed[sub_id] = outcome["error"]
            done += 1
            _counted(ctx, done, len(ids), sub_id, "rendered" if outcome["ok"] else "failed")

        ordered = write_manifest(folder, wave, final, entries)
        result.reports = {k: ordered[k] for k in ids if k in ordered}
    finally:
        lock.release()
    return result


def _remove_temporaries(folder: Path) -> None:
    """Delete the temporary files (``.<name>.XXXX.tmp``) a killed run left behind; called under the manifest
    lock, so no other render is writing one."""
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


def study_templates(config: StudyConfig) -> Path | None:
    """The study's own template folder (``[report] templates``), whose files replace wavetool's."""
    if not config.report.templates:
        return None
    folder = config.resolve(config.report.templates)
    if not folder.is_dir():
        raise ConfigError(
            f"{config.path}: report.templates: {folder} is not a folder",
            hint="point it at a folder holding your report.html.j2 / charts.svg.j2 / report.css, or remove the key",
        )
    return folder


def _start_pool(
    jobs: int | None, reports: int, templates: Path, overrides: Path | None
) -> cf.ProcessPoolExecutor | None:
    """A pool of render workers, already starting: each runs its initializer at once (a no-op task
    makes the executor start it). None where one worker is enough (rendering then stays in-process)."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, reports))
    if jobs == 1:
        return None
    extra = str(overrides) if overrides else None
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=_pool_context(), initializer=init_worker, initargs=(str(templates), extra)
    )
    with _main_script_hidden():
        for _ in range(jobs):
            pool.submit(os.getpid)  # each submit starts one worker, until there are ``jobs``
    return pool


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start workers without running the main script in each of them.

    multiprocessing runs a script ``__main__`` again in every worker it starts (as ``__mp_main__``), in case
    the tasks are defined there; wavetool's console script imports the whole CLI (~0.4 s of CPU a worker).
    The workers' functions live in :mod:`.pdf`, so the script's path is hidden while they start."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield  # ``python -m``: multiprocessing does not re-run a package's __main__
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _render_all(
    todo: dict[str, str],
    jobs: int | None,
    timeout: float,
    templates: Path,
    overrides: Path | None,
    pool: cf.ProcessPoolExecutor | None = None,
) -> Any:
    """Lay out each subscriber's HTML (``todo``: id → HTML) and yield ``(subscriber id, outcome)`` as reports
    finish: in this process for one report or one job, else in a pool of ``jobs`` workers (default: CPU
    count)."""
    if not todo:
        return
    extra = str(overrides) if overrides else None
    if pool is None:
        pool = _start_pool(jobs, len(todo), templates, overrides)
    if pool is None:
        for sub_id, html in todo.items():
            yield sub_id, render_task(sub_id, html, timeout, str(templates), extra)
        return
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    hung = False
    try:
        futures = {
            pool.submit(render_task, sub_id, html, timeout, str(templates), extra): sub_id
            for sub_id, html in todo.items()
        }
        # The worker enforces the per-report limit itself (SIGALRM); this is the backstop for a worker
        # stuck in C code, measured over the whole batch.
        budget = timeout * (len(todo) / jobs + 1) + 30
        try:
            for future in cf.as_completed(futures, timeout=budget):
                try:
                    outcome = future.result()
                except Exception as exc:
                    outcome = {
                        "ok": False,
                        "error": f"{futures[future]}: render worker failed: {type(exc).__name__}: {exc}",
                    }
                yield futures[future], outcome
        except cf.TimeoutError:
            hung = True
            for future, sub_id in futures.items():
                if not future.done():
                    yield sub_id, {"ok": False, "error": f"{sub_id}: rendering gave up after {timeout:g} s"}
    finally:
        if hung:
            for process in list(getattr(pool, "_processes", {}).values()):  # no public API to kill workers
                process.kill()
        pool.shutdown(wait=not hung, cancel_futures=True)


def _pool_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (workers fork from a clean server that has imported WeasyPrint once, and nothing
    else: see :mod:`.pdf`) where available, else ``spawn``; never plain ``fork`` of a process holding
    DuckDB connections."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["wavetool.report.pdf"])
        return context
    return multiprocessing.get_context("spawn")
