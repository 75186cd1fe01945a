"""`wavetool send`: e-mail each report exactly once."""

from __future__ import annotations

import typer
from rich.console import Console

from ..deliver import SendResult, confirm_delivered, send_reports
from .app import app, ctx_obj
from .output import make_console, print_json


@app.command()
def send(
    ctx: typer.Context,
    wave: int = typer.Option(..., "--wave", "-w", min=1, help="Wave whose reports to send."),
    subscriber: list[str] = typer.Option(None, "--subscriber", "-s", help="Only this subscriber (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send nothing."),
    resend: bool = typer.Option(False, "--resend", help="Send again even if sent, changed or uncertain."),
    limit: int = typer.Option(None, "--limit", min=1, help="Send at most this many messages in this run."),
    confirm: list[str] = typer.Option(
        None,
        "--confirm",
        metavar="MESSAGE-ID",
        help="Record this uncertain message as delivered (you found it in the mail server's log); sends nothing. "
        "Repeatable.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> int:
    """E-mail each subscriber's report of a wave, exactly once (outbox or SMTP, from the config).

    Exit 0 when everything was delivered, 80 when some failed, 75 when deferred, 69 when the server is unreachable, 77 when it refused the login.

    A message cut off mid-delivery is "uncertain" and never sent again on its own: look for its Message-ID in the
    mail server's log, then either --confirm it (it arrived) or --resend (it did not).

    Example: wavetool --study demo send --wave 1 --dry-run

    Example: wavetool --study demo send --wave 1 --confirm '<3f9a0c1e2b4d6f8a1c3e.w1.wavetool@example.ca>'
    """
    obj = ctx_obj(ctx)
    config, console = obj.config, obj.out
    config.require_name()
    if confirm:
        if resend or dry_run or limit is not None:
            raise typer.BadParameter("--confirm only records deliveries; use it alone", param_hint="--confirm")
        confirmed = confirm_delivered(config, wave, confirm, ctx=obj.context())
        if json_out:
            print_json({"wave": wave, "confirmed": confirmed})
        for c in [] if json_out else confirmed:
            console.print(
                f"wave {wave}: {c['subscriber']}: Message-ID {c['message_id']} recorded as delivered"
                f" (was {c['was']} since {c['since']}); it will not be sent again",
                markup=False,
            )
        return 0
    with obj.run(f"Sending wave {wave}", quiet=json_out) as run:
        result = send_reports(
            config, wave, subscribers=subscriber or None, dry_run=dry_run, resend=resend, limit=limit, ctx=run
        )
    if json_out:
        print_json(result.to_dict())
    else:
        print_send_result(console, result)
    print_problems(wave, result.failed, result.uncertain, result.refused)
    return result.exit_code


def print_problems(wave: int, failed: list[dict], uncertain: list[dict], refused: list[dict]) -> None:
    """One line on stderr per message that did not (surely) arrive, so cron mails them even when stdout is discarded."""
    err = make_console(stderr=True)
    for f in failed:
        kind = "deferred" if f.get("temporary") else "failed"
        err.print(f"Error: wave {wave}: {f['subscriber']}: {kind}: {f['error']}", markup=False)
    for u in uncertain:
        err.print(
            f"Error: wave {wave}: {u['subscriber']}: uncertain (Message-ID {u['message_id']}): {u['error']};"
            f" check the mail server's log, then `wavetool send --wave {wave} --confirm '{u['message_id']}'` if it"
            f" arrived, or `wavetool send --wave {wave} --subscriber {u['subscriber']} --resend` if it did not",
            markup=False,
        )
    for r in refused:
        for address, words in r["refused"].items():
            err.print(f"Error: wave {wave}: {r['subscriber']}: recipient {address} refused: {words}", markup=False)


def print_send_result(console: Console, result: SendResult) -> None:
    """One plain line per subscriber: sent, would send, skipped (why), failed (the server's words)."""
    w = result.wave
    for r in result.recovered:
        console.print(
            f"wave {w}: {r['subscriber']}: interrupted earlier run resolved as {r['status']} ({r['message_id']})",
            markup=False,
        )
    for s in result.would_send:
        to = ", ".join(s["recipients"]["to"] + s["recipients"]["cc"] + s["recipients"]["bcc"])
        console.print(
            f"wave {w}: {s['subscriber']}: would send {s['attachment']} to {to}: {s['subject']}", markup=False
        )
    for s in result.sent:
        to = ", ".join(s["recipients"]["to"] + s["recipients"]["cc"] + s["recipients"]["bcc"])
        console.print(
            f"wave {w}: {s['subscriber']}: sent to {to} via {result.transport} ({s['destination']})", markup=False
        )
        for address, words in (s.get("refused") or {}).items():
            console.print(f"wave {w}: {s['subscriber']}: refused recipient {address}: {words}", markup=False)
    for s in result.skipped:
        console.print(f"wave {w}: {s['subscriber']}: skipped, {s['reason']}", markup=False)
    for s in result.uncertain:
        console.print(
            f"wave {w}: {s['subscriber']}: UNCERTAIN, {s['error']} (Message-ID {s['message_id']});"
            f" not re-sent without --resend",
            markup=False,
        )
    for s in result.failed:
        kind = "deferred" if s.get("temporary") else "FAILED"
        console.print(f"wave {w}: {s['subscriber']}: {kind}, {s['error']}", markup=False)
    if result.dry_run:
        console.print(f"wave {w}: dry run, {len(result.would_send)} would be sent, nothing was sent", markup=False)
    else:
        console.print(
            f"wave {w}: {len(result.sent)} sent, {len(result.skipped)} skipped, {len(result.failed)} failed,"
            f" {len(result.uncertain)} uncertain",
            markup=False,
        )
