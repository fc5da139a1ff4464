"""Fine-tune a text encoder on a dataset's training split: ``merbench finetune``.

A transformers encoder (any ``save_pretrained`` BERT / RoBERTa / MiniLM directory) gets a
head on the pooled state that ``merbench extract`` reads (``text.pool``: [CLS] joined to the
token mean, ``(2H,)``): a linear classifier, or one output for regression corpora (MOSEI).
It trains on the training split only; the epoch is chosen on the validation split only.
The result is a folder that ``AutoModel.from_pretrained`` reads, plus the head
(``head.pt``) and merbench's record (``merbench_finetune.json``: options, seed, data
fingerprint, training dialogues, validation curve, versions, git commit), written last: a
folder with a record is finished. Folders are content-addressed: the name ends in a hash
of (options, base encoder's weights, data fingerprint), so a second request finds it; a
request while another process fine-tunes it waits for that one (``merbench.lock``).

Cross-fitting (``crossfit=K``): K encoders, each fine-tuned on K-1 folds of the training
dialogues, plus one (``full/``) on all of them; extraction gives each training utterance the
features of the encoder that never saw its dialogue (``text.BertText``).

Interrupted fine-tuning resumes from ``checkpoints/last.pt`` (written every epoch and every
``CHECKPOINT_SECONDS``); the batch order depends only on (seed, epoch), so a resumed run
ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from merbench.atomic import atomic_open
from merbench.checkpoints import load_checkpoint
from merbench.data.types import RawCorpus, RawDialogue
from merbench.device import resolve_device
from merbench.errors import MerbenchError
from merbench.features._common import check_model_dir, load_pretrained, model_dir_hash
from merbench.features.finetuned import CROSSFIT_EVAL, FinetuneRecord, RECORD, fold_names, read_record  # noqa: F401
from merbench.features.options import FinetuneOptions, finetune_problems
from merbench.features.text import TextInput, named_model_dir, pad, pool, text_inputs, tokenize
from merbench.lock import hold
from merbench.metrics import USUAL, better, classification_metrics, regression_metrics
from merbench.results import provenance, utc_now
from merbench.signature import check_kwargs

HEAD = "head.pt"
LAST = "checkpoints/last.pt"
BEST = "checkpoints/best"
SCHEMA = 1
CHECKPOINT_SECONDS = 300.0
# Bumped when a change here changes the weights a fine-tuning writes: part of the folder key.
FINETUNE_VERSION = 1




def folder_name(raw: RawCorpus, base_hash: str, options: FinetuneOptions) -> str:
    """``<dataset>-<protocol>[-fold F]-ctx<K>[-cf<K>]-seed<S>-<key[:12]>``; key: options, weights, data."""
    key = hashlib.sha256(json.dumps({"options": asdict(options), "base": base_hash,
                                     "data": raw.fingerprint(), "version": FINETUNE_VERSION},
                                    sort_keys=True).encode()).hexdigest()
    fold = raw.info.get("fold")
    parts = [raw.name, raw.protocol, *([f"fold{fold}"] if fold else []), f"ctx{options.context}",
             *([f"cf{options.crossfit}"] if options.crossfit else []), f"seed{options.seed}", key[:12]]
    return "-".join(str(p) for p in parts)


def is_finished(folder: Path) -> bool:
    return (folder / RECORD).is_file()


def finetune(raw: RawCorpus, model_dir: str | Path, out: str | Path, options: FinetuneOptions, *,
             device: str | None = None, threads: int = 0, progress: bool = True,
             command: list[str] | None = None, full: bool = True) -> Path:
    """Fine-tune (or find finished, or resume) the encoder for ``raw``; returns its folder.

    With cross-fitting, ``full=False`` skips the encoder on all training dialogues (only
    ``crossfit_eval: full`` reads it): K fine-tunings instead of K + 1. A later call with
    ``full=True`` adds it to the finished folder."""
    options.check()
    base = check_model_dir(model_dir, "--text-model")
    if read_record(base) is not None:
        raise MerbenchError(f"--text-model {model_dir}: already a merbench fine-tuned folder; pass "
                            f"the encoder it started from")
    splits = {d.split for d in raw.dialogues}
    for split in ("train", "valid"):
        if split not in splits:
            raise MerbenchError(f"dataset {raw.name} ({raw.protocol}) has no {split} split; fine-tuning "
                                f"trains on train and selects the epoch on valid")
    if threads:
        torch.set_num_threads(threads)
    folder = Path(out) / folder_name(raw, model_dir_hash(base), options)
    # One process fine-tunes a folder; the others (grid cells of the same key) wait for it.
    waiting = (lambda who: print(f"waiting for {who.describe() if who else 'another process'} to "
                                 f"fine-tune {folder.name}", file=sys.stderr)) if progress else None
    with hold(folder, wait=True, on_wait=waiting):
        if is_finished(folder) and (not options.crossfit or not full or is_finished(folder / "full")):
            return folder
        train = [d for d in raw.dialogues if d.split == "train"]
        if not options.crossfit:
            _finetune_one(raw, train, base, folder, options, device, progress, command)
            return folder
        order = np.random.default_rng(options.seed).permutation(len(train))
        folds = [[train[i].id for i in order[k::options.crossfit]] for k in range(options.crossfit)]
        single = replace(options, crossfit=0)  # each member is an ordinary fine-tuned encoder
        names = fold_names(len(folds))
        for name, held_out in zip(names, folds):
            seen = [d for d in train if d.id not in set(held_out)]
            _finetune_one(raw, seen, base, folder / name, single, device, progress, command)
        # The member fitted on all training dialogues is the plain encoder of the same options:
        # copied when that one is finished beside it.
        if full:
            plain = Path(out) / folder_name(raw, model_dir_hash(base), single)
            if is_finished(plain) and not is_finished(folder / "full"):
                shutil.copytree(plain, folder / "full", dirs_exist_ok=True)
            _finetune_one(raw, train, base, folder / "full", single, device, progress, command)
        members = names + (["full"] if is_finished(folder / "full") else [])
        record = {"schema": SCHEMA, "kind": "crossfit", "options": asdict(options), "folds": folds,
                  "dataset": raw.name, "protocol": raw.protocol, "data_fingerprint": raw.fingerprint(),
                  "encoders": {n: json.loads((folder / n / RECORD).read_text())["best_epoch"] for n in members}}
        _write_json(folder / RECORD, record)
    return folder


class Classifier(torch.nn.Module):
    """The encoder, the pooled state of ``text.pool`` and a linear head: (B, L) -> (B, C)."""

    def __init__(self, encoder: torch.nn.Module, outputs: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(2 * encoder.config.hidden_size, outputs)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**batch).last_hidden_state  # (B, L, H)
        return self.head(self.dropout(pool(hidden, batch["attention_mask"])))  # (B, C)


@dataclass
class Item:
    """One utterance to fine-tune on or score: its tokens and target."""

    id: str
    dialogue: str
    tokens: dict[str, list[int]]
    label: int
    value: float


def make_items(dialogues: Sequence[RawDialogue], tokenizer: Any, options: FinetuneOptions) -> list[Item]:
    inputs: list[TextInput] = []
    meta = []
    for d in dialogues:
        for u, x in zip(d.utterances, text_inputs(d, options.context)):
            inputs.append(x)
            meta.append((u.id, d.id, u.label, u.value))
    rows = tokenize(tokenizer, inputs, options.max_length, options.context) if inputs else []
    return [Item(i, d, r, label, value) for (i, d, label, value), r in zip(meta, rows)]


def training_batches(items: Sequence[Item], batch_size: int, seed: int, epoch: int) -> list[list[Item]]:
    """The batches of one epoch: shuffled by (seed, epoch), then sorted by length within chunks
    of 50 batches so padding stays small, then the batches shuffled."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(items))
    chunk = 50 * batch_size
    batches = []
    for lo in range(0, len(order), chunk):
        part = sorted(order[lo:lo + chunk], key=lambda i: len(items[i].tokens["input_ids"]))
        batches += [[items[i] for i in part[b:b + batch_size]] for b in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _targets(batch: Sequence[Item], regression: bool) -> torch.Tensor:
    if regression:
        return torch.tensor([x.value for x in batch], dtype=torch.float32)  # (B,)
    return torch.tensor([x.label for x in batch], dtype=torch.long)  # (B,)


def _loss(logits: torch.Tensor, target: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        keep = ~torch.isnan(target)
        return torch.nn.functional.l1_loss(logits.squeeze(-1)[keep], target[keep])  # MMSA: L1
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=-1)


def evaluate(net: Classifier, items: Sequence[Item], raw: RawCorpus, pad_id: int,
             device: torch.device, batch_size: int = 64) -> tuple[str, float]:
    """The selection metric on ``items``: weighted F1 (classification) or MAE (regression)."""
    regression = raw.task == "regression"
    order = sorted(range(len(items)), key=lambda i: len(items[i].tokens["input_ids"]))
    preds = np.zeros(len(items), dtype=np.float64)
    net.eval()
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            batch = {k: v.to(device) for k, v in pad([items[i].tokens for i in idx], pad_id).items()}
            logits = net(batch)  # (B, C)
            out = logits.squeeze(-1) if regression else logits.argmax(-1)
            preds[idx] = out.float().cpu().numpy()
    net.train()
    metric = USUAL[raw.task]
    if regression:
        true = np.array([x.value for x in items])
        keep = ~np.isnan(true)
        return metric, float(regression_metrics(true[keep], preds[keep])[metric])
    true = np.array([x.label for x in items])
    keep = true >= 0
    return metric, float(classification_metrics(true[keep], preds[keep].astype(int), raw.label_names)[metric])


def _finetune_one(raw: RawCorpus, train: Sequence[RawDialogue], base: Path, folder: Path,
                  options: FinetuneOptions, device_name: str | None, progress: bool,
                  command: list[str] | None) -> None:
    """Fine-tune one encoder on the ``train`` dialogues into ``folder`` (resumes, skips when done)."""
    from transformers import get_linear_schedule_with_warmup

    from merbench.features.cache import _progress_bar  # start-up: rich only when this runs

    if is_finished(folder):
        return
    device = resolve_device(device_name)
    regression = raw.task == "regression"
    tokenizer = load_pretrained("Tokenizer", base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_items = make_items(train, tokenizer, options)
    valid_items = make_items([d for d in raw.dialogues if d.split == "valid"], tokenizer, options)
    if not train_items or not valid_items:
        raise MerbenchError(f"dataset {raw.name}: no utterances to fine-tune on or to validate with")

    torch.manual_seed(options.seed)
    net = Classifier(load_pretrained("Model", base), 1 if regression else len(raw.label_names),
                     options.dropout).to(device)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in net.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": options.weight_decay},
        {"params": [p for n, p in net.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=options.lr)
    steps_per_epoch = len(training_batches(train_items, options.batch_size, options.seed, 0))
    total = steps_per_epoch * options.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(options.warmup * total), total)

    # --- resume --------------------------------------------------------------------------
    epoch, step, history, best, seconds = 0, 0, [], {"epoch": None, "score": None}, 0.0
    last = folder / LAST
    if last.is_file():
        state = load_checkpoint(last, ("model", "optimizer", "scheduler", "rng", "epoch", "step", "history",
                                       "best", "seconds"))
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        epoch, step, history, best, seconds = (state["epoch"], state["step"], state["history"],
                                               state["best"], state["seconds"])
    folder.mkdir(parents=True, exist_ok=True)

    def checkpoint() -> None:
        with atomic_open(last, "wb") as f:
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                        "epoch": epoch, "step": step, "history": history, "best": best,
                        "seconds": seconds}, f)

    net.train()
    with _progress_bar(progress) as bar:
        task = bar.add_task(f"finetune {folder.name}", total=len(train_items) * options.epochs)
        while epoch < options.epochs:
            # --- forward backward update, from the first batch not yet done ----------------
            batches = training_batches(train_items, options.batch_size, options.seed, epoch)
            bar.update(task, completed=epoch * len(train_items) + sum(len(b) for b in batches[:step]))
            started = saved = time.perf_counter()
            losses: list[float] = []
            for batch_items in batches[step:]:
                batch = {k: v.to(device) for k, v in pad([x.tokens for x in batch_items], pad_id).items()}
                loss = _loss(net(batch), _targets(batch_items, regression).to(device), regression)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                step += 1
                bar.advance(task, len(batch_items))
                if time.perf_counter() - saved > CHECKPOINT_SECONDS:
                    seconds += time.perf_counter() - started
                    started = saved = time.perf_counter()
                    checkpoint()
                    if progress and not bar.console.is_terminal:  # a log gets a line where a bar would be
                        done = epoch * len(train_items) + sum(len(b) for b in batches[:step])
                        rate = done / seconds if seconds else 0.0
                        bar.console.print(f"{done}/{len(train_items) * options.epochs} utterances, "
                                          f"{rate:.1f} utt/s, {(len(train_items) * options.epochs - done) / max(rate, 1e-9) / 60:.0f} min left",
                                          highlight=False)
            seconds += time.perf_counter() - started
            # --- validation and selection (valid split only) -------------------------------
            metric, score = evaluate(net, valid_items, raw, pad_id, device)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None,
                            f"valid_{metric}": score, "seconds": round(seconds, 1)})
            if better(metric, score, best["score"]):
                best = {"epoch": epoch + 1, "score": score}
                shutil.rmtree(folder / BEST, ignore_errors=True)
                net.encoder.save_pretrained(folder / BEST)
                tokenizer.save_pretrained(folder / BEST)
                torch.save(net.head.state_dict(), folder / BEST / HEAD)
            epoch, step = epoch + 1, 0
            checkpoint()
            bar.console.print(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, "
                              f"valid {metric} {score:.2f}", highlight=False)

    # --- the chosen epoch's files in place, the record last ----------------------------------
    for file in (folder / BEST).iterdir():
        file.replace(folder / file.name)
    n_train = len(train_items)
    record = {
        "schema": SCHEMA, "kind": "encoder", "created": utc_now(),
        "command": command or sys.argv, "options": asdict(options),
        "base_model": str(base), "base_model_hash": model_dir_hash(base),
        "dataset": raw.name, "protocol": raw.protocol, "fold": raw.info.get("fold"),
        "task": raw.task, "label_names": list(raw.label_names), "data_fingerprint": raw.fingerprint(),
        "train_dialogues": sorted(d.id for d in train), "train_utterances": n_train,
        "valid_utterances": len(valid_items), "selection_metric": USUAL[raw.task],
        "best_epoch": best["epoch"], "best_valid": best["score"], "history": history,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / options.epochs, 1),
        "utterances_per_second": round(n_train * options.epochs / seconds, 1) if seconds else None,
        "provenance": provenance(torch.get_num_threads(), str(device)),
    }
    _write_json(folder / RECORD, record)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)


def _write_json(path: Path, data: dict) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True))


def ensure_finetuned(raw: RawCorpus, spec: dict[str, Any], root: str | Path | None, device: str | None,
                     progress: bool, where: str = "dataset.features.text.finetune") -> Path:
    """The recipe key ``features.text.finetune``: the content-addressed folder under the
    cache root's ``finetuned/``, fine-tuned here if no process has finished it yet."""
    # start-up: rich only when this runs
    from merbench.features.cache import cache_root

    values = dict(spec.get("finetune") or {})
    found = finetune_problems(values)  # a recipe was checked already; build_corpus may be called alone
    if found:
        raise MerbenchError("; ".join(f"{where}.{key}: {text}" for key, text in found))
    threads = values.pop("threads", 0)
    options = FinetuneOptions(**values)
    base = spec.get("model") or named_model_dir(spec.get("name"))
    return finetune(raw, base, cache_root(root) / "finetuned", options, device=device,
                    threads=threads, progress=progress, full=spec.get("crossfit_eval", "full") == "full")
