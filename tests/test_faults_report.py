"""kill -9 during `wavetool report`: the manifest never lists a PDF that is not exactly the file on disk, each
re-run keeps what the killed run finished, the run after the kills completes and a further run renders nothing.

The study's wave-1 reports are rendered once, then the wave's label changes, so every report must be rendered
again while the old manifest is in place (the case where a half-updated folder could show). That re-render is
killed repeatedly (while starting up, just after its first report, with two reports to go), as a cron job
cut off night after night would be. Every entry listed after a kill must be byte-for-byte the old report or the new one (rendering is
deterministic). Marked slow (make test and CI run it).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest

pytestmark = pytest.mark.slow

SUBSCRIBERS = {"ontario", "quebec", "british-columbia", "maritimes"}
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


def revised_count(study: Path, old: dict[str, dict]) -> int:
    """How many reports the manifest lists as rendered from the revised inputs (a light read for polling)."""
    try:
        reports = json.loads((study / "reports" / "wave-1" / "manifest.json").read_text(encoding="utf-8"))["reports"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(1 for sub, entry in reports.items() if entry["inputs_sha256"] != old[sub]["inputs_sha256"])


def kill_when(study: Path, due: Callable[[float], bool], limit: float = 120.0) -> None:
    """Start `wavetool report`, kill -9 it as soon as ``due(seconds since start)`` is true, and check that no
    render worker outlives it. Polled every 10 ms: the kill lands at a point of the run's progress rather
    than of the clock, so a busy machine cannot move every kill past the end of the render."""
    proc = report(study, wait=False)
    started = time.monotonic()
    while not due(time.monotonic() - started) and time.monotonic() - started < limit:
        assert proc.poll() is None, "the report finished before the point where it was to be killed"
        time.sleep(0.01)
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


def test_kill_9_during_report_never_lists_a_pdf_that_differs_from_its_file(imported_study):
    study = imported_study
    folder = study / "reports" / "wave-1"
    started = time.monotonic()
    first = finished(report(study))
    duration = time.monotonic() - started
    assert sorted(first["rendered"]) == sorted(SUBSCRIBERS)
    old = listed(study)
    assert set(old) == SUBSCRIBERS

    revise_wave_label(study)
    seen: list[dict[str, dict]] = []
    kill_points = (
        lambda elapsed: elapsed >= 0.05 * duration,  # starting up
        lambda _elapsed: revised_count(study, old) >= 1,  # just after the first revised report
        lambda _elapsed: revised_count(study, old) >= 2,  # with two reports still to render
    )
    for due in kill_points:
        kill_when(study, due)
        entries = listed(study)
        assert entries is not None
        for sub, entry in entries.items():
            if entry["inputs_sha256"] == old[sub]["inputs_sha256"]:
                assert entry["sha256"] == old[sub]["sha256"]
        seen.append(entries)
    new_before = {s for s, e in seen[-1].items() if e["inputs_sha256"] != old[s]["inputs_sha256"]}
    assert new_before != SUBSCRIBERS, "every kill came after the render had finished"

    # The next run renders only what the killed runs had not finished (and clears a killed write's leftovers).
    leftover = folder / ".ontario.pdf.k9x2m3q1.tmp"  # what a kill inside write_atomic leaves behind
    leftover.write_bytes(b"%PDF-1.7 half a report")
    second = finished(report(study))
    assert sorted(second["rendered"]) == sorted(SUBSCRIBERS - new_before)
    assert sorted(second["unchanged"]) == sorted(new_before)
    assert second["failed"] == {}
    new = listed(study)
    assert set(new) == SUBSCRIBERS
    assert all(new[s]["inputs_sha256"] != old[s]["inputs_sha256"] for s in SUBSCRIBERS)
    assert not leftover.exists() and not list(folder.glob(".*.tmp"))
    for sub in SUBSCRIBERS:
        cover = pypdf.PdfReader(folder / f"{sub}.pdf").pages[0].extract_text()
        assert REVISED["fr" if sub == "quebec" else "en"] in cover
    # Whatever a kill left listed was the old report or exactly the new one, never anything else.
    for entries in seen:
        for sub, entry in entries.items():
            assert entry["sha256"] in (old[sub]["sha256"], new[sub]["sha256"])

    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pdf")}
    third = finished(report(study))
    assert third["rendered"] == [] and sorted(third["unchanged"]) == sorted(SUBSCRIBERS)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pdf")} == mtimes
    assert {s: e["sha256"] for s, e in listed(study).items()} == {s: e["sha256"] for s, e in new.items()}
