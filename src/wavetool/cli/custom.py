"""`wavetool custom`: merge, list and remove a subscriber's custom questions."""

from __future__ import annotations

from pathlib import Path

import typer

from ..custom import list_custom, merge_custom, merge_from_config, remove_custom
from ..errors import InputMissingError
from .app import app, ctx_obj
from .output import make_console, print_json, table

custom_app = typer.Typer(
    help="Merge, list and remove subscribers' custom questions.\n\n"
    "Example: wavetool custom merge inbox/wave-1/custom-quebec.sav --subscriber quebec --wave 1",
    no_args_is_help=True,
)
app.add_typer(custom_app, name="custom")


@custom_app.command("merge")
def merge(
    ctx: typer.Context,
    file: Path = typer.Argument(
        None, help="Custom-question file keyed by respondent id: .sav/.zsav/.por, or .csv + codebook."
    ),
    subscriber: str = typer.Option(None, "--subscriber", "-s", help="The subscriber who owns the questions."),
    wave: int = typer.Option(
        None,
        "--wave",
        "-w",
        min=1,
        help="Wave number (one of the waves in wavetool.toml); with --from-config, default all.",
    ),
    codebook: Path = typer.Option(None, "--codebook", help="Codebook of a CSV (default: FILE-codebook.csv beside it)."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding of the file, e.g. cp1252."),
    replace: bool = typer.Option(False, "--replace", help="Swap an already merged file for this one (atomic)."),
    from_config: bool = typer.Option(
        False, "--from-config", help="Merge every \\[\\[subscribers.custom]] file of the config."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Merge a subscriber's custom-question file into a wave (all or nothing; the same file again is a no-op).

    Example: wavetool custom merge inbox/wave-1/custom-ontario.csv --subscriber ontario --wave 1
    """
    config = ctx_obj(ctx).config
    if from_config:
        results = merge_from_config(config, wave, ctx=ctx_obj(ctx).context())
    elif file is None or subscriber is None or wave is None:
        raise InputMissingError(
            "custom merge needs FILE, --subscriber and --wave (or --from-config)",
            hint="e.g. wavetool custom merge FILE --subscriber quebec --wave 1",
        )
    else:
        results = [
            merge_custom(
                config,
                subscriber,
                wave,
                file,
                codebook=codebook,
                replace=replace,
                encoding=encoding,
                ctx=ctx_obj(ctx).context(),
            )
        ]
    if json_out:
        print_json([r.to_dict() for r in results])
        return
    console = make_console()
    for r in results:
        what = "already merged, nothing changed" if r.status == "unchanged" else f"{r.status} {r.rows} rows"
        console.print(
            f"{r.subscriber} wave {r.wave}: {Path(r.file).name}: {what} ({', '.join(r.questions)})", markup=False
        )
    if not results:
        console.print("the config lists no custom-question files" + (f" for wave {wave}" if wave else ""), markup=False)


@custom_app.command("list")
def list_cmd(
    ctx: typer.Context,
    wave: int = typer.Option(None, "--wave", "-w", min=1, help="Only this wave."),
    subscriber: str = typer.Option(None, "--subscriber", "-s", help="Only this subscriber."),
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """Show each subscriber's custom questions per wave: text, source, eligible and answered counts.

    Example: wavetool custom list --subscriber quebec --json
    """
    rows = list_custom(ctx_obj(ctx).config, wave=wave, subscriber=subscriber)
    if json_out:
        print_json(rows)
        return
    make_console().print(
        table(
            "Custom questions",
            ["subscriber", "wave", "question", "text", "source", "eligible", "answered", "file"],
            [
                (
                    r["subscriber"],
                    r["wave"],
                    r["question"],
                    r["text"],
                    r["source"],
                    r["eligible"],
                    r["answered"],
                    r["file"],
                )
                for r in rows
            ],
        )
    )


@custom_app.command("remove")
def remove(
    ctx: typer.Context,
    questions: list[str] = typer.Argument(None, help="Questions to remove (default: all merged ones of that wave)."),
    subscriber: str = typer.Option(..., "--subscriber", "-s", help="The subscriber who owns the questions."),
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Remove a subscriber's merged custom questions from a wave.

    Example: wavetool custom remove --subscriber ontario --wave 2 C3
    """
    result = remove_custom(ctx_obj(ctx).config, subscriber, wave, questions or None)
    if json_out:
        print_json(result)
        return
    kept = f"; kept {', '.join(result['kept'])}" if result["kept"] else ""
    make_console().print(f"{subscriber} wave {wave}: removed {', '.join(result['removed'])}{kept}", markup=False)
