"""The options of fine-tuning a text encoder (``merbench finetune``, the recipe key
``dataset.features.text.finetune``): one typed record, checked the same way from the command
line and from a recipe, every bad value reported at once. No torch here: a recipe is checked
before anything heavy is imported."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from merbench.errors import MerbenchError, excerpt
from merbench.signature import kwargs_problems


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything that changes the weights a fine-tuning writes (the folder key)."""

    context: int = 0  # previous utterances of the dialogue in the first segment
    epochs: int = 3
    seed: int = 0
    # Paper: COSMIC and EmoBERTa fine-tune RoBERTa-large with lr 1e-5; merbench's default is
    # BERT's usual 5e-5 (Devlin et al. try 5e-5, 3e-5, 2e-5) for the small encoders it runs on
    # CPU, and 3 epochs. The IEMOCAP recipes set their own (recipes/iemocap/*_finetune.yaml).
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    warmup: float = 0.1  # fraction of the steps with a linear warm-up, then linear decay
    weight_decay: float = 0.01
    dropout: float = 0.1  # on the pooled state, before the head
    crossfit: int = 0  # 0: one encoder; K >= 2: K fold encoders + one on all training dialogues

    def problems(self) -> list[tuple[str, str]]:
        """Every (option, what was expected) whose value cannot run."""
        limits = {"context": (self.context >= 0, "0 or more previous utterances"),
                  "epochs": (self.epochs >= 1, "at least 1"),
                  "crossfit": (self.crossfit == 0 or self.crossfit >= 2, "0 (off) or K >= 2 folds"),
                  "batch_size": (self.batch_size >= 1, "at least 1"),
                  "max_length": (self.max_length >= 8, "at least 8 tokens"),
                  "lr": (self.lr > 0, "a positive learning rate"),
                  "warmup": (0 <= self.warmup < 1, "a fraction in [0, 1)"),
                  "dropout": (0 <= self.dropout < 1, "a probability in [0, 1)")}
        return [(name, expected) for name, (ok, expected) in limits.items() if not ok]

    def check(self, prefix: str = "finetune.") -> None:
        """Bad values are one line naming each ``<prefix><option>`` (``--`` on the CLI)."""
        def option(name: str) -> str:
            return f"--{name.replace('_', '-')}" if prefix == "--" else f"{prefix}{name}"

        found = self.problems()
        if found:
            raise MerbenchError("; ".join(f"{option(name)} {getattr(self, name)}: expected {expected}"
                                          for name, expected in found))


def finetune_problems(values: dict[str, Any], threads: bool = True) -> list[tuple[str, str]]:
    """Every (option, problem) of a recipe's ``finetune`` mapping: unknown keys (with the
    closest name), wrong types, values that cannot run, and ``threads`` (how many torch
    threads fine-tune: not an option of the weights, so not in ``FinetuneOptions``)."""
    values = dict(values)
    found = []
    if threads and "threads" in values:
        count = values.pop("threads")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            found.append(("threads", f"expected a thread count >= 0, got {excerpt(count)}"))
    defaults = {f.name: f.default for f in fields(FinetuneOptions)}
    found += kwargs_problems(defaults, values, "finetune")
    if not found:
        options = FinetuneOptions(**values)
        found += [(name, f"expected {expected}, got {excerpt(getattr(options, name))}")
                  for name, expected in options.problems()]
    return found
