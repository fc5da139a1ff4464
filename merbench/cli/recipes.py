"""merbench recipes validate [PATH...] | merbench recipes list [DATASET]"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from merbench.cli.common import user_errors
from merbench.errors import MerbenchError
from merbench.recipe_paths import LOCAL, PACKAGED, find_recipe, recipe_roots, runnable_names

recipes_app = typer.Typer(help="Work with recipe files.", no_args_is_help=True)


def recipe_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.yaml") if not {"references", "base", "spaces"} & set(f.parts))
        else:
            files.append(p)
    return files


@recipes_app.command("validate")
@user_errors
def validate(
    paths: Optional[List[Path]] = typer.Argument(None, help="Recipe files or folders (default: ./recipes when present, else the packaged recipes)."),
) -> None:
    """Check recipes without loading data: keys, types, ranges, model and dataset names and arguments, feature extractors and fine-tuning options, first-line command."""
    # start-up: numpy and yaml only for this command, not for --help
    from merbench.recipe import load_recipe

    paths = list(paths or recipe_roots()[:1])
    files = recipe_files(paths)
    if not files:
        raise MerbenchError(f"{', '.join(map(str, paths))}: no recipe files found")
    errors = []
    for f in files:
        try:
            f = find_recipe(f)
            load_recipe(f)
            first = f.read_text(encoding="utf-8").splitlines()[:1]
            if not first or not first[0].startswith("# merbench "):
                raise MerbenchError(f"{f}: line 1: expected a comment giving the command that runs it "
                                    f"('# merbench train {f}')")
            typer.echo(f"ok       {f}")
        except MerbenchError as e:
            errors.append(str(e))
            typer.echo(f"invalid  {e}", err=True)
    if errors:
        raise typer.Exit(2)


@recipes_app.command("list")
@user_errors
def list_(dataset: Optional[str] = typer.Argument(None, help="Only this dataset's recipes, e.g. synthetic.")) -> None:
    """List the recipes a grid command (compare, ablate, heads-sweep --dataset) finds by name: ./recipes/<dataset>/<model>.yaml, then the packaged ones; train takes a path (a name that is no path from here is the packaged recipe)."""
    from tabulate import tabulate

    rows = []
    if LOCAL.is_dir() and LOCAL.resolve() != PACKAGED:
        rows += [(str(p.relative_to(LOCAL).with_suffix("")), str(p)) for p in sorted(LOCAL.glob("*/*.yaml"))
                 if p.parent.name not in ("base", "references")]
    local = {name for name, _ in rows}
    rows += [(name, "packaged") for name in runnable_names() if name not in local]
    if dataset is not None:
        rows = [r for r in rows if r[0].split("/")[0] == dataset]
        if not rows:
            datasets = sorted({n.split("/")[0] for n in runnable_names()})
            raise MerbenchError(f"no recipe of dataset {dataset!r}; datasets with recipes: {', '.join(datasets)}")
    typer.echo(tabulate(rows, ["recipe", "file"], disable_numparse=True))


def register(app: typer.Typer) -> None:
    app.add_typer(recipes_app, name="recipes")
