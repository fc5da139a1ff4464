"""Extraction speed: merbench's MiniLM vs sentence-transformers' encode, and MFCC on tones.

    python benchmarks/extract_speed.py --threads 1 --out benchmarks/out/extract_speed.json

Text: ``--sentences`` generated sentences of 2-60 words (seeded; no corpus file), encoded by
merbench's ``minilm`` extractor and by ``SentenceTransformer(<same dir>).encode`` with the
model already loaded, alternating, best of ``--repeats``. Audio: ``--tones`` 3-second tones
written as 16 kHz wavs, through the ``mfcc`` extractor (reading the wavs included).
Writes one JSON file; the figures quoted in docs come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import torch

from merbench.data.types import RawUtterance
from merbench.features._common import versions
from merbench.features.audio import MFCC
from merbench.features.text import MiniLM

WORDS = ("i you we they it this that the a my your really so very not just well okay yeah "
         "know think feel want need said told going come back home work today tomorrow never "
         "always again happy sad angry tired sorry great terrible fine good bad love hate "
         "believe remember forget understand wait listen look money time people friend mother "
         "husband wife job car house night morning because but and or if when why what how").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(10), 0.7, n).astype(int), 2, 60)  # dialogue-like lengths
    out = []
    for length in lengths:
        words = rng.choice(WORDS, length)
        text = " ".join(words).capitalize()
        out.append(text + rng.choice([".", "?", "!", "..."]))
    return out


def rates(fn, count: int, repeats: int) -> dict[str, float]:
    """Best utterances per wall second, and per CPU second of this process (all threads): the
    CPU figure is the steadier one on a machine shared with other jobs."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"utt_per_s": count / min(wall), "utt_per_cpu_s": count / min(cpu)}


def text_speed(n: int, repeats: int) -> dict:
    from sentence_transformers import SentenceTransformer

    texts = sentences(n)
    utterances = [RawUtterance(str(i), "A", 0, text=t) for i, t in enumerate(texts)]
    ours = MiniLM(device="cpu")
    ours.extract(utterances[:16])  # load + warm up
    reference = SentenceTransformer(str(ours.root), device="cpu")
    reference.encode(texts[:16])
    large = MiniLM(batch_size=64, device="cpu")
    large.load()
    runs = {  # both at their default batch size 32, and merbench at 64
        "merbench_bs32": lambda: ours.extract(utterances),
        "merbench_bs64": lambda: large.extract(utterances),
        "sentence_transformers_bs32": lambda: reference.encode(texts, batch_size=32),
    }
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(repeats):  # alternate, so machine load hits all alike
        for name, fn in runs.items():
            measured[name].append(rates(fn, n, 1))
    best = {name: {k: max(r[k] for r in runs_) for k in runs_[0]} for name, runs_ in measured.items()}
    same = np.stack([f[384:] for f in ours.extract(utterances[:64])])
    same /= np.linalg.norm(same, axis=1, keepdims=True)
    return {
        "sentences": n, "mean_words": float(np.mean([len(t.split()) for t in texts])),
        "best": best, "all_runs": measured,
        "max_abs_diff_mean_half_vs_st": float(np.abs(same - reference.encode(texts[:64])).max()),
    }


def mfcc_speed(n: int, repeats: int) -> dict:
    sr, seconds = 16000, 3.0
    t = np.arange(int(sr * seconds)) / sr
    with tempfile.TemporaryDirectory() as tmp:
        utterances = []
        for i in range(n):
            tone = 0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t)
            path = Path(tmp) / f"tone{i}.wav"
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(sr)
                w.writeframes((tone * 32767).astype("<i2").tobytes())
            utterances.append(RawUtterance(str(i), "A", 0, audio_path=str(path)))
        extractor = MFCC(device="cpu")
        extractor.extract(utterances[:4])
        with_reading = rates(lambda: extractor.extract(utterances), n, repeats)
        signals = [(0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t)).astype(np.float32) for i in range(n)]
        compute = rates(lambda: [extractor.compute(signals[k:k + 32]) for k in range(0, n, 32)],
                        n, repeats)
    return {"tones": n, "seconds_each": seconds, "with_wav_reading": with_reading,
            "compute_only": compute, "config": extractor.config()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/extract_speed.json")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--tones", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average_at_start": os.getloadavg(),
                    "versions": versions("torch", "transformers", "sentence-transformers", "librosa")},
        "text_minilm": text_speed(args.sentences, args.repeats),
        "audio_mfcc": mfcc_speed(args.tones, args.repeats),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
