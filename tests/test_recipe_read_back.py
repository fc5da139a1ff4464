"""Recipes read back from the files merbench wrote (result.json, grid.json) are typed
``Recipe`` objects (``recipe.read_back``) whose mapping is the file's, and a file whose recipe
no longer validates still reads for tables and checks."""

from __future__ import annotations

import json
import re

import pytest

import merbench
from merbench import run_folder
from merbench.errors import MerbenchError
from merbench.grid.manifest import MANIFEST, GridCell, read_manifest, write_manifest
from merbench.recipe import TRAIN_DEFAULTS, Recipe, load_recipe, read_back, recipe_hash, validate
from merbench.run import load_run
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe, write_recipe


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("read_back")
    return train(load_recipe(write_recipe(tmp / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=2))), tmp / "runs",
                 progress=False)


def _copy_with(run_dir, tmp_path, edit, name="old"):
    data = json.loads((run_dir / run_folder.RESULT).read_text())
    edit(data["recipe"])
    folder = tmp_path / name
    folder.mkdir()
    (folder / run_folder.RESULT).write_text(json.dumps(data))
    return folder, data


def test_a_run_reads_its_recipe_typed_and_as_written(run_dir):
    written = json.loads((run_dir / run_folder.RESULT).read_text())
    run = load_run(run_dir)
    assert isinstance(run.recipe, Recipe) and run.recipe.data == written["recipe"] == run.recipe
    assert recipe_hash(run.recipe) == written["recipe_hash"]  # the identity is the file's
    assert run_folder.run_name(run.recipe.data) == run_dir.name
    assert run.recipe.model.name == "mlp_tiny" and run.recipe.train.max_epochs == 2
    assert run.recipe.dataset.name == "synthetic" and run.recipe.dataset.args["n_dialogues"] == 20
    assert run.recipe.dataset.modalities == ("audio", "text", "vision") and run.recipe.eval.splits == ("valid", "test")


def test_an_old_recipe_that_no_longer_validates_still_reads_for_tables(run_dir, tmp_path):
    def older(recipe):
        recipe["model"]["renamed_since"] = 3  # a model argument that no longer exists
        recipe["train"]["patience"] = 0  # a value refused today
        recipe["train"]["dropped_since"] = True  # a train key that no longer exists
        del recipe["train"]["optimizer"]  # a train key added later

    old, data = _copy_with(run_dir, tmp_path, older)
    with pytest.raises(MerbenchError):
        validate(data["recipe"], "recipe")
    run = load_run(old)
    assert run.recipe.data == data["recipe"] and recipe_hash(run.recipe) == recipe_hash(data["recipe"])
    assert run.recipe.model.args["renamed_since"] == 3 and run.recipe.train.patience == 0
    assert run.recipe.train.optimizer == "adamw" and "optimizer" not in run.recipe.data["train"]  # today's default
    assert not hasattr(run.recipe.train, "dropped_since") and run.recipe.data["train"]["dropped_since"] is True
    assert "mlp_tiny" in merbench.table(old).render("csv")
    shown = cli("table", old, "--format", "csv")
    assert shown.exit_code == 0 and "mlp_tiny" in shown.output, shown.output
    assert merbench.api.check(old, tmp_path / "reference.json", update=True).written == 1
    with pytest.raises(MerbenchError, match="renamed_since") as e:  # rebuilding its data needs today's checks
        run.corpus()
    assert str(old / run_folder.RESULT) in str(e.value)


def test_a_recipe_read_back_that_names_nothing_is_one_line(run_dir, tmp_path):
    def broken(recipe):
        recipe["model"]["name"] = 3
        recipe["dataset"]["modalities"] = "text"
        recipe["train"]["lr"] = "fast"

    bad, _ = _copy_with(run_dir, tmp_path, broken, "bad")
    with pytest.raises(MerbenchError) as e:
        load_run(bad)
    assert str(e.value) == (f"{bad / run_folder.RESULT}: recipe: model.name: expected the model trained (a name), "
                            f"got 3; train.lr: expected float, got 'fast'; dataset.modalities: expected a list of "
                            f"audio, text, vision, got 'text'")
    line = one_line_error(cli("table", bad))
    assert str(bad / run_folder.RESULT) in line and "model.name: expected the model trained" in line


