"""Synthetic comparison: every registered model beside the early-fusion MLP, at two corpus sizes.

Trains each model's ``recipes/synthetic/<model>.yaml`` (plus the variants listed in VARIANTS)
on the built-in ``synthetic`` corpus at its default size (60 dialogues, 900 utterances) and at
IEMOCAP size (151 dialogues, 7,433 utterances, as the shared IEMOCAP pickle; feature widths
stay the corpus defaults), one torch thread, and prints one table per size: test weighted F1
(mean ± std over seeds), its ratio to the early-fusion MLP's mean, whether it reaches
``--floor`` (0.8) x the MLP, and the mean number of distinct classes predicted per test
dialogue beside the true number (a collapsed model predicts one class per dialogue).
Writes benchmarks/out/synthetic_compare.md and the run folders under
benchmarks/out/synthetic_compare/<size>/.

    python benchmarks/synthetic_compare.py [--sizes default,iemocap] [--seeds 1] [--models all|a,b] [--force]
        [--epochs N] [--table-only]

A finished run folder is reused and an interrupted one continued (``--force`` retrains the
listed models): after a model's code changes, pass ``--force --models <it>``. ``--epochs N``
caps every row but the MLP at N epochs (a CPU budget; those rows say so and live in their own
folders); ``--table-only`` trains nothing and tabulates the finished runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
RECIPES = ROOT / "recipes" / "synthetic"
SIZES = {
    "default": [],
    "iemocap": ["dataset.n_dialogues=151", "dataset.n_utterances=7433"],
}


@dataclass(frozen=True)
class Variant:
    """One row: a recipe file plus overrides."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()


# Rows that are not a recipe file of their own: other registered models and documented options.
VARIANTS = [
    # The recipe builds the authors' BiModel with attention; this row is the one-directional model.
    Variant("dialoguernn unidirectional", "dialoguernn", ("model.bidirectional=false",
                                                          "model.emotion_attention=false")),
    Variant("dialoguegcn nodal_residual", "dialoguegcn", ("model.nodal_residual=true",)),
    Variant("dialoguegcn no nodal attention", "dialoguegcn", ("model.nodal_attention=false",)),
]


def variants(models: str) -> list[Variant]:
    # The MLP first: every other row is read against it.
    rows = [Variant(p.stem, p.stem) for p in sorted(sorted(RECIPES.glob("*.yaml")), key=lambda p: p.stem != "mlp")]
    rows += VARIANTS
    if models == "all":
        return rows
    wanted = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in {r.name for r in rows}]
    if unknown:
        sys.exit(f"--models: unknown {', '.join(unknown)}; known: {', '.join(r.name for r in rows)}")
    by_name = {r.name: r for r in rows}
    return [by_name["mlp"]] + [by_name[m] for m in wanted if m != "mlp"]  # in the order asked


