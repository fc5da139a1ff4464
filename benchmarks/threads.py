"""Training speed of `merbench train` against its torch thread count: the measurement behind
the default of ``train.threads``.

Trains fixed synthetic recipes (``recipes/synthetic/mlp.yaml`` and ``hff.yaml``: 900
utterances, 60 dialogues, dims 32 / 64 / 48, seed 0; ``--iemocap-size``: 7,433 utterances,
151 dialogues, dims 128 / 768 / 512) for a few epochs with 1 thread, 2
threads and torch's own default (``train.threads: 0``), each in a fresh process, and prints
the training utterances/s (median over epochs, from the run's metrics) and the seconds of the
whole run. The machine's load average is printed beside it: thread counts above the free
cores are what slows a loaded machine down. Writes benchmarks/out/threads.md.

    python benchmarks/threads.py [--recipes mlp,hff] [--threads 1,2,0] [--epochs 3] [--repeats 2]
                                 [--iemocap-size]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
IEMOCAP_SIZE = ["dataset.n_dialogues=151", "dataset.n_utterances=7433", "dataset.audio_dim=128",
                "dataset.text_dim=768", "dataset.vision_dim=512"]


def measure(recipe_path: str, threads: int, epochs: int, iemocap_size: bool) -> dict:
    """One training run in this (fresh) process; threads 0 = torch's default."""
    import torch

    from merbench.recipe import load_recipe
    from merbench.train import train

    recipe = load_recipe(Path(recipe_path), [f"train.threads={threads}", f"train.max_epochs={epochs}",
                                            f"train.patience={epochs}", "train.device=cpu",
                                            *(IEMOCAP_SIZE if iemocap_size else [])])
    with tempfile.TemporaryDirectory() as out:
        run_dir = train(recipe, Path(out), progress=False)
        result = json.loads((run_dir / "result.json").read_text())
    rates = [h["utt_per_s"] for h in result["training"]["history"]]
    return {"threads_used": result["provenance"]["threads"], "utt_per_s": statistics.median(rates),
            "seconds": result["training"]["seconds"], "torch_default": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="mlp,hff", help="recipes/synthetic/<name>.yaml, comma-separated")
    parser.add_argument("--threads", default="1,2,0", help="thread counts; 0 = torch's default")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting, interleaved; the median is shown")
    parser.add_argument("--iemocap-size", action="store_true", help="the corpus at IEMOCAP's size and the HFF paper's dims")
    parser.add_argument("--one", nargs=3, metavar=("RECIPE", "THREADS", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]), args.iemocap_size)))
        return

    import multiprocessing

    cores = multiprocessing.cpu_count()
    rows = []
    settings = [(name, int(t)) for name in args.recipes.split(",") for t in args.threads.split(",")]
    measured: dict[tuple[str, int], list[dict]] = {s: [] for s in settings}
    for _ in range(args.repeats):  # interleaved, so a change of the machine's load hits every setting
        for name, threads in settings:
            recipe = str(ROOT / "recipes" / "synthetic" / f"{name}.yaml")
            env = dict(os.environ)
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.pop(var, None)  # torch's default must be torch's own
            load = os.getloadavg()[0]
            command = [sys.executable, __file__, "--one", recipe, str(threads), str(args.epochs)]
            done = subprocess.run(command + (["--iemocap-size"] if args.iemocap_size else []),
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"{name} threads {threads}: {done.stderr.strip().splitlines()[-1]}")
            measured[(name, threads)].append({**json.loads(done.stdout.strip().splitlines()[-1]), "load": load})
    for (name, threads), runs in measured.items():
        label = f"{threads}" if threads else f"torch default ({runs[0]['torch_default']})"
        rows.append((name, label, statistics.median(r["utt_per_s"] for r in runs),
                     statistics.median(r["seconds"] for r in runs), statistics.mean(r["load"] for r in runs)))
    size = "IEMOCAP-sized corpus" if args.iemocap_size else "the recipes' corpus"
    lines = [f"{cores} cores, {size}, {args.epochs} epochs, median of {args.repeats} runs per setting", "",
             "| recipe | threads | train utt/s | run seconds | load average (1 min) |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {n} | {t} | {r:,.0f} | {s:.1f} | {la:.1f} |" for n, t, r, s, la in rows]
    table = "\n".join(lines)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"threads{'-iemocap' if args.iemocap_size else ''}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
