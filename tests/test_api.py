"""The Python API: train -> Run round trips, Run.model() from the folder alone, load_results,
and the grid functions returning the tables the CLI prints."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import merbench
import merbench.train as train_module
from merbench import api, run_folder
from merbench.errors import MerbenchError
from merbench.evaluate import predict
from merbench.registry import DATASETS
from merbench.run import Run, load_run

from helpers import cli, one_line_error, tiny_recipe, write_recipe


pytestmark = pytest.mark.usefixtures("frozen_source")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two seeds of a tiny model, trained through merbench.train with dotted overrides."""
    out = tmp_path_factory.mktemp("api_runs")
    recipe = tiny_recipe("mlp_tiny", max_epochs=3)
    return [merbench.train(recipe, out=out, progress=False, **{"train.seed": seed, "model.hidden": 12})
            for seed in (4, 5)], out


def test_train_returns_the_run_and_load_run_reads_the_same_numbers(trained):
    (first, second), out = trained
    assert isinstance(first, Run) and first.ok and first.seed == 4 and second.seed == 5
    assert first.recipe["model"]["hidden"] == 12  # the override reached the recipe, as --set would
    written = json.loads((first.path / run_folder.RESULT).read_text())
    again = load_run(first.path)
    assert again.metrics == written["metrics"] == first.metrics
    assert again.run_id == written["run_id"] and again.recipe == written["recipe"]
    assert again.dataset.dims == written["dataset"]["dims"] and again.dataset.label_names == written["dataset"]["label_names"]
    assert again.model_info.num_outputs == len(written["dataset"]["label_names"]) == written["model"]["num_outputs"]
    assert again.selection.best_epoch == written["selection"]["best_epoch"]
    assert again.scores("test")["wf1"] == written["metrics"]["test"]["wf1"]
    assert "confusion" not in again.scores("test")
    assert load_run(first.path / run_folder.RESULT).path == first.path  # the file or its folder


def test_a_run_prints_short_and_its_result_is_the_file_as_written(trained):
    (first, _), _ = trained
    written = json.loads((first.path / run_folder.RESULT).read_text())
    for run in (first, load_run(first.path), merbench.load_results([first.path])[0]):
        assert run.result == written  # no private key added on reading
        text = repr(run)
        assert "\n" not in text and len(text) < 200 and "confusion" not in text
        assert text.startswith(f"Run({str(run.path)!r}, mlp_tiny on synthetic [S+T+V], seed 4, ok, test ")


def test_model_is_built_from_the_run_folder_alone_and_reproduces_the_saved_predictions(trained, monkeypatch):
    run = trained[0][0]

    def no_data(*args, **kwargs):
        raise AssertionError("Run.model() read the corpus")

    monkeypatch.setattr(train_module, "load_corpus", no_data)
    monkeypatch.setattr(Run, "corpus", no_data)
    model = run.model()
    assert not model.training and sum(p.numel() for p in model.parameters()) == run.model_info.parameters
    monkeypatch.undo()

    # The inputs, read here by the test (not by the Run), in the order training scored them.
    args = {k: v for k, v in run.recipe["dataset"].items() if k not in ("name", "modalities")}
    corpus = DATASETS.get("synthetic")(**args).select_modalities(run.dataset.modalities)
    from merbench.data.batching import split_tensors

    for split in ("valid", "test"):
        saved = run.predictions(split)
        fresh = predict(model, split_tensors(corpus, split, False), "cpu")
        np.testing.assert_array_equal(fresh.index, saved.index)
        np.testing.assert_allclose(fresh.outputs, saved.outputs, rtol=0, atol=1e-6)
    again = run.evaluate("test")  # re-scored from best.pt
    assert again["confusion"] == run.metrics["test"]["confusion"]
    assert {k: v for k, v in again.items() if k != "confusion"} == pytest.approx(run.scores("test"))


def test_a_result_written_before_num_outputs_was_recorded_still_builds(trained, tmp_path):
    import shutil

    run = trained[0][0]
    copy = tmp_path / run.path.name
    shutil.copytree(run.path, copy)
    data = json.loads((copy / run_folder.RESULT).read_text())
    del data["model"]["num_outputs"]
    (copy / run_folder.RESULT).write_text(json.dumps(data))
    old = load_run(copy)
    assert old.model_info.num_outputs == 6
    assert old.model()(_batch(old)).logits.shape == (4, 6)


def _batch(run: Run):
    args = {k: v for k, v in run.recipe["dataset"].items() if k not in ("name", "modalities")}
    corpus = DATASETS.get("synthetic")(**args).select_modalities(run.dataset.modalities)
    from merbench.data.batching import split_tensors

    return next(split_tensors(corpus, "test", False).batches("utterance", 4))


