"""``merbench tune``: plan a study, size it, search, write ``best.yaml``, train its final seeds.

The tune folder (``<--out>/tune-<model>-<dataset>``) holds

- ``study.db``: the Optuna study (unless ``--storage`` names another database);
- one ordinary run folder per trial (``result.json`` with validation scores only; a pruned
  trial has ``pruned.json`` instead), named by its run identity like every run;
- ``tune.json``: the command, the space, the sampler, every trial's settings, state, score,
  seconds and run folder, the budget spent and the best trial;
- ``best.yaml``: the best trial's settings as a recipe extending the model's recipe, the
  study's provenance in its comments;
- the final runs (``--seeds-final K`` seeds of ``best.yaml``, the only runs that score the
  test split), ``grid.json`` listing them (``merbench grid status`` reads it);
- ``history.png`` (validation score by trial, best so far) and ``importance.png`` (Optuna's
  fANOVA parameter importances, when the trials allow one).
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from merbench import lock
from merbench.atomic import remove_temporaries
from merbench.errors import MerbenchError
from merbench.grid import GridRun, RunnerOptions, run_grid
from merbench.recipe import Recipe, apply_overrides, override_text, read_recipe_file, validate
from merbench.recipe_paths import PACKAGED, recipe_for
from merbench.results import atomic_write_text, load_json, utc_now, write_json
from merbench.tuning import study as studies
from merbench.tuning.space import Space, load_space, space_path
from merbench import run_folder
from merbench._version import __version__
from merbench.aggregate import Group, group_key
from merbench.experiments._common import base_recipe, make_cell
from merbench.experiments.sizing import duration, finished_seconds
from merbench.figures import importance_plot, tune_history_plot
from merbench.models.build import check_available
from merbench.registry import MODELS
from merbench.tables import results_table

TUNE_JSON = "tune.json"
BEST = "best.yaml"
HISTORY = "history.png"
TUNE_SCHEMA = 1


def score(metric: str, value: float) -> str:
    """A validation score as the lines print it: 2 decimals for percentages, 4 for MAE, Corr, loss."""
    return f"{value:.4f}" if metric in ("mae", "corr", "loss") else f"{value:.2f}"


def folder_name(model: str, dataset: str) -> str:
    return f"tune-{model}-{dataset}"


@dataclass
class TunePlan:
    model: str
    dataset: str
    trials: int
    seeds_final: int
    source: Path  # the recipe tuned
    raw: dict  # its raw form (extends merged) with --set overrides and the thread count
    base: Recipe  # validated; its ``data`` is the mapping as written, which the study's identity hashes
    overrides: list  # the user's --set pairs (best.yaml writes them)
    space: Space
    info: dict  # the study: name, url, metric, direction, sampler, seed, pruner, prune_after
    tune_dir: Path
    storage: str | None  # --storage as given (None: study.db in the tune folder)

    @property
    def final_seeds(self) -> list[int]:
        """The search's seed is left out: the reported runs are not the run that won the search."""
        first = self.base.train.seed
        return [first + 1 + i for i in range(self.seeds_final)]


def check_options(trials: int, seeds_final: int, sampler: str, pruner: str, prune_after: int,
                  timeout_min: float | None) -> None:
    if trials < 1:
        raise MerbenchError(f"--trials {trials}: expected the number of trials, at least 1")
    if seeds_final < 0:
        raise MerbenchError(f"--seeds-final {seeds_final}: expected 0 or more seeds of the best recipe")
    if sampler not in studies.SAMPLERS:
        raise MerbenchError(f"--sampler {sampler}: expected one of {', '.join(studies.SAMPLERS)}")
    if pruner not in studies.PRUNERS:
        raise MerbenchError(f"--pruner {pruner}: expected one of {', '.join(studies.PRUNERS)}")
    if prune_after < 0:
        raise MerbenchError(f"--prune-after {prune_after}: expected 0 or more trials")
    if timeout_min is not None and not timeout_min > 0:
        raise MerbenchError(f"--timeout {timeout_min}: expected minutes, more than 0")


