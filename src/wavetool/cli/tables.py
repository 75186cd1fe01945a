"""`wavetool tabulate`: weighted tables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..databook import write_databook
from ..errors import DataError
from ..stats import Tables, all_scopes, tabulate
from .app import app, ctx_obj
from .output import make_console, table

FORMATS = ("table", "csv", "json", "parquet", "xlsx")


@app.command("tabulate")
def tabulate_cmd(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave number (one of the waves in wavetool.toml)."),
    jurisdiction: list[str] = typer.Option(None, "--jurisdiction", "-j", help="A jurisdiction code (repeatable)."),
    subscriber: list[str] = typer.Option(None, "--subscriber", "-s", help="A subscriber id (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Everyone, every jurisdiction and every subscriber."),
    question: list[str] = typer.Option(
        None, "--question", "-q", help="Only this question (repeatable; $SET for an MR set)."
    ),
    unweighted: bool = typer.Option(False, "--unweighted", help="Count respondents instead of weighting them."),
    by: list[str] = typer.Option(
        None, "--by", "-b", help="A banner variable across the top, e.g. AGEGRP (repeatable; see [banners])."
    ),
    banners: bool = typer.Option(False, "--banners", help="Every banner variable of [banners] in wavetool.toml."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json, parquet or xlsx (a data book)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write to this file (csv/json: default stdout).", dir_okay=False
    ),
) -> None:
    """Weighted frequencies, top/bottom boxes, means, CIs and significance for one wave.

    Percents are weighted percents of valid responses; bases under min_base (wavetool.toml) are withheld.
    With --output, the suppression audit is written beside the file (NAME-suppressed.csv/.parquet).

    With --by or --banners, every table is repeated for each banner column (a Total, then e.g. each age
    group), with column-test letters (sig_columns, topbox_sig_columns, mean_sig_columns). --format xlsx
    writes a subscriber's data book (one --subscriber, --output FILE.xlsx).

    Example: wavetool tabulate --wave 4 --jurisdiction QC --question Q1 --question Q15

    Example: wavetool tabulate --wave 4 --subscriber quebec --banners --format xlsx --output quebec.xlsx
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    if fmt == "parquet" and output is None:
        raise typer.BadParameter("parquet needs --output FILE", param_hint="--output")
    if fmt == "xlsx" and (output is None or len(subscriber or []) != 1 or jurisdiction or all_):
        raise typer.BadParameter(
            "xlsx writes one subscriber's data book: give exactly one --subscriber and --output FILE.xlsx",
            param_hint="--format",
        )
    config = ctx_obj(ctx).config
    scopes = all_scopes(config) if all_ else [*(jurisdiction or []), *(subscriber or [])] or ["all"]
    names = [*(config.banners.variables if banners else ()), *(by or [])]
    result = tabulate(
        config, wave, scopes=scopes, questions=question or None, weighted=not unweighted, banners=names or None
    )
    if not result.summaries:
        raise DataError(
            f"wave {wave}: nothing to tabulate: no question of the wave has value labels"
            " (tabulate counts labelled, numerically coded questions and multiple-response sets)",
            hint=f"check the codebook with `wavetool codebook show --wave {wave}`; a CSV export needs a companion"
            " codebook (import --codebook FILE) to give its questions their labels",
        )
    if fmt == "xlsx":
        write_databook(config, result, subscriber[0], output)
        make_console(stderr=True).print(f"wrote the data book of {subscriber[0]} to {output}", markup=False)
        return
    if fmt == "table":
        _print_tables(result)
    else:
        _write(result, fmt, output)


def _write(result: Tables, fmt: str, output: Path | None) -> None:
    err = make_console(stderr=True)
    if output is None:
        if fmt == "csv":
            result.to_csv(sys.stdout)
        else:
            result.to_json(sys.stdout)
        return
    audit = result.write(output, fmt)
    listed = f"; suppression audit ({result.suppressed_table.num_rows} entries) in {audit}" if audit else ""
    err.print(f"wrote {result.rows_table.num_rows} rows to {output}{listed}", markup=False)


