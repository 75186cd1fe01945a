"""SMTP faults beyond test_deliver.py (helpers shared through mailhelpers.py): a connection dropped in the middle of DATA, a server that never answers
(after the message, before it, or at all), each against a real server on 127.0.0.1 that misbehaves on
purpose. What is asserted is what a coordinator sees: the exit code, the one-line error, the delivery log,
how long the run took, and that a re-run never delivers a message twice. Marked slow.

A hand-written server is used because aiosmtpd, rightly, cannot be told to stop reading half-way through a
message or to leave a command unanswered.
"""

from __future__ import annotations

import email
import socket
import threading
import time
from email.policy import default as default_policy
from pathlib import Path

import pytest

import mailhelpers as delivery

pytestmark = pytest.mark.slow

SUBSCRIBERS = ["ontario", "quebec", "british-columbia", "maritimes"]  # the order send_reports goes in
TIMEOUT = 1.0  # [delivery.smtp] timeout of these tests, seconds


class MisbehavingSmtp:
    """A small threaded SMTP server on 127.0.0.1 that answers EHLO/MAIL/RCPT/DATA/RSET/NOOP/QUIT.

    ``plan[subscriber]`` lists what to do with that subscriber's next DATA attempts (recognised by the
    recipients' domain), one entry per attempt; without an entry the message is accepted with 250:

    - ``"drop-mid-data"``: answer 354, read ``cut`` bytes of the message, then close the connection (the
      final ``.`` never arrives, so the message is not accepted);
    - ``"silent-after-data"``: read the whole message including its final ``.`` and never answer;
    - ``"silent-data-command"``: never answer the DATA command itself (nothing of the message is sent).

    ``greet=False`` makes every connection silent from the start (no 220 greeting).
    """

    def __init__(self, greet: bool = True, cut: int = 4096, receive_buffer: int | None = None) -> None:
        self.greet = greet
        self.cut = cut
        self.plan: dict[str, list[str]] = {}
        self.accepted: list[dict[str, object]] = []  # messages answered 250
        self.attempts: list[tuple[str, str]] = []  # (subscriber, what the server did) per DATA command
        self.connections = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer:  # inherited by accepted sockets: a client sending a big message blocks quickly
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        for sock in [self._listener, *self._open]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _silent(self, conn: socket.socket, reader) -> None:
        """Say nothing more; return when the client gives up and closes (or the server stops)."""
        conn.settimeout(60)
        try:
            while reader.read1(65536):
                pass
        except OSError:
            pass

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            if not self.greet:
                self._silent(conn, reader)
                return
            conn.sendall(b"220 127.0.0.1 test server\r\n")
            recipients: list[str] = []
            while True:
                line = reader.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 127.0.0.1\r\n")
                elif verb == b"MAIL":
                    recipients = []
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"RCPT":
                    recipients.append(line.split(b":", 1)[1].strip().strip(b"<>").decode())
                    conn.sendall(b"250 OK\r\n")
                elif verb in (b"RSET", b"NOOP"):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 Bye\r\n")
                    return
                elif verb == b"DATA":
                    if not self._data(conn, reader, recipients):
                        return
                else:
                    conn.sendall(b"500 unknown command\r\n")
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def _data(self, conn: socket.socket, reader, recipients: list[str]) -> bool:
        """Handle one DATA command; False when the connection is over."""
        subscriber = subscriber_of(recipients)
        planned = self.plan.get(subscriber) or []
        action = planned.pop(0) if planned else "accept"
        self.attempts.append((subscriber, action))
        if action == "silent-data-command":
            self._silent(conn, reader)
            return False
        conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        if action == "drop-mid-data":
            reader.read(self.cut)
            return False  # closing with unread data resets the connection, as a crashing server does
        lines = []
        while True:
            line = reader.readline()
            if not line:
                return False
            if line == b".\r\n":
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        if action == "silent-after-data":
            self._silent(conn, reader)
            return False
        message = email.message_from_bytes(b"".join(lines), policy=default_policy)
        self.accepted.append({"subscriber": message["X-Wavetool-Subscriber"], "rcpt": recipients, "message": message})
        conn.sendall(b"250 OK queued\r\n")
        return True

    def delivered(self) -> list[str]:
        return [str(m["subscriber"]) for m in self.accepted]


