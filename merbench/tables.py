"""Tables in the papers' layouts, rendered as rich, Markdown, LaTeX, CSV or JSON.

Layouts: ``iemocap`` = HFF Table 3 (per-class F1, then ACC and WF1); ``mosei`` = HFF Table 2
(ACC-7, ACC-2) with both ACC-2 variants named apart plus F1, MAE, Corr. Tables never train
and never import models: they read results files.

A table's numeric cells are :class:`Value` objects (ours as mean, std and n over runs, a
paper's number beside it, marks such as †), so every format renders them from the numbers
rather than re-parsing text: Markdown escapes its cells, LaTeX aligns numbers on the decimal
point, CSV and JSON give mean, std and n as separate numeric fields.

A row or cell whose runs went without some of their model's components (switches on in the
recipe that build nothing with the run's modalities, ``model.inactive_components`` in
result.json: a paper model on one modality) is listed in ``Table.without``. Rich, Markdown and
LaTeX mark it with ‡ and say under the table what it ran without; CSV gives a "ran without"
column and JSON a ``ran_without`` field instead of the glyph.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from tabulate import tabulate

from merbench.aggregate import Cell, DataPart, Group, by_data, row_labels
from merbench.errors import MerbenchError
from merbench.metrics import Metric
from merbench.width import fit_columns, output_width

FORMATS = ("rich", "markdown", "latex", "csv", "json")
LAYOUTS = ("iemocap", "mosei")
LAYOUT_TASK = {"iemocap": "classification", "mosei": "regression"}
MOSEI_METRICS = ["acc7", "acc2_has0", "acc2_non0", "f1_non0", "mae", "corr"]


@dataclass
class Value:
    """One numeric cell: ours over runs, optionally a paper's number beside it, and marks (†)."""

    ours: Cell | None
    digits: int = 1
    paper: float | None = None
    marks: str = ""

    def text(self) -> str:
        """'62.1 ± 0.4 (3) | 62.8 (Δ -0.7) †': ours, the paper's number and ours minus it."""
        d = self.digits
        text = "-" if self.ours is None else f"{self.ours.mean:.{d}f}"
        if self.ours is not None and self.ours.n > 1:
            text += f" ± {self.ours.std:.{d}f} ({self.ours.n})"
        if self.paper is not None:
            text += f" | {self.paper:.{d}f}"
            if self.ours is not None:
                text += f" (Δ {self.ours.mean - self.paper:+.{d}f})"
        return text + (f" {self.marks}" if self.marks else "")

    def record(self) -> dict:
        """The numbers behind the cell, for JSON."""
        out: dict = {"mean": None, "std": None, "n": 0, "values": []}
        if self.ours is not None:
            # One run has no spread: std is null (empty in CSV), as rich and Markdown show none.
            out.update(mean=self.ours.mean, std=self.ours.std if self.ours.n > 1 else None, n=self.ours.n,
                       values=list(self.ours.values))
        if self.paper is not None:
            out["paper"] = self.paper
        if self.marks:
            out["marks"] = self.marks
        return out


# The mark of a row or cell whose model ran without some of its components. Not †: compare
# --references and table --significance already give † to numeric cells.
WITHOUT_MARK = "‡"
WITHOUT_FIELD = "ran_without"  # JSON
WITHOUT_COLUMN = "ran without"  # CSV


@dataclass(frozen=True)
class Without:
    """What a row's or cell's runs went without: switches on in their recipe that built nothing
    with their modalities (result.json ``model.inactive_components``)."""

    components: tuple[str, ...]
    modalities: tuple[str, ...]

    def note(self, who: str = "") -> str:
        """'hrdf_mer ran without caa, cmdf (one modality: text); not the paper's model'."""
        where = (f"one modality: {self.modalities[0]}" if len(self.modalities) == 1
                 else f"modalities: {'+'.join(self.modalities)}")
        return (f"{who + ' ' if who else ''}ran without {', '.join(self.components)} ({where}); "
                f"not the paper's model")