def _fmt(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _interval_method(result: Tables) -> str:
    """The interval's method as the meta names it, without its R equivalent (the JSON has that)."""
    methods = result.meta.get("methods") or {}
    return str(methods.get("interval", "Kish n_eff")).split(" (R:")[0]


def _print_tables(result: Tables) -> None:
    console = make_console()
    weights = ", ".join(f"wave {w}: {s}" for w, s in result.meta["weight"].items())
    console.print(
        f"Percent = weighted % of valid responses; CI {result.meta['confidence']}: {_interval_method(result)}; "
        f"bases under {result.meta['min_base']} withheld; weight {weights}. Tests: {result.meta['test']}.",
        markup=False,
    )
    by_question: dict[tuple, list[dict[str, Any]]] = {}
    for row in result.rows:
        key = (row["wave"], row["scope"], row["question"], row.get("banner"), row.get("banner_code"))
        by_question.setdefault(key, []).append(row)
    for summary in result.summaries:
        key = (
            summary["wave"],
            summary["scope"],
            summary["question"],
            summary.get("banner"),
            summary.get("banner_code"),
        )
        column = (
            f" · {summary['banner']} = {summary['banner_label']} ({summary['column']})" if summary.get("banner") else ""
        )
        title = f"Wave {key[0]} · {key[1]}{column} · {key[2]}: {summary['label'] or ''}"
        rows = by_question.get(key, [])
        is_mr = summary["kind"] == "multiple"
        columns = ["code", "label", "n", "weighted n", "% of respondents" if is_mr else "valid %", "CI"]
        if is_mr:
            columns.append("% of responses")
        lettered = bool(summary.get("column"))
        if lettered:
            columns.append("higher than")
        body = []
        for r in rows:
            ci = f"{_fmt(r['ci_low'])}–{_fmt(r['ci_high'])}" if r["ci_low"] is not None else ""
            line = [r["code"], r["label"], r["n"], _fmt(r["weighted_n"]), _fmt(r["percent"]), ci]
            if is_mr:
                line.append(_fmt(r["percent_of_responses"]))
            if lettered:
                line.append(r.get("sig_columns") or "")
            body.append(line)
        console.print(table(title, columns, body))
        console.print(_summary_line(summary), markup=False)
    if result.suppressed:
        console.print(
            table(
                "Withheld (small bases)",
                ["wave", "scope", "question", "withheld", "base", "reason"],
                [
                    (s["wave"], s["scope"], s["question"], s["withheld"], s["base_n"], s["reason"])
                    for s in result.suppressed
                ],
            )
        )


def _summary_line(s: dict[str, Any]) -> str:
    if s["suppressed"]:
        return f"  suppressed: {s['suppression_reason']}"
    parts = [f"  base {s['base_n']} (weighted {_fmt(s['base_weighted'])}, n_eff {_fmt(s['n_eff'])})"]
    if s["topbox"] is not None:
        parts.append(f"top-2 {_fmt(s['topbox'])}% [{_fmt(s['topbox_ci_low'])}–{_fmt(s['topbox_ci_high'])}]")
        parts.append(f"bottom-2 {_fmt(s['bottombox'])}%")
    if s["mean"] is not None:
        parts.append(
            f"mean {_fmt(s['mean'], 2)} [{_fmt(s['mean_ci_low'], 2)}–{_fmt(s['mean_ci_high'], 2)}] sd {_fmt(s['sd'], 2)}"
        )
    if s["benchmark_topbox"] is not None:
        parts.append(_comparison("the rest", s["topbox"], s["benchmark_topbox"], s["sig_topbox_vs_benchmark"]))
    if s["previous_topbox"] is not None:
        parts.append(_comparison("the previous wave", s["topbox"], s["previous_topbox"], s["sig_topbox_vs_previous"]))
    if s.get("topbox_sig_columns") or s.get("mean_sig_columns"):
        parts.append(
            f"higher than column(s): top-2 {s['topbox_sig_columns'] or '-'}, mean {s['mean_sig_columns'] or '-'}"
        )
    return "; ".join(parts)


def _comparison(other: str, own: float | None, theirs: float, verdict: str | None) -> str:
    """'vs the rest: top-2 68.6%, 5.2 percentage points lower here (significant)': the figure compared and the
    gap in points, so that '68.6% lower' can never be read as a relative difference."""
    text = f"vs {other}: top-2 {_fmt(theirs)}%"
    if own is None:
        return text
    gap = own - theirs
    direction = "higher" if gap > 0 else "lower" if gap < 0 else "the same"
    size = f"{_fmt(abs(gap))} percentage points {direction} here" if direction != "the same" else "the same here"
    return f"{text}, {size} ({'significant' if verdict else 'not significant'})"