def plan(model: str, dataset: str, trials: int, *, overrides: list, threads: int, out: Path,
         space: Path | None = None, recipes: Path | None = None, recipe: Path | None = None,
         seeds_final: int = 3, sampler: str = "tpe", seed: int = 0, pruner: str = "median",
         prune_after: int = 5, storage: str | None = None, timeout_min: float | None = None) -> TunePlan:
    """Everything checked before any trial: options, recipe, overrides, space, storage URL form."""
    check_options(trials, seeds_final, sampler, pruner, prune_after, timeout_min)
    MODELS.entry(model)  # an unknown name: one line with the closest
    source = Path(recipe) if recipe is not None else recipe_for(dataset, model, recipes)
    raw_file = read_recipe_file(source)
    validate(raw_file, str(source))  # the file must stand on its own
    pairs = list(overrides)
    raw = apply_overrides(raw_file, pairs + [("train.threads", threads)])
    where = f"{source} --set {' '.join(map(override_text, pairs))}" if pairs else str(source)
    base = validate(raw, where)
    if base.model.name != model or base.dataset.name != dataset:
        raise MerbenchError(f"{source}: trains {base.model.name} on {base.dataset.name}, not {model} on {dataset}")
    check_available(model)
    searched = load_space(space if space is not None else space_path(model, recipes), raw)
    metric, direction = studies.objective_of(base)
    tune_dir = Path(out) / folder_name(model, dataset)
    identity = {"recipe": base.data, "space": searched.describe(), "sampler": sampler, "seed": seed,
                "pruner": pruner, "prune_after": prune_after, "metric": metric}
    info = {"name": studies.study_name(model, dataset, identity), "url": studies.storage_url(tune_dir, storage),
            "metric": metric, "direction": direction, "sampler": sampler, "seed": seed, "pruner": pruner,
            "prune_after": prune_after, "model": model, "dataset": dataset}
    return TunePlan(model, dataset, trials, seeds_final, source, raw, base, pairs, searched, info, tune_dir, storage)


# --- Sizing --------------------------------------------------------------------------------

@dataclass
class Size:
    trials: int
    done: int
    resumed: int  # left running by an earlier command: resumed first
    best: studies.TrialRecord | None
    seeds_final: int
    final_todo: int  # final runs not finished yet (of the best.yaml there is now)
    parallel: int
    seconds: float | None
    basis: str

    @property
    def to_run(self) -> int:
        return max(0, self.trials - self.done)


def size(tune_plan: TunePlan, records: list[studies.TrialRecord], parallel: int, out: Path,
         final_todo: int | None = None) -> Size:
    """Trials done and to run, the best so far and the time left (from this study's trials, else
    from finished runs of the model on the dataset under ``out``)."""
    done, stale = studies.counts(records)
    complete = [t for t in records if t.state == "complete"]
    best = None
    if complete:
        pick = min if tune_plan.info["direction"] == "minimize" else max
        best = pick(complete, key=lambda t: t.value)
    timed = [t.seconds for t in records if t.seconds is not None and t.state in ("complete", "pruned", "failed")]
    if timed:
        per, basis = statistics.mean(timed), f"{len(timed)} trial{'s' if len(timed) != 1 else ''} of this study"
    else:
        key = f"{tune_plan.model} on {tune_plan.dataset}"
        found = finished_seconds(out).get(key)
        per, basis = (statistics.mean(found), f"the training time of {len(found)} run(s) of {key}") if found \
            else (None, f"no finished run of {tune_plan.model} on {tune_plan.dataset} to time from")
    final_todo = tune_plan.seeds_final if final_todo is None else final_todo
    todo = max(0, tune_plan.trials - done) + final_todo
    seconds = per * todo / max(1, parallel) if per is not None else None
    return Size(tune_plan.trials, done, min(len(stale), max(0, tune_plan.trials - done)), best,
                tune_plan.seeds_final, final_todo, parallel, seconds, basis)