def test_load_results_records_and_frame(trained):
    pd = pytest.importorskip("pandas")
    runs_, out = trained
    records = merbench.load_results([out])
    assert sorted(r.seed for r in records) == [4, 5] and all(isinstance(r, Run) for r in records)
    frame = merbench.load_results(out, as_frame=True)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    assert {"model", "seed", "dataset", "modalities", "wf1", "acc", "macro_f1"} <= set(frame.columns)
    for run in runs_:
        row = frame[frame["seed"] == run.seed].iloc[0]
        assert row["wf1"] == run.metrics["test"]["wf1"] and row["model"] == "mlp_tiny"
        assert row["modalities"] == "S+T+V"
    valid = merbench.load_results(out, as_frame=True, split="valid")
    assert sorted(valid["wf1"]) == sorted(r.metrics["valid"]["wf1"] for r in runs_)


def test_table_returns_the_tables_the_cli_prints(trained, tmp_path):
    runs_, out = trained
    report = merbench.table(out, significance=True, resamples=50, figure=tmp_path / "confusion.png")
    assert isinstance(report, api.TableReport) and len(report.tables) == 1
    assert report.figure == tmp_path / "confusion.png" and report.figure.exists()
    printed = cli("table", out, "--significance", "--resamples", "50", "--format", "csv")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == report.render("csv").strip()
    assert "(2)" in report.render("markdown")  # the two seeds are one row


def test_check_writes_then_checks_a_reference(trained, tmp_path):
    runs_, out = trained
    ref = tmp_path / "ref.json"
    assert api.check(out, ref, update=True, metrics=["wf1"]).written == 1
    report = api.check(out, ref)
    assert [(f.metric, f.status) for f in report.findings] == [("wf1", "ok")] and report.failed == []
    data = json.loads(ref.read_text())
    entry, = data["entries"].values()
    entry["metrics"]["wf1"]["reference"] += 50  # a planted regression
    ref.write_text(json.dumps(data))
    assert [f.status for f in api.check(out, ref).failed] == ["regression"]


def test_evaluate_scores_again_as_the_cli_does(trained):
    (first, _), _ = trained
    clean = api.evaluate(first.path)
    assert clean.condition is None and clean.metrics["wf1"] == pytest.approx(first.metrics["test"]["wf1"])
    missing = api.evaluate(first.path, missing=["audio"], noise={"vision": 0.5}, seed=1)
    assert missing.condition == "missing audio (zero), noise vision=0.5"
    printed = cli("evaluate", first.path, "--missing", "audio", "--noise", "vision=0.5", "--seed", "1", "--json")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == missing.metrics
    with pytest.raises(MerbenchError, match="--noise vision=-1: level '-1' must be a finite number"):
        api.evaluate(first.path, noise={"vision": -1})


def test_overrides_are_checked_like_set(tmp_path):
    with pytest.raises(MerbenchError, match="unknown argument 'seeds'"):
        merbench.train(tiny_recipe(), out=tmp_path, seeds=3)
    with pytest.raises(MerbenchError, match=r"--set model.hiden=3: .*did you mean 'hidden'"):
        merbench.train(tiny_recipe(), out=tmp_path, **{"model.hiden": 3})
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe())
    resolved = api.resolve_recipe(path, {"train.lr": 1e-5, "dataset.modalities": ["text"]})
    assert resolved["train"]["lr"] == 1e-5 and resolved["dataset"]["modalities"] == ["text"]
    assert not list(tmp_path.glob("*/result.json"))  # nothing trained


