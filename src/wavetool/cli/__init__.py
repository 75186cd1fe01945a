"""The wavetool command line: a thin shell over the library.

Every command parses its options, calls one library function and prints. Errors are mapped to exit
codes in one place, :func:`main`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from typer._click.exceptions import ClickException

from .. import __version__
from ..config import StudyConfig, load_config
from ..errors import ExitCode, WavetoolError, is_interruption
from .output import make_console

app = typer.Typer(
    name="wavetool",
    help="Run a multi-wave public-sector survey: import, harmonise, tabulate, report and deliver.\n\n"
    "Example: wavetool --study demo status",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class AppContext:
    """What every command receives: the study folder, and the config loaded once on first use."""

    study: Path
    traceback: bool = False
    _config: StudyConfig | None = None

    @property
    def config(self) -> StudyConfig:
        if self._config is None:
            self._config = load_config(self.study)
        return self._config


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wavetool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    study: Path = typer.Option(
        Path("."),
        "--study",
        "-C",
        envvar="WAVETOOL_STUDY",
        help="Study folder (holds wavetool.toml).",
        file_okay=False,
    ),
    traceback: bool = typer.Option(
        False, "--traceback", help="Show the full stack trace of an error (for bug reports)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Run a multi-wave public-sector survey: import, harmonise, tabulate, report and deliver.

    Example: wavetool --study demo status
    """
    ctx.obj = AppContext(study=study, traceback=traceback)


def ctx_obj(ctx: typer.Context) -> AppContext:
    """The AppContext of the running command."""
    return ctx.find_root().obj


from . import codebook as _codebook  # noqa: E402,F401
from . import custom as _custom  # noqa: E402,F401
from . import deliver as _deliver  # noqa: E402,F401
from . import drivers as _drivers  # noqa: E402,F401
from . import export as _export  # noqa: E402,F401
from . import ingest as _ingest  # noqa: E402,F401
from . import pipeline as _pipeline  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import study as _study  # noqa: E402,F401  (registers commands)
from . import tables as _tables  # noqa: E402,F401
from . import weight as _weight  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; the one place errors become messages and codes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in argv or bool(os.environ.get("WAVETOOL_TRACEBACK"))
    err = make_console(stderr=True)
    try:
        result = app(args=argv, prog_name="wavetool", standalone_mode=False)
        if result == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a bare 130 without a word
            err.print("Interrupted.", markup=False)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except WavetoolError as exc:
        if show_traceback:
            raise
        err.print(f"Error: {exc.message}", markup=False)
        if exc.hint:
            err.print(f"Hint: {exc.hint}", markup=False)
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        err.print("Interrupted.", markup=False)
        return int(ExitCode.INTERRUPTED)
    except typer.Exit as exc:
        return exc.exit_code
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:
        if is_interruption(exc):  # Ctrl-C while DuckDB was running a query
            err.print("Interrupted.", markup=False)
            return int(ExitCode.INTERRUPTED)
        if show_traceback:
            raise
        err.print(f"Error: internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("Hint: this is a bug in wavetool; rerun with --traceback and report the output", markup=False)
        return int(ExitCode.FAILURE)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
