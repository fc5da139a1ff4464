"""Recipe validation: every recipe on disk validates; every bad key is a precise error."""

from pathlib import Path

import pytest

from merbench.cli.recipes import recipe_files
from merbench.errors import MerbenchError
from merbench.recipe import load_recipe, recipe_hash

from helpers import tiny_recipe, write_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("path", recipe_files([RECIPES]), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_validates_and_names_its_command(path):
    load_recipe(path)
    assert path.read_text().splitlines()[0].startswith("# merbench ")


def test_extends_merges_parent(tmp_path):
    write_recipe(tmp_path / "base.yaml", {"dataset": {"name": "synthetic"}, "train": {"lr": 0.01, "seed": 4}})
    child = tmp_path / "child.yaml"
    child.write_text("# merbench train child.yaml\nextends: base.yaml\nmodel: {name: tfn}\ntrain: {lr: 0.002}\n")
    r = load_recipe(child)
    assert r["train"]["lr"] == 0.002 and r["train"]["seed"] == 4 and r["model"] == {"name": "tfn"}
    assert r["dataset"]["modalities"] == ["audio", "text", "vision"]


def test_set_overrides_and_hash_changes(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe())
    a = load_recipe(path)
    b = load_recipe(path, ["model.hidden=64", "train.seed=3"])
    assert b["model"]["hidden"] == 64 and b["train"]["seed"] == 3
    assert recipe_hash(a) != recipe_hash(b)


def test_exponent_floats_are_numbers_in_files_and_set(tmp_path):
    """YAML 1.2 floats: ``5e-5`` is a float in a recipe file and after ``--set`` (PyYAML alone
    reads it as a string, and ``train.lr`` would refuse it)."""
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: mlp}\ndataset: {name: synthetic}\ntrain: {lr: 3e-4, weight_decay: 1E-5}\n")
    r = load_recipe(path)
    assert r["train"]["lr"] == 3e-4 and r["train"]["weight_decay"] == 1e-5
    assert load_recipe(path, ["train.lr=5e-5"])["train"]["lr"] == 5e-5
    assert load_recipe(path, ["train.lr=.5e-4"])["train"]["lr"] == 5e-5
    with pytest.raises(MerbenchError, match=r"train.lr: expected float, got 'e5'"):
        load_recipe(path, ["train.lr=e5"])


@pytest.mark.parametrize("change, message", [
    ({"modle": {}}, r"modle: unknown section \(did you mean 'model'\?\)"),
    ({"train": {"learning_rate": 1}}, r"train.learning_rate: unknown key"),
    ({"train": {"lr": "fast"}}, r"train.lr: expected float, got 'fast'"),
    ({"train": {"max_epochs": 0}}, r"train.max_epochs: 0 is not >= 1"),
    ({"model": {"name": "tnf"}}, r"model.name: unknown model 'tnf' \(did you mean 'tfn'\?\)"),
    ({"model": {"name": "mlp", "hiden": 3}}, r"model.hiden: unknown argument of model 'mlp' \(did you mean 'hidden'\?\)"),
    ({"model": {"name": "mlp", "hidden": 1.5}}, r"model.hidden: expected int, got 1.5"),
    ({"dataset": {"name": "iemocapp"}}, r"dataset.name: unknown dataset 'iemocapp'"),
    ({"dataset": {"name": "synthetic", "n_dialogs": 3}}, r"dataset.n_dialogs: unknown argument of dataset 'synthetic' \(did you mean 'n_dialogues'\?\)"),
    ({"dataset": {"name": "synthetic", "modalities": ["audio", "txt"]}}, r"dataset.modalities: .*got 'txt' \(did you mean 'text'\?\)"),
    ({"dataset": {"name": "synthetic", "modalities": []}}, r"dataset.modalities: expected a non-empty list"),
    ({"eval": {"splits": ["tset"]}}, r"eval.splits: unknown split 'tset' \(did you mean 'test'\?\)"),
])
def test_bad_recipe_names_file_key_and_closest(tmp_path, change, message):
    recipe = tiny_recipe()
    recipe.update(change)
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    with pytest.raises(MerbenchError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("override, message", [
    ("model.hiden=3", r"--set model.hiden=3: model.hiden: unknown argument"),
    ("train.seed=abc", r"train.seed: expected int, got 'abc'"),
    ("seed", r"--set seed: expected KEY.PATH=VALUE"),
    ("seed=3", r"--set seed=3: expected SECTION.KEY=VALUE"),
])
def test_bad_set_override(tmp_path, override, message):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe())
    with pytest.raises(MerbenchError, match=message):
        load_recipe(path, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(MerbenchError, match=r"nope.yaml: no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(MerbenchError, match=r"bad.yaml: not valid YAML at line"):
        load_recipe(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(MerbenchError, match=r"list.yaml: expected a mapping"):
        load_recipe(listy)
