"""A bank of bad inputs, one parametrised test per kind of failure (issue 13).

Every case must end the command with exit 2 and exactly one output line, ``error: ...``,
that names the offending file, key or value, and must leave every file on disk as it was.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from merbench.errors import LINE_CHARS
from merbench.ranges import FACTOR, FINITE, NON_NEGATIVE, POSITIVE, PROBABILITY, SIZE, WINDOW, argument_ranges
from merbench.registry import DATASETS, MODELS

from helpers import cli, tiny_recipe, write_recipe

NAN, INF = float("nan"), float("inf")


# --- plumbing ------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def bad(root: Path, *args, new_files: bool = False) -> str:
    """Run the CLI on a bad input: exit 2, one output line ``error: ...`` (bounded), nothing on
    disk under ``root`` changed (``new_files``: nothing that was there changed). Returns the line."""
    before = snapshot(root)
    result = cli(*args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output[-2000:]
    assert len(lines[0]) <= len("error: ") + LINE_CHARS
    after = snapshot(root)
    if new_files:
        after = {k: v for k, v in after.items() if k in before}
    assert after == before, "a failing command changed files on disk"
    return lines[0]


def set_key(recipe: dict, dotted: str, value) -> dict:
    node = recipe
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return recipe


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny run (with last.pt kept) and a reference written from it."""
    from merbench.recipe import load_recipe
    from merbench.train import train

    tmp = tmp_path_factory.mktemp("finished")
    recipe = write_recipe(tmp / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=2))
    run_dir = train(load_recipe(recipe), tmp / "runs", progress=False, keep_last=True)
    result = cli("check", run_dir, "--against", tmp / "reference.json", "--update")
    assert result.exit_code == 0, result.output
    return tmp, recipe, run_dir


@pytest.fixture
def work(finished, tmp_path):
    """A private copy of the finished run, its recipe and reference to break."""
    tmp, recipe, run_dir = finished
    shutil.copy(recipe, tmp_path / "r.yaml")
    shutil.copytree(run_dir, tmp_path / "runs" / run_dir.name)
    shutil.copy(tmp / "reference.json", tmp_path / "reference.json")
    return tmp_path


def run_of(w: Path) -> Path:
    """The run folder of a ``work`` copy (named as ``train`` names it, so --resume finds it)."""
    (run,) = (w / "runs").iterdir()
    return run


# --- 1. recipe values that validate by type but cannot run -----------------------------------

