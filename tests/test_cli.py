"""CLI conventions for every command, including the ones added later: --version, --help with a one-line
summary and an "Example:", `python -m wavetool`, one-line errors without a traceback (unless --traceback),
and no ANSI escapes or animation when the output is piped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from wavefiles import wave_frame, write_sav, write_study
from wavetool import __version__
from wavetool.cli import app

ENV = {**os.environ, "COLUMNS": "200"}


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand of the CLI, found by walking the click tree (so new ones are covered)."""
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        found.append(path)
        if hasattr(command, "commands"):  # a group (typer ships its own copy of click)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = command_paths()


def test_the_tree_walk_finds_the_foundation_commands():
    assert {(), ("init",), ("status",), ("import",), ("codebook",), ("codebook", "show")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "wavetool" for p in COMMANDS])
def test_every_command_has_a_one_line_summary_and_an_example(path, cli):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    text = (command.help or "").strip()
    summary = text.split("\n\n")[0].strip()
    assert summary and "\n" not in summary, f"{' '.join(path)}: the help must open with a one-line summary"
    assert summary.endswith("."), f"{' '.join(path)}: the summary should be a sentence"
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("Example:")]
    assert examples and examples[0].startswith("Example: wavetool"), (
        f"{' '.join(path)}: no 'Example: wavetool ...' line"
    )

    code, out, err = cli(*path, "--help")
    assert code == 0, err
    assert "Example:" in out and summary.split()[0] in out


def test_version(cli):
    assert cli("--version") == (0, f"wavetool {__version__}\n", "")


def test_python_dash_m_works_and_keeps_exit_codes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "wavetool", "--version"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0 and done.stdout.strip() == f"wavetool {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "wavetool", "--study", str(tmp_path), "status"], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 78
    assert done.stderr.startswith(f"Error: {tmp_path / 'wavetool.toml'}: no study configuration here")


def test_errors_are_one_line_without_traceback_and_traceback_on_request(tmp_path):
    base = [sys.executable, "-m", "wavetool", "--study", str(tmp_path)]
    done = subprocess.run([*base, "status"], capture_output=True, text=True, env=ENV)
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["Error", "Hint"]
    assert "Traceback" not in done.stderr
    done = subprocess.run([*base, "--traceback", "status"], capture_output=True, text=True, env=ENV)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr and "ConfigError" in done.stderr


def test_usage_errors_exit_2(cli):
    code, _, err = cli("import", "--wave", "0", "x.sav")
    assert code == 2 and "Traceback" not in err


@pytest.mark.slow  # runs the pipeline through a pipe (make test-fast skips it)
def test_piped_output_has_no_ansi_escapes_or_animation(tmp_path):
    study = write_study(tmp_path / "study")
    wave = write_sav(tmp_path / "wave1.sav", wave_frame())
    runs = [
        ["import", "--wave", "1", str(wave)],
        ["status"],
        ["codebook", "--wave", "1"],
        ["codebook", "--wave", "1", "Q1"],
        ["import", "--wave", "1", str(tmp_path / "missing.sav")],
    ]
    env = {**ENV, "TERM": "xterm-256color", "FORCE_COLOR": "", "COLORTERM": "truecolor"}
    env.pop("FORCE_COLOR")
    for args in runs:
        done = subprocess.run(
            [sys.executable, "-m", "wavetool", "--study", str(study), *args], capture_output=True, text=True, env=env
        )
        for stream in (done.stdout, done.stderr):
            assert "\x1b" not in stream, f"{args}: ANSI escape in piped output: {stream!r}"
            assert "\r" not in stream, f"{args}: a carriage return (animation) in piped output"
        assert done.stdout or done.stderr
    # The import printed its one summary line, and nothing from a progress bar.
    first = subprocess.run(
        [sys.executable, "-m", "wavetool", "--study", str(study), "import", "--wave", "1", str(wave)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert first.stdout == "wave 1: wave1.sav already imported, nothing changed\n" and first.stderr == ""


def test_study_from_the_environment(tmp_path, monkeypatch, cli):
    study = write_study(tmp_path / "study")
    monkeypatch.setenv("WAVETOOL_STUDY", str(study))
    code, out, err = cli("status", "--json")
    assert code == 0, err
    assert '"study": "Test study"' in out
    monkeypatch.chdir(study)
    monkeypatch.delenv("WAVETOOL_STUDY")
    code, out, err = cli("status", "--json")
    assert code == 0, err
    assert '"study": "Test study"' in out


def test_shell_completion_is_available(tmp_path):
    # typer detects the shell from the parent process: run wavetool from bash, as a user would, so the test
    # does not depend on what started pytest (`make` starts it from sh). `; exit` keeps bash as the parent.
    done = subprocess.run(
        ["bash", "-c", '"$0" -m wavetool --show-completion; exit $?', sys.executable],
        capture_output=True,
        text=True,
        env={**ENV, "SHELL": "/bin/bash"},
    )
    assert done.returncode == 0 and "complete" in done.stdout and "wavetool" in done.stdout.lower()


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "wavetool"
    assert script.exists()
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0 and __version__ in done.stdout