def subscriber_of(recipients: list[str]) -> str:
    domains = {address.rsplit("@", 1)[1] for address in recipients}
    for sub in SUBSCRIBERS:
        if f"{'bc' if sub == 'british-columbia' else sub}.example" in domains:
            return sub
    return "?"


@pytest.fixture
def server():
    """``server(**options)`` starts a MisbehavingSmtp; every one is stopped after the test."""
    started: list[MisbehavingSmtp] = []

    def start(**options: object) -> MisbehavingSmtp:
        smtp = MisbehavingSmtp(**options)
        started.append(smtp)
        return smtp

    yield start
    for smtp in started:
        smtp.stop()


def use(study: Path, smtp: MisbehavingSmtp, max_retries: int = 3) -> None:
    block = delivery.smtp_block(smtp.port).replace("timeout = 5", f"timeout = {TIMEOUT}")
    delivery.set_delivery(study, block.replace("max_retries = 3", f"max_retries = {max_retries}"))


def statuses(study: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in delivery.log_rows(study):
        found.setdefault(row["subscriber"], []).append(row["status"])
    return found


# --- connection dropped mid-DATA ----------------------------------------------------------------------


def test_drop_mid_data_after_the_whole_message_left_is_uncertain_and_never_resent(study, server, cli):
    """A small message is wholly in the socket before the server hangs up, so the client cannot tell a server
    that closed before the final '.' from one that took the message and crashed: uncertain, not retried."""
    smtp = server(cut=2048)
    smtp.plan = {"quebec": ["drop-mid-data"]}
    use(study, smtp)

    code, out, err = cli("--study", study, "send", "--wave", "1")

    assert code == 80, err
    assert sorted(smtp.delivered()) == sorted(s for s in SUBSCRIBERS if s != "quebec")
    assert smtp.attempts.count(("quebec", "drop-mid-data")) == 1  # not retried: it may have been taken
    assert statuses(study) == {
        "ontario": ["sent"],
        "quebec": ["uncertain"],
        "british-columbia": ["sent"],
        "maritimes": ["sent"],
    }
    (row,) = [r for r in delivery.log_rows(study) if r["subscriber"] == "quebec"]
    assert "lost after the message was sent, before the server answered" in row["error"]
    assert f"wave 1: quebec: uncertain (Message-ID {row['message_id']})" in err
    assert "--resend" in err and "Traceback" not in err
    assert "3 sent, 0 skipped, 0 failed, 1 uncertain" in out

    # Re-runs deliver nothing twice: the uncertain message waits for the coordinator's --resend.
    code, out, err = cli("--study", study, "send", "--wave", "1")
    assert code == 0, err
    assert "quebec: skipped, uncertain" in out and row["message_id"] in out
    assert len(smtp.accepted) == 3 and len(smtp.attempts) == 4

    code, out, err = cli("--study", study, "send", "--wave", "1", "--subscriber", "quebec", "--resend")
    assert code == 0, err
    assert sorted(smtp.delivered()) == sorted(SUBSCRIBERS)  # each exactly once


def test_drop_while_the_message_is_still_being_sent_is_retried_and_delivered_once(study, server, pdf_bytes, cli):
    """The server hangs up while a large message is still going out: its final '.' never left this machine,
    so the server cannot have accepted it; the message is retried on a new connection and delivered once."""
    big = pdf_bytes["ontario"] + b"\n%" + bytes(range(256)) * (24 * 1024) + b"\n"  # a 6 MB report
    delivery.write_reports(study, 1, {**pdf_bytes, "ontario": big})
    smtp = server(cut=64 * 1024, receive_buffer=16 * 1024)
    smtp.plan = {"ontario": ["drop-mid-data"]}
    use(study, smtp)

    code, out, err = cli("--study", study, "send", "--wave", "1")

    assert code == 0, err
    assert smtp.attempts[:2] == [("ontario", "drop-mid-data"), ("ontario", "accept")]
    assert sorted(smtp.delivered()) == sorted(SUBSCRIBERS)
    (got,) = [m for m in smtp.accepted if m["subscriber"] == "ontario"]
    (part,) = list(got["message"].iter_attachments())
    assert part.get_payload(decode=True) == big
    rows = {r["subscriber"]: r for r in delivery.log_rows(study)}
    assert rows["ontario"]["status"] == "sent" and rows["ontario"]["attempts"] == 2
    assert smtp.connections == 2  # the retry reconnected; the others went over the new connection

    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0 and out.count("skipped, already sent") == 4
    assert len(smtp.accepted) == 4


# --- a slow server past the timeout -------------------------------------------------------------------


def test_no_answer_after_the_message_ends_within_the_timeout_as_uncertain(study, server, cli):
    """The whole message went out and the server never answers: after [delivery.smtp] timeout the message is
    uncertain (it may have been accepted), never retried, and the other subscribers are still served."""
    smtp = server()
    smtp.plan = {"ontario": ["silent-after-data"]}
    use(study, smtp)  # max_retries = 3: retrying would take 4 timeouts plus 1 + 2 + 4 s of backoff

    started = time.monotonic()
    code, out, err = cli("--study", study, "send", "--wave", "1")
    elapsed = time.monotonic() - started

    assert code == 80, err
    assert TIMEOUT <= elapsed < 2 * TIMEOUT + 3
    assert smtp.attempts.count(("ontario", "silent-after-data")) == 1
    assert sorted(smtp.delivered()) == sorted(s for s in SUBSCRIBERS if s != "ontario")
    assert statuses(study)["ontario"] == ["uncertain"]
    assert f"no answer from mail server 127.0.0.1:{smtp.port} within {TIMEOUT:g} s after the message was sent" in err
    assert "wave 1: ontario: uncertain (Message-ID" in err and "Traceback" not in err

    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0 and "ontario: skipped, uncertain" in out
    assert len(smtp.attempts) == 4 and len(smtp.accepted) == 3


def test_no_answer_before_the_message_is_deferred_retried_then_sent_once(study, server, cli):
    """The server never answers the DATA command: nothing of the message left, so it is retried
    (max_retries), then deferred (75) within (max_retries + 1) timeouts plus the backoff; the next run sends it."""
    smtp = server()
    smtp.plan = {"maritimes": ["silent-data-command", "silent-data-command"]}
    use(study, smtp, max_retries=1)  # two attempts, one backoff of 1 s

    started = time.monotonic()
    code, out, err = cli("--study", study, "send", "--wave", "1")
    elapsed = time.monotonic() - started

    assert code == 75, err
    assert 2 * TIMEOUT + 1 <= elapsed < 2 * TIMEOUT + 1 + 4
    assert smtp.attempts.count(("maritimes", "silent-data-command")) == 2
    assert sorted(smtp.delivered()) == ["british-columbia", "ontario", "quebec"]
    (row,) = [r for r in delivery.log_rows(study) if r["subscriber"] == "maritimes"]
    assert (row["status"], row["temporary"], row["attempts"]) == ("failed", 1, 2)
    assert "wave 1: maritimes: deferred: " in err and "before the message was sent" in err and "timed out" in err

    code, out, err = cli("--study", study, "send", "--wave", "1")
    assert code == 0, err
    assert sorted(smtp.delivered()) == sorted(SUBSCRIBERS)  # maritimes once, nobody twice
    assert statuses(study)["maritimes"] == ["failed", "sent"]


def test_server_that_never_greets_is_unavailable_69_within_the_timeout(study, server, cli):
    smtp = server(greet=False)
    use(study, smtp)

    started = time.monotonic()
    code, _, err = cli("--study", study, "send", "--wave", "1")
    elapsed = time.monotonic() - started

    assert code == 69
    assert elapsed < TIMEOUT + 3
    assert f"cannot reach mail server 127.0.0.1:{smtp.port}" in err and "Traceback" not in err
    assert smtp.attempts == [] and delivery.log_rows(study) == []  # nothing recorded as sent or sending
