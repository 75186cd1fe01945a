"""How a message leaves: the outbox (``.eml`` files, the default) or SMTP over one reused connection.

A transport makes one attempt per ``send`` call and classifies what went wrong, so the sending loop can
decide: ``TemporaryFailure`` (4xx, dropped connection, timeout before the message was handed over) is
retried with backoff, ``PermanentFailure`` (5xx, bad recipient) is recorded with the server's words, and
``UncertainFailure`` (the connection died after the whole message was sent but before the server's
answer) is never retried automatically, because the server may already have accepted it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

from ..config import SmtpConfig, StudyConfig
from ..errors import ConfigError, OutputError, SmtpAuthError, SmtpUnavailableError
from ..fsutil import write_atomic

CRLF = b"\r\n"


class TemporaryFailure(Exception):
    """Not delivered, worth retrying: a 4xx answer, a refused or dropped connection, a timeout."""

    def __init__(self, text: str, connection: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.connection = connection  # the server could not be reached at all


class PermanentFailure(Exception):
    """Not delivered and retrying will not help: a 5xx answer, every recipient refused."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class UncertainFailure(Exception):
    """The message was sent but the server's answer never came: it may or may not have been accepted."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Envelope:
    """A message ready to go, with what the envelope needs that the headers do not say."""

    subscriber: str
    wave: int
    message: EmailMessage
    sender: str
    recipients: list[str]
    bcc: list[str]
    message_id: str


@dataclass
class Handed:
    """The transport accepted the message (the server said 250, or the .eml file is in place)."""

    destination: str
    refused: dict[str, str] = field(default_factory=dict)  # recipients the server refused while accepting others


class Transport(Protocol):
    name: str

    def open(self) -> None: ...
    def destination(self, envelope: Envelope) -> str: ...
    def send(self, envelope: Envelope) -> Handed: ...
    def confirm(self, destination: str | None) -> bool | None: ...
    def interrupted(self, destination: str) -> bool | None: ...
    def close(self) -> None: ...


class OutboxTransport:
    """Writes each message as an RFC 5322 ``.eml`` file (atomically) that any mail client opens."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".wavetool-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(
                f"{self.folder}: cannot write to the outbox: {exc.strerror}",
                hint="check [delivery] outbox_dir and the folder's permissions",
            ) from None

    def destination(self, envelope: Envelope) -> str:
        token = hashlib.sha256(envelope.message_id.encode()).hexdigest()[:10]
        return str(self.folder / f"wave-{envelope.wave}-{envelope.subscriber}-{token}.eml")

    def send(self, envelope: Envelope) -> Handed:
        path = Path(self.destination(envelope))
        draft = _copy(envelope.message)
        if envelope.bcc:
            draft["Bcc"] = ", ".join(envelope.bcc)  # a draft keeps its Bcc; the mail client strips it when sending
        draft["X-Unsent"] = "1"  # opens as a ready-to-send draft in Outlook and others
        data = draft.as_bytes(policy=SMTP)
        try:
            write_atomic(path, data, sync_dir=True)  # the file appears whole or not at all
        except OSError as exc:
            raise PermanentFailure(f"{path}: cannot write: {exc.strerror}") from None
        return Handed(destination=str(path))

    def confirm(self, destination: str | None) -> bool | None:
        """After a crash: the file exists (delivered) or not (never written); atomic rename leaves no third case."""
        return bool(destination) and Path(destination).exists()

    def interrupted(self, destination: str) -> bool | None:
        return self.confirm(destination)

    def close(self) -> None:
        pass


def _copy(message: EmailMessage) -> EmailMessage:

    return message_from_bytes(message.as_bytes(policy=SMTP), _class=EmailMessage, policy=SMTP)


