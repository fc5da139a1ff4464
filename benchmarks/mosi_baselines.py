"""Reference baselines for the CMU-MOSI table, measured the way merbench's models are.

Both read the corpus through merbench's own reader (``read_corpus("mosi", root, protocol=...)``),
so they see the same utterances, the same three splits and the release's features as the
recipes of recipes/mosi/ (protocol ``unseen-valid`` by default: validation = 10 of the
release's test videos, which its feature extractors never saw). Neither is a model of the registry: they are
the floor a fusion model must clear, not entries of the comparison.

- ``logistic``: a logistic regression per modality subset on the concatenated, standardised
  utterance vectors; its inverse regularisation C is chosen on validation accuracy from a
  fixed grid, then scored once on test (deterministic: one number, no seeds).
- ``bigru``: a small contextual model, a bidirectional GRU over each video's utterances (the
  shape of bc-LSTM's contextual LSTM, smaller), trained with Adam and early stopping on
  validation accuracy; the best validation epoch is scored on test, per seed.

    python benchmarks/mosi_baselines.py [--root PATH] [--protocol unseen-valid] [--seeds 5]
        [--recipe recipes/mosi/mlp_finetune.yaml] [--subsets T,S+T+V]

``--recipe`` reads the features as that recipe builds them (its ``dataset.features``: e.g. text
from MiniLM fine-tuned on the training split) rather than the release's, all three modalities.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthetic_compare import mean_std  # noqa: F401  (the benchmarks' one formatter; mosi.py takes it from here)

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOSI = ROOT.parent / "shared" / "data" / "mosi"
# Every modality subset, in the papers' column names and their order; the table has the first four.
SUBSETS = {"T": ("text",), "S": ("audio",), "V": ("vision",), "S+T": ("audio", "text"), "S+V": ("audio", "vision"),
           "T+V": ("text", "vision"), "S+T+V": ("audio", "text", "vision")}
TABLE_SUBSETS = ("T", "S", "V", "S+T+V")
PROTOCOL = "unseen-valid"
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


@dataclass
class Split:
    """One split: per video, the (L, D) features of each modality and the (L,) labels."""

    videos: list[dict[str, np.ndarray]]
    labels: list[np.ndarray]

    def stacked(self, modalities: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([np.concatenate([v[m] for m in modalities], axis=1) for v in self.videos])
        return x, np.concatenate(self.labels)


def load(root: Path, protocol: str, recipe: Path | None = None) -> dict[str, Split]:
    """The three splits as the release has them, or as ``recipe`` builds its features."""
    splits: dict[str, Split] = {s: Split([], []) for s in ("train", "valid", "test")}
    if recipe is None:
        from merbench.data.readers import read_corpus

        raw = read_corpus("mosi", root, protocol=protocol)
        videos = [(d.split, d.features, np.array([u.label for u in d.utterances])) for d in raw.dialogues]
    else:
        from merbench.api import resolve_recipe
        from merbench.train import load_corpus

        corpus = load_corpus(resolve_recipe(recipe, {
            "dataset.root": str(root), "dataset.protocol": protocol,
            "dataset.modalities": sorted({m for subset in SUBSETS.values() for m in subset}),
            "train.standardize": False}))
        videos = [(d.split, d.features, d.labels) for d in corpus.dialogues]
    for split, features, labels in videos:
        splits[split].videos.append({m: np.stack(xs).astype(np.float32) for m, xs in features.items()})
        splits[split].labels.append(labels)
    return splits


def scores(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return 100 * accuracy_score(y, predicted), 100 * f1_score(y, predicted, average="weighted")


def logistic(splits: dict[str, Split], modalities: tuple[str, ...]) -> dict[str, float]:
    """Test accuracy and weighted F1 of the C with the best validation accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = splits["train"].stacked(modalities)
    x_valid, y_valid = splits["valid"].stacked(modalities)
    best = None
    for c in C_GRID:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        model.fit(x_train, y_train)
        valid_acc = scores(y_valid, model.predict(x_valid))[0]
        if best is None or valid_acc > best[0]:
            best = (valid_acc, c, model)
    valid_acc, c, model = best
    x_test, y_test = splits["test"].stacked(modalities)
    acc, wf1 = scores(y_test, model.predict(x_test))
    return {"acc": acc, "wf1": wf1, "valid_acc": valid_acc, "C": c}


