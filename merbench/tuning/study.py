"""The study: Optuna asks for settings, merbench trains them as ordinary runs, Optuna is told.

This process owns the study (ask and tell); trials train where the runner puts them (this
process, ``--jobs N`` local processes, or submitit jobs), each reporting its per-epoch
validation scores to the study's storage, where the median pruner reads them. The storage is
a SQLite file in the tune folder unless ``--storage`` names another database Optuna accepts
(PostgreSQL for jobs on many machines); whatever is in it survives the process, so:

- a trial Optuna was told about is never trained again: a rerun asks only for the trials
  still missing from ``--trials``;
- a trial left running by a killed command (or whose training raised) is resumed by the
  next command with its own settings, from its run folder's checkpoint;
- two trials with the same settings share one run folder (its name is the run identity),
  so the second reuses the first's result.

Samplers are seeded per trial (the study's ``--seed`` and the trial's number), so a study
that was killed and resumed asks for the same settings as one that was not; with one trial
at a time the whole study repeats exactly for the same seed.

One ``merbench tune`` process per study (the tune folder's lock says so): a trial it finds
running in the storage was left by a command that is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor, wait, FIRST_COMPLETED
from dataclasses import dataclass, field
from pathlib import Path

from merbench import run_folder
from merbench.errors import MerbenchError, one_line
from merbench.grid import RunnerOptions
from merbench.grid.runners import POLL_S, lost_job, make_executor
from merbench.grid.worker import as_job, start_worker
from merbench.metrics import LOWER_IS_BETTER
from merbench.recipe import Recipe, apply_overrides, validate
from merbench.tuning.space import Space
from merbench.tuning.storage import (  # noqa: F401 (the study's storage, from its own module)
    STUDY_DB, load_study, make_pruner, make_sampler, open_storage, shown_url, storage_url,
)
from merbench.tuning.worker import run_trial
from merbench.registry import DATASETS

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
DONE = ("COMPLETE", "PRUNED", "FAIL")  # trials that count against --trials


def objective_of(recipe: Recipe) -> tuple[str, str]:
    """(metric, direction): the validation metric the recipe selects its epoch by."""
    # start-up: torch only where a study reads its corpus
    from merbench.train import load_corpus, usual_metric

    metric = recipe.train.selection_metric
    if metric == "auto":
        task = DATASETS.entry(recipe.dataset.name).meta.get("task")
        if task == "classification":
            metric = "wf1"
        elif task == "regression":
            metric = "mae"
        else:  # a dataset whose task depends on its arguments (mosi): ask the corpus
            metric = usual_metric(load_corpus(recipe))
    return metric, "minimize" if metric in LOWER_IS_BETTER else "maximize"


def study_name(model: str, dataset: str, identity: dict) -> str:
    """``<model>-<dataset>-<hash>``: the hash covers the base recipe, the space, the sampler and
    its seed, and the pruner, so changing any of them starts another study (the old one stays
    in the storage); --trials, --jobs and --seeds-final leave it the same."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{model}-{dataset}-{digest}"


def search_splits(recipe: Recipe) -> list[str]:
    """What a trial scores: the recipe's splits without test, with valid."""
    return [s for s in ("train", "valid") if s == "valid" or s in recipe.eval.splits]


def trial_recipe(raw: dict, space: Space, trial, source: str) -> tuple[dict, dict]:
    """The validated recipe of ``trial`` (an optuna.Trial) and its settings."""
    params = {p.key: p.suggest(trial) for p in space.params}
    resolved = validate(raw, source)
    pairs = list(params.items()) + [("eval.splits", search_splits(resolved))]
    return validate(apply_overrides(raw, pairs), f"{source} (trial {trial.number})").as_dict(), params


@dataclass
class TrialRecord:
    number: int
    state: str  # complete | pruned | failed | running | waiting
    params: dict
    value: float | None
    run: str | None
    seconds: float | None
    epochs: int | None
    error: str | None = None

    @classmethod
    def of(cls, t) -> "TrialRecord":
        """From an optuna FrozenTrial."""
        value = t.value
        if t.state.name == "PRUNED" and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        return cls(t.number, t.state.name.lower().replace("fail", "failed"), dict(t.params), value,
                   t.user_attrs.get("run"), t.user_attrs.get("seconds"), t.user_attrs.get("epochs"),
                   t.user_attrs.get("error"))

    def as_dict(self) -> dict:
        return {"number": self.number, "state": self.state, "value": self.value, "params": self.params,
                "run": self.run, "seconds": self.seconds, "epochs": self.epochs,
                **({"error": self.error} if self.error else {})}