def _words(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"


def _raise_for(code: int, reply: bytes | str, stage: str) -> None:
    words = f"{stage}: {_words(code, reply)}"
    if 400 <= code < 500:
        raise TemporaryFailure(words)
    raise PermanentFailure(words)


class SmtpTransport:
    """SMTP with one connection for the whole run: STARTTLS, implicit TLS or plain; login if a user is set."""

    name = "smtp"

    def __init__(
        self, settings: SmtpConfig, *, password: str | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings = settings
        self._password = password
        self.ssl_context = ssl_context
        self.conn: smtplib.SMTP | None = None
        self._data_sent = False

    @classmethod
    def from_config(cls, config: StudyConfig, ssl_context: ssl.SSLContext | None = None) -> SmtpTransport:
        """The transport of ``[delivery.smtp]``; the password comes only from the variable ``password_env`` names."""
        settings = config.delivery.smtp
        if settings is None:
            raise ConfigError(
                f"{config.path}: delivery.smtp: is required for the smtp transport",
                hint="add a [delivery.smtp] table with host and port",
            )
        password = None
        if settings.user:
            if not settings.password_env:
                raise ConfigError(
                    f"{config.path}: delivery.smtp.password_env: is required when user is set",
                    hint='name an environment variable that holds the password, e.g. password_env = "WAVETOOL_SMTP_PASSWORD"',
                )
            password = os.environ.get(settings.password_env)
            if not password:
                raise ConfigError(
                    f"environment variable {settings.password_env} is not set (the SMTP password for {settings.user})",
                    hint=f"export {settings.password_env}=... before running (it is never stored or logged)",
                )
        return cls(settings, password=password, ssl_context=ssl_context)

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def destination(self, envelope: Envelope) -> str:
        return self.where

    def _context(self) -> ssl.SSLContext:
        # The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR are honoured), hostname checked.
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise SmtpUnavailableError(
                        f"mail server {self.where} does not offer STARTTLS",
                        hint='set [delivery.smtp] security = "tls" for implicit TLS (port 465), or "none" for a local relay',
                    )
                conn.starttls(context=self._context())
                conn.ehlo()
            if s.user:
                conn.login(s.user, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(conn)
            raise SmtpAuthError(
                f"mail server {self.where} refused the login for {s.user}: {_words(exc.smtp_code, exc.smtp_error)}",
                hint=f"check [delivery.smtp] user and the password in ${s.password_env}",
            ) from None
        except smtplib.SMTPNotSupportedError:
            _quietly_close(conn)
            raise SmtpAuthError(
                f"mail server {self.where} does not accept a login (no AUTH)",
                hint="remove [delivery.smtp] user, or use the server's submission port",
            ) from None
        except ssl.SSLError as exc:
            _quietly_close(conn)
            raise SmtpUnavailableError(
                f"TLS with mail server {self.where} failed: {exc.reason or exc}",
                hint="check security/port; a private CA can be trusted with SSL_CERT_FILE=ca.pem",
            ) from None
        except SmtpUnavailableError:
            _quietly_close(conn)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            _quietly_close(conn)
            raise SmtpUnavailableError(
                f"cannot reach mail server {self.where}: {exc}",
                hint="check [delivery.smtp] host and port, and that the server is up",
            ) from None
        return conn

    def open(self) -> None:
        """Connect (and log in) once; raises SmtpUnavailableError (69) or SmtpAuthError (77)."""
        self.conn = self._connect()

    def send(self, envelope: Envelope) -> Handed:
        self._data_sent = False
        if self.conn is None:  # dropped earlier in this run: one reconnect per attempt
            try:
                self.conn = self._connect()
            except SmtpUnavailableError as exc:
                raise TemporaryFailure(exc.message, connection=True) from None
        conn = self.conn
        try:
            code, reply = conn.mail(envelope.sender)
            if code != 250:
                conn.rset()
                _raise_for(code, reply, "MAIL FROM")
            refused: dict[str, str] = {}
            accepted = []
            for address in envelope.recipients:
                code, reply = conn.rcpt(address)
                if code in (250, 251):
                    accepted.append(address)
                else:
                    refused[address] = _words(code, reply)
            if not accepted:
                conn.rset()
                words = "; ".join(f"{a}: {w}" for a, w in refused.items())
                if any(w.startswith("4") for w in refused.values()):
                    raise TemporaryFailure(f"RCPT TO: {words}")
                raise PermanentFailure(f"RCPT TO: {words}")
            code, reply = conn.docmd("DATA")
            if code != 354:
                conn.rset()
                _raise_for(code, reply, "DATA")
        except (TemporaryFailure, PermanentFailure):
            raise
        except smtplib.SMTPException as exc:  # includes a dropped connection before the message was handed over
            self._drop()
            raise TemporaryFailure(f"connection to {self.where} lost before the message was sent: {exc}") from None
        except OSError as exc:
            self._drop()
            raise TemporaryFailure(f"connection to {self.where} failed before the message was sent: {exc}") from None

        payload = _dot_stuffed(envelope.message)
        self._data_sent = True  # from here on the server may accept the message at any moment
        try:
            conn.send(payload)
        except (smtplib.SMTPException, OSError) as exc:
            # The socket refused part of the message, so its final "." never left: a server does not accept
            # a message that did not end, and sending it again is safe. (An interrupt is different: it can
            # arrive after the last byte went out, so it stays uncertain.)
            self._data_sent = False
            self._drop()
            raise TemporaryFailure(
                f"connection to {self.where} lost while the message was being sent (so not accepted): {_cause(exc)}"
            ) from None
        try:
            code, reply = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                raise UncertainFailure(
                    f"no answer from mail server {self.where} within {self.settings.timeout:g} s after the message"
                    " was sent (timeout)"
                ) from None
            raise UncertainFailure(
                f"connection to {self.where} lost after the message was sent, before the server answered: {_cause(exc)}"
            ) from None
        if code != 250:
            self._data_sent = False  # an explicit refusal: the server did not take it
            _raise_for(code, reply, "DATA")
        return Handed(destination=self.where, refused=refused)

    def confirm(self, destination: str | None) -> bool | None:
        return None  # SMTP gives no way to ask whether an earlier message arrived

    def interrupted(self, destination: str) -> bool | None:
        return None if self._data_sent else False

    def _drop(self) -> None:
        _quietly_close(self.conn)
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
            self._drop()


def _cause(exc: BaseException) -> str:
    """The socket error behind smtplib's generic 'Server not connected', which hides it."""
    context = exc.__context__
    if (
        isinstance(exc, smtplib.SMTPServerDisconnected)
        and isinstance(context, OSError)
        and str(context) not in str(exc)
    ):
        return f"{exc} ({context.strerror or context})"
    return str(exc)


def _quietly_close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def _dot_stuffed(message: EmailMessage) -> bytes:
    """The message as SMTP DATA: CRLF line ends, leading dots doubled, ending in CRLF.CRLF."""
    data = message.as_bytes(policy=SMTP)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(CRLF):
        data += CRLF
    return data + b"." + CRLF


def make_transport(config: StudyConfig) -> Transport:
    """The transport ``[delivery] transport`` names."""
    if config.delivery.transport == "smtp":
        return SmtpTransport.from_config(config)
    return OutboxTransport(config.resolve(config.delivery.outbox_dir))
