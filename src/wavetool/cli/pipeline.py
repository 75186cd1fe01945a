"""`wavetool run`: the cron pipeline."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import typer
from rich.console import Console

from ..pipeline import RunSummary, run_wave
from .app import app, ctx_obj
from .deliver import print_problems
from .output import print_json


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """cron and systemd stop jobs with SIGTERM: treat it like Ctrl-C so the run records where it stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave to process."),
    final: bool = typer.Option(False, "--final", help="Render the final reports (the study's last wave)."),
    no_send: bool = typer.Option(False, "--no-send", help="Stop after rendering; send nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> int:
    """Import the inbox, merge custom questions, check drift, tabulate, render and send: only what is new.

    Meant for crontab: a second run waits for the first (\\[pipeline] lock_timeout), then exits 75. Every run is logged in wavetool.log in the study folder.

    Example: wavetool --study demo run --wave 1
    """
    obj = ctx_obj(ctx)
    config, console = obj.config, obj.out
    with _sigterm_as_interrupt(), obj.run("wavetool run", lines=True, quiet=json_out) as run:
        summary = run_wave(config, wave, final=final, send=not no_send, ctx=run)
    if json_out:
        print_json(summary.to_dict())
    else:
        _print_summary(console, summary)
    print_problems(wave, summary.failed, summary.uncertain, [x for x in summary.sent if x.get("refused")])
    return summary.exit_code


def _print_summary(console: Console, s: RunSummary) -> None:
    console.print(
        f"wave {s.wave}: import {s.imported.get('status', '-')}, {len(s.merged)} custom files"
        f" ({sum(m['status'] != 'unchanged' for m in s.merged)} new), tables {s.tables.get('file', '-')},"
        f" {len(s.rendered)} rendered, {len(s.reused)} unchanged, {len(s.sent)} sent, {len(s.skipped)} skipped,"
        f" {len(s.failed)} failed, {len(s.uncertain)} uncertain (run {s.run_id}, exit {s.exit_code})",
        markup=False,
    )