def describe(s: Size, metric: str) -> str:
    head = f"{s.trials} trials ({s.done} done, {s.to_run} to run"
    if s.resumed:
        head += f", {s.resumed} of them resumed"
    head += ")"
    if s.best is not None:
        head += f", best so far valid {metric} {score(metric, s.best.value)} (trial {s.best.number})"
    head += f", then {s.seeds_final} final seed{'s' if s.seeds_final != 1 else ''}"
    if s.final_todo < s.seeds_final:
        head += f" ({s.seeds_final - s.final_todo} finished)"
    if not s.to_run and not s.final_todo:
        return f"{head}; nothing to train"
    if s.seconds is None:
        return f"{head}; no estimate ({s.basis})"
    at_once = f", {s.parallel} at a time" if s.parallel > 1 else ""
    return f"{head}; estimate at most {duration(s.seconds)}{at_once} (from {s.basis}; pruned trials end sooner)"


# --- The outputs -----------------------------------------------------------------------------

def _extends(source: Path, tune_dir: Path) -> str:
    """How best.yaml names the recipe it extends: a packaged recipe by its packaged name (found
    wherever merbench is installed), any other file by its path relative to the tune folder."""
    path = Path(source).resolve()
    try:
        return path.relative_to(PACKAGED).as_posix()
    except ValueError:
        return os.path.relpath(path, Path(tune_dir).resolve())


def _shown_path(path: str | Path) -> str:
    """A packaged file as ``packaged <name>`` (not the install's path), any other as given."""
    try:
        return f"packaged {Path(path).resolve().relative_to(PACKAGED).as_posix()}"
    except ValueError:
        return str(path)


def _nested(pairs: list) -> dict:
    out: dict = {}
    for key, value in pairs:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def best_yaml(tune_plan: TunePlan, result: studies.Search, best: studies.TrialRecord, command: list[str]) -> str:
    """The best trial as a recipe: ``extends`` the tuned recipe, the user's --set values and the
    trial's settings, with the study's provenance in comments."""
    info = tune_plan.info
    seconds = sum(t.seconds or 0 for t in result.trials)
    path = tune_plan.tune_dir / BEST
    lines = [
        f"# merbench train {path}",
        f"# The best trial of merbench tune: trial {best.number} of study {info['name']}, validation "
        f"{info['metric']} {best.value:.4f} ({info['direction']}).",
        f"# Budget: {result.count('complete', 'pruned', 'failed')} trials ({result.count('complete')} complete, "
        f"{result.count('pruned')} pruned, {result.count('failed')} failed), {seconds:.0f} s of trial time.",
        f"# Sampler {info['sampler']} (seed {info['seed']}), pruner {info['pruner']} (after {info['prune_after']} "
        f"trials), space {_shown_path(tune_plan.space.source)}, storage {studies.shown_url(info['url'])}.",
        f"# Command: {' '.join(command)}",
        f"# Written by merbench {__version__} at {utc_now()}; every trial: {TUNE_JSON} beside this file.",
        f"extends: {_extends(tune_plan.source, tune_plan.tune_dir)}",
    ]
    body = _nested(list(tune_plan.overrides) + [(k, best.params[k]) for k in best.params])
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False)


def manifest(tune_plan: TunePlan, result: studies.Search, command: list[str], final: list[str],
             wall_seconds: float) -> dict:
    best = result.best
    return {
        "schema_version": TUNE_SCHEMA,
        "kind": "tune",
        "command": command,
        "updated_utc": utc_now(),
        "model": tune_plan.model,
        "dataset": tune_plan.dataset,
        "recipe": str(tune_plan.source),
        "study": {**{k: v for k, v in tune_plan.info.items() if k != "url"},
                  "storage": studies.shown_url(tune_plan.info["url"])},
        "space": tune_plan.space.describe(),
        "space_source": tune_plan.space.source,
        "trials_requested": tune_plan.trials,
        "budget": {"trials": result.count("complete", "pruned", "failed"), "complete": result.count("complete"),
                   "pruned": result.count("pruned"), "failed": result.count("failed"),
                   "trial_seconds": round(sum(t.seconds or 0 for t in result.trials), 2),
                   "wall_seconds_last_command": round(wall_seconds, 2)},
        "best": best.as_dict() if best else None,
        "best_recipe": BEST if best else None,
        "final": {"seeds": tune_plan.final_seeds, "runs": final},
        "trials": [t.as_dict() for t in result.trials],
    }


