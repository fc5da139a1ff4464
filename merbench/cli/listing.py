"""merbench models | merbench datasets: lists drawn from the registries.

``merbench models`` reads what merbench's own model files declare (``models.declared``)
without importing them, so it needs no torch; with a plugin in use, or the registry already
loaded, it lists the registry.
"""

from __future__ import annotations

import typer

from merbench import optional, plugins
from merbench.cli.common import console, user_errors
from merbench.models.declared import Undeclared, declared_models
from merbench.registry import DATASETS, MODELS


@user_errors
def models(tiny: bool = typer.Option(False, "--tiny", help="Also list the tiny test variants.")) -> None:
    """List registered models: level, inputs, ablation components, summary."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="models")
    for col in ("name", "class", "level", "inputs"):
        table.add_column(col, no_wrap=True)
    table.add_column("ablation components")
    table.add_column("summary", ratio=1)
    rows = declared_rows() if not (MODELS.loaded or plugins.in_use()) else registered_rows()
    for row in rows:
        if row[-1] and not tiny:
            continue
        # Every cell is text, never Rich markup: "[plugin: x.py]", "merbench[graph]" stay whole.
        table.add_row(*(escape(cell) for cell in row[:-1]))
    console.print(table)


def declared_rows() -> list[tuple]:
    """(name, class, level, inputs, components, summary, tiny) from the model files' source."""
    rows = []
    try:
        found = declared_models()
    except Undeclared:
        return registered_rows()
    for d in found:
        missing = d.missing()
        note = f" [needs pip install 'merbench[{optional.EXTRAS.get(missing, missing)}]']" if missing else ""
        rows.append((d.name, d.class_name, d.level, d.inputs, ", ".join(d.components) or "-", d.summary + note, d.tiny))
    return rows


def registered_rows() -> list[tuple]:
    """The same rows from the imported classes (plugins included)."""
    # start-up: torch only when a plugin is in use or the registry is loaded
    from merbench.models.build import model_class

    rows = []
    for entry in MODELS.entries():
        cls = model_class(entry.name)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append((entry.name, cls.__name__, str(getattr(cls, "level", "")), cls.inputs,
                     ", ".join(cls.components) or "-", summary + origin_note(entry.name), bool(entry.meta.get("tiny"))))
    return rows


def origin_note(name: str) -> str:
    """Where a model not of merbench's base install comes from, or what it needs."""
    # start-up: torch only for this command, not for --help
    from pathlib import Path

    from merbench.models.build import model_class

    source = plugins.plugin_of(name)
    if source:
        return f" [plugin: {Path(source.file).name or source.origin}]"
    missing = optional.missing_for(model_class(name))
    return f" [needs pip install 'merbench[{optional.EXTRAS.get(missing, missing)}]']" if missing else ""


@user_errors
def datasets() -> None:
    """List registered datasets: task, default table layout, summary."""
    from rich.markup import escape
    from rich.table import Table

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
