"""One training epoch of each conversation-level baseline on an IEMOCAP-sized synthetic corpus.

    python benchmarks/conversational_epoch.py [--models dialoguernn dialoguegcn cogmen]
        [--batch 0] [--device cpu] [--threads 0] [--out benchmarks/out]

The corpus is ``synthetic(n_dialogues=151, n_utterances=7433)`` with IEMOCAP's feature sizes
(audio 128, text 768, vision 512), all three modalities. Each model is built from the model
section of ``recipes/synthetic/<model>.yaml`` and trained one epoch on the train split with
AdamW at the recipe's lr, ``--batch`` dialogues per batch (0 = the recipe's
``dialogue_batch_size``, i.e. each paper's batch size), after one warm-up batch. Every model
runs in its own child process, so its peak resident memory (``ru_maxrss``) is its own; on
CUDA the peak allocated GPU memory is reported too. Writes ``conversational_epoch.md`` and
``.json`` under ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("dialoguernn", "dialoguegcn", "cogmen")
CORPUS = dict(n_dialogues=151, n_utterances=7433, audio_dim=128, text_dim=768, vision_dim=512, seed=0)


def _rss_mib() -> float:
    """Current resident set size of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def one_model(name: str, batch: int, device: str, threads: int) -> dict:
    """Build, warm up and time one epoch; run inside a fresh process."""
    import torch

    from merbench.data.batching import split_tensors
    from merbench.models.build import build_model
    from merbench.recipe import load_recipe
    from merbench.registry import DATASETS
    from merbench.train import task_loss

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    recipe = load_recipe(ROOT / "recipes" / "synthetic" / f"{name}.yaml")
    corpus = DATASETS.get("synthetic")(**CORPUS)
    train = split_tensors(corpus, "train", want_frames=False)
    args = {k: v for k, v in recipe["model"].items() if k != "name"}
    model = build_model(recipe["model"]["name"], corpus.dims, len(corpus.label_names), **args).to(device)
    batch_size = batch or recipe["train"]["dialogue_batch_size"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["train"]["lr"],
                                  weight_decay=recipe["train"]["weight_decay"])

    def step(b) -> None:
        b = b.to(device)
        loss = task_loss(corpus, b, model(b).logits, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    step(next(train.batches("dialogue", batch_size)))  # warm-up: allocator, kernels
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = _rss_mib()
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    batches = 0
    for b in train.batches("dialogue", batch_size, gen):
        step(b)
        batches += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "model": name, "parameters": sum(p.numel() for p in model.parameters()),
        "dialogues": len(train.dialogue_ids), "utterances": train.size, "batch_dialogues": batch_size,
        "batches": batches, "seconds": round(seconds, 2), "utt_per_s": round(train.size / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_epoch_mib": round(rss_before, 1),
        "peak_gpu_mib": (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                         if device.startswith("cuda") else None),
        "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }


def table(rows: list[dict]) -> str:
    gpu = any(r["peak_gpu_mib"] is not None for r in rows)
    head = ["model", "parameters", "dialogues / batch", "s / epoch", "utterances / s", "peak RSS MiB",
            "RSS before epoch MiB"] + (["peak GPU MiB"] if gpu else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], f"{r['parameters']:,}", r["batch_dialogues"], r["seconds"], r["utt_per_s"],
                 r["peak_rss_mib"], r["rss_before_epoch_mib"]] + ([r["peak_gpu_mib"]] if gpu else [])
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    r = rows[0]
    lines.append("")
    lines.append(f"One training epoch ({r['dialogues']} dialogues, {r['utterances']} utterances: the train "
                 f"split of synthetic {CORPUS}), device {r['device']}, {r['threads']} threads, "
                 f"torch {r['torch']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=0, help="dialogues per batch; 0 = the recipe's")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one model in this process: print its row as JSON
        print(json.dumps(one_model(args.child, args.batch, args.device, args.threads)))
        return
    rows = []
    for name in args.models:
        done = subprocess.run([sys.executable, __file__, "--child", name, "--batch", str(args.batch),
                               "--device", args.device, "--threads", str(args.threads)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{name}: {rows[-1]['seconds']} s, {rows[-1]['utt_per_s']} utt/s", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(rows)
    (args.out / "conversational_epoch.md").write_text(text)
    (args.out / "conversational_epoch.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
