"""The training loop, readable top to bottom: setup, the epoch loop (train, validate,
select & stop, checkpoint), finish. What it writes into the run folder is ``run_files``'.

AdamW or Adam (``train.optimizer``), ReduceLROnPlateau, gradient clipping and early stopping,
all driven by the validation split only: the epoch kept is the one with the best validation
score, and the test split is scored once, after training, with that epoch's weights. Every
epoch ends with an atomic checkpoint, so ``resume`` continues an interrupted run and ends with
the same numbers.

One writer per run folder: ``train`` holds the folder's lock (``merbench.lock``) from the
first look at the folder to the last write, and first removes what a killed writer left.
``force`` never deletes before it replaces: it trains into a hidden sibling folder and swaps
it in only when the new run finished ok.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from merbench import lock, run_files
from merbench import run_folder
from merbench.atomic import remove_temporaries
from merbench.data.batching import Batch, SplitTensors, split_tensors
from merbench.data.types import Corpus
from merbench.device import resolve_device
from merbench.errors import MerbenchError, Terminated
from merbench.evaluate import flat_outputs, predict, score
from merbench.metrics import LOSS, LOWER_IS_BETTER, USUAL, better, metric_names
from merbench.models.base import MerModel
from merbench.models.build import build_model, check_available, model_class
from merbench.predictions import Predictions
from merbench.recipe import Recipe, TrainOptions, as_recipe
from merbench.registry import DATASETS, closest
from merbench.results import atomic_write_text
from merbench.run_files import LoopState, save_checkpoint

log = logging.getLogger("merbench.train")

FRESH = ".force-"  # .<run>.force-<pid>: a --force retrain, swapped in when it finishes ok
REPLACED = ".replaced-"  # .<run>.replaced-<pid>: the run a --force retrain replaced, until deleted


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_corpus(recipe: Recipe | dict) -> Corpus:
    """Build the recipe's dataset and keep only its modalities, z-scored with the training
    split's statistics when ``train.standardize`` is on."""
    recipe = as_recipe(recipe)
    corpus = DATASETS.get(recipe.dataset.name)(**copy.deepcopy(recipe.dataset.args))
    wanted = list(recipe.dataset.modalities)
    missing = [m for m in wanted if m not in corpus.modalities]
    if missing:
        raise MerbenchError(
            f"dataset.modalities: {missing[0]!r} is not in dataset {corpus.name!r} "
            f"(it has {', '.join(corpus.modalities) or 'no features'})"
        )
    for warning in corpus.info.get("warnings", []):
        logging.getLogger("merbench").warning("%s", warning)
    corpus = corpus.select_modalities(wanted)
    return corpus.standardized() if recipe.train.standardize else corpus


def usual_metric(corpus: Corpus) -> str:
    """The corpus's usual validation metric: ``selection_metric: auto``, and always in metrics.csv."""
    return USUAL[corpus.task]


def selection_metric(cfg: TrainOptions, corpus: Corpus) -> str:
    """``train.selection_metric`` resolved for the corpus's task (checked here: the task is
    known only once the corpus is read)."""
    metric = cfg.selection_metric
    if metric == "auto":
        return usual_metric(corpus)
    # loss: the validation task loss (no aux losses), as MMSA's trainers select ("KeyEval": "Loss")
    valid = metric_names(corpus.task, corpus.label_names) + [LOSS.name]
    if metric not in valid:
        raise MerbenchError(f"train.selection_metric: {metric!r} is not a {corpus.task} metric"
                            f"{closest(metric, valid)}; valid: {', '.join(valid)}")
    return metric


def class_weights(corpus: Corpus) -> torch.Tensor:
    """Inverse class frequency on the training split, normalised to mean 1."""
    counts = np.array(list(corpus.class_counts("train").values()), dtype=np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0)
    return torch.tensor(weights / weights[counts > 0].mean(), dtype=torch.float32)