def without_of(results: list) -> Without | None:
    """The components that runs of one recipe went without (None: all built, or files written
    before result.json recorded it)."""
    components: list[str] = []
    for r in results:
        components += [c for c in r.model.inactive_components or () if c not in components]
    if not components:
        return None
    return Without(tuple(components), tuple(results[0].dataset.modalities))


@dataclass
class Table:
    title: str
    columns: list[str]  # header labels (first = row label column)
    rows: list[list[str | Value]]  # row label first, then text or numeric cells
    lower_is_better: list[bool] = field(default_factory=list)  # per data column; columns beyond it are not bolded
    notes: list[str] = field(default_factory=list)
    per_run: bool = False  # each numeric cell is one run's number: CSV gives it as one column, no std / n
    # (row, column) -> what its runs went without; column 0 = the whole row (its label is marked).
    without: dict[tuple[int, int], Without] = field(default_factory=dict)

    def without_notes(self, mark: str = WITHOUT_MARK) -> list[str]:
        """One note per distinct shortfall, row marks naming their row: the lines under the table."""
        out: list[str] = []
        for (i, j), w in sorted(self.without.items()):
            who = str(self.rows[i][0]) if j == 0 else ""
            note = f"{mark} {w.note(who)}" if mark else w.note(who)
            if note not in out:
                out.append(note)
        return out

    def marked(self, i: int, j: int, text: str) -> str:
        """``text`` of cell (i, j) with the mark when its runs went without components."""
        return f"{text} {WITHOUT_MARK}" if (i, j) in self.without else text

    @property
    def cells(self) -> list[list[Cell | None]]:
        """Our numbers per data column (None for text or empty cells)."""
        return [[c.ours if isinstance(c, Value) else None for c in row[1:]] for row in self.rows]

    def best(self) -> set[tuple[int, int]]:
        """(row, column) of each column's best mean; ties are all best; needs two rows."""
        out: set[tuple[int, int]] = set()
        if len(self.rows) < 2:
            return out
        cells = self.cells
        for j in range(len(self.columns) - 1):
            means = [(row[j].mean, i) for i, row in enumerate(cells) if j < len(row) and row[j] is not None]
            if len(means) < 2 or j >= len(self.lower_is_better):
                continue
            best = (min if self.lower_is_better[j] else max)(means)[0]
            out |= {(i, j + 1) for value, i in means if value == best}
        return out


def layout_for(groups: list[Group], layout: str | None) -> str:
    tasks = {g.dataset.task for g in groups}
    if layout is not None:
        if layout not in LAYOUTS:
            raise MerbenchError(f"--layout {layout}: expected one of {', '.join(LAYOUTS)}")
        wrong = sorted({g.dataset.name for g in groups if g.dataset.task != LAYOUT_TASK[layout]})
        if wrong:
            raise MerbenchError(f"--layout {layout}: is for {LAYOUT_TASK[layout]} datasets, and "
                                f"{', '.join(wrong)} is not (use --layout "
                                f"{'mosei' if layout == 'iemocap' else 'iemocap'}, or leave it out)")
        return layout
    if len(tasks) > 1:
        raise MerbenchError("the runs mix classification and regression datasets; pass --layout")
    return "mosei" if tasks == {"regression"} else "iemocap"


def columns_for(groups: list[Group], layout: str) -> list[tuple[str, str]]:
    if layout == "mosei":
        names = MOSEI_METRICS
    else:
        labels = groups[0].dataset.label_names
        if any(g.dataset.label_names != labels for g in groups):
            raise MerbenchError("the runs use different label sets; table them separately")
        names = [f"f1_{n}" for n in labels] + ["acc", "wf1"]
    return [(name, Metric.of(name).title) for name in names]


def by_dataset(groups: list[Group]) -> list[list[Group]]:
    """Groups split per dataset, task and data (first-seen order): one table each, never a best
    cell across two. A dataset whose task depends on its format (MOSI: bc-LSTM classification,
    MMSA / SDK regression) gets one table per task; runs on other data of one dataset (another
    fingerprint, features, protocol, corpus seed) one table each (:func:`merbench.aggregate.by_data`)."""
    return [part.groups for part in data_parts(groups)]


