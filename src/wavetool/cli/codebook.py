"""`wavetool codebook`: show a wave's codebook, compare waves, review and approve drift, check translations."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from ..codebook import codebook_rows, drift_summary
from ..drift import approve_wave, codebook_diff, review_waves
from ..store import read_store
from ..texts import translation_gaps
from .app import app, ctx_obj
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
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the codebook as JSON."),
) -> None:
    """Show a wave's codebook: labels, types, measures, value labels and user-missing codes.

    Example: wavetool codebook show --wave 3 Q1
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
        console.print(
            table(
                "Value labels",
                ["code", "label", "missing"],
                [(c, lbl, "yes" if c in row["missing"] else "") for c, lbl in row["value_labels"].items()],
            )
        )
        return
    console.print(
        table(
            f"Wave {wave} codebook",
            ["variable", "label", "type", "measure", "values", "missing", "role"],
            [
                (
                    r["name"],
                    r["label"],
                    r["type"],
                    r["measure"],
                    len(r["value_labels"]) or "",
                    ", ".join(r["missing"]),
                    r["role"] or r["owner"] or "",
                )
                for r in rows
            ],
        )
    )


@codebook_app.command("diff")
def diff(
    ctx: typer.Context,
    wave_a: int = typer.Argument(..., min=1, help="The earlier wave."),
    wave_b: int = typer.Argument(..., min=1, help="The later wave."),
    json_out: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
) -> None:
    """Compare two waves' codebooks question by question (crosswalk applied).

    Lists added, dropped and renamed questions, type, label, value-label, code and missing-code
    changes, with the crosswalk entry that explains each (or a suggested entry).

    Example: wavetool codebook diff 3 4
    """
    records = codebook_diff(ctx_obj(ctx).config, wave_a, wave_b)
    if json_out:
        print_json(records)
        return
    console = make_console()
    if not records:
        console.print(f"waves {wave_a} and {wave_b}: no differences", markup=False)
        return
    console.print(
        table(
            f"Codebook differences, wave {wave_a} -> wave {wave_b}",
            ["question", "change", "detail", "explained by", "gates"],
            [
                (
                    r["question"],
                    r["change"],
                    r["detail"] + (f"\nsuggestion:\n{r['suggestion']}" if r["suggestion"] else ""),
                    r["explained_by"] or "",
                    "yes" if r["gates"] else "",
                )
                for r in records
            ],
        )
    )
    gating = sum(r["gates"] for r in records)
    console.print(f"{len(records)} difference(s), {gating} unexplained by the crosswalk", markup=False)


@codebook_app.command("approve")
def approve(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Accept a wave's codebook drift so tables and reports may use it.

    Example: wavetool codebook approve --wave 4
    """
    result = approve_wave(ctx_obj(ctx).config, wave, ctx=ctx_obj(ctx).context())
    if json_out:
        print_json(result)
        return
    if result["previous_status"] == "approved":
        make_console().print(f"wave {wave}: already approved, nothing to do", markup=False)
        return
    make_console().print(
        f"wave {wave}: approved at {result['reviewed_at']} UTC (accepted: {result['accepted']})", markup=False
    )


@codebook_app.command("review")
def review(
    ctx: typer.Context,
    wave: list[int] = typer.Option(None, "--wave", "-w", min=1, help="Wave(s) to report (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdicts as JSON."),
) -> int:
    """Re-run the drift gate with the current crosswalk (after adding an entry); exit 79 if a wave stays unreviewed.

    Example: wavetool codebook review --wave 4
    """
    results = review_waves(ctx_obj(ctx).config, wave or None)
    if json_out:
        print_json(results)
    else:
        make_console().print(
            table(
                "Drift gate",
                ["wave", "review", "unexplained drift"],
                [
                    (
                        r["wave"],
                        r["review_status"] + (" (by hand)" if r["approved_by_hand"] else ""),
                        drift_summary(r["drift"]) if r["drift"] else "",
                    )
                    for r in results
                ],
            )
        )
    return results.exit_code


@codebook_app.command("check-translations")
def check_translations(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print what lacks a text as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Exit 65 when anything lacks a text."),
) -> int:
    """List the questions, value labels and custom questions lacking an English or French text.

    Example: wavetool codebook check-translations --json
    """
    gaps = translation_gaps(ctx_obj(ctx).config, strict=strict)
    if json_out:
        print_json(gaps)
    elif gaps:
        make_console().print(
            table(
                "Texts lacking a translation",
                ["owner", "kind", "key", "lacks", "source text"],
                [(g["owner"], g["kind"], g["key"], g["language"], g["source_text"]) for g in gaps],
            )
        )
        answers = {(g["language"], g["source_text"]) for g in gaps if g["kind"] == "value label" and g["source_text"]}
        labels = sum(g["kind"] == "value label" and bool(g["source_text"]) for g in gaps)
        shared = (
            f"; the {labels} value label(s) among them use {len(answers)} distinct answer text(s): one"
            " [translations.<language>.scales] entry per answer text covers every question using it"
            if labels > len(answers)
            else ""
        )
        make_console().print(
            f"{len(gaps)} text(s) lack a translation; add them to [translations.en] / [translations.fr]{shared}",
            markup=False,
        )
    else:
        make_console().print("every question and value label has an English and a French text", markup=False)
    return gaps.exit_code
