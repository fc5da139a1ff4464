"""A run records which of its model's components were built, and every table marks the rows and
cells whose model went without some of them (a paper model on one modality is not the paper's
model): ‡ and a note in rich, Markdown and LaTeX, a column in CSV, a field in JSON.
heads-sweep --references refuses a paper's numbers on other modalities or features."""

from __future__ import annotations

import csv
import io
import json

import pytest

from merbench.aggregate import Cell
from merbench.experiments import heads
from merbench.results import read_result
from merbench.run import load_run
from merbench.tables import Table, Value, Without, render

from helpers import cli, tiny_recipe, write_recipe

pytestmark = pytest.mark.usefixtures("frozen_source")

SHORT = Without(("caa", "cmdf", "gate", "clc_loss"), ("text",))
NOTE = "ran without caa, cmdf, gate, clc_loss (one modality: text); not the paper's model"
TINY_DATA = {"name": "synthetic", "n_dialogues": 12, "n_utterances": 120, "audio_dim": 6, "text_dim": 8,
             "vision_dim": 5, "seed": 0}
TRAIN = {"max_epochs": 1, "patience": 1, "batch_size": 32, "dialogue_batch_size": 4}


def unescaped(markdown: str) -> str:
    """Markdown with its escaped brackets read back ("hrdf_mer \\[T\\]" -> "hrdf_mer [T]")."""
    return markdown.replace("\\[", "[").replace("\\]", "]")


def marked_table() -> Table:
    """Row 1 went without components (a row mark); row 0's WF1 cell did (a cell mark)."""
    rows = [["hff", Value(Cell([60.0, 62.0])), Value(Cell([50.0]), marks="†")],
            ["hrdf_mer [T]", Value(Cell([66.0, 67.0, 68.0])), Value(Cell([55.0]))]]
    return Table("Compare: synthetic", ["Model", "ACC", "WF1"], rows, [False, False], ["a note"],
                 without={(1, 0): SHORT, (0, 2): Without(("uncertainty",), ("audio",))})


def test_markdown_marks_rows_and_cells_and_says_why_under_the_table():
    text = unescaped(render(marked_table(), "markdown"))
    lines = text.splitlines()
    assert "| hrdf_mer [T] ‡ |" in next(line for line in lines if line.startswith("| hrdf_mer"))
    assert "50.0 † ‡" in next(line for line in lines if line.startswith("| hff "))
    assert f"‡ hrdf_mer [T] {NOTE}" in lines
    assert "‡ ran without uncertainty (one modality: audio); not the paper's model" in lines
    assert lines.index("a note") < lines.index(f"‡ hrdf_mer [T] {NOTE}")  # below the table's own notes


def test_rich_and_latex_mark_rows_and_cells():
    rich = render(marked_table(), "rich")
    assert "hrdf_mer [T] ‡" in rich and "50.0 † ‡" in rich and NOTE in " ".join(rich.split())
    latex = render(marked_table(), "latex")
    assert "hrdf\\_mer [T] \\textsuperscript{\\ddag}" in latex
    assert "\\textsuperscript{\\dag}\\textsuperscript{\\ddag}}" in latex  # the cell's marks hang right (\\rlap)
    assert "\\textsuperscript{\\ddag} hrdf\\_mer [T] ran without caa, cmdf, gate, clc\\_loss" in latex


def test_csv_and_json_give_a_column_and_a_field_not_a_glyph():
    rows = list(csv.DictReader(io.StringIO(render(marked_table(), "csv"))))
    assert list(rows[0]) == ["Model", "ran without", "ACC mean", "ACC std", "ACC n", "WF1 mean", "WF1 std",
                             "WF1 n", "WF1 marks", "WF1 ran without"]
    assert [r["Model"] for r in rows] == ["hff", "hrdf_mer [T]"]  # no glyph in the label
    assert [r["ran without"] for r in rows] == ["", "caa cmdf gate clc_loss"]
    assert [r["WF1 ran without"] for r in rows] == ["uncertainty", ""]
    (table,) = json.loads(render(marked_table(), "json"))
    assert "ran_without" not in table["rows"][0] and table["rows"][1]["ran_without"] == list(SHORT.components)
    assert table["rows"][0]["cells"]["WF1"]["ran_without"] == ["uncertainty"]
    assert "ran_without" not in table["rows"][0]["cells"]["ACC"]
    assert f"hrdf_mer [T] {NOTE}" in table["notes"] and "‡" not in json.dumps(table, ensure_ascii=False)


def test_a_table_without_short_runs_is_unchanged():
    table = marked_table()
    table.without = {}
    assert "‡" not in render(table, "markdown") and "ran without" not in render(table, "csv")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """hrdf_mer_tiny on text alone (its fusion components build nothing) and on audio+text."""
    tmp = tmp_path_factory.mktemp("honest")
    for name, modalities in (("text", ["text"]), ("both", ["audio", "text"])):
        recipe = tiny_recipe("hrdf_mer_tiny", max_epochs=1, dialogue_batch_size=4)
        recipe["dataset"].update(n_dialogues=12, n_utterances=120, modalities=modalities)
        path = write_recipe(tmp / f"{name}.yaml", recipe)
        result = cli("train", path, "--out", tmp / name, "--quiet")
        assert result.exit_code == 0, result.output
    return tmp


def test_result_json_records_the_components_built_and_those_that_built_nothing(runs):
    (text,) = (runs / "text").iterdir()
    model = read_result(text)["model"]
    assert model["active_components"] == ["hfe"]
    assert model["inactive_components"] == ["caa", "cmdf", "gate", "clc_loss"]
    assert load_run(text).model_info.inactive_components == ("caa", "cmdf", "gate", "clc_loss")
    (both,) = (runs / "both").iterdir()
    model = read_result(both)["model"]
    assert model["active_components"] == ["caa", "hfe", "cmdf", "gate", "clc_loss"]
    assert model["inactive_components"] == []


