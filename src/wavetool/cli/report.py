"""`wavetool report`: one PDF per subscriber."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ExitCode
from ..report import render_reports
from . import app, ctx_obj
from .output import make_console, print_json

ProgressCallback = Callable[[int, int, str, str], None]


@app.command()
def report(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave to report on."),
    subscriber: list[str] = typer.Option(None, "--subscriber", "-s", help="Only this subscriber (repeatable)."),
    output_dir: Path = typer.Option(
        None,
        "--output-dir",
        "-o",
        file_okay=False,
        help="Folder for the reports (default: \\[report] output_dir of the study).",
    ),
    final: bool = typer.Option(False, "--final", help="The full-study report with trends across all waves."),
    jobs: int = typer.Option(None, "--jobs", "-j", min=1, help="Reports rendered in parallel (default: CPU count)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> int:
    """Render each subscriber's PDF report of a wave (only the ones whose inputs changed).

    Writes <output>/wave-N/<subscriber>.pdf and manifest.json. Exit 73 if any report failed.

    Example: wavetool --study demo report --wave 4 --final
    """
    config = ctx_obj(ctx).config
    config.require_name()
    console = make_console()
    with _progress(console, wave) as progress:
        result = render_reports(
            config,
            wave,
            subscribers=subscriber or None,
            output_dir=output_dir,
            final=final,
            jobs=jobs,
            progress=progress,
        )
    if json_out:
        print_json(result.to_dict())
    else:
        for sub_id, entry in result.reports.items():
            state = "rendered" if entry["rendered"] else "unchanged"
            console.print(
                f"wave {wave}: {sub_id}: {state} {result.folder / entry['file']} "
                f"({entry['pages']} pages, {entry['language']})",
                markup=False,
            )
        err = make_console(stderr=True)
        for sub_id, reason in result.failed.items():
            err.print(f"Error: wave {wave}: {sub_id}: report failed: {reason}", markup=False)
    return int(ExitCode.CANT_CREATE) if result.failed else int(ExitCode.OK)


@contextlib.contextmanager
def _progress(console: Console, wave: int) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on a terminal; nothing when piped (cron logs stay clean)."""
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn(f"Wave {wave} reports"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, subscriber_id: str, status: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{subscriber_id} {status}")

        yield update
