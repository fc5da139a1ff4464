"""Test-time robustness: missing and noisy modalities, through the library and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from merbench.data.batching import split_tensors
from merbench.recipe import validate
from merbench.run import load_run
from merbench.robustness import (Condition, Perturbation, evaluate_condition, load_for_robustness, make_condition,
                                 parse_levels, parse_noise, robustness_sweep, training_stats)
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    # Small but trained enough (about 42 WF1, chance is about 17) for a missing modality to matter.
    recipe = tiny_recipe("mlp", max_epochs=3, lr=0.01)
    recipe["model"]["hidden"] = 32
    recipe["dataset"]["n_utterances"] = 600
    return train(validate(recipe, "test"), tmp_path_factory.mktemp("robust"), progress=False)


@pytest.fixture(scope="module")
def text_only_run(tmp_path_factory):
    recipe = tiny_recipe("mlp_tiny", max_epochs=2)
    recipe["dataset"]["modalities"] = ["text"]
    return train(validate(recipe, "test"), tmp_path_factory.mktemp("robust_text"), progress=False)


def test_noise_zero_equals_plain_evaluation_exactly(run_dir):
    plain = load_run(run_dir).evaluate()
    assert evaluate_condition(run_dir, Condition(noise={"audio": 0.0, "vision": 0.0})) == plain
    out = cli("evaluate", run_dir, "--noise", "text=0", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(plain))


def test_missing_and_noise_change_what_the_model_predicts(run_dir):
    from merbench.evaluate import predict

    run = load_for_robustness(run_dir)
    clean = predict(run.model, run.tensors, run.device)
    for condition in (Condition(missing=("text",)), Condition(missing=("text",), missing_mode="mean"),
                      Condition(noise={"text": 2.0})):
        preds = predict(run.model, run.tensors, run.device, Perturbation(condition, run.stats))
        assert not torch.equal(torch.as_tensor(preds.outputs), torch.as_tensor(clean.outputs)), condition
    # Text is the strongest synthetic modality: losing it costs more than 5 WF1 points here.
    assert run.score(Condition(missing=("text",)))["wf1"] < run.score()["wf1"] - 5
    assert run.score(Condition(noise={"text": 2.0}))["wf1"] != run.score()["wf1"]


def test_noise_is_fixed_per_utterance_and_scaled_by_the_training_std(run_dir):
    run = load_for_robustness(run_dir)
    perturb = Perturbation(Condition(noise={"audio": 0.5}, seed=3), run.stats)
    small = next(run.tensors.batches("utterance", 3))
    large = next(run.tensors.batches("utterance", 50))
    before = large.features["audio"].clone()
    noisy_small, noisy_large = perturb(small), perturb(large)
    assert torch.equal(large.features["audio"], before)  # the input batch is left alone
    assert torch.equal(noisy_small.features["audio"], noisy_large.features["audio"][:3])  # batching does not matter
    assert torch.equal(noisy_large.features["text"], large.features["text"])  # other modalities untouched
    unit = (noisy_large.features["audio"] - before) / (0.5 * run.stats["audio"].std)
    assert unit.std().item() == pytest.approx(1.0, abs=0.1) and unit.mean().abs().item() < 0.1
    other_seed = Perturbation(Condition(noise={"audio": 0.5}, seed=4), run.stats)(large)
    assert not torch.equal(other_seed.features["audio"], noisy_large.features["audio"])


def test_missing_frames_become_one_fill_frame_and_padding_stays_empty(tiny_frames_corpus):
    train_tensors = split_tensors(tiny_frames_corpus, "train", want_frames=True)
    stats = training_stats(train_tensors)
    frames = train_tensors.features["audio"][train_tensors.masks["audio"]]  # (F, D)
    assert torch.allclose(stats["audio"].mean, frames.mean(0), atol=1e-5)  # valid frames only, no padding
    batch = next(train_tensors.batches("dialogue", 2))
    for mode, fill in (("zero", torch.zeros(6)), ("mean", stats["audio"].mean)):
        out = Perturbation(Condition(missing=("audio",), missing_mode=mode), stats)(batch)
        mask, x = out.masks["audio"], out.features["audio"]  # (B, L, T), (B, L, T, D)
        assert torch.equal(mask.sum(-1), batch.utt_mask.long())  # one frame per real utterance
        assert torch.allclose(x[batch.utt_mask][:, 0], fill.expand(int(batch.utt_mask.sum()), -1))
        assert x[~batch.utt_mask].abs().sum() == 0 and x[..., 1:, :].abs().sum() == 0
    noisy = Perturbation(Condition(noise={"vision": 1.0}), stats)(batch)
    pad = ~batch.masks["vision"]
    assert torch.equal(noisy.features["vision"][pad], batch.features["vision"][pad])


def test_sweep_rows_and_the_missing_column(run_dir):
    rows = robustness_sweep(run_dir, "mlp", ["audio", "text"], [0.0, 1.0], "wf1")
    assert [r.modality for r in rows] == ["audio", "text"]
    plain = load_run(run_dir).evaluate()["wf1"]
    assert all(r.values[0] == plain for r in rows)
    assert rows[1].missing == evaluate_condition(run_dir, Condition(missing=("text",)))["wf1"]


def test_cli_table_figure_and_saved_numbers(run_dir, tmp_path):
    fig, saved = tmp_path / "curves.png", tmp_path / "rob.json"
    out = cli("robustness", run_dir, "--levels", "0,0.5", "--modalities", "text,audio", "--format", "csv",
              "--figure", fig, "--save", saved)
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "Run,Modality,noise 0,noise 0.5,missing (zero)"
    assert [line.split(",")[1] for line in lines[1:]] == ["audio", "text"]
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(saved.read_text())
    assert data["metric"] == "wf1" and len(data["rows"]) == 2 and data["rows"][0]["levels"] == [0.0, 0.5]


@pytest.mark.parametrize("args, expected", [
    (["--missing", "sound"], "--missing sound: unknown modality"),
    (["--noise", "vision"], "--noise vision: expected MODALITY=LEVEL"),
    (["--noise", "vision=abc"], "--noise vision=abc: level 'abc' is not a number"),
    (["--noise", "vision=-1"], "--noise vision=-1: level '-1' must be a finite number >= 0"),
    (["--noise", "vision=inf"], "level 'inf' must be a finite number"),
    (["--noise", "vison=1"], "did you mean 'vision'"),
    (["--noise", "text=1", "--noise", "text=2"], "text is given twice"),
    (["--missing", "text", "--noise", "text=1"], "text is also --missing"),
    (["--missing", "text", "--missing-mode", "median"], "--missing-mode median: expected one of zero, mean"),
    (["--device", "tpu"], "--device tpu: expected cpu, cuda, cuda:N or auto"),  # one device rule (issue 21)
])
def test_evaluate_bad_robustness_options(run_dir, args, expected):
    assert expected in one_line_error(cli("evaluate", run_dir, *args))


def test_a_modality_the_run_does_not_use_is_an_error(text_only_run):
    assert "--missing audio: run" in one_line_error(cli("evaluate", text_only_run, "--missing", "audio"))
    assert "does not use vision (it uses text)" in one_line_error(cli("evaluate", text_only_run, "--noise", "vision=1"))
    assert "--modalities audio" in one_line_error(cli("robustness", text_only_run, "--modalities", "audio"))


@pytest.mark.parametrize("args, expected", [
    (["--levels", "0,x"], "--levels 0,x: level 'x' is not a number"),
    (["--levels", ","], "expected comma-separated numbers"),
    (["--modalities", "text,smell"], "--modalities smell: unknown modality"),
    (["--metric", "wf2"], "--metric wf2: not a metric of run"),
    (["--figure", "curves.gif"], "--figure curves.gif: give a path ending in .png, .pdf, .svg"),
    (["--split", "dev"], "--split dev: expected one of train, valid, test"),
])
def test_robustness_bad_options(run_dir, args, expected):
    assert expected in one_line_error(cli("robustness", run_dir, *args))


def test_parsers():
    assert parse_noise(["vision=0.5", "audio=1"]) == {"vision": 0.5, "audio": 1.0}
    assert parse_levels("1, 0,0.5,1") == [0.0, 0.5, 1.0]
    condition = make_condition(["vision", "audio"], {"text": 0.0})
    assert condition.missing == ("audio", "vision") and condition.is_clean is False
    assert make_condition([], {"text": 0.0}).is_clean


def test_a_frames_model_scores_finite_numbers_with_a_modality_missing(tmp_path):
    from merbench.evaluate import predict

    recipe = tiny_recipe("hff_tiny", max_epochs=1)
    recipe["dataset"].update(frames=True, min_frames=2, max_frames=5)
    run = load_for_robustness(train(validate(recipe, "test"), tmp_path, progress=False))
    assert run.tensors.masks  # the model takes frame sequences
    for condition in (Condition(missing=("audio", "vision")), Condition(missing=("text",), missing_mode="mean"),
                      Condition(noise={"audio": 1.0, "text": 0.5})):
        preds = predict(run.model, run.tensors, run.device, Perturbation(condition, run.stats))
        assert np.isfinite(preds.outputs).all() and len(preds.outputs) == run.tensors.size, condition


def test_runs_of_two_tasks_say_so_and_how_to_split_them(text_only_run, tmp_path):
    recipe = tiny_recipe("mlp_tiny", max_epochs=1)
    recipe["dataset"]["name"] = "synthetic_mosei"
    regression = train(validate(recipe, "test"), tmp_path, progress=False)
    for extra in ([], ["--metric", "wf1"], ["--dry-run"]):
        error = one_line_error(cli("robustness", text_only_run, regression, *extra))
        assert "the runs are of two tasks, and no metric scores both" in error
        assert f"1 classification run ({text_only_run})" in error and f"1 regression run ({regression})" in error
        assert "score each task's runs apart" in error
