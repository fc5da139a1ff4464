"""Inference latency per utterance, measured on a finished run's best checkpoint.

The test split is predicted in-process exactly as evaluation does (same batching), once to
warm up and then ``repeats`` times; the median wall time over the number of test utterances
is the latency. On CUDA the device is synchronised around each pass.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from merbench.device import DEFAULT_THREADS


def device_label(device: str, threads: int) -> str:
    # start-up: torch only when this runs
    import torch

    from merbench.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(dev)}"
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


def latency_ms(run_dir: Path, device: str = "auto", threads: int = DEFAULT_THREADS, repeats: int = 3) -> float:
    """Milliseconds per test utterance of the run's best checkpoint."""
    # start-up: numpy and yaml only when this runs
    import torch

    from merbench.run import load_run

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = load_run(run_dir)
        split = "test" if "test" in run.corpus().split_names() else "valid"
        tensors = run.tensors(split)
        dev = run.scoring_model(device)[1]
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        n = len(run.predict(split, device, tensors=tensors).index)  # warm-up pass, and the utterance count
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            run.predict(split, device, tensors=tensors)
            sync()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times) / max(n, 1)
    finally:
        torch.set_num_threads(before)
