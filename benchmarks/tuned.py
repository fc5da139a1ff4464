"""Real-data benchmark of ``merbench tune``: the same tuning budget for every model, then its
tuned table beside the untuned one (issue 22).

Per model, ``merbench tune MODEL --dataset D --trials N --seeds-final 0`` (validation only;
Optuna's TPE sampler, seed 0, median pruning), then ``merbench compare --dataset D --models ...
--tuned OUT --seeds K`` (each row from its own ``best.yaml``, test scored only here) and the
same ``compare`` without ``--tuned`` (each row from its hand-made recipe), both through the
grid runner. Writes ``benchmarks/out/tuned_<dataset>.md`` (the tables of docs/benchmarks.md,
the wall time of every study, whether tuning changed the ranking) and prints it.

    python benchmarks/tuned.py --dataset mosi --models mlp,hff,hrdf_mer,mcn_cl,cogmen,dialoguernn \\
        --trials 30 --seeds 5 --jobs 2
    python benchmarks/tuned.py --dataset iemocap --variant _finetune --models hff,cogmen --trials 20 \\
        --seeds 3 --jobs 2

``--variant _finetune`` tunes ``recipes/<dataset>/<model>_finetune.yaml`` (text features from
MiniLM fine-tuned on the training split, read from the cache: the first run fine-tunes it) and
compares the untuned rows on the same features (that recipe's ``dataset.features``).

The datasets are read where their recipes say (``MERBENCH_MOSI_ROOT``; ``dataset.path`` of
the IEMOCAP recipes), never copied. ``--jobs-ratio MODEL`` also runs one extra study of
MODEL serially and with ``--jobs 2`` on fresh folders (random sampler, so the same trials)
and reports the wall-time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mosi_baselines import SHARED_MOSI, mean_std  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_IEMOCAP = ROOT.parent / "shared" / "data" / "iemocap" / "iemocap.pkl"
OUT = ROOT / "benchmarks" / "out"


def runner(jobs: int):
    from merbench import RunnerOptions

    return RunnerOptions(jobs=jobs, threads=1, quiet=True)


def variant_recipe(dataset: str, model: str, variant: str) -> Path | None:
    """``recipes/<dataset>/<model><variant>.yaml`` (None without a variant)."""
    return ROOT / "recipes" / dataset / f"{model}{variant}.yaml" if variant else None


def variant_features(dataset: str, models: list[str], variant: str) -> dict:
    """The overrides that make each model's plain recipe read its variant's features: the
    variant's ``dataset.features`` (the same for every model, or the rows would not compare)."""
    if not variant:
        return {}
    from merbench.recipe import load_recipe

    features = [load_recipe(variant_recipe(dataset, m, variant)).data["dataset"]["features"] for m in models]
    if any(f != features[0] for f in features):
        sys.exit(f"error: the {variant} recipes of {', '.join(models)} read different features")
    return {"dataset.features": features[0]}


def tune_all(dataset: str, models: list[str], trials: int, jobs: int, out: Path,
             variant: str = "") -> dict[str, dict]:
    """{model: {wall, best trial, validation, trials complete / pruned / failed}} of each study."""
    import merbench

    studies = {}
    for name in models:
        t0 = time.perf_counter()
        report = merbench.tune(name, dataset, trials, seeds_final=0, out=out, runner=runner(jobs),
                               recipe=variant_recipe(dataset, name, variant))
        states = [t.state for t in report.trials]
        studies[name] = {
            "wall_s": round(time.perf_counter() - t0, 1),
            "best_trial": report.best.number if report.best else None,
            "best_valid": round(report.best.value, 2) if report.best else None,
            "complete": states.count("complete"), "pruned": states.count("pruned"),
            "failed": states.count("failed"), "trained_now": len(report.trained),
            "best_recipe": str(report.best_recipe) if report.best_recipe else None,
        }
        print(f"tune {name}: {studies[name]}", file=sys.stderr, flush=True)
    return studies


def compare(dataset: str, models: list[str], seeds: int, jobs: int, out: Path, tuned: Path | None,
            overrides: dict | None = None):
    import merbench

    t0 = time.perf_counter()
    report = merbench.compare(dataset, models, seeds=seeds, out=out, runner=runner(jobs),
                              tuned=tuned, **(overrides or {}))
    return report, time.perf_counter() - t0


def scores(report) -> dict[str, dict[str, list[float]]]:
    """{model: {"acc": [...], "wf1": [...]}}: the finished seeds' test scores."""
    out: dict[str, dict[str, list[float]]] = {}
    for run in report.runs():
        per_model = out.setdefault(run.model_info.name, {"acc": [], "wf1": []})
        for metric in per_model:
            per_model[metric].append(run.metrics["test"][metric])
    return out


