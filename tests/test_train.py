"""End to end through the CLI on the synthetic corpus: train, evaluate, resume, determinism."""

from __future__ import annotations

import csv
import json

import pytest

from merbench import run_folder
from merbench.errors import MerbenchError
from merbench.recipe import load_recipe
from merbench.results import REQUIRED_KEYS, read_result
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe, write_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    recipe = tiny_recipe("mlp", max_epochs=12, patience=12, lr=0.002)
    recipe["dataset"].update(n_dialogues=40, n_utterances=800)
    recipe["model"]["hidden"] = 32
    path = write_recipe(tmp / "r.yaml", recipe)
    result = cli("train", path, "--out", tmp / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp / "runs").iterdir()
    return path, run_dir, result


def test_train_learns_and_writes_a_complete_run_folder(trained):
    _, run_dir, result = trained
    assert "WF1" in result.output and str(run_dir) in result.output
    for name in (run_folder.RESULT, run_folder.RECIPE, run_folder.METRICS_CSV, run_folder.LOG, run_folder.PREDICTIONS, run_folder.BEST):
        assert (run_dir / name).exists(), name
    assert not (run_dir / run_folder.LAST).exists()  # deleted when the run ends (--keep-last keeps it)
    history = list(csv.DictReader((run_dir / run_folder.METRICS_CSV).open()))
    losses = [float(r["train_loss"]) for r in history]
    assert losses[-1] < 0.8 * losses[0], losses
    res = read_result(run_dir)
    assert all(k in res for k in REQUIRED_KEYS)
    # Margin: 15 points above always predicting the test split's majority class.
    test_counts = res["dataset"]["class_counts"]["test"]
    majority = 100 * max(test_counts.values()) / sum(test_counts.values())
    assert res["metrics"]["test"]["acc"] > majority + 15, (majority, res["metrics"]["test"])
    assert res["selection"]["split"] == "valid" and res["selection"]["metric"] == "wf1"
    assert 1 <= res["selection"]["best_epoch"] <= 12
    prov = res["provenance"]
    assert prov["packages"]["torch"] and prov["source_hash"] and prov["threads"] == 1
    assert len(res["dataset"]["fingerprint"]) == 64 and res["model"]["parameters"] > 0
    assert set(res["metrics"]) == {"valid", "test"}


def test_evaluate_rescoring_matches_result(trained):
    _, run_dir, _ = trained
    out = cli("evaluate", run_dir, "--split", "test", "--json")
    assert out.exit_code == 0, out.output
    again = json.loads(out.output)
    assert again["wf1"] == pytest.approx(read_result(run_dir)["metrics"]["test"]["wf1"])


def test_same_recipe_same_seed_same_numbers(trained, tmp_path):
    path, run_dir, _ = trained
    result = cli("train", path, "--out", tmp_path, "--quiet")
    assert result.exit_code == 0
    (other,) = tmp_path.iterdir()
    assert other.name == run_dir.name  # same recipe + code -> same run id
    assert read_result(other)["metrics"] == read_result(run_dir)["metrics"]


def test_finished_run_is_reused_not_overwritten(trained):
    path, run_dir, _ = trained
    before = (run_dir / run_folder.RESULT).read_text()
    result = cli("train", path, "--out", run_dir.parent, "--quiet")
    assert result.exit_code == 0 and "already finished" in result.output and "WF1" in result.output
    assert (run_dir / run_folder.RESULT).read_text() == before


