"""Train one trial of a study, in whatever process the runner chose; never raises for a failed run.

``run_trial`` is to ``merbench tune`` what ``grid.worker.run_cell`` is to the grids: it holds
the trial's run-folder lock, writes ``running.json`` while it trains, resumes an interrupted
run from its checkpoint, and records an error in ``error.txt``. It adds two things:

- the test split is withheld: the corpus handed to ``train`` has no test dialogues at all,
  and the trial's recipe scores the validation split only, so nothing a search decides can
  depend on test data;
- after every epoch the validation score is reported to the study (its shared storage), and
  the study's pruner may stop the trial there (``pruned.json`` records where).

A run folder already finished (an earlier trial with the same settings, or this trial before a
kill) is not trained again: its per-epoch scores are reported and its result returned.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from merbench import lock
from merbench import run_folder
from merbench.data.types import Corpus
from merbench.errors import MerbenchError, Terminated
from merbench.grid.manifest import ERROR, RUNNING
from merbench.grid.worker import limit_threads, one_line, previous_status, running_record, watch_grid
from merbench.recipe import validate
from merbench.results import Result, atomic_write_text, read_result, utc_now, write_json
from merbench.tuning.storage import load_study

PRUNED = "pruned.json"  # in a pruned trial's folder: the epoch it stopped at and its score


def without_test(corpus: Corpus) -> Corpus:
    """The corpus with its test dialogues removed (a search never sees them)."""
    kept = [d for d in corpus.dialogues if d.split != "test"]
    return Corpus(corpus.name, corpus.task, corpus.label_names, kept, corpus.protocol,
                  {**corpus.info, "test_split": "withheld (a trial of merbench tune)"})


class Reporter:
    """The epoch hook of ``train``: reports each epoch's validation score to the trial and
    raises ``optuna.TrialPruned`` when the study's pruner says stop."""

    def __init__(self, study_info: dict, trial_number: int) -> None:
        # optional: optuna (merbench[tune]), in a trial's process only
        import optuna

        self.metric = study_info["metric"]
        self.study = load_study(study_info)
        frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == trial_number)
        self.trial = optuna.trial.Trial(self.study, frozen._trial_id)  # the public Trial of a known trial
        self.reported = set(frozen.intermediate_values)  # a resumed trial reported these already
        self.pruned_at: tuple[int, float] | None = None

    def report(self, epoch: int, value: float) -> None:
        if epoch not in self.reported:
            self.trial.report(float(value), epoch)
            self.reported.add(epoch)

    def __call__(self, epoch: int, valid: dict) -> None:
        import optuna

        self.report(epoch, valid[self.metric])
        if self.trial.should_prune():
            self.pruned_at = (epoch, float(valid[self.metric]))
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    def report_history(self, result: Result) -> None:
        """A finished run's per-epoch scores (an earlier trial trained it)."""
        key = "valid_loss" if self.metric == "loss" else f"valid_{self.metric}"
        for row in result.history:
            if key in row:
                self.report(int(row["epoch"]), float(row[key]))


def run_trial(recipe: dict, tune_dir: str, threads: int, command: list[str], run: str, study_info: dict,
              trial_number: int, grid_pid: int | None = None) -> dict:
    """Train (or resume, or reuse) one trial; returns ``{run, number, state, value, error,
    user_error, seconds, epochs}`` with ``state`` one of complete, pruned, failed (the run
    ended with a NaN: a result of its settings) or error (it raised: tried again next time)."""
    if grid_pid is not None:
        watch_grid(grid_pid)
    limit_threads(threads)
    started = time.perf_counter()
    try:
        with lock.hold(Path(tune_dir) / run):
            outcome = _run_trial(recipe, Path(tune_dir), command, run, study_info, trial_number)
    except lock.LockHeld as e:  # another live process trains this folder: leave it to that one
        outcome = {"state": "error", "error": one_line(e)}
    return {"run": run, "number": trial_number, "value": None, "error": None, "user_error": False, "epochs": None,
            **outcome, "seconds": round(time.perf_counter() - started, 2)}


def _run_trial(recipe: dict, tune_dir: Path, command: list[str], run: str, study_info: dict,
               trial_number: int) -> dict:
    # optional: optuna (merbench[tune]); start-up: torch only in the process that trains
    import optuna

    from merbench.train import load_corpus, train

    run_dir = tune_dir / run
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).unlink(missing_ok=True)
    marker = run_dir / RUNNING
    write_json(marker, running_record(trial=trial_number))
    reporter = None
    try:
        reporter = Reporter(study_info, trial_number)
        if not run_folder.is_finished(run_dir):
            if previous_status(run_dir) == "failed":
                (run_dir / run_folder.LAST).unlink(missing_ok=True)  # a failed run's checkpoint resumes nothing
            (run_dir / PRUNED).unlink(missing_ok=True)
            typed = validate(recipe, f"trial {trial_number} ({run}): recipe")  # once, for the corpus and the loop
            corpus = without_test(load_corpus(typed))
            train(typed, tune_dir, resume=(run_dir / run_folder.LAST).exists(), progress=False, command=command,
                  name=run, corpus=corpus, on_epoch=reporter)
        result = read_result(run_dir)
        if "test" in result.metrics:  # never expected: the trial's recipe does not score it
            raise RuntimeError(f"{run_dir}: a trial scored the test split")
        reporter.report_history(result)
        epochs = result.selection.epochs_run
        if not result.ok:
            return {"state": "failed", "error": result.error or "the run failed", "epochs": epochs}
        return {"state": "complete", "value": result.selection.best_value, "epochs": epochs}
    except optuna.TrialPruned:
        epoch, value = reporter.pruned_at
        (run_dir / run_folder.LAST).unlink(missing_ok=True)  # the study never resumes a pruned trial
        write_json(run_dir / PRUNED, {"epoch": epoch, "value": value, "metric": study_info["metric"],
                                      "created_utc": utc_now()})
        return {"state": "pruned", "value": value, "epochs": epoch}
    except Terminated as e:  # SIGTERM: recorded, then the job stops as a killed one would (resumed next time)
        atomic_write_text(run_dir / ERROR, f"{one_line(e)}\n")
        raise
    except Exception as e:  # any failure of one trial is recorded; the study decides what follows
        error = one_line(e)
        atomic_write_text(run_dir / ERROR, f"{error}\n\n{traceback.format_exc()}")
        return {"state": "error", "error": error, "user_error": isinstance(e, MerbenchError)}
    finally:
        marker.unlink(missing_ok=True)
