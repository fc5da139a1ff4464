"""Real-data benchmark: IEMOCAP transcripts, a text encoder fine-tuned on the training split vs frozen.

Reads the COSMIC transcripts pickle (the shared copy by default, never copied into the
project; Session 5 test, the file's validation dialogues), then
1. fine-tunes the encoder ``--text`` names, ``minilm`` or ``mpnet`` (``merbench.features.finetune``; a finished folder under the cache's
   ``finetuned/`` is reused, an interrupted one resumes) and reports seconds per epoch and the
   validation curve from its record;
2. extracts features from the frozen and the fine-tuned encoder (the cache manifest gives the
   extraction throughput of a fresh extraction);
3. scores a per-utterance classifier (standardised logistic regression, C chosen on the
   validation split) on both, 6-way and 4-way (the 4-way rows take the 6-way corpus's
   features of the 4-way utterances: the encoder saw 6-way training labels only);
4. trains dialogue-level models on the fine-tuned features with ``merbench compare`` (the
   recipe key ``dataset.features.text.finetune`` finds the same encoder), ``--seeds`` seeds.
Writes benchmarks/out/finetune_iemocap.{md,json} and prints the Markdown.

    python benchmarks/finetune_iemocap.py [--pickle PATH] [--text minilm|mpnet] [--context 0] [--epochs 2] [--lr 1e-4] [--batch-size 32]
        [--encoder-seeds 0] [--crossfit 0] [--crossfit-eval full,mean] [--models mlp,cogmen,dialoguernn] [--seeds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_PICKLE = ROOT.parent / "shared" / "data" / "iemocap" / "iemocap.pkl"
OUT = ROOT / "benchmarks" / "out"


def arrays(corpus, raw4=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split (features (N, D), labels (N,)); with ``raw4``, the 4-way utterances and labels
    with the 6-way corpus's features (same utterance ids: no second extraction)."""
    out = {}
    for split in ("train", "valid", "test"):
        if raw4 is None:
            dialogues = corpus.split(split)
            x = np.stack([f for d in dialogues for f in d.features["text"]])  # (N, D)
            y = np.concatenate([d.labels for d in dialogues])  # (N,)
        else:
            by_id = {i: f for d in corpus.dialogues for i, f in zip(d.utterance_ids, d.features["text"])}
            utts = [u for d in raw4.dialogues if d.split == split for u in d.utterances]
            x = np.stack([by_id[u.id] for u in utts])
            y = np.array([u.label for u in utts])
        out[split] = (x, y)
    return out


def logistic(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Standardised logistic regression, C chosen on validation weighted F1; test scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr), (xva, yva), (xte, yte) = data["train"], data["valid"], data["test"]
    scaler = StandardScaler().fit(xtr)
    xtr, xva, xte = scaler.transform(xtr), scaler.transform(xva), scaler.transform(xte)
    best = None
    for c in (0.001, 0.01, 0.1, 1.0):
        clf = LogisticRegression(C=c, max_iter=3000).fit(xtr, ytr)
        score = f1_score(yva, clf.predict(xva), average="weighted")
        if best is None or score > best[0]:
            best = (score, c, clf)
    score, c, clf = best
    pred = clf.predict(xte)
    return {"C": c, "valid_wf1": 100 * score, "test_wf1": 100 * f1_score(yte, pred, average="weighted"),
            "test_acc": 100 * accuracy_score(yte, pred)}