def data_parts(groups: list[Group]) -> list[DataPart]:
    out: dict[tuple[str, str], list[DataPart]] = defaultdict(list)
    for part in by_data(groups):
        g = part.groups[0]
        out[(g.dataset.name, g.dataset.task)].append(part)
    return [part for parts in out.values() for part in parts]


def results_table(groups: list[Group], layout: str | None = None, split: str = "test",
                  differs: list[str] | None = None) -> Table:
    """One dataset's runs on one set of data in a paper layout (``differs``: what sets that
    data apart from other tables'); use :func:`results_tables` for any runs."""
    if not groups:
        raise MerbenchError("no finished runs to tabulate")
    datasets = sorted({g.dataset.name for g in groups})
    if len(datasets) > 1:
        raise MerbenchError(f"runs of {len(datasets)} datasets ({', '.join(datasets)}) in one table")
    parts = by_data(groups)
    if len(parts) > 1:
        raise MerbenchError(f"runs on {len(parts)} sets of {datasets[0]} data in one table "
                            f"({'; '.join(', '.join(p.differs) for p in parts)}); table them separately")
    layout = layout_for(groups, layout)
    columns = columns_for(groups, layout)
    labels = row_labels(groups)
    rows = [[label] + [Value(g.cell(name, split), Metric.of(name).digits) for name, _ in columns]
            for label, g in zip(labels, groups)]
    data = f", {', '.join(differs)}" if differs else ""
    title = (f"{datasets[0]}{data} ({split}, layout {layout}: "
             + ("HFF Table 2)" if layout == "mosei" else "HFF Table 3)"))
    notes = [f"{g.failed} failed run(s) of {lab} left out" for g, lab in zip(groups, labels) if g.failed]
    without = {(i, 0): w for i, w in enumerate(without_of(g.results) for g in groups) if w is not None}
    return Table(title, ["Model"] + [c for _, c in columns], rows,
                 [Metric.of(name).lower_is_better for name, _ in columns], notes, without=without)


def results_tables(groups: list[Group], layout: str | None = None, split: str = "test") -> list[Table]:
    """One :func:`results_table` per dataset, task and data, titled with what sets its data
    apart from the others' (``synthetic, dataset.seed=3``)."""
    if not groups:
        raise MerbenchError("no finished runs to tabulate")
    parts = data_parts(groups)
    for part in parts:  # every layout error before any table
        layout_for(part.groups, layout)
    return [results_table(part.groups, layout, split, part.differs) for part in parts]


# ---------------------------------------------------------------------------------------------
# Rendering


def render(table: Table, fmt: str = "rich") -> str:
    return render_all([table], fmt)


def render_all(tables: list[Table], fmt: str) -> str:
    """Tables one after another in ``fmt``; JSON is one list of tables."""
    if fmt not in FORMATS:
        raise MerbenchError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([_json(t) for t in tables], indent=2, ensure_ascii=False, allow_nan=False)
    one = {"markdown": _markdown, "latex": _latex, "csv": _csv, "rich": _rich}[fmt]
    return "\n\n".join(one(t) for t in tables)


def _text(cell: str | Value) -> str:
    return cell.text() if isinstance(cell, Value) else str(cell)


# Markdown: GitHub tables. Every ASCII punctuation character may be backslash-escaped in GFM;
# escaping the ones that make structure keeps a "|" inside a cell (ours | paper) in its cell.
# "_" stays: inside words (mlp_tiny) GFM never reads it as emphasis.
_MD_SPECIAL = re.compile(r"([\\|*`\[\]<>])")


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _markdown(table: Table) -> str:
    best = table.best()
    rows = []
    for i, row in enumerate(table.rows):
        out = []
        for j, cell in enumerate(row):
            text = md_escape(table.marked(i, j, _text(cell)))
            out.append(f"**{text}**" if (i, j) in best else text)
        rows.append(out)
    body = tabulate(rows, [md_escape(c) for c in table.columns], tablefmt="github", disable_numparse=True)
    notes = "".join(f"\n\n{md_escape(n)}" for n in table.notes + table.without_notes())
    return f"**{md_escape(table.title)}**\n\n{body}{notes}"


