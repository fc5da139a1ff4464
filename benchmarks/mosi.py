"""Real-data benchmark: CMU-MOSI's trimodal features, every model on T, S, V and S+T+V.

Reads the bc-LSTM release of CMU-MOSI (the shared copy by default, never copied into the
project) under the recipes' protocol ``unseen-valid`` (train = the release's 62 training
videos, validation = 10 of its test videos, test = the other 21; docs/datasets/mosi.md), then

1. the references of ``benchmarks/mosi_baselines.py`` (logistic regression, contextual bi-GRU);
2. ``merbench compare --dataset mosi`` of every model with a recipe on each modality subset
   (``dataset.modalities``), ``--seeds`` seeds each, through the grid runner (``--jobs``);
3. per model, the paired test of S+T+V against T (``merbench significance``: bootstrap
   interval and permutation p-value over the test utterances, seeds paired).

Writes benchmarks/out/mosi.md (the tables of docs/benchmarks.md) and prints it.

    python benchmarks/mosi.py [--root PATH] [--models all] [--seeds 5] [--jobs 2]
    python benchmarks/mosi.py --variant _finetune --models mlp,hff,hrdf_mer,mcn_cl,cogmen,dialoguernn,dialoguegcn \\
        --subsets T,S+T+V --seeds 5 --jobs 2

``--variant _finetune`` reads each model's text as ``recipes/mosi/<model>_finetune.yaml`` does
(MiniLM fine-tuned on the training split, 3 cross-fitted encoders; the first run fine-tunes into
the cache) and writes ``benchmarks/out/mosi_finetune.md``; its references read the same
features. S and V do not read text, so ``--subsets T,S+T+V`` is all that changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mosi_baselines import SHARED_MOSI, SUBSETS, TABLE_SUBSETS, mean_std, subset_list  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"


# One grid of every cell, trained in this order: seed 0 of every (model, subset) first, then
# seeds 1-2, then the rest, so that a stopped benchmark leaves a whole table with fewer seeds.
# One grid rather than one per subset and stage: its two workers stay busy to the end, where
# twelve grids each waited for their slowest cell (DialogueRNN's) with one worker idle.
RUN_ORDER = ("S+T+V", "S+T", "T+V", "S+V", "T", "S", "V")


def grid(models: str, seeds: int, jobs: int, out: Path, subsets: list[str] = TABLE_SUBSETS,
         features: dict | None = None) -> tuple[dict, float]:
    """{(model, subset): [Run, ...]} over ``subsets``, each cell reading ``features`` (a
    ``dataset.features`` override) where given; the wall seconds of the grid."""
    from merbench import RunnerOptions
    from merbench.api import plan_grid
    from merbench.experiments import compare
    from merbench.experiments._common import Plan

    shared = [("dataset.features", features)] if features else []
    plans = {subset: compare.plan("mosi", models, [*shared, ("dataset.modalities", list(SUBSETS[subset])),
                                                   ("train.threads", 1)], seeds)
             for subset in RUN_ORDER if subset in subsets}
    stages = sorted({min(n, seeds) for n in (1, 3, seeds)})
    stage = {seed_index: next(i for i, n in enumerate(stages) if seed_index < n) for seed_index in range(seeds)}
    first_seed = min(c.recipe["train"]["seed"] for plan in plans.values() for c in plan.cells)
    cells = []
    for subset, plan in plans.items():
        for c in plan.cells:
            c.labels["modalities"] = subset  # what `merbench grid status` shows of each cell
            cells.append(c)
    cells.sort(key=lambda c: stage[c.recipe["train"]["seed"] - first_seed])  # stable: subset, then model order
    name = next(iter(plans.values())).name
    t0 = time.perf_counter()
    report, _ = plan_grid(Plan(name, cells, {"dataset": "mosi", "subsets": list(plans)}), "compare", out,
                          RunnerOptions(jobs=jobs, threads=1, quiet=True))
    seconds = time.perf_counter() - t0
    print(f"{len(report.grid.trained)} trained, {report.grid.reused} reused, {len(report.grid.failed)} failed, "
          f"{seconds:.0f} s", file=sys.stderr, flush=True)
    return by_cell(report.runs()), seconds


def by_cell(runs: list) -> dict:
    """{(model, subset): [Run, ...]}: one run per cell and seed (a later stage or a folder may
    give one again), in seed order."""
    from merbench.aggregate import modality_label

    by_seed: dict[tuple[str, str, int], object] = {}
    for run in runs:
        by_seed.setdefault((run.model_info.name, modality_label(run.dataset.modalities), run.seed), run)
    found: dict[tuple[str, str], list] = {}
    for (name, subset, _), run in sorted(by_seed.items(), key=lambda item: item[0]):
        found.setdefault((name, subset), []).append(run)
    return found


def finished(folders: list[Path]) -> dict:
    """{(model, subset): [Run, ...]} of the runs already under ``folders``, nothing trained:
    the report again after merbench's source changed (a run's identity includes the source,
    so a new grid would train every cell again). Only runs with the model's recipe settings
    (``train.standardize`` as recipes/mosi/<model>.yaml has it) count."""
    import merbench
    from merbench.recipe import load_recipe
    from merbench.recipe_paths import recipe_for

    standardize: dict[str, bool] = {}
    kept = []
    for run in merbench.load_results(folders):
        name = run.model_info.name
        if name not in standardize:
            standardize[name] = load_recipe(recipe_for("mosi", name))["train"]["standardize"]
        if run.ok and run.recipe["train"]["standardize"] == standardize[name]:
            kept.append(run)
    return by_cell(kept)


def cell(runs: list, metric: str) -> str:
    values = [r.metrics["test"][metric] for r in runs if r.ok]
    return mean_std(values) if values else "—"


def results_table(found: dict, models: list[str], subsets: list[str] = TABLE_SUBSETS) -> str:
    """Model x subset, test accuracy and weighted F1, mean ± std over seeds; ‡ where the
    model ran without some of its components (result.json's model.inactive_components)."""
    header = "| model | " + " | ".join(f"{s} acc | {s} WF1" for s in subsets) + " |\n"
    header += "|---|" + "---|---|" * len(subsets) + "\n"
    rows = []
    for name in models:
        cells = []
        for subset in subsets:
            runs = found.get((name, subset), [])
            mark = " ‡" if any(r.model_info.inactive_components for r in runs) else ""
            cells.append(f"{cell(runs, 'acc')}{mark} | {cell(runs, 'wf1')}{mark}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return header + "\n".join(rows) + "\n"


def fusion_tests(found: dict, models: list[str], fused: str = "S+T+V") -> str:
    """Per model: ``fused`` - T in accuracy and weighted F1, 95 % interval, permutation p."""
    from merbench.significance import compare, load_predictions

    lines = [f"| model | T acc | {fused} acc | Δ acc [95 % CI] | p | Δ WF1 [95 % CI] | p |",
             "|---|---|---|---|---|---|---|"]
    for name in models:
        text = [r for r in found.get((name, "T"), []) if r.ok]
        full = [r for r in found.get((name, fused), []) if r.ok]
        if not text or not full:
            continue
        result = compare([load_predictions(r.path) for r in text], [load_predictions(r.path) for r in full],
                         ["acc", "wf1"], resamples=10_000, seed=0)
        acc, wf1 = result["acc"], result["wf1"]
        lines.append(f"| {name} | {acc.a:.1f} | {acc.b:.1f} | {acc.difference:+.1f} [{acc.low:+.1f}, {acc.high:+.1f}] "
                     f"| {acc.p_value:.3f} | {wf1.difference:+.1f} [{wf1.low:+.1f}, {wf1.high:+.1f}] "
                     f"| {wf1.p_value:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=SHARED_MOSI)
    parser.add_argument("--models", default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variant", default="", help="recipe name suffix whose text features every cell reads, "
                                                      "e.g. _finetune (recipes/mosi/<model>_finetune.yaml)")
    parser.add_argument("--subsets", type=subset_list, default=list(TABLE_SUBSETS),
                        help="modality subsets, e.g. T,S+T,S+T+V (default: T,S,V,S+T+V)")
    parser.add_argument("--out", type=Path, help="the grid folder (default: benchmarks/out/mosi<variant>_grid)")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--report-only", nargs="*", type=Path, metavar="FOLDER",
                        help="train nothing: the tables from the runs already under these folders "
                             "(default: --out)")
    args = parser.parse_args()
    if not args.root.exists():
        sys.exit(f"{args.root}: not found (pass --root PATH to your copy of the bc-LSTM data folder)")
    os.environ["MERBENCH_MOSI_ROOT"] = str(args.root)
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"mosi{args.variant}"
    out = args.out or OUT / f"{name}_grid"
    subsets = args.subsets
    features, text = {}, "the release's text-CNN"
    if args.variant:
        from tuned import variant_features, variant_recipe

        if args.models == "all":  # every model with a variant recipe
            args.models = ",".join(sorted(p.stem[:-len(args.variant)]
                                          for p in (ROOT / "recipes" / "mosi").glob(f"*{args.variant}.yaml")))
        models = args.models.split(",")
        features = variant_features("mosi", models, args.variant)
        text = f"text as recipes/mosi/<model>{args.variant}.yaml reads it"

    report = f"# CMU-MOSI benchmark (bc-LSTM audio and video, {text}; protocol unseen-valid, binary sentiment)\n\n"
    if not args.skip_baselines:
        from mosi_baselines import table

        t0 = time.perf_counter()
        recipe = variant_recipe("mosi", models[0], args.variant) if args.variant else None
        report += "## References\n\n" + table(args.root, args.seeds, recipe=recipe, subsets=subsets)
        report += f"\n{time.perf_counter() - t0:.0f} s for both references.\n\n"
        print(report, flush=True)

    if args.report_only is not None:
        found, timing = finished(args.report_only or [out]), ""
    else:
        found, seconds = grid(args.models, args.seeds, args.jobs, out, subsets, features.get("dataset.features"))
        timing = f"Wall time of the grid: {seconds / 60:.1f} min with --jobs {args.jobs}."
    models = sorted({name for name, _ in found})
    report += (f"## merbench models ({args.seeds} seeds, test split)\n\n" + results_table(found, models, subsets)
               + f"\n‡ the model ran without some of its components (one modality). {timing}\n\n")
    for fused in (s for s in subsets if "+" in s):
        if "T" in subsets:
            report += f"## Does fusion help? {fused} against T, paired over test utterances and seeds\n\n"
            report += fusion_tests(found, models, fused) + "\n"
    (OUT / f"{name}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
