"""Side-by-side fidelity benchmark: MMSA 2.2.1's TFN / LMF / MFN / MFM against merbench's, on
one MOSEI-shaped synthetic corpus in MMSA's pickle layout, 3 seeds each.

    python benchmarks/fidelity/run.py [--models mfm,tfn,mfn,lmf] [--seeds 1111,1112,1113] [--jobs 4]

(a) sets up MMSA 2.2.1 in its own virtual env (benchmarks/out/mmsa-venv; offline from the
local package index); (b) writes the corpus (corpus.py) to
benchmarks/out/fidelity/corpus/unaligned_50.pkl; (c) trains MMSA's models with MMSA's own
loop and default MOSEI configuration (mmsa_side.py, ``MMSA_run(..., gpu_ids=[])`` on CPU)
and merbench's through the ``mosei_mmsa`` reader with recipes/mosei/<model>.yaml
(merbench_side.py); both sides of one (model, seed) run at the same time, one torch thread
each, so they share the same machine load (``--jobs N``: N pairs at a time); (d) prints one table and writes it to
benchmarks/out/fidelity/table.md (docs/fidelity.md shows the latest).

The target: every metric within 2 x the larger std of the two sides, and merbench's epoch no
slower than MMSA's. Both sides use the same early-stopping patience (``--patience``; MMSA's
default 8 unless set) and otherwise their own defaults. ``--models ...,baseline`` adds a
reference row that is not a pair of the same model: MMSA's simplest fusion model (LF_DNN, late
fusion) beside merbench's early-fusion MLP (recipes/mosei/mlp.yaml), so each side's models can
be read against a simple baseline of the same code base (the target does not apply to it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import re
import shutil
import venv
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from merbench.run_folder import LOG, RESULT

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "benchmarks" / "out"
VENV = OUT / "mmsa-venv"
ORDER = ["tfn", "lmf", "mfn", "mfm", "baseline"]  # table rows; --models runs the heaviest first by default
# Each row's model name on each side (MMSA, merbench); "baseline" is two different models.
SIDES = {"baseline": ("lf_dnn", "mlp")}


def side_names(row: str) -> tuple[str, str]:
    return SIDES.get(row, (row, row))
METRICS = [("acc2", "ACC-2"), ("acc7", "ACC-7"), ("mae", "MAE"), ("corr", "Corr")]


def setup_mmsa() -> Path:
    """MMSA 2.2.1 beside torch 2.13 in its own env; its declared dependencies are not all
    needed (--no-deps), these are the ones its training path imports."""
    python = VENV / "bin" / "python"
    if not python.exists():
        venv.create(VENV, with_pip=True)
    check = subprocess.run([str(python), "-c", "import MMSA, pandas, sklearn, easydict, pynvml"],
                           capture_output=True)
    if check.returncode:
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["torch==2.13.0"], check=True)
        subprocess.run(pip + ["--no-deps", "mmsa==2.2.1"], check=True)
        subprocess.run(pip + ["easydict", "nvidia-ml-py", "transformers", "pandas", "scikit-learn"], check=True)
    return python


def run_pair(model: str, seed: int, pickle: Path, mmsa_python: Path, patience: int, threads: int) -> None:
    """One seed of one row on both sides, at the same time (so under the same load)."""
    mmsa_model, our_model = side_names(model)
    out = OUT / "fidelity" / model / f"seed{seed}"
    shutil.rmtree(out, ignore_errors=True)  # MMSA appends to its log: start from nothing
    out.mkdir(parents=True)
    env = {"TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    mmsa = subprocess.Popen(
        [str(mmsa_python), str(HERE / "mmsa_side.py"), mmsa_model, str(pickle), str(out / "mmsa"), str(seed),
         "--early-stop", str(patience), "--threads", str(threads)],
        stdout=open(out / "mmsa.jsonl", "w"), stderr=open(out / "mmsa.log", "w"), cwd=out, env=env)
    ours = subprocess.Popen(
        [sys.executable, str(HERE / "merbench_side.py"), our_model, str(pickle), str(out / "merbench"), str(seed),
         "--patience", str(patience), "--threads", str(threads)],
        stdout=open(out / "merbench.jsonl", "w"), stderr=open(out / "merbench.log", "w"), cwd=ROOT, env=env)
    for proc, name in ((mmsa, "mmsa"), (ours, "merbench")):
        proc.communicate()
        if proc.returncode:
            sys.exit(f"{name} side of {model} seed {seed} failed (exit {proc.returncode}); see {out / (name + '.log')}")
    print(f"{model} seed {seed}: done", flush=True)


def _stamp(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _per_epoch(stamps: list[float]) -> float:
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")


def collect(model: str, seed: int) -> list[dict]:
    """Both sides' results for one (model, seed), read from the files each side wrote: MMSA's
    log (its "VAL-" records, one per epoch, and its "TEST-" record) and merbench's run folder
    (result.json, and train.log's "epoch N" records). Missing or unfinished: no row."""
    out, rows = OUT / "fidelity" / model / f"seed{seed}", []
    log = out / "mmsa" / "logs" / f"{side_names(model)[0]}-mosei.log"
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    starts = [i for i, ln in enumerate(lines) if "Program Start" in ln]
    lines = lines[starts[-1]:] if starts else lines  # the last run only
    test = [ln for ln in lines if "- TEST-(" in ln]
    if test:
        values = dict(re.findall(r"(\w+): ([-\d.]+)", test[-1].split(">>", 1)[1]))
        stamps = [_stamp(ln) for ln in lines if "- VAL-(" in ln]
        rows.append({"side": "mmsa", "model": model, "seed": seed, "epochs": len(stamps),
                     "seconds_per_epoch": _per_epoch(stamps), "acc2": 100 * float(values["Non0_acc_2"]),
                     "acc7": 100 * float(values["Mult_acc_7"]), "mae": float(values["MAE"]),
                     "corr": float(values["Corr"])})
    for result in (out / "merbench").glob(f"*/{RESULT}"):
        data = json.loads(result.read_text(encoding="utf-8"))
        if data.get("status") != "ok":
            continue
        test = data["metrics"]["test"]
        stamps = [_stamp(ln) for ln in (result.parent / LOG).read_text(encoding="utf-8").splitlines()
                  if ln[24:].startswith("epoch ")]
        rows.append({"side": "merbench", "model": model, "seed": seed, "epochs": len(stamps),
                     "seconds_per_epoch": _per_epoch(stamps), "acc2": test["acc2_non0"], "acc7": test["acc7"],
                     "mae": test["mae"], "corr": test["corr"]})
    return rows


def table(rows: list[dict], models: list[str]) -> str:
    def stats(side, model, key):
        v = np.array([r[key] for r in rows if r["side"] == side and r["model"] == model], dtype=float)
        if not len(v):
            return float("nan"), float("nan")
        return v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0

    def count(side, model):
        return sum(r["side"] == side and r["model"] == model for r in rows)

    head = ["model"] + [f"{label} {side}" for _, label in METRICS for side in ("MMSA", "merbench", "diff")] \
        + ["s/epoch MMSA", "s/epoch merbench", "epochs MMSA", "epochs merbench", "seeds", "target met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in sorted(models, key=lambda m: ORDER.index(m) if m in ORDER else len(ORDER)):
        names = side_names(model)
        reference = names[0] != names[1]  # two different models: no target
        label = f"{names[0].upper()} / {names[1].upper()} (reference)" if reference else model.upper()
        cells, ok = [label], True
        for key, _ in METRICS:
            (ma, sa), (mb, sb) = stats("mmsa", model, key), stats("merbench", model, key)
            digits = 3 if key in ("mae", "corr") else 1
            within = abs(mb - ma) <= 2 * max(sa, sb)
            ok &= within
            cells += [f"{ma:.{digits}f} ± {sa:.{digits}f}", f"{mb:.{digits}f} ± {sb:.{digits}f}",
                      f"{mb - ma:+.{digits}f}" + ("" if within or reference else " ✗")]
        ta, tb = stats("mmsa", model, "seconds_per_epoch")[0], stats("merbench", model, "seconds_per_epoch")[0]
        ea, eb = stats("mmsa", model, "epochs")[0], stats("merbench", model, "epochs")[0]
        ok &= tb <= ta
        cells += [f"{ta:.2f}", f"{tb:.2f}", f"{ea:.1f}", f"{eb:.1f}",
                  f"{count('mmsa', model)} / {count('merbench', model)}",
                  "n/a" if reference else "yes" if ok else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mfm,tfn,mfn,lmf")
    parser.add_argument("--seeds", default="1111,1112,1113")
    parser.add_argument("--patience", type=int, default=8, help="early stopping, both sides (MMSA's early_stop)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=4, help="(model, seed) pairs trained at the same time")
    parser.add_argument("--collect", action="store_true", help="only tabulate the runs already on disk")
    parser.add_argument("--n-train", type=int, default=160)
    parser.add_argument("--n-valid", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=120)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from corpus import write_corpus

    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    pairs = [(model, seed) for model in models for seed in seeds]
    if not args.collect:
        mmsa_python = setup_mmsa()
        pickle = write_corpus(OUT / "fidelity" / "corpus" / "unaligned_50.pkl", n_train=args.n_train,
                              n_valid=args.n_valid, n_test=args.n_test, frames=args.frames)
        # --jobs (model, seed) pairs at a time, each pair two processes (MMSA's side and merbench's).
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda p: run_pair(p[0], p[1], pickle, mmsa_python, args.patience, args.threads), pairs))
    rows = [r for model, seed in pairs for r in collect(model, seed)]
    command = "python benchmarks/fidelity/run.py " + " ".join(a for a in sys.argv[1:] if a != "--collect")
    text = (f"Command: `{command.strip()}`\n\nCorpus: {args.n_train} / {args.n_valid} / {args.n_test} clips "
            f"(train / valid / test), {args.frames} frames, text 300 / audio 74 / vision 35; seeds {args.seeds}; "
            f"early-stopping patience {args.patience} on both sides; {args.threads} torch thread(s) each.\n\n"
            + table(rows, models) + "\n")
    (OUT / "fidelity" / "table.md").write_text(text, encoding="utf-8")
    (OUT / "fidelity" / "runs.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