def run_overrides(size: str, seed: int, threads: int, epochs: int | None, capped: bool,
                  extra: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """A row's ``--set`` overrides at one size and seed, and its run folder's suffix: ``-eN``
    when ``capped`` and ``--epochs N`` caps it (a CPU budget, not the recipe: the row says so)."""
    overrides = [*SIZES[size], *extra, f"train.seed={seed}", f"train.threads={threads}"]
    if epochs is None or not capped:
        return overrides, ""
    return [*overrides, f"train.max_epochs={epochs}"], f"-e{epochs}"


def distinct_counts(pred: np.ndarray, truth: np.ndarray, lengths: list[int]) -> tuple[float, float]:
    """Mean distinct predicted and true classes per dialogue; dialogues follow each other in
    ``pred`` / ``truth`` with the given lengths."""
    bounds = np.cumsum([0, *lengths])
    spans = list(zip(bounds[:-1], bounds[1:]))
    return (float(np.mean([len(set(pred[a:b])) for a, b in spans])),
            float(np.mean([len(set(truth[a:b])) for a, b in spans])))


def distinct_per_dialogue(run_dir: Path, corpus) -> tuple[float, float]:
    """Mean distinct predicted and true classes per test dialogue, from the saved predictions."""
    saved = np.load(run_dir / "predictions.npz")
    pred = saved["test_outputs"].argmax(-1)[np.argsort(saved["test_index"])]
    lengths = [len(d.labels) for d in corpus.dialogues if d.split == "test"]
    truth = np.concatenate([d.labels for d in corpus.dialogues if d.split == "test"])
    if not np.array_equal(truth, saved["test_labels"][np.argsort(saved["test_index"])]):
        raise RuntimeError(f"{run_dir}: test labels are not in corpus order")
    return distinct_counts(pred, truth, lengths)


def run_size(size: str, rows: list[Variant], seeds: int, force: set[str], threads: int,
             epochs: int | None, table_only: bool) -> str:
    from merbench.errors import MerbenchError
    from merbench.recipe import load_recipe
    from merbench.train import load_corpus, train

    stats = {}
    corpora = {}  # one generated corpus per distinct dataset section
    for row in rows:
        scores, distinct, truth, seconds = [], [], [], []
        for seed in range(seeds):
            overrides, cap = run_overrides(size, seed, threads, epochs, row.name != "mlp", row.overrides)
            run_dir = OUT / "synthetic_compare" / size / f"{row.name.replace(' ', '_')}-seed{seed}{cap}"
            t0 = time.perf_counter()
            if table_only and not (run_dir / "result.json").exists():
                continue
            try:
                recipe = load_recipe(RECIPES / f"{row.recipe}.yaml", overrides)
                key = json.dumps(recipe["dataset"], sort_keys=True)
                corpus = corpora[key] = corpora.get(key) or load_corpus(recipe)
                # A finished run is reused, an interrupted one continued (unless --force).
                train(recipe, run_dir.parent, name=run_dir.name, force=row.name in force,
                      resume=row.name not in force, progress=False, corpus=corpus)
            except MerbenchError as error:  # one model's bad recipe must not stop the table
                print(f"{size} {row.name} seed {seed}: error: {error}", flush=True)
                continue
            result = json.loads((run_dir / "result.json").read_text())
            if result["status"] != "ok":
                print(f"{size} {row.name} seed {seed}: failed ({result.get('error')})", flush=True)
                continue
            scores.append(result["metrics"]["test"]["wf1"])  # already in percent
            d, t = distinct_per_dialogue(run_dir, corpus)
            distinct.append(d)
            truth.append(t)
            seconds.append(result["training"]["seconds"])
            print(f"{size} {row.name} seed {seed}: test WF1 {scores[-1]:.1f}, {d:.2f} distinct classes per "
                  f"dialogue (true {t:.2f}), {time.perf_counter() - t0:.0f} s", flush=True)
        label = row.name if epochs is None or row.name == "mlp" else f"{row.name} (first {epochs} epochs)"
        stats[label] = (scores, distinct, truth, seconds)
    return table(size, stats)


def mean_std(scores: list[float]) -> str:
    """``mean ± sample std`` to one decimal; the mean alone for one seed (no std from one)."""
    spread = f" ± {np.std(scores, ddof=1):.1f}" if len(scores) > 1 else ""
    return f"{np.mean(scores):.1f}{spread}"


def table(size: str, stats: dict) -> str:
    mlp = np.mean(stats["mlp"][0]) if stats.get("mlp", [[]])[0] else float("nan")
    lines = [f"### synthetic, {size} size ({' '.join(SIZES[size]) or 'recipe defaults'})", "",
             "| model | test WF1 | / MLP | >= 0.8 x MLP | distinct classes per test dialogue (true) | seeds | train s |",
             "|---|---|---|---|---|---|---|"]
    for name, (scores, distinct, truth, seconds) in stats.items():
        if not scores:
            lines.append(f"| {name} | not run or failed | | | | 0 | |")
            continue
        mean = np.mean(scores)
        ratio = mean / mlp
        lines.append(f"| {name} | {mean_std(scores)} | {ratio:.2f} | {'yes' if ratio >= 0.8 else 'NO'} | "
                     f"{np.mean(distinct):.2f} ({np.mean(truth):.2f}) | {len(scores)} | {np.mean(seconds):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="default,iemocap")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--models", default="all")
    parser.add_argument("--force", action="store_true", help="retrain the listed models (not the MLP)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-only", action="store_true", help="train nothing: tabulate the finished runs")
    parser.add_argument("--epochs", type=int, default=None,
                        help="cap train.max_epochs of every row but the MLP (a CPU budget; rows are labelled)")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",")]
    if any(s not in SIZES for s in sizes):
        sys.exit(f"--sizes: expected a comma list of {', '.join(SIZES)}")
    rows = variants(args.models)
    force = {r.name for r in rows if r.name != "mlp"} if args.force else set()
    report = "## Synthetic comparison (test weighted F1, early-fusion MLP = 1.00)\n\n"
    report += f"`python benchmarks/synthetic_compare.py {shlex.join(sys.argv[1:])}`\n\n"
    for size in sizes:
        part = run_size(size, rows, args.seeds, force, args.threads, args.epochs, args.table_only)
        print(part, flush=True)
        report += part + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "synthetic_compare.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
