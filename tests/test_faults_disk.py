"""Disk full and a read-only study folder: a clear error (exit 73), nothing half-written.

These tests mount a small tmpfs (they need root, as in CI); where mounting is not permitted they are
skipped with that reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from wavetool.config import load_config
from wavetool.ingest import import_wave
from wavetool.store import read_store

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def tmpfs(size_kb: int):
    mount_point = Path("/tmp") / f"wavetool-tmpfs-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); CI runs as root and can")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _used_kb(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) // 1024


def test_disk_full_during_import_is_a_clear_error_and_changes_nothing(sample_study, cli, tmp_path):
    source = sample_study
    wave_file = source / "inbox/wave-1/wave1.sav"
    with tmpfs(_used_kb(source) - _used_kb(source / "inbox") + 400) as mount:
        study = mount / "study"
        study.mkdir()
        shutil.copy(source / "wavetool.toml", study)
        shutil.copy(source / "wavetool.duckdb", study)
        code, out, err = cli("--study", study, "import", "--wave", "1", wave_file)
        assert code == 73, err
        assert "Traceback" not in err
        assert "cannot write the study database" in err and "nothing was changed" in err
        with read_store(study) as con:
            assert con.execute("SELECT count(*) FROM waves").fetchall()[0][0] == 0
        code, out, err = cli("--study", study, "status", "--json")
        assert code == 0, err
        freed = tmp_path / "freed"
        shutil.copytree(study, freed)
    # With space again, the same import succeeds on the database the failure left behind.
    result = import_wave(load_config(freed), 1, [wave_file])
    assert result.status == "imported" and result.rows == 3000


def test_read_only_study_folder_is_a_clear_error(sample_study, cli):
    with tmpfs(8192) as mount:
        study = mount / "study"
        shutil.copytree(sample_study, study, ignore=shutil.ignore_patterns("inbox"))
        (study / ".wavetool.lock").unlink(missing_ok=True)
        before = _digest(study / "wavetool.duckdb")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        code, out, err = cli("--study", study, "import", "--wave", "1", sample_study / "inbox/wave-1/wave1.sav")
        assert code == 73, err
        assert "Traceback" not in err and str(study) in err
        assert _digest(study / "wavetool.duckdb") == before
        code, out, err = cli("--study", study, "status", "--json")
        assert code == 0, err
