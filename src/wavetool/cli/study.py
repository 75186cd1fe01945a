"""`wavetool init` and `wavetool status`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..seed import init_from
from ..status import init_study, study_status
from .app import app, ctx_obj
from .output import make_console, print_json, table


@app.command()
def init(
    folder: Path = typer.Argument(..., help="Folder for the new study (created if missing)."),
    from_file: Path = typer.Option(
        None, "--from", help="Seed the config from this export (.sav, .zsav, .por or .csv) instead of the example."
    ),
    id_column: str = typer.Option(
        None, "--id", help="With --from: the respondent id column (default: guessed); 'row': row numbers as ids."
    ),
    jurisdiction_column: str = typer.Option(
        None, "--jurisdiction", help="With --from: the jurisdiction column (default: guessed)."
    ),
    weight_column: str = typer.Option(
        None, "--weight", help="With --from: the final weight column (default: guessed); 'none': unweighted."
    ),
    jurisdiction_code: str = typer.Option(
        None,
        "--jurisdiction-code",
        help="With --from: the file has no jurisdiction column; every respondent is in this jurisdiction.",
    ),
    encoding: str = typer.Option(None, "--encoding", help="With --from: the file's text encoding, e.g. cp1252."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Create a study folder with a commented wavetool.toml and an empty database.

    With --from FILE, the config is seeded from a real export: the id, jurisdiction and weight columns (guessed
    where only one column fits, and said so), and the jurisdictions from the jurisdiction column's value labels
    (Statistics Canada's province and territory codes are named in English and French). The study name is left
    as a placeholder that report, run and send refuse until you set it. An existing wavetool.toml is never
    overwritten. A file without one of those columns takes the opt-outs of `import`: --id row, --weight none,
    --jurisdiction-code CODE.

    Example: wavetool init ~/studies/citizens-2020 --from inbox/wave1.sav

    Example: wavetool init ~/studies/hotel --from hotel.sav --id row --weight none --jurisdiction-code ON
    """
    if from_file is None:
        if id_column or jurisdiction_column or weight_column or jurisdiction_code or encoding:
            raise typer.BadParameter(
                "--id, --jurisdiction, --jurisdiction-code, --weight and --encoding go with --from FILE"
            )
        result = init_study(folder)
    else:
        result = init_from(
            folder,
            from_file,
            id_column=id_column,
            jurisdiction_column=jurisdiction_column,
            weight_column=weight_column,
            jurisdiction_code=jurisdiction_code,
            encoding=encoding,
        )
    if json_out:
        print_json(result)
        return
    console = make_console()
    verb = "created" if result["config_created"] else "kept existing"
    console.print(f"{verb} {result['config']}", markup=False)
    console.print(f"database {result['database']}", markup=False)
    for note in result.get("notes", []):
        console.print(f"  {note}", markup=False)
    if from_file is not None:
        console.print(
            f"next: `wavetool --study {folder} import --wave 1 {from_file}`, then set [study] name in the config"
            " before `report` or `run`",
            markup=False,
        )
    else:
        console.print(f"next: edit the config, then `wavetool --study {folder} import --wave 1 FILE`", markup=False)


@app.command()
def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show the waves imported, respondents per jurisdiction per wave, and the subscribers.

    Example: wavetool --study demo status --json
    """
    data = study_status(ctx_obj(ctx).config)
    if json_out:
        print_json(data)
        return
    console = make_console()
    console.print(f"Study: {data['study']} ({data['folder']})", markup=False)
    rows = []
    for w in data["waves"]:
        for f in w["files"] or [{}]:
            rows.append(
                (
                    w["wave"],
                    f.get("file_name"),
                    f.get("rows"),
                    f.get("sha256", "")[:12],
                    w["imported_at"],
                    w["review_status"],
                )
            )
    console.print(table("Waves imported", ["wave", "file", "rows", "sha256", "imported (UTC)", "review"], rows))
    wave_numbers = [str(w["wave"]) for w in data["waves"]]
    console.print(
        table(
            "Respondents per jurisdiction",
            ["jurisdiction", *[f"wave {n}" for n in wave_numbers]],
            [(r["jurisdiction"], *[r["waves"].get(n, 0) for n in wave_numbers]) for r in data["respondents"]],
        )
    )
    console.print(
        table(
            "Subscribers",
            ["id", "name", "jurisdictions", "language", "contacts"],
            [
                (s["id"], s["name"], " ".join(s["jurisdictions"]), s["language"], len(s["contacts"]))
                for s in data["subscribers"]
            ],
        )
    )
    if data.get("runs"):
        console.print(
            table(
                "Pipeline runs (latest first; manifest: inputs → tables → reports → deliveries)",
                ["run", "wave", "started (UTC)", "status", "exit", "inputs", "tables sha256", "reports", "delivered"],
                [
                    (
                        r["run_id"],
                        r["wave"],
                        r["started_at"],
                        r["status"],
                        r["exit_code"],
                        r["inputs"],
                        (r["tables_sha256"] or "")[:12],
                        r["reports"],
                        r["delivered"],
                    )
                    for r in data["runs"]
                ],
            )
        )
    if data.get("deliveries"):
        console.print(
            table(
                "Deliveries (latest message per subscriber)",
                ["wave", "status", "subscribers", "last change (UTC)"],
                [(d["wave"], d["status"], d["n"], d["last"]) for d in data["deliveries"]],
            )
        )
