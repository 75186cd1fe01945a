"""kill -9 during `wavetool report`: the manifest never lists a PDF that is not exactly the file on disk, a
re-run finishes the job (keeping what the killed run finished), and a third run renders nothing.

The kills land at fractions of a measured full render, in copies of one study whose reports were rendered
once and whose wave label then changed (so every report must be rendered again while an old manifest is in
place: the case where a half-updated folder could show). Rendering is deterministic, so every listed entry
must be byte-for-byte either the old report or the new one. Marked slow (make test and CI run it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pypdf
import pytest

pytestmark = pytest.mark.slow

SUBSCRIBERS = {"ontario", "quebec", "british-columbia", "maritimes"}
KILL_AT = (0.3, 0.6, 0.9)
REVISED = {"en": "Wave 1 (June 2020, revised)", "fr": "Vague 1 (juin 2020, révisée)"}


def report(study: Path, *, wait: bool = True) -> subprocess.Popen:
    """`wavetool report --wave 1 --json` in its own session (so its render workers can be found)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wavetool", "--study", str(study), "report", "--wave", "1", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if wait:
        proc.wait(timeout=300)
    return proc


def finished(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def session_processes(session: int) -> list[int]:
    """PIDs of live processes in a session (the killed report's forkserver and render workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def kill_after(study: Path, seconds: float) -> None:
    proc = report(study, wait=False)
    time.sleep(seconds)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = session_processes(proc.pid)
    for pid in orphans:  # do not leave them behind when the assertion below fails
        os.kill(pid, signal.SIGKILL)
    # Orphaned workers would keep their memory and the caller's stdout open (cron waits for it) forever.
    assert orphans == [], "render workers outlived the killed `wavetool report`"
    proc.communicate(timeout=30)


def listed(study: Path) -> dict[str, dict] | None:
    """The manifest's entries after checking each against its file; None when there is no manifest."""
    folder = study / "reports" / "wave-1"
    path = folder / "manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))  # valid JSON, never half a file
    assert manifest["wave"] == 1 and manifest["final"] is False
    reports = manifest["reports"]
    assert set(reports) <= SUBSCRIBERS
    for sub, entry in reports.items():
        assert entry["file"] == f"{sub}.pdf"  # never a temporary or partial file
        pdf = folder / entry["file"]
        assert hashlib.sha256(pdf.read_bytes()).hexdigest() == entry["sha256"], (
            f"{sub}: listed sha256 is not the file's"
        )
        assert len(pypdf.PdfReader(pdf).pages) == entry["pages"]
    return reports


def revise_wave_label(study: Path) -> None:
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('label = "Wave 1 (June 2020)"', f'label = "{REVISED["en"]}"')
    text = text.replace('label_fr = "Vague 1 (juin 2020)"', f'label_fr = "{REVISED["fr"]}"')
    path.write_text(text, encoding="utf-8")


def copy_study(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def test_kill_9_during_report_never_lists_a_pdf_that_differs_from_its_file(imported_study, tmp_path):
    study = imported_study
    fresh = copy_study(study, tmp_path / "fresh")  # no reports yet
    started = time.monotonic()
    first = finished(report(study))
    first_duration = time.monotonic() - started
    assert sorted(first["rendered"]) == sorted(SUBSCRIBERS)
    old = listed(study)
    assert set(old) == SUBSCRIBERS

    # A first render killed half-way: no manifest yet, or one listing only whole reports.
    kill_after(fresh, first_duration * 0.5)
    partial = listed(fresh)
    assert partial is None or {e["sha256"] for e in partial.values()} <= {e["sha256"] for e in old.values()}

    revise_wave_label(study)
    reference = copy_study(study, tmp_path / "reference")
    started = time.monotonic()
    full = finished(report(reference))
    duration = time.monotonic() - started
    assert sorted(full["rendered"]) == sorted(SUBSCRIBERS)
    new = listed(reference)
    assert all(new[s]["sha256"] != old[s]["sha256"] for s in SUBSCRIBERS)

    states = {}
    for fraction in KILL_AT:
        copy = copy_study(study, tmp_path / f"kill-{fraction}")
        kill_after(copy, duration * fraction)
        entries = listed(copy)
        assert entries is not None
        state = {}
        for sub, entry in entries.items():  # byte-for-byte the old report or the new one, nothing else
            if entry["sha256"] == new[sub]["sha256"]:
                assert entry["inputs_sha256"] == new[sub]["inputs_sha256"]
                state[sub] = "new"
            else:
                assert (entry["sha256"], entry["inputs_sha256"]) == (old[sub]["sha256"], old[sub]["inputs_sha256"])
                state[sub] = "old"
        states[fraction] = (copy, state)
    # At least one kill landed while reports were still being rendered.
    assert any(sorted(k for k, v in s.items() if v == "new") != sorted(SUBSCRIBERS) for _, s in states.values())

    # The copy killed latest mid-render is run again: it renders only what the killed run had not finished.
    unfinished = [f for f, (_, s) in states.items() if list(s.values()).count("new") < len(SUBSCRIBERS)]
    copy, state = states[unfinished[-1]]
    folder = copy / "reports" / "wave-1"
    leftover = folder / ".ontario.pdf.k9x2m3q1.tmp"  # what a kill inside write_atomic leaves behind
    leftover.write_bytes(b"%PDF-1.7 half a report")
    done_before = {s for s, v in state.items() if v == "new"}
    second = finished(report(copy))
    assert sorted(second["rendered"]) == sorted(SUBSCRIBERS - done_before)
    assert sorted(second["unchanged"]) == sorted(done_before)
    assert second["failed"] == {}
    after = listed(copy)
    assert set(after) == SUBSCRIBERS
    assert {s: e["sha256"] for s, e in after.items()} == {s: e["sha256"] for s, e in new.items()}
    assert not leftover.exists() and not list(folder.glob(".*.tmp"))
    for sub in SUBSCRIBERS:
        cover = pypdf.PdfReader(folder / f"{sub}.pdf").pages[0].extract_text()
        assert REVISED["fr" if sub == "quebec" else "en"] in cover

    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pdf")}
    third = finished(report(copy))
    assert third["rendered"] == [] and sorted(third["unchanged"]) == sorted(SUBSCRIBERS)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pdf")} == mtimes
    assert {s: e["sha256"] for s, e in listed(copy).items()} == {s: e["sha256"] for s, e in new.items()}