RECIPE_VALUES = [
    ("train.lr", NAN, "nan is not a finite number"), ("train.lr", INF, "inf is not a finite number"),
    ("train.lr", -INF, "-inf is not a finite number"), ("train.lr", 0.0, "0.0 is not > 0"),
    ("train.lr", -0.001, "-0.001 is not > 0"), ("train.weight_decay", -0.1, "-0.1 is not >= 0"),
    ("train.weight_decay", NAN, "nan is not a finite"), ("train.weight_decay", INF, "inf is not a finite"),
    ("train.batch_size", 0, "0 is not >= 1"), ("train.batch_size", -4, "-4 is not >= 1"),
    ("train.dialogue_batch_size", 0, "0 is not >= 1"), ("train.max_epochs", 0, "0 is not >= 1"),
    ("train.max_epochs", -1, "-1 is not >= 1"), ("train.patience", -1, "-1 is not >= 1"),
    ("train.patience", 0, "0 is not >= 1"),  # 0 stopped before the first epoch: no best.pt
    ("train.grad_clip", -1.0, "-1.0 is not >= 0"), ("train.grad_clip", NAN, "nan is not a finite"),
    ("train.lr_factor", 0.0, "0.0 is not in (0, 1)"), ("train.lr_factor", 1.0, "1.0 is not in (0, 1)"),
    ("train.lr_factor", 1.5, "1.5 is not in (0, 1)"), ("train.lr_factor", -0.5, "-0.5 is not in (0, 1)"),
    ("train.lr_factor", NAN, "nan is not a finite"), ("train.lr_patience", -2, "-2 is not >= 0"),
    ("train.threads", -1, "-1 is not >= 0"), ("train.seed", -1, "-1 is not >= 0"),
    ("train.aux_weights", {"clc": NAN}, "train.aux_weights.clc: nan is not a finite"),
    ("train.aux_weights", {"clc": -1}, "train.aux_weights.clc: -1 is not >= 0"),
    ("train.aux_weights", {"clc": "big"}, "train.aux_weights.clc: expected a number, got 'big'"),
    ("train.lr", "fast", "expected float, got 'fast'"), ("train.lr", True, "expected float, got True"),
    ("train.lr", [0.1], "expected float, got [0.1]"), ("train.max_epochs", 2.5, "expected int, got 2.5"),
    ("train.device", "tpu", "expected auto, cpu or cuda[:N], got 'tpu'"),
    ("train.learnrate", 0.1, "unknown key"),
    ("model.dropout", 1.5, "1.5 is not in [0, 1)"), ("model.dropout", 1.0, "1.0 is not in [0, 1)"),
    ("model.dropout", -0.1, "-0.1 is not in [0, 1)"), ("model.dropout", NAN, "nan is not a finite"),
    ("model.hidden", 0, "0 is not >= 1"), ("model.hidden", -3, "-3 is not >= 1"),
    ("model.hidden", INF, "expected int, got inf"),
    ("model.name", ["mlp_tiny"], "expected one model name (a string), got ['mlp_tiny']"),
    ("model.name", {"a": 1}, "expected one model name (a string), got {'a': 1}"),
    ("model.name", 5, "expected one model name (a string), got 5"),
    ("model.name", "mlp_tny", "unknown model 'mlp_tny' (did you mean 'mlp_tiny'?)"),
    ("dataset.name", ["synthetic"], "expected one dataset name (a string), got ['synthetic']"),
    ("dataset.valid_fraction", 1.5, "1.5 is not in (0, 1)"), ("dataset.valid_fraction", 0.0, "0.0 is not in (0, 1)"),
    ("dataset.valid_fraction", 1.0, "1.0 is not in (0, 1)"), ("dataset.valid_fraction", -0.1, "-0.1 is not in (0, 1)"),
    ("dataset.valid_fraction", NAN, "nan is not a finite"), ("dataset.test_fraction", 2.0, "2.0 is not in (0, 1)"),
    ("dataset.n_dialogues", 0, "0 is not >= 1"), ("dataset.audio_dim", -1, "-1 is not >= 1"),
    ("dataset.noise", INF, "inf is not a finite"), ("dataset.seed", -1, "-1 is not >= 0"),
    ("dataset.modalities", [], "expected a non-empty list"),
    ("dataset.modalities", ["audio", "txt"], "got 'txt' (did you mean 'text'?)"),
    ("dataset.modalities", "audio", "got 'audio'"), ("dataset.modalities", ["audio", "audio"], "distinct"),
    ("dataset.modalities", [["audio"]], "got [['audio']]"),
    ("eval.splits", ["tset"], "unknown split 'tset' (did you mean 'test'?)"),
    ("eval.splits", "test", "expected list, got 'test'"),
]


@pytest.mark.parametrize("key, value, expected", RECIPE_VALUES, ids=lambda v: str(v)[:30])
def test_recipe_value_out_of_range_or_kind(tmp_path, key, value, expected):
    path = write_recipe(tmp_path / "bad.yaml", set_key(tiny_recipe(), key, value))
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs", "--quiet")
    assert str(path) in line and f"{key.split('.')[0]}." in line and expected in line


def _bad_value(rng):
    """A value just outside ``rng`` (NaN for a range with no bound)."""
    return {SIZE: 0, NON_NEGATIVE: -1, POSITIVE: 0.0, PROBABILITY: 1.5, FACTOR: 1.0, WINDOW: -2, FINITE: NAN}[rng]


def _registry_cases():
    """For every registered model and dataset, one bad value per kind of range it takes."""
    from merbench.models.build import model_defaults
    from merbench.signature import keyword_defaults

    cases = []
    for section, registry, defaults_of in (("model", MODELS, model_defaults),
                                           ("dataset", DATASETS, lambda n: keyword_defaults(DATASETS.get(n)))):
        for name in registry.names():
            defaults = defaults_of(name)
            seen = set()
            for arg, rng in argument_ranges(registry.get(name), defaults).items():
                if rng not in seen:
                    seen.add(rng)
                    cases.append((section, name, arg, _bad_value(rng)))
    return cases


