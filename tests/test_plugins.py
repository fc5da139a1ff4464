"""Your own model: plugin files, entry points, the contract, provenance (docs/plugins.md)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from merbench import plugins, run_folder
from merbench.experiments import compare
from merbench.registry import MODELS

from helpers import cli, one_line_error, write_recipe

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "gated_attention.py"
TINY_DATA = {"name": "synthetic", "n_dialogues": 12, "n_utterances": 120, "audio_dim": 6, "text_dim": 8,
             "vision_dim": 5, "seed": 0}
TRAIN = {"max_epochs": 2, "patience": 2, "batch_size": 32, "threads": 1}


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Plugins register into the process-wide registry: each test works on its own copy (of
    the loaded registry: a copy taken before the first lookup would be empty and stay so)."""
    MODELS.load()
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.setenv(plugins.ENV, "")
    code = run_folder.source_hash()
    monkeypatch.setattr(run_folder, "source_hash", lambda: code)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_plugin_runs_through_compare_and_records_its_hash(tmp_path):
    recipes = tmp_path / "recipes"
    write_recipe(recipes / "synthetic" / "gated_attention.yaml", {
        "dataset": TINY_DATA, "model": {"name": "gated_attention", "hidden": 8, "heads": 2}, "train": TRAIN})
    write_recipe(recipes / "synthetic" / "mlp_tiny.yaml", {"dataset": TINY_DATA, "model": {"name": "mlp_tiny"},
                                                          "train": TRAIN})
    result = cli("--plugin", EXAMPLE, "compare", "--dataset", "synthetic", "--models", "mlp_tiny,gated_attention",
                 "--recipes", recipes, "--out", tmp_path / "grids", "--quiet", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "gated_attention" in result.output and "mlp_tiny" in result.output
    runs_ = {json.loads(p.read_text())["model"]["name"]: json.loads(p.read_text())
             for p in (tmp_path / "grids" / "compare-synthetic").glob("*/result.json")}
    assert runs_["gated_attention"]["status"] == "ok"
    assert runs_["gated_attention"]["provenance"]["plugin"]["file"] == str(EXAMPLE)
    assert runs_["gated_attention"]["provenance"]["plugin"]["sha256"] == sha256(EXAMPLE)
    assert runs_["mlp_tiny"]["provenance"]["plugin"] is None
    assert os.environ[plugins.ENV] == str(EXAMPLE)  # what grid workers in other processes read


def test_changing_the_plugin_file_changes_the_run_id(tmp_path):
    plugin = tmp_path / "my_model.py"
    plugin.write_text(EXAMPLE.read_text())
    plugins.load_file(plugin)
    recipe = compare.base_recipe(write_recipe(tmp_path / "r.yaml", {
        "dataset": TINY_DATA, "model": {"name": "gated_attention"}, "train": TRAIN}), [])[0]
    before = run_folder.run_id(recipe)
    plugin.write_text(EXAMPLE.read_text() + "# an edit\n")
    plugins._loaded.clear()
    plugins.load_file(plugin)  # the same file defining the model again replaces it
    assert plugins.plugin_of("gated_attention").sha256 == sha256(plugin)
    assert run_folder.run_id(recipe) != before


def test_plugins_from_the_environment_reach_another_process(tmp_path):
    env = {**os.environ, plugins.ENV: os.pathsep.join(["", str(EXAMPLE)])}
    code = "import merbench.models; from merbench.registry import MODELS; print('gated_attention' in MODELS)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "True", out.stderr


GOOD = EXAMPLE.read_text()
BAD = {
    "missing_level": (GOOD.replace('    level = "utterance"', "   "), "does not set 'level'"),
    "bad_level": (GOOD.replace('level = "utterance"', 'level = "sentence"'), "level is 'sentence'"),
    "switch_not_bool": (GOOD.replace("gate: bool = True", "gate: int = 1"),
                        "component 'gate' must be a constructor argument with a bool default"),
    "switch_not_argument": (GOOD.replace('components = ("attention", "gate")', 'components = ("attention", "gating")'),
                            "component 'gating' must be a constructor argument"),
    "name_clash": (GOOD.replace('register_model("gated_attention")', 'register_model("hff")'),
                   "the name is taken by a model of merbench"),
    "import_error": ("import not_a_module_of_anyone\n" + GOOD,
                     "the plugin failed to import: ModuleNotFoundError: No module named 'not_a_module_of_anyone'"),
    "syntax_error": (GOOD.replace("def forward(self, batch)", "def forward(self batch)"),
                     "the plugin failed to import: SyntaxError at line"),
    "registers_nothing": ("import merbench\n", "registers no model"),
    "not_a_model": (GOOD.replace("class GatedAttention(merbench.MerModel)", "class GatedAttention"),
                    "expected a subclass of merbench.models.base.MerModel"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_contract_is_one_line_naming_the_file(tmp_path, case):
    text, message = BAD[case]
    plugin = tmp_path / f"{case}.py"
    plugin.write_text(text)
    error = one_line_error(cli("--plugin", plugin, "models"))
    assert str(plugin) in error and message in error, error


def test_missing_plugin_file_is_one_line(tmp_path):
    error = one_line_error(cli("--plugin", tmp_path / "nope.py", "models"))
    assert "nope.py: no such file" in error


def test_installed_package_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """An installed distribution, as pip leaves it: the package and a dist-info with entry_points.txt."""
    package = tmp_path / "tinyplug"
    package.mkdir()
    (package / "__init__.py").write_text(
        GOOD.replace('register_model("gated_attention")', 'register_model("tiny_gate")')
        + "\n\nclass Undecorated(GatedAttention):\n    pass\n")
    dist = tmp_path / "tinyplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[merbench.models]\ntinyplug = tinyplug\nundecorated_gate = tinyplug:Undecorated\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tinyplug", raising=False)
    plugins.load_plugins()  # what importing merbench.models does in a fresh process
    result = cli("models")
    sys.modules.pop("tinyplug", None)
    assert result.exit_code == 0, result.output
    assert "tiny_gate" in result.output and "undecorated_gate" in result.output
    source = plugins.plugin_of("tiny_gate")
    assert source.file == str(package / "__init__.py") and source.origin.startswith("entry point tinyplug (tinyplug 0.1")
    assert MODELS.get("undecorated_gate").__name__ == "Undecorated"


def test_models_listing_prints_bracketed_notes_whole(monkeypatch):
    # Rich reads "[...]" as markup: the plugin note and the extra's name must survive it.
    import merbench.optional

    monkeypatch.delenv("COLUMNS", raising=False)  # piped: as wide as the rows need
    result = cli("--plugin", EXAMPLE, "models")
    assert result.exit_code == 0, result.output
    assert "[plugin: gated_attention.py]" in result.output
    monkeypatch.setattr(merbench.optional, "missing_for", lambda cls: "torch_geometric" if cls.__name__ == "COGMEN" else None)
    result = cli("models")
    assert "[needs pip install 'merbench[graph]']" in result.output
