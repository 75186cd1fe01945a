"""E-mailing each subscriber's report exactly once.

``send_reports`` checks everything first (reports on disk match the manifest, every subscriber has valid
addresses, the templates render, the SMTP password is available) and sends nothing if anything is wrong.
Then, holding the send lock (``.wavetool-send.lock``, never the study database's lock), it resolves rows a
crashed run left ``sending``, decides per subscriber from the delivery log what still needs sending, and
sends over one transport connection, recording each message before and after it is handed over.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import StudyConfig, Subscriber
from ..context import QUIET, Context
from ..databook import book_path
from ..errors import DataError, ExitCode, InputMissingError, WavetoolError
from ..report.manifest import MANIFEST, report_folder
from ..report.manifest import read_manifest as read_report_manifest
from ..store import study_lock
from .log import SEND_LOCK_NAME, Delivery, DeliveryLog, open_log, read_log
from .message import (
    Letter,
    attachment_name,
    book_attachment_name,
    build_message,
    check_addresses,
    compose,
    envelope_recipients,
    envelope_sender,
    new_message_id,
)
from .transports import (
    Envelope,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UncertainFailure,
    make_transport,
)


def reports_dir(config: StudyConfig, wave: int) -> Path:
    """Where the PDFs and manifest of ``wave`` are: ``<report.output_dir>/wave-N``."""
    return report_folder(config, wave)


def read_manifest(config: StudyConfig, wave: int) -> dict[str, Any]:
    """The report manifest of ``wave``; InputMissingError if the reports were never rendered, DataError
    naming the file if it is damaged."""
    return read_report_manifest(reports_dir(config, wave), wave)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Planned:
    """One subscriber's message, checked and ready except for the PDF bytes (read again at send time)."""

    subscriber: Subscriber
    pdf: Path
    sha256: str
    pages: int
    final: bool
    attachment: str
    letter: Letter
    recipients: dict[str, list[str]]
    book: Path | None = None  # the data book sent beside the PDF ([delivery] attach = ["pdf", "xlsx"])
    book_sha256: str | None = None
    book_attachment: str | None = None


@dataclass
class SendResult:
    """What ``send_reports`` did, per subscriber; ``exit_code`` says whether everything was delivered."""

    wave: int
    transport: str
    dry_run: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)
    would_send: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    uncertain: list[dict[str, Any]] = field(default_factory=list)
    recovered: list[dict[str, Any]] = field(default_factory=list)

    @property
    def refused(self) -> list[dict[str, Any]]:
        """Messages accepted for some recipients while the server refused others."""
        return [s for s in self.sent if s.get("refused")]

    @property
    def exit_code(self) -> int:
        """80 if anything failed for good (or may not have arrived), 75 if only deferred, else 0."""
        permanent = [f for f in self.failed if not f.get("temporary")]
        if permanent or self.uncertain or self.refused:
            return int(ExitCode.DELIVERY_PARTIAL)
        if self.failed:
            return int(ExitCode.TEMPFAIL)
        return int(ExitCode.OK)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["exit_code"] = self.exit_code
        return data


def _select(config: StudyConfig, subscribers: Sequence[str] | None) -> list[Subscriber]:
    if not subscribers:
        return list(config.subscribers.values())
    return [config.subscriber(s) for s in dict.fromkeys(subscribers)]


def plan_messages(config: StudyConfig, wave: int, subscribers: Sequence[Subscriber]) -> list[Planned]:
    """Check every selected subscriber's report and addresses, and render its words; raise before any send."""
    manifest = read_manifest(config, wave)
    folder = reports_dir(config, wave)
    reports = manifest["reports"]
    default_final = bool(manifest.get("final", False))
    problems: list[WavetoolError] = []
    plans = []
    for sub in subscribers:
        try:
            recipients = check_addresses(config, sub)
            entry = reports.get(sub.id)
            if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
                raise InputMissingError(
                    f"{folder / MANIFEST}: no report for subscriber {sub.id} in wave {wave}",
                    hint=f"render it: `wavetool report --wave {wave} --subscriber {sub.id}`",
                )
            pdf = folder / entry["file"]
            if not pdf.is_file():
                raise InputMissingError(
                    f"{pdf}: report PDF for subscriber {sub.id} is missing",
                    hint=f"re-render it: `wavetool report --wave {wave} --subscriber {sub.id}`",
                )
            actual = sha256_bytes(pdf.read_bytes())
            if actual != entry["sha256"]:
                raise DataError(
                    f"{pdf}: the PDF changed after it was rendered (sha256 {actual[:12]}, manifest says {str(entry['sha256'])[:12]})",
                    hint=f"re-render it: `wavetool report --wave {wave} --subscriber {sub.id}`",
                )
            # Each entry says whether its PDF is the final report: one folder may hold both kinds when only
            # some subscribers were rendered with --final.
            final = bool(entry.get("final", default_final))
            name = attachment_name(sub, wave, final)
            pages = int(entry.get("pages") or 0)
            letter = compose(config, sub, wave, final=final, pages=pages, attachment=name)
            book = book_sha = book_name = None
            if "xlsx" in config.delivery.attach:
                book = book_path(config, wave, sub.id)
                if not book.is_file():
                    raise InputMissingError(
                        f"{book}: data book for subscriber {sub.id} is missing ([delivery] attach lists xlsx)",
                        hint=f"write it: `wavetool run --wave {wave}` (or remove xlsx from [delivery] attach)",
                    )
                book_sha, book_name = sha256_bytes(book.read_bytes()), book_attachment_name(sub, wave, final)
            plans.append(Planned(sub, pdf, actual, pages, final, name, letter, recipients, book, book_sha, book_name))
        except WavetoolError as exc:
            problems.append(exc)
    if problems:
        first = problems[0]
        more = (
            f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}; nothing was sent)"
            if len(problems) > 1
            else " (nothing was sent)"
        )
        first.message = first.message + more
        raise first
    return plans


