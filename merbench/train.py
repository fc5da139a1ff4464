"""The training loop, readable top to bottom.

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

import csv
import io
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from merbench import lock
from merbench import run_folder as runs  # the run folder's names and layout
from merbench.atomic import atomic_open, remove_temporaries
from merbench.data.batching import Batch, split_tensors
from merbench.data.types import Corpus
from merbench.device import resolve_device
from merbench.errors import MerbenchError
from merbench.evaluate import flat_outputs, load_checkpoint, predict, score
from merbench.metrics import LOSS, LOWER_IS_BETTER, USUAL, better, metric_names
from merbench.models.build import build_model, built_components, check_available, model_class, model_defaults
from merbench.plugins import plugin_of
from merbench.predictions import Predictions
from merbench.recipe import recipe_hash
from merbench.registry import DATASETS, closest
from merbench.results import atomic_write_text, provenance, utc_now, write_json, SCHEMA_VERSION

log = logging.getLogger("merbench.train")

FRESH = ".force-"  # .<run>.force-<pid>: a --force retrain, swapped in when it finishes ok
REPLACED = ".replaced-"  # .<run>.replaced-<pid>: the run a --force retrain replaced, until deleted


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_corpus(recipe: dict) -> Corpus:
    """Build the recipe's dataset and keep only its modalities, z-scored with the training
    split's statistics when ``train.standardize`` is on."""
    args = {k: v for k, v in recipe["dataset"].items() if k not in ("name", "modalities")}
    corpus = DATASETS.get(recipe["dataset"]["name"])(**args)
    wanted = recipe["dataset"]["modalities"]
    missing = [m for m in wanted if m not in corpus.modalities]
    if missing:
        raise MerbenchError(
            f"dataset.modalities: {missing[0]!r} is not in dataset {corpus.name!r} "
            f"(it has {', '.join(corpus.modalities) or 'no features'})"
        )
    for warning in corpus.info.get("warnings", []):
        logging.getLogger("merbench").warning("%s", warning)
    corpus = corpus.select_modalities(wanted)
    return corpus.standardized() if recipe["train"]["standardize"] else corpus


def usual_metric(corpus: Corpus) -> str:
    """The corpus's usual validation metric: ``selection_metric: auto``, and always in metrics.csv."""
    return USUAL[corpus.task]


def selection_metric(recipe: dict, corpus: Corpus) -> str:
    metric = recipe["train"]["selection_metric"]
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


def build_optimizer(cfg: dict, parameters) -> torch.optim.Optimizer:
    """``train.optimizer``: ``adamw`` decays the weights apart from the gradient (decoupled);
    ``adam`` adds ``weight_decay * w`` to the gradient (L2, as torch.optim.Adam and the
    baselines' authors' code)."""
    kind = torch.optim.Adam if cfg["optimizer"] == "adam" else torch.optim.AdamW
    return kind(parameters, lr=cfg["lr"], weight_decay=cfg["weight_decay"])


# last.pt (everything a resume needs) is written after an epoch once this many seconds have
# passed since it was last written, and after the epoch the run stops at: a run of short epochs
# does not pay a full write per epoch (58 MB for TFN on MOSEI, 0.1 s of a 2.7 s epoch), and a
# kill loses at most this much training. A resume from an older epoch ends with the same numbers.
LAST_EVERY_S = 30.0


def _stops(state: dict, cfg: dict) -> bool:
    """The run ends after this epoch: the last one, or ``patience`` epochs without a better one."""
    return state["epoch"] >= cfg["max_epochs"] or state["bad_epochs"] >= cfg["patience"]


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def write_history(run_dir: Path, history: list[dict]) -> None:
    if not history:
        return
    buf = io.StringIO()
    # Every column of every epoch (a run resumed from an older version may add one).
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in history for k in row)), restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / runs.METRICS_CSV, buf.getvalue())


def _setup_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / runs.LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def prepare_run_dir(run_dir: Path, recipe: dict, resume: bool) -> Path:
    if (run_dir / runs.LAST).exists() and not resume:
        raise MerbenchError(f"{run_dir}: holds an interrupted run; pass --resume to continue it "
                            f"or --force to start over")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / runs.RECIPE, yaml.safe_dump(recipe, sort_keys=False))
    return run_dir


