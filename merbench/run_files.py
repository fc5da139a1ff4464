"""What a training run writes into its folder, so the training loop only calls it.

``checkpoints/best.pt`` (the weights of the best epoch on validation), ``checkpoints/last.pt``
(everything a resume needs), ``metrics.csv`` (one row per epoch), ``train.log``,
``predictions.npz`` (every scored split, best weights) and ``result.json`` (its record,
``merbench.results.Result``, built by ``result_record``). Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from merbench import run_folder
from merbench.atomic import atomic_open
from merbench.data.types import Corpus
from merbench.errors import MerbenchError
from merbench.checkpoints import load_checkpoint
from merbench.models.base import MerModel
from merbench.models.build import built_components, model_defaults
from merbench.plugins import plugin_of
from merbench.recipe import Recipe, recipe_hash
from merbench.results import (DatasetInfo, ModelInfo, Result, Selection, atomic_write_text, provenance,
                              utc_now)

log = logging.getLogger("merbench.train")


@dataclass
class LoopState:
    """Where the epoch loop stands; saved in ``last.pt`` so a resume continues from it."""

    epoch: int = 0  # epochs finished
    best: float | None = None  # the best validation score so far
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best one
    history: list[dict] = field(default_factory=list)  # metrics.csv's rows
    seconds: float = 0.0  # training time of the segments before this one (a resume adds them up)


# --- Checkpoints ---------------------------------------------------------------------------

def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def save_best(run_dir: Path, model: torch.nn.Module, epoch: int) -> None:
    save_checkpoint(run_dir / run_folder.BEST, {"model": model.state_dict(), "epoch": epoch})


def load_best(run_dir: Path, model: torch.nn.Module) -> None:
    model.load_state_dict(load_checkpoint(run_dir / run_folder.BEST)["model"])


def last_state(model: torch.nn.Module, optimizer, scheduler, state: LoopState) -> dict:
    """``last.pt``'s content: everything a resume needs to end with the same numbers."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), **asdict(state)}


def resume(run_dir: Path, model: torch.nn.Module, optimizer, scheduler) -> LoopState:
    """Restore model, optimiser, schedule and RNG from ``last.pt``; the loop state it saved."""
    path = run_dir / run_folder.LAST
    ckpt = load_checkpoint(path, require=("model", "optimizer", "scheduler", "rng"))
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise MerbenchError(f"{path}: does not match this run's model, optimiser or schedule "
                            f"({str(e).splitlines()[0][:120]}); expected the last.pt this run wrote "
                            f"(remove it to train from the start)") from None
    fresh = LoopState()
    state = LoopState(**{f.name: ckpt.get(f.name, getattr(fresh, f.name)) for f in fields(LoopState)})
    log.info("resumed after epoch %d", state.epoch)
    return state


# --- Per-epoch history, log, predictions -----------------------------------------------------

def history_row(epoch: int, train_loss: float, valid: dict[str, float], shown: list[str], lr: float,
                rate: float) -> dict:
    """metrics.csv's row: the training loss, ``shown`` validation metrics, the validation task
    loss, the learning rate and the speed."""
    return {"epoch": epoch, "train_loss": round(train_loss, 6),
            **{f"valid_{k}": round(valid[k], 4) for k in shown if k != "loss"},
            "valid_loss": round(valid["loss"], 6), "lr": lr, "utt_per_s": round(rate, 1)}


def add_epoch(run_dir: Path, state: LoopState, row: dict) -> None:
    """One more epoch in the history, and metrics.csv rewritten with it."""
    state.history.append(row)
    write_history(run_dir, state.history)


def write_history(run_dir: Path, history: list[dict]) -> None:
    if not history:
        return
    buf = io.StringIO()
    # Every column of every epoch (a run resumed from an older version may add one).
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in history for k in row)), restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / run_folder.METRICS_CSV, buf.getvalue())


def open_log(run_dir: Path) -> logging.Handler:
    """train.log receives the ``merbench.train`` log until ``close_log``."""
    handler = logging.FileHandler(run_dir / run_folder.LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


def save_predictions(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_open(run_dir / run_folder.PREDICTIONS, "wb") as f:
        np.savez_compressed(f, **arrays)


# --- result.json ----------------------------------------------------------------------------

def result_record(recipe: Recipe, corpus: Corpus, model: MerModel, state: LoopState, *, metric: str,
                  device: torch.device, splits: list[str], seconds: float, metrics: dict,
                  error: str | None, command: list[str] | None) -> Result:
    """The record of a run that ended: what it trained on, what it trained, how the epoch was
    chosen, and the metrics of the best epoch (none when it failed)."""
    # A plugin model: the file that defines it and its sha256 (None for merbench's own).
    plugin_source = plugin_of(recipe.model.name)
    built, unbuilt = _components(recipe, list(corpus.dims))
    return Result(
        run_id=run_folder.run_id(recipe.data), status="failed" if error else "ok", created_utc=utc_now(),
        command=command or sys.argv,
        provenance={**provenance(torch.get_num_threads(), str(device)),
                    "plugin": plugin_source.record() if plugin_source else None},
        recipe=recipe.data, recipe_hash=recipe_hash(recipe), seed=recipe.train.seed,
        dataset=DatasetInfo(corpus.name, corpus.task, corpus.protocol, corpus.modalities, corpus.dims,
                            corpus.label_names, corpus.data_fingerprint(),
                            class_counts={s: corpus.class_counts(s) for s in splits},
                            counts=corpus.counts(), info=json_safe(corpus.info)),
        model=ModelInfo(recipe.model.name, type(model).__name__, _resolved_args(recipe),
                        sum(p.numel() for p in model.parameters()), model.level, num_outputs(corpus),
                        tuple(built), tuple(unbuilt)),
        selection=Selection("valid", metric, state.best_epoch, state.best, state.epoch),
        seconds=round(seconds, 2), history=state.history, metrics=metrics, error=error)


def num_outputs(corpus: Corpus) -> int:
    """The model's outputs: one per class, or one value for regression."""
    return 1 if corpus.task == "regression" else len(corpus.label_names)


def _resolved_args(recipe: Recipe) -> dict:
    return json_safe({**model_defaults(recipe.model.name), **recipe.model.args})


def _components(recipe: Recipe, modalities: list[str]) -> tuple[list[str], list[str]]:
    """The ablation switches that were on, split into those built with these modalities and
    those that built nothing (a paper model on one modality: not the paper's model)."""
    return built_components(recipe.model.name, modalities, recipe.model.args)


def json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