@pytest.mark.parametrize("section, name, arg, value", _registry_cases(), ids=lambda v: str(v))
def test_registered_argument_out_of_range(tmp_path, section, name, arg, value):
    """Constructor arguments of every model and dataset are range-checked before any work,
    by their names (merbench.ranges) or the model's declared ``arg_ranges``."""
    recipe = tiny_recipe()
    recipe[section] = {"name": name, arg: value} if section == "model" else {"name": name, "root": "x", arg: value}
    if section == "dataset" and name.startswith("synthetic"):
        recipe[section] = {**tiny_recipe()["dataset"], "name": name, arg: value}
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs", "--quiet")
    assert f"{section}.{arg}: {'nan' if value != value else value}" in line, line


CONSTRUCTOR = [
    ("model.fusion", "lat", "model.fusion: expected one of early, late, got 'lat' (did you mean 'late'?)", False),
    ("model.fusion", 3, "model.fusion: expected str, got 3", False),
    # Checks across arguments are the constructor's: one line when the model is built.
    ("model", {"name": "hff_tiny", "hidden": 15}, "model 'hff_tiny': hidden must be even", True),
    ("model", {"name": "mcn_cl_tiny", "hidden": 10, "heads": 4}, "model 'mcn_cl_tiny': hidden (10) must be even and divisible by heads (4)", True),
    ("dataset.noise", -1.0, "dataset.noise: -1.0 is not >= 0", False),
    ("dataset.corrupt", 1.0, "dataset.corrupt: 1.0 is not in [0, 1)", False),
]


@pytest.mark.parametrize("key, value, expected, builds", CONSTRUCTOR, ids=lambda v: str(v)[:30])
def test_declared_choice_or_constructor_check(tmp_path, key, value, expected, builds):
    """Literal choices and declared ranges stop at validation; checks across arguments stop
    when the model is built, as one line (a new run folder may hold its log)."""
    path = write_recipe(tmp_path / "bad.yaml", set_key(tiny_recipe(), key, value))
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs", "--quiet", new_files=builds)
    assert expected in line, line
    assert builds or not (tmp_path / "runs").exists()


def test_every_registered_default_is_in_its_range():
    """The conventions never reject a model's or dataset's own defaults."""
    from merbench.models.build import model_defaults
    from merbench.signature import keyword_defaults

    for registry, defaults_of in ((MODELS, model_defaults), (DATASETS, lambda n: keyword_defaults(DATASETS.get(n)))):
        for name in registry.names():
            defaults = defaults_of(name)
            for arg, rng in argument_ranges(registry.get(name), defaults).items():
                assert rng.problem(defaults[arg]) is None, (name, arg, defaults[arg], str(rng))


# --- 2. every problem of a file in one message ----------------------------------------------

COLLECTED = [
    {"train.lr": NAN, "model.dropout": 1.5},
    {"train.lr_factor": 2.0, "train.threads": -1, "train.grad_clip": -1.0},
    {"dataset.valid_fraction": 1.5, "model.hidden": 0, "eval.splits": ["tset"], "train.max_epochs": 0},
    {"modle": {}, "train.batch_size": 0, "model.dropout": -1.0},
    {"model.name": ["mlp_tiny"], "dataset.name": 3, "train.lr": "x"},
]


@pytest.mark.parametrize("changes", COLLECTED, ids=lambda c: ",".join(c))
def test_all_problems_of_a_recipe_in_one_line(tmp_path, changes):
    recipe = tiny_recipe()
    for key, value in changes.items():
        if "." in key:
            set_key(recipe, key, value)
        else:
            recipe[key] = value
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs", "--quiet")
    assert line.count(str(path)) == 1
    for key in changes:
        assert f"{key}:" in line, (key, line)


# --- 3. paths that are the wrong kind of thing -------------------------------------------------