def train(recipe: dict, out: Path, *, resume: bool = False, force: bool = False, progress: bool = True,
          command: list[str] | None = None, corpus: Corpus | None = None, name: str | None = None,
          keep_last: bool = False, on_epoch: Callable[[int, dict], None] | None = None) -> Path:
    """Train one model on one dataset; returns the run folder holding result.json.

    A finished run of the same recipe, seed, code and data is reused as it is unless ``force``.
    ``force`` trains into a fresh hidden sibling and swaps it in only when it finished ok: a
    killed or failed retrain leaves the old run intact (a failed retrain's folder is returned,
    and kept until the next train of this run). ``name`` overrides the run folder's name (grids
    pass the name they planned). ``last.pt`` is deleted when the run ends unless ``keep_last``.
    ``on_epoch(epoch, valid_scores)`` is called after each epoch's checkpoint (``merbench tune``
    reports to its pruner there); an exception it raises stops the run as a kill would.
    """
    if resume and force:
        raise MerbenchError("--resume and --force: choose one (--resume continues an interrupted "
                            "run, --force trains again from the start)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MerbenchError(f"{out}: --out is a file; expected a folder that holds run folders")
    check_available(recipe["model"]["name"])  # a missing optional library: before any work
    cfg = recipe["train"]
    device = resolve_device(cfg["device"], "train.device")
    run_dir = out / (name or runs.run_name(recipe))
    with lock.hold(run_dir):
        _tidy(run_dir)
        if runs.is_finished(run_dir) and not force:
            # Same recipe, seed, code and data: the finished run is the answer; never overwritten.
            log.info("reusing finished run %s", run_dir)
            return run_dir
        _check_writable(run_dir)
        target = run_dir.parent / f".{run_dir.name}{FRESH}{os.getpid()}" if force else run_dir
        threads = torch.get_num_threads()
        try:
            if cfg["threads"]:
                torch.set_num_threads(cfg["threads"])
            seed_everything(cfg["seed"])
            corpus = corpus if corpus is not None else load_corpus(recipe)
            metric = selection_metric(recipe, corpus)
            prepare_run_dir(target, recipe, resume)
            handler = _setup_log(target)
            try:
                _train(recipe, corpus, metric, target, device, resume, progress, command, keep_last, on_epoch)
            finally:
                log.removeHandler(handler)
                handler.close()
        finally:
            torch.set_num_threads(threads)
        if target != run_dir and runs.is_finished(target):
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


def _train(recipe, corpus, metric, run_dir, device, resume, progress, command, keep_last, on_epoch=None) -> None:
    cfg = recipe["train"]
    model_args = {k: v for k, v in recipe["model"].items() if k != "name"}
    num_outputs = 1 if corpus.task == "regression" else len(corpus.label_names)
    model = build_model(recipe["model"]["name"], corpus.dims, num_outputs, **model_args).to(device)
    want_frames = model_class(recipe["model"]["name"]).inputs == "frames"
    splits = {s: split_tensors(corpus, s, want_frames) for s in corpus.split_names()}
    if "train" not in splits or "valid" not in splits:
        raise MerbenchError(f"dataset {corpus.name!r}: needs a train and a valid split for model selection "
                            f"(has {', '.join(splits)})")
    weights = class_weights(corpus).to(device) if cfg["class_weights"] and corpus.task != "regression" else None
    optimizer = build_optimizer(cfg, model.parameters())
    # ReduceLROnPlateau follows the selection metric, or (``lr_schedule_on: loss``) the
    # validation task loss, as COGMEN's authors do.
    schedule_on = metric if cfg["lr_schedule_on"] == "selection" else "loss"
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min" if schedule_on in LOWER_IS_BETTER else "max",
        factor=cfg["lr_factor"], patience=cfg["lr_patience"])
    batch_size = cfg["batch_size"] if model.level == "utterance" else cfg["dialogue_batch_size"]

    # seconds: training time of the segments before this one (a resumed run adds them up)
    state = {"epoch": 0, "best": None, "best_epoch": 0, "bad_epochs": 0, "history": [], "seconds": 0.0}
    if resume and (run_dir / runs.LAST).exists():
        ckpt = load_checkpoint(run_dir / runs.LAST, require=("model", "optimizer", "scheduler", "rng"))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        state = {k: ckpt.get(k, state[k]) for k in state}
        log.info("resumed after epoch %d", state["epoch"])

    started, before = time.perf_counter(), state["seconds"]
    saved = started  # when last.pt was last written (LAST_EVERY_S)
    failed = None
    with _progress(progress) as bar:
        task = bar.add_task(f"{recipe['model']['name']} on {corpus.name}", total=cfg["max_epochs"],
                            completed=state["epoch"], loss=float("nan"), rate=0.0) if bar else None
        while not _stops(state, cfg):
            epoch = state["epoch"] + 1
            model.train()
            # The shuffle order depends only on (seed, epoch), so a resumed run sees the same order.
            gen = torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch)
            total, seen, t0 = 0.0, 0, time.perf_counter()
            for batch in splits["train"].batches(model.level, batch_size, gen):
                batch = batch.to(device)
                out = model(batch)
                loss = task_loss(corpus, batch, out.logits, weights)
                for name, value in out.aux_loss.items():
                    loss = loss + cfg["aux_weights"].get(name, 1.0) * value
                if not torch.isfinite(loss):
                    failed = f"non-finite training loss at epoch {epoch}"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
                optimizer.step()
                n = int(batch.labels.numel() if batch.utt_mask is None else batch.utt_mask.sum())
                total, seen = total + loss.item() * n, seen + n
            if failed:
                break
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            valid_preds = predict(model, splits["valid"], device)
            valid = {**score(corpus, valid_preds), "loss": prediction_loss(corpus, valid_preds, weights)}
            value = valid[metric]
            if not np.isfinite(value):
                failed = f"non-finite validation {metric} at epoch {epoch}"
                break
            scheduler.step(valid[schedule_on])
            if better(metric, value, state["best"]):
                state.update(best=value, best_epoch=epoch, bad_epochs=0)
                save_checkpoint(run_dir / runs.BEST, {"model": model.state_dict(), "epoch": epoch})
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            state["seconds"] = before + time.perf_counter() - started
            # The selection metric, the corpus's usual one (WF1 / MAE) and the task loss.
            shown = dict.fromkeys([metric, usual_metric(corpus)])
            state["history"].append({"epoch": epoch, "train_loss": round(total / max(seen, 1), 6),
                                     **{f"valid_{k}": round(valid[k], 4) for k in shown if k != "loss"},
                                     "valid_loss": round(valid["loss"], 6),
                                     "lr": optimizer.param_groups[0]["lr"],
                                     "utt_per_s": round(rate, 1)})
            write_history(run_dir, state["history"])
            if _stops(state, cfg) or time.perf_counter() - saved >= LAST_EVERY_S:
                save_checkpoint(run_dir / runs.LAST, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), **state})
                saved = time.perf_counter()
            log.info("epoch %d loss %.4f valid %s %.2f (%.0f utt/s)", epoch, total / max(seen, 1), metric, value, rate)
            if bar:
                bar.update(task, advance=1, loss=total / max(seen, 1), rate=rate)
            if on_epoch is not None:  # the caller's hook (merbench tune's pruner); it may raise to stop
                on_epoch(epoch, valid)

    # A plugin model: the file that defines it and its sha256 (None for merbench's own).
    plugin_source = plugin_of(recipe["model"]["name"])
    plugin = plugin_source.record() if plugin_source else None
    result = {
        "schema_version": SCHEMA_VERSION,
        "run_id": runs.run_id(recipe),
        "status": "failed" if failed else "ok",
        "created_utc": utc_now(),
        "command": command or sys.argv,
        "provenance": {**provenance(torch.get_num_threads(), str(device)), "plugin": plugin},
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe),
        "seed": cfg["seed"],
        "dataset": {
            "name": corpus.name, "task": corpus.task, "protocol": corpus.protocol,
            "modalities": corpus.modalities, "dims": corpus.dims, "fingerprint": corpus.fingerprint(),
            "label_names": corpus.label_names, "class_counts": {s: corpus.class_counts(s) for s in splits},
            "counts": corpus.counts(), "info": _json_safe(corpus.info),
        },
        "model": {"name": recipe["model"]["name"], "class": type(model).__name__, "args": _resolved_args(recipe),
                  "parameters": sum(p.numel() for p in model.parameters()), "level": model.level,
                  "num_outputs": num_outputs, **_components(recipe, list(corpus.dims))},
        "selection": {"split": "valid", "metric": metric, "best_epoch": state["best_epoch"],
                      "best_value": state["best"], "epochs_run": state["epoch"]},
        "training": {"seconds": round(before + time.perf_counter() - started, 2),
                     "history": state["history"]},
        "metrics": {},
    }
    if failed:
        result["error"] = failed
        log.info("run failed: %s", failed)
    else:
        model.load_state_dict(load_checkpoint(run_dir / runs.BEST)["model"])
        saved = {}
        for split in sorted(set(recipe["eval"]["splits"]) | {"valid"}):
            if split in splits:
                preds = predict(model, splits[split], device)
                result["metrics"][split] = score(corpus, preds)
                saved.update({f"{split}_{k}": getattr(preds, k) for k in ("index", "labels", "values", "outputs")})
        _save_predictions(run_dir, saved)
    write_json(run_dir / runs.RESULT, result)
    if not keep_last:
        (run_dir / runs.LAST).unlink(missing_ok=True)  # the run ended: nothing resumes from it


def _resolved_args(recipe: dict) -> dict:
    defaults = model_defaults(recipe["model"]["name"])
    return _json_safe({**defaults, **{k: v for k, v in recipe["model"].items() if k != "name"}})


def _components(recipe: dict, modalities: list[str]) -> dict:
    """The ablation switches that were on, split into those built with these modalities and
    those that built nothing (a paper model on one modality: not the paper's model)."""
    args = {k: v for k, v in recipe["model"].items() if k != "name"}
    built, unbuilt = built_components(recipe["model"]["name"], modalities, args)
    return {"active_components": built, "inactive_components": unbuilt}


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _save_predictions(run_dir: Path, arrays: dict) -> None:
    with atomic_open(run_dir / runs.PREDICTIONS, "wb") as f:
        np.savez_compressed(f, **arrays)


def _progress(enabled: bool):
    if not enabled:
        import contextlib

        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} utt/s"),
                    TimeElapsedColumn(), transient=False, console=Console(stderr=True))