def decide(plan: Planned, history: list[Delivery], resend: bool) -> tuple[str, str]:
    """('send', why) or ('skip', why) from this subscriber's delivery history for the wave (oldest first)."""
    if resend:
        return "send", "resend requested"
    sent = [d for d in history if d.status == "sent"]

    def same(d: Delivery) -> bool:  # the same PDF, and the same data book (or none) beside it
        return d.report_sha256 == plan.sha256 and (d.book_sha256 or None) == plan.book_sha256

    if any(same(d) for d in sent):
        when = next(d.sent_at for d in reversed(sent) if same(d))
        return "skip", f"already sent {when}"
    last_sent_id = sent[-1].id if sent else 0
    open_rows = [d for d in history if d.id > last_sent_id and d.status in ("uncertain", "sending")]
    if open_rows:
        d = open_rows[-1]
        return "skip", (
            f"uncertain: an earlier run was cut off while handing over Message-ID {d.message_id}"
            f" ({d.created_at}); check the mail server's log, then pass --confirm {d.message_id} if it arrived"
            " or --resend to send it again"
        )
    if sent and sent[-1].report_sha256 == plan.sha256:
        return "skip", (
            f"data book changed since the report was sent {sent[-1].sent_at} (sha256"
            f" {(sent[-1].book_sha256 or 'none')[:12]} → {(plan.book_sha256 or 'none')[:12]}); pass --resend to send it"
        )
    if sent:
        return "skip", (
            f"report changed since it was sent {sent[-1].sent_at} (sha256 {sent[-1].report_sha256[:12]} →"
            f" {plan.sha256[:12]}); pass --resend to send the new version"
        )
    return "send", "retry after failure" if history else "new"


def _recover(log: DeliveryLog, transport: Transport) -> list[dict[str, Any]]:
    """Resolve rows a crashed run left 'sending': confirmed, never handed over, or uncertain."""
    recovered = []
    for row in log.interrupted():
        confirmed = transport.confirm(row.destination) if row.transport == transport.name else None
        if confirmed is True:
            log.finish(row.id, "sent", error="confirmed after an interrupted run")
            status = "sent"
        elif confirmed is False:
            log.finish(row.id, "failed", error="interrupted before the message was handed over", temporary=True)
            status = "failed"
        else:
            log.finish(row.id, "uncertain", error="interrupted while the message was being handed over")
            status = "uncertain"
        recovered.append(
            {"subscriber": row.subscriber, "wave": row.wave, "message_id": row.message_id, "status": status}
        )
    return recovered


