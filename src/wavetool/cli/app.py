"""The typer application and what every command receives (its :class:`AppContext`).

Command modules import ``app`` and ``ctx_obj`` from here and register themselves; ``cli/__init__`` imports
them all and holds :func:`main`. (Keeping ``app`` out of ``cli/__init__`` is what stops the command modules
and the package from importing each other.)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperOption
from typer.models import ParameterInfo

from .. import __version__
from ..config import StudyConfig, find_study, load_config
from ..context import Clock, Context, system_clock
from .output import make_console, progress_display

app = typer.Typer(
    name="wavetool",
    help="Run a multi-wave public-sector survey: import, harmonise, tabulate, report and deliver.\n\n"
    "Example: wavetool --study demo status",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_type_column = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """Help's type column for an option: empty for an on/off flag (typer prints `<bool>` after every one,
    which reads as if the flag took a value)."""
    return None if self.is_flag else _type_column(self, ctx)


TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]


def reflow(text: str) -> str:
    """A docstring as help paragraphs: the lines of each paragraph joined, so the terminal wraps them at
    its own width (typer keeps a docstring's line breaks, which at 80 columns leaves every other line
    short). A paragraph of ``- `` items keeps one item a line."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        items = paragraph.replace("\n- ", "\n\x00- ").split("\n\x00")
        paragraphs.append("\n".join(" ".join(line.strip() for line in item.splitlines()) for item in items))
    return "\n\n".join(paragraphs)


def plain_brackets(text: str) -> str:
    """Help text with its config sections (``[tables]``, ``[[subscribers]]``) shown as written: typer reads
    help as rich markup, where ``[banners]`` would be a style tag and vanish."""
    return escape(text.replace("\\[", "["))


def reflow_help(application: typer.Typer) -> None:
    """Give every command of ``application`` (sub-apps included) its docstring reflowed as its help, and
    every help text (options' too) its brackets as written."""
    for command in application.registered_commands:
        text = command.help or (command.callback.__doc__ if command.callback else None)
        if text:
            command.help = plain_brackets(reflow(text))
        if command.callback is not None:
            for param in inspect.signature(command.callback).parameters.values():
                if isinstance(param.default, ParameterInfo) and param.default.help:
                    param.default.help = plain_brackets(param.default.help)
    for group in application.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


@dataclass
class AppContext:
    """What every command receives: the study folder, the config (loaded once, on first use), the two
    consoles (``out`` for results, ``err`` for warnings and errors) and the clock. :meth:`run` gives the
    library its :class:`~wavetool.context.Context`: this clock and the CLI's one progress display. The study
    folder given as ``study_option`` (None: found upward from the current directory, as git finds a
    repository)."""

    study_option: Path | None
    traceback: bool = False
    _config: StudyConfig | None = None
    out: Console = field(default_factory=make_console)
    err: Console = field(default_factory=lambda: make_console(stderr=True))
    clock: Clock = system_clock

    @property
    def study(self) -> Path:
        return self.study_option if self.study_option is not None else find_study(Path.cwd())

    @property
    def config(self) -> StudyConfig:
        if self._config is None:
            self._config = load_config(self.study)
        return self._config

    def context(self) -> Context:
        """The library Context of a command that shows no progress: just the clock."""
        return Context(clock=self.clock)

    @contextlib.contextmanager
    def run(self, title: str, *, lines: bool = False, quiet: bool = False) -> Iterator[Context]:
        """The library Context of one command: progress shown on ``out`` under ``title`` (a live bar on a
        terminal; when piped, each step as a plain line with ``lines``, else nothing; nothing when ``quiet``)."""
        with progress_display(self.out, title, lines=lines, quiet=quiet) as progress:
            yield Context(progress=progress, clock=self.clock)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wavetool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    study: Path | None = typer.Option(
        None,
        "--study",
        "-C",
        envvar="WAVETOOL_STUDY",
        help="Study folder (holds wavetool.toml). Default: the current folder or the nearest one above it that holds"
        " a wavetool.toml.",
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
    ctx.obj = AppContext(study_option=study, traceback=traceback)


def ctx_obj(ctx: typer.Context) -> AppContext:
    """The AppContext of the running command."""
    return ctx.find_root().obj
