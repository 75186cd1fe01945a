"""`wavetool drivers`: the drivers of satisfaction (relative importance × performance)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from ..stats import Drivers, all_scopes, drivers
from .app import app, ctx_obj
from .output import make_console, table

FORMATS = ("table", "csv", "json", "parquet")


@app.command("drivers")
def drivers_cmd(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, max=4, help="Wave number (1-4)."),
    jurisdiction: list[str] = typer.Option(None, "--jurisdiction", "-j", help="A jurisdiction code (repeatable)."),
    subscriber: list[str] = typer.Option(None, "--subscriber", "-s", help="A subscriber id (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Everyone, every jurisdiction and every subscriber."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write to this file (csv/json: default stdout).", dir_okay=False
    ),
) -> None:
    """Which service attributes drive the outcome, and where performance lags on what matters most.

    Importance = each attribute's Shapley (LMG) share of the R² of the weighted regression of \\[drivers]
    outcome on \\[drivers] attributes (wavetool.toml), in percent; performance = its top-2 box; quadrant =
    priority, strength, secondary or surplus. Listwise over valid answers; scopes whose base is under
    \\[drivers] min_base get no drivers (the reason is shown). With --output csv/parquet, the scopes' bases
    and reasons are written beside the file (NAME-scopes.csv/.parquet).

    Example: wavetool drivers --wave 4 --jurisdiction ON --subscriber maritimes
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    if fmt == "parquet" and output is None:
        raise typer.BadParameter("parquet needs --output FILE", param_hint="--output")
    config = ctx_obj(ctx).config
    scopes = all_scopes(config) if all_ else [*(jurisdiction or []), *(subscriber or [])] or ["all"]
    result = drivers(config, wave, scopes=scopes)
    if fmt == "table":
        _print(result)
    else:
        _write(result, fmt, output)


def _write(result: Drivers, fmt: str, output: Path | None) -> None:
    if output is None:
        if fmt == "csv":
            result.to_csv(sys.stdout)
        else:
            result.to_json(sys.stdout)
        return
    written = result.write(output, fmt)
    listed = f"; scopes ({result.scopes_table.num_rows}) in {written[1]}" if len(written) > 1 else ""
    make_console(stderr=True).print(f"wrote {result.table.num_rows} rows to {output}{listed}", markup=False)


def _fmt(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _print(result: Drivers) -> None:
    console = make_console()
    meta = result.meta
    console.print(
        f"Drivers of {meta['outcome']}, wave {meta['wave']}: importance = % of the R² of the weighted regression "
        f"on {len(meta['attributes'])} attributes (listwise valid answers; weight {meta['weight']}); "
        f"performance = top-2 box %; bootstrap: {meta['bootstrap']}.",
        markup=False,
    )
    with_ci = meta["replicates"] > 0
    for scope in result.scopes:
        if scope["status"] != "ok":
            continue
        rows = sorted(result.scope_rows(scope["scope"]), key=lambda r: (r["importance_rank"], r["attribute"]))
        columns = ["rank", "attribute", "label", "importance %", *(["CI"] if with_ci else []), "performance %"]
        columns += ["quadrant", "note"]
        body = []
        for r in rows:
            ci = [f"{_fmt(r['importance_ci_low'])}–{_fmt(r['importance_ci_high'])}"] if with_ci else []
            line = [
                r["importance_rank"],
                r["attribute"],
                r["label"],
                _fmt(r["importance"]),
                *ci,
                _fmt(r["performance"]),
            ]
            body.append([*line, r["quadrant"], r["note"]])
        console.print(table(f"Wave {scope['wave']} · {scope['scope']}", columns, _escaped(body)))
        console.print(
            f"  R² {scope['r2']:.3f}; n {scope['n']} (n_eff {_fmt(scope['n_eff'])}) of {scope['respondents']} "
            f"respondents; excluded {scope['excluded_user_missing']} user-missing, {scope['excluded_blank']} blank; "
            f"method {scope['method']}",
            markup=False,
        )
    if result.skipped:
        console.print(
            table(
                "No drivers",
                ["wave", "scope", "n", "reason"],
                _escaped([(s["wave"], s["scope"], s["n"], s["reason"]) for s in result.skipped]),
            )
        )


def _escaped(rows: list) -> list[list[Any]]:
    """Cells with rich markup escaped: labels and reasons may hold brackets ("[drivers] min_base")."""
    return [[escape(c) if isinstance(c, str) else c for c in row] for row in rows]
