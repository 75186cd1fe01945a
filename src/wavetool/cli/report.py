"""`wavetool report`: one PDF per subscriber."""

from __future__ import annotations

from pathlib import Path

import typer

from ..report import render_reports
from .app import app, ctx_obj
from .output import make_console, print_json


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
    obj = ctx_obj(ctx)
    config, console = obj.config, obj.out
    config.require_name()
    with obj.run(f"Wave {wave} reports", quiet=json_out) as run:
        result = render_reports(
            config,
            wave,
            subscribers=subscriber or None,
            output_dir=output_dir,
            final=final,
            jobs=jobs,
            ctx=run,
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
    return result.exit_code