def write_report(args, results: dict) -> None:
    """benchmarks/out/finetune_iemocap[_mpnet]_ctx<K>_cf<K>.{md,json}, rewritten after each stage."""
    report = [f"# IEMOCAP text only, fine-tuned {args.text} (session5-test; context {args.context}, "
              f"{args.epochs} epochs, crossfit {args.crossfit}, {args.threads} threads)\n"]
    report.append("## Encoders\n")
    for seed, e in results["encoders"].items():
        report.append(f"- seed {seed}: `{e['folder']}` " + json.dumps({k: v for k, v in e.items() if k != "folder"}))
    report.append("\n## Per-utterance logistic regression (test)\n\n| features | WF1 | acc | C | valid WF1 | extract utt/s |\n|---|---|---|---|---|---|")
    for name, r in results["logistic"].items():
        report.append(f"| {name} | {r['test_wf1']:.1f} | {r['test_acc']:.1f} | {r['C']} | {r['valid_wf1']:.1f} | "
                      f"{r.get('extract_utt_per_s') or '-'} |")
    for name, c in results["compare"].items():
        report.append(f"\n## merbench compare on fine-tuned features, {name} (wall {c['wall_seconds']} s, rc {c['returncode']})\n\n{c['table']}")
    text = "\n".join(report) + "\n"
    stem = f"finetune_iemocap{'_' + args.text if args.text != 'minilm' else ''}_ctx{args.context}_cf{args.crossfit}"
    (OUT / f"{stem}.md").write_text(text)
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2))
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle", type=Path, default=SHARED_PICKLE)
    parser.add_argument("--text", choices=("minilm", "mpnet"), default="minilm", help="the encoder to fine-tune")
    parser.add_argument("--context", type=int, default=0)
    # Defaults = recipes/iemocap/*_finetune.yaml.
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--encoder-seeds", default="0", help="comma-separated fine-tuning seeds")
    parser.add_argument("--crossfit", type=int, default=0)
    parser.add_argument("--crossfit-eval", default="full,mean",
                        help="with --crossfit: the variants to score (mean alone skips the full encoder)")
    parser.add_argument("--models", default="mlp,cogmen,dialoguernn", help="models for compare, cheapest first ('' = none)")
    parser.add_argument("--seeds", type=int, default=3, help="model seeds per encoder in compare")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.pickle.exists():
        sys.exit(f"{args.pickle}: not found (pass --pickle PATH to your copy of the COSMIC iemocap.pkl)")

    import torch

    from merbench.data.readers import read_corpus
    from merbench.features.build import build_corpus
    from merbench.features.finetune import RECORD, FinetuneOptions, finetune
    from merbench.features.text import named_model_dir

    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("MERBENCH_CACHE", OUT / "cache"))
    raw = {k: read_corpus("iemocap", args.pickle, labels=k, modalities=("text",)) for k in ("iemocap6", "iemocap4")}
    results: dict = {"text": args.text, "context": args.context, "epochs": args.epochs, "crossfit": args.crossfit,
                     "threads": args.threads, "encoders": {}, "logistic": {}, "compare": {}}

    frozen = build_corpus(raw["iemocap6"], {"text": args.text}, cache_root=cache, progress=False)
    results["logistic"]["frozen iemocap6"] = logistic(arrays(frozen))
    results["logistic"]["frozen iemocap4"] = logistic(arrays(frozen, raw["iemocap4"]))
    write_report(args, results)
    variants = args.crossfit_eval.split(",") if args.crossfit else ["full"]
    for seed in [int(s) for s in args.encoder_seeds.split(",")]:
        options = FinetuneOptions(context=args.context, epochs=args.epochs, seed=seed, lr=args.lr,
                                  batch_size=args.batch_size, crossfit=args.crossfit)
        t0 = time.perf_counter()
        folder = finetune(raw["iemocap6"], named_model_dir(args.text), cache / "finetuned", options, threads=args.threads,
                          progress=False, command=sys.argv, full="full" in variants)
        record = json.loads((folder / RECORD).read_text())
        members = {n: json.loads((folder / n / RECORD).read_text()) for n in record.get("encoders", {})}
        results["encoders"][str(seed)] = {"folder": folder.name, "wall_seconds_this_call": round(time.perf_counter() - t0, 1),
                                          **({"members": {n: {k: r[k] for k in ("seconds_per_epoch", "best_epoch", "history")}
                                                          for n, r in members.items()}} if members else
                                             {k: record[k] for k in ("seconds_per_epoch", "best_epoch", "best_valid",
                                                                      "history", "utterances_per_second")})}
        for variant in variants:
            spec = {"name": args.text, "model": str(folder), **({"crossfit_eval": variant} if args.crossfit else {})}
            r = raw["iemocap6"]
            corpus = build_corpus(r, {"text": spec}, cache_root=cache, progress=False)
            name = f"finetuned seed {seed}{' crossfit ' + variant if args.crossfit else ''}"
            results["logistic"][f"{name} iemocap6"] = logistic(arrays(corpus))
            results["logistic"][f"{name} iemocap4"] = logistic(arrays(corpus, raw["iemocap4"]))
            manifest = json.loads((cache / f"iemocap-{r.fingerprint()[:16]}" / f"text-{args.text}-{corpus.info['features']['text']['config_hash'][:16]}" / "manifest.json").read_text())
            results["logistic"][f"{name} iemocap6"]["extract_utt_per_s"] = manifest.get("utterances_per_second")
            write_report(args, results)
        if args.models:
            finetune_key = {"context": args.context, "epochs": args.epochs, "seed": seed, "lr": args.lr,
                            "batch_size": args.batch_size, "crossfit": args.crossfit}
            for variant, model in [(v, m) for v in variants for m in args.models.split(",")]:
                # One compare per model: a partial benchmark still reports the models it finished.
                text = {"name": args.text, "finetune": finetune_key,
                        **({"crossfit_eval": variant} if args.crossfit else {})}
                env = {**os.environ, "MERBENCH_CACHE": str(cache), "MERBENCH_IEMOCAP_ROOT": str(args.pickle)}
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "merbench.cli.app", "compare", "--dataset", "iemocap", "--models", model,
                     "--seeds", str(args.seeds), "--threads", str(args.threads), "--format", "markdown",
                     "--set", f"dataset.features={json.dumps({'text': text})}",
                     "--out", str(OUT / "finetune_iemocap_grid"), "--quiet"],
                    env=env, capture_output=True, text=True)
                print(proc.stderr[-3000:], file=sys.stderr)
                results["compare"][f"{model}, encoder seed {seed} {variant}"] = {
                    "returncode": proc.returncode, "wall_seconds": round(time.perf_counter() - t0, 1),
                    "table": proc.stdout}
                write_report(args, results)

    write_report(args, results)


if __name__ == "__main__":
    main()
