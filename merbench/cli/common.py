"""Plumbing every command shares: user errors as one line + exit 2, and console output."""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

from merbench.errors import MerbenchError, excerpt, one_line

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

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def user_errors(fn: Callable) -> Callable:
    """A MerbenchError becomes ``error: <message>`` on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MerbenchError as e:
            print_error(str(e))
            raise typer.Exit(2) from None

    return wrapper


def print_error(message: str) -> None:
    """The one way an error reaches the user: ``error: <message>``, one bounded line on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


class MerbenchGroup(TyperGroup):
    """The top-level command group: a bad option or argument (Click's usage errors: a missing
    argument, ``--seeds x``, a value out of its range) is merbench's own one-line ``error:``
    and exit 2, like every other bad input, instead of Click's multi-line box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as e:  # ``merbench`` alone: the help, as before
            e.show()
            code = e.exit_code
        except click.ClickException as e:
            command = e.ctx.command_path if getattr(e, "ctx", None) else "merbench"
            given = _given(getattr(e, "param", None), sys.argv[1:] if args is None else list(args))
            print_error(f"{command}: {e.format_message()}{given} (see {command} --help)")
            code = 2
        except getattr(click, "Abort", ()):  # Typer 0.29's own Click copy has no Abort
            typer.echo("Aborted!", err=True)
            code = 1
        except MerbenchError as e:  # raised outside a command body, e.g. while parsing
            print_error(str(e))
            code = 2
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


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