def test_import_merbench_stays_light():
    code = ("import sys, merbench; merbench.load_results; merbench.load_run; merbench.Run; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert callable(merbench.train) and callable(merbench.compare)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_grid_functions_return_the_tables_the_cli_prints(tmp_path):
    root = tmp_path / "recipes"
    for model in ("mlp_tiny", "tfn_tiny", "hff_tiny"):
        recipe = tiny_recipe(model, max_epochs=2)
        recipe["dataset"].update(n_dialogues=12, n_utterances=120)
        if model == "hff_tiny":
            recipe["model"]["audio_cnn"] = False
        write_recipe(root / "synthetic" / f"{model}.yaml", recipe)
    report = merbench.compare("synthetic", ["mlp_tiny", "tfn_tiny"], seeds=1, recipes=root, out=tmp_path / "g")
    assert report.estimate.cells == 2 and report.estimate.finished == 0
    assert len(report.grid.trained) == 2 and not report.failed
    assert [r.model_name for r in report.runs()] == ["mlp_tiny", "tfn_tiny"]
    printed = cli("compare", "--dataset", "synthetic", "--models", "mlp_tiny,tfn_tiny", "--seeds", "1",
                  "--recipes", root, "--out", tmp_path / "g", "--quiet", "--format", "csv")
    assert printed.exit_code == 0, printed.output
    assert "0 trained, 2 reused" in printed.stderr
    assert printed.stdout.strip() == report.render("csv").strip()

    sized = merbench.ablate("hff_tiny", "attention", dataset="synthetic", recipes=root, seeds=2,
                            modalities="T", out=tmp_path / "g", dry_run=True, **{"train.max_epochs": 1})
    assert sized.grid is None and sized.tables == [] and sized.estimate.cells == 4
    assert not (tmp_path / "g" / sized.plan.name).exists()  # a dry run writes nothing
    assert all(c.recipe["train"]["max_epochs"] == 1 for c in sized.plan.cells)


def _doc_grid_script() -> str:
    """The grid example of docs/python.md, as a user saves it to a file."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "python.md").read_text()
    blocks = [b.split("```")[0] for b in doc.split("```python\n")[1:]]
    (script,) = [b for b in blocks if "# ablate_hff.py" in b]
    return script


def test_the_docs_grid_example_runs_as_a_script_with_two_jobs(tmp_path):
    script = _doc_grid_script()
    assert 'if __name__ == "__main__":' in script
    small = '"train.max_epochs": 1, "dataset.n_dialogues": 8, "dataset.n_utterances": 80'
    tiny = script.replace('"train.max_epochs": 20', small).replace('modalities="T,S+T+V"', 'modalities="T"')
    assert tiny.count(small) == 1 and 'modalities="T"' in tiny  # the doc still has what the test shrinks
    (tmp_path / "ablate_hff.py").write_text(tiny)
    import os
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(merbench.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "ablate_hff.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "108 cells (0 finished, 108 to train)" in out.stdout
    assert "| HFF (full model)" in out.stdout and "| Without attention" in out.stdout
    assert "Traceback" not in out.stderr and "BrokenProcessPool" not in out.stderr


def test_a_grid_whose_every_cell_failed_raises(tmp_path, monkeypatch):
    def fails(recipe, out, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_module, "train", fails)
    recipe = tiny_recipe("mlp_tiny", max_epochs=1)
    write_recipe(tmp_path / "recipes" / "synthetic" / "mlp_tiny.yaml", recipe)
    with pytest.raises(api.GridFailed, match=r"all 2 cells of the grid failed.*RuntimeError: boom") as e:
        merbench.compare("synthetic", ["mlp_tiny"], seeds=2, recipes=tmp_path / "recipes", out=tmp_path / "g")
    assert isinstance(e.value, MerbenchError) and len(e.value.report.grid.errors) == 2
    # The command prints the grid's summary and every failed cell, and exits 1
    out = cli("compare", "--dataset", "synthetic", "--models", "mlp_tiny", "--seeds", "2",
              "--recipes", tmp_path / "recipes", "--out", tmp_path / "g", "--quiet")
    assert out.exit_code == 1, out.output
    assert "FAILED: 2 of 2 cells" in out.stderr and out.stderr.count("RuntimeError: boom") >= 2


def test_a_worker_that_imports_an_unguarded_script_says_what_to_do(tmp_path, monkeypatch):
    """In a spawned worker still importing the script (multiprocessing's own ``_inheriting``
    flag), a grid call is an error naming the guard, before any lock or work."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(MerbenchError, match='call the grid function under `if __name__ == "__main__":`'):
        merbench.compare("synthetic", ["mlp"], seeds=1, out=tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_errors_with_brackets_print_whole(tmp_path, monkeypatch):
    """Rich reads [...] as markup: a cell's error, printed by the grid's progress, keeps it."""
    def fails(recipe, out, **kw):
        raise KeyError("[model.name] not found; pip install 'merbench[graph]'")

    monkeypatch.setattr(train_module, "train", fails)
    write_recipe(tmp_path / "recipes" / "synthetic" / "mlp_tiny.yaml", tiny_recipe("mlp_tiny", max_epochs=1))
    out = cli("compare", "--dataset", "synthetic", "--models", "mlp_tiny", "--seeds", "1",
              "--recipes", tmp_path / "recipes", "--out", tmp_path / "g")
    assert out.exit_code == 1, out.output
    progress = [line for line in out.stderr.splitlines() if line.startswith("FAILED  1/1")]
    assert len(progress) == 1 and "[model.name] not found; pip install 'merbench[graph]'" in progress[0]


def test_robustness_significance_and_the_confusion_figure_are_api_functions(trained, tmp_path):
    """The CLI commands print what merbench.api returns (issue 21: no CLI logic the API lacks)."""
    (first, second), _ = trained
    comparison = api.significance(first.path, second.path, "wf1", resamples=200)
    printed = cli("significance", first.path, second.path, "--resamples", "200", "--json")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == json.dumps(comparison.as_dict(), indent=2)

    sized = api.robustness([first.path], levels="0,1", dry_run=True)
    assert sized.report is None and sized.plan.scorings > 0
    found = api.robustness([first.path], levels=[0, 1], modalities=["text"], save=tmp_path / "r.json")
    assert [r.modality for r in found.report.rows] == ["text"] and found.saved.is_file()
    printed = cli("robustness", first.path, "--levels", "0,1", "--modalities", "text", "--format", "csv")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == found.render("csv").strip()
    assert "--format nope" in one_line_error(cli("robustness", first.path, "--format", "nope"))

    written = api.confusion_figure(first.path, tmp_path / "c.png")
    assert written.read_bytes().startswith(b"\x89PNG")
    assert "--split nope" in str(pytest.raises(MerbenchError, api.confusion_figure, first.path,
                                               tmp_path / "d.png", split="nope").value)