def _paths(kind: str, w: Path) -> tuple[list, str]:
    """(command line, the name the error must give) for one wrong-kind path."""
    run = run_of(w)
    if kind == "recipe is a folder":
        (w / "recipe.yaml").mkdir()
        return ["train", w / "recipe.yaml", "--out", w / "runs"], "recipe.yaml: is a folder"
    if kind == "extends a folder":
        (w / "base").mkdir()
        (w / "child.yaml").write_text("# merbench train child.yaml\nextends: base\nmodel: {name: mlp_tiny}\n")
        return ["train", w / "child.yaml", "--out", w / "runs"], "extends: base is a folder"
    if kind == "results folder without results":
        (w / "empty").mkdir()
        return ["table", w / "empty"], "empty: holds no result.json"
    if kind == "reference is a folder":
        (w / "refdir").mkdir()
        return ["check", run, "--against", w / "refdir"], "refdir: is a folder"
    if kind == "reference to write is a folder":
        (w / "refdir").mkdir()
        return ["check", run, "--against", w / "refdir", "--update"], "refdir: is a folder"
    if kind == "--out is a file":
        (w / "outfile").write_text("x")
        return ["train", w / "r.yaml", "--out", w / "outfile", "--quiet"], "outfile"
    if kind == "best.pt is a folder":
        (run / "checkpoints" / "best.pt").unlink()
        (run / "checkpoints" / "best.pt").mkdir()
        return ["evaluate", run], "best.pt: is a folder"
    if kind == "predictions.npz is a folder":
        (run / "predictions.npz").unlink()
        (run / "predictions.npz").mkdir()
        return ["significance", run, run], "predictions.npz: is a folder"
    if kind == "result.json is a file of another name":
        (w / "notes.txt").write_text("hello")
        return ["table", w / "notes.txt"], "notes.txt: not valid JSON"
    if kind == "ablate --recipe is a folder":
        (w / "recipe.yaml").mkdir()
        return ["ablate", "hff", "--drop", "attention", "--recipe", w / "recipe.yaml", "--out", w / "grids"], \
            "recipe.yaml: is a folder"
    raise AssertionError(kind)


PATH_KINDS = ["recipe is a folder", "extends a folder", "results folder without results", "reference is a folder",
              "reference to write is a folder", "--out is a file", "best.pt is a folder",
              "predictions.npz is a folder", "result.json is a file of another name", "ablate --recipe is a folder"]


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_path_of_the_wrong_kind(work, kind):
    args, expected = _paths(kind, work)
    line = bad(work, *args)
    assert expected in line, line


# --- 4. recipe files that cannot be read as a recipe -----------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

