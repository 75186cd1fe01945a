"""The one exception tree of wavetool and the exit codes it maps to.

The library raises; only the CLI turns an error into a message and an exit code (see ``cli.main``).
Exit codes follow ``sysexits.h`` where one fits, so cron wrappers can tell a bad file from a busy study.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status, one member per outcome a script may want to branch on."""

    OK = 0
    FAILURE = 1  # an unexpected internal error (a bug); rerun with --traceback
    USAGE = 2  # bad command-line usage (click's own code)
    DATA = 65  # EX_DATAERR: the input file's content is wrong
    NO_INPUT = 66  # EX_NOINPUT: an input file or report is missing
    SMTP_UNAVAILABLE = 69  # EX_UNAVAILABLE: the mail server cannot be reached
    SOFTWARE = 70  # EX_SOFTWARE
    CANT_CREATE = 73  # EX_CANTCREAT: cannot write an output (read-only folder, disk full)
    TEMPFAIL = 75  # EX_TEMPFAIL: the study is busy (locked) or mail was deferred
    SMTP_AUTH = 77  # EX_NOPERM: the mail server refused the login
    CONFIG = 78  # EX_CONFIG: wavetool.toml is invalid
    DRIFT_GATE = 79  # a wave's codebook drifted and has not been reviewed
    DELIVERY_PARTIAL = 80  # some messages were delivered, some failed
    WEIGHTING = 81  # raking did not converge or a margin is absent from the data
    INTERRUPTED = 130  # Ctrl-C / SIGINT


class WavetoolError(Exception):
    """Base of every error wavetool reports to a user; carries a message, a hint and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(WavetoolError):
    """The study configuration is missing, malformed or inconsistent."""

    exit_code = ExitCode.CONFIG


class DataError(WavetoolError):
    """An input file's content is invalid (bad ids, weights, codes, encoding, structure)."""

    exit_code = ExitCode.DATA


class InputMissingError(WavetoolError):
    """A file or a prerequisite (wave, report) that the command needs does not exist."""

    exit_code = ExitCode.NO_INPUT


class OutputError(WavetoolError):
    """An output could not be written (read-only folder, disk full)."""

    exit_code = ExitCode.CANT_CREATE


class StudyLockedError(WavetoolError):
    """Another wavetool process holds the study's lock."""

    exit_code = ExitCode.TEMPFAIL


class DriftGateError(WavetoolError):
    """A wave's codebook drifted from the previous wave and has not been reviewed."""

    exit_code = ExitCode.DRIFT_GATE


class WeightingError(WavetoolError):
    """Raking failed: no convergence, or a margin category absent from the data."""

    exit_code = ExitCode.WEIGHTING


class DeliveryError(WavetoolError):
    """Messages could not be prepared or delivered."""

    exit_code = ExitCode.DELIVERY_PARTIAL


class MailDeferredError(DeliveryError):
    """The mail server deferred delivery (4xx) after every retry."""

    exit_code = ExitCode.TEMPFAIL


class SmtpUnavailableError(DeliveryError):
    """The mail server could not be reached."""

    exit_code = ExitCode.SMTP_UNAVAILABLE


class SmtpAuthError(DeliveryError):
    """The mail server refused the login."""

    exit_code = ExitCode.SMTP_AUTH


def is_interruption(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C (SIGINT): a KeyboardInterrupt, or DuckDB reporting that the signal cut a query
    short (its InterruptException, or the RuntimeError "Query interrupted" its Python client raises)."""
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "InterruptException":
        return True
    return isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted"
