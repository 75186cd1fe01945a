"""`wavetool weight`: rake a wave to population margins."""

from __future__ import annotations

import typer
from rich.markup import escape

from ..weighting import rake, restore_vendor_weight
from .app import app, ctx_obj
from .output import make_console, print_json, table


@app.command("weight")
def weight_cmd(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    uniform: bool = typer.Option(
        False, "--from-uniform", help="Start raking from equal weights, not the vendor weight."
    ),
    vendor: bool = typer.Option(False, "--vendor", help="Undo raking: use the vendor weight again."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Rake and report, but do not store the weight."),
    json_out: bool = typer.Option(False, "--json", help="Print the diagnostics as JSON."),
) -> None:
    """Rake (rim-weight) a wave to the population margins in wavetool.toml and use that weight in tables.

    Reports iterations, convergence, weighting efficiency, design effect, min/max weight, trimming, and each
    jurisdiction's share before and after. Unless the jurisdiction is a margin, its shares of the starting
    weights are held ([weighting] keep_jurisdiction_totals = true, the default).
    Exit 81 when raking cannot converge or a margin category is absent from the data (nothing is stored).

    Example: wavetool weight --wave 2
    """
    config = ctx_obj(ctx).config
    if vendor:
        restored = restore_vendor_weight(config, wave)
        if json_out:
            print_json(restored)
        else:
            done = "vendor weight restored" if restored["changed"] else "already uses the vendor weight"
            make_console().print(f"wave {wave}: {done}", markup=False)
        return
    result = rake(config, wave, base="uniform" if uniform else "vendor", store=not dry_run, ctx=ctx_obj(ctx).context())
    if json_out:
        print_json(result.to_dict())
        return
    console = make_console()
    trim = f"[{result.trim[0]:g}, {result.trim[1]:g}], {result.trimmed} weights on a bound" if result.trim else "none"
    stored = "not stored (--dry-run)" if dry_run else "stored as the wave's weight (_weight_raked)"
    console.print(
        f"wave {wave}: raked {result.respondents} respondents from the {result.base} weight in {result.iterations} iterations, "
        f"converged (largest margin error {result.max_margin_error:.1e}); {stored}\n"
        f"weighting efficiency {result.efficiency:.1f}%, design effect {result.design_effect:.3f}, "
        f"weights {result.min_weight:.3f}-{result.max_weight:.3f}, trimming {trim}",
        markup=False,
    )
    console.print(
        table(
            "Margins",
            ["variable", "code", "n", "target %", "achieved %"],
            [(m.variable, m.code, m.n, f"{100 * m.target:.2f}", f"{100 * m.achieved:.4f}") for m in result.margins],
        )
    )
    held = {
        "held": "held at their shares of the starting weights ([weighting] keep_jurisdiction_totals)",
        "margin": "raked to [weighting.margins]",
        "free": "not held (keep_jurisdiction_totals = false): raking moved them",
    }[result.jurisdiction_totals]
    console.print(
        table(
            escape(f"Jurisdiction shares: {held}"),
            ["jurisdiction", "n", "before %", "after %", "change %"],
            [
                (j.code, j.n, f"{100 * j.before:.2f}", f"{100 * j.after:.2f}", _relative_change(j.before, j.after))
                for j in result.jurisdictions
            ],
        )
    )
    left_out = {k: v for k, v in result.excluded.items() if v}
    if left_out:
        console.print(
            "left out of a margin (missing answer): " + ", ".join(f"{k} {v}" for k, v in left_out.items()), markup=False
        )


def _relative_change(before: float, after: float) -> str:
    """The relative change of a share, in percent (a share of 0 cannot move relatively)."""
    return f"{round(100 * (after / before - 1), 2) + 0.0:+.2f}" if before > 0 else "-"  # + 0.0: no "-0.00"
