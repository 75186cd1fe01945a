"""Building one subscriber's e-mail: subject and body from Jinja2 templates in the subscriber's language,
the report PDF attached, every address checked before anything is sent."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import jinja2
from babel.dates import format_date

from ..config import EMAIL_RE, StudyConfig, Subscriber
from ..context import system_clock
from ..errors import ConfigError
from ..report.wording import benchmark_sentence, subscriber_in_sentence, typeset
from ..resources import templates_root

LOCALES = {"en": "en_CA", "fr": "fr_CA"}


@functools.lru_cache(maxsize=4)
def _environment(root: Path) -> jinja2.Environment:
    # Autoescape the HTML parts only: subscriber and study names go into markup there, and stay verbatim in text.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root / "email")),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_template(name: str, context: dict[str, object], root: Path | None = None) -> str:
    """Render ``templates/email/<name>``; a missing or broken template is a ConfigError naming it."""
    root = root or templates_root()
    try:
        return _environment(root).get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise ConfigError(
            f"{root / 'email' / name}: e-mail template not found",
            hint="reinstall wavetool, or restore the file from templates/email/",
        ) from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{root / 'email' / name}: e-mail template error: {exc}") from None


def parse_mailbox(text: str, where: str) -> tuple[str, str]:
    """``'Name <a@b.org>'`` → (display name, address); a ConfigError naming ``where`` if it is not one address."""
    if not text.strip():
        raise ConfigError(
            f"{where}: not set: the address the reports are sent from",
            hint='add from = "Research team <research@example.org>" under [delivery] in wavetool.toml',
        )
    if "\n" in text or "\r" in text:
        raise ConfigError(f"{where}: {text!r} contains a line break", hint="an address is one line")
    pairs = email.utils.getaddresses([text])
    if len(pairs) != 1 or not EMAIL_RE.match(pairs[0][1]):
        raise ConfigError(
            f"{where}: {text!r} is not a valid e-mail address",
            hint='write it as name@example.org or "Name <name@example.org>"',
        )
    return pairs[0]


def check_addresses(config: StudyConfig, subscriber: Subscriber) -> dict[str, list[str]]:
    """The subscriber's To/Cc/Bcc lists after checking each address; ConfigError for none or a bad one."""
    where = f"{config.path}: subscriber {subscriber.id}"
    if not subscriber.contacts:
        raise ConfigError(
            f"{where}: has no contacts to send the report to",
            hint=f'add contacts = ["name@example.org"] to the [[subscribers]] entry {subscriber.id!r}',
        )
    lists = {"to": list(subscriber.contacts), "cc": list(subscriber.cc), "bcc": list(subscriber.bcc)}
    for key, addresses in lists.items():
        for address in addresses:
            parse_mailbox(address, f"{where} {'contacts' if key == 'to' else key}")
    if subscriber.reply_to:
        parse_mailbox(subscriber.reply_to, f"{where} reply_to")
    return lists


XLSX_SUBTYPE = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def book_attachment_name(subscriber: Subscriber, wave: int, final: bool) -> str:
    """The data book's file name as the recipient sees it: the PDF's, ending .xlsx."""
    return attachment_name(subscriber, wave, final).removesuffix(".pdf") + ".xlsx"


def attachment_name(subscriber: Subscriber, wave: int, final: bool) -> str:
    """The PDF's file name as the recipient sees it, in the subscriber's language: ``ontario-wave-1.pdf``."""
    word = "vague" if subscriber.language == "fr" else "wave"
    suffix = "-final" if final else ""  # the same word in English and French
    return f"{subscriber.id}-{word}-{wave}{suffix}.pdf"


def _fieldwork(config: StudyConfig, wave: int, language: str) -> str:
    spec = config.waves[wave]
    if not (spec.fieldwork_start and spec.fieldwork_end):
        return ""
    locale = LOCALES[language]
    start = format_date(spec.fieldwork_start, format="long", locale=locale)
    end = format_date(spec.fieldwork_end, format="long", locale=locale)
    return f"{start} – {end}" if language == "en" else f"du {start} au {end}"


def _jurisdictions(config: StudyConfig, subscriber: Subscriber, language: str) -> str:
    names = [
        config.jurisdictions[c].name(language) if c in config.jurisdictions else c for c in subscriber.jurisdictions
    ]
    if len(names) == 1:
        return names[0]
    joiner = " et " if language == "fr" else " and "
    return ", ".join(names[:-1]) + joiner + names[-1]


@dataclass(frozen=True)
class Letter:
    """The words of one message: its subject, plain-text and HTML bodies."""

    subject: str
    text: str
    html: str


