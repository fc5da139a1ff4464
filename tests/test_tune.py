"""merbench tune: studies on the synthetic corpus with tiny epochs and a few trials.

What is checked: a rerun trains nothing; a killed study resumes its trial from the checkpoint
and asks for the same settings as an uninterrupted one; the test split never reaches a trial;
best.yaml is a recipe that gives the best trial's settings back; bad space files, storage URLs
and options are one-line errors; the same sampler seed asks for the same trials; the median
pruner stops trials; compare --tuned tables each row from its own best.yaml with its budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")

import merbench.train  # noqa: E402
from merbench import api  # noqa: E402
from merbench.errors import MerbenchError  # noqa: E402
from merbench.figures import PNG_SIGNATURE  # noqa: E402
from merbench.recipe import load_recipe  # noqa: E402
from merbench.tuning import worker  # noqa: E402

from helpers import cli, one_line_error, write_recipe  # noqa: E402

SPACE = {
    "train.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True},
    "model.hidden": [8, 16],
    "model.dropout": {"low": 0.0, "high": 0.5},
}


@pytest.fixture
def recipes(tmp_path) -> Path:
    """recipes/synthetic/mlp.yaml (a tiny corpus, 3 epochs) and recipes/spaces/mlp.yaml."""
    root = tmp_path / "recipes"
    write_recipe(root / "synthetic" / "mlp.yaml", {
        "dataset": {"name": "synthetic", "n_dialogues": 16, "n_utterances": 200, "audio_dim": 6,
                    "text_dim": 8, "vision_dim": 6, "seed": 0},
        "model": {"name": "mlp", "hidden": 8},
        "train": {"max_epochs": 3, "patience": 3, "batch_size": 32, "lr": 0.01},
        "eval": {"splits": ["train", "valid", "test"]},
    })
    (root / "spaces").mkdir()
    (root / "spaces" / "mlp.yaml").write_text(yaml.safe_dump(SPACE))
    return root


def tune(recipes: Path, out: Path, trials: int = 3, **kw):
    kw.setdefault("seeds_final", 0)
    kw.setdefault("pruner", "none")
    return api.tune("mlp", "synthetic", trials, recipes=recipes, out=out, **kw)


def params(report) -> list[dict]:
    return [t.params for t in sorted(report.trials, key=lambda t: t.number)]


def test_a_rerun_trains_nothing_and_best_yaml_gives_the_best_trial_back(recipes, tmp_path, frozen_source):
    out = tmp_path / "grids"
    first = tune(recipes, out, trials=3, seeds_final=1)
    assert first.trained == [0, 1, 2] and not first.errors
    assert [t.state for t in first.trials] == ["complete"] * 3
    assert first.final is not None and len(first.final.results) == 1
    assert first.tables and "Tune:" in first.tables[0].title

    again = tune(recipes, out, trials=3, seeds_final=1)
    assert again.trained == [] and again.final.trained == []  # neither a trial nor a final run trained again
    assert params(again) == params(first)

    # best.yaml: the recipe of the best trial (bar what only a search sets), provenance in comments
    best = first.best
    assert best.value == max(t.value for t in first.trials)
    text = first.best_recipe.read_text()
    assert text.startswith(f"# merbench train {first.best_recipe}\n")
    assert f"trial {best.number} of study {first.study_name}" in text
    assert "Budget: 3 trials (3 complete, 0 pruned, 0 failed)" in text
    assert "extends: ../../recipes/synthetic/mlp.yaml" in text
    tuned = load_recipe(first.best_recipe)
    trial = json.loads((first.tune_dir / best.run / "result.json").read_text())["recipe"]
    for key, value in best.params.items():
        section, name = key.split(".")
        assert tuned[section][name] == value
    trial["eval"], trial["train"]["threads"] = tuned["eval"], tuned["train"]["threads"]
    assert tuned == trial
    manifest = json.loads((first.tune_dir / "tune.json").read_text())
    assert manifest["best"]["number"] == best.number and manifest["budget"]["trials"] == 3
    # the final run is a seed the search did not use, scored on test
    final = first.runs()[0]
    assert final.seed == 1 and "test" in final.metrics


def test_more_trials_runs_only_the_new_ones_and_grid_status_shows_the_study(recipes, tmp_path, frozen_source):
    out = tmp_path / "grids"
    first = tune(recipes, out, trials=2)
    more = tune(recipes, out, trials=3)
    assert more.trained == [2]
    assert more.size.done == 2 and more.size.to_run == 1
    status = cli("grid", "status", first.tune_dir)  # no final runs: the study alone
    assert status.exit_code == 0, status.output
    best = more.best
    assert (f"study {more.study_name} (live): 3 of 3 trials requested (3 complete, 0 pruned, 0 failed, 0 running); "
            f"best trial {best.number}, valid wf1 {best.value:.2f}") in status.output


def test_the_test_split_never_reaches_a_trial(recipes, tmp_path, monkeypatch):
    seen = []
    tensors = merbench.train.split_tensors

    def spy(corpus, split, *args, **kwargs):
        seen.append(split)
        return tensors(corpus, split, *args, **kwargs)

    monkeypatch.setattr(merbench.train, "split_tensors", spy)
    report = tune(recipes, tmp_path / "grids", trials=2)
    assert "valid" in seen and "test" not in seen
    for t in report.trials:
        result = json.loads((report.tune_dir / t.run / "result.json").read_text())
        assert "test" not in result["metrics"] and "test" not in result["dataset"]["counts"]
    # the final runs, and only they, score the test split
    seen.clear()
    final = tune(recipes, tmp_path / "grids", trials=2, seeds_final=1)
    assert final.trained == [] and "test" in seen and "test" in final.runs()[0].metrics


def test_the_same_seed_asks_for_the_same_trials(recipes, tmp_path):
    a = tune(recipes, tmp_path / "a", trials=3, sampler="random", seed=7)
    b = tune(recipes, tmp_path / "b", trials=3, sampler="random", seed=7)
    c = tune(recipes, tmp_path / "c", trials=3, sampler="random", seed=8)
    assert params(a) == params(b) != params(c)
    assert [t.value for t in a.trials] == [t.value for t in b.trials]


def test_a_killed_study_resumes_its_trial_and_asks_what_an_uninterrupted_one_would(recipes, tmp_path, monkeypatch,
                                                                                     frozen_source):
    whole = tune(recipes, tmp_path / "whole", trials=3)
    report = worker.Reporter.__call__

    def killed(self, epoch, valid):
        report(self, epoch, valid)
        if self.trial.number == 1 and epoch == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill would, after epoch 2's checkpoint

    monkeypatch.setattr(worker.Reporter, "__call__", killed)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        tune(recipes, out, trials=3)
    monkeypatch.setattr(worker.Reporter, "__call__", report)
    first = next(out.glob("tune-*/*/result.json"))
    written = first.stat().st_mtime_ns

    resumed = tune(recipes, out, trials=3)
    assert resumed.size.resumed == 1 and resumed.trained == [1, 2]  # trial 0 is not trained again
    assert first.stat().st_mtime_ns == written
    log = (resumed.tune_dir / resumed.trials[1].run / "train.log").read_text()
    assert "resumed after epoch 2" in log
    assert params(resumed) == params(whole)
    assert [t.value for t in resumed.trials] == [t.value for t in whole.trials]


def test_the_median_pruner_stops_trials(recipes, tmp_path):
    report = tune(recipes, tmp_path / "grids", trials=5, pruner="median", prune_after=1, sampler="random")
    pruned = [t for t in report.trials if t.state == "pruned"]
    assert pruned, [(t.number, t.state, t.value) for t in report.trials]
    for t in pruned:
        folder = report.tune_dir / t.run
        assert not (folder / "result.json").exists() and not (folder / "checkpoints" / "last.pt").exists()
        stopped = json.loads((folder / worker.PRUNED).read_text())
        assert stopped["epoch"] < 3 and stopped["value"] == t.value
    # and with the pruner off every trial runs to its end
    whole = tune(recipes, tmp_path / "none", trials=5, pruner="none", sampler="random")
    assert {t.state for t in whole.trials} == {"complete"}


def test_history_and_importance_figures(recipes, tmp_path):
    report = tune(recipes, tmp_path / "grids", trials=3, sampler="random")
    names = sorted(p.name for p in report.figures)
    assert names == ["history.png", "importance.png"]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in report.figures)


def test_dry_run_sizes_and_writes_nothing(recipes, tmp_path):
    out = tmp_path / "grids"
    result = cli("tune", "mlp", "--dataset", "synthetic", "--trials", "4", "--recipes", recipes, "--out", out,
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert "4 trials (0 done, 4 to run), then 3 final seeds; no estimate" in result.output
    assert "dry run: nothing trained" in result.output and not out.exists()
    tune(recipes, out, trials=2)
    sized = cli("tune", "mlp", "--dataset", "synthetic", "--trials", "4", "--recipes", recipes, "--out", out,
                "--dry-run", "--pruner", "none", "--seeds-final", "0")
    assert "4 trials (2 done, 2 to run), best so far valid wf1" in sized.output
    assert "estimate at most" in sized.output and "(from 2 trials of this study" in sized.output


def test_a_bad_space_file_names_every_problem_in_one_line(recipes, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "model.hiden": [8, 16],  # unknown key
        "train.lr": {"low": 0.0, "high": 0.1, "log": True},  # log of a non-positive bound
        "train.weight_decay": {"low": 0.1, "high": 0.01},  # empty range
        "model.dropout": {"low": 0.0, "high": 1.0},  # the recipe refuses a dropout of 1
        "train.seed": [0, 1],  # not searchable
        "train.batch_size": {"low": 16, "hihg": 64},  # unknown spec key
    }))
    line = one_line_error(cli("tune", "mlp", "--dataset", "synthetic", "--trials", "2", "--recipes", recipes,
                              "--out", tmp_path / "grids", "--space", bad))
    assert line.startswith(f"error: {bad}: ")
    for part in ("model.hiden: unknown key (did you mean 'hidden'?)",
                 "train.lr: log: true needs a positive low",
                 "train.weight_decay: empty range: low 0.1 must be below high 0.01",
                 "model.dropout: 1.0 is not in [0, 1)",
                 "train.seed: not searchable",
                 "train.batch_size.hihg: unknown key (did you mean 'high'?)"):
        assert part in line, line
    assert not (tmp_path / "grids").exists()


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials 0: expected the number of trials, at least 1"),
    (["--trials", "2", "--sampler", "grid"], "--sampler grid: expected one of tpe, random"),
    (["--trials", "2", "--storage", "nosuchdb://x/y"], "--storage nosuchdb://x/y: cannot be opened"),
    (["--trials", "2", "--space", "missing.yaml"], "missing.yaml: no such search space file"),
])
def test_bad_options_are_one_line_errors(recipes, tmp_path, args, message):
    line = one_line_error(cli("tune", "mlp", "--dataset", "synthetic", "--recipes", recipes,
                              "--out", tmp_path / "grids", *args))
    assert message in line


def test_int_keys_need_whole_bounds_and_booleans_need_choices(recipes, tmp_path):
    from merbench.recipe import read_recipe_file
    from merbench.tuning.space import parse_space

    raw = read_recipe_file(recipes / "synthetic" / "mlp.yaml")
    with pytest.raises(MerbenchError, match=r"model.hidden: model.hidden is an integer: expected whole-number"):
        parse_space({"model.hidden": {"low": 8.0, "high": 16.5}}, raw, "s.yaml")
    with pytest.raises(MerbenchError, match=r"train.class_weights: a range needs a numeric key"):
        parse_space({"train.class_weights": {"low": 0, "high": 1}}, raw, "s.yaml")
    space = parse_space({"model.hidden": {"low": 8, "high": 32, "step": 8}, "train.weight_decay": {"low": 0, "high": 1}},
                        raw, "s.yaml")
    assert [(p.kind, p.low) for p in space.params] == [("int", 8), ("float", 0.0)]


def test_every_shipped_space_fits_its_models_recipes():
    from merbench.recipe import read_recipe_file, validate
    from merbench.recipe_paths import PACKAGED
    from merbench.tuning.space import _current, _defaults, load_space

    spaces = sorted((PACKAGED / "spaces").glob("*.yaml"))
    assert spaces
    for space in spaces:
        recipes = sorted(PACKAGED.glob(f"*/{space.stem}.yaml"))
        recipes = [r for r in recipes if r.parent.name not in ("spaces", "references", "base")]
        assert recipes, space
        for recipe in recipes:
            raw = read_recipe_file(recipe)
            searched = load_space(space, raw)
            # the recipe's own setting is one the search can find: tuning starts no row below its baseline
            own = _defaults(validate(raw, str(recipe)))
            for p in searched.params:
                value = _current(own, p.key)
                inside = value in p.choices if p.kind == "categorical" else p.low <= value <= p.high
                assert inside, f"{recipe}: {p.key} = {value} is outside {space}"


def test_compare_tuned_tables_each_row_from_its_best_yaml_with_its_budget(recipes, tmp_path):
    out = tmp_path / "grids"
    tune(recipes, out, trials=2)
    report = api.compare("synthetic", "mlp", seeds=1, tuned=out, out=out)
    table = report.tables[0]
    assert table.columns[-1] == "Tuning (trials, time)" and table.rows[0][-1].startswith("2 (0 pruned), ")
    assert any("every row tuned with 2 trials of the tpe sampler" in n for n in table.notes)
    line = one_line_error(cli("compare", "--dataset", "synthetic", "--models", "tfn", "--tuned", out,
                              "--out", out))
    assert "tune-tfn-synthetic/best.yaml: no tuned recipe for model 'tfn'" in line
    # a best.yaml left by an earlier study is not taken for the best of a study with no complete trial
    manifest_path = out / "tune-mlp-synthetic" / "tune.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["best"] = None
    manifest_path.write_text(json.dumps(manifest))
    line = one_line_error(cli("compare", "--dataset", "synthetic", "--models", "mlp", "--tuned", out, "--out", out))
    assert "has no complete trial" in line


def test_parallel_trials_share_the_study(recipes, tmp_path):
    from merbench.grid import RunnerOptions

    report = tune(recipes, tmp_path / "grids", trials=2, runner=RunnerOptions(jobs=2, quiet=True))
    assert sorted(report.trained) == [0, 1] and {t.state for t in report.trials} == {"complete"}
    import optuna

    study = optuna.load_study(study_name=report.study_name,
                              storage=f"sqlite:///{report.tune_dir / 'study.db'}")
    # each worker process reported its epochs to the shared storage
    assert all(sorted(t.intermediate_values) == [1, 2, 3] for t in study.trials)


def test_without_optuna_one_line_names_the_extra(recipes, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    line = one_line_error(cli("tune", "mlp", "--dataset", "synthetic", "--trials", "1", "--recipes", recipes,
                              "--out", tmp_path / "grids"))
    assert "merbench tune needs optuna, which is not installed: pip install 'merbench[tune]'" in line


def test_submitit_launcher_runs_trials(recipes, tmp_path):
    from merbench.grid import RunnerOptions

    report = tune(recipes, tmp_path / "grids", trials=1, runner=RunnerOptions(launcher="debug", quiet=True))
    assert report.trained == [0] and report.trials[0].state == "complete"
    assert (report.tune_dir / "slurm_logs").is_dir()


def test_timeout_starts_no_new_trial_and_a_rerun_goes_on(recipes, tmp_path):
    out = tmp_path / "grids"
    stopped = tune(recipes, out, trials=2, timeout=1e-9)
    assert stopped.trained == [] and stopped.timed_out == 2
    assert any("--timeout" in n and "2 trial(s) not started" in n for n in stopped.notes)
    rest = tune(recipes, out, trials=2)
    assert rest.trained == [0, 1] and rest.timed_out == 0


def test_a_storage_url_holds_the_study_instead_of_study_db(recipes, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = tune(recipes, tmp_path / "grids", trials=1, storage=url)
    assert (tmp_path / "shared.db").is_file() and not (first.tune_dir / "study.db").exists()
    again = tune(recipes, tmp_path / "grids", trials=1, storage=url, dry_run=True)
    assert again.size.done == 1 and again.size.to_run == 0
    assert json.loads((first.tune_dir / "tune.json").read_text())["study"]["storage"] == url
