"""Tables in the papers' layouts, rendered as rich, Markdown, LaTeX or CSV.

Layouts: ``iemocap`` = HFF Table 3 (per-class F1, then ACC and WF1); ``mosei`` = HFF Table 2
(ACC-7, ACC-2) with both ACC-2 variants named apart plus F1, MAE, Corr. Tables never train
and never import models: they read results files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from tabulate import tabulate

from merbench.aggregate import Cell, Group, row_labels
from merbench.errors import MerbenchError
from merbench.metrics import LOWER_IS_BETTER

FORMATS = ("rich", "markdown", "latex", "csv")
LAYOUTS = ("iemocap", "mosei")
MOSEI_COLUMNS = [("acc7", "ACC-7"), ("acc2_has0", "ACC-2 (has0)"), ("acc2_non0", "ACC-2 (non0)"),
                 ("f1_non0", "F1 (non0)"), ("mae", "MAE"), ("corr", "Corr")]


@dataclass
class Table:
    title: str
    columns: list[str]  # header labels (first = row label column)
    rows: list[list[str]]
    cells: list[list[Cell | None]] = field(default_factory=list)  # numeric cells, for bolding
    lower_is_better: list[bool] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt_cell(cell: Cell | None, digits: int = 1) -> str:
    if cell is None:
        return "-"
    text = f"{cell.mean:.{digits}f}"
    if cell.n > 1:
        text += f" ± {cell.std:.{digits}f} ({cell.n})"
    return text


def layout_for(groups: list[Group], layout: str | None) -> str:
    if layout is not None:
        if layout not in LAYOUTS:
            raise MerbenchError(f"--layout {layout}: expected one of {', '.join(LAYOUTS)}")
        return layout
    tasks = {g.dataset["task"] for g in groups}
    if len(tasks) > 1:
        raise MerbenchError("the runs mix classification and regression datasets; pass --layout")
    return "mosei" if tasks == {"regression"} else "iemocap"


def columns_for(groups: list[Group], layout: str) -> list[tuple[str, str]]:
    if layout == "mosei":
        return MOSEI_COLUMNS
    labels = groups[0].dataset["label_names"]
    if any(g.dataset["label_names"] != labels for g in groups):
        raise MerbenchError("the runs use different label sets; table them separately")
    return [(f"f1_{n}", f"{n.capitalize()} F1") for n in labels] + [("acc", "ACC"), ("wf1", "WF1")]


def results_table(groups: list[Group], layout: str | None = None, split: str = "test") -> Table:
    if not groups:
        raise MerbenchError("no finished runs to tabulate")
    layout = layout_for(groups, layout)
    columns = columns_for(groups, layout)
    labels = row_labels(groups)
    cells = [[g.cell(metric, split) for metric, _ in columns] for g in groups]
    digits = [3 if m in ("mae", "corr") else 1 for m, _ in columns]
    rows = [[label] + [fmt_cell(c, d) for c, d in zip(row, digits)] for label, row in zip(labels, cells)]
    datasets = sorted({g.dataset["name"] for g in groups})
    title = f"{', '.join(datasets)} ({split}, layout {layout}: " + (
        "HFF Table 2)" if layout == "mosei" else "HFF Table 3)")
    notes = [f"{g.failed} failed run(s) of {lab} left out" for g, lab in zip(groups, labels) if g.failed]
    return Table(title, ["Model"] + [c for _, c in columns], rows, cells,
                 [m in LOWER_IS_BETTER for m, _ in columns], notes)


def _bold_best(table: Table, wrap) -> list[list[str]]:
    rows = [list(r) for r in table.rows]
    if len(rows) < 2 or not table.cells:
        return rows
    for j in range(len(table.cells[0])):
        means = [(row[j].mean, i) for i, row in enumerate(table.cells) if row[j] is not None]
        if not means:
            continue
        best = (min if table.lower_is_better[j] else max)(means)[0]
        for value, i in means:
            if value == best:
                rows[i][j + 1] = wrap(rows[i][j + 1])
    return rows


def render(table: Table, fmt: str = "rich") -> str:
    if fmt not in FORMATS:
        raise MerbenchError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    notes = "".join(f"\n{n}" for n in table.notes)
    if fmt == "markdown":
        rows = _bold_best(table, lambda s: f"**{s}**")
        return f"**{table.title}**\n\n" + tabulate(rows, table.columns, tablefmt="github", disable_numparse=True) + notes
    if fmt == "latex":
        rows = _bold_best(table, lambda s: "\\textbf{" + s.replace("±", "$\\pm$") + "}")
        rows = [[c if c.startswith("\\textbf") else c.replace("±", "$\\pm$") for c in r] for r in rows]
        body = tabulate(rows, table.columns, tablefmt="latex_raw", disable_numparse=True)
        return f"% {table.title}\n{body}{notes}"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
        return buf.getvalue().rstrip("\n")
    return render_rich(table)


def render_rich(table: Table) -> str:
    from rich.console import Console
    from rich.table import Table as RichTable

    rt = RichTable(title=table.title)
    for i, c in enumerate(table.columns):
        rt.add_column(c, justify="left" if i == 0 else "right")
    for row in _bold_best(table, lambda s: f"[bold]{s}[/bold]"):
        rt.add_row(*row)
    console = Console(record=True, width=max(100, 14 * len(table.columns)), force_terminal=False)
    with console.capture() as cap:
        console.print(rt)
        for n in table.notes:
            console.print(n)
    return cap.get().rstrip("\n")
