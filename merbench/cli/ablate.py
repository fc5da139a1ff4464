"""merbench ablate MODEL --drop COMPONENT [--drop ...] | --drop all --dataset D [--seeds 3] [--modalities S+T+V,T]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import command_line, user_errors
from merbench.cli.grid import (
    CpusPerTask, DryRun, Format, GpusPerJob, Jobs, Launcher, Mem, Out, Partition, Quiet, References, Seeds, Sets,
    Threads, TimeMin, check_format, finish, grid_console, runner_options,
)


@user_errors
def ablate(
    model: str = typer.Argument(..., help="Registered model with ablation components, e.g. hff."),
    drop: List[str] = typer.Option(..., "--drop", help="Component to switch off (repeatable or comma-separated); all = every component."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name: the base recipe is recipes/<dataset>/<model>.yaml."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Base recipe instead of recipes/<dataset>/<model>.yaml."),
    recipes: Optional[Path] = typer.Option(None, "--recipes", help="Folder of recipes laid out as <dataset>/<model>.yaml (default: ./recipes/<dataset>/<model>.yaml when present, else the packaged recipe)."),
    modalities: Optional[str] = typer.Option(None, "--modalities", help="Columns: modality subsets, e.g. S+T+V,T (S = speech = audio; default every subset of the recipe's modalities)."),
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
    dry_run: DryRun = False,
) -> None:
    """Train the full model and each variant with a component switched off, on every modality subset: HFF Table 4."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench import api
    from merbench.recipe import override_pairs

    check_format(format)
    options = runner_options(jobs, threads, launcher, partition, gpus_per_job, time, mem, cpus_per_task, quiet)
    report = api.ablate(model, drop, dataset=dataset, recipe=recipe, recipes=recipes, modalities=modalities,
                        seeds=seeds, references=references, out=out, runner=options, dry_run=dry_run,
                        command=command_line(), console=grid_console(dry_run), **override_pairs(list(set_ or [])))
    finish(report, format)

def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)
