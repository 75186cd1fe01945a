"""`wavetool import`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..ingest import import_wave
from .app import app, ctx_obj
from .output import make_console, print_json


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="The wave's export file(s): .sav, .zsav, .por or .csv."),
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    id_column: str = typer.Option(
        None, "--id", help="Respondent id column (overrides the config); 'row': row numbers as ids (one file)."
    ),
    jurisdiction_column: str = typer.Option(None, "--jurisdiction", help="Jurisdiction column (overrides the config)."),
    jurisdiction_codes: list[str] = typer.Option(
        None,
        "--jurisdiction-code",
        help="CODE: every row's jurisdiction, for a file without a jurisdiction column; FILE=CODE for one file "
        "(repeat for each file).",
    ),
    weight_column: str = typer.Option(
        None, "--weight", help="Final weight column (overrides the config); 'none': unweighted, every weight 1."
    ),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding of the file, e.g. latin-1 or cp1252."),
    codebook: Path = typer.Option(None, "--codebook", help="Companion codebook for a CSV (overrides the config)."),
    replace: bool = typer.Option(False, "--replace", help="Replace the wave if it is already imported (atomic swap)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> int:
    """Import one wave's exports into the study database (all or nothing).

    Each role (respondent id, jurisdiction, weight) is one column of its own. A file without one says so:
    --id row (row numbers as ids), --weight none (unweighted), --jurisdiction-code CODE.

    Example: wavetool --study demo import --wave 1 inbox/wave-1/wave1.sav

    Example: wavetool import --wave 2 main.sav yt-boost.sav --jurisdiction-code yt-boost.sav=YT
    """
    obj = ctx_obj(ctx)
    console, config = obj.out, obj.config
    with obj.run(f"Importing wave {wave}", quiet=json_out) as run:
        result = import_wave(
            config,
            wave,
            files,
            id_column=id_column,
            jurisdiction_column=jurisdiction_column,
            weight_column=weight_column,
            jurisdiction_codes=jurisdiction_codes,
            encoding=encoding,
            codebook_path=codebook,
            replace=replace,
            ctx=run,
        )
    if json_out:
        print_json(result.to_dict())
        return result.exit_code
    err = make_console(stderr=True)
    for warning in result.warnings:
        err.print(f"Warning: {warning}", markup=False)
    names = ", ".join(f["file_name"] for f in result.files)
    if result.status == "unchanged":
        console.print(f"wave {wave}: {names} already imported, nothing changed", markup=False)
    else:
        console.print(
            f"wave {wave}: {result.status} {result.rows} rows x {result.columns} columns from {names}", markup=False
        )
    if result.review_status == "unreviewed":
        err.print(
            f"Warning: wave {wave}'s codebook drifted from the previous wave; review it with "
            f"`wavetool codebook diff {wave - 1} {wave}`, then add a crosswalk entry or run `wavetool codebook approve --wave {wave}`",
            markup=False,
        )
    return result.exit_code
