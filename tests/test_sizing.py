"""Grid sizing: every grid command prints its cell count and a time estimate, --dry-run trains nothing."""

from __future__ import annotations

import json
import statistics

import pytest

from merbench import run_folder
from merbench.experiments.sizing import Estimate, duration, estimate, parallelism
from merbench.grid import RunnerOptions

from helpers import cli, tiny_recipe, write_recipe

MODEL_ARGS = {"mlp_tiny": {}, "hff_tiny": {"audio_cnn": False}}


pytestmark = pytest.mark.usefixtures("frozen_source")


@pytest.fixture(scope="module")
def recipes_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    for model, args in MODEL_ARGS.items():
        recipe = tiny_recipe(model, max_epochs=1)
        recipe["dataset"].update(n_dialogues=12, n_utterances=120)
        recipe["model"].update(args)
        write_recipe(root / "synthetic" / f"{model}.yaml", recipe)
    return root


def ablate_args(recipes_dir, out, *extra):
    return ("ablate", "hff_tiny", "--drop", "attention", "--dataset", "synthetic", "--recipes", recipes_dir,
            "--out", out, "--quiet", "--modalities", "T,S+T+V", *extra)


def test_dry_run_prints_the_plan_and_trains_nothing(recipes_dir, tmp_path):
    result = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "3", "--dry-run"))
    assert result.exit_code == 0, result.output
    # (full + attention) x 2 modality subsets x 3 seeds
    assert "12 cells (0 finished, 12 to train); no estimate (no finished run of hff_tiny on synthetic" in result.stdout
    assert "dry run: nothing trained" in result.stdout
    assert not list(tmp_path.iterdir())  # no grid folder, no grid.json


def test_estimate_comes_from_finished_cells_of_the_same_model(recipes_dir, tmp_path):
    first = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "1"))
    assert first.exit_code == 0, first.output
    # A real run prints its size before training.
    assert "4 cells (0 finished, 4 to train); no estimate" in first.stderr
    seconds = [json.loads(p.read_text())["training"]["seconds"] for p in tmp_path.glob("*/*/result.json")]
    assert len(seconds) == 4  # one epoch each (max_epochs 1)

    planned = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "3", "--dry-run"))
    assert planned.exit_code == 0, planned.output
    expected = duration(8 * statistics.mean(seconds))  # 8 new cells (seeds 1, 2) at the mean time
    assert f"12 cells (4 finished, 8 to train); estimate {expected} for up to 1 epoch a cell (from the time " \
           f"per epoch of 4 runs of hff_tiny on synthetic)" in planned.stdout
    with_jobs = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "3", "--dry-run", "--jobs", "2"))
    assert f"estimate {duration(4 * statistics.mean(seconds))}, 2 at a time" in with_jobs.stdout
    assert len(list(tmp_path.glob("*/*/result.json"))) == 4  # the dry runs trained nothing

    # Another model on the same --out: hff_tiny's times do not count for it.
    other = cli("compare", "--dataset", "synthetic", "--models", "mlp_tiny,hff_tiny", "--seeds", "2",
                "--recipes", recipes_dir, "--out", tmp_path, "--dry-run")
    assert other.exit_code == 0, other.output
    assert "4 cells (0 finished, 4 to train); estimate" in other.stdout
    assert "2 cell(s) of mlp_tiny on synthetic not included (no finished run to time from)" in other.stdout

    # grid status: what is left of an unfinished grid, with the same estimate.
    grid = next(tmp_path.glob("ablate-*"))
    manifest = json.loads((grid / "grid.json").read_text())
    bigger = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "2", "--dry-run"))
    assert "8 cells (4 finished, 4 to train)" in bigger.stdout
    status = cli("grid", "status", grid)
    assert status.exit_code == 0 and len(manifest["cells"]) == 4
    assert "to finish" not in status.stdout  # every cell of this grid's manifest is done
    (grid / manifest["cells"][0]["run"] / run_folder.RESULT).unlink()
    status = cli("grid", "status", grid)
    assert "to finish: 4 cells (3 finished, 1 to train); estimate" in status.stdout


def test_estimate_is_per_epoch(recipes_dir, tmp_path):
    """2-epoch smoke runs size a 50-epoch grid: time per epoch x each cell's max_epochs."""
    first = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "1", "--set", "train.max_epochs=2"))
    assert first.exit_code == 0, first.output
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*/*/result.json")]
    assert {r["selection"]["epochs_run"] for r in results} == {2}
    per_epoch = statistics.mean(r["training"]["seconds"] / 2 for r in results)
    planned = cli(*ablate_args(recipes_dir, tmp_path, "--seeds", "1", "--set", "train.max_epochs=50", "--dry-run"))
    assert planned.exit_code == 0, planned.output
    assert (f"4 cells (0 finished, 4 to train); estimate {duration(4 * 50 * per_epoch)} for up to 50 epochs "
            f"a cell (from the time per epoch of 4 runs of hff_tiny on synthetic)") in planned.stdout


def test_heads_sweep_and_robustness_print_their_size(recipes_dir, tmp_path):
    heads = cli("heads-sweep", "hff_tiny", "--heads", "1,2", "--dataset", "synthetic", "--recipes", recipes_dir,
                "--out", tmp_path, "--seeds", "2", "--dry-run")
    assert heads.exit_code == 0, heads.output
    assert "4 cells (0 finished, 4 to train)" in heads.stdout and not list(tmp_path.iterdir())

    run = cli("train", recipes_dir / "synthetic" / "mlp_tiny.yaml", "--out", tmp_path / "runs", "--quiet")
    assert run.exit_code == 0, run.output
    robust = cli("robustness", tmp_path / "runs", "--levels", "0,0.5,1", "--dry-run")
    assert robust.exit_code == 0, robust.output
    # 1 clean scoring + 3 modalities x (2 noisy levels + missing)
    assert "1 run(s), 10 scorings" in robust.stdout and "dry run: nothing scored" in robust.stdout


def test_estimate_units_and_parallelism():
    assert [duration(s) for s in (40, 600, 3 * 3600)] == ["40 s", "10 min", "3.0 h"]
    assert parallelism(RunnerOptions(jobs=4), todo=2) == 2  # never more at once than cells to train
    assert parallelism(RunnerOptions(launcher="slurm"), todo=30) == 30
    assert parallelism(None, todo=5) == 1
    done = Estimate(cells=3, finished=3, parallel=1, seconds=None, timed=0)
    assert done.describe() == "3 cells (3 finished, 0 to train); nothing to train"


def test_estimate_reads_no_foreign_or_failed_results(tmp_path):
    from merbench.grid import GridCell
    from merbench.recipe import validate

    cell = GridCell(validate(tiny_recipe(), "test"))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / run_folder.RESULT).write_text("{not json")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / run_folder.RESULT).write_text(json.dumps({"status": "failed", "training": {"seconds": 5.0},
                                                          "recipe": cell.recipe}))
    sized = estimate([cell], tmp_path / "grid", tmp_path)
    assert sized.seconds is None and sized.untimed == ["mlp_tiny on synthetic"]