RECIPE_FILES = [
    ("not utf-8", b"# merbench train x\n\xff\xfe dataset: {name: synthetic}\n", "not UTF-8"),
    ("latin-1 text", "# merbench\nmodel: {name: caf\u00e9}\n".encode("latin-1"), "not UTF-8"),
    ("unclosed list", b"model: [unclosed\n", "not valid YAML at line"),
    ("bad indentation", b"model:\n  name: mlp\n bad: 1\n", "not valid YAML"),
    ("tab indentation", b"model:\n\tname: mlp\n", "not valid YAML"),
    ("empty file", b"", "expected a mapping"),
    ("a list", b"- a\n- b\n", "expected a mapping"),
    ("a number", b"42\n", "expected a mapping"),
    ("python tag", b"model: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
    ("deep nesting", b"model: " + b"[" * 300 + b"]" * 300 + b"\n", "model.name: required"),
    ("alias bomb", BOMB.encode() + b"dataset: {name: synthetic}\nmodel: {name: mlp_tiny}\ntrain: {lr: *i}\n",
     "train.lr: expected float"),
    ("alias bomb as a model name", BOMB.encode() + b"dataset: {name: synthetic}\nmodel: {name: *i}\n",
     "model.name: expected one model name"),
    ("huge string", b"dataset: {name: synthetic}\nmodel: {name: '" + b"x" * 200_000 + b"'}\n",
     "model.name: unknown model"),
    ("huge key", b"dataset: {name: synthetic}\nmodel: {name: mlp_tiny}\n" + b"y" * 1000 + b": 1\n",
     "unknown section"),
    ("key too long for YAML", b"dataset: {name: synthetic}\n" + b"y" * 100_000 + b": 1\n", "not valid YAML"),
    ("extends a list", b"extends: [a, b]\nmodel: {name: mlp_tiny}\n", "extends: expected one path"),
    ("extends itself", b"extends: bad.yaml\nmodel: {name: mlp_tiny}\n", "extends itself in a cycle"),
    ("section not a mapping", b"dataset: {name: synthetic}\nmodel: {name: mlp_tiny}\ntrain: [1, 2]\n",
     "train: expected a mapping"),
    ("null name", b"dataset: {name: synthetic}\nmodel: {name: null}\n", "model.name: expected one model name"),
    ("duplicate anchors of sections", b"dataset: &d {name: synthetic}\nmodel: *d\n", "model.name: unknown model"),
    ("a section twice", b"dataset: {name: synthetic}\nmodel: {name: mlp_tiny}\nmodel: {name: tfn}\n",
     "not valid YAML at line 3 (key 'model' is written twice in one mapping; expected each key once)"),
    ("a key twice", b"dataset: {name: synthetic}\nmodel: {name: mlp_tiny}\ntrain:\n  lr: 0.1\n  lr: 0.2\n",
     "not valid YAML at line 5 (key 'lr' is written twice"),
]


@pytest.mark.parametrize("name, content, expected", RECIPE_FILES, ids=[c[0] for c in RECIPE_FILES])
def test_unreadable_recipe_file(tmp_path, name, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs", "--quiet")
    assert "bad.yaml" in line and expected in line, line
    assert len(line) < 1000  # a value is quoted as a short excerpt, never whole


# --- 5. results and references whose numbers are not numbers --------------------------------

def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _first_entry(ref: dict) -> dict:
    return next(iter(ref["entries"].values()))


def _first_metric(ref: dict) -> dict:
    return next(iter(_first_entry(ref)["metrics"].values()))


RESULT_EDITS = {
    "NaN metric": (lambda d: d["metrics"]["test"].__setitem__("acc", NAN), "NaN is not a number"),
    "Infinity metric": (lambda d: d["metrics"]["test"].__setitem__("wf1", INF), "Infinity is not a number"),
    "-Infinity metric": (lambda d: d["metrics"]["valid"].__setitem__("wf1", -INF), "-Infinity is not a number"),
    "metric as a string": (lambda d: d["metrics"]["test"].__setitem__("acc", "99"), "metrics.test.acc: expected a number, got '99'"),
    "metric as null": (lambda d: d["metrics"]["test"].__setitem__("wf1", None), "metrics.test.wf1: expected a number, got None"),
    "metric as a bool": (lambda d: d["metrics"]["test"].__setitem__("wf1", True), "metrics.test.wf1: expected a number"),
    "split as a list": (lambda d: d["metrics"].__setitem__("test", [1, 2]), "metrics.test: expected a mapping"),
    "metrics as a list": (lambda d: d.__setitem__("metrics", [1]), "metrics: expected a mapping"),
    "missing key": (lambda d: d.pop("metrics"), "missing key 'metrics'"),
    "recipe a list": (lambda d: d.__setitem__("recipe", [1, 2]), "recipe: expected the resolved recipe (a mapping), got [1, 2]"),
    "recipe a string": (lambda d: d.__setitem__("recipe", "r.yaml"), "recipe: expected the resolved recipe (a mapping), got 'r.yaml'"),
    "recipe without train": (lambda d: d["recipe"].pop("train"), "recipe.train: expected a mapping, got None"),
    "dataset a list": (lambda d: d.__setitem__("dataset", [1]), "not a complete merbench result"),
    "schema version": (lambda d: d.__setitem__("schema_version", 99), "schema_version 99"),
}
RESULT_TEXT = {
    "not utf-8": (b"\xff\xfe{}", "not UTF-8"),
    "truncated": (None, "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "a list": (b"[1, 2]", "expected a JSON object"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
}


@pytest.mark.parametrize("command", ["table", "check"])
@pytest.mark.parametrize("kind", list(RESULT_EDITS) + list(RESULT_TEXT))
def test_bad_result_file(work, command, kind):
    path = run_of(work) / "result.json"
    if kind in RESULT_EDITS:
        edit, expected = RESULT_EDITS[kind]
        _edit_json(path, edit)
    else:
        content, expected = RESULT_TEXT[kind]
        path.write_bytes(content if content is not None else path.read_bytes()[:200])
    run = run_of(work)
    args = ["table", run] if command == "table" else ["check", run, "--against", work / "reference.json"]
    line = bad(work, *args)
    assert "result.json" in line and expected in line, line


REFERENCE_EDITS = {
    "NaN reference": (lambda r: _first_metric(r).__setitem__("reference", NAN), "NaN is not a number"),
    "Infinity tolerance": (lambda r: _first_metric(r).__setitem__("tolerance", INF), "Infinity is not a number"),
    "null reference": (lambda r: _first_metric(r).__setitem__("reference", None), ".reference: expected a number, got None"),
    "string reference": (lambda r: _first_metric(r).__setitem__("reference", "60.1"), ".reference: expected a number, got '60.1'"),
    "string tolerance": (lambda r: _first_metric(r).__setitem__("tolerance", "1.5"), ".tolerance: expected a number, got '1.5'"),
    "negative tolerance": (lambda r: _first_metric(r).__setitem__("tolerance", -5), ".tolerance: -5 is not >= 0"),
    "missing reference": (lambda r: _first_metric(r).pop("reference"), ".reference: missing"),
    "missing tolerance": (lambda r: _first_metric(r).pop("tolerance"), ".tolerance: missing"),
    "lower_is_better a string": (lambda r: _first_metric(r).__setitem__("lower_is_better", "no"), ".lower_is_better: expected true or false"),
    "metric spec a number": (lambda r: _first_entry(r)["metrics"].__setitem__("acc", 60.0), ".metrics.acc: expected a mapping"),
    "entry without metrics": (lambda r: _first_entry(r).pop("metrics"), ".metrics: expected a non-empty mapping"),
    "entry with empty metrics": (lambda r: _first_entry(r).__setitem__("metrics", {}), ".metrics: expected a non-empty mapping"),
    "entry a list": (lambda r: r["entries"].__setitem__(next(iter(r["entries"])), [1]), "expected a mapping with label and metrics"),
    "entries a list": (lambda r: r.__setitem__("entries", [1, 2]), "entries: expected a non-empty mapping"),
    "entries empty": (lambda r: r.__setitem__("entries", {}), "entries: expected a non-empty mapping"),
    "split unknown": (lambda r: r.__setitem__("split", "tset"), "split: expected one of train, valid, test"),
    "no entries key": (lambda r: r.pop("entries"), "not a merbench reference file"),
    "schema version": (lambda r: r.__setitem__("schema_version", 2), "not a merbench reference file"),
}
REFERENCE_TEXT = {
    "not utf-8": (b"\xff{}", "not UTF-8"),
    "truncated": (None, "not valid JSON"),
    "a list": (b"[]", "not a merbench reference file"),
    "missing": (False, "no such reference file"),
}


@pytest.mark.parametrize("kind", list(REFERENCE_EDITS) + list(REFERENCE_TEXT))
def test_bad_reference_fails_check(work, kind):
    """A CI reference that cannot fail (NaN, missing, non-numeric) is refused, never passed."""
    path = work / "reference.json"
    if kind in REFERENCE_EDITS:
        edit, expected = REFERENCE_EDITS[kind]
        _edit_json(path, edit)
    else:
        content, expected = REFERENCE_TEXT[kind]
        if content is False:
            path.unlink()
        else:
            path.write_bytes(content if content is not None else path.read_bytes()[:100])
    line = bad(work, "check", run_of(work), "--against", path)
    assert "reference.json" in line and expected in line, line


def test_nan_result_never_passes_check(work):
    """Whatever path a NaN takes, check does not answer ok."""
    from merbench.aggregate import Cell, Group
    from merbench.check import compare, entry_id

    result = json.loads((run_of(work) / "result.json").read_text())
    group = Group("k", result["recipe"], [result])
    reference = json.loads((work / "reference.json").read_text())
    reference["entries"] = {entry_id(group): _first_entry(reference)}
    group.cell = lambda metric, split="test": Cell([NAN])
    assert all(f.status == "regression" for f in compare([group], reference))


# --- 6. saved arrays and checkpoints ------------------------------------------------------------

class _RunsCode:
    def __reduce__(self):
        return (print, ("pwned: unpickling ran code",))


def _break_saved(kind: str, w: Path) -> tuple[list, str]:
    run = run_of(w)
    best, last, preds = run / "checkpoints" / "best.pt", run / "checkpoints" / "last.pt", run / "predictions.npz"
    if kind.startswith("predictions"):
        what = kind.split(": ")[1]
        if what == "truncated":
            preds.write_bytes(preds.read_bytes()[: preds.stat().st_size // 2])
        elif what == "garbage":
            preds.write_bytes(b"not a zip file at all")
        elif what == "empty":
            preds.write_bytes(b"")
        elif what == "deleted":
            preds.unlink()
        elif what == "a pickle":
            preds.write_bytes(pickle.dumps({"test_index": [1]}))
        else:  # arrays of the wrong shape or values: significance would score them
            import numpy as np

            arrays = dict(np.load(preds))
            if what == "outputs of other classes":
                arrays["test_outputs"] = arrays["test_outputs"][:, :2]
            elif what == "fewer outputs":
                arrays["test_outputs"] = arrays["test_outputs"][:3]
            elif what == "labels as a column":
                arrays["test_labels"] = arrays["test_labels"][:, None]
            elif what == "NaN outputs":
                arrays["test_outputs"][:] = np.nan
            elif what == "labels outside the label set":
                arrays["test_labels"][0] = 99
            np.savez(preds, **arrays)
        return ["significance", run, run], "predictions.npz"
    what = kind.split(": ")[1]
    if what == "truncated":
        best.write_bytes(best.read_bytes()[:100])
    elif what == "garbage":
        best.write_bytes(b"\x00garbage")
    elif what == "empty":
        best.write_bytes(b"")
    elif what == "code on unpickling":
        best.write_bytes(pickle.dumps(_RunsCode()))
    elif what == "deleted":
        best.unlink()
    elif what == "a JSON file":
        best.write_text("{}")
    elif what == "without the model":
        import torch

        torch.save({"epoch": 1}, best)
    elif what == "best.pt copied over last.pt, --resume":
        shutil.copy(best, last)
        (run / "result.json").unlink()
        return ["train", w / "r.yaml", "--out", w / "runs", "--resume", "--quiet"], "last.pt"
    elif what == "last.pt of another model, --resume":
        import torch

        state = torch.load(last, weights_only=False)
        state["model"] = {"other.weight": torch.zeros(2, 2)}
        torch.save(state, last)
        (run / "result.json").unlink()
        return ["train", w / "r.yaml", "--out", w / "runs", "--resume", "--quiet"], "last.pt: does not match this run's model"
    return ["evaluate", run], "best.pt"


SAVED_KINDS = [f"predictions: {k}" for k in ("truncated", "garbage", "empty", "deleted", "a pickle",
                                             "outputs of other classes", "fewer outputs", "labels as a column",
                                             "NaN outputs", "labels outside the label set")] + \
    [f"checkpoint: {k}" for k in ("truncated", "garbage", "empty", "code on unpickling", "deleted", "a JSON file",
                                   "without the model", "best.pt copied over last.pt, --resume",
                                   "last.pt of another model, --resume")]


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_bad_saved_file(work, kind, capfd):
    args, name = _break_saved(kind, work)
    line = bad(work, *args)
    assert name in line, line
    assert "pwned" not in capfd.readouterr().out


# --- 7. command-line options ----------------------------------------------------------------------

OPTIONS = [
    (["heads-sweep", "hff", "--dataset", "synthetic", "--heads", "0"], "--heads 0"),
    (["heads-sweep", "hff", "--dataset", "synthetic", "--heads", "x"], "--heads x"),
    (["heads-sweep", "hff", "--dataset", "synthetic", "--heads", "4,,8"], "--heads"),
    (["heads-sweep", "hff", "--dataset", "synthetic", "--seeds", "x"], "'--seeds'"),
    (["heads-sweep", "hff", "--dataset", "synthetic", "--seeds", "0"], "--seeds 0: expected"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--seeds", "-2"], "--seeds -2: expected"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--jobs", "0"], "--jobs 0: expected"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--threads", "0"], "--threads 0: expected"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--time", "0"], "--time 0: expected"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--jobs", "1.5"], "'--jobs'"),
    (["compare", "--dataset", "synthetic", "--seeds", "nan"], "'--seeds'"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--gpus-per-job", "-1"], "'--gpus-per-job'"),
    (["ablate", "hff", "--dataset", "synthetic", "--drop", "attention", "--cpus-per-task", "0"], "'--cpus-per-task'"),
    (["extract", "--dataset", "iemocap", "--fold", "x"], "'--fold'"),
    (["extract", "--dataset", "synthetic", "--frames", "0"], "'--frames'"),
    (["evaluate", "run", "--seed", "-1"], "'--seed'"),
    (["robustness", "run", "--seed", "x"], "'--seed'"),
    (["table", "run", "--resamples", "0"], "'--resamples'"),
    (["check", "run", "--against", "ref.json", "--update", "--tolerance", "-5"], "'--tolerance'"),
    (["check", "run", "--against", "ref.json", "--tolerance", "nan"], "'--tolerance'"),
    (["check", "run"], "'--against'"),
    (["train"], "'recipe'"),
    (["train", "r.yaml", "--bogus"], "--bogus"),
    (["train", "r.yaml", "--set"], "--set"),
    (["nosuchcommand"], "nosuchcommand"),
    (["grid", "nosuch"], "nosuch"),
    (["train", "r.yaml", "--set", "seed"], "--set seed: expected KEY.PATH=VALUE"),
    (["train", "r.yaml", "--set", "train.lr=.nan"], "train.lr: nan is not a finite number"),
    (["train", "r.yaml", "--set", "train.lr=nan"], "train.lr: expected float, got 'nan'"),
    (["train", "r.yaml", "--set", "model.dropout=2"], "model.dropout: 2 is not in [0, 1)"),
    (["train", "r.yaml", "--set", "train.lr=0.01", "--set", "model.hiden=3"], "error: --set model.hiden=3: model.hiden"),
    (["train", "r.yaml", "--set", "dataset.modalities=text"], "got 'text' (a list: [text])"),
    (["table", "run", "--split", "dev"], "--split dev: expected one of train, valid, test"),
    (["table", "run", "--figure", "r.yaml/t.png"], "r.yaml is a file, not a folder"),
    (["figure", "confusion", "run", "--out", "r.yaml/c.png"], "r.yaml is a file, not a folder"),
    (["robustness", "run", "--levels", "0", "--save", "runs"], "runs: is a folder; expected a file path to write"),
    (["compare", "--dataset", "synthetic", "--models", "mlp_tiny", "--efficiency", "--device", "tpu"],
     "--device tpu: expected cpu, cuda"),
]


@pytest.mark.parametrize("args, expected", OPTIONS, ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_option_error_is_one_line(work, args, expected):
    args = [str(work / a) if a in ("r.yaml", "runs") or a.startswith("r.yaml/") else str(run_of(work)) if a == "run"
            else a for a in args]
    line = bad(work, *args, *(["--out", str(work / "out")] if args[0] in ("ablate", "heads-sweep", "compare") else []))
    assert expected in line, line


def test_help_still_works():
    assert cli("--help").exit_code == 0
    assert cli("train", "--help").exit_code == 0
    result = cli()
    assert "Usage" in result.output and "error:" not in result.output


def test_recipe_problems_reach_yaml_and_json_values_bounded(tmp_path):
    """A bounded excerpt, not the value: 80 characters of a long value at most."""
    path = write_recipe(tmp_path / "bad.yaml", set_key(tiny_recipe(), "train.lr", "z" * 5000))
    line = bad(tmp_path, "train", path, "--out", tmp_path / "runs")
    assert "z" * 30 in line and "z" * 90 not in line and len(line) < 300


def test_mosi_release_errors_are_one_line(tmp_path):
    """A wrong dataset.root and a broken bc-LSTM file stop `merbench train` / `extract` with one
    line naming the folder or the file, line and what was expected."""
    from fixtures import write_mosi_bclstm

    base = Path(__file__).resolve().parents[1] / "recipes" / "base" / "mosi.yaml"
    recipe = write_recipe(tmp_path / "r.yaml", {"extends": str(base), "model": {"name": "mlp_tiny"},
                                                "train": {"max_epochs": 1, "threads": 1}})
    run = ["train", recipe, "--out", tmp_path / "out", "--set"]
    line = bad(tmp_path, *run, f"dataset.root={tmp_path / 'nowhere'}", new_files=True)
    assert "dataset.root: " in line and "nowhere does not exist (expected your copy of mosi)" in line
    line = bad(tmp_path, *run, f"dataset.root={tmp_path}", new_files=True)
    assert "no mosi format found at" in line and "mosi_bclstm (transcripts.csv and text_train.csv" in line
    write_mosi_bclstm(tmp_path / "data")
    video = tmp_path / "data" / "video" / "video_test0.csv"
    video.write_text(video.read_text().replace('"0"\n', '"1"\n', 1))
    line = bad(tmp_path, "extract", "--dataset", "mosi", "--root", tmp_path / "data", "--quiet")
    assert "mosi_bclstm: " in line and "video_test0.csv line" in line and "disagrees with transcripts.csv line" in line


def test_bank_size():
    """The bank holds 100+ bad inputs across the kinds above (reported in the issue)."""
    n = (len(RECIPE_VALUES) + len(_registry_cases()) + len(CONSTRUCTOR) + len(COLLECTED) + len(PATH_KINDS) + len(RECIPE_FILES)
         + 2 * (len(RESULT_EDITS) + len(RESULT_TEXT)) + len(REFERENCE_EDITS) + len(REFERENCE_TEXT)
         + len(SAVED_KINDS) + len(OPTIONS))
    assert n >= 100, n
