"""Small things a new user tripped on (issue 15, item 8), each checked as the user sees it."""

from __future__ import annotations

import itertools
import re

import pandas as pd
import pyreadstat
import typer.main
from rich.console import Console

from wavefiles import wave_frame, write_sav, write_study
from wavetool.cli import app
from wavetool.cli.output import table


def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_help_shows_no_type_after_on_off_flags(cli):
    for path in _commands():
        code, out, err = cli(*path, "--help")
        assert code == 0, (path, err)
        assert "<bool>" not in out, f"`wavetool {' '.join(path)} --help` shows <bool>"
    code, out, _ = cli("import", "--help")
    assert re.search(r"--replace\s+Replace the wave", out)  # the flag's help follows it directly
    assert re.search(r"--encoding\s+<str>", out)  # options that take a value keep their type


def test_help_paragraphs_wrap_at_the_terminals_width_not_the_docstrings(cli, monkeypatch):
    """Docstrings are wrapped at 110 columns; at 80 the help must not show their line breaks (every other
    line short). Each paragraph's text comes out as one run of words the terminal wraps."""
    monkeypatch.setenv("COLUMNS", "80")
    for path in _commands():
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        paragraphs = [
            " ".join(p.replace("\\[", "[").split())
            for p in (command.help or "").split("\n\n")[1:]
            if not p.startswith("- ")
        ]
        code, out, _ = cli(*path, "--help")
        assert code == 0
        text = " ".join(line.strip(" │") for line in out.splitlines() if not line.startswith(("╭", "╰", "│ -", "│ *")))
        for paragraph in paragraphs:
            assert paragraph in " ".join(text.split()), (path, paragraph)
        prose = [line.rstrip() for line in out.splitlines() if not line.lstrip().startswith(("╭", "╰", "│"))]
        # within a paragraph (consecutive non-blank lines), a short line followed by a full one is a kept break
        ragged = [a for a, b in itertools.pairwise(prose) if a and b and len(a) < 40 and len(b) > 70]
        assert not ragged, (path, ragged)
    # config sections in an option's help are shown as written, not read as markup and dropped
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli("tabulate", "--help")
    assert "Every banner variable of [banners] in wavetool.toml." in out


def test_numbers_are_right_aligned_and_cells_are_not_markup():
    console = Console(width=60, record=True, color_system=None)
    console.print(table("t", ["name", "n", "valid %"], [("a", 5, "7.5"), ("bb", 1234, "68.6"), ("[[x]]", None, "")]))
    lines = console.export_text().splitlines()
    row_a = next(line for line in lines if "│ a " in line)
    row_b = next(line for line in lines if "│ bb " in line)
    assert row_a.index("5 ") == row_b.index("1234 ") + 3  # the units digits line up
    assert row_a.index("7.5") == row_b.index("68.6") + 1
    assert any("[[x]]" in line for line in lines)


def test_tabulate_a_wave_without_labelled_questions_says_so(tmp_path, cli):
    study = write_study(tmp_path / "study")
    frame = wave_frame(30)[["RESPID", "PROV", "WEIGHT", "Q1", "Q2"]]
    path = tmp_path / "plain.sav"
    pyreadstat.write_sav(frame, str(path))  # no value labels at all
    code, _, err = cli("--study", study, "import", "--wave", "1", path)
    assert code == 0, err
    code, out, err = cli("--study", study, "tabulate", "--wave", "1")
    assert code == 65
    assert "nothing to tabulate" in err and "value labels" in err and "codebook show --wave 1" in err


def test_benchmark_comparison_says_percentage_points_and_the_figure_compared(tmp_path, cli):
    study = write_study(tmp_path / "study")
    code, _, err = cli("--study", study, "import", "--wave", "1", write_sav(tmp_path / "w.sav", wave_frame(300)))
    assert code == 0, err
    code, out, err = cli("--study", study, "tabulate", "--wave", "1", "--jurisdiction", "ON", "--question", "Q1")
    assert code == 0, err
    line = next(line for line in out.splitlines() if "vs the rest" in line)
    found = re.search(
        r"top-2 ([\d.]+)%.*vs the rest: top-2 ([\d.]+)%, ([\d.]+) percentage points (lower|higher) here", line
    )
    assert found, line
    own, rest, gap = (float(found[i]) for i in (1, 2, 3))
    assert abs(abs(own - rest) - gap) <= 0.11 and (found[4] == "lower") == (own < rest)
    assert "% lower" not in line and "% higher" not in line


def test_waves_beyond_four_come_from_the_config(tmp_path, cli):
    study = write_study(tmp_path / "study", extra='[[waves]]\nnumber = 6\nlabel = "Wave 6"\n')
    code, out, err = cli("--study", study, "import", "--wave", "6", write_sav(tmp_path / "w.sav", wave_frame(30)))
    assert code == 0, err
    assert "wave 6: imported" in out
    code, out, err = cli("--study", study, "tabulate", "--wave", "6", "--question", "Q1")
    assert code == 0, err
    code, _, err = cli("--study", study, "import", "--wave", "7", tmp_path / "w.sav")
    assert code == 78 and "wave 7 is not configured (configured waves: 1, 2, 3, 4, 6)" in err


def test_a_frame_without_labels_really_has_none(tmp_path):
    """The premise of the tabulate test: pyreadstat writes no value labels when given none."""
    path = tmp_path / "p.sav"
    pyreadstat.write_sav(pd.DataFrame({"Q1": [1.0, 2.0]}), str(path))
    _, meta = pyreadstat.read_sav(str(path))
    assert meta.variable_value_labels == {}
