"""Paste-ready tables: Markdown a parser reads back cell by cell, LaTeX that compiles in a
two-column paper, CSV and JSON with the same numbers as result.json, rich at the terminal's
width, one table per dataset."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from merbench.aggregate import Cell, collect, group_results
from merbench.recipe import validate
from merbench.tables import Table, Value, latex_escape, md_escape, render, render_all, results_tables
from merbench.train import train

from conftest import needs_tool
from helpers import cli, one_line_error, tiny_recipe


def references_table(columns: int = 3) -> Table:
    """What compare --references prints: ours | paper (Δ) †, text labels, notes with | and >=."""
    names = ["Model"] + [f"M{j}_x F1" for j in range(columns)]
    rows = [
        ["hff (a|b)", *[Value(Cell([60.0 + j, 62.5 + j]), 1, paper=69.7, marks="†") for j in range(columns)]],
        ["mlp_tiny", *[Value(Cell([58.25]), 1) for _ in range(columns)]],
        ["tfn", *[Value(None, 1, paper=50.0) for _ in range(columns)]],
    ]
    notes = ["ours | paper (Δ = ours - paper)", "† p >= 0.05 & 100% of runs; see #3 {x}_y ~ ^"]
    return Table("Compare: synthetic | test", names, rows, [False] * columns, notes)


def markdown_cells(text: str) -> list[list[str]]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    rows, row, inline = [], None, False
    for tok in tokens:
        if tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            inline = True
        elif tok.type == "inline" and inline:
            row.append("".join(c.content for c in tok.children if c.type == "text"))
            inline = False
        elif tok.type == "tr_close":
            rows.append(row)
    return rows


def test_markdown_reads_back_cell_by_cell():
    table = references_table()
    text = render(table, "markdown")
    rows = markdown_cells(text)
    assert rows[0] == table.columns
    assert len(rows) == 1 + len(table.rows)  # notes are not rows
    for parsed, row in zip(rows[1:], table.rows):
        expected = [c.text() if isinstance(c, Value) else c for c in row]
        assert parsed == expected
    assert rows[1][1] == "61.2 ± 1.8 (2) | 69.7 (Δ -8.5) †"
    # notes are paragraphs after a blank line, with their | escaped
    from markdown_it import MarkdownIt

    paragraphs = [t for t in MarkdownIt("commonmark").enable("table").parse(text) if t.type == "paragraph_open"]
    assert len(paragraphs) == 1 + len(table.notes)  # title + notes


def test_markdown_escape():
    assert md_escape("a|b*c`d") == "a\\|b\\*c\\`d"


def test_latex_escapes_text():
    assert latex_escape("p >= 0.05 & 100% #1 a_b {x} ~^ |") == (
        "p \\textgreater{}= 0.05 \\& 100\\% \\#1 a\\_b \\{x\\} \\textasciitilde{}\\textasciicircum{} \\textbar{}")
    assert latex_escape("± Δ") == "$\\pm$ $\\Delta$"


def test_latex_aligns_numbers_and_bolds_the_best():
    text = render(references_table(), "latex")
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    # mean, ± std and the paper's number are separate right-aligned columns: decimal points line up
    assert "r@{\\,}r@{\\enspace}r" in text
    assert "\\textbf{61.2} & \\textbf{$\\pm$\\,1.8}" in text  # column M1's best (row 1)
    assert "(69.7)\\rlap{" in text and "\\dag" in text  # the mark hangs right: no shift of the numbers
    inside = text.split("\\begin{tabular}")[1].split("\\end{tabular}")[0] + text.split("\\parbox")[1]
    assert ">" not in inside  # never a raw > in text (OT1 prints it as ¿)


@needs_tool("pdflatex", "Debian: apt install texlive-latex-base texlive-latex-recommended")
@pytest.mark.parametrize("columns", [3, 9])
def test_latex_compiles_in_a_two_column_paper_without_overfull_boxes(tmp_path, columns):
    body = render_all([references_table(columns)], "latex")
    doc = ("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
           "\\begin{document}\n" + body + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert out.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log  # the 9-column table is scaled to the column
    assert (tmp_path / "t.pdf").exists()


def test_rich_honours_the_width():
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        text = render(references_table(), "rich")
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    assert max(len(line) for line in text.splitlines()) <= 80


def test_rich_bold_on_a_terminal(monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert "\x1b[1m" in render(references_table(), "rich")


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    for seed in (0, 1):
        train(validate(tiny_recipe("mlp_tiny", max_epochs=2, seed=seed), "test"), tmp / "cls", progress=False)
    recipe = tiny_recipe("mlp_tiny", max_epochs=2)
    recipe["dataset"]["name"] = "synthetic_mosei"
    train(validate(recipe, "test"), tmp / "reg", progress=False)
    return tmp


def test_json_and_csv_parse_back_to_the_numbers_of_result_json(two_datasets):
    results = [json.loads(p.read_text()) for p in sorted((two_datasets / "cls").rglob("result.json"))]
    wf1 = [r["metrics"]["test"]["wf1"] for r in results]
    out = cli("table", two_datasets / "cls", "--format", "json")
    assert out.exit_code == 0, out.output
    (table,) = json.loads(out.stdout)
    cell = table["rows"][0]["cells"]["WF1"]
    assert cell["n"] == 2 and sorted(cell["values"]) == sorted(wf1)
    assert cell["mean"] == pytest.approx(sum(wf1) / 2) and cell["std"] == pytest.approx(Cell(wf1).std)
    out = cli("table", two_datasets / "cls", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
    assert float(row["WF1 mean"]) == cell["mean"] and float(row["WF1 std"]) == cell["std"] and row["WF1 n"] == "2"


def test_one_table_per_dataset(two_datasets):
    groups = group_results(collect([two_datasets]))
    tables = results_tables(groups)
    assert [t.title.split(" ")[0] for t in tables] == ["synthetic", "synthetic_mosei"]
    out = cli("table", two_datasets, "--format", "json")
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 2


def test_a_layout_that_does_not_fit_the_task_is_an_error(two_datasets):
    error = one_line_error(cli("table", two_datasets / "reg", "--layout", "iemocap"))
    assert "--layout iemocap" in error and "synthetic_mosei" in error
    error = one_line_error(cli("table", two_datasets / "cls", "--layout", "mosei"))
    assert "--layout mosei" in error and "classification" not in error.split(":")[0]


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    """MLP runs on two synthetic corpora (dataset.seed 0 and 3: other test sets), one of them
    also on text alone (other features of the same utterances)."""
    tmp = tmp_path_factory.mktemp("corpora")
    for corpus in (0, 3):
        recipe = tiny_recipe("mlp_tiny", max_epochs=2)
        recipe["dataset"]["seed"] = corpus
        train(validate(recipe, "test"), tmp / f"corpus{corpus}", progress=False)
    recipe = tiny_recipe("mlp_tiny", max_epochs=2)
    recipe["dataset"]["modalities"] = ["text"]
    train(validate(recipe, "test"), tmp / "corpus0", progress=False)
    return tmp


def test_runs_on_other_data_are_never_one_table(two_corpora):
    out = cli("table", two_corpora, "--format", "json")
    assert out.exit_code == 0, out.output
    tables = json.loads(out.stdout)
    assert [t["title"].split(" (")[0] for t in tables] == ["synthetic, dataset.seed=0", "synthetic, dataset.seed=3"]
    # T and S+T+V on the same corpus share a table; the corpus's seed is never a row's label
    assert sorted(r["label"] for r in tables[0]["rows"]) == ["mlp_tiny [S+T+V]", "mlp_tiny [T]"]
    assert [r["label"] for r in tables[1]["rows"]] == ["mlp_tiny"]
    markdown = cli("table", two_corpora, "--format", "markdown").stdout
    assert "seed=3)" not in markdown and markdown.count("**synthetic, dataset.seed=") == 2
    # The Python API as a user calls it gives the same tables
    import merbench

    assert [t.title for t in merbench.table(two_corpora).tables] == [t["title"] for t in tables]
    groups = group_results(collect([two_corpora]))
    assert [t.title for t in results_tables(groups)] == [t["title"] for t in tables]


def test_runs_whose_data_changed_are_never_pooled(two_corpora, tmp_path):
    """The same recipe on other data (another root, files that changed): another fingerprint."""
    src = next((two_corpora / "corpus3").rglob("result.json"))
    for n, fingerprint in enumerate(("a" * 64, "b" * 64)):
        result = json.loads(src.read_text())
        result["dataset"]["fingerprint"] = fingerprint
        result["run_id"] = f"run{n}"
        (tmp_path / f"run{n}").mkdir()
        (tmp_path / f"run{n}" / "result.json").write_text(json.dumps(result))
    out = cli("table", tmp_path, "--format", "json")
    assert out.exit_code == 0, out.output
    tables = json.loads(out.stdout)
    assert [t["title"].split(" (")[0] for t in tables] == ["synthetic, data fingerprint aaaaaaaaaaaa",
                                                           "synthetic, data fingerprint bbbbbbbbbbbb"]
    assert all(t["rows"][0]["cells"]["WF1"]["n"] == 1 for t in tables)


def test_one_run_has_no_std_in_csv_or_json(two_corpora):
    out = cli("table", two_corpora / "corpus3", "--format", "json")
    assert out.exit_code == 0, out.output
    (table,) = json.loads(out.stdout)
    cell = table["rows"][0]["cells"]["WF1"]
    assert cell["n"] == 1 and cell["std"] is None and cell["mean"] == cell["values"][0]
    out = cli("table", two_corpora / "corpus3", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
    assert row["WF1 std"] == "" and row["WF1 n"] == "1" and float(row["WF1 mean"]) == cell["mean"]


def test_a_result_without_a_fingerprint_still_tabulates(two_corpora, tmp_path):
    """A hand-made or foreign result.json without dataset.fingerprint: one table, no traceback."""
    for corpus in ("corpus0", "corpus3"):  # other corpora: still two tables, by their recipes
        for src in (two_corpora / corpus).rglob("result.json"):
            result = json.loads(src.read_text())
            del result["dataset"]["fingerprint"]
            (tmp_path / result["run_id"]).mkdir()
            (tmp_path / result["run_id"] / "result.json").write_text(json.dumps(result))
    out = cli("table", tmp_path, "--format", "json")
    assert out.exit_code == 0, out.output
    assert sorted(t["title"].split(" (")[0] for t in json.loads(out.stdout)) == ["synthetic, dataset.seed=0",
                                                                                "synthetic, dataset.seed=3"]