def test_table_marks_the_text_only_row(runs):
    out = cli("table", runs / "text", runs / "both", "--format", "markdown")
    assert out.exit_code == 0, out.output
    lines = unescaped(out.stdout).splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| hrdf")}
    assert set(rows) == {"hrdf_mer_tiny [T] ‡", "hrdf_mer_tiny [S+T]"}
    assert f"‡ hrdf_mer_tiny [T] {NOTE}" in lines
    csv_out = cli("table", runs / "text", runs / "both", "--format", "csv")
    assert [r["ran without"] for r in csv.DictReader(io.StringIO(csv_out.stdout))] == ["caa cmdf gate clc_loss", ""]


def test_an_old_result_without_the_fields_loads_and_is_marked(runs, tmp_path):
    (text,) = (runs / "text").iterdir()
    data = json.loads((text / "result.json").read_text())
    for key in ("active_components", "inactive_components"):
        del data["model"][key]
    old = tmp_path / "old"
    old.mkdir()
    (old / "result.json").write_text(json.dumps(data))
    assert load_run(old).model_info.inactive_components is None
    out = cli("table", old, "--format", "markdown")
    assert out.exit_code == 0, out.output
    assert "| hrdf_mer_tiny ‡ |" in out.stdout and f"‡ hrdf_mer_tiny {NOTE}" in out.stdout.splitlines()


@pytest.fixture(scope="module")
def text_recipes(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    for model in ("hrdf_mer_tiny", "mlp_tiny"):
        data = {**TINY_DATA, "modalities": ["text"]}
        write_recipe(root / "synthetic" / f"{model}.yaml", {"dataset": data, "model": {"name": model}, "train": TRAIN})
    return root


def grid(root, out, *args):
    result = cli(*args, "--dataset", "synthetic", "--recipes", root, "--out", out, "--quiet", "--seeds", "1")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ablate_marks_the_cells_whose_model_went_without_components(text_recipes, tmp_path):
    out = grid(text_recipes, tmp_path, "ablate", "hrdf_mer_tiny", "--drop", "gate,hfe", "--modalities", "T,S+T",
               "--format", "markdown")
    cells = {line.split("|")[1].strip(): [c.strip(" *") for c in line.split("|")[2:4]]
             for line in out.splitlines() if line.startswith("| ") and "Model" not in line}
    for row in ("HRDF-MER (full model)", "Without gated fusion unit", "Without hierarchical feature enhancement (HFE)"):
        t, st = cells[row]
        assert t.endswith("‡") and not st.endswith("‡"), (row, t, st)
    assert cells["Without gated fusion unit"][0].endswith("= ‡")  # the full model's runs, marked as they are
    assert f"‡ {NOTE}" in out.splitlines()
    # CSV: one "ran without" column beside T, none beside S+T
    csv_out = grid(text_recipes, tmp_path, "ablate", "hrdf_mer_tiny", "--drop", "gate,hfe", "--modalities", "T,S+T",
                   "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_out)))
    assert all(r["T ran without"] == "caa cmdf gate clc_loss" for r in rows) and "S+T ran without" not in rows[0]


def test_compare_marks_the_row_of_a_paper_model_on_one_modality(text_recipes, tmp_path):
    out = grid(text_recipes, tmp_path, "compare", "--models", "hrdf_mer_tiny,mlp_tiny", "--format", "json")
    (table,) = json.loads(out)
    by_label = {r["label"]: r for r in table["rows"]}
    assert by_label["hrdf_mer_tiny"]["ran_without"] == ["caa", "cmdf", "gate", "clc_loss"]
    assert "ran_without" not in by_label["mlp_tiny"]
    assert f"hrdf_mer_tiny {NOTE}" in table["notes"]


def test_heads_sweep_marks_cells_and_refuses_incomparable_paper_numbers(text_recipes, tmp_path, monkeypatch):
    args = ("heads-sweep", "hrdf_mer_tiny", "--heads", "1,2", "--format", "markdown")
    out = grid(text_recipes, tmp_path, *args)
    body = [line for line in out.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(body) == 2 and all(line.count("‡") == 2 for line in body)  # ACC and WF1 of both head counts
    assert f"‡ {NOTE}" in out.splitlines()

    paper = {"model": "hrdf_mer_tiny", "parameter": "heads", "modalities": ["audio", "text", "vision"],
             "features": dict.fromkeys(["audio", "text", "vision"], "synthetic's own"),
             "rows": {1: {"synthetic_acc": 50.0, "synthetic_f1": 40.0}}}
    monkeypatch.setattr(heads, "find_tables", lambda match: [("Test et al. 2025", "table5", paper)])
    refused = grid(text_recipes, tmp_path, *args, "--references")
    ours, below = refused.split("Reported by the paper")
    assert "(Δ" not in ours and "40.0" not in ours
    assert ("synthetic: the paper's numbers (reference table) are not set beside: the paper's numbers use "
            "audio+text+vision, these runs text") in " ".join(ours.split())
    assert "these runs text" in below and "40.0" in below  # the paper's table, below and said to differ

    paper["modalities"] = ["text"]  # same modalities and features: set beside ours
    beside = grid(text_recipes, tmp_path, *args, "--references")
    assert "| 40.0 (Δ" in beside and "Reported by the paper" not in beside and "not set beside" not in beside
