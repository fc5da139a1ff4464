"""Plumbing every command shares: user errors as one line + exit 2, and console output."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional, get_args, get_origin

import typer
from rich.console import Console
from typer.core import TyperGroup

from merbench.errors import MerbenchError, Terminated, excerpt, one_line

# Options that name a real dataset release, shared by `extract` and `finetune` (one syntax).
Dataset = Annotated[str, typer.Option("--dataset", help="iemocap, mosei, meld or mosi.")]
DatasetFormat = Annotated[Optional[str], typer.Option("--format", help="Name the format instead of detecting it (see docs/datasets/).")]
Labels = Annotated[Optional[str], typer.Option("--labels", help="Label set, e.g. iemocap6, iemocap4, meld7, meld3, binary (mosi_bclstm).")]
Protocol = Annotated[Optional[str], typer.Option("--protocol", help="e.g. session5-test or loso (IEMOCAP).")]
Fold = Annotated[Optional[int], typer.Option("--fold", min=0, help="loso: the test session (1-5); its dialogues never reach a model or encoder.")]

try:  # Typer >= 0.2x carries its own copy of Click; older ones use Click itself
    from typer import _click as click
except ImportError:  # pragma: no cover - depends on the installed Typer
    import click

# Text, never Rich markup: a path, an error or a name with brackets ("[plugin: x.py]",
# "index [3] out of range") prints as it is.
console = Console(highlight=False, markup=False)
err_console = Console(stderr=True, highlight=False, markup=False)


def user_errors(fn: Callable) -> Callable:
    """A MerbenchError becomes ``error: <message>`` on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MerbenchError as e:
            report = getattr(e, "report", None)  # merbench.api.GridFailed: training failures, not bad input
            if report is not None and report.grid is not None:
                finish(report, "rich")  # the summary and every failed cell, exit 1
            print_error(str(e))
            raise typer.Exit(2) from None

    return wrapper


def print_error(message: str) -> None:
    """The one way an error reaches the user: ``error: <message>``, one bounded line on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


# Options of merbench itself (cli/app.py's callback), given before the command's name.
GROUP_OPTIONS = ("--plugin", "--version")


class MerbenchGroup(TyperGroup):
    """The top-level command group: a bad option or argument (Click's usage errors: a missing
    argument, ``--seeds x``, a value out of its range) is merbench's own one-line ``error:``
    and exit 2, like every other bad input, instead of Click's multi-line box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        plain_types(self)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as e:  # ``merbench`` alone: the help, as before
            e.show()
            code = e.exit_code
        except click.ClickException as e:
            command = e.ctx.command_path if getattr(e, "ctx", None) else "merbench"
            given = _given(getattr(e, "param", None), sys.argv[1:] if args is None else list(args))
            if getattr(e, "option_name", None) in GROUP_OPTIONS:  # `merbench models --plugin x.py`
                root = e.ctx.find_root().command_path
                given += (f"; {e.option_name} is an option of merbench itself and goes before the command: "
                          f"{root} {e.option_name} ... {command[len(root):].strip()}")
            print_error(f"{command}: {e.format_message()}{given} (see {command} --help)")
            code = 2
        except getattr(click, "Abort", ()):  # Typer 0.29's own Click copy has no Abort
            typer.echo("Aborted!", err=True)
            code = 1
        except MerbenchError as e:  # raised outside a command body, e.g. while parsing
            print_error(str(e))
            code = 2
        except Terminated as e:  # SIGTERM stopped a training run, its last.pt written
            typer.echo(f"stopped: {one_line(str(e))}", err=True)
            code = Terminated.EXIT_CODE
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


# What help shows for a value instead of Typer's Python annotation (<list[str]>, <bool>):
# Click's plain names; a flag shows nothing.
_TYPE_LABELS = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH", bool: "BOOLEAN"}


def plain_types(command) -> None:
    """Every option and argument of ``command`` and its subcommands (help options included)
    shown with a plain value name (TEXT, PATH, INTEGER) or, for a flag, none."""
    for param in getattr(command, "params", []):
        _plain_type(param)
    original = command.get_help_option
    command.get_help_option = lambda ctx: _plain_type(original(ctx))
    for sub in getattr(command, "commands", {}).values():
        plain_types(sub)


def _plain_type(param):
    if param is None or getattr(param, "metavar", None) is not None:
        return param
    if getattr(param, "is_flag", False):
        label = ""
    else:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        repeated = get_origin(annotation) is list
        label = _TYPE_LABELS.get(get_args(annotation)[0] if repeated else annotation)
        if label is None:
            return param
        label += "..." if repeated and not hasattr(param, "is_flag") else ""  # an argument taking several
    param.display_type_rich = lambda ctx: label
    return param


def _given(param, args: list[str]) -> str:
    """`` (got 'x')`` for the value the user gave an option Click refused, which Click's
    message does not always quote."""
    opts = getattr(param, "opts", None) or []
    for i, arg in enumerate(args):
        for opt in opts:
            if opt.startswith("-") and arg.startswith(opt + "="):
                return f" (got {excerpt(arg[len(opt) + 1:])})"
            if arg == opt and i + 1 < len(args) and not getattr(param, "is_flag", False):
                return f" (got {excerpt(args[i + 1])})"
    return ""


def command_line() -> list[str]:
    return ["merbench", *sys.argv[1:]]


def finish(report, fmt: str) -> None:
    """After ``merbench.api``'s grid function: a summary line, the tables, then every failed
    cell; exit 1 when any cell failed. A dry run printed its plan already."""
    if report.grid is None:
        typer.echo("dry run: nothing trained")
        return
    run = report.grid
    err_console.print(f"grid {run.grid_dir}: {len(run.cells)} cells, {len(run.trained)} trained, {run.reused} reused, "
                      f"{len(run.failed)} failed ({run.wall_seconds:.1f} s)", soft_wrap=True)
    for note in report.notes:
        err_console.print(note, soft_wrap=True)
    if report.figure is not None:
        err_console.print(f"figure: {report.figure}", soft_wrap=True)
    if report.tables:
        typer.echo(report.render(fmt))
    if run.failed:
        for cell in run.failed:
            typer.echo(f"failed: {cell.describe()} ({cell.run}): {run.errors.get(cell.run)}", err=True)
        typer.echo(f"FAILED: {len(run.failed)} of {len(run.cells)} cells; merbench grid status {run.grid_dir}",
                   err=True)
        raise typer.Exit(1)
