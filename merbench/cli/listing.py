"""merbench models | merbench datasets: lists drawn from the registries."""

from __future__ import annotations

import typer

from merbench.cli.common import load_registries, user_errors


# Below this many columns for the summary, summaries go under the table, one per line.
SUMMARY_MIN = 30


@user_errors
def models(tiny: bool = typer.Option(False, "--tiny", help="Also list the tiny test variants.")) -> None:
    """List registered models: level, inputs, ablation components, summary."""
    load_registries()
    from merbench.models.build import model_class
    from merbench.registry import MODELS

    rows = []
    for entry in MODELS.entries():
        if entry.meta.get("tiny") and not tiny:
            continue
        cls = model_class(entry.name)
        rows.append([entry.name, cls.__name__, str(getattr(cls, "level", "")), cls.inputs,
                     ", ".join(cls.components) or "-", summary_of(entry) + origin_note(entry.name)])
    print_listing("models", ["name", "class", "level", "inputs", "ablation components", "summary"], rows)


def summary_of(entry) -> str:
    """An entry's one-sentence summary: its own (``summary=`` at registration: a variant such as
    ``late_mlp`` of a class another name also registers), else the first paragraph of its
    class's docstring as plain text (reStructuredText's double backticks dropped)."""
    if entry.meta.get("summary"):
        return entry.meta["summary"]
    from merbench.models.build import model_class

    return _doc_summary(model_class(entry.name))


def print_listing(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A listing at merbench's one width (``merbench.width``) with no name cut: the last column
    (the summary) goes under the table, one line per row, when it would get fewer than
    SUMMARY_MIN columns. Every cell is text, never Rich markup ("[plugin: x.py]",
    "merbench[graph]" stay whole)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from merbench.width import fit_columns, output_width

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
    from merbench.registry import DATASETS

    rows = [[e.name, e.meta.get("task", "?"), e.meta.get("layout", "?"), _doc_summary(e.obj)]
            for e in DATASETS.entries()]
    print_listing("datasets", ["name", "task", "layout", "summary"], rows)


def _doc_summary(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().split("\n\n")[0]
    return " ".join(doc.replace("``", "").split())


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("datasets")(datasets)
