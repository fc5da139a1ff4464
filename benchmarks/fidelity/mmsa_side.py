"""Run inside MMSA's own virtual env: train MMSA's model with MMSA's own loop and default
MOSEI configuration on a custom pickle; print one JSON line per seed.

    python mmsa_side.py MODEL PICKLE OUT_DIR SEED [SEED ...] [--early-stop K]

``MMSA_run(..., custom_feature=PICKLE, gpu_ids=[])`` runs on the CPU (with
``torch.cuda.set_device`` made a no-op when there is no GPU, see main). Only two things are
observed from outside, nothing inside MMSA is changed: each seed's test results (the dict
``MMSA.run._run`` returns) and the time of each validation log record ("VAL-(model) >>"),
whose spacing is one epoch of training plus validation.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch
from epoch_clock import EpochClock  # beside this script


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("pickle")
    parser.add_argument("out")
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--early-stop", type=int, default=0, help="0 = MMSA's default (8)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not torch.cuda.is_available():
        # MMSA_run calls torch.cuda.set_device(args['device']) even for the CPU device it picked
        # (gpu_ids=[] and no GPU); torch 2.13 rejects a CPU device there. Nothing to select.
        torch.cuda.set_device = lambda device: None

    import MMSA.run as mmsa_run

    clock = EpochClock("VAL-")
    logging.getLogger("MMSA").addHandler(clock)
    original = mmsa_run._run
    for seed in args.seeds:
        results = []

        def observed(*a, **k):
            results.append(original(*a, **k))
            return results[-1]

        mmsa_run._run = observed
        clock.times = []
        config = {"early_stop": args.early_stop} if args.early_stop else None
        mmsa_run.MMSA_run(args.model, "mosei", config=config, seeds=[seed], custom_feature=args.pickle,
                          gpu_ids=[], num_workers=0, verbose_level=0,
                          model_save_dir=f"{args.out}/models", res_save_dir=f"{args.out}/results",
                          log_dir=f"{args.out}/logs")
        times = clock.times
        epochs = len(times)
        per_epoch = (times[-1] - times[0]) / (epochs - 1) if epochs > 1 else float("nan")
        res = {k: float(v) for k, v in results[0].items()}
        print(json.dumps({"side": "mmsa", "model": args.model, "seed": seed, "epochs": epochs,
                          "seconds_per_epoch": per_epoch, "acc2": 100 * res["Non0_acc_2"],
                          "acc7": 100 * res["Mult_acc_7"], "mae": res["MAE"], "corr": res["Corr"]}),
              flush=True)


if __name__ == "__main__":
    main()