def _loss(regression: bool, outputs: torch.Tensor, labels: torch.Tensor, values: torch.Tensor,
          weights: torch.Tensor | None) -> torch.Tensor:
    """The task loss over real utterances, outputs ``(N, C)`` (regression: ``(N, 1)`` or ``(N,)``)."""
    if regression:
        keep = ~torch.isnan(values)
        return torch.nn.functional.l1_loss(outputs.reshape(-1)[keep], values[keep])  # MMSA: L1
    return torch.nn.functional.cross_entropy(outputs, labels, weight=weights, ignore_index=-1)


def task_loss(corpus: Corpus, batch: Batch, logits: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    logits, labels, values, _ = flat_outputs(batch, logits)  # (N, C), (N,), (N,)
    return _loss(corpus.task == "regression", logits, labels, values, weights)


def prediction_loss(corpus: Corpus, preds: Predictions, weights: torch.Tensor | None) -> float:
    """``task_loss`` of saved predictions (no aux losses): the validation loss of an epoch."""
    regression = corpus.task == "regression"
    if regression and np.isnan(preds.values).all():
        return float("nan")
    return float(_loss(regression, torch.from_numpy(preds.outputs).float(), torch.from_numpy(preds.labels).long(),
                       torch.from_numpy(preds.values).float(), None if weights is None else weights.cpu()))


def build_optimizer(cfg: TrainOptions, parameters) -> torch.optim.Optimizer:
    """``train.optimizer``: ``adamw`` decays the weights apart from the gradient (decoupled);
    ``adam`` adds ``weight_decay * w`` to the gradient (L2, as torch.optim.Adam and the
    baselines' authors' code)."""
    kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return kind(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)


# last.pt (everything a resume needs) is written after an epoch once this many seconds have
# passed since it was last written, and after the epoch the run stops at: a run of short epochs
# does not pay a full write per epoch (58 MB for TFN on MOSEI, 0.1 s of a 2.7 s epoch), and a
# kill loses at most this much training. A resume from an older epoch ends with the same numbers.
# MERBENCH_CHECKPOINT_EVERY_S overrides it (0: every epoch), e.g. on a partition whose jobs are
# often preempted or requeued; it reaches grid workers and Slurm jobs through the environment.
CHECKPOINT_ENV = "MERBENCH_CHECKPOINT_EVERY_S"


def _checkpoint_every(default: float = 30.0) -> float:
    text = os.environ.get(CHECKPOINT_ENV, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise MerbenchError(f"{CHECKPOINT_ENV}={text}: expected seconds between checkpoints, 0 or more")
    return seconds


LAST_EVERY_S = _checkpoint_every()


def _stops(state: LoopState, cfg: TrainOptions) -> bool:
    """The run ends after this epoch: the last one, or ``patience`` epochs without a better one."""
    return state.epoch >= cfg.max_epochs or state.bad_epochs >= cfg.patience


def prepare_run_dir(run_dir: Path, recipe: Recipe, resume: bool) -> Path:
    if (run_dir / run_folder.LAST).exists() and not resume:
        raise MerbenchError(f"{run_dir}: holds an interrupted run; pass --resume to continue it "
                            f"or --force to start over")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / run_folder.RECIPE, yaml.safe_dump(recipe.as_dict(), sort_keys=False))
    return run_dir


def train(recipe: Recipe | dict, out: Path, *, resume: bool = False, force: bool = False, progress: bool = True,
          command: list[str] | None = None, corpus: Corpus | None = None, name: str | None = None,
          keep_last: bool = False, on_epoch: Callable[[int, dict], None] | None = None) -> Path:
    """Train one model on one dataset; returns the run folder holding result.json.

    A finished run of the same recipe, seed, code and data is reused as it is unless ``force``.
    ``force`` trains into a fresh hidden sibling and swaps it in only when it finished ok: a
    killed or failed retrain leaves the old run intact (a failed retrain's folder is returned,
    and kept until the next train of this run). ``name`` overrides the run folder's name (grids
    pass the name they planned). ``last.pt`` is deleted when the run ends unless ``keep_last``.
    A ``Recipe`` is used as it was checked; a mapping (a grid cell's) is validated first.
    ``on_epoch(epoch, valid_scores)`` is called after each epoch's checkpoint (``merbench tune``
    reports to its pruner there); an exception it raises stops the run as a kill would.
    """
    if resume and force:
        raise MerbenchError("--resume and --force: choose one (--resume continues an interrupted "
                            "run, --force trains again from the start)")
    recipe = as_recipe(recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MerbenchError(f"{out}: --out is a file; expected a folder that holds run folders")
    check_available(recipe.model.name)  # a missing optional library: before any work
    device = resolve_device(recipe.train.device, "train.device")
    run_dir = out / (name or run_folder.run_name(recipe.data))
    with lock.hold(run_dir):
        _tidy(run_dir)
        if run_folder.is_finished(run_dir) and not force:
            # Same recipe, seed, code and data: the finished run is the answer; never overwritten.
            log.info("reusing finished run %s", run_dir)
            return run_dir
        _check_writable(run_dir)
        target = run_dir.parent / f".{run_dir.name}{FRESH}{os.getpid()}" if force else run_dir
        threads = torch.get_num_threads()
        try:
            if recipe.train.threads:
                torch.set_num_threads(recipe.train.threads)
            seed_everything(recipe.train.seed)
            corpus = corpus if corpus is not None else load_corpus(recipe)
            metric = selection_metric(recipe.train, corpus)
            prepare_run_dir(target, recipe, resume)
            handler = run_files.open_log(target)
            try:
                _train(recipe, corpus, metric, target, device, resume=resume, progress=progress,
                       command=command, keep_last=keep_last, on_epoch=on_epoch)
            finally:
                run_files.close_log(handler)
        finally:
            torch.set_num_threads(threads)
        if target != run_dir and run_folder.is_finished(target):
            _swap_in(target, run_dir)
            return run_dir
        return target


def _tidy(run_dir: Path) -> None:
    """Remove what a killed writer of this run left: temporary files, a --force attempt, and
    the halves of a swap cut between its two renames (the old run then comes back)."""
    parent = run_dir.parent
    for old in sorted(parent.glob(f".{run_dir.name}{REPLACED}*")):
        if run_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(old, run_dir)
    for fresh in parent.glob(f".{run_dir.name}{FRESH}*"):
        shutil.rmtree(fresh, ignore_errors=True)
    remove_temporaries(run_dir, recursive=True)


def _check_writable(run_dir: Path) -> None:
    """Tried, not read from the mode bits: root, read-only mounts and immutable folders differ."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.is_dir():
            try:
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as e:
                raise MerbenchError(f"{folder}: not writable ({e.strerror}), so this run can be neither "
                                    f"resumed nor replaced here; nothing was changed") from None


def _swap_in(fresh: Path, run_dir: Path) -> None:
    """``fresh`` takes ``run_dir``'s place; the old folder is deleted only after."""
    old = run_dir.parent / f".{run_dir.name}{REPLACED}{os.getpid()}"
    if run_dir.exists():
        os.rename(run_dir, old)
    os.rename(fresh, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def _train(recipe: Recipe, corpus: Corpus, metric: str, run_dir: Path, device: torch.device, *,
           resume: bool, progress: bool, command: list[str] | None, keep_last: bool,
           on_epoch: Callable[[int, dict], None] | None = None) -> None:
    cfg = recipe.train
    # --- setup: the model, the splits, the optimiser and its schedule (a resume restores them)
    model = build_model(recipe.model.name, corpus.dims, run_files.num_outputs(corpus), **recipe.model.args).to(device)
    splits = _split_tensors(corpus, model_class(recipe.model.name).inputs == "frames")
    weights = class_weights(corpus).to(device) if cfg.class_weights and corpus.task != "regression" else None
    optimizer = build_optimizer(cfg, model.parameters())
    # ReduceLROnPlateau follows the selection metric, or (``lr_schedule_on: loss``) the
    # validation task loss, as COGMEN's authors do.
    schedule_on = metric if cfg.lr_schedule_on == "selection" else "loss"
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min" if schedule_on in LOWER_IS_BETTER else "max",
        factor=cfg.lr_factor, patience=cfg.lr_patience)
    batch_size = cfg.batch_size if model.level == "utterance" else cfg.dialogue_batch_size
    # metrics.csv: the selection metric, the corpus's usual one (WF1 / MAE), the task loss
    shown = list(dict.fromkeys([metric, usual_metric(corpus)]))
    state = LoopState()
    if resume and (run_dir / run_folder.LAST).exists():
        state = run_files.resume(run_dir, model, optimizer, scheduler)
    started, before = time.perf_counter(), state.seconds
    saved = started  # when last.pt was last written (LAST_EVERY_S)
    failed = None

    with _progress(progress) as bar, _stop_on_sigterm() as terminated:
        task = bar.add_task(f"{recipe.model.name} on {corpus.name}", total=cfg.max_epochs,
                            completed=state.epoch, loss=float("nan"), rate=0.0) if bar else None
        while not _stops(state, cfg):
            epoch = state.epoch + 1
            # --- train: one pass over the training split, in an order fixed by (seed, epoch)
            train_loss, rate, failed = _train_epoch(model, splits["train"], corpus, cfg, optimizer, weights,
                                                    batch_size, epoch, device)
            if failed:
                break
            # --- validate: every metric of the validation split, and its task loss
            valid = _validate(model, splits["valid"], corpus, weights, device)
            value = valid[metric]
            if not np.isfinite(value):
                failed = f"non-finite validation {metric} at epoch {epoch}"
                break
            scheduler.step(valid[schedule_on])
            # --- select & stop: keep the best epoch on validation; count epochs without one
            if better(metric, value, state.best):
                state.best, state.best_epoch, state.bad_epochs = value, epoch, 0
                run_files.save_best(run_dir, model, epoch)
            else:
                state.bad_epochs += 1
            state.epoch, state.seconds = epoch, before + time.perf_counter() - started
            run_files.add_epoch(run_dir, state, run_files.history_row(
                epoch, train_loss, valid, shown, optimizer.param_groups[0]["lr"], rate))
            # --- checkpoint: last.pt for a resume, every LAST_EVERY_S, after the last epoch and
            # when a SIGTERM came during the epoch (then the run stops here)
            if _stops(state, cfg) or terminated.is_set() or time.perf_counter() - saved >= LAST_EVERY_S:
                save_checkpoint(run_dir / run_folder.LAST, run_files.last_state(model, optimizer, scheduler, state))
                saved = time.perf_counter()
            log.info("epoch %d loss %.4f valid %s %.2f (%.0f utt/s)", epoch, train_loss, metric, value, rate)
            if bar:
                bar.update(task, advance=1, loss=train_loss, rate=rate)
            if on_epoch is not None:  # the caller's hook (merbench tune's pruner); it may raise to stop
                on_epoch(epoch, valid)
            if terminated.is_set() and not _stops(state, cfg):
                log.info("SIGTERM: stopped after epoch %d, last.pt written", epoch)
                raise Terminated(f"{run_dir}: stopped by SIGTERM after epoch {epoch} of {cfg.max_epochs}; "
                                 f"{run_folder.LAST} holds it (merbench train --resume, or the grid command "
                                 f"run again, goes on from there)")

    # --- finish: score the best epoch's weights, write predictions and result.json ----------
    seconds = before + time.perf_counter() - started
    metrics: dict = {}
    if failed:
        log.info("run failed: %s", failed)
    else:
        run_files.load_best(run_dir, model)
        metrics, arrays = _score_splits(model, splits, corpus, recipe.eval.splits, device)
        run_files.save_predictions(run_dir, arrays)
    run_files.result_record(recipe, corpus, model, state, metric=metric, device=device, splits=list(splits),
                            seconds=seconds, metrics=metrics, error=failed, command=command).write(run_dir)
    if not keep_last:
        (run_dir / run_folder.LAST).unlink(missing_ok=True)  # the run ended: nothing resumes from it


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """While the epochs run, a SIGTERM sets the event instead of killing the process: the loop
    finishes the epoch in hand, writes last.pt and raises :class:`Terminated`. Slurm sends
    SIGTERM before its SIGKILL on ``scancel``, a requeue or a time limit (KillWait, 30 s by
    default; an epoch of merbench's models takes seconds), so a resumed run loses no epoch. The
    previous handler (Python's default, or submitit's) is back once the epochs are done.
    Nothing changes off the main thread (signals reach only it) nor in a process that
    multiprocessing started (a ``--jobs N`` worker): its pool ends it with SIGTERM, at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread() or multiprocessing.parent_process() is not None:
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _split_tensors(corpus: Corpus, frames: bool) -> dict[str, SplitTensors]:
    splits = {s: split_tensors(corpus, s, frames) for s in corpus.split_names()}
    if "train" not in splits or "valid" not in splits:
        raise MerbenchError(f"dataset {corpus.name!r}: needs a train and a valid split for model selection "
                            f"(has {', '.join(splits)})")
    return splits


def _train_epoch(model: MerModel, split: SplitTensors, corpus: Corpus, cfg: TrainOptions,
                 optimizer: torch.optim.Optimizer, weights: torch.Tensor | None, batch_size: int, epoch: int,
                 device: torch.device) -> tuple[float, float, str | None]:
    """One pass over the training split: (mean loss per utterance, utterances per second,
    why the run failed or None). The task loss plus every aux loss the model returns, each
    weighed by ``train.aux_weights``; ``train.input_dropout`` drops input features first."""
    model.train()
    # The shuffle order depends only on (seed, epoch), so a resumed run sees the same order.
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    total, seen, t0 = 0.0, 0, time.perf_counter()
    for batch in split.batches(model.level, batch_size, gen):
        batch = batch.to(device)
        if cfg.input_dropout > 0:
            batch = batch.with_features({m: F.dropout(x, cfg.input_dropout) for m, x in batch.features.items()})
        out = model(batch)
        loss = task_loss(corpus, batch, out.logits, weights)
        for name, value in out.aux_loss.items():
            loss = loss + cfg.aux_weight(name) * value
        if not torch.isfinite(loss):
            return float("nan"), 0.0, f"non-finite training loss at epoch {epoch}"
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        n = int(batch.labels.numel() if batch.utt_mask is None else batch.utt_mask.sum())
        total, seen = total + loss.item() * n, seen + n
    return total / max(seen, 1), seen / max(time.perf_counter() - t0, 1e-9), None


def _validate(model: MerModel, split: SplitTensors, corpus: Corpus, weights: torch.Tensor | None,
              device: torch.device) -> dict[str, float]:
    """Every metric of the validation split, and its task loss (``loss``, no aux losses)."""
    preds = predict(model, split, device)
    return {**score(corpus, preds), "loss": prediction_loss(corpus, preds, weights)}


def _score_splits(model: MerModel, splits: dict[str, SplitTensors], corpus: Corpus, wanted,
                  device: torch.device) -> tuple[dict, dict[str, np.ndarray]]:
    """Every metric of the ``eval.splits`` (and valid) the corpus has, and their predictions."""
    metrics, arrays = {}, {}
    for split in sorted(set(wanted) | {"valid"}):
        if split in splits:
            preds = predict(model, splits[split], device)
            metrics[split] = score(corpus, preds)
            arrays.update({f"{split}_{k}": getattr(preds, k) for k in ("index", "labels", "values", "outputs")})
    return metrics, arrays


def _progress(enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} utt/s"),
                    TimeElapsedColumn(), transient=False, console=Console(stderr=True))
