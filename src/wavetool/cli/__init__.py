"""The wavetool command line: a thin shell over the library.

Every command parses its options, calls one library function and prints. Errors are mapped to exit
codes in one place, :func:`main`.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click.exceptions import ClickException

from ..errors import ExitCode, WavetoolError, is_interruption

# Importing the command modules registers their commands on `app`.
from . import codebook as _codebook  # noqa: F401
from . import custom as _custom  # noqa: F401
from . import deliver as _deliver  # noqa: F401
from . import drivers as _drivers  # noqa: F401
from . import export as _export  # noqa: F401
from . import ingest as _ingest  # noqa: F401
from . import pipeline as _pipeline  # noqa: F401
from . import report as _report  # noqa: F401
from . import study as _study  # noqa: F401
from . import tables as _tables  # noqa: F401
from . import weight as _weight  # noqa: F401
from .app import AppContext, app, ctx_obj, reflow_help  # noqa: F401  (the package's public names)
from .output import make_console

reflow_help(app)


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