def read_manifest(tune_dir: Path) -> dict:
    path = Path(tune_dir) / TUNE_JSON
    data = load_json(path, f"no tune manifest (is {tune_dir} a folder written by merbench tune?)")
    if not isinstance(data, dict) or data.get("schema_version") != TUNE_SCHEMA or data.get("kind") != "tune":
        raise MerbenchError(f"{path}: not a merbench tune manifest (expected schema_version {TUNE_SCHEMA})")
    return data


def status_line(tune_dir: Path) -> str | None:
    """The study of a tune folder in one line (``merbench grid status``): trials by state and the
    best, read live from ``study.db`` when the study is stored there, else from ``tune.json``."""
    path = Path(tune_dir) / TUNE_JSON
    if not path.is_file():
        return None
    manifest = read_manifest(tune_dir)
    study = manifest["study"]
    trials = [studies.TrialRecord(t["number"], t["state"], t["params"], t["value"], t.get("run"), t.get("seconds"),
                                  t.get("epochs")) for t in manifest["trials"]]
    source = "tune.json"
    if (Path(tune_dir) / studies.STUDY_DB).is_file():
        try:
            trials = studies.peek({"name": study["name"], "url": studies.storage_url(tune_dir, None)}, tune_dir, None)
            source = "live"
        except ImportError:  # no optuna here: what the last command wrote
            pass
    states = ", ".join(f"{sum(t.state == s for t in trials)} {s}" for s in ("complete", "pruned", "failed", "running"))
    complete = [t for t in trials if t.state == "complete"]
    best = ""
    if complete:
        b = (min if study["direction"] == "minimize" else max)(complete, key=lambda t: t.value)
        best = f"; best trial {b.number}, valid {study['metric']} {score(study['metric'], b.value)}"
    return (f"study {study['name']} ({source}): {len(trials)} of {manifest['trials_requested']} trials requested "
            f"({states}){best}")


def figures(tune_plan: TunePlan, result: studies.Search, history: Path) -> list[Path]:
    metric = tune_plan.info["metric"]
    points = [(t.number, t.value, t.state) for t in result.trials if t.value is not None]
    written = []
    if points:
        written.append(tune_history_plot(points, history, ylabel=f"validation {metric}",
                                         lower_is_better=tune_plan.info["direction"] == "minimize",
                                         title=f"{tune_plan.model} on {tune_plan.dataset}: study {tune_plan.info['name']}"))
    scores = studies.importances(result.study)
    if scores:
        written.append(importance_plot(scores, history.with_name(f"importance{history.suffix}"),
                                       title=f"{tune_plan.model} on {tune_plan.dataset}: parameter importance (fANOVA)"))
    return written


# --- The whole command -------------------------------------------------------------------------

@dataclass
class TuneOutcome:
    search: studies.Search
    best_recipe: Path | None
    final: GridRun | None
    figures: list[Path] = field(default_factory=list)


def final_todo(tune_plan: TunePlan, threads: int) -> int | None:
    """Final runs of the best.yaml there is now that are not finished (None: no best.yaml yet)."""
    path = tune_plan.tune_dir / BEST
    if not path.is_file() or not tune_plan.seeds_final:
        return None
    try:
        cells = final_cells(tune_plan, path, threads)
    except MerbenchError:
        return None  # a best.yaml edited by hand: the run rewrites it
    return sum(not run_folder.is_finished(tune_plan.tune_dir / c.run) for c in cells)


def final_cells(tune_plan: TunePlan, best_path: Path, threads: int):
    recipe, source = base_recipe(best_path, [("train.threads", threads)])
    return [make_cell(recipe, source, seed, {"model": tune_plan.model}) for seed in tune_plan.final_seeds]


