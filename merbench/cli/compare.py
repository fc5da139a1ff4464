"""merbench compare --dataset D --models tfn,mfn,...|all [--seeds 3] [--references] [--efficiency]"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from merbench.cli.common import err_console, load_registries, user_errors
from merbench.cli.grid import (
    CpusPerTask, Format, GpusPerJob, Jobs, Launcher, Mem, Out, Partition, Quiet, References, Seeds, Sets,
    Threads, TimeMin, cell_overrides, check_format, finish, run_plan, runner_options,
)


@user_errors
def compare(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: each model's recipe is recipes/<dataset>/<model>.yaml."),
    models: str = typer.Option(..., "--models", help="Comma-separated registered models, or all (every model with a recipe for the dataset)."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    efficiency: bool = typer.Option(False, "--efficiency", help="Add parameters, training seconds per epoch and inference latency per utterance."),
    device: str = typer.Option("auto", "--device", help="With --efficiency: where latency is measured (auto = CUDA when present)."),
    seeds: Seeds = 3,
    references: References = False,
    set_: Sets = None,
    out: Out = Path("grids"),
    jobs: Jobs = None,
    threads: Threads = 1,
    launcher: Launcher = None,
    partition: Partition = None,
    gpus_per_job: GpusPerJob = 0,
    time: TimeMin = 60,
    mem: Mem = None,
    cpus_per_task: CpusPerTask = None,
    format: Format = "rich",
    quiet: Quiet = False,
) -> None:
    """Train (or reuse) every listed model on one dataset: the dataset's paper table (HFF Table 2 or 3 layout)."""
    load_registries()
    from merbench.experiments import compare as experiment
    from merbench.experiments._common import render_all

    check_format(format)
    options = runner_options(jobs, threads, launcher, partition, gpus_per_job, time, mem, cpus_per_task, quiet)
    plan = experiment.plan(dataset, models, cell_overrides(set_, threads), seeds, recipes)
    run = run_plan(plan, "compare", out, options)
    text = None
    if run.results:
        measured = None
        if efficiency:
            from merbench.experiments.efficiency import device_label, latency_ms

            latency = {}
            for name in plan.info["models"]:
                first = next((c for c in plan.cells if c.labels["model"] == name and run.result(c)), None)
                if first is not None:
                    latency[name] = latency_ms(run.grid_dir / first.run, device, threads)
            measured = {"latency": latency, "device": device_label(device, threads)}
            err_console.print(f"latency measured on {measured['device']}")
        text = render_all(experiment.tables(plan, run, references, measured), format)
    finish(run, text)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
