"""The report manifest: one reader for `report` and `send`, one behaviour for a damaged file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wavetool.config import load_config
from wavetool.report.manifest import MANIFEST, read_manifest, report_folder, write_manifest


@pytest.mark.parametrize(
    "content", ['{"wave": 1, "reports": {"ontario": ', '["not", "a", "manifest"]', '{"wave": 1}', "\xff\xfe"]
)
@pytest.mark.parametrize("command", [["report", "--wave", "1"], ["send", "--wave", "1", "--dry-run"]])
def test_a_damaged_manifest_stops_report_and_send_with_the_same_error(
    sample_study: Path, cli, content: str, command: list[str]
) -> None:
    folder = report_folder(load_config(sample_study), 1)
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_bytes(content.encode("latin-1"))
    before = sorted(p.name for p in folder.iterdir())
    code, out, err = cli("--study", sample_study, *command)
    assert code == 65, err
    assert f"{folder / MANIFEST}: not a valid report manifest" in err
    assert f"rm {folder / MANIFEST}" in err and "wavetool report --wave 1" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing rendered, nothing sent


def test_written_manifest_reads_back_sorted(tmp_path: Path) -> None:
    entries = {"quebec": {"sha256": "b"}, "ontario": {"sha256": "a"}}
    write_manifest(tmp_path, 2, True, entries)
    data = read_manifest(tmp_path, 2)
    assert data == {"wave": 2, "final": True, "reports": {"ontario": {"sha256": "a"}, "quebec": {"sha256": "b"}}}
    assert list(json.loads((tmp_path / MANIFEST).read_text())["reports"]) == ["ontario", "quebec"]
    assert read_manifest(tmp_path / "none", 2, missing_ok=True) == {"reports": {}}