def _csv(table: Table) -> str:
    """Header row, then one row per table row; numeric cells become ``<col> mean / std / n``
    (plus ``paper`` and ``marks`` where a column has them) holding plain numbers; in a table of
    single runs (``per_run``) a numeric cell is the one column ``<col>``."""
    kinds = []
    for j, name in enumerate(table.columns):
        values = [row[j] for row in table.rows if j < len(row) and isinstance(row[j], Value)]
        if not values:
            kinds.append((name, None))
            continue
        parts = (["mean"] if table.per_run else ["mean", "std", "n"]) + (["paper"] if any(v.paper is not None for v in values) else []) \
            + (["marks"] if any(v.marks for v in values) else [])
        kinds.append((name, parts))
    # A "ran without" column after each column with a marked cell (after the label: whole rows).
    short = {j for _, j in table.without}
    header = []
    for j, (name, parts) in enumerate(kinds):
        header += [name if parts is None or parts == ["mean"] else f"{name} {p}" for p in (parts or [None])]
        if j in short:
            header.append(WITHOUT_COLUMN if j == 0 else f"{name} {WITHOUT_COLUMN}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(table.rows):
        out = []
        for j, ((name, parts), cell) in enumerate(zip(kinds, row)):
            if parts is None:
                out.append(_text(cell))
            else:
                record = cell.record() if isinstance(cell, Value) else {"n": 0}
                out += ["" if record.get(p) is None else _csv_number(record.get(p)) for p in parts]
            if j in short:
                w = table.without.get((i, j))
                out.append("" if w is None else " ".join(w.components))
        writer.writerow(out)
    return buf.getvalue().rstrip("\n")


def _csv_number(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _json(table: Table) -> dict:
    rows = []
    for i, row in enumerate(table.rows):
        cells = {}
        for j, (name, cell) in enumerate(zip(table.columns[1:], row[1:]), start=1):
            cells[name] = cell.record() if isinstance(cell, Value) else {"text": _text(cell)}
            if (i, j) in table.without:
                cells[name][WITHOUT_FIELD] = list(table.without[i, j].components)
        record = {"label": _text(row[0]), "cells": cells}
        if (i, 0) in table.without:
            record[WITHOUT_FIELD] = list(table.without[i, 0].components)
        rows.append(record)
    return {"title": table.title, "columns": table.columns, "rows": rows,
            "notes": table.notes + table.without_notes(mark="")}


def _rich(table: Table) -> str:
    """A rich table at merbench's one width (``merbench.width``: COLUMNS, the terminal's, or
    when piped as wide as the rows need); no word cut, the title on one line above; bold best
    cells when writing to a terminal."""
    import sys

    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    rt = RichTable()
    for i, c in enumerate(table.columns):
        rt.add_column(c, justify="left" if i == 0 else "right")
    best = table.best()
    texts = [[table.marked(i, j, _text(c)) for j, c in enumerate(row)] for i, row in enumerate(table.rows)]
    for i, row in enumerate(texts):
        rt.add_row(*[_rich_text(text, (i, j) in best) for j, text in enumerate(row)])
    terminal = sys.stdout.isatty()
    width = fit_columns(rt, texts, output_width())
    console = Console(width=width, force_terminal=terminal, no_color=not terminal, highlight=False)
    with console.capture() as cap:
        console.print(Text(table.title), soft_wrap=True)
        console.print(rt)
        for n in table.notes + table.without_notes():
            console.print(n, markup=False)
    return cap.get().rstrip("\n")


def _rich_text(text: str, bold: bool):
    from rich.text import Text

    return Text(text, style="bold" if bold else "")


# LaTeX: booktabs, escaped text, numbers as separate right-aligned columns (mean, ± std, paper)
# so that fixed decimals per column put every decimal point under the one above; notes below
# the tabular as a footnote-sized paragraph. The tabular is set in a box first and scaled down to
# \columnwidth only when LaTeX measures it wider (two-column papers), never scaled up.
_LATEX_TEXT = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}", "≥": r"$\geq$", "≤": r"$\leq$",
    "×": r"$\times$", "→": r"$\rightarrow$", "–": "--", "—": "---",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_TEXT.get(ch, ch) for ch in str(text))


