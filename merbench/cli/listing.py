"""merbench models | merbench datasets: lists drawn from the registries.

``merbench models`` reads what merbench's own model files declare (``models.declared``)
without importing them, so it needs no torch; with a plugin in use, or the registry already
loaded, it lists the registry.
"""

from __future__ import annotations

from pathlib import Path

import typer

from merbench import optional, plugins
from merbench.cli.common import user_errors
from merbench.models.declared import Undeclared, declared_models, doc_summary
from merbench.registry import DATASETS, MODELS
from merbench.width import fit_columns, output_width


# Below this many columns for the summary, summaries go under the table, one per line.
SUMMARY_MIN = 30
HEADER = ["name", "class", "level", "inputs", "ablation components", "summary"]


@user_errors
def models(tiny: bool = typer.Option(False, "--tiny", help="Also list the tiny test variants.")) -> None:
    """List registered models: level, inputs, ablation components, summary."""
    rows = declared_rows() if not (MODELS.loaded or plugins.in_use()) else registered_rows()
    print_listing("models", HEADER, [row[:-1] for row in rows if tiny or not row[-1]])


def declared_rows() -> list[list]:
    """[name, class, level, inputs, components, summary, tiny] from the model files' source."""
    try:
        found = declared_models()
    except Undeclared:
        return registered_rows()
    rows = []
    for d in found:
        missing = d.missing()
        note = f" [needs pip install 'merbench[{optional.EXTRAS.get(missing, missing)}]']" if missing else ""
        rows.append([d.name, d.class_name, d.level, d.inputs, ", ".join(d.components) or "-", d.summary + note, d.tiny])
    return rows


def registered_rows() -> list[list]:
    """The same rows from the imported classes (plugins included)."""
    # start-up: torch only when a plugin is in use or the registry is loaded
    from merbench.models.build import model_class

    rows = []
    for entry in MODELS.entries():
        cls = model_class(entry.name)
        rows.append([entry.name, cls.__name__, str(getattr(cls, "level", "")), cls.inputs,
                     ", ".join(cls.components) or "-", summary_of(entry) + origin_note(entry.name),
                     bool(entry.meta.get("tiny"))])
    return rows


def summary_of(entry) -> str:
    """An entry's one-sentence summary: its own (``summary=`` at registration: a variant such as
    ``late_mlp`` of a class another name also registers), else its class docstring's first
    paragraph as plain text (:func:`merbench.models.declared.doc_summary`)."""
    if entry.meta.get("summary"):
        return entry.meta["summary"]
    # start-up: torch only for this command, not for --help
    from merbench.models.build import model_class

    return doc_summary(model_class(entry.name).__doc__)


def print_listing(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A listing at merbench's one width (``merbench.width``) with no name cut: the last column
    (the summary) goes under the table, one line per row, when it would get fewer than
    SUMMARY_MIN columns. Every cell is text, never Rich markup ("[plugin: x.py]",
    "merbench[graph]" stay whole)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def build(columns: list[str], cells: list[list[str]]) -> Table:
        table = Table()
        for j, name in enumerate(columns):
            # Names are typed by the user (--drop, model names): never wrapped inside a name.
            table.add_column(name, no_wrap=j < len(columns) - 1 and name != "ablation components")
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        return table

    width = output_width()
    table = build(header, rows)
    needed = fit_columns(table, rows, width)
    narrow = width is not None and min(c.width or SUMMARY_MIN for c in table.columns[-1:]) < SUMMARY_MIN
    if narrow:
        table = build(header[:-1], [row[:-1] for row in rows])
        needed = fit_columns(table, [row[:-1] for row in rows], width)
    out = Console(width=needed, highlight=False)
    out.print(Text(title), soft_wrap=True)
    out.print(table)
    if narrow:  # name, then its summary wrapped beside it (hanging under the summary, not the name)
        summaries = Table.grid(padding=(0, 1))
        summaries.add_column(no_wrap=True)
        summaries.add_column()
        for row in rows:
            summaries.add_row(Text(row[0]), Text(row[-1]))
        out.print(Text(f"{header[-1]}:"))
        out.print(summaries)


def origin_note(name: str) -> str:
    """Where a model not of merbench's base install comes from, or what it needs."""
    # start-up: torch only for this command, not for --help
    from merbench.models.build import model_class

    source = plugins.plugin_of(name)
    if source:
        return f" [plugin: {Path(source.file).name or source.origin}]"
    missing = optional.missing_for(model_class(name))
    return f" [needs pip install 'merbench[{optional.EXTRAS.get(missing, missing)}]']" if missing else ""


@user_errors
def datasets() -> None:
    """List registered datasets: task, default table layout, summary."""
    rows = [[e.name, e.meta.get("task", "?"), e.meta.get("layout", "?"), doc_summary(e.obj.__doc__)]
            for e in DATASETS.entries()]
    print_listing("datasets", ["name", "task", "layout", "summary"], rows)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("datasets")(datasets)