def send_reports(
    config: StudyConfig,
    wave: int,
    *,
    subscribers: Sequence[str] | None = None,
    dry_run: bool = False,
    resend: bool = False,
    limit: int | None = None,
    transport: Transport | None = None,
    backoff: float = 1.0,
    ctx: Context = QUIET,
) -> SendResult:
    """E-mail each selected subscriber's report of ``wave`` unless the delivery log says it was sent.

    ``backoff`` is the first wait (seconds) before retrying a temporary failure; it doubles each retry.
    Steps are reported through ``ctx.progress``; the log's and the messages' times come from ``ctx.clock``.
    """
    config.wave(wave)
    say = ctx.progress.step
    chosen = _select(config, subscribers)
    say("checking reports and addresses")
    plans = plan_messages(config, wave, chosen)
    if transport is None and not dry_run:
        transport = make_transport(config)  # a missing SMTP password is an error now, before anything is sent
    result = SendResult(
        wave=wave, transport=transport.name if transport else config.delivery.transport, dry_run=dry_run
    )
    purpose = f"wavetool send --wave {wave}"
    with (
        study_lock(config.root, timeout=config.pipeline.lock_timeout, purpose=purpose, name=SEND_LOCK_NAME),
        open_log(config.root, ctx.clock) as log,
    ):
        if not dry_run and transport is not None:
            result.recovered = _recover(log, transport)
        history: dict[str, list[Delivery]] = {}
        for row in log.rows(wave):
            history.setdefault(row.subscriber, []).append(row)
        queue = []
        for plan in plans:
            action, why = decide(plan, history.get(plan.subscriber.id, []), resend)
            if action == "skip":
                result.skipped.append({"subscriber": plan.subscriber.id, "reason": why, "report_sha256": plan.sha256})
            elif limit is not None and len(queue) >= limit:
                result.skipped.append(
                    {"subscriber": plan.subscriber.id, "reason": f"over --limit {limit}", "report_sha256": plan.sha256}
                )
            else:
                queue.append(plan)
        if dry_run:
            result.would_send = [_describe(p) for p in queue]
            return result
        if not queue:
            return result
        assert transport is not None
        say(f"connecting ({transport.name})")
        transport.open()
        try:
            _send_queue(config, wave, queue, transport, log, result, ctx, backoff)
        finally:
            transport.close()
    return result


CONFIRMED_NOTE = "confirmed delivered by the coordinator (found in the mail server's log)"


def confirm_delivered(
    config: StudyConfig, wave: int, message_ids: Sequence[str], ctx: Context = QUIET
) -> list[dict[str, Any]]:
    """Record uncertain messages of ``wave`` as delivered, once the coordinator has found them in the mail
    server's log; they are then never sent again (use ``--resend`` instead for one that did not arrive).

    All or nothing: every Message-ID (with or without its angle brackets) must name an uncertain message of
    the wave, or nothing changes. Returns the confirmed messages."""
    config.wave(wave)
    wanted = [m.strip().strip("<>").strip() for m in message_ids]
    purpose = f"wavetool send --wave {wave} --confirm"
    with (
        study_lock(config.root, timeout=config.pipeline.lock_timeout, purpose=purpose, name=SEND_LOCK_NAME),
        open_log(config.root, ctx.clock) as log,
    ):
        by_id = {row.message_id.strip("<>"): row for row in log.rows(wave)}
        unknown = [m for m in wanted if m not in by_id]
        if unknown:
            raise InputMissingError(
                f"wave {wave}: no message with Message-ID {', '.join(f'<{m}>' for m in unknown)} in the delivery log",
                hint=f"copy the Message-ID from the `uncertain` line of `wavetool send --wave {wave}`"
                " (or `wavetool status --json`)",
            )
        settled = [by_id[m] for m in wanted if by_id[m].status not in ("uncertain", "sending")]
        if settled:
            listed = ", ".join(f"{r.subscriber} <{r.message_id.strip('<>')}> is {r.status}" for r in settled)
            raise DataError(
                f"wave {wave}: only uncertain messages can be confirmed: {listed}",
                hint=f"a failed message is sent again by `wavetool send --wave {wave}`; nothing to do for a sent one",
            )
        rows = list({by_id[m].id: by_id[m] for m in wanted}.values())
        log.confirm([r.id for r in rows], CONFIRMED_NOTE)
    return [
        {"subscriber": r.subscriber, "wave": r.wave, "message_id": r.message_id, "was": r.status, "since": r.updated_at}
        for r in rows
    ]


def _describe(plan: Planned) -> dict[str, Any]:
    return {
        "subscriber": plan.subscriber.id,
        "recipients": plan.recipients,
        "subject": plan.letter.subject,
        "attachment": plan.attachment,
        "report": str(plan.pdf),
        "report_sha256": plan.sha256,
        **({"book": str(plan.book), "book_sha256": plan.book_sha256} if plan.book is not None else {}),
    }