def _latex(table: Table) -> str:
    best = table.best()
    ncols = len(table.columns)
    numeric = [any(j < len(r) and isinstance(r[j], Value) for r in table.rows) for j in range(ncols)]
    paper = [numeric[j] and any(isinstance(r[j], Value) and r[j].paper is not None for r in table.rows)
             for j in range(ncols)]
    ns = {v.ours.n for r in table.rows for v in r if isinstance(v, Value) and v.ours is not None}
    spec, header = [], []
    for j, name in enumerate(table.columns):
        if not numeric[j]:
            spec.append("l" if j == 0 else "r")
            header.append(latex_escape(name))
            continue
        width = 3 if paper[j] else 2
        spec.append("r@{\\,}r" + ("@{\\enspace}r" if paper[j] else ""))
        header.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(name)}}}")
    lines = [f"% {latex_escape(table.title)}",
             "% needs \\usepackage{booktabs,graphicx} in the preamble",
             "\\begin{table}[t]", "\\centering",
             f"\\caption{{{latex_escape(table.title)}}}"]
    lines.append("\\setbox0=\\hbox{%")
    lines += [f"\\begin{{tabular}}{{{''.join(spec)}}}", "\\toprule", " & ".join(header) + " \\\\"]
    if any(paper):
        sub = []
        for j in range(ncols):
            if numeric[j]:
                sub += ["\\multicolumn{2}{c}{ours}"] + (["\\multicolumn{1}{c}{paper}"] if paper[j] else [])
            else:
                sub.append("")
        lines.append(" & ".join(sub) + " \\\\")
    lines.append("\\midrule")
    for i, row in enumerate(table.rows):
        out = []
        for j, cell in enumerate(row):
            bold = (i, j) in best
            if not numeric[j]:
                out.append(_bf(latex_escape(table.marked(i, j, _text(cell))), bold))
            elif not isinstance(cell, Value):
                text = latex_escape(table.marked(i, j, _text(cell)))
                out.append(f"\\multicolumn{{{3 if paper[j] else 2}}}{{c}}{{{text}}}")
            else:
                out += _latex_value(cell, bold, paper[j], ns, (i, j) in table.without)
        lines.append(" & ".join(out) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}}%",
              "\\ifdim\\wd0>\\columnwidth\\resizebox{\\columnwidth}{!}{\\usebox0}\\else\\usebox0\\fi"]
    notes = table.notes + table.without_notes()
    if len(ns) == 1 and max(ns) > 1:
        notes.insert(0, f"mean ± std over {max(ns)} runs (seeds)")
    elif len(ns) > 1:
        notes.insert(0, "mean ± std over the runs of each cell; a superscript gives a cell's number of runs")
    if notes:
        lines.append("\\par\\smallskip\\parbox{\\columnwidth}{\\footnotesize "
                     + " \\\\ ".join(latex_escape(n) for n in notes) + "}")
    lines.append("\\end{table}")
    return "\n".join(lines)


def _bf(text: str, bold: bool) -> str:
    return f"\\textbf{{{text}}}" if bold and text else text


def _latex_value(value: Value, bold: bool, with_paper: bool, ns: set[int], without: bool = False) -> list[str]:
    """[mean, std(, paper)] as separate cells; marks and an odd n hang to the right (\\rlap)."""
    d = value.digits
    if value.ours is None:
        mean, std = "--", ""
    else:
        mean = _bf(f"{value.ours.mean:.{d}f}", bold)
        std = _bf(f"$\\pm$\\,{value.ours.std:.{d}f}", bold) if value.ours.n > 1 else ""
    hang = ""
    if value.ours is not None and len(ns) > 1:
        hang += f"$^{{{value.ours.n}}}$"
    if value.marks:
        hang += latex_escape(value.marks)
    if without:
        hang += latex_escape(WITHOUT_MARK)
    last = std
    cells = [mean, std]
    if with_paper:
        cells.append("" if value.paper is None else f"({value.paper:.{d}f})")
        last = cells[-1]
    if hang:
        cells[-1] = f"{last}\\rlap{{{hang}}}"
    return cells