def bigru(splits: dict[str, Split], modalities: tuple[str, ...], seed: int, hidden: int = 64,
          dropout: float = 0.5, lr: float = 1e-3, batch: int = 4, max_epochs: int = 100,
          patience: int = 10) -> dict[str, float]:
    """Bi-GRU over each video's utterances; best validation-accuracy epoch scored on test."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, _ = splits["train"].stacked(modalities)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6

    def tensors(split: Split) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.from_numpy((np.concatenate([v[m] for m in modalities], 1) - mean) / std).float(),
                 torch.from_numpy(y).long()) for v, y in zip(split.videos, split.labels)]

    data = {s: tensors(splits[s]) for s in splits}

    class Contextual(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, 2)
            states, _ = self.gru(self.drop(x))
            return self.out(self.drop(states))

    def padded(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.utils.rnn.pad_sequence([i[0] for i in items], batch_first=True)
        y = nn.utils.rnn.pad_sequence([i[1] for i in items], batch_first=True, padding_value=-1)
        return x, y

    def predict(model: nn.Module, split: str) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        with torch.no_grad():
            pred = [model(x[None])[0].argmax(-1).numpy() for x, _ in data[split]]
        return np.concatenate([y.numpy() for _, y in data[split]]), np.concatenate(pred)

    model = Contextual(data["train"][0][0].shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
    best_acc, best_state, waited = -1.0, None, 0
    for _ in range(max_epochs):
        model.train()
        order = rng.permutation(len(data["train"]))
        for start in range(0, len(order), batch):
            x, y = padded([data["train"][i] for i in order[start:start + batch]])
            loss = loss_fn(model(x).flatten(0, 1), y.flatten())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        valid_acc = scores(*predict(model, "valid"))[0]
        if valid_acc > best_acc:
            best_acc, waited = valid_acc, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    acc, wf1 = scores(*predict(model, "test"))
    return {"acc": acc, "wf1": wf1, "valid_acc": best_acc}


def table(root: Path, seeds: int, protocol: str = PROTOCOL, recipe: Path | None = None,
          subsets: list[str] = TABLE_SUBSETS) -> str:
    """The Markdown rows of both baselines, one column pair per modality subset."""
    import torch

    torch.set_num_threads(1)
    splits = load(root, protocol, recipe)
    header = "| baseline | " + " | ".join(f"{s} acc | {s} WF1" for s in subsets) + " |\n"
    header += "|---|" + "---|---|" * len(subsets) + "\n"
    rows = ["| logistic regression (C on validation) | " + " | ".join(
        f"{r['acc']:.1f} | {r['wf1']:.1f}" for r in (logistic(splits, SUBSETS[s]) for s in subsets)) + " |"]
    cells = []
    for modalities in (SUBSETS[s] for s in subsets):
        runs = [bigru(splits, modalities, seed) for seed in range(seeds)]
        cells.append(f"{mean_std([r['acc'] for r in runs])} | {mean_std([r['wf1'] for r in runs])}")
    rows.append(f"| contextual bi-GRU ({seeds} seeds) | " + " | ".join(cells) + " |")
    return header + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SHARED_MOSI)
    parser.add_argument("--protocol", default=PROTOCOL)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--recipe", type=Path, help="read the features as this recipe builds them")
    parser.add_argument("--subsets", type=subset_list, default=list(TABLE_SUBSETS), help="e.g. T,S+T,S+T+V")
    args = parser.parse_args()
    print(table(args.root, args.seeds, args.protocol, args.recipe, args.subsets))


def subset_list(text: str) -> list[str]:
    subsets = [s for s in SUBSETS if s in text.split(",")]  # the papers' column order
    unknown = [s for s in text.split(",") if s not in SUBSETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{unknown[0]!r} is not a subset; valid: {', '.join(SUBSETS)}")
    return subsets


if __name__ == "__main__":
    main()
