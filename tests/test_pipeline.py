"""`wavetool run`: the whole pipeline on the sample study, re-runs, locks, interruptions and exit codes."""

from __future__ import annotations

import email
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from email.policy import default as default_policy
from pathlib import Path

import duckdb
import pytest

from wavetool.config import load_config
from wavetool.deliver.log import LOG_NAME
from wavetool.pipeline import LOG_FILE, RUN_LOCK_NAME, inbox_files
from wavetool.store import study_lock

pytestmark = pytest.mark.slow

SUBSCRIBERS = {"ontario", "quebec", "british-columbia", "maritimes"}


def set_lock_timeout(study: Path, seconds: float) -> None:
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("lock_timeout = 60", f"lock_timeout = {seconds}"), encoding="utf-8")


def outbox(study: Path) -> list[Path]:
    return sorted((study / "outbox").glob("*.eml")) if (study / "outbox").exists() else []


def delivery_rows(study: Path) -> list[tuple]:
    if not (study / LOG_NAME).exists():
        return []
    con = sqlite3.connect(study / LOG_NAME)
    try:
        return con.execute("SELECT subscriber, wave, status, report_sha256 FROM deliveries ORDER BY id").fetchall()
    finally:
        con.close()


def runs(study: Path) -> list[tuple]:
    con = duckdb.connect(str(study / "wavetool.duckdb"), read_only=True)
    try:
        return con.execute("SELECT run_id, wave, status, exit_code FROM runs ORDER BY started_at, run_id").fetchall()
    finally:
        con.close()


def test_inbox_files_skip_custom_files_and_codebooks(sample_study):
    config = load_config(sample_study)
    assert [p.name for p in inbox_files(config, 1)] == ["wave1.sav"]
    assert [p.name for p in inbox_files(config, 3)] == ["wave3.por"]
    assert [p.name for p in inbox_files(config, 4)] == ["wave4.csv"]  # wave4-codebook.csv is the wave's codebook


