"""`wavetool codebook`: show a wave's codebook (and, from the harmonisation work, diff/approve it)."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from ..codebook import codebook_rows
from ..store import read_store
from . import app, ctx_obj
from .output import make_console, print_json, table


class _ShowByDefault(TyperGroup):
    """`wavetool codebook --wave N [VARIABLE]` means `wavetool codebook show --wave N [VARIABLE]`."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and not any(a in self.commands for a in args) and not {"-h", "--help"} & set(args):
            args = ["show", *args]
        return super().parse_args(ctx, args)


codebook_app = typer.Typer(
    cls=_ShowByDefault,
    help="Show, compare and approve wave codebooks.\n\nExample: wavetool codebook --wave 1 Q1",
    no_args_is_help=True,
)
app.add_typer(codebook_app, name="codebook")


@codebook_app.command("show")
def show(
    ctx: typer.Context,
    variable: str = typer.Argument(None, help="One variable to show in full (default: all)."),
    wave: int = typer.Option(..., "--wave", "-w", min=1, max=4, help="Wave number (1-4)."),
    json_out: bool = typer.Option(False, "--json", help="Print the codebook as JSON."),
) -> None:
    """Show a wave's codebook: labels, types, measures, value labels and user-missing codes.

    Example: wavetool codebook --wave 3 Q1
    """
    config = ctx_obj(ctx).config
    with read_store(config.root) as con:
        rows = codebook_rows(con, wave, variable)
    if json_out:
        print_json(rows)
        return
    console = make_console()
    if variable:
        row = rows[0]
        for key in ("name", "question", "label", "type", "measure", "format", "role", "owner"):
            console.print(f"{key:>9}: {row[key] if row[key] is not None else ''}", markup=False)
        console.print(f"  missing: {', '.join(row['missing']) or 'none'}", markup=False)
        console.print(table("Value labels", ["code", "label", "missing"],
                            [(c, lbl, "yes" if c in row["missing"] else "") for c, lbl in row["value_labels"].items()]))
        return
    console.print(table(
        f"Wave {wave} codebook",
        ["variable", "label", "type", "measure", "values", "missing", "role"],
        [(r["name"], r["label"], r["type"], r["measure"], len(r["value_labels"]) or "", ", ".join(r["missing"]), r["role"] or r["owner"] or "")
         for r in rows],
    ))
