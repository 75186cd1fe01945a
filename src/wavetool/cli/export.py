"""`wavetool export`: harmonised data as Parquet, CSV or SPSS."""

from __future__ import annotations

from pathlib import Path

import typer

from ..export import export_data
from .app import app, ctx_obj
from .output import make_console, print_json


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="File to write (.parquet, .csv or .sav)."),
    fmt: str = typer.Option(None, "--format", "-f", help="parquet, csv or sav (default: from the --output suffix)."),
    wave: list[int] = typer.Option(None, "--wave", "-w", min=1, help="Wave(s) to export (default: all imported)."),
    subscriber: str = typer.Option(
        None, "--subscriber", "-s", help="Add this subscriber's custom questions and ELIGIBLE."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Export the harmonised waves stacked (a `wave` column, one column per question), labels kept.

    Without --subscriber no custom question of anyone is included. A CSV gets a companion
    FILE-codebook.csv (the format `wavetool import --codebook` reads).

    Example: wavetool export --wave 1 --wave 2 --format sav --output citizens.sav
    """
    result = export_data(ctx_obj(ctx).config, wave or None, subscriber, fmt, output)
    if json_out:
        print_json(result)
        return
    console = make_console()
    waves = ", ".join(str(w) for w in result["waves"])
    console.print(
        f"wrote {result['output']}: {result['rows']} rows x {result['columns']} columns (waves {waves})", markup=False
    )
    if result["codebook"]:
        console.print(f"codebook {result['codebook']}", markup=False)
    for warning in result["warnings"]:
        make_console(stderr=True).print(f"Warning: {warning}", markup=False)