@dataclass
class Search:
    """What one command did to a study, and the study as it stands after it."""

    study: object  # optuna.Study (None: trials read back without opening the study)
    trials: list[TrialRecord]
    direction: str = "maximize"
    trained: list[int] = field(default_factory=list)  # trial numbers run (or tried) by this command
    errors: dict[int, str] = field(default_factory=dict)  # trial -> one-line error (left to resume)
    wall_seconds: float = 0.0
    timed_out: int = 0  # trials not started because --timeout passed

    @property
    def best(self) -> TrialRecord | None:
        """The best complete trial (the lowest number among equals)."""
        complete = [t for t in self.trials if t.state == "complete"]
        if not complete:
            return None
        if self.direction == "minimize":
            return min(complete, key=lambda t: (t.value, t.number))
        return max(complete, key=lambda t: (t.value, -t.number))

    def count(self, *states: str) -> int:
        return sum(t.state in states for t in self.trials)


def records(study) -> list[TrialRecord]:
    return [TrialRecord.of(t) for t in study.get_trials(deepcopy=False)]


def counts(trials: list[TrialRecord]) -> tuple[int, list[TrialRecord]]:
    """(trials done, trials left running by an earlier command)."""
    done = sum(t.state in ("complete", "pruned", "failed") for t in trials)
    return done, [t for t in trials if t.state == "running"]


