"""Training throughput of every registered model on an IEMOCAP-sized synthetic corpus.

151 dialogues, 7,433 utterances, dims audio 128 / text 768 / vision 512 (the HFF paper's),
six classes. Each model trains for one epoch (after one warm-up batch) in its own process, so
the peak resident memory measured is that model's. Writes a Markdown table to
benchmarks/out/throughput.md and prints it.

    python benchmarks/throughput.py [--models hff,tfn] [--threads 2] [--epochs 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def measure(name: str, threads: int, epochs: int, device: str) -> dict:
    import torch

    from merbench.data.batching import split_tensors
    from merbench.models.build import build_model, model_class
    from merbench.recipe import TRAIN_DEFAULTS
    from merbench.registry import DATASETS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    corpus = DATASETS.get("synthetic")(n_dialogues=151, n_utterances=7433, audio_dim=128,
                                       text_dim=768, vision_dim=512)
    dev = torch.device(device)
    model = build_model(name, corpus.dims, len(corpus.label_names)).to(dev)
    tensors = split_tensors(corpus, "train", model_class(name).inputs == "frames")
    size = TRAIN_DEFAULTS["batch_size"] if model.level == "utterance" else TRAIN_DEFAULTS["dialogue_batch_size"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)

    def step(batch):
        batch = batch.to(dev)
        out = model(batch)
        logits = batch.valid(out.logits)
        loss = torch.nn.functional.cross_entropy(logits, batch.valid(batch.labels)) + sum(out.aux_loss.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return int(logits.shape[0])

    model.train()
    step(next(tensors.batches(model.level, size)))  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seen, t0 = 0, time.perf_counter()
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(epoch)
        for batch in tensors.batches(model.level, size, gen):
            seen += step(batch)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"model": name, "level": model.level, "parameters": sum(p.numel() for p in model.parameters()),
            "utt_per_s": seen / seconds, "epoch_s": seconds / epochs,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: every non-tiny model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.threads, args.epochs, args.device)))
        return
    from merbench.registry import MODELS

    names = args.models.split(",") if args.models else [e.name for e in MODELS.entries() if not e.meta.get("tiny")]
    rows = []
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(args.threads),
                               "--epochs", str(args.epochs), "--device", args.device],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]['utt_per_s']:.0f} utt/s", file=sys.stderr)
    from tabulate import tabulate

    table = tabulate(
        [(r["model"], r["level"], f"{r['parameters']:,}", f"{r['utt_per_s']:.0f}", f"{r['epoch_s']:.1f}",
          f"{r['peak_rss_mb']:.0f}") + ((f"{r['peak_cuda_mb']:.0f}",) if r["peak_cuda_mb"] is not None else ())
         for r in rows],
        ["model", "level", "parameters", "train utt/s", "epoch s", "peak RSS MB"]
        + (["peak CUDA MB"] if args.device.startswith("cuda") else []),
        tablefmt="github", disable_numparse=True)
    header = (f"Training throughput, synthetic IEMOCAP-sized corpus (7,433 utterances, dims 128/768/512), "
              f"device {args.device}, {args.threads} threads, {args.epochs} epoch(s)\n\n")
    OUT.mkdir(exist_ok=True)
    (OUT / "throughput.md").write_text(header + table + "\n")
    (OUT / "throughput.json").write_text(json.dumps(rows, indent=2))
    print(header + table)


if __name__ == "__main__":
    main()
