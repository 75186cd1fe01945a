"""The report manifest (``<output>/wave-N/manifest.json``): which PDF was rendered for which subscriber,
with its sha256. Written by ``report`` (report/build.py), read by ``report`` and by ``deliver``; both
read it here, with one behaviour for a damaged file: a DataError naming the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import StudyConfig
from ..errors import DataError, InputMissingError, OutputError
from ..fsutil import write_atomic

MANIFEST = "manifest.json"


def report_folder(config: StudyConfig, wave: int, output_dir: Path | str | None = None) -> Path:
    """``<output_dir or [report] output_dir, relative to the study>/wave-N``."""
    base = Path(output_dir) if output_dir is not None else config.resolve(config.report.output_dir)
    return base / f"wave-{int(wave)}"


def read_manifest(folder: Path, wave: int, missing_ok: bool = False) -> dict[str, Any]:
    """The manifest of a report folder. A folder without one: an empty manifest if ``missing_ok`` (nothing
    rendered yet), else InputMissingError. A damaged one (not JSON, or no "reports" table): DataError."""
    path = folder / MANIFEST
    fix = f"remove it (`rm {path}`) and render the reports again: `wavetool report --wave {wave}`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return {"reports": {}}
        raise InputMissingError(
            f"{path}: no reports for wave {wave}",
            hint=f"render them first: `wavetool report --wave {wave}` (or `wavetool run --wave {wave}`)",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid report manifest: {exc}", hint=fix) from None
    if not isinstance(data, dict) or not isinstance(data.get("reports"), dict):
        raise DataError(f'{path}: not a valid report manifest (no "reports" table)', hint=fix)
    return data


def write_manifest(
    folder: Path, wave: int, final: bool, entries: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Write ``manifest.json`` atomically, entries sorted by subscriber id; return the sorted entries."""
    ordered = {k: entries[k] for k in sorted(entries)}
    document = {"wave": wave, "final": final, "reports": ordered}
    try:
        write_atomic(folder / MANIFEST, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
    except OSError as exc:
        raise OutputError(f"{folder / MANIFEST}: cannot write the manifest: {exc.strerror}") from None
    return ordered