def test_run_twice_second_run_does_nothing(sample_study, cli):
    code, out, err = cli("--study", sample_study, "run", "--wave", "1", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["imported"]["status"] == "imported"
    assert first["imported"]["files"][0]["file_name"] == "wave1.sav"
    assert {m["subscriber"] for m in first["merged"]} == SUBSCRIBERS
    assert {m["status"] for m in first["merged"]} == {"merged"}
    assert first["tables"]["file"] == "tables/wave-1.csv" and first["tables"]["changed"] is True
    # the run writes the suppression audit beside its tables, as `tabulate --output` does
    audit = (sample_study / "tables" / "wave-1-suppressed.csv").read_text(encoding="utf-8")
    assert audit.startswith("wave,scope,question,")
    assert sorted(first["rendered"]) == sorted(SUBSCRIBERS)
    assert sorted(s["subscriber"] for s in first["sent"]) == sorted(SUBSCRIBERS)
    assert first["failed"] == [] and first["skipped"] == [] and first["exit_code"] == 0

    tables = (sample_study / "tables" / "wave-1.csv").read_text(encoding="utf-8")
    assert tables.splitlines()[0].count(",") > 3
    for scope in ("all", "ON", "QC", "maritimes", "british-columbia"):
        assert f",{scope}," in tables or tables.startswith(f"{scope},") or f"\n{scope}," in tables
    emls = outbox(sample_study)
    assert len(emls) == 4
    for path in emls:
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        sub = message["X-Wavetool-Subscriber"]
        (part,) = list(message.iter_attachments())
        assert part.get_payload(decode=True) == (sample_study / "reports" / "wave-1" / f"{sub}.pdf").read_bytes()

    code, out, err = cli("--study", sample_study, "run", "--wave", "1", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["imported"]["status"] == "unchanged"
    assert {m["status"] for m in second["merged"]} == {"unchanged"}
    assert second["tables"]["changed"] is False
    assert second["tables"]["sha256"] == first["tables"]["sha256"]
    assert second["rendered"] == [] and sorted(second["reused"]) == sorted(SUBSCRIBERS)
    assert second["sent"] == []
    assert all(s["reason"].startswith("already sent") for s in second["skipped"])
    assert len(outbox(sample_study)) == 4
    assert [r[2] for r in delivery_rows(sample_study)] == ["sent"] * 4

    # both runs are in the log file and the run table, with the manifest chain shown by status
    log = (sample_study / LOG_FILE).read_text(encoding="utf-8")
    assert f"run {first['run_id']} wave 1: started" in log and f"run {second['run_id']} wave 1: finished ok" in log
    assert [r[2] for r in runs(sample_study)] == ["ok", "ok"]
    code, out, _ = cli("--study", sample_study, "status", "--json")
    assert code == 0
    status = json.loads(out)
    latest = status["runs"][0]
    assert latest["run_id"] == second["run_id"]
    manifest = latest["manifest"]
    assert manifest["inputs"]["wave_files"]["wave1.sav"] == first["imported"]["files"][0]["sha256"]
    assert manifest["tables"]["sha256"] == first["tables"]["sha256"]
    assert set(manifest["reports"]) == SUBSCRIBERS
    first_manifest = status["runs"][1]["manifest"]
    assert {d["subscriber"] for d in first_manifest["deliveries"]} == SUBSCRIBERS
    assert {d["status"] for d in first_manifest["deliveries"]} == {"sent"}
    assert {d["report_sha256"] for d in first_manifest["deliveries"]} == set(manifest["reports"].values())
    code, out, _ = cli("--study", sample_study, "status")
    assert second["run_id"] in out


def test_plain_output_when_piped_is_one_line_per_step_never_wrapped(sample_study, cli):
    code, out, err = cli("--study", sample_study, "run", "--wave", "2", "--no-send")
    assert code == 0, err
    lines = out.splitlines()
    assert "\x1b[" not in out
    assert any(line.startswith("import: wave 2 imported") for line in lines)
    assert any(line.startswith("tables: tables/wave-2.csv written") for line in lines)
    assert any(line.startswith("render: 4 rendered") for line in lines)
    assert outbox(sample_study) == []  # --no-send
    assert lines[-1].startswith("wave 2: import imported") and "0 sent" in lines[-1]

    code, out, err = cli("--study", sample_study, "run", "--wave", "2")
    assert code == 0, err
    lines = out.splitlines()
    sent_lines = [line for line in lines if " sent via outbox (" in line]
    assert len(sent_lines) == 4
    for path in outbox(sample_study):
        # the whole path (well over 80 columns) and the Message-ID stay on the step's one line
        (line,) = [line for line in sent_lines if str(path) in line]
        assert len(line) > 100 and line.startswith("send: ") and line.endswith(">)")


def test_second_run_waits_then_exits_75_naming_the_holder(sample_study, cli):
    set_lock_timeout(sample_study, 0.5)
    with study_lock(
        sample_study, timeout=1, purpose="wavetool run --wave 3, started 2021-01-01T00:00:00Z", name=RUN_LOCK_NAME
    ):
        start = time.monotonic()
        code, out, err = cli("--study", sample_study, "run", "--wave", "1")
        waited = time.monotonic() - start
    assert code == 75
    assert f"another wavetool run is in progress (held by PID {os.getpid()}: wavetool run --wave 3" in err
    assert waited >= 0.5
    assert "not started" in (sample_study / LOG_FILE).read_text(encoding="utf-8")
    assert outbox(sample_study) == []


def test_concurrent_real_runs_never_interleave(sample_study):
    """Two processes: the second gets 75 while the first runs, and the first finishes normally."""
    set_lock_timeout(sample_study, 0.2)
    command = [sys.executable, "-m", "wavetool", "--study", str(sample_study), "run", "--wave", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = sample_study / LOG_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and "started" in log.read_text(encoding="utf-8")):
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=300)
    assert second.returncode == 75, second.stderr
    assert f"held by PID {first.pid}: wavetool run --wave 1" in second.stderr
    assert first.returncode == 0, err
    assert len(outbox(sample_study)) == 4


def test_drift_gate_stops_the_run_with_79_until_a_crosswalk_entry_explains_it(imported_study, cli):
    config_path = imported_study / "wavetool.toml"
    original = config_path.read_text(encoding="utf-8")
    entry = original[original.index('[[crosswalk]]\nquestion = "Q3"') :]
    entry = entry[: entry.index("\n\n") + 2]
    config_path.write_text(original.replace(entry, ""), encoding="utf-8")
    code, _, err = cli("--study", imported_study, "codebook", "review")
    assert code == 79, err

    code, out, err = cli("--study", imported_study, "run", "--wave", "3", "--no-send")

    assert code == 79
    assert "wave 3's codebook drifted" in err and "Q3" in err
    assert not (imported_study / "reports" / "wave-3").exists()
    assert outbox(imported_study) == []
    assert runs(imported_study)[-1][2:] == ("failed", 79)

    # The coordinator adds the crosswalk entry back: the next cron run re-reviews and goes through.
    config_path.write_text(original, encoding="utf-8")
    code, out, err = cli("--study", imported_study, "run", "--wave", "3", "--no-send")
    assert code == 0, err
    assert (imported_study / "reports" / "wave-3" / "quebec.pdf").exists()


def test_bad_file_in_inbox_is_65_and_changes_nothing(sample_study, cli):
    (sample_study / "inbox" / "wave-1" / "extra.sav").write_bytes(b"this is not an SPSS file")
    code, _, err = cli("--study", sample_study, "run", "--wave", "1")
    assert code == 65
    assert "extra.sav" in err
    con = duckdb.connect(str(sample_study / "wavetool.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM waves").fetchall() == [(0,)]
    con.close()


def test_empty_inbox_for_a_wave_never_imported_is_66(sample_study, cli):
    (sample_study / "inbox" / "wave-3" / "wave3.por").unlink()
    code, _, err = cli("--study", sample_study, "run", "--wave", "3")
    assert code == 66
    assert "no export" in err and "wave-3" in err


def _wait_for(path: Path, text: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8"):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("stop_at", ["render: ", "send: sending 2/4"])
def test_killed_run_is_finished_by_the_next_with_nothing_duplicated(sample_study, cli, stop_at):
    command = [sys.executable, "-m", "wavetool", "--study", str(sample_study), "run", "--wave", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(sample_study / LOG_FILE, stop_at), (
            proc.stderr.read().decode() if proc.poll() is not None else ""
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()

    code, out, err = cli("--study", sample_study, "run", "--wave", "1", "--json")

    assert code == 0, err
    assert len(outbox(sample_study)) == 4
    rows = delivery_rows(sample_study)
    assert sorted(r[0] for r in rows if r[2] == "sent") == sorted(SUBSCRIBERS)
    assert [r[2] for r in runs(sample_study)] == ["interrupted", "ok"]


def test_ctrl_c_exits_130_and_a_rerun_completes(sample_study, cli):
    command = [sys.executable, "-m", "wavetool", "--study", str(sample_study), "run", "--wave", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _wait_for(sample_study / LOG_FILE, "merge: ")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"Interrupted." in err
    assert runs(sample_study)[-1][2:] == ("interrupted", 130)

    code, _, err = cli("--study", sample_study, "run", "--wave", "1")
    assert code == 0, err
    assert len(outbox(sample_study)) == 4


@pytest.mark.parametrize("raised", [RuntimeError("Query interrupted"), duckdb.InterruptException("INTERRUPT Error")])
def test_ctrl_c_inside_a_duckdb_query_is_an_interruption_not_a_bug(sample_study, cli, monkeypatch, raised):
    """SIGINT during a query reaches Python as DuckDB's own error, not KeyboardInterrupt: it must still be
    "Interrupted." with exit 130 and a run recorded as interrupted, never "internal error"."""
    import wavetool.pipeline as pipeline

    def interrupted_query(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(pipeline, "tabulate", interrupted_query)  # the pipeline's tables step
    code, _, err = cli("--study", sample_study, "run", "--wave", "1")
    assert code == 130 and err.strip() == "Interrupted."
    assert runs(sample_study)[-1][2:] == ("interrupted", 130)

    import wavetool.cli.tables as tables_cli

    monkeypatch.setattr(tables_cli, "tabulate", interrupted_query)
    code, _, err = cli("--study", sample_study, "tabulate", "--wave", "1")
    assert code == 130 and err.strip() == "Interrupted."


def test_warnings_stay_on_a_terminal_above_the_live_status(sample_study, cli, monkeypatch):
    """On a terminal `run` shows a live status line; an import warning must still be printed (it was only in the
    piped output and the log). The .por gets one windows-1252 byte in a question label, swapped in place."""
    por = sample_study / "inbox/wave-3/wave3.por"
    data = por.read_bytes()
    assert data.count(b"were courteous") == 1
    por.write_bytes(data.replace(b"were courteous", b"w\xe8re courteous"))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich renders as on a terminal: live display, colours
    code, out, err = cli("--study", sample_study, "run", "--wave", "3", "--no-send")
    assert code == 0, err
    assert "\x1b[" in out  # it did render as a terminal
    # The live line is redrawn in place (each redraw starts with a spinner glyph); a printed line starts
    # with its own text and stays.
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", out + err).splitlines()
    kept = [line for line in shown if line.startswith("import: warning:")]
    assert len(kept) == 1 and "lost" in kept[0] and "labels Q5" in kept[0], kept
    assert not [line for line in shown if line.startswith("render: 4 rendered")]  # routine lines do not stay