def test_read_back_keeps_the_mapping_and_types_the_features():
    recipe = {"dataset": {"name": "iemocap", "modalities": ["text"],
                          "features": {"text": {"name": "bert", "model": "m", "finetune": {"epochs": 1}},
                                       "audio": "mfcc"}},
              "model": {"name": "mlp", "hidden": 8}, "train": {"seed": 3, "later_key": 1}}
    typed = read_back(recipe, "x")
    assert typed.data == recipe and typed.data is not recipe  # a copy: the caller's dict stays its own
    assert typed.train.seed == 3 and typed.train.lr == TRAIN_DEFAULTS["lr"]
    text = typed.dataset.features["text"]
    assert (text.name, text.options, text.finetune) == ("bert", {"model": "m"}, {"epochs": 1})
    assert typed.dataset.features["audio"].name == "mfcc" and typed.model.args == {"hidden": 8}
    assert read_back(typed, "x") is typed
    with pytest.raises(MerbenchError, match=r"^y: expected the resolved recipe \(a mapping\), got \['mlp'\]$"):
        read_back(["mlp"], "y")
    with pytest.raises(MerbenchError, match=r"^w: model.name: expected the model trained \(a name\), missing$"):
        read_back({**recipe, "model": {"hidden": 8}}, "w")
    with pytest.raises(MerbenchError, match=r"^z: dataset.features.smell: expected an extractor"):
        read_back({**recipe, "dataset": {"name": "iemocap", "features": {"smell": "nose"}}}, "z")


def test_grid_cells_read_back_typed_and_a_broken_cell_is_one_line(tmp_path):
    resolved = validate(tiny_recipe("mlp_tiny", seed=4), "test")
    cell = GridCell(resolved, {"model": "mlp_tiny"})
    assert cell.spec is resolved and cell.recipe == resolved.data and cell.seed == 4
    write_manifest(tmp_path, "compare", ["merbench", "compare"], [cell])
    (again,) = read_manifest(tmp_path)["cells"]
    assert isinstance(again.spec, Recipe) and again.spec.data == cell.recipe and again.run == cell.run
    assert again.seed == 4 and again.describe() == "model=mlp_tiny seed 4"
    data = json.loads((tmp_path / MANIFEST).read_text())
    data["cells"][0]["recipe"]["model"]["name"] = 5
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(MerbenchError, match=rf"^{tmp_path / MANIFEST}: cell {cell.run}: recipe: model.name"):
        read_manifest(tmp_path)
    data["cells"][0]["recipe"]["model"]["name"] = "mlp_tiny"
    expected = re.escape("expected a mapping with 'run' (a run folder name), 'labels' (a mapping) and 'recipe' "
                         "(a mapping)") + "$"
    for edit, problem in [(lambda c: c.pop("run"), "no 'run'"), (lambda c: c.update(run=5), "'run' is 5"),
                          (lambda c: c.update(labels=["mlp"]), r"'labels' is \['mlp'\]"),
                          (lambda c: c.update(run="../../runs/x"),
                           "'run' '../../runs/x' is not a folder name inside the grid folder")]:
        edited = json.loads(json.dumps(data))  # hand edits of grid.json: one line, never a traceback
        edit(edited["cells"][0])
        (tmp_path / MANIFEST).write_text(json.dumps(edited))
        with pytest.raises(MerbenchError, match=rf"^{tmp_path / MANIFEST}: cell 1: {problem}; {expected}"):
            read_manifest(tmp_path)
    for cells, problem in [(["oops"], "cell 1: 'oops' is not a mapping"), ({"a": 1}, "'cells' is dict; expected a list")]:
        (tmp_path / MANIFEST).write_text(json.dumps({**data, "cells": cells}))
        with pytest.raises(MerbenchError, match=rf"^{tmp_path / MANIFEST}: {problem}"):
            read_manifest(tmp_path)
