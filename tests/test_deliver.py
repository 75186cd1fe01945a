"""Delivery: real messages to a real SMTP server (aiosmtpd on 127.0.0.1) and to the outbox.

Each test writes small real PDFs and a report manifest itself, so delivery is tested independently of the
report engine; the assertions read what a recipient would get (headers, envelope, attachment bytes, text
in the attached PDF) and what the delivery log says.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from email.policy import default as default_policy

import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from helpers import copy_sample
from mailhelpers import (  # noqa: F401  (fixtures)
    CONTACTS,
    SUBSCRIBER_NAMES,
    Recorder,
    attachment,
    free_port,
    log_rows,
    pdf_text,
    set_delivery,
    smtp_block,
    write_reports,
)
from wavetool.config import load_config
from wavetool.deliver import send_reports
from wavetool.deliver.log import LOG_NAME
from wavetool.deliver.message import compose
from wavetool.deliver.transports import SmtpTransport


def test_smtp_delivers_each_report_to_its_own_subscriber_once(study, smtp_server, cli, pdf_bytes):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port))

    code, out, err = cli("--study", study, "send", "--wave", "1")

    assert code == 0, err
    assert len(recorder.messages) == 4
    assert recorder.connections == 1  # one SMTP connection for the whole run
    by_sub = {m["message"]["X-Wavetool-Subscriber"]: m for m in recorder.messages}
    assert set(by_sub) == set(SUBSCRIBER_NAMES)
    for sub, got in by_sub.items():
        message = got["message"]
        assert got["from"] == "study@example.org"
        assert sorted(got["rcpt"]) == sorted(CONTACTS[sub])
        assert [a.addr_spec for a in message["To"].addresses] == CONTACTS[sub]
        assert message["Reply-To"] == "coordinator@example.org"
        assert message["Bcc"] is None
        kind, name, data = attachment(message)
        assert kind == "application/pdf"
        assert data == (study / "reports" / "wave-1" / f"{sub}.pdf").read_bytes()
        assert name.endswith(".pdf") and sub in name
        text = pdf_text(data)
        assert SUBSCRIBER_NAMES[sub] in text  # no message carries another subscriber's report
        for other, other_name in SUBSCRIBER_NAMES.items():
            if other != sub:
                assert other_name not in text
    # subject and body in the subscriber's language
    # the name as it sits in a sentence (sentence_name_fr), French spacing before ":" as in the PDF
    assert by_sub["quebec"]["message"]["Subject"].startswith(
        "Étude de suivi des services aux citoyens\u202f: rapport pour le gouvernement du Québec, "
    )
    assert "Vague 1 (juin 2020)" in by_sub["quebec"]["message"]["Subject"]
    assert "Vous trouverez ci-joint" in by_sub["quebec"]["message"].get_body(("plain",)).get_content()
    assert attachment(by_sub["quebec"]["message"])[1] == "quebec-vague-1.pdf"
    assert by_sub["ontario"]["message"]["Subject"] == (
        "Citizens' Service Tracking Study: report for the Government of Ontario, Wave 1 (June 2020)"
    )
    assert "Please find attached" in by_sub["ontario"]["message"].get_body(("plain",)).get_content()
    assert "sent to analyst@ontario.example, research.lead@ontario.example via smtp" in out

    rows = log_rows(study)
    assert [r["status"] for r in rows] == ["sent"] * 4
    for r in rows:
        assert r["report_sha256"] == hashlib.sha256(pdf_bytes[r["subscriber"]]).hexdigest()
        assert json.loads(r["recipients"])["to"] == CONTACTS[r["subscriber"]]
        assert r["message_id"] == by_sub[r["subscriber"]]["message"]["Message-ID"]
        assert r["transport"] == "smtp" and r["sent_at"]

    # a re-run sends nothing
    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0
    assert len(recorder.messages) == 4
    assert recorder.connections == 1  # not even a connection when nothing is due
    assert out.count("skipped, already sent") == 4


def test_bcc_and_cc_and_html_escaping(study, smtp_server, pdf_bytes):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port))
    path = study / "wavetool.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        'contacts = ["analyst@ontario.example", "research.lead@ontario.example"]',
        'contacts = ["analyst@ontario.example"]\ncc = ["deputy@ontario.example"]\n'
        'bcc = ["archive@ontario.example"]\nreply_to = "help@ontario.example"',
    )
    text = text.replace('name = "Government of Ontario"', 'name = "Ontario <Treasury & Services>"')
    # the body names the subscriber inside a sentence: that name carries the markup characters too
    text = text.replace(
        'sentence_name = "the Government of Ontario"', 'sentence_name = "Ontario <Treasury & Services>"'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(study)

    result = send_reports(config, 1, subscribers=["ontario"])

    assert result.exit_code == 0
    (got,) = recorder.messages
    message = got["message"]
    assert sorted(got["rcpt"]) == ["analyst@ontario.example", "archive@ontario.example", "deputy@ontario.example"]
    assert message["Cc"] == "deputy@ontario.example"
    assert message["Bcc"] is None and b"archive@ontario.example" not in got["raw"]
    assert message["Reply-To"] == "help@ontario.example"
    html = message.get_body(("html",)).get_content()
    assert "Ontario &lt;Treasury &amp; Services&gt;" in html  # autoescaped in HTML
    assert "Ontario <Treasury & Services>" in message.get_body(("plain",)).get_content()  # verbatim in text


def test_temporary_451_then_250_delivers_exactly_once(study, smtp_server):
    recorder, port = smtp_server()
    recorder.data_replies = ["451 4.3.0 Try again later"]
    set_delivery(study, smtp_block(port))
    config = load_config(study)

    result = send_reports(config, 1, subscribers=["ontario"], backoff=0.01)

    assert result.exit_code == 0
    assert len(recorder.messages) == 1
    assert recorder.data_count == 2
    (row,) = log_rows(study)
    assert row["status"] == "sent" and row["attempts"] == 2


def test_always_deferred_exits_75_and_next_run_delivers(study, smtp_server, cli):
    recorder, port = smtp_server()
    recorder.data_replies = ["451 4.7.1 Greylisted"] * 4  # first try + 3 retries
    set_delivery(study, smtp_block(port))  # max_retries = 3
    config = load_config(study)

    result = send_reports(config, 1, subscribers=["ontario"], backoff=0.01)
    assert result.exit_code == 75
    assert result.failed[0]["temporary"] and "451 4.7.1 Greylisted" in result.failed[0]["error"]
    assert recorder.messages == []

    result = send_reports(config, 1, subscribers=["ontario"], backoff=0.01)
    assert result.exit_code == 0 and len(recorder.messages) == 1
    assert [r["status"] for r in log_rows(study)] == ["failed", "sent"]


def test_permanent_550_is_failed_with_server_words_and_others_still_sent(study, smtp_server, cli):
    recorder, port = smtp_server()
    recorder.fail_data_for = {"quebec": "550 5.7.1 Message rejected by policy"}
    set_delivery(study, smtp_block(port))

    code, out, err = cli("--study", study, "send", "--wave", "1")

    assert code == 80
    assert {m["message"]["X-Wavetool-Subscriber"] for m in recorder.messages} == {
        "ontario",
        "british-columbia",
        "maritimes",
    }
    assert "quebec: FAILED, DATA: 550 5.7.1 Message rejected by policy" in out
    assert "Error: wave 1: quebec: failed: DATA: 550 5.7.1 Message rejected by policy" in err  # cron mails stderr
    rows = {r["subscriber"]: r for r in log_rows(study)}
    assert rows["quebec"]["status"] == "failed"
    assert rows["quebec"]["error"] == "DATA: 550 5.7.1 Message rejected by policy"
    assert rows["quebec"]["attempts"] == 1  # a permanent failure is not retried

    # once the server accepts it, only the failed one goes out
    recorder.fail_data_for = {}
    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0
    assert [m["message"]["X-Wavetool-Subscriber"] for m in recorder.messages].count("quebec") == 1
    assert len(recorder.messages) == 4


def test_one_refused_recipient_is_reported(study, smtp_server, cli):
    recorder, port = smtp_server()
    recorder.refuse = {"research.lead@ontario.example": "550 5.1.1 No such user"}
    set_delivery(study, smtp_block(port))

    code, out, _ = cli("--study", study, "send", "--wave", "1", "--subscriber", "ontario")

    assert code == 80
    (got,) = recorder.messages
    assert got["rcpt"] == ["analyst@ontario.example"]
    assert "refused recipient research.lead@ontario.example: 550 5.1.1 No such user" in out
    (row,) = log_rows(study)
    assert row["status"] == "sent" and "550 5.1.1 No such user" in row["error"]


def test_starttls_with_test_certificate_and_login(study, smtp_server, cli, tmp_path, monkeypatch):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen_logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        seen_logins.append((auth_data.login, bool(session.ssl)))
        ok = auth_data.login == b"study" and auth_data.password == b"s3cret pass"
        return AuthResult(success=ok, handled=False)

    recorder, port = smtp_server(
        tls_context=server_context, require_starttls=True, authenticator=authenticator, auth_require_tls=True
    )
    set_delivery(study, smtp_block(port, security="starttls", user="study"))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.setenv("WAVETOOL_TEST_SMTP_PASSWORD", "s3cret pass")

    code, out, err = cli("--study", study, "send", "--wave", "1", "--subscriber", "ontario")

    assert code == 0, err
    assert len(recorder.messages) == 1
    assert seen_logins == [(b"study", True)]  # logged in only after STARTTLS

    # an untrusted certificate is refused: 69, nothing sent
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
    code, _, err = cli("--study", study, "send", "--wave", "1", "--subscriber", "quebec")
    assert code == 69
    assert "TLS with mail server 127.0.0.1" in err
    assert len(recorder.messages) == 1


def test_login_refused_exits_77_and_never_shows_the_password(study, smtp_server, cli, monkeypatch):
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)  # aiosmtpd then answers 535

    recorder, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    set_delivery(study, smtp_block(port, user="study"))
    monkeypatch.setenv("WAVETOOL_TEST_SMTP_PASSWORD", "hunter2-not-for-logs")

    code, out, err = cli("--study", study, "send", "--wave", "1")

    assert code == 77, err
    assert "refused the login for study: 535" in err
    assert "hunter2" not in out + err
    assert recorder.messages == []
    assert all(r["status"] != "sent" for r in log_rows(study))


def test_missing_password_variable_is_a_config_error_before_connecting(study, smtp_server, cli, monkeypatch):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port, user="study"))
    monkeypatch.delenv("WAVETOOL_TEST_SMTP_PASSWORD", raising=False)

    code, _, err = cli("--study", study, "send", "--wave", "1")

    assert code == 78
    assert "WAVETOOL_TEST_SMTP_PASSWORD is not set" in err
    assert recorder.connections == 0


def test_server_down_exits_69_and_nothing_is_logged_as_sent(study, cli):
    set_delivery(study, smtp_block(free_port()))

    code, _, err = cli("--study", study, "send", "--wave", "1")

    assert code == 69
    assert "cannot reach mail server 127.0.0.1:" in err
    assert log_rows(study) == []


def test_connection_dropped_after_data_is_uncertain_and_not_resent(study, smtp_server, cli):
    recorder, port = smtp_server()
    recorder.drop_after_data = True
    set_delivery(study, smtp_block(port))
    config = load_config(study)

    result = send_reports(config, 1, subscribers=["ontario"], backoff=0.01)

    assert result.exit_code == 80
    assert recorder.data_count == 1  # never retried: the server may have taken it
    (row,) = log_rows(study)
    assert row["status"] == "uncertain"

    recorder.drop_after_data = False
    code, out, _ = cli("--study", study, "send", "--wave", "1", "--subscriber", "ontario")
    assert code == 0 and recorder.messages == []
    assert "skipped, uncertain" in out and row["message_id"] in out

    code, out, _ = cli("--study", study, "send", "--wave", "1", "--subscriber", "ontario", "--resend")
    assert code == 0 and len(recorder.messages) == 1


def test_kill_during_data_leaves_uncertain_not_resent(study, smtp_server):
    """A real crash: SIGKILL while the server holds the DATA reply; the next run must not send again."""
    recorder, port = smtp_server()
    recorder.hang_after_data.set()
    set_delivery(study, smtp_block(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wavetool", "--study", str(study), "send", "--wave", "1", "--subscriber", "ontario"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert recorder.data_seen.wait(30), proc.stderr.read() if proc.poll() is not None else "no DATA"
        time.sleep(0.2)
        rows = log_rows(study)
        assert [r["status"] for r in rows] == ["sending"]  # recorded before the DATA
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    recorder.hang_after_data.clear()
    config = load_config(study)

    result = send_reports(config, 1)

    assert [r["status"] for r in result.recovered] == ["uncertain"]
    assert {s["subscriber"] for s in result.sent} == {"quebec", "british-columbia", "maritimes"}
    assert [s["subscriber"] for s in result.skipped] == ["ontario"]
    assert "uncertain" in result.skipped[0]["reason"]
    assert "ontario" not in {m["message"]["X-Wavetool-Subscriber"] for m in recorder.messages}


def test_changed_report_is_not_resent_without_resend(study, smtp_server, cli, pdf_bytes):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port))
    assert cli("--study", study, "send", "--wave", "1")[0] == 0
    new = dict(pdf_bytes)
    new["ontario"] = pdf_bytes["ontario"] + b"\n% corrected\n"
    write_reports(study, 1, new)

    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0 and len(recorder.messages) == 4
    assert "ontario: skipped, report changed since it was sent" in out

    code, out, _ = cli("--study", study, "send", "--wave", "1", "--resend", "--subscriber", "ontario")
    assert code == 0 and len(recorder.messages) == 5
    assert attachment(recorder.messages[-1]["message"])[2] == new["ontario"]


def test_rate_limit_spaces_messages_on_one_connection(study, smtp_server):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port, extra="rate_limit = 20.0"))
    config = load_config(study)
    start = time.monotonic()

    result = send_reports(config, 1)

    assert result.exit_code == 0 and len(recorder.messages) == 4
    assert time.monotonic() - start >= 3 / 20  # 4 messages at 20/s need at least 3 gaps of 50 ms
    assert recorder.connections == 1


def test_limit_sends_at_most_k(study, smtp_server, cli):
    recorder, port = smtp_server()
    set_delivery(study, smtp_block(port))
    code, out, _ = cli("--study", study, "send", "--wave", "1", "--limit", "2")
    assert code == 0 and len(recorder.messages) == 2
    assert out.count("over --limit 2") == 2
    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0 and len(recorder.messages) == 4


# --- outbox and checks before sending ---------------------------------------------------------------


def test_outbox_writes_eml_files_a_mail_client_opens(study, cli, pdf_bytes):
    code, out, err = cli("--study", study, "send", "--wave", "1", "--dry-run")
    assert code == 0, err
    assert out.count("would send") == 4
    assert not (study / "outbox").exists() or not list((study / "outbox").iterdir())

    code, out, err = cli("--study", study, "send", "--wave", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert len(summary["sent"]) == 4 and summary["exit_code"] == 0
    files = sorted((study / "outbox").glob("*.eml"))
    assert len(files) == 4
    assert not list((study / "outbox").glob(".*"))  # no temporary files left
    for path in files:
        raw = path.read_bytes()
        assert b"\r\n" in raw
        message = email.message_from_bytes(raw, policy=default_policy)
        sub = message["X-Wavetool-Subscriber"]
        assert path.name.startswith(f"wave-1-{sub}-")
        assert [a.addr_spec for a in message["To"].addresses] == CONTACTS[sub]
        assert message["X-Unsent"] == "1"
        assert attachment(message)[2] == pdf_bytes[sub]
        assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message["Message-ID"])

    code, out, _ = cli("--study", study, "send", "--wave", "1")
    assert code == 0 and len(list((study / "outbox").glob("*.eml"))) == 4


def test_outbox_crash_after_write_is_confirmed_not_duplicated(study):
    """A 'sending' row whose .eml is in place was delivered (the rename is atomic): confirmed, not resent."""
    config = load_config(study)
    send_reports(config, 1, subscribers=["ontario"])
    con = sqlite3.connect(study / LOG_NAME)
    con.execute("UPDATE deliveries SET status = 'sending', sent_at = NULL")  # as if killed before marking sent
    con.commit()
    con.close()

    result = send_reports(config, 1)

    assert result.recovered[0]["status"] == "sent"
    assert len(list((study / "outbox").glob("wave-1-ontario-*.eml"))) == 1
    assert len(result.sent) == 3


def test_missing_pdf_fails_before_anything_is_sent(study, cli):
    (study / "reports" / "wave-1" / "maritimes.pdf").unlink()

    code, _, err = cli("--study", study, "send", "--wave", "1")

    assert code == 66
    assert "maritimes.pdf: report PDF for subscriber maritimes is missing" in err
    assert "nothing was sent" in err
    assert not (study / "outbox").exists()
    assert not (study / LOG_NAME).exists()


def test_pdf_changed_after_rendering_is_refused(study, cli):
    (study / "reports" / "wave-1" / "quebec.pdf").write_bytes(b"%PDF-1.7 tampered")
    code, _, err = cli("--study", study, "send", "--wave", "1")
    assert code == 65
    assert "quebec.pdf: the PDF changed after it was rendered" in err
    assert not (study / "outbox").exists()


def test_no_reports_rendered_is_missing_input(study, cli):
    code, _, err = cli("--study", study, "send", "--wave", "2")
    assert code == 66
    assert "no reports for wave 2" in err


def test_subscriber_without_contacts_and_bad_sender_fail_before_sending(study, cli):
    path = study / "wavetool.toml"
    original = path.read_text(encoding="utf-8")
    path.write_text(
        original.replace('contacts = ["analyste@quebec.example", "recherche@quebec.example"]', "contacts = []"),
        encoding="utf-8",
    )
    code, _, err = cli("--study", study, "send", "--wave", "1")
    assert code == 78
    assert "subscriber quebec: has no contacts" in err
    assert not (study / "outbox").exists()

    path.write_text(
        original.replace('from = "Citizens\' Service Study <study@example.org>"', 'from = "study at example"'),
        encoding="utf-8",
    )
    code, _, err = cli("--study", study, "send", "--wave", "1")
    assert code == 78
    assert "delivery.from: 'study at example' is not a valid e-mail address" in err
    assert not (study / "outbox").exists()


def test_unknown_subscriber_is_a_config_error(study, cli):
    code, _, err = cli("--study", study, "send", "--wave", "1", "--subscriber", "yukon")
    assert code == 78 and "unknown subscriber 'yukon'" in err


def test_final_report_subject_and_file_name(tmp_path, pdf_bytes):
    folder = copy_sample(tmp_path / "final")
    write_reports(folder, 4, pdf_bytes, final=True)
    result = send_reports(load_config(folder), 4, subscribers=["quebec", "ontario"])
    assert result.exit_code == 0
    messages = {}
    for path in (folder / "outbox").glob("*.eml"):
        m = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        messages[m["X-Wavetool-Subscriber"]] = m
    assert "rapport final" in messages["quebec"]["Subject"]
    assert attachment(messages["quebec"])[1] == "quebec-vague-4-final.pdf"
    assert "final report" in messages["ontario"]["Subject"]
    assert "fieldwork January 11, 2021 – January 31, 2021" in messages["ontario"].get_body(("plain",)).get_content()


def test_each_manifest_entry_says_whether_its_report_is_final(tmp_path, pdf_bytes):
    """A folder holding a final report for one subscriber and a wave summary for another (a partial
    `report --final --subscriber`): each message's subject and file name follow its own report."""
    folder = copy_sample(tmp_path / "mixed")
    reports = write_reports(folder, 4, pdf_bytes, final=True)
    manifest = json.loads((reports / "manifest.json").read_text(encoding="utf-8"))
    manifest["reports"]["ontario"]["final"] = False
    manifest["reports"]["quebec"]["final"] = True
    (reports / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert send_reports(load_config(folder), 4, subscribers=["quebec", "ontario"]).exit_code == 0
    messages = {}
    for path in (folder / "outbox").glob("*.eml"):
        m = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        messages[m["X-Wavetool-Subscriber"]] = m
    assert attachment(messages["quebec"])[1] == "quebec-vague-4-final.pdf"
    assert attachment(messages["ontario"])[1] == "ontario-wave-4.pdf"
    assert "final report" not in messages["ontario"]["Subject"]


def test_password_comes_only_from_the_environment(study, monkeypatch):
    set_delivery(study, smtp_block(2525, user="study"))
    monkeypatch.setenv("WAVETOOL_TEST_SMTP_PASSWORD", "from-env")
    transport = SmtpTransport.from_config(load_config(study))
    assert transport._password == "from-env"
    assert "from-env" not in (study / "wavetool.toml").read_text(encoding="utf-8")
    assert "from-env" not in repr(transport.__dict__.get("settings"))
    assert os.environ["WAVETOOL_TEST_SMTP_PASSWORD"] == "from-env"


def test_uncertain_message_confirmed_by_hand_is_never_sent_again(study, smtp_server, cli):
    """The coordinator found the uncertain message in the server's log: --confirm records it as delivered, sends
    nothing, and later runs skip it as sent; unknown or settled Message-IDs change nothing."""
    recorder, port = smtp_server()
    recorder.drop_after_data = True
    set_delivery(study, smtp_block(port))
    send_reports(load_config(study), 1, subscribers=["ontario", "quebec"], backoff=0.01)
    rows = {r["subscriber"]: r for r in log_rows(study)}
    assert {s: r["status"] for s, r in rows.items()} == {"ontario": "uncertain", "quebec": "uncertain"}
    recorder.drop_after_data = False
    before = log_rows(study)

    code, _, err = cli("--study", study, "send", "--wave", "1", "--confirm", "<nope.w1.wavetool@example.ca>")
    assert code == 66 and "no message with Message-ID <nope.w1.wavetool@example.ca>" in err
    assert "Traceback" not in err and log_rows(study) == before

    ontario_id = rows["ontario"]["message_id"]
    code, out, _ = cli("--study", study, "send", "--wave", "1", "--confirm", ontario_id.strip("<>"))  # no brackets
    assert code == 0 and recorder.messages == []
    assert f"wave 1: ontario: Message-ID {ontario_id} recorded as delivered (was uncertain" in out
    after = {r["subscriber"]: r for r in log_rows(study)}
    assert after["ontario"]["status"] == "sent" and after["ontario"]["sent_at"]
    assert "confirmed delivered by the coordinator" in after["ontario"]["error"]
    assert after["quebec"] == rows["quebec"]

    code, _, err = cli("--study", study, "send", "--wave", "1", "--confirm", ontario_id)
    assert code == 65 and "only uncertain messages can be confirmed: ontario" in err and "is sent" in err

    code, out, _ = cli("--study", study, "send", "--wave", "1", "--subscriber", "ontario", "--subscriber", "quebec")
    assert code == 0 and recorder.messages == []
    assert "ontario: skipped, already sent" in out and "quebec: skipped, uncertain" in out

    code, _, err = cli("--study", study, "send", "--wave", "1", "--confirm", ontario_id, "--resend")
    assert code == 2 and "use it alone" in err

    code, out, _ = cli("--study", study, "send", "--wave", "1", "--confirm", rows["quebec"]["message_id"], "--json")
    assert code == 0 and [c["subscriber"] for c in json.loads(out)["confirmed"]] == ["quebec"]
    assert {r["status"] for r in log_rows(study)} == {"sent"} and recorder.messages == []


def test_subject_and_body_name_the_subscriber_as_a_sentence_does(tmp_path):
    """Subject and body use the name as it sits in a sentence (``sentence_name``/``_fr``), with French
    spacing as in the PDF; without one, the wording needs no article."""
    config = load_config(copy_sample(tmp_path / "names"))
    ontario = compose(config, config.subscribers["ontario"], 2, final=False, pages=9, attachment="x.pdf")
    assert "report for the Government of Ontario, Wave 2" in ontario.subject
    assert "the report for the Government of Ontario from the survey" in ontario.text
    quebec = compose(config, config.subscribers["quebec"], 2, final=True, pages=9, attachment="x.pdf")
    assert "\u202f: rapport final pour le gouvernement du Québec, Vague 2" in quebec.subject
    assert "le rapport final pour le gouvernement du Québec de l’enquête «\u202fÉtude" in quebec.text
    for text in (quebec.subject, quebec.text, quebec.html):
        assert not re.search(r"« | »| [;:!?](\s|$)", text), text  # never a plain space there
    plain = replace(config.subscribers["quebec"], sentence_name=None, sentence_name_fr=None)
    letter = compose(config, plain, 2, final=False, pages=9, attachment="x.pdf")
    assert "rapport – Gouvernement du Québec, Vague 2" in letter.subject
    assert "le rapport (Gouvernement du Québec) de l’enquête" in letter.text
    assert "pour Gouvernement" not in letter.subject + letter.text + letter.html
