"""``wavetool run``: the whole wave, in order and only what is new, safe to run from cron.

import the inbox → merge custom questions → drift gate → tables → render changed reports → send unsent ones.

Locks: the run holds ``.wavetool-run.lock`` from start to finish, so two runs never interleave (the second
waits ``[pipeline] lock_timeout`` seconds, then fails with exit 75 naming the holder). The steps inside
take the study database's own lock only for their short writes, and sending takes none of it (the
delivery log is a separate SQLite file), so ``wavetool status`` keeps working during a long send.

Every step is idempotent (unchanged inputs are no-ops, rendered reports are reused when their inputs did
not change, the delivery log knows what was sent), so a run cut off anywhere is simply run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .codebook import ensure_reviewed
from .config import StudyConfig
from .context import QUIET, Context, Progress
from .custom import merge_from_config
from .databook import book_path, write_databook
from .deliver import send_reports
from .drift import review_waves
from .errors import ExitCode, InputMissingError, OutputError, WavetoolError, is_interruption
from .fsutil import atomic_path
from .ingest import SUFFIXES, file_sha256, import_wave
from .report import render_reports
from .report.model import Computed
from .stats import all_scopes, drivers, tabulate
from .store import first_row, read_store, study_lock, write_store

RUN_LOCK_NAME = ".wavetool-run.lock"
LOG_FILE = "wavetool.log"
TABLES_DIR = "tables"


def log_line(config: StudyConfig, text: str, ctx: Context = QUIET) -> None:
    """Append one line stamped by ``ctx``'s clock to ``<study>/wavetool.log`` (one write, so concurrent lines
    never mix)."""
    stamp = ctx.stamp()
    line = f"{stamp} {' '.join(text.split())}\n".encode()
    with contextlib.suppress(OSError):  # a full disk must not turn a delivered run into a failed one
        fd = os.open(config.root / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def inbox_files(config: StudyConfig, wave: int) -> list[Path]:
    """The wave's exports in its inbox: every .sav/.zsav/.por/.csv that the config does not name as a
    custom-question file or a codebook."""
    spec = config.wave(wave)
    if not spec.inbox:
        return []
    folder = config.resolve(spec.inbox)
    if not folder.is_dir():
        raise InputMissingError(
            f"{folder}: wave {wave}'s inbox folder does not exist",
            hint=f"create it and put the wave's export there, or fix [[waves]] inbox for wave {wave}",
        )
    named = {config.resolve(w.codebook).resolve() for w in config.waves.values() if w.codebook}
    for sub in config.subscribers.values():
        for custom in sub.custom:
            named.add(config.resolve(custom.file).resolve())
            if custom.codebook:
                named.add(config.resolve(custom.codebook).resolve())
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES and p.resolve() not in named
    )


@dataclass
class RunSummary:
    """What one ``wavetool run`` did; ``to_dict`` is the ``--json`` object, ``manifest`` the provenance chain."""

    run_id: str
    wave: int
    final: bool
    send: bool
    started_at: str
    finished_at: str | None = None
    status: str = "running"  # 'running' | 'ok' | 'partial' (exit 73/75/80) | 'failed' | 'interrupted'
    imported: dict[str, Any] = field(default_factory=dict)
    merged: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    books: dict[str, str] = field(default_factory=dict)  # subscriber → data book (.xlsx) sha256
    rendered: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)  # subscriber → PDF sha256
    sent: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    uncertain: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0
    error: str | None = None
    # What one step computed for a later one (the wave's tables and banner tables, reused by the reports);
    # not part of the summary's JSON.
    _computed: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def manifest(self) -> dict[str, Any]:
        """inputs' sha256 → tables → report sha256 → deliveries, for this run."""
        return {
            "inputs": {
                "wave_files": {f["file_name"]: f["sha256"] for f in self.imported.get("files", [])},
                "custom_files": {f"{m['subscriber']}:{Path(m['file']).name}": m["sha256"] for m in self.merged},
            },
            "tables": {"file": self.tables.get("file"), "sha256": self.tables.get("sha256")},
            "drivers": {k: self.tables.get("drivers", {}).get(k) for k in ("file", "sha256")},
            "reports": dict(self.reports),
            "deliveries": [
                {k: d.get(k) for k in ("subscriber", "status", "message_id", "report_sha256", "destination")}
                for d in [
                    *[{**s, "status": "sent"} for s in self.sent],
                    *[{**s, "status": "failed"} for s in self.failed],
                    *[{**s, "status": "uncertain"} for s in self.uncertain],
                ]
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        data["log"] = LOG_FILE
        return data


@contextlib.contextmanager
def run_lock(config: StudyConfig, wave: int, ctx: Context = QUIET) -> Iterator[None]:
    """Hold the study's run lock for a whole run; StudyLockedError (75) names the holder after the timeout."""
    since = ctx.stamp()
    try:
        with study_lock(
            config.root,
            timeout=config.pipeline.lock_timeout,
            purpose=f"wavetool run --wave {wave}, started {since}",
            name=RUN_LOCK_NAME,
        ):
            yield
    except WavetoolError as exc:
        if exc.exit_code == ExitCode.TEMPFAIL and "busy" in exc.message:
            log_line(config, f"run wave {wave}: not started, {exc.message}", ctx)
            exc.message = exc.message.replace("study is busy", "another wavetool run is in progress")
        raise


class _RunLog(Progress):
    """The run's Progress: every step is also a line in wavetool.log (prefixed with the run id), then goes
    on to the caller's Progress."""

    def __init__(self, config: StudyConfig, prefix: str, outer: Context) -> None:
        self.config, self.prefix, self.outer = config, prefix, outer

    def step(self, message: str) -> None:
        log_line(self.config, f"{self.prefix}{message}", self.outer)
        self.outer.progress.step(message)

    def count(self, done: int, total: int | None) -> None:
        self.outer.progress.count(done, total)


def _record_start(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    with write_store(
        config.root, timeout=config.pipeline.lock_timeout, purpose=f"wavetool run --wave {summary.wave}"
    ) as con:
        # We hold the run lock, so any run still marked 'running' died without finishing.
        con.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = coalesce(finished_at, ?) WHERE status = 'running'",
            [ctx.now()],
        )
        con.execute(
            "INSERT INTO runs (run_id, wave, final, send, started_at, status, pid, wavetool_version)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            [summary.run_id, summary.wave, summary.final, summary.send, ctx.now(), os.getpid(), __version__],
        )


def _record_end(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    data = summary.to_dict()
    with write_store(
        config.root, timeout=config.pipeline.lock_timeout, purpose=f"wavetool run --wave {summary.wave}"
    ) as con:
        con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, error = ?, summary = ?, manifest = ? WHERE run_id = ?",
            [
                ctx.now(),
                summary.status,
                summary.exit_code,
                summary.error,
                json.dumps(data, default=str, ensure_ascii=False),
                json.dumps(summary.manifest, default=str, ensure_ascii=False),
                summary.run_id,
            ],
        )


def _step_import(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    wave = summary.wave
    files = inbox_files(config, wave)
    if not files:
        with read_store(config.root) as con:
            known = first_row(con, "SELECT count(*) FROM waves WHERE wave = ?", [wave])[0]
        if not known:
            folder = config.waves[wave].inbox
            raise InputMissingError(
                f"wave {wave}: no export (.sav, .zsav, .por, .csv) in {config.resolve(folder) if folder else 'the config'}"
                " and the wave is not imported",
                hint=f"put the wave's export in its inbox folder ([[waves]] inbox for wave {wave})",
            )
        summary.imported = {"status": "no new files", "files": _imported_files(config, wave)}
        say(f"import: wave {wave}: no files in the inbox, keeping the imported wave")
        return
    # The inbox is the source of truth for the pipeline: a corrected export there replaces the wave.
    result = import_wave(config, wave, files, replace=_differs(config, wave, files), ctx=ctx.prefixed("import: "))
    summary.imported = {
        "status": result.status,
        "rows": result.rows,
        "columns": result.columns,
        "review_status": result.review_status,
        "files": [{"file_name": f["file_name"], "sha256": f["sha256"]} for f in result.files],
        "warnings": result.warnings,
    }
    say(f"import: wave {wave} {result.status} ({result.rows} rows) from {', '.join(p.name for p in files)}")
    for warning in result.warnings:
        say(f"import: warning: {warning}")


def _imported_files(config: StudyConfig, wave: int) -> list[dict[str, str]]:
    with read_store(config.root) as con:
        rows = con.execute(
            "SELECT file_name, sha256 FROM wave_files WHERE wave = ? ORDER BY position", [wave]
        ).fetchall()
    return [{"file_name": name, "sha256": sha} for name, sha in rows]


def _differs(config: StudyConfig, wave: int, files: list[Path]) -> bool:
    """True when the wave is imported from other files than ``files`` (so the import must replace it)."""
    imported = _imported_files(config, wave)
    if not imported:
        return False
    return [f["sha256"] for f in imported] != [file_sha256(p) for p in files]


def _step_merge(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    results = merge_from_config(config, summary.wave, ctx)
    summary.merged = [
        {
            "subscriber": r.subscriber,
            "status": r.status,
            "file": r.file,
            "sha256": r.sha256,
            "rows": r.rows,
            "questions": list(r.questions),
        }
        for r in results
    ]
    for r in results:
        say(f"merge: {r.subscriber} {r.status} ({len(r.questions)} questions, {r.rows} rows) from {Path(r.file).name}")
    if not results:
        say(f"merge: no custom-question files for wave {summary.wave}")


def _step_drift_gate(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    waves = list(range(1, summary.wave + 1))
    with read_store(config.root) as con:
        unreviewed = con.execute(
            "SELECT wave FROM waves WHERE review_status = 'unreviewed' AND list_contains(?, wave)", [waves]
        ).fetchall()
    if unreviewed:
        # A crosswalk entry added since the import may explain the drift now: re-review before refusing.
        review_waves(config)
    with read_store(config.root) as con:
        ensure_reviewed(con, waves)
    say(f"drift gate: waves 1-{summary.wave} reviewed" if summary.wave > 1 else "drift gate: wave 1 reviewed")


def _step_tables(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    wave = summary.wave
    target = config.root / TABLES_DIR / f"wave-{wave}.csv"
    say(f"tables: computing wave {wave} (everyone, each jurisdiction, each subscriber)")
    tables = tabulate(config, wave, scopes=all_scopes(config))
    summary._computed["tables"] = tables
    old_sha = file_sha256(target) if target.is_file() else None
    try:
        tables.write(target, "csv")  # atomic; with its suppression audit beside it; unchanged files untouched
    except OutputError as exc:
        message = exc.message.replace(": cannot write:", ": cannot write the tables:", 1)
        raise OutputError(message, hint="check the study folder is writable") from None
    new_sha = file_sha256(target)
    changed = new_sha != old_sha
    summary.tables = {"file": str(target.relative_to(config.root)), "sha256": new_sha, "changed": changed}
    say(f"tables: {summary.tables['file']} {'written' if changed else 'unchanged'} (sha256 {new_sha[:12]})")
    if config.drivers.outcome is not None:
        _write_drivers(config, summary, say, tables)


def _write_drivers(config: StudyConfig, summary: RunSummary, say: Callable[[str], None], tables: Any) -> None:
    """``tables/wave-N-drivers.csv`` beside the tables (the attributes' top-2 boxes taken from them)."""
    wave = summary.wave
    target = config.root / TABLES_DIR / f"wave-{wave}-drivers.csv"
    result = drivers(config, wave, scopes=all_scopes(config), tables=tables)
    sha, changed = _replace_if_changed(target, result.to_csv, "the drivers")
    summary.tables["drivers"] = {"file": str(target.relative_to(config.root)), "sha256": sha, "changed": changed}
    skipped = len(result.skipped)
    say(
        f"drivers: {summary.tables['drivers']['file']} {'written' if changed else 'unchanged'} "
        f"({len(result.scopes) - skipped} scopes, {skipped} without drivers)"
    )


def _replace_if_changed(target: Path, write: Callable[[Path], None], what: str) -> tuple[str, bool]:
    """Write through a temporary file and move it over ``target`` unless the bytes are the same; returns
    (sha256, changed)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:  # readers see the old file or the new one, never half of one
            write(tmp)
            new_sha = file_sha256(tmp)
            old_sha = file_sha256(target) if target.exists() else None
            if new_sha == old_sha:
                tmp.unlink()  # unchanged: the old file stays, with its time stamp
    except OSError as exc:
        raise OutputError(
            f"{target}: cannot write {what}: {exc.strerror}", hint="check the study folder is writable"
        ) from None
    return new_sha, new_sha != old_sha


def _step_books(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    """Each subscriber's data book, ``tables/wave-N/<subscriber>.xlsx``: its own scope (with the benchmark),
    its banners and its custom questions. Rewritten only when its bytes change; one subscriber's failure
    is recorded and the others still get theirs."""
    if not config.subscribers:
        return
    say = ctx.progress.step
    wave = summary.wave
    banners = list(config.banners.variables) or None
    say(f"books: wave {wave} data books ({', '.join(banners) if banners else 'no banners'})")
    tables = tabulate(config, wave, scopes=list(config.subscribers), banners=banners)
    summary._computed["banners"] = tables
    folder = book_path(config, wave, "x").parent
    written = 0
    folder.mkdir(parents=True, exist_ok=True)
    for sub in config.subscribers:
        target = book_path(config, wave, sub)
        try:
            with atomic_path(target) as tmp:
                write_databook(config, tables, sub, tmp)
                sha = file_sha256(tmp)
                if target.exists() and file_sha256(target) == sha:
                    tmp.unlink()  # unchanged: the old file stays, untouched
                else:
                    written += 1
        except (WavetoolError, OSError) as exc:
            reason = exc.message if isinstance(exc, WavetoolError) else str(exc)
            summary.failed.append({"subscriber": sub, "step": "books", "error": reason, "temporary": False})
            say(f"books: {sub} FAILED, {reason}")
            continue
        summary.books[sub] = sha
    say(f"books: {written} written, {len(summary.books) - written} unchanged in {folder.relative_to(config.root)}")


def _step_render(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    if not config.subscribers:  # a study tabulated for itself: no reports, and that is no error in a run
        say("render: no [[subscribers]] in wavetool.toml, no reports")
        return
    say(f"render: wave {summary.wave}{' (final)' if summary.final else ''}")
    done = summary._computed
    # The wave's tables and banner tables were computed by the tables and books steps: reused, not redone.
    computed = Computed(summary.wave, done["tables"], done["banners"]) if {"tables", "banners"} <= set(done) else None
    result = render_reports(config, summary.wave, final=summary.final, computed=computed, ctx=ctx.prefixed("render: "))
    summary.rendered, summary.reused = list(result.rendered), list(result.unchanged)
    summary.reports = {sub: entry["sha256"] for sub, entry in result.reports.items()}
    for sub, reason in result.failed.items():
        summary.failed.append({"subscriber": sub, "step": "render", "error": reason, "temporary": False})
        say(f"render: {sub} FAILED, {reason}")
    say(f"render: {len(summary.rendered)} rendered, {len(summary.reused)} unchanged, {len(result.failed)} failed")
    summary.exit_code = summary.exit_code or result.exit_code  # the first failing stage decides the exit code


def _step_send(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    say = ctx.progress.step
    if not summary.reports:
        say("send: no reports to send")
        return
    # Only what rendered: a subscriber whose report failed is already listed as failed, the others still go.
    result = send_reports(config, summary.wave, subscribers=sorted(summary.reports), ctx=ctx.prefixed("send: "))
    summary.sent, summary.skipped, summary.uncertain = result.sent, result.skipped, result.uncertain
    summary.failed.extend({**f, "step": "send"} for f in result.failed)
    for s in result.sent:
        say(f"send: {s['subscriber']} sent via {result.transport} ({s['destination']}, Message-ID {s['message_id']})")
    for s in result.skipped:
        say(f"send: {s['subscriber']} skipped, {s['reason']}")
    for s in result.uncertain:
        say(f"send: {s['subscriber']} UNCERTAIN, {s['error']} (Message-ID {s['message_id']})")
    for s in result.failed:
        say(f"send: {s['subscriber']} {'deferred' if s.get('temporary') else 'FAILED'}, {s['error']}")
    summary.exit_code = summary.exit_code or result.exit_code


def run_wave(
    config: StudyConfig, wave: int, *, final: bool = False, send: bool = True, ctx: Context = QUIET
) -> RunSummary:
    """Run the whole pipeline for ``wave`` under the run lock; every step does only what is new.

    Raises the first step's WavetoolError (exit code per step: 65/66 data, 78 config, 79 drift gate,
    69/77 SMTP); delivery partly failing or deferred is not an exception but ``summary.exit_code`` 80/75.
    Every step is reported through ``ctx.progress`` and logged in wavetool.log; times come from ``ctx.clock``.
    """
    config.wave(wave)
    config.require_name()  # no run renders or sends reports under the placeholder name of `init --from`
    with run_lock(config, wave, ctx):
        summary = RunSummary(
            run_id=uuid.uuid4().hex[:12],
            wave=wave,
            final=final,
            send=send,
            started_at=ctx.stamp(),
        )
        ctx = ctx.with_progress(_RunLog(config, f"run {summary.run_id} wave {wave}: ", ctx))
        say = ctx.progress.step
        say(f"started (PID {os.getpid()}{', final' if final else ''}{', no send' if not send else ''})")
        steps = [_step_import, _step_merge, _step_drift_gate, _step_tables, _step_books, _step_render]
        if send:
            steps.append(_step_send)
        try:
            _record_start(config, summary, ctx)
            for step in steps:
                step(config, summary, ctx)
        except WavetoolError as exc:
            summary.status, summary.exit_code, summary.error = "failed", int(exc.exit_code), exc.message
            _finish(config, summary, ctx)
            raise
        except KeyboardInterrupt:
            _finish_interrupted(config, summary, ctx)
            raise
        except Exception as exc:
            if is_interruption(exc):  # Ctrl-C while DuckDB was running a query
                _finish_interrupted(config, summary, ctx)
                raise KeyboardInterrupt from exc
            summary.status, summary.exit_code, summary.error = (
                "failed",
                int(ExitCode.FAILURE),
                f"{type(exc).__name__}: {exc}",
            )
            _finish(config, summary, ctx)
            raise
        summary.status = "ok" if summary.exit_code == 0 else "partial"
        _finish(config, summary, ctx)
    return summary


def _finish_interrupted(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    summary.status, summary.exit_code, summary.error = "interrupted", int(ExitCode.INTERRUPTED), "interrupted"
    _finish(config, summary, ctx)


def _finish(config: StudyConfig, summary: RunSummary, ctx: Context) -> None:
    summary.finished_at = ctx.stamp()
    with contextlib.suppress(WavetoolError, OSError):  # a locked or full store must not hide the run's own outcome
        _record_end(config, summary, ctx)
    counts = (
        f"{len(summary.rendered)} rendered, {len(summary.sent)} sent, {len(summary.skipped)} skipped,"
        f" {len(summary.failed)} failed, {len(summary.uncertain)} uncertain"
    )
    tail = f": {summary.error}" if summary.error else ""
    ctx.progress.step(f"finished {summary.status}, exit {summary.exit_code} ({counts}){tail}")


def run_history(config: StudyConfig, limit: int = 10) -> list[dict[str, Any]]:
    """The latest runs with their manifests, newest first (empty before the first run)."""
    with read_store(config.root) as con:
        has = first_row(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'")[0]
        if not has:
            return []
        rows = con.execute(
            "SELECT run_id, wave, final, started_at, finished_at, status, exit_code, error, manifest FROM runs"
            " ORDER BY started_at DESC, run_id DESC LIMIT ?",
            [limit],
        ).fetchall()
    keys = ("run_id", "wave", "final", "started_at", "finished_at", "status", "exit_code", "error", "manifest")
    history = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        manifest = json.loads(item["manifest"]) if item["manifest"] else {}
        inputs = manifest.get("inputs", {})
        item.update(
            manifest=manifest or None,
            inputs=len(inputs.get("wave_files", {})) + len(inputs.get("custom_files", {})),
            tables_sha256=manifest.get("tables", {}).get("sha256"),
            reports=len(manifest.get("reports", {})),
            delivered=sum(d["status"] == "sent" for d in manifest.get("deliveries", [])),
        )
        history.append(item)
    return history


def manifest_digest(manifest: dict[str, Any] | None) -> str:
    """A short fingerprint of a run manifest (to see at a glance whether two runs produced the same thing)."""
    if not manifest:
        return ""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()[:12]