def _send_queue(
    config: StudyConfig,
    wave: int,
    queue: list[Planned],
    transport: Transport,
    log: DeliveryLog,
    result: SendResult,
    ctx: Context,
    backoff: float,
) -> None:
    say = ctx.progress.step
    interval = 1.0 / config.delivery.rate_limit if config.delivery.rate_limit else 0.0
    last_start = 0.0
    for index, plan in enumerate(queue):
        sub = plan.subscriber
        if interval:
            time.sleep(max(0.0, last_start + interval - time.monotonic()))
        last_start = time.monotonic()
        say(f"sending {index + 1}/{len(queue)}: {sub.id}")
        pdf = plan.pdf.read_bytes()
        if sha256_bytes(pdf) != plan.sha256:  # changed on disk since the checks: never send an unverified file
            result.failed.append(
                {"subscriber": sub.id, "error": f"{plan.pdf}: changed while sending; re-run", "temporary": True}
            )
            continue
        book = plan.book.read_bytes() if plan.book is not None else None
        if book is not None and sha256_bytes(book) != plan.book_sha256:
            result.failed.append(
                {"subscriber": sub.id, "error": f"{plan.book}: changed while sending; re-run", "temporary": True}
            )
            continue
        message_id = new_message_id(config, sub, wave)
        message = build_message(
            config,
            sub,
            wave,
            letter=plan.letter,
            pdf=pdf,
            attachment=plan.attachment,
            report_sha256=plan.sha256,
            message_id=message_id,
            book=book,
            book_attachment=plan.book_attachment,
            book_sha256=plan.book_sha256,
            date=ctx.clock(),
        )
        envelope = Envelope(
            subscriber=sub.id,
            wave=wave,
            message=message,
            sender=envelope_sender(config),
            recipients=envelope_recipients(sub),
            bcc=list(sub.bcc),
            message_id=message_id,
        )
        destination = transport.destination(envelope)
        row = log.begin(
            subscriber=sub.id,
            wave=wave,
            report_sha256=plan.sha256,
            recipients=plan.recipients,
            message_id=message_id,
            transport=transport.name,
            destination=destination,
            book_sha256=plan.book_sha256,
        )
        outcome = _deliver_one(envelope, transport, log, row, config.delivery.max_retries, backoff)
        entry = {
            "subscriber": sub.id,
            "message_id": message_id,
            "destination": outcome.get("destination", destination),
            "recipients": plan.recipients,
            "report_sha256": plan.sha256,
            **({"book_sha256": plan.book_sha256} if plan.book is not None else {}),
            **{k: v for k, v in outcome.items() if k != "destination"},
        }
        bucket = {"sent": result.sent, "failed": result.failed, "uncertain": result.uncertain}[outcome["status"]]
        bucket.append(entry)
        if outcome["status"] == "failed" and outcome.get("connection"):
            # The server is gone: leave the rest for the next run rather than burning retries on each.
            for rest in queue[index + 1 :]:
                result.failed.append(
                    {
                        "subscriber": rest.subscriber.id,
                        "error": f"not attempted: {outcome['error']}",
                        "temporary": True,
                        "report_sha256": rest.sha256,
                    }
                )
            break


def _deliver_one(
    envelope: Envelope, transport: Transport, log: DeliveryLog, row: int, max_retries: int, backoff: float
) -> dict[str, Any]:
    """Hand one message over, retrying temporary failures; the log row ends sent, failed or uncertain."""
    attempt = 0
    while True:
        tries = attempt + 1
        try:
            handed = transport.send(envelope)
        except TemporaryFailure as failure:
            if attempt < max_retries:
                time.sleep(backoff * (2**attempt))
                attempt += 1
                continue
            log.finish(row, "failed", error=failure.text, temporary=True, attempts=tries)
            return {
                "status": "failed",
                "error": failure.text,
                "temporary": True,
                "attempts": tries,
                "connection": failure.connection,
            }
        except PermanentFailure as failure:
            log.finish(row, "failed", error=failure.text, attempts=tries)
            return {"status": "failed", "error": failure.text, "temporary": False, "attempts": tries}
        except UncertainFailure as failure:
            log.finish(row, "uncertain", error=failure.text, attempts=tries)
            return {"status": "uncertain", "error": failure.text, "attempts": tries}
        except BaseException:
            # Ctrl-C or a bug mid-message: record what we know before the interrupt propagates.
            known = transport.interrupted(log_destination(log, row))
            if known is True:
                log.finish(row, "sent", error="interrupted after the message was handed over", attempts=tries)
            elif known is False:
                log.finish(
                    row,
                    "failed",
                    error="interrupted before the message was handed over",
                    temporary=True,
                    attempts=tries,
                )
            else:
                log.finish(
                    row, "uncertain", error="interrupted while the message was being handed over", attempts=tries
                )
            raise
        refused = "; ".join(f"{a}: {w}" for a, w in handed.refused.items()) or None
        log.finish(
            row,
            "sent",
            error=f"refused recipients: {refused}" if refused else None,
            destination=handed.destination,
            attempts=tries,
        )
        return {"status": "sent", "destination": handed.destination, "attempts": tries, "refused": handed.refused}


def log_destination(log: DeliveryLog, row: int) -> str:
    found = log.con.execute("SELECT destination FROM deliveries WHERE id = ?", [row]).fetchall()
    return found[0][0] if found and found[0][0] else ""


def delivery_status(config: StudyConfig) -> list[dict[str, Any]]:
    """Per wave and status, how many subscribers' latest message is there (for ``wavetool status``)."""

    log = read_log(config.root)
    if log is None:
        return []
    try:
        return log.summary()
    finally:
        log.close()


__all__ = ["SendResult", "delivery_status", "read_manifest", "reports_dir", "send_reports"]
