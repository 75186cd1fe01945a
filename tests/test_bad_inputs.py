"""Every case of the bad-input corpus (tests/data/bad/) through the CLI: a one-line error naming the file
(and column/row where there is one), the documented exit code, no traceback, and the study folder —
database, reports, outbox — byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "data" / "bad"
CASES = tomllib.loads((BAD / "cases.toml").read_text(encoding="utf-8"))["case"]
VOLATILE = {".wavetool.lock", ".wavetool-run.lock", "wavetool.log"}


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under the study folder (the lock files and run log excepted)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in VOLATILE
    }


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_fails_cleanly_and_changes_nothing(case, imported_study, cli, tmp_path):
    folder = tmp_path / "case"
    shutil.copytree(BAD / case["name"], folder)
    if case["config"]:
        shutil.copy(folder / "wavetool.toml", imported_study / "wavetool.toml")
    if (folder / "study").is_dir():
        shutil.copytree(folder / "study", imported_study, dirs_exist_ok=True)
    before = snapshot(imported_study)
    args = [a.replace("{case}", str(folder)).replace("{study}", str(imported_study)) for a in case["args"]]

    code, out, err = cli("--study", imported_study, *args)

    assert code == case["exit"], err
    assert "Traceback" not in out + err
    error_lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, err
    hint_lines = [line for line in err.splitlines() if line.startswith("Hint:")]
    assert len(hint_lines) == 1, f"no 'what to do' hint: {err}"
    for expected in case["expect"]:
        assert expected in error_lines[0] + hint_lines[0], f"{expected!r} not in {err!r}"
    assert snapshot(imported_study) == before


def test_corpus_has_the_cases_the_issue_lists():
    names = {c["name"] for c in CASES}
    assert len(names) >= 15
    for required in (
        "truncated-sav",
        "random-bytes-sav",
        "empty-file",
        "latin1-csv-without-encoding",
        "ragged-csv",
        "header-only-csv",
        "duplicate-ids",
        "missing-id-column",
        "missing-weight-column",
        "negative-weight",
        "zero-weight",
        "nan-weight",
        "unknown-jurisdiction",
        "custom-wrong-jurisdiction",
        "custom-wrong-wave",
        "config-unknown-key",
        "config-duplicate-subscriber",
        "config-path-traversal-id",
        "config-invalid-email",
        "template-missing-variable",
        # issue 15: one column, one role; the opt-outs refused where they cannot hold
        "role-same-column-twice",
        "role-config-same-column",
        "role-empty-weight",
        "role-no-weight-column",
        "role-row-ids-two-files",
        "role-row-ids-custom-questions",
        "role-unknown-jurisdiction-code",
        "role-jurisdiction-column-and-code",
        "role-code-for-another-file",
        "role-config-empty-weight",
    ):
        assert required in names