def ranking(table: dict) -> list[str]:
    return sorted(table, key=lambda m: -np.mean(table[m]["wf1"]))


def report_md(dataset: str, studies: dict, untuned: dict, tuned: dict, walls: dict, trials: int,
              seeds: int, jobs: int) -> str:
    lines = [f"Tuned vs untuned on {dataset}: {trials} trials per model (TPE, seed 0, median pruning, "
             f"validation weighted F1), then {seeds} seeds of each recipe; test accuracy and weighted F1, "
             f"mean ± sample std; `--jobs {jobs}`.", "",
             "| model | untuned acc | untuned WF1 | tuned acc | tuned WF1 | Δ WF1 | best trial (valid WF1) | "
             "trials complete / pruned / failed | study wall (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in studies:
        u, t, s = untuned.get(name), tuned.get(name), studies[name]
        cell = (lambda x, metric: mean_std(x[metric]) if x else "—")
        delta = f"{np.mean(t['wf1']) - np.mean(u['wf1']):+.1f}" if u and t else "—"
        lines.append(f"| {name} | {cell(u, 'acc')} | {cell(u, 'wf1')} | {cell(t, 'acc')} | {cell(t, 'wf1')} | {delta} | "
                     f"{s['best_trial']} ({s['best_valid']}) | {s['complete']} / {s['pruned']} / {s['failed']} | "
                     f"{s['wall_s']:.0f} |")
    lines += ["", f"Ranking by test WF1, untuned: {' > '.join(ranking(untuned))}",
              f"Ranking by test WF1, tuned:   {' > '.join(ranking(tuned))}",
              f"Ranking changed: {'yes' if ranking(untuned) != ranking(tuned) else 'no'}", "",
              "Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in walls.items())]
    return "\n".join(lines) + "\n"


def jobs_ratio(dataset: str, model: str, trials: int, out: Path) -> dict:
    """Wall seconds of the same random-sampler study serially and with --jobs 2."""
    import merbench

    walls = {}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        merbench.tune(model, dataset, trials, seeds_final=0, sampler="random", pruner="none",
                      out=out / f"jobs{jobs}", runner=runner(jobs))
        walls[jobs] = round(time.perf_counter() - t0, 1)
    return {"model": model, "trials": trials, "jobs1_s": walls[1], "jobs2_s": walls[2],
            "ratio": round(walls[2] / walls[1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--variant", default="", help="recipe name suffix, e.g. _finetune")
    parser.add_argument("--jobs-ratio", default=None, metavar="MODEL")
    parser.add_argument("--ratio-trials", type=int, default=10)
    args = parser.parse_args()
    if args.dataset == "mosi" and "MERBENCH_MOSI_ROOT" not in os.environ and SHARED_MOSI.is_dir():
        os.environ["MERBENCH_MOSI_ROOT"] = str(SHARED_MOSI)
    if args.dataset == "iemocap" and "MERBENCH_IEMOCAP_ROOT" not in os.environ and SHARED_IEMOCAP.is_file():
        os.environ["MERBENCH_IEMOCAP_ROOT"] = str(SHARED_IEMOCAP)
    name = f"tuned_{args.dataset}{args.variant}"
    out = args.out or OUT / name
    models = args.models.split(",")
    t0 = time.perf_counter()
    studies = tune_all(args.dataset, models, args.trials, args.jobs, out, args.variant)
    walls = {"studies": time.perf_counter() - t0}
    tuned_report, walls["tuned compare"] = compare(args.dataset, models, args.seeds, args.jobs, out, out)
    untuned_report, walls["untuned compare"] = compare(args.dataset, models, args.seeds, args.jobs, out, None,
                                                       variant_features(args.dataset, models, args.variant))
    text = report_md(args.dataset, studies, scores(untuned_report), scores(tuned_report), walls,
                     args.trials, args.seeds, args.jobs)
    text += "\n" + tuned_report.render("markdown") + "\n"
    record = {"studies": studies, "walls": walls}
    if args.jobs_ratio:
        record["jobs_ratio"] = jobs_ratio(args.dataset, args.jobs_ratio, args.ratio_trials, out / "ratio")
        r = record["jobs_ratio"]
        text += (f"\n`--jobs 2` against serial, {r['trials']} trials of {r['model']} (random sampler, no pruning): "
                 f"{r['jobs2_s']:.0f} s against {r['jobs1_s']:.0f} s, ratio {r['ratio']:.2f}\n")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.md").write_text(text)
    (OUT / f"{name}.json").write_text(json.dumps(record, indent=2))
    print(text)


if __name__ == "__main__":
    main()