def test_resume_after_interrupt_gives_identical_metrics(tmp_path, monkeypatch):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=6, patience=6)))
    whole = read_result(train(recipe, tmp_path / "whole", progress=False))

    import merbench.train as train_module

    real_save, calls = train_module.save_checkpoint, {"n": 0}

    def dying_save(path, state):
        real_save(path, state)
        if path.name == "last.pt":
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # killed after the third epoch's checkpoint

    monkeypatch.setattr(train_module, "save_checkpoint", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, tmp_path / "cut", progress=False)
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    (run_dir,) = (tmp_path / "cut").iterdir()
    assert not (run_dir / run_folder.RESULT).exists()
    msg = one_line_error(cli("train", tmp_path / "r.yaml", "--out", tmp_path / "cut", "--quiet"))
    assert "--resume" in msg
    result = cli("train", tmp_path / "r.yaml", "--out", tmp_path / "cut", "--quiet", "--resume")
    assert result.exit_code == 0, result.output
    resumed = read_result(run_dir)
    assert resumed["metrics"] == whole["metrics"]
    assert resumed["training"]["history"] == [
        {**h, "utt_per_s": r["utt_per_s"]} for h, r in zip(whole["training"]["history"], resumed["training"]["history"])]


def test_sigterm_stops_after_the_epoch_with_last_pt_and_a_resume_loses_nothing(tmp_path, monkeypatch):
    """Slurm's scancel, a requeue or a time limit send SIGTERM before SIGKILL: the run ends the
    epoch in hand, writes last.pt, exits 143 with one line, and --resume ends as if never cut."""
    import os
    import signal

    import torch

    import merbench.train as train_module

    path = write_recipe(tmp_path / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=6, patience=6))
    whole = read_result(train(load_recipe(path), tmp_path / "whole", progress=False))
    monkeypatch.setattr(train_module, "LAST_EVERY_S", 3600.0)  # no interval checkpoint: SIGTERM's is the one
    real_epoch, before = train_module._train_epoch, signal.getsignal(signal.SIGTERM)

    def epoch_with_sigterm(*args):
        if args[-2] == 3:  # the epoch number
            os.kill(os.getpid(), signal.SIGTERM)  # as scancel would, during the third epoch
        return real_epoch(*args)

    monkeypatch.setattr(train_module, "_train_epoch", epoch_with_sigterm)
    result = cli("train", path, "--out", tmp_path / "cut", "--quiet")
    monkeypatch.setattr(train_module, "_train_epoch", real_epoch)
    assert result.exit_code == 143, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("stopped: ") and "after epoch 3 of 6" in lines[0], lines
    assert "--resume" in lines[0] and "Traceback" not in result.output
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lives only while the epochs run
    (run_dir,) = (tmp_path / "cut").iterdir()
    assert not (run_dir / run_folder.RESULT).exists()
    assert torch.load(run_dir / run_folder.LAST, weights_only=False)["epoch"] == 3  # no epoch lost
    result = cli("train", path, "--out", tmp_path / "cut", "--quiet", "--resume")
    assert result.exit_code == 0, result.output
    resumed = read_result(run_dir)
    assert resumed["metrics"] == whole["metrics"]
    assert [h["epoch"] for h in resumed["training"]["history"]] == [1, 2, 3, 4, 5, 6]


def sigterm_handler_kept_while_training() -> bool:
    """Whether SIGTERM's handler stays as it was while a run's epochs would run, here."""
    import signal

    from merbench.train import _stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    with _stop_on_sigterm():
        return signal.getsignal(signal.SIGTERM) is before