class Dispatch:
    """Start trials where the runner options say; each start returns a future (done(), result())."""

    def __init__(self, tune_dir: Path, options: RunnerOptions, parallel: int) -> None:
        self.options, self.pool, self.executor = options, None, None
        if options.launcher is not None:
            self.executor = make_executor(tune_dir, options)
            self.poll = POLL_S[options.launcher]
        elif parallel > 1:
            import multiprocessing

            # spawn, not fork: a forked child would inherit the parent's torch thread pools.
            self.pool = ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=start_worker, initargs=(options.threads, os.getpid()))

    def start(self, *args):
        if self.executor is not None:
            grid_pid = os.getpid() if self.options.launcher == "local" else None  # a local job ends with us
            return self.executor.submit(as_job, run_trial, *args, grid_pid)
        if self.pool is not None:
            return self.pool.submit(run_trial, *args)
        future: Future = Future()  # serial: train here, now
        import torch

        threads = torch.get_num_threads()
        try:
            future.set_result(run_trial(*args))
        except Exception as e:
            future.set_exception(e)
        finally:
            torch.set_num_threads(threads)
        return future

    def wait(self, futures: list) -> None:
        if self.pool is not None:
            wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
        elif self.executor is not None and not any(f.done() for f in futures):
            time.sleep(self.poll)

    def cancel(self, futures: list) -> None:
        if self.executor is not None:
            for job in futures:  # jobs left behind would train beside the next command
                job.cancel(check=False)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def search(info: dict, raw: dict, space: Space, source: str, tune_dir: Path, trials: int,
           options: RunnerOptions, parallel: int, command: list[str], timeout_min: float | None,
           progress=None) -> Search:
    """Run the study until ``trials`` trials are done (complete, pruned or failed), resuming
    trials left running first. ``progress(record, best)`` is called as each trial ends."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(info["url"]), study_name=info["name"],
                                direction=info["direction"], load_if_exists=True,
                                pruner=make_pruner(info["pruner"], info["prune_after"]))
    for key in ("model", "dataset", "metric", "sampler", "seed"):
        study.set_user_attr(key, info[key])
    done, stale = counts(records(study))
    left = max(0, trials - done)
    resume = [t.number for t in stale][:left]
    to_ask = left - len(resume)
    out = Search(study, [], info["direction"])
    deadline = time.monotonic() + timeout_min * 60 if timeout_min else None
    started = time.perf_counter()
    in_flight: dict = {}  # future -> (trial number, run folder)
    waiting: list = []  # (trial number, recipe, run) whose folder another trial in flight trains
    stop_error: str | None = None
    dispatch = Dispatch(tune_dir, options, parallel)

    def start(number: int, recipe: dict, run: str) -> None:
        if any(r == run for _, r in in_flight.values()):
            waiting.append((number, recipe, run))  # the same settings: it reuses that folder when done
            return
        out.trained.append(number)
        in_flight[dispatch.start(recipe, str(tune_dir), options.threads, command, run, info, number)] = (number, run)

    try:
        while True:
            while len(in_flight) < parallel and not stop_error and (resume or to_ask or waiting):
                if waiting and not any(r == waiting[0][2] for _, r in in_flight.values()):
                    start(*waiting.pop(0))
                    continue
                if not (resume or to_ask):
                    break
                if deadline is not None and time.monotonic() > deadline:
                    out.timed_out, resume, to_ask = len(resume) + to_ask, [], 0
                    break
                if resume:
                    number = resume.pop(0)
                    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
                    trial = optuna.trial.Trial(study, frozen._trial_id)  # its settings come back from storage
                else:
                    trial = study.ask()
                    to_ask -= 1
                study.sampler = make_sampler(info["sampler"], info["seed"], trial.number, parallel)
                recipe, _ = trial_recipe(raw, space, trial, source)
                run = run_folder.run_name(recipe)
                trial.set_user_attr("run", run)
                start(trial.number, recipe, run)
            if not in_flight:
                break
            dispatch.wait(list(in_flight))
            for future in [f for f in in_flight if f.done()]:
                number, run = in_flight.pop(future)
                try:
                    outcome = future.result()
                except Exception as e:  # the worker itself died (killed, out of memory, a lost job)
                    outcome = {"state": "error", "error": lost_job(e), "run": run,
                               "number": number, "seconds": None, "epochs": None, "value": None}
                _tell(study, outcome)
                if outcome["state"] == "error":
                    out.errors[number] = outcome["error"]
                    if outcome.get("user_error"):
                        stop_error = f"{outcome['error']} (in trial {number}; the study stopped: fix it and run " \
                                     f"the command again)"
                if progress is not None:
                    progress(outcome, _best(study))
    except KeyboardInterrupt:
        dispatch.cancel(list(in_flight))
        raise
    finally:
        dispatch.close()
    out.wall_seconds = time.perf_counter() - started
    out.trials = records(study)
    for t in out.trials:
        if t.number in out.errors and t.state == "running":
            t.error = out.errors[t.number]
    if stop_error:
        raise MerbenchError(stop_error)
    return out


def _tell(study, outcome: dict) -> None:
    """Record a finished trial in the study (an errored one stays running: resumed next time)."""
    from optuna.trial import TrialState

    state = outcome["state"]
    if state == "error":
        return
    import optuna

    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == outcome["number"])
    trial = optuna.trial.Trial(study, frozen._trial_id)
    for key in ("seconds", "epochs"):
        if outcome.get(key) is not None:
            trial.set_user_attr(key, outcome[key])
    if state == "complete":
        study.tell(outcome["number"], outcome["value"])
    elif state == "pruned":
        study.tell(outcome["number"], state=TrialState.PRUNED)
    else:
        trial.set_user_attr("error", outcome["error"])
        study.tell(outcome["number"], state=TrialState.FAIL)


def _best(study) -> tuple[int, float] | None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial.number, study.best_value


def peek(info: dict, tune_dir: Path, storage: str | None) -> list[TrialRecord]:
    """The study's trials for sizing, creating nothing: none when it does not exist yet."""
    import optuna

    if storage is None and not (Path(tune_dir) / STUDY_DB).exists():
        return []
    if not _has_studies(info["url"]):
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=info["name"], storage=open_storage(info["url"], create=False))
    except KeyError:  # no study of that name in the storage yet
        return []
    return records(study)


def _has_studies(url: str) -> bool:
    """Whether the database at ``url`` holds Optuna's tables, without creating anything (an
    SQLite file that does not exist is not created); one line when it cannot be opened."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
            return False
        engine = create_engine(url)
        try:
            return inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except Exception as e:  # a bad URL, a missing driver, a server that does not answer
        raise MerbenchError(f"--storage {shown_url(url)}: cannot be opened ({one_line(str(e) or type(e).__name__)})"
                            ) from None


def importances(study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) of the complete trials; {} when too few."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({json.dumps(t.params, sort_keys=True) for t in complete}) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))
    except (RuntimeError, ValueError):  # e.g. every complete trial has the same score
        return {}
