"""Train merbench's model on the MMSA pickle through the ``mosei_mmsa`` reader with the
recipe recipes/mosei/MODEL.yaml; print one JSON line per seed (same fields as mmsa_side.py).

    python merbench_side.py MODEL PICKLE OUT_DIR SEED [SEED ...] [--patience K]

Seconds per epoch: the spacing of the training log's "epoch N" records (one epoch of
training plus validation), as mmsa_side.py measures MMSA's.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from merbench.recipe import load_recipe
from merbench.results import load_json
from merbench.run_folder import RESULT
from merbench.train import load_corpus, train
from epoch_clock import EpochClock  # beside this script

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "mosei"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("pickle")
    parser.add_argument("out")
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--patience", type=int, default=0, help="0 = the recipe's (8, as MMSA)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    clock = EpochClock("epoch ")
    logging.getLogger("merbench.train").addHandler(clock)
    corpus = None
    for seed in args.seeds:
        overrides = [f"dataset.root={args.pickle}", "dataset.format=mosei_mmsa", f"train.seed={seed}",
                     f"train.threads={args.threads}", "train.device=cpu"]
        if args.patience:
            overrides.append(f"train.patience={args.patience}")
        recipe = load_recipe(RECIPES / f"{args.model}.yaml", overrides)
        corpus = corpus if corpus is not None else load_corpus(recipe)
        clock.times = []
        run_dir = train(recipe, Path(args.out), force=True, progress=False, corpus=corpus)
        result = load_json(run_dir / RESULT, "the run's result file")
        test = result["metrics"]["test"]
        times = clock.times
        epochs = len(times)
        per_epoch = (times[-1] - times[0]) / (epochs - 1) if epochs > 1 else float("nan")
        print(json.dumps({"side": "merbench", "model": args.model, "seed": seed, "epochs": epochs,
                          "seconds_per_epoch": per_epoch, "acc2": test["acc2_non0"], "acc7": test["acc7"],
                          "mae": test["mae"], "corr": test["corr"]}), flush=True)


if __name__ == "__main__":
    main()
