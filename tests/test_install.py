"""Installing merbench: packaged recipes and the rule that finds one, optional dependencies,
--version and python -m merbench. The wheel itself: scripts/wheel_check.sh (CI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from merbench import recipe_paths
from merbench.errors import MerbenchError
from merbench.recipe import load_recipe
from merbench.references import reference_names

from helpers import cli, one_line_error, write_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_every_recipe_and_reference_is_package_data():
    """The wheel holds what pyproject's package-data patterns match under merbench/: every
    file of the top-level recipes/ folder, which merbench/recipes links to."""
    assert recipe_paths.PACKAGED == (ROOT / "recipes").resolve()
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["merbench"]
    shipped = {p for pattern in patterns for p in (ROOT / "merbench").glob(pattern)}
    files = {ROOT / "merbench" / p.relative_to(ROOT) for p in (ROOT / "recipes").rglob("*") if p.is_file()}
    assert files and files == shipped
    assert {"hff", "hrdf_mer", "mcn_cl"} <= set(reference_names())


def test_a_path_that_exists_is_that_file(tmp_path):
    path = write_recipe(tmp_path / "mine.yaml", {"dataset": {"name": "synthetic"}, "model": {"name": "mlp"}})
    assert recipe_paths.find_recipe(path) == path


@pytest.mark.parametrize("given", ["recipes/synthetic/hff.yaml", "synthetic/hff.yaml", "synthetic/hff"])
def test_a_missing_path_names_the_packaged_recipe(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder outside the clone, as after pip install
    assert recipe_paths.find_recipe(given) == recipe_paths.PACKAGED / "synthetic" / "hff.yaml"
    assert load_recipe(given)["model"]["name"] == "hff"


def test_an_unknown_recipe_is_one_line_with_the_closest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MerbenchError, match=r"recipes/synthetic/hf\.yaml: no such recipe file.*did you mean 'synthetic/hff'"):
        recipe_paths.find_recipe("recipes/synthetic/hf.yaml")


@pytest.mark.parametrize("typo", ["recipes/synthetic/mlp.yml", "synthetic/mlp.yml", "synthetic/mlp.yaml.bak"])
def test_a_path_with_another_suffix_is_an_error_not_the_packaged_recipe(typo, tmp_path, monkeypatch):
    # A typo for .yaml must not train the packaged synthetic/mlp silently.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MerbenchError, match=r"no such recipe file, nor a packaged recipe of that name "
                                            r"\(did you mean 'synthetic/mlp'\?\)"):
        recipe_paths.find_recipe(typo)
    result = cli("train", typo, "--quiet")
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()


def test_grid_recipe_comes_from_root_then_working_dir_then_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    packaged = recipe_paths.PACKAGED / "synthetic" / "mlp.yaml"
    assert recipe_paths.recipe_for("synthetic", "mlp").resolve() == packaged
    local = write_recipe(tmp_path / "recipes" / "synthetic" / "mlp.yaml",
                         {"extends": "../base/synthetic.yaml", "model": {"name": "mlp", "hidden": 7}})
    assert recipe_paths.recipe_for("synthetic", "mlp") == Path("recipes/synthetic/mlp.yaml")
    # Its extends: no local base/, so the packaged base of the same name.
    assert load_recipe(recipe_paths.recipe_for("synthetic", "mlp"))["model"]["hidden"] == 7
    other = tmp_path / "other"
    with pytest.raises(MerbenchError, match="no recipe for model 'mlp' on dataset 'synthetic'"):
        recipe_paths.recipe_for("synthetic", "mlp", other)
    assert local.exists()


def test_recipes_validate_defaults_to_the_packaged_recipes_outside_a_clone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("recipes", "validate", "synthetic/mlp")
    assert result.exit_code == 0, result.output
    assert str(recipe_paths.PACKAGED / "synthetic" / "mlp.yaml") in result.output


def test_version_and_python_m_merbench():
    from merbench import __version__

    assert cli("--version").output.strip() == f"merbench {__version__}"
    out = subprocess.run([sys.executable, "-m", "merbench", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"merbench {__version__}", out.stderr


def test_without_torch_geometric_every_other_model_works_and_graph_ones_say_what_to_install(tmp_path):
    """A fresh process in which torch_geometric cannot be imported, as after a plain install."""
    script = textwrap.dedent("""
        import sys

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch_geometric":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, Absent())
        import merbench.models
        from merbench.errors import MerbenchError
        from merbench.models.build import build_model
        from merbench.registry import MODELS

        assert {"cogmen", "dialoguegcn", "mlp", "hff"} <= set(MODELS.names())
        build_model("mlp_tiny", {"text": 4}, 3)
        try:
            build_model("cogmen_tiny", {"text": 4}, 3)
        except MerbenchError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "model 'cogmen_tiny' needs torch_geometric, which is not installed: " \
                                 "pip install 'merbench[graph]'"


def test_missing_extraction_library_names_the_extra():
    from merbench.optional import MissingDependency, import_optional, names_from

    with pytest.raises(MissingDependency, match=r"reading video frames needs no_such_library_xyz, which is not installed"):
        import_optional("no_such_library_xyz", "reading video frames")
    (conv,) = names_from("no_such_library_xyz.nn", "Conv")
    with pytest.raises(MissingDependency):
        conv(4, 4)


def test_graph_model_missing_its_extra_is_one_line_before_training(tmp_path, monkeypatch):
    from merbench.models import cogmen
    from merbench.optional import Missing

    monkeypatch.setattr(cogmen, "RGCNConv", Missing("torch_geometric.nn", "RGCNConv"))
    error = one_line_error(cli("train", "synthetic/cogmen", "--out", tmp_path))
    assert error == "error: model 'cogmen' needs torch_geometric, which is not installed: pip install 'merbench[graph]'"
    assert not list(tmp_path.iterdir())  # nothing started
