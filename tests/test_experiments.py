"""Grids: ablate, heads-sweep and compare through the CLI, resume, failures, runners, status."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

import merbench.train as train_module
from merbench import run_folder
from merbench.errors import MerbenchError
from merbench.experiments import ablate, compare, heads
from merbench.figures import PNG_SIGNATURE
from merbench.grid import RunnerOptions, grid_status, run_grid
from merbench.grid.runners import submitit_parameters
from merbench.models.hff import HFF

from helpers import cli, one_line_error, write_recipe

TINY_DATA = {"name": "synthetic", "n_dialogues": 12, "n_utterances": 120, "audio_dim": 6, "text_dim": 8,
             "vision_dim": 5, "seed": 0}
TRAIN = {"max_epochs": 2, "patience": 2, "batch_size": 32, "dialogue_batch_size": 4}
MODEL_ARGS = {"hff_tiny": {"audio_cnn": False}, "mlp_tiny": {}, "tfn_tiny": {}, "hrdf_mer_tiny": {},
              # the real HFF at tiny sizes: its name finds the paper's Table 4 in recipes/references/
              "hff": {"hidden": 16, "heads": 2, "head_dim": 8, "layers": 1, "audio_cnn": False}}


pytestmark = pytest.mark.usefixtures("frozen_source")


@pytest.fixture(scope="module")
def recipes_dir(tmp_path_factory):
    """recipes/synthetic/<model>.yaml for tiny models on a tiny corpus, 2 epochs."""
    root = tmp_path_factory.mktemp("recipes")
    for model, args in MODEL_ARGS.items():
        write_recipe(root / "synthetic" / f"{model}.yaml",
                     {"dataset": dict(TINY_DATA), "model": {"name": model, **args}, "train": dict(TRAIN)})
    return root


def grid_args(recipes_dir, out, *args):
    return (*args, "--dataset", "synthetic", "--recipes", recipes_dir, "--out", out, "--quiet")


def result_mtimes(grid):
    return {p: p.stat().st_mtime_ns for p in grid.glob("*/result.json")}


def test_ablate_prints_table4_rows_and_columns_and_reuses_finished_cells(recipes_dir, tmp_path, monkeypatch):
    args = grid_args(recipes_dir, tmp_path, "ablate", "hff_tiny", "--drop", "attention", "--drop", "temporal",
                     "--seeds", "2", "--modalities", "S+T+V,T", "--format", "csv")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    lines = list(csv.DictReader(io.StringIO(first.stdout)))
    # the paper's column order, whatever order was asked
    # HFF on text alone builds no dynamic or uncertainty weighting: T's cells say so in a column
    assert list(lines[0]) == ["Model", "T mean", "T std", "T n", "T ran without", "S+T+V mean", "S+T+V std", "S+T+V n"]
    assert {line["T ran without"] for line in lines} == {"dynamic_weighting uncertainty"}
    assert [line["Model"] for line in lines] == [
        "HFF (full model)", "Without attention mechanism", "Without temporal modeling"]
    assert all(line[f"{c} n"] == "2" for line in lines for c in ("T", "S+T+V"))
    grid = tmp_path / "ablate-hff_tiny-synthetic"
    cells = json.loads((grid / "grid.json").read_text())["cells"]
    assert len(cells) == 12 and len(result_mtimes(grid)) == 12
    recipe = {(c["labels"]["off"], c["labels"]["modalities"], c["seed"]): c["recipe"] for c in cells}
    assert recipe[("attention", "T", 1)]["model"]["attention"] is False
    assert "attention" not in recipe[("none", "T", 0)]["model"]  # full model: the switch at its default (on)
    assert recipe[("none", "T", 0)]["dataset"]["modalities"] == ["text"]
    assert recipe[("temporal", "S+T+V", 0)]["dataset"]["modalities"] == ["audio", "text", "vision"]

    before = result_mtimes(grid)
    paper = {"model": "hff_tiny", "dataset": "synthetic", "metric": "wf1", "columns": {"T": ["text"]},
             "modalities": ["audio", "text", "vision"], "features": dict.fromkeys(["audio", "text", "vision"],
                                                                                 "synthetic's own"),
             "rows": {"full": {"T": 99.0}, "attention": {"T": 10.0}}}
    monkeypatch.setattr(ablate, "find_tables", lambda match: [("Test et al. 2025", "table4", paper)])
    again = cli(*args, "--references")
    assert again.exit_code == 0, again.output
    assert "0 trained, 12 reused" in again.stderr
    assert result_mtimes(grid) == before  # nothing retrained or rewritten
    rows = list(csv.DictReader(io.StringIO(again.stdout)))
    assert [r["T paper"] for r in rows] == ["99.0", "10.0", ""] and "S+T+V paper" not in rows[0]
    assert [r["T mean"] for r in rows] == [r["T mean"] for r in lines]  # ours unchanged


def test_ablate_reference_of_another_dataset_is_printed_below(recipes_dir, tmp_path):
    result = cli(*grid_args(recipes_dir, tmp_path, "ablate", "hff", "--drop", "attention", "--seeds", "1",
                            "--modalities", "T", "--references", "--format", "markdown"))
    assert result.exit_code == 0, result.output
    ours, below = result.stdout.split("Reported by the paper")
    assert "| HFF (full model)" in ours and "65.5" not in ours
    assert "not comparable: dataset synthetic" in below
    assert "65.5" in below and "63.7" in below  # Table 4, column T, as printed in recipes/references/hff.yaml


def test_drop_all_plans_every_component(recipes_dir):
    plan = ablate.plan("hff_tiny", ["all"], "synthetic", None, [], 1, "T,S+T", recipes_dir)
    assert [c.labels["off"] for c in plan.cells if c.labels["modalities"] == "S+T"] == ["none", *HFF.components]
    # With one modality the weighting switches build nothing: those cells are the full model's.
    assert [c.labels["off"] for c in plan.cells if c.labels["modalities"] == "T"] == [
        "none", *HFF.active_components(["text"])]
    assert plan.info["same_as_full"] == [["dynamic_weighting", "T"], ["uncertainty", "T"]]
    assert len({c.run for c in plan.cells}) == len(plan.cells)


def test_ablate_shows_a_cell_that_builds_nothing_as_the_full_models(recipes_dir, tmp_path):
    result = cli(*grid_args(recipes_dir, tmp_path, "ablate", "hff_tiny", "--drop", "dynamic_weighting",
                            "--seeds", "1", "--modalities", "T", "--format", "markdown"))
    assert result.exit_code == 0, result.output
    assert "1 cells" in result.stderr or "1 cell" in result.stderr  # trained once
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip(" *") for line in result.stdout.splitlines()
            if line.startswith("| ") and "Model" not in line}
    full, shared = rows["HFF (full model)"], rows["Without dynamic weighting"]
    # the full model's runs, marked =; both went without the weighting on text alone (‡)
    assert full.endswith(" ‡") and shared.replace("*", "") == f"{full.removesuffix(' ‡')} = ‡"
    assert "with T 'dynamic_weighting' builds nothing" in " ".join(result.stdout.split())


@pytest.mark.parametrize("args, message", [
    (("ablate", "hff_tiny", "--drop", "atention"),
     "--drop atention: model 'hff_tiny' has no component 'atention' (did you mean 'attention'?); its switches: "
     "attention, dynamic_weighting, temporal, alignment, uncertainty, or all"),
    (("ablate", "mlp_tiny", "--drop", "all"), "model 'mlp_tiny' has no ablation components"),
    (("ablate", "hff_tiny", "--drop", "attention", "--modalities", "S+X"), "--modalities 'S+X': expected letters"),
    (("ablate", "hff_tiny", "--drop", "attention", "--format", "html"), "--format html: expected one of"),
    (("ablate", "hff_tiny", "--drop", "attention", "--jobs", "0"), "--jobs 0: expected"),
    (("ablate", "hff_tiny", "--drop", "attention", "--launcher", "pbs"), "--launcher pbs: expected one of slurm"),
    (("ablate", "hff_tiny", "--drop", "attention", "--seeds", "0"), "--seeds 0: expected"),
    (("ablate", "hff_tiny", "--drop", "attention", "--partition", "gpu"), "--partition: only used with --launcher slurm"),
    (("heads-sweep", "hff_tiny", "--heads", "4,0"), "--heads 4,0: '0' is not a head count"),
    (("heads-sweep", "hff_tiny", "--heads", "2.5"), "--heads 2.5: '2.5' is not a head count"),
    (("heads-sweep", "hff_tiny", "--heads", "two"), "'two' is not a head count"),
    (("heads-sweep", "mlp_tiny", "--heads", "2"), "model 'mlp_tiny' has no 'heads' argument; models with one: "),
    (("heads-sweep", "hrdf_mer_tiny", "--heads", "3"), "--heads 3: model 'hrdf_mer_tiny'"),
    (("compare", "--models", "mlp_tiny,nope"), "unknown model 'nope'"),
    (("compare", "--models", "lmf_tiny"), "lmf_tiny.yaml: no recipe for model 'lmf_tiny' on dataset 'synthetic'"),
])
def test_bad_input_is_one_line_error_before_any_training(recipes_dir, tmp_path, args, message):
    out = tmp_path / "grids"
    assert message in one_line_error(cli(*grid_args(recipes_dir, out, *args)))
    assert not out.exists()


def test_missing_recipe_names_the_file(tmp_path):
    error = one_line_error(cli("compare", "--dataset", "nowhere", "--models", "tfn", "--out", tmp_path))
    assert "nowhere/tfn.yaml: no recipe for model 'tfn' on dataset 'nowhere'" in error
    error = one_line_error(cli("compare", "--dataset", "synthetic", "--models", "all", "--recipes", tmp_path))
    assert "no recipe of any registered (non-tiny) model" in error


def test_compare_all_takes_every_non_tiny_model_with_a_recipe(recipes_dir):
    plan = compare.plan("synthetic", "all", [], 2, recipes_dir)
    assert plan.info["models"] == ["hff"] and [c.seed for c in plan.cells] == [0, 1]


def test_interrupted_grid_resumes_without_retraining(recipes_dir, tmp_path, monkeypatch):
    plan = ablate.plan("hff_tiny", ["attention"], "synthetic", None, [], 1, "T,S+T", recipes_dir)
    real, calls = train_module.train, []

    def killed_at_third(recipe, out, **kw):
        calls.append((run_folder.run_name(recipe), kw["resume"]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(recipe, out, **kw)

    monkeypatch.setattr(train_module, "train", killed_at_third)
    options = RunnerOptions(quiet=True)
    with pytest.raises(KeyboardInterrupt):
        run_grid(tmp_path, plan.cells, "ablate", ["test"], options)
    done = {c.run: (tmp_path / c.run / run_folder.RESULT).stat().st_mtime_ns for c in plan.cells[:2]}
    third, fourth = plan.cells[2], plan.cells[3]
    # A half-written cell: trained up to its last checkpoint, killed before result.json.
    real(third.recipe, tmp_path, progress=False, keep_last=True)
    (tmp_path / third.run / run_folder.RESULT).unlink()
    assert [s.state for s in grid_status(tmp_path)[1]] == ["done", "done", "interrupted", "pending"]

    (tmp_path / fourth.run).mkdir()
    marker = tmp_path / fourth.run / "running.json"
    marker.write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid()}))
    assert grid_status(tmp_path)[1][3].state == "running"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    marker.write_text(json.dumps({"host": os.uname().nodename, "pid": int(gone.stdout)}))
    assert grid_status(tmp_path)[1][3].state == "pending"  # its process is gone

    calls.clear()
    run = run_grid(tmp_path, plan.cells, "ablate", ["test"], options)
    assert calls == [(third.run, True), (fourth.run, False)]  # the half-written cell resumes
    assert {r: (tmp_path / r / run_folder.RESULT).stat().st_mtime_ns for r in done} == done
    assert len(run.results) == 4 and run.reused == 2 and not run.failed


def test_failed_cell_is_recorded_and_the_others_go_on(recipes_dir, tmp_path, monkeypatch):
    real = train_module.train

    def text_only_fails(recipe, out, **kw):
        if recipe["dataset"]["modalities"] == ["text"]:
            raise RuntimeError("boom\nsecond line")
        return real(recipe, out, **kw)

    monkeypatch.setattr(train_module, "train", text_only_fails)
    args = grid_args(recipes_dir, tmp_path, "ablate", "hff_tiny", "--drop", "attention", "--seeds", "1",
                     "--modalities", "T,S+T", "--format", "csv")
    result = cli(*args)
    assert result.exit_code == 1
    lines = list(csv.DictReader(io.StringIO(result.stdout)))  # the table of what finished comes first
    assert list(lines[0])[:4] == ["Model", "T mean", "T std", "T n"] and [r["T n"] for r in lines] == ["0", "0"]
    assert "RuntimeError: boom" in result.stderr and "FAILED: 2 of 4 cells" in result.stderr
    grid = tmp_path / "ablate-hff_tiny-synthetic"
    errors = sorted(grid.glob("*/error.txt"))
    assert len(errors) == 2
    assert errors[0].read_text().splitlines()[0] == "RuntimeError: boom" and "Traceback" in errors[0].read_text()

    status = cli("grid", "status", grid)
    assert status.exit_code == 0
    assert "2 done, 0 running, 0 interrupted, 2 failed, 0 pending of 4 cells" in status.stdout
    assert status.stdout.count("RuntimeError: boom") == 2

    monkeypatch.setattr(train_module, "train", real)
    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert "2 trained, 2 reused, 0 failed" in again.stderr
    assert not list(grid.glob("*/error.txt"))


@pytest.mark.parametrize("extra", [(), ("--launcher", "debug", "--jobs", "1")], ids=["serial", "debug"])
def test_bad_input_found_in_a_cell_stops_the_grid(recipes_dir, tmp_path, monkeypatch, extra):
    calls = []

    def no_data(recipe, out, **kw):
        calls.append(recipe)
        raise MerbenchError("dataset.root: no iemocap location given")

    monkeypatch.setattr(train_module, "train", no_data)
    result = cli(*grid_args(recipes_dir, tmp_path, "ablate", "hff_tiny", "--drop", "attention", "--seeds", "2",
                            "--modalities", "T", *extra))
    error = one_line_error(result)
    assert "dataset.root: no iemocap location given (in cell off=none modalities=T seed 0; the grid stopped" in error
    assert len(calls) == 1  # the same error would have hit every cell
    states = [s.state for s in grid_status(tmp_path / "ablate-hff_tiny-synthetic")[1]]
    assert states == ["failed", "pending", "pending", "pending"]


def test_every_runner_gives_the_same_numbers(recipes_dir, tmp_path):
    runners = {"serial": (), "jobs2": ("--jobs", "2"), "debug": ("--launcher", "debug"),
               "local": ("--launcher", "local", "--jobs", "2")}
    metrics = {}
    for name, extra in runners.items():
        out = tmp_path / name
        result = cli(*grid_args(recipes_dir, out, "compare", "--models", "mlp_tiny,hff_tiny", "--seeds", "1",
                                "--format", "csv", *extra))
        assert result.exit_code == 0, (name, result.output)
        files = sorted((out / "compare-synthetic").glob("*/result.json"))
        assert len(files) == 2
        data = [json.loads(f.read_text()) for f in files]
        assert {d["provenance"]["threads"] for d in data} == {1}  # recorded, fixed whatever the runner
        metrics[name] = {(d["model"]["name"], d["seed"]): d["metrics"] for d in data}
    assert all(m == metrics["serial"] for m in metrics.values())
    assert list((tmp_path / "local" / "compare-synthetic" / "slurm_logs").iterdir())  # submitit's own files


def test_heads_sweep_prints_table5_and_writes_a_png(recipes_dir, tmp_path, monkeypatch):
    figure = tmp_path / "f1.png"
    args = grid_args(recipes_dir, tmp_path, "heads-sweep", "hff_tiny", "--heads", "2,1", "--seeds", "1",
                     "--format", "csv")
    result = cli(*args, "--figure", figure)
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(lines[0]) == ["Heads"] + [f"synthetic {m} {p}" for m in ("ACC", "WF1") for p in ("mean", "std", "n")]
    assert [line["Heads"] for line in lines] == ["1", "2"]
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    grid = tmp_path / "heads-hff_tiny-synthetic"
    cells = json.loads((grid / "grid.json").read_text())["cells"]
    assert sorted(c["recipe"]["model"]["heads"] for c in cells) == [1, 2]

    paper = {"model": "hff_tiny", "parameter": "heads", "rows": {1: {"synthetic_acc": 50.0, "synthetic_f1": 40.0}},
             "modalities": ["audio", "text", "vision"], "features": dict.fromkeys(["audio", "text", "vision"],
                                                                                 "synthetic's own")}
    monkeypatch.setattr(heads, "find_tables", lambda match: [("Test et al. 2025", "table5", paper)])
    again = cli(*args, "--references")
    assert again.exit_code == 0 and "0 trained, 2 reused" in again.stderr
    rows = list(csv.DictReader(io.StringIO(again.stdout)))
    assert [(r["synthetic ACC paper"], r["synthetic WF1 paper"]) for r in rows] == [("50.0", "40.0"), ("", "")]
    assert (grid / "heads-f1.png").read_bytes()[:8] == PNG_SIGNATURE  # default: inside the grid folder


def test_compare_prints_table3_with_references_and_efficiency_and_reuses_runs(recipes_dir, tmp_path, monkeypatch):
    paper = {"dataset": "synthetic", "rows": {"mlp_tiny": {"wf1": 99.0, "acc": 99.0}},
             "modalities": ["audio", "text", "vision"], "features": dict.fromkeys(["audio", "text", "vision"],
                                                                                 "synthetic's own")}
    monkeypatch.setattr(compare, "find_tables", lambda match: [("Test et al. 2025", "table3", paper)])
    args = grid_args(recipes_dir, tmp_path, "compare", "--models", "mlp_tiny,tfn_tiny", "--seeds", "2",
                     "--format", "markdown", "--references", "--efficiency")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("| Model"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["Model", "Happy F1", "Sad F1", "Neutral F1", "Angry F1", "Excited F1", "Frustrated F1",
                       "ACC", "WF1", "Params", "s / epoch", "ms / utt (CPU, 1 thread)"]
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert set(rows) == {"Model", "mlp_tiny", "tfn_tiny"}
    assert "| 99.0 (Δ -" in rows["mlp_tiny"] and "†" in rows["mlp_tiny"]  # far below the "paper"
    assert "(Δ" not in rows["tfn_tiny"]
    assert "paper: Test et al. 2025" in result.stdout and "outside the paper's number ± 2 x our std" in result.stdout

    grid = tmp_path / "compare-synthetic"
    before = result_mtimes(grid)
    again = cli(*args)
    assert again.exit_code == 0 and "0 trained, 4 reused" in again.stderr
    assert result_mtimes(grid) == before

    # A paper's number on other modalities (or features) is not set beside ours: a note says why.
    paper["modalities"] = ["text"]
    refused = cli(*args)
    assert refused.exit_code == 0, refused.output
    assert "99.0" not in refused.stdout and "(Δ" not in refused.stdout
    assert "mlp_tiny: the paper's numbers (reference table) are not set beside: the paper's numbers use text, " \
           "these runs audio+text+vision" in " ".join(refused.stdout.split())


def test_slurm_options_reach_submitit(tmp_path):
    import submitit

    options = RunnerOptions(launcher="slurm", partition="gpu", gpus_per_job=1, time_min=90, mem_gb=16.0,
                            cpus_per_task=4)
    params = submitit_parameters(options, "ablate-hff-iemocap")
    assert params == {"name": "merbench-ablate-hff-iemocap", "timeout_min": 90, "cpus_per_task": 4,
                      "gpus_per_node": 1, "mem_gb": 16.0, "slurm_partition": "gpu"}
    submitit.AutoExecutor(folder=tmp_path, cluster="debug").update_parameters(**params)  # names submitit knows


@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine has Slurm")
def test_slurm_launcher_without_slurm_is_one_line_error(recipes_dir, tmp_path):
    error = one_line_error(cli(*grid_args(recipes_dir, tmp_path, "compare", "--models", "mlp_tiny", "--seeds", "1",
                                          "--launcher", "slurm")))
    assert error.startswith("error: --launcher slurm:") and "--launcher local" in error
    assert not list(tmp_path.glob("*/*/result.json"))


def test_a_worker_trains_into_the_folder_the_planner_named(tmp_path):
    """A source edit while a grid runs changes run_name(); the cell must still land where planned."""
    from merbench.grid.worker import run_cell
    from merbench.recipe import validate

    recipe = validate({"dataset": {"name": "synthetic", "n_dialogues": 6, "n_utterances": 36},
                       "model": {"name": "mlp_tiny"}, "train": {"max_epochs": 1}}, "test")
    outcome = run_cell(recipe, str(tmp_path), 1, ["test"], "planned-name")
    assert outcome["ok"] and outcome["run"] == "planned-name"
    assert (tmp_path / "planned-name" / "result.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["planned-name"]


def test_thread_count_is_part_of_every_cells_recipe(recipes_dir, tmp_path):
    """Numbers can differ in the last digits between thread counts: --threads is in the run id."""
    folders = {}
    for threads in ("1", "2"):
        out = tmp_path / threads
        result = cli(*grid_args(recipes_dir, out, "compare", "--models", "mlp_tiny", "--seeds", "1",
                                "--format", "csv", "--threads", threads))
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "compare-synthetic" / "grid.json").read_text())
        assert {c["recipe"]["train"]["threads"] for c in manifest["cells"]} == {int(threads)}
        folders[threads] = {c["run"] for c in manifest["cells"]}
    assert not folders["1"] & folders["2"]


def fake_slurm(bin_dir, sacct: str, squeue: str) -> None:
    """sacct and squeue stand-ins on PATH: each a shell script printing ``sacct`` / ``squeue``."""
    bin_dir.mkdir()
    for name, body in (("sacct", sacct), ("squeue", squeue)):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)


def test_without_accounting_slurm_job_states_come_from_squeue(tmp_path, monkeypatch, caplog):
    """sacct fails where Slurm has no accounting database: a cancelled job must still be seen
    to end (it never writes a result), a requeued one to be waiting, a purged one to be gone."""
    from merbench.grid.slurm import GONE, SqueueWatcher

    fake_slurm(tmp_path / "bin", sacct="echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1",
               squeue='echo "$@" >> "$(dirname "$0")/calls"; printf "12|CANCELLED|vm\\n13|PENDING|\\n"')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    watcher = SqueueWatcher()
    for job in ("12", "13", "14"):
        watcher.register_job(job)
    with caplog.at_level("WARNING"):
        states = {job: watcher.get_state(job, mode="force") for job in ("12", "13", "14")}
    assert states == {"12": "CANCELLED", "13": "PENDING", "14": GONE}
    assert watcher.is_done("12", mode="cache") and watcher.is_done("14", mode="cache")
    assert not watcher.is_done("13", mode="cache")  # a requeued job waits to start again
    assert watcher.use_squeue and not caplog.records  # no warning at every poll
    assert "--states=all" in (tmp_path / "bin" / "calls").read_text()


def test_with_accounting_slurm_job_states_come_from_sacct(tmp_path, monkeypatch):
    from merbench.grid.slurm import SqueueWatcher

    fake_slurm(tmp_path / "bin", sacct='printf "JobID|State|NodeList\\n12|CANCELLED by 0|vm\\n12.0|CANCELLED|vm\\n"',
               squeue="exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    watcher = SqueueWatcher()
    watcher.register_job("12")
    assert watcher.get_state("12", mode="force") == "CANCELLED by 0" and not watcher.use_squeue


def test_a_slurm_executor_makes_jobs_that_fall_back_on_squeue(tmp_path):
    from submitit.slurm.slurm import SlurmExecutor

    from merbench.grid.slurm import SlurmJob, use_squeue_fallback

    executor = SlurmExecutor.__new__(SlurmExecutor)  # no sbatch needed to check the class it makes
    executor.job_class = SlurmExecutor.job_class
    use_squeue_fallback(executor)
    assert executor.job_class is SlurmJob


def test_lost_job_line_names_the_jobs_last_state():
    from submitit.core.utils import UncompletedJobError

    from merbench.grid.runners import lost_job

    error = UncompletedJobError("Job 12 (task: 0) with path /x/12_0_result.pkl\n"
                                "has not produced any output (state: CANCELLED by 0)\nError stream produced:\n...")
    assert lost_job(error) == ("UncompletedJobError: Job 12 (task: 0) with path /x/12_0_result.pkl has not "
                               "produced any output (state: CANCELLED by 0)")
    assert lost_job(RuntimeError("boom\nmore")) == "RuntimeError: boom"


def test_lost_job_line_names_the_exception_a_job_raised():
    """A job that raised (merbench's Terminated after a SIGTERM, a bug): its exception line,
    not submitit's "failed during processing with trace:" header."""
    from submitit.core.utils import FailedJobError

    from merbench.grid.runners import lost_job

    trace = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "merbench.errors.Terminated: /g/cell: stopped by SIGTERM after epoch 3 of 150; last.pt holds it\n")
    # submitit's own message (submitit/core/core.py, Job.exception)
    error = FailedJobError(f"Job (task=0) failed during processing with trace:\n----------------------\n{trace}\n"
                           "----------------------\nYou can check full logs with 'job.stderr(0)' and "
                           "'job.stdout(0)'or at paths:\n  - /g/0_log.err\n  - /g/0_log.out")
    assert lost_job(error) == ("FailedJobError: merbench.errors.Terminated: /g/cell: stopped by SIGTERM after "
                               "epoch 3 of 150; last.pt holds it")


def test_running_json_names_the_slurm_job(monkeypatch):
    from merbench.grid.worker import running_record

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert "slurm_job" not in running_record(threads=1)
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    record = running_record(threads=1)
    assert record["slurm_job"] == "1234" and record["pid"] == os.getpid() and record["threads"] == 1
