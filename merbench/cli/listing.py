"""merbench models | merbench datasets: lists drawn from the registries."""

from __future__ import annotations

import typer

from merbench.cli.common import console, load_registries, user_errors


@user_errors
def models(tiny: bool = typer.Option(False, "--tiny", help="Also list the tiny test variants.")) -> None:
    """List registered models: level, inputs, ablation components, summary."""
    load_registries()
    from rich.markup import escape
    from rich.table import Table

    from merbench.models.build import model_class
    from merbench.registry import MODELS

    table = Table(title="models")
    for col in ("name", "class", "level", "inputs"):
        table.add_column(col, no_wrap=True)
    table.add_column("ablation components")
    table.add_column("summary", ratio=1)
    for entry in MODELS.entries():
        if entry.meta.get("tiny") and not tiny:
            continue
        cls = model_class(entry.name)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        summary += origin_note(entry.name)
        # Every cell is text, never Rich markup: "[plugin: x.py]", "merbench[graph]" stay whole.
        table.add_row(*(escape(cell) for cell in (entry.name, cls.__name__, str(getattr(cls, "level", "")),
                                                  cls.inputs, ", ".join(cls.components) or "-", summary)))
    console.print(table)


def origin_note(name: str) -> str:
    """Where a model not of merbench's base install comes from, or what it needs."""
    from pathlib import Path

    from merbench.models.build import model_class
    from merbench.optional import EXTRAS, missing_for
    from merbench.plugins import plugin_of

    source = plugin_of(name)
    if source:
        return f" [plugin: {Path(source.file).name or source.origin}]"
    missing = missing_for(model_class(name))
    return f" [needs pip install 'merbench[{EXTRAS.get(missing, missing)}]']" if missing else ""


@user_errors
def datasets() -> None:
    """List registered datasets: task, default table layout, summary."""
    load_registries()
    from rich.markup import escape
    from rich.table import Table

    from merbench.registry import DATASETS

    table = Table(title="datasets")
    for col in ("name", "task", "layout"):
        table.add_column(col, no_wrap=True)
    table.add_column("summary")
    for entry in DATASETS.entries():
        doc = (entry.obj.__doc__ or "").strip().splitlines()
        table.add_row(*(escape(cell) for cell in (entry.name, entry.meta.get("task", "?"), entry.meta.get("layout", "?"),
                                                  doc[0] if doc else "")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("datasets")(datasets)
