"""Delivery test helpers shared by test_deliver.py and test_faults_smtp.py: the sample study with small real
wave-1 PDFs and their manifest (fixtures ``pdf_bytes``, ``study``), a real aiosmtpd server on 127.0.0.1
(``smtp_server``) and readers of what was delivered."""

from __future__ import annotations

import asyncio
import email
import hashlib
import io
import json
import socket
import sqlite3
import threading
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pypdf
import pytest
from aiosmtpd.controller import Controller

from helpers import copy_sample
from wavetool.deliver.log import LOG_NAME

SUBSCRIBER_NAMES = {
    "ontario": "Government of Ontario",
    "quebec": "Gouvernement du Québec",
    "british-columbia": "Government of British Columbia",
    "maritimes": "Maritime Provinces Service Partnership",
}
CONTACTS = {
    "ontario": ["analyst@ontario.example", "research.lead@ontario.example"],
    "quebec": ["analyste@quebec.example", "recherche@quebec.example"],
    "british-columbia": ["analyst@bc.example", "citizen.services@bc.example"],
    "maritimes": ["analyst@maritimes.example", "coordinator@maritimes.example"],
}


# --- fixtures: a study with rendered-looking reports -------------------------------------------------


@pytest.fixture(scope="session")
def pdf_bytes() -> dict[str, bytes]:
    """One small real PDF per subscriber whose text names the subscriber (so a mix-up is visible)."""
    import weasyprint

    return {
        sub: weasyprint.HTML(
            string=f"<h1>Wave report</h1><p>Prepared for {name}</p><p>Subscriber id {sub}</p>"
        ).write_pdf()
        for sub, name in SUBSCRIBER_NAMES.items()
    }


def write_reports(study: Path, wave: int, pdfs: dict[str, bytes], final: bool = False) -> Path:
    """What the report engine leaves behind: ``reports/wave-N/<id>.pdf`` and ``manifest.json``."""
    folder = study / "reports" / f"wave-{wave}"
    folder.mkdir(parents=True, exist_ok=True)
    reports = {}
    for sub, data in pdfs.items():
        (folder / f"{sub}.pdf").write_bytes(data)
        reports[sub] = {
            "file": f"{sub}.pdf",
            "sha256": hashlib.sha256(data).hexdigest(),
            "pages": 1,
            "language": "fr" if sub == "quebec" else "en",
            "inputs_sha256": "0" * 64,
            "rendered": True,
        }
    (folder / "manifest.json").write_text(
        json.dumps({"wave": wave, "final": final, "reports": reports}), encoding="utf-8"
    )
    return folder


def set_delivery(study: Path, block: str) -> None:
    """Replace the config's [delivery] section (and its sub-tables) with ``block``."""
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("[delivery]")
    end = text.index("[pipeline]")
    path.write_text(text[:start] + block.strip() + "\n\n" + text[end:], encoding="utf-8")


@pytest.fixture
def study(tmp_path: Path, pdf_bytes: dict[str, bytes]) -> Path:
    """The sample study's config with wave-1 reports on disk (no database import needed to send)."""
    folder = copy_sample(tmp_path / "study")
    write_reports(folder, 1, pdf_bytes)
    return folder


# --- a real SMTP server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that records every accepted message and can answer from a script."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []
        self.data_replies: list[str] = []  # consumed one per DATA; empty → "250 OK"
        self.refuse: dict[str, str] = {}  # RCPT address → reply
        self.fail_data_for: dict[str, str] = {}  # subscriber id (header) → reply, every time
        self.drop_after_data = False
        self.hang_after_data = threading.Event()  # set → DATA never answered (the client gets killed)
        self.data_seen = threading.Event()
        self.connections = 0
        self.data_count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_count += 1
        self.data_seen.set()
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        if self.hang_after_data.is_set():
            await asyncio.sleep(60)
        if self.drop_after_data:
            server.transport.close()
            return "250 OK"
        subscriber = message["X-Wavetool-Subscriber"]
        if subscriber in self.fail_data_for:
            return self.fail_data_for[subscriber]
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.messages.append(
            {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "message": message, "raw": envelope.content}
        )
        return "250 OK queued"


@pytest.fixture
def smtp_server():
    """Start an aiosmtpd server on 127.0.0.1 (random port); yields (recorder, port, start(**kwargs))."""
    controllers = []

    def start(**kwargs: object) -> tuple[Recorder, int]:
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return recorder, port

    yield start
    for controller in controllers:
        controller.stop()


def smtp_block(port: int, security: str = "none", user: str | None = None, extra: str = "") -> str:
    auth = f'user = "{user}"\npassword_env = "WAVETOOL_TEST_SMTP_PASSWORD"\n' if user else ""
    return (
        '[delivery]\ntransport = "smtp"\nfrom = "Citizens\' Service Study <study@example.org>"\n'
        f'reply_to = "coordinator@example.org"\nmax_retries = 3\n{extra}\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\ntimeout = 5\n{auth}'
    )


def attachment(message: EmailMessage) -> tuple[str, str, bytes]:
    parts = [p for p in message.iter_attachments()]
    assert len(parts) == 1
    part = parts[0]
    return part.get_content_type(), part.get_filename(), part.get_payload(decode=True)


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def log_rows(study: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(study / LOG_NAME)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM deliveries ORDER BY id")]
    finally:
        con.close()


# --- SMTP --------------------------------------------------------------------------------------------
