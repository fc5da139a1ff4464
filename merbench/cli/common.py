"""Plumbing every command shares: user errors as one line + exit 2, and console output."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import typer
from rich.console import Console

from merbench.errors import MerbenchError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def user_errors(fn: Callable) -> Callable:
    """A MerbenchError becomes ``error: <message>`` on stderr and exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MerbenchError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def load_registries() -> None:
    """Import model and dataset modules so their registrations run (torch import: slow-ish)."""
    import merbench.data  # noqa: F401
    import merbench.models  # noqa: F401


def command_line() -> list[str]:
    return ["merbench", *sys.argv[1:]]
