"""The explicit context: every timestamp comes from its clock (a test can fix it), every stage reports
through its one Progress protocol, results carry their exit code, and Tables.write owns the audit file."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pytest

from helpers import SAMPLE_FILES
from wavetool.config import load_config
from wavetool.context import Context, Progress, fixed_clock
from wavetool.drift import approve_wave, review_waves
from wavetool.errors import ExitCode
from wavetool.ingest import import_wave
from wavetool.stats import tabulate
from wavetool.texts import translation_gaps

FIXED = dt.datetime(2031, 2, 3, 4, 5, 6, tzinfo=dt.UTC)


class Recorder(Progress):
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.counts: list[tuple[int, int | None]] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def count(self, done: int, total: int | None) -> None:
        self.counts.append((done, total))


def _one(study, sql):
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_import_reports_through_the_progress_and_stamps_with_the_clock(sample_study):
    recorder = Recorder()
    ctx = Context(progress=recorder, clock=fixed_clock(FIXED))
    result = import_wave(load_config(sample_study), 1, [sample_study / SAMPLE_FILES[1]], ctx=ctx)
    assert result.exit_code == ExitCode.OK
    assert recorder.steps == ["reading wave1.sav", "validating", "writing"]
    assert recorder.counts and recorder.counts[-1][0] == result.rows == recorder.counts[-1][1]
    assert _one(sample_study, "SELECT imported_at FROM waves WHERE wave = 1") == dt.datetime(2031, 2, 3, 4, 5, 6)


def test_approval_time_comes_from_the_clock(imported_study):
    config = load_config(imported_study)
    approved = approve_wave(config, 4, ctx=Context(clock=fixed_clock(dt.datetime(2030, 1, 1, 12))))
    if approved["previous_status"] != "approved":
        assert approved["reviewed_at"] == "2030-01-01T12:00:00"


def test_verdicts_and_gaps_carry_their_exit_codes(imported_study):
    config = load_config(imported_study)
    verdicts = review_waves(config)
    unreviewed = any(v["review_status"] == "unreviewed" for v in verdicts)
    assert verdicts.exit_code == (ExitCode.DRIFT_GATE if unreviewed else ExitCode.OK)
    gaps = translation_gaps(config)
    assert gaps.exit_code == ExitCode.OK  # not strict: gaps are listed, not an error
    strict = translation_gaps(config, strict=True)
    assert list(strict) == list(gaps)
    assert strict.exit_code == (ExitCode.DATA if gaps else ExitCode.OK)


def test_tables_write_puts_the_audit_beside_the_file_and_leaves_unchanged_files_alone(imported_study, tmp_path):
    tables = tabulate(load_config(imported_study), 4, scopes=["all", "QC"], questions=["Q1"])
    target = tmp_path / "out" / "t.csv"
    audit = tables.write(target, "csv")
    assert audit == tmp_path / "out" / "t-suppressed.csv"
    assert target.read_text(encoding="utf-8").startswith("wave,scope,question,code,")
    assert audit.read_text(encoding="utf-8").splitlines()[0].startswith("wave,scope,question,")
    assert len(audit.read_text(encoding="utf-8").splitlines()) == len(tables.suppressed) + 1
    old = dt.datetime(2001, 1, 1).timestamp()
    os.utime(target, (old, old))
    tables.write(target, "csv")
    assert target.stat().st_mtime == old  # same content: not rewritten
    parquet_audit = tables.write(tmp_path / "t.parquet", "parquet")
    assert parquet_audit == tmp_path / "t-suppressed.parquet" and parquet_audit.exists()
    assert tables.write(tmp_path / "t.json", "json") is None
    assert not (tmp_path / "t-suppressed.json").exists()


def test_prefixed_context_keeps_the_clock_and_forwards_counts():
    recorder = Recorder()
    ctx = Context(progress=recorder, clock=fixed_clock(FIXED)).prefixed("render: ")
    ctx.progress.step("1/2 quebec rendered")
    ctx.progress.count(1, 2)
    assert recorder.steps == ["render: 1/2 quebec rendered"] and recorder.counts == [(1, 2)]
    assert ctx.stamp() == "2031-02-03T04:05:06Z" and ctx.now() == dt.datetime(2031, 2, 3, 4, 5, 6)


@pytest.mark.slow
def test_a_run_takes_every_time_from_the_clock_and_logs_every_step(sample_study):
    from wavetool.pipeline import LOG_FILE, run_wave

    recorder = Recorder()
    summary = run_wave(
        load_config(sample_study), 1, send=False, ctx=Context(progress=recorder, clock=fixed_clock(FIXED))
    )
    assert summary.exit_code == ExitCode.OK and summary.status == "ok"
    assert summary.started_at == summary.finished_at == "2031-02-03T04:05:06Z"
    at = dt.datetime(2031, 2, 3, 4, 5, 6)
    assert _one(sample_study, "SELECT started_at FROM runs") == at == _one(sample_study, "SELECT finished_at FROM runs")
    assert _one(sample_study, "SELECT imported_at FROM waves WHERE wave = 1") == at
    assert (
        _one(sample_study, "SELECT count(*) FROM custom_merges WHERE merged_at <> TIMESTAMP '2031-02-03 04:05:06'") == 0
    )
    log = (sample_study / LOG_FILE).read_text(encoding="utf-8").splitlines()
    assert len(log) == len(recorder.steps) and all(line.startswith("2031-02-03T04:05:06Z run ") for line in log)
    assert any(s.startswith("import: reading wave1.sav") for s in recorder.steps)
    assert any(s.startswith("render: 1/4 ") for s in recorder.steps)
    assert recorder.steps[-1].startswith("finished ok, exit 0")
    assert (sample_study / "tables" / "wave-1-suppressed.csv").is_file()
