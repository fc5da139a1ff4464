"""Inference latency per utterance, measured on a finished run's best checkpoint.

The test split is predicted in-process exactly as evaluation does (same batching), once to
warm up and then ``repeats`` times; the median wall time over the number of test utterances
is the latency. On CUDA the device is synchronised around each pass.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path


def device_label(device: str, threads: int) -> str:
    import torch

    from merbench.train import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(dev)}"
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


def latency_ms(run_dir: Path, device: str = "auto", threads: int = 1, repeats: int = 3) -> float:
    """Milliseconds per test utterance of the run's best checkpoint."""
    import torch

    from merbench.data.batching import split_tensors
    from merbench.evaluate import predict
    from merbench.models.build import model_class
    from merbench.rescore import load_run

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        recipe, corpus, model, dev = load_run(run_dir, device)
        split = "test" if "test" in corpus.split_names() else "valid"
        tensors = split_tensors(corpus, split, model_class(recipe["model"]["name"]).inputs == "frames")
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        n = len(predict(model, tensors, dev).index)  # warm-up pass, and the utterance count
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            predict(model, tensors, dev)
            sync()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times) / max(n, 1)
    finally:
        torch.set_num_threads(before)
