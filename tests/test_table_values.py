"""The numbers a table prints and the escapes around them, each character and case on its own:
cell text (mean, std, n, paper, delta, digits), the best cell of a column in its metric's
direction, mean and sample std over seeds, Markdown and LaTeX escapes."""

from __future__ import annotations

import math

import pytest

from merbench.aggregate import Cell
from merbench.tables import Table, Value, latex_escape, md_escape, render

from helpers import result_record


@pytest.mark.parametrize("char", list("\\|*`[]<>"))
def test_markdown_escapes_every_structural_character(char):
    assert md_escape(f"a{char}b") == f"a\\{char}b"


def test_markdown_escapes_the_backslash_before_what_follows_it():
    # A literal "\|" must print as backslash then bar: both escaped, or GFM reads "\|" as "|".
    assert md_escape("x\\|y") == "x\\\\\\|y"
    assert md_escape("C:\\dir") == "C:\\\\dir"
    assert md_escape("mlp_tiny (a, b) + 1.0 - 2 = 3 ± 4 † # ~") == "mlp_tiny (a, b) + 1.0 - 2 = 3 ± 4 † # ~"


LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
         "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
         "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "±": r"$\pm$", "Δ": r"$\Delta$",
         "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}", "≥": r"$\geq$", "≤": r"$\leq$",
         "×": r"$\times$", "→": r"$\rightarrow$", "–": "--", "—": "---"}


@pytest.mark.parametrize("char", list(LATEX))
def test_latex_escapes_every_special_character(char):
    assert latex_escape(f"a{char}b") == f"a{LATEX[char]}b"


def test_latex_leaves_plain_text_and_escapes_numbers_given_as_numbers():
    assert latex_escape("ACC-7 (non0) 62.1 [S+T]") == "ACC-7 (non0) 62.1 [S+T]"
    assert latex_escape(3.5) == "3.5"


def test_cell_mean_and_sample_std():
    cell = Cell([60.0, 62.0, 67.0])
    assert (cell.n, cell.mean) == (3, 63.0)
    assert cell.std == pytest.approx(math.sqrt((9 + 1 + 16) / 2))  # n - 1 in the denominator
    assert Cell([61.5]).std == 0.0 and Cell([61.5]).mean == 61.5


def test_value_text():
    assert Value(None).text() == "-"
    assert Value(Cell([62.14])).text() == "62.1"
    assert Value(Cell([62.16]), digits=3).text() == "62.160"
    assert Value(Cell([60.0, 62.0, 67.0])).text() == "63.0 ± 3.6 (3)"
    assert Value(Cell([60.0, 62.0]), 1, paper=62.8).text() == "61.0 ± 1.4 (2) | 62.8 (Δ -1.8)"
    assert Value(Cell([0.7123]), 3, paper=0.7, marks="†").text() == "0.712 | 0.700 (Δ +0.012) †"
    assert Value(None, 1, paper=62.8).text() == "- | 62.8"
    record = Value(Cell([60.0, 62.0]), 1, paper=62.8, marks="†").record()
    assert record == {"mean": 61.0, "std": pytest.approx(math.sqrt(2)), "n": 2, "values": [60.0, 62.0],
                      "paper": 62.8, "marks": "†"}
    assert Value(None).record() == {"mean": None, "std": None, "n": 0, "values": []}


def _table(lower_is_better):
    rows = [["a", Value(Cell([60.0])), Value(Cell([0.9]), 3)],
            ["b", Value(Cell([65.0])), Value(Cell([0.7]), 3)],
            ["c", Value(Cell([65.0])), Value(None, 3)]]
    return Table("t", ["model", "ACC-7", "MAE"], rows, lower_is_better)


def test_best_cell_per_column_in_its_direction():
    assert _table([False, True]).best() == {(1, 1), (2, 1), (1, 2)}  # a tie is bold twice; MAE's lowest
    assert _table([False, False]).best() == {(1, 1), (2, 1), (0, 2)}
    assert _table([True, True]).best() == {(0, 1), (1, 2)}
    assert _table([False]).best() == {(1, 1), (2, 1)}  # columns past lower_is_better are not bolded
    one_row = Table("t", ["model", "ACC-7"], [["a", Value(Cell([60.0]))]], [False])
    assert one_row.best() == set()
    assert "**65.0**" in render(_table([False, True]), "markdown")
    assert "**0.700**" in render(_table([False, True]), "markdown")