def compose(
    config: StudyConfig, subscriber: Subscriber, wave: int, *, final: bool, pages: int, attachment: str
) -> Letter:
    """Render the subject and bodies from the templates of the subscriber's language."""
    language = subscriber.language
    sender_name, sender_address = parse_mailbox(config.delivery.sender, f"{config.path}: delivery.from")
    spec = config.waves[wave]
    # Names go through the language's typography, as in the PDF (French spacing inside « » and before : ;).
    context: dict[str, object] = {
        "language": language,
        "study": typeset(config.name_fr if language == "fr" else config.name, language),
        "subscriber": typeset(subscriber.display_name(language), language),
        "subscriber_sentence": typeset(subscriber_in_sentence(subscriber, language), language),
        # Whether the config gives the name as it sits in a sentence ("for the Government of Ontario"); if not,
        # the templates word it so that a plain name needs no article ("report – Government of Ontario").
        "named": subscriber.in_sentence(language) is not None,
        # The benchmark's one definition: the very sentence the PDF prints.
        "benchmark_sentence": benchmark_sentence(config, subscriber, language),
        "subscriber_id": subscriber.id,
        "jurisdictions": _jurisdictions(config, subscriber, language),
        "wave": wave,
        "wave_label": typeset(spec.label_fr if language == "fr" else spec.label, language),
        "fieldwork": _fieldwork(config, wave, language),
        "final": final,
        "pages": pages,
        "attachment": attachment,
        "sender_name": sender_name or sender_address,
        "reply_to": subscriber.reply_to or config.delivery.reply_to,
    }
    # Runs of blanks (line breaks of the template) become one space; no-break spaces stay as they are.
    subject = re.sub(r"[ \t\r\n]+", " ", render_template(f"subject.{language}.txt", context)).strip()
    if not subject:
        raise ConfigError(f"templates/email/subject.{language}.txt renders an empty subject")
    context["subject"] = subject
    text = render_template(f"body.{language}.txt", context)
    html = render_template(f"body.{language}.html", context)
    return Letter(subject=subject, text=text, html=html)


def new_message_id(config: StudyConfig, subscriber: Subscriber, wave: int) -> str:
    """A unique Message-ID in the sender's domain; short, so the header is never folded."""
    _name, address = parse_mailbox(config.delivery.sender, f"{config.path}: delivery.from")
    domain = address.rsplit("@", 1)[1]
    return f"<{secrets.token_hex(10)}.w{wave}.wavetool@{domain}>"


def build_message(
    config: StudyConfig,
    subscriber: Subscriber,
    wave: int,
    *,
    letter: Letter,
    pdf: bytes,
    attachment: str,
    report_sha256: str,
    message_id: str,
    date: dt.datetime | None = None,
    book: bytes | None = None,
    book_attachment: str | None = None,
    book_sha256: str | None = None,
) -> EmailMessage:
    """One RFC 5322 message: To the contacts, Cc/Reply-To from the config, text + HTML, the PDF attached.

    Bcc is not a header here: those addresses travel only in the SMTP envelope (see ``envelope_recipients``).
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = config.delivery.sender
    message["To"] = ", ".join(subscriber.contacts)
    if subscriber.cc:
        message["Cc"] = ", ".join(subscriber.cc)
    reply_to = subscriber.reply_to or config.delivery.reply_to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = letter.subject
    message["Date"] = email.utils.format_datetime(date or system_clock())
    message["Message-ID"] = message_id
    message["Content-Language"] = {"en": "en-CA", "fr": "fr-CA"}[subscriber.language]
    # Lets a recipient's mail rules (and a reviewer of the outbox) match the message to its report.
    message["X-Wavetool-Subscriber"] = subscriber.id
    message["X-Wavetool-Wave"] = str(wave)
    message["X-Wavetool-Report-SHA256"] = report_sha256
    message.set_content(letter.text, subtype="plain", charset="utf-8")
    message.add_alternative(letter.html, subtype="html", charset="utf-8")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=attachment)
    if book is not None:  # the data book ([delivery] attach), in the same message
        message["X-Wavetool-Book-SHA256"] = book_sha256 or ""
        message.add_attachment(book, maintype="application", subtype=XLSX_SUBTYPE, filename=book_attachment)
    return message


def envelope_recipients(subscriber: Subscriber) -> list[str]:
    """Every address the message goes to (To + Cc + Bcc), each once, in that order."""
    seen: dict[str, None] = {}
    for address in (*subscriber.contacts, *subscriber.cc, *subscriber.bcc):
        seen.setdefault(address, None)
    return list(seen)


def envelope_sender(config: StudyConfig) -> str:
    """The bare address of ``delivery.from`` (the SMTP MAIL FROM)."""
    return parse_mailbox(config.delivery.sender, f"{config.path}: delivery.from")[1]


def safe_file_part(text: str) -> str:
    """``text`` reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