def run(tune_plan: TunePlan, options: RunnerOptions, parallel: int, command: list[str], console,
        timeout_min: float | None = None, figure: Path | None = None, to_run: int = 0) -> TuneOutcome:
    """Search (resuming what is there), write tune.json, best.yaml and the figures, then train
    and read back the final seeds."""
    tune_dir = tune_plan.tune_dir
    with lock.hold(tune_dir):
        tune_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(tune_dir)
        # tune.json at once, so that merbench grid status finds the study while it runs
        before = studies.Search(None, studies.peek(tune_plan.info, tune_dir, tune_plan.storage),
                                tune_plan.info["direction"])
        write_json(tune_dir / TUNE_JSON, manifest(tune_plan, before, command, [], 0.0))
        ticker = Ticker(tune_plan, console, options.quiet, to_run)
        result = studies.search(tune_plan.info, tune_plan.raw, tune_plan.space, str(tune_plan.source), tune_dir,
                                tune_plan.trials, options, parallel, command, timeout_min, ticker)
        best = result.best
        best_path = None
        if best is not None:
            best_path = tune_dir / BEST
            atomic_write_text(best_path, best_yaml(tune_plan, result, best, command))
        drawn = figures(tune_plan, result, Path(figure) if figure else tune_dir / HISTORY)
        final = None
        cells = final_cells(tune_plan, best_path, options.threads) if best_path and tune_plan.seeds_final else []
        write_json(tune_dir / TUNE_JSON, manifest(tune_plan, result, command, [c.run for c in cells],
                                                  result.wall_seconds))
        if cells and not result.errors:
            final = run_grid(tune_dir, cells, "tune", command, options, console=console,
                             extra={"info": {"model": tune_plan.model, "dataset": tune_plan.dataset,
                                             "study": tune_plan.info["name"], "best_trial": best.number}})
    return TuneOutcome(result, best_path, final, drawn)


class Ticker:
    """One line per finished trial: done / to go, its score, the best so far, the time left."""

    def __init__(self, tune_plan: TunePlan, console, quiet: bool, total: int) -> None:
        import time

        self.metric, self.console, self.quiet = tune_plan.info["metric"], console, quiet
        self.total, self.done, self.started, self.clock = total, 0, time.perf_counter(), time.perf_counter

    def __call__(self, outcome: dict, best: tuple[int, float] | None) -> None:
        self.done += 1
        if self.console is None or (self.quiet and outcome["state"] != "error"):
            return
        value = "" if outcome.get("value") is None else f" valid {self.metric} {score(self.metric, outcome['value'])}"
        shown = f" (best {score(self.metric, best[1])}, trial {best[0]})" if best else ""
        took = f" {outcome['seconds']:.1f} s" if outcome.get("seconds") is not None else ""
        elapsed = self.clock() - self.started
        left = max(0, self.total - self.done)
        eta = f", ~{duration(elapsed / self.done * left)} left" if left else ""
        error = f": {outcome['error']}" if outcome["state"] in ("error", "failed") else ""
        self.console.print(f"trial {outcome['number']:<4} {outcome['state']:<8}{value}{shown}{took}  "
                           f"[{self.done} done, {left} to go, {duration(elapsed)}{eta}]  {outcome['run']}{error}",
                           soft_wrap=True)


def budget_text(budget: dict) -> str:
    """'8 trials (5 complete, 2 pruned, 1 failed), 4 min of trial time'."""
    return (f"{budget['trials']} trials ({budget['complete']} complete, {budget['pruned']} pruned, "
            f"{budget['failed']} failed), {duration(budget['trial_seconds'])} of trial time")


def final_table(tune_plan: TunePlan, result: studies.Search, final: GridRun):
    """The final seeds' test numbers in the dataset's paper layout, the study under it."""
    found = [final.result(c) for c in final.cells if final.result(c)]
    key, shared = group_key(found[0]["recipe"])
    table = results_table([Group(key, shared, found, failed=len(final.cells) - len(found))])
    table.title = "Tune: " + table.title
    best = result.best
    budget = manifest(tune_plan, result, [], [], 0.0)["budget"]
    table.notes += [
        f"{tune_plan.model}: {BEST} = trial {best.number} of study {tune_plan.info['name']} "
        f"(validation {tune_plan.info['metric']} {score(tune_plan.info['metric'], best.value)}); budget {budget_text(budget)}",
        f"test: {len(found)} seed(s) ({', '.join(map(str, tune_plan.final_seeds))}) of {BEST}; the search's seed "
        f"{tune_plan.base.train.seed} is left out and no trial scored the test split",
    ]
    return table
