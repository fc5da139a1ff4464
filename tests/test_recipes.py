"""Recipe validation: every recipe on disk validates; every bad key is a precise error."""

from pathlib import Path

import pytest

from merbench.cli.recipes import recipe_files
from merbench.errors import MerbenchError
from merbench.recipe import load_recipe, recipe_hash

from helpers import cli, one_line_error, tiny_recipe, write_recipe

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


# --- dataset.features: checked with the rest of the recipe, before any work ------------------

def _features_recipe(features) -> dict:
    return {"dataset": {"name": "iemocap", "root": "nowhere", "features": features, "modalities": ["audio", "text"]},
            "model": {"name": "mlp_tiny"}}


@pytest.mark.parametrize("features, message", [
    ({"text": "minlm"}, "dataset.features.text: unknown extractor 'minlm' (did you mean 'minilm'?); text extractors: bert, minilm, mpnet"),
    ({"audio": {"name": "mfc"}}, "dataset.features.audio.name: unknown extractor 'mfc' (did you mean 'mfcc'?)"),
    ({"vision": "resnt"}, "dataset.features.vision: unknown extractor 'resnt' (did you mean 'resnet'?)"),
    ({"audio": "minilm"}, "dataset.features.audio: extractor 'minilm' is for text, not audio"),
    ({"txt": "minilm"}, "dataset.features.txt: unknown modality (did you mean 'text'?)"),
    ({"text": ["minilm"]}, "dataset.features.text: expected an extractor name or a mapping with 'name', got ['minilm']"),
    ({"text": {"name": "minilm", "max_lenght": 64}}, "dataset.features.text.max_lenght: unknown argument of extractor 'minilm' (did you mean 'max_length'?)"),
    ({"text": {"name": "bert", "finetune": {"epochs": 0}}}, "dataset.features.text.finetune.epochs: expected at least 1, got 0"),
    ({"text": {"name": "bert", "finetune": {"epoch": 2}}}, "dataset.features.text.finetune.epoch: unknown argument of finetune (did you mean 'epochs'?)"),
    ({"text": {"name": "bert", "finetune": {"lr": "fast"}}}, "dataset.features.text.finetune.lr: expected float, got 'fast'"),
    ({"text": {"name": "bert", "finetune": {"threads": -1}}}, "dataset.features.text.finetune.threads: expected a thread count >= 0, got -1"),
    ({"text": {"name": "bert", "finetune": 3}}, "dataset.features.text.finetune: expected a mapping of fine-tuning options, got 3"),
    ({"audio": {"name": "mfcc", "finetune": {}}}, "dataset.features.audio.finetune: only text encoders are fine-tuned"),
])
def test_features_are_checked_before_any_work(tmp_path, features, message):
    """A misspelt extractor or a bad fine-tuning option fails ``recipes validate`` and stops
    ``train`` with one line, before any data is read or any encoder is fine-tuned."""
    path = write_recipe(tmp_path / "bad.yaml", _features_recipe(features))
    result = cli("recipes", "validate", path)
    assert result.exit_code == 2 and f"{path}: {message}" in result.output, result.output
    line = one_line_error(cli("train", path, "--out", tmp_path / "runs", "--quiet"))
    assert message in line and not (tmp_path / "runs").exists()


def test_every_feature_problem_in_one_line(tmp_path):
    features = {"text": {"name": "bert", "finetune": {"epochs": 0, "warmup": 1.5}}, "audio": "mfc"}
    path = write_recipe(tmp_path / "bad.yaml", {**_features_recipe(features), "train": {"lr": 0}})
    with pytest.raises(MerbenchError) as info:
        load_recipe(path)
    for key in ("train.lr:", "dataset.features.audio:", "finetune.epochs:", "finetune.warmup:"):
        assert key in str(info.value), (key, str(info.value))


def test_typed_recipe_keeps_the_mapping_as_written(tmp_path):
    """Typed sections for the code; the resolved mapping (what recipe.yaml holds and the run
    id hashes) unchanged beside them."""
    path = write_recipe(tmp_path / "r.yaml", _features_recipe({"text": {"name": "minilm", "max_length": 64}}))
    r = load_recipe(path, ["train.lr=0.001"])
    assert r.train.lr == 0.001 and r.train.patience == 5 and r.model.name == "mlp_tiny"
    assert r.dataset.modalities == ("audio", "text") and r.dataset.args["root"] == "nowhere"
    assert r.dataset.features["text"].name == "minilm" and r.dataset.features["text"].options == {"max_length": 64}
    assert r.eval.splits == ("valid", "test")
    assert r["train"]["lr"] == 0.001 and dict(r) == r.data and recipe_hash(r) == recipe_hash(r.as_dict())
    edited = r.as_dict()
    edited["train"]["lr"] = 0.5
    assert r.train.lr == 0.001 and r["train"]["lr"] == 0.001  # a copy to edit, never the recipe itself


def test_an_empty_section_is_no_keys(tmp_path):
    """``train:`` with every key commented out is YAML's null: the parent's section stands."""
    parent = write_recipe(tmp_path / "parent.yaml", tiny_recipe("mlp_tiny", max_epochs=3))
    child = tmp_path / "child.yaml"
    child.write_text("# merbench train child.yaml\nextends: parent.yaml\ntrain:\n  # lr: 0.1\neval:\n")
    assert load_recipe(child)["train"]["max_epochs"] == 3
    assert load_recipe(child, ["train.threads=1"])["train"]["threads"] == 1