def test_best_with_two_rows_short_rows_and_a_sparse_first_column():
    two = Table("t", ["model", "ACC-7"], [["a", Value(Cell([60.0]))], ["b", Value(Cell([61.0]))]], [False])
    assert two.best() == {(1, 1)}
    rows = [["a", Value(None), Value(Cell([0.9]), 3)], ["b", Value(Cell([65.0])), Value(Cell([0.7]), 3)],
            ["c"]]  # a row with no cells: a text row
    assert Table("t", ["model", "ACC-7", "MAE"], rows, [False, True]).best() == {(1, 2)}


def test_mosei_layout_prints_mae_and_corr_with_three_decimals_and_bolds_the_lowest_mae():
    from merbench.aggregate import Group
    from merbench.tables import results_table

    def group(model, mae):
        metrics = {"acc7": 45.25, "acc2_has0": 80.0, "acc2_non0": 81.0, "f1_non0": 80.5, "mae": mae, "corr": 0.7123}
        result = result_record(run_id=model, dataset={"name": "mosei", "task": "regression", "modalities": ["text"],
                                                      "fingerprint": "f"},
                               metrics={"test": metrics})
        return Group(model, {"dataset": {"name": "mosei", "modalities": ["text"]}, "model": {"name": model},
                             "train": {}}, [result])

    table = results_table([group("tfn", 0.61234), group("lmf", 0.7)], "mosei")
    assert table.columns == ["Model", "ACC-7", "ACC-2 (has0)", "ACC-2 (non0)", "F1 (non0)", "MAE", "Corr"]
    assert [table.rows[0][j].text() for j in range(1, 7)] == ["45.2", "80.0", "81.0", "80.5", "0.612", "0.712"]
    assert (0, 5) in table.best() and (1, 5) not in table.best()


def _group(name, dataset="mosei", task="regression", split="test", failed=0, **recipe_dataset):
    from merbench.aggregate import Group

    metrics = ({"acc7": 45.25, "acc2_has0": 80.0, "acc2_non0": 81.0, "f1_non0": 80.5, "mae": 0.6, "corr": 0.71}
               if task == "regression" else {"acc": 60.0, "wf1": 59.0, "f1_happy": 50.0})
    result = result_record(run_id=name, dataset={"name": dataset, "task": task, "modalities": ["text"],
                                                 "label_names": ["happy"], "fingerprint": ""},
                           metrics={split: metrics})
    return Group(name, {"dataset": {"name": dataset, "modalities": ["text"], **recipe_dataset}, "model": {"name": name},
                        "train": {}}, [result], failed)


def test_results_table_titles_notes_splits_and_refusals():
    from merbench.errors import MerbenchError
    from merbench.tables import results_table

    mosei = results_table([_group("tfn"), _group("lmf", failed=2)])  # the layout follows the task
    assert mosei.title.startswith("mosei (test, layout mosei") and mosei.title.endswith("HFF Table 2)")
    assert mosei.notes == ["2 failed run(s) of lmf left out"]
    valid = results_table([_group("tfn", split="valid")], "mosei", split="valid")
    assert valid.title.startswith("mosei (valid, layout mosei") and valid.rows[0][1].text() == "45.2"
    assert results_table([_group("tfn", split="valid")], "mosei").rows[0][1].text() == "-"  # no test metrics
    iemocap = results_table([_group("mlp", dataset="iemocap", task="classification")])
    assert iemocap.title.startswith("iemocap (test, layout iemocap") and iemocap.title.endswith("HFF Table 3)")
    with pytest.raises(MerbenchError, match=r"^no finished runs to tabulate$"):
        results_table([])
    with pytest.raises(MerbenchError) as err:
        results_table([_group("tfn"), _group("lmf", dataset="mosi")])
    assert str(err.value) == "runs of 2 datasets (mosei, mosi) in one table"