def test_a_local_jobs_worker_is_left_to_its_pool_on_sigterm():
    """A --jobs N worker (started by multiprocessing) keeps SIGTERM's default: the pool ends
    it with SIGTERM at once when it breaks; the main process's run takes it over."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(sigterm_handler_kept_while_training).result(timeout=300)
    assert not sigterm_handler_kept_while_training()


def test_a_grid_cell_stopped_by_sigterm_is_recorded_and_stops_the_job(tmp_path, monkeypatch):
    import os
    import signal

    import merbench.train as train_module
    from merbench.errors import Terminated
    from merbench.grid.manifest import ERROR
    from merbench.grid.worker import run_cell

    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=4, patience=4)))
    real_epoch = train_module._train_epoch

    def epoch_with_sigterm(*args):
        if args[-2] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_epoch(*args)

    monkeypatch.setattr(train_module, "_train_epoch", epoch_with_sigterm)
    with pytest.raises(Terminated):  # the job (a Slurm step, a worker) ends: it was asked to
        run_cell(recipe.data, str(tmp_path), 1, ["test"], "cell")
    assert "stopped by SIGTERM after epoch 2" in (tmp_path / "cell" / ERROR).read_text()
    assert (tmp_path / "cell" / run_folder.LAST).exists()
    monkeypatch.setattr(train_module, "_train_epoch", real_epoch)
    assert run_cell(recipe.data, str(tmp_path), 1, ["test"], "cell")["ok"]  # the next run resumes it


def test_last_pt_waits_for_its_interval_and_is_written_at_the_stop(tmp_path, monkeypatch):
    """last.pt is not rewritten after every short epoch: only once LAST_EVERY_S has passed,
    and after the epoch the run stops at (what --keep-last keeps)."""
    import merbench.train as train_module

    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=5, patience=5)))
    real_save, written = train_module.save_checkpoint, []

    def spy(path, state):
        real_save(path, state)
        if path.name == "last.pt":
            written.append(state["epoch"])

    monkeypatch.setattr(train_module, "save_checkpoint", spy)
    monkeypatch.setattr(train_module, "LAST_EVERY_S", 3600.0)
    train(recipe, tmp_path / "slow", progress=False, keep_last=True)
    assert written == [5]
    written.clear()
    monkeypatch.setattr(train_module, "LAST_EVERY_S", 0.0)
    train(recipe, tmp_path / "every", progress=False)
    assert written == [1, 2, 3, 4, 5]


def test_regression_dataset_trains_with_mosei_metrics(tmp_path):
    recipe = tiny_recipe("mlp_tiny")
    recipe["dataset"]["name"] = "synthetic_mosei"
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = cli("train", path, "--out", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    assert "ACC-7" in result.output and "MAE" in result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    res = read_result(run_dir)
    assert res["selection"]["metric"] == "mae" and "acc2_non0" in res["metrics"]["test"]


def test_bad_checkpoint_and_result_files(trained, tmp_path):
    _, run_dir, _ = trained
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / run_folder.BEST).write_bytes(b"not a checkpoint")
    msg = one_line_error(cli("evaluate", broken))
    assert "best.pt: not a readable checkpoint" in msg
    (broken / run_folder.BEST).unlink()
    assert "best.pt: no such checkpoint" in one_line_error(cli("evaluate", broken))
    (broken / run_folder.RESULT).write_text("{ half")
    assert "result.json: not valid JSON" in one_line_error(cli("evaluate", broken))
    (broken / run_folder.RESULT).write_text(json.dumps({"a": 1}))
    assert "not a merbench result (missing key" in one_line_error(cli("table", broken))
    assert "no such results file" in one_line_error(cli("table", tmp_path / "nothing" / "result.json"))


def test_bad_cli_inputs(tmp_path):
    assert "no such recipe file" in one_line_error(cli("train", tmp_path / "missing.yaml"))
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe())
    assert "did you mean 'hidden'" in one_line_error(cli("train", path, "--set", "model.hiden=3"))
    assert "expected KEY.PATH=VALUE" in one_line_error(cli("train", path, "--set", "nonsense"))


def test_missing_modality_in_dataset_is_an_error(tmp_path, monkeypatch):
    from merbench.data.types import Corpus
    import merbench.train as train_module

    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tiny_recipe()))
    real = train_module.DATASETS.get("synthetic")

    def text_only(**kw):
        c = real(**kw)
        return c.select_modalities(["text"])

    monkeypatch.setattr(train_module.DATASETS._entries["synthetic"], "obj", text_only)
    from merbench.errors import MerbenchError

    with pytest.raises(MerbenchError, match=r"dataset.modalities: 'audio' is not in dataset 'synthetic' \(it has text\)"):
        train(recipe, tmp_path / "runs", progress=False)
    assert isinstance(real(n_dialogues=3, n_utterances=6), Corpus)


@pytest.mark.parametrize("schedule_on", ["selection", "loss"])
def test_lr_schedule_follows_the_chosen_validation_signal(tmp_path, schedule_on):
    """``train.lr_schedule_on``: with patience 0 the LR is cut after exactly the epochs whose
    followed signal (valid WF1 up, or valid loss down) did not improve on its best so far."""
    recipe = tiny_recipe("mlp", max_epochs=8, patience=8, lr=0.02)
    recipe["train"].update(lr_patience=0, lr_factor=0.5, lr_schedule_on=schedule_on)
    recipe["model"]["hidden"] = 16
    out = cli("train", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "runs", "--quiet")
    assert out.exit_code == 0, out.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    history = list(csv.DictReader((run_dir / run_folder.METRICS_CSV).open()))
    key, sign = ("valid_wf1", -1.0) if schedule_on == "selection" else ("valid_loss", 1.0)
    best, lr, expected = float("inf"), 0.02, []
    for row in history:
        value = sign * float(row[key])
        if value < best:
            best = value
        else:
            lr *= 0.5
        expected.append(lr)
    assert [float(r["lr"]) for r in history] == pytest.approx(expected)
    assert len(set(expected)) > 1, "the test needs at least one cut"  # the signal must not improve every epoch


def test_unknown_lr_schedule_signal_is_one_line(tmp_path):
    recipe = tiny_recipe("mlp")
    recipe["train"]["lr_schedule_on"] = "los"
    out = cli("train", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "runs")
    line = one_line_error(out)
    assert "train.lr_schedule_on" in line and "selection, loss" in line and "did you mean 'loss'" in line


def test_selection_on_the_validation_loss_keeps_its_lowest_epoch(tmp_path):
    """``selection_metric: loss`` (MMSA's "KeyEval": "Loss"): the kept epoch is the one with
    the lowest validation task loss in metrics.csv, and the result says so."""
    recipe = tiny_recipe("mlp", max_epochs=8, patience=8, lr=0.02)
    recipe["train"]["selection_metric"] = "loss"
    recipe["model"]["hidden"] = 16
    out = cli("train", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "runs", "--quiet")
    assert out.exit_code == 0, out.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    history = list(csv.DictReader((run_dir / run_folder.METRICS_CSV).open()))
    losses = [float(r["valid_loss"]) for r in history]
    selection = read_result(run_dir)["selection"]
    assert selection["metric"] == "loss" and selection["best_epoch"] == 1 + losses.index(min(losses))
    assert selection["best_value"] == pytest.approx(min(losses), abs=1e-6)
    # The corpus's usual metric is still recorded beside the loss it selects on.
    assert all(0 <= float(r["valid_wf1"]) <= 100 for r in history)


def test_standardize_z_scores_with_the_training_split_only(tmp_path):
    import numpy as np

    from merbench.recipe import validate
    from merbench.train import load_corpus

    recipe = tiny_recipe()
    raw = load_corpus(validate(recipe, "recipe"))
    scaled = load_corpus(validate({**recipe, "train": {**recipe["train"], "standardize": True}}, "recipe"))
    assert scaled.info["standardized"] and "standardized" not in raw.info
    for m in raw.modalities:
        train_rows = np.stack([x for d in scaled.split("train") for x in d.features[m]])
        np.testing.assert_allclose(train_rows.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(train_rows.std(0), 1, atol=1e-3)
        # valid and test are moved by the training split's statistics, not their own
        before = np.stack([x for d in raw.split("train") for x in d.features[m]])
        mean, std = before.mean(0), before.std(0)
        for split in ("valid", "test"):
            for d_raw, d_scaled in zip(raw.split(split), scaled.split(split)):
                np.testing.assert_allclose(d_scaled.features[m][0], (d_raw.features[m][0] - mean) / std, atol=1e-4)
    # the model sees other numbers, but the run records the data as read: standardising is the
    # recipe's choice (train.standardize), not other data
    assert scaled.fingerprint() != raw.fingerprint()
    assert scaled.data_fingerprint() == raw.data_fingerprint() == raw.fingerprint()


def test_runs_with_and_without_standardize_share_a_table_and_a_paired_test(tmp_path):
    import json

    import merbench
    import merbench.api

    recipe = tiny_recipe("mlp", max_epochs=2, patience=2)
    plain = merbench.train(recipe, out=tmp_path / "runs")
    scaled = merbench.train({**recipe, "train": {**recipe["train"], "standardize": True}}, out=tmp_path / "runs")
    assert plain.dataset.fingerprint == scaled.dataset.fingerprint
    (table,) = merbench.table(tmp_path / "runs").tables  # one table: the same data, two recipes
    assert len(table.rows) == 2
    merbench.api.significance(plain.path, scaled.path)  # the same utterances: no error
    assert scaled.corpus().info["standardized"]  # read back and checked against its fingerprint
    # a run written before this change recorded the standardised features' fingerprint: it still reads
    result = json.loads((scaled.path / "result.json").read_text())
    result["dataset"]["fingerprint"] = scaled.corpus().fingerprint()
    (scaled.path / "result.json").write_text(json.dumps(result))
    assert merbench.load_results(scaled.path)[0].corpus().info["standardized"]


def test_standardize_must_be_a_bool(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(standardize="yes"))
    result = cli("recipes", "validate", str(path))
    assert result.exit_code == 2
    assert "train.standardize" in result.output and "expected" in result.output


def test_input_dropout_drops_training_inputs_only(tmp_path, monkeypatch):
    """train.input_dropout zeroes input features at its rate and scales the rest by 1 / (1 - p)
    in training batches; validation and test see the features untouched."""
    import torch

    from merbench.models.base import MerModel

    seen = []  # (training?, {modality: features}) of every forward
    original = MerModel.__call__

    def spy(self, batch, *args, **kwargs):
        seen.append((self.training, {m: x.clone() for m, x in batch.features.items()}))
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(MerModel, "__call__", spy)
    train(validate_tiny(input_dropout=0.5), tmp_path / "drop", progress=False)
    train_batches = [f for training, f in seen if training]
    eval_batches = [f for training, f in seen if not training]
    values = torch.cat([x.flatten() for f in train_batches for x in f.values()])
    assert 0.4 < (values == 0).float().mean() < 0.6  # synthetic features are never exactly 0
    seen.clear()
    train(validate_tiny(), tmp_path / "plain", progress=False)
    plain = torch.cat([x.flatten() for training, f in seen if training for x in f.values()])
    assert (plain == 0).float().mean() < 0.01
    # scaled by 1 / (1 - p): the kept training inputs are twice the plain ones in magnitude
    assert values[values != 0].abs().mean() > 1.8 * plain.abs().mean()
    # evaluation passes see the corpus as it is
    assert all((x != 0).all() for f in eval_batches for x in f.values())


def validate_tiny(**train_options):
    from merbench.recipe import validate

    return validate(tiny_recipe(**train_options), "recipe")


def test_input_dropout_must_be_below_one(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(input_dropout=1.0))
    result = cli("recipes", "validate", str(path))
    assert result.exit_code == 2
    assert "train.input_dropout" in result.output


def test_checkpoint_interval_comes_from_the_environment(monkeypatch):
    """MERBENCH_CHECKPOINT_EVERY_S (e.g. for jobs often requeued) sets LAST_EVERY_S; a bad value is one line."""
    import merbench.train as train_module

    monkeypatch.delenv("MERBENCH_CHECKPOINT_EVERY_S", raising=False)
    assert train_module._checkpoint_every() == 30.0
    for text, seconds in (("0", 0.0), (" 2.5 ", 2.5), ("", 30.0), ("  ", 30.0)):
        monkeypatch.setenv("MERBENCH_CHECKPOINT_EVERY_S", text)
        assert train_module._checkpoint_every() == seconds
    for bad in ("-1", "soon", "nan", "inf"):
        monkeypatch.setenv("MERBENCH_CHECKPOINT_EVERY_S", bad)
        with pytest.raises(MerbenchError, match=f"MERBENCH_CHECKPOINT_EVERY_S={bad}: expected seconds"):
            train_module._checkpoint_every()
