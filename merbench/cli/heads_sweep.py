"""merbench heads-sweep MODEL --heads 4,6,8,10 --dataset D [--dataset D2] [--seeds N] [--figure PATH]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import err_console, load_registries, user_errors
from merbench.cli.grid import (
    CpusPerTask, Format, GpusPerJob, Jobs, Launcher, Mem, Out, Partition, Quiet, References, Seeds, Sets,
    Threads, TimeMin, cell_overrides, check_format, finish, run_plan, runner_options,
)

FIGURE = "heads-f1.png"  # default figure name inside the grid folder


@user_errors
def heads_sweep(
    model: str = typer.Argument(..., help="Registered model with a 'heads' argument, e.g. hff."),
    heads: str = typer.Option("4,6,8,10", "--heads", help="Head counts, comma-separated whole numbers of at least 1."),
    dataset: Optional[List[str]] = typer.Option(None, "--dataset", help="Dataset (repeatable): recipe recipes/<dataset>/<model>.yaml."),
    recipe: Optional[List[Path]] = typer.Option(None, "--recipe", help="A base recipe (repeatable, one per dataset), besides or instead of --dataset."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    figure: Optional[Path] = typer.Option(None, "--figure", help=f"PNG of F1 against heads (default: <grid folder>/{FIGURE})."),
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
    """Train the model at each head count on each dataset: HFF Table 5 (ACC and F1 per dataset) and a plot."""
    load_registries()
    from merbench.experiments import heads as experiment
    from merbench.experiments._common import render_all
    from merbench.figures import png_path

    check_format(format)
    if figure is not None:
        png_path(figure)
    options = runner_options(jobs, threads, launcher, partition, gpus_per_job, time, mem, cpus_per_task, quiet)
    plan = experiment.plan(model, heads, list(dataset or []), list(recipe or []), cell_overrides(set_, threads), seeds, recipes)
    run = run_plan(plan, "heads-sweep", out, options)
    text = None
    if run.results:
        text = render_all(experiment.tables(plan, run, references), format)
        path = experiment.figure(plan, run, figure or run.grid_dir / FIGURE, references)
        err_console.print(f"figure: {path}")
    finish(run, text)


def register(app: typer.Typer) -> None:
    app.command("heads-sweep")(heads_sweep)
