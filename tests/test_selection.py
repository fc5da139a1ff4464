"""Model selection and early stopping in the training loop, read back from what a run wrote:
the kept epoch is the best validation epoch of metrics.csv in the metric's direction, the run
stops ``patience`` epochs after it, and the test metrics are those of the kept checkpoint."""

from __future__ import annotations

import csv

import pytest
import torch

from merbench import run_folder
from merbench.metrics import LOWER_IS_BETTER
from merbench.recipe import TrainOptions, validate
from merbench.results import read_result
from merbench.train import train

from helpers import tiny_recipe

PATIENCE, MAX_EPOCHS = 2, 30


@pytest.mark.parametrize("dataset, metric", [("synthetic", "auto"), ("synthetic", "acc"),
                                             ("synthetic_mosei", "auto"), ("synthetic_mosei", "corr")])
def test_kept_epoch_is_the_best_validation_epoch_and_patience_stops_the_run(tmp_path, dataset, metric):
    recipe = tiny_recipe("mlp_tiny", max_epochs=MAX_EPOCHS, patience=PATIENCE, lr=0.03, selection_metric=metric)
    recipe["dataset"]["name"] = dataset
    run_dir = train(validate(recipe, "test"), tmp_path, progress=False)
    res = read_result(run_dir)
    chosen = res["selection"]["metric"]
    assert chosen == {"auto": "wf1" if dataset == "synthetic" else "mae"}.get(metric, metric)
    history = list(csv.DictReader((run_dir / run_folder.METRICS_CSV).open()))
    values = [float(row[f"valid_{chosen}"]) for row in history]  # rounded to 4 decimals
    sign = 1.0 if chosen in LOWER_IS_BETTER else -1.0
    best_epoch, best = res["selection"]["best_epoch"], res["selection"]["best_value"]
    # The kept epoch holds the best value; no epoch before it reaches it, none after beats it.
    assert values[best_epoch - 1] == pytest.approx(best, abs=1e-4)
    assert all(sign * v > sign * best - 1e-4 for v in values[:best_epoch - 1])
    assert all(sign * v >= sign * best - 1e-4 for v in values[best_epoch:])
    # Early stopping: exactly ``patience`` epochs without a better one, before max_epochs.
    assert res["selection"]["epochs_run"] == len(history) == best_epoch + PATIENCE < MAX_EPOCHS
    # The valid metrics reported are the kept checkpoint's, not the last epoch's.
    assert res["metrics"]["valid"][chosen] == pytest.approx(best, abs=1e-6)
    assert res["selection"]["split"] == "valid"
    assert torch.load(run_dir / run_folder.BEST, weights_only=True)["epoch"] == best_epoch


def test_a_run_that_fails_in_its_first_epoch_kept_no_epoch(tmp_path):
    """A non-finite training loss in epoch 1 (a learning rate of 1e12): failed, nothing selected."""
    recipe = tiny_recipe("mlp_tiny", max_epochs=3, patience=3, lr=1e12)
    res = read_result(train(validate(recipe, "test"), tmp_path, progress=False))
    assert res["status"] == "failed" and res["error"] == "non-finite training loss at epoch 1"
    assert res["selection"] == {"split": "valid", "metric": "wf1", "best_epoch": 0, "best_value": None, "epochs_run": 0}


def test_patience_counts_epochs_without_improvement(tmp_path):
    """With patience as large as max_epochs the run trains every epoch."""
    recipe = tiny_recipe("mlp_tiny", max_epochs=5, patience=5, lr=0.03)
    res = read_result(train(validate(recipe, "test"), tmp_path, progress=False))
    assert res["selection"]["epochs_run"] == 5 and 1 <= res["selection"]["best_epoch"] <= 5


CLASSIFICATION = ["acc", "wf1", "macro_f1", "loss", "f1_happy", "f1_sad", "f1_neutral", "f1_angry", "f1_excited",
                  "f1_frustrated"]
REGRESSION = ["acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "mae", "corr", "loss"]


def test_selection_metric_is_any_reported_metric_of_the_task_or_the_loss():
    import numpy as np

    from merbench.errors import MerbenchError
    from merbench.metrics import classification_metrics, regression_metrics
    from merbench.registry import DATASETS
    from merbench.train import selection_metric

    cls = DATASETS.get("synthetic")(n_dialogues=3, n_utterances=12)
    reg = DATASETS.get("synthetic_mosei")(n_dialogues=3, n_utterances=12)
    # the names offered are exactly the metrics each task reports (the confusion matrix aside), and the loss
    reported = set(classification_metrics(np.array([0, 1]), np.array([0, 1]), cls.label_names)) - {"confusion"}
    assert set(CLASSIFICATION) == reported | {"loss"}
    assert set(REGRESSION) == set(regression_metrics(np.array([0.5, -1.0]), np.array([0.2, 1.0]))) | {"loss"}

    def chosen(name, corpus):
        return selection_metric(TrainOptions(selection_metric=name), corpus)

    assert (chosen("auto", cls), chosen("auto", reg)) == ("wf1", "mae")
    assert [chosen(m, cls) for m in CLASSIFICATION] == CLASSIFICATION
    assert [chosen(m, reg) for m in REGRESSION] == REGRESSION
    for name, corpus, task, valid, hint in (("acc7", cls, "classification", CLASSIFICATION, " (did you mean 'acc'?)"),
                                            ("wf1", reg, "regression", REGRESSION, ""),
                                            ("f1_happy", reg, "regression", REGRESSION, " (did you mean 'f1_has0'?)")):
        with pytest.raises(MerbenchError) as err:
            chosen(name, corpus)
        message, listed = str(err.value).split("; valid: ")
        assert message == f"train.selection_metric: {name!r} is not a {task} metric{hint}"
        assert sorted(listed.split(", ")) == sorted(valid)


def test_training_seconds_are_the_loops_own_time(tmp_path):
    """``training.seconds`` is time spent in the loop: not negative, not more than the call took
    (a wrong sign or a clock value added in would break either bound)."""
    import time

    recipe = tiny_recipe("mlp_tiny", max_epochs=2, patience=2, lr=0.03)
    started = time.perf_counter()
    run_dir = train(validate(recipe, "test"), tmp_path, progress=False, keep_last=True)
    elapsed = time.perf_counter() - started
    assert 0.0 <= read_result(run_dir).seconds <= elapsed + 0.01
    # last.pt carries the loop's time so far, which a resume adds to
    assert 0.0 <= torch.load(run_dir / run_folder.LAST, weights_only=False)["seconds"] <= elapsed
