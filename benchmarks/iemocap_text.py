"""Real-data benchmark: IEMOCAP transcripts -> MiniLM text features -> text-only models.

Reads the COSMIC transcripts pickle (151 dialogues, 7,433 utterances; the shared copy by
default, never copied into the project), then
1. times merbench's MiniLM extraction (a fresh cache) beside sentence-transformers' own
   ``encode`` of the same model on the same sentences, in the same process and thread count;
2. trains the text-only models on ``session5-test``, 6-way, with ``merbench compare`` over
   ``--seeds`` seeds (recipes/iemocap/<model>.yaml), reusing the warm feature cache.
Writes benchmarks/out/iemocap_text.md and prints it.

    python benchmarks/iemocap_text.py [--pickle PATH] [--models mlp,hff,...] [--seeds 3] [--jobs 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_PICKLE = ROOT.parent / "shared" / "data" / "iemocap" / "iemocap.pkl"
OUT = ROOT / "benchmarks" / "out"
MODELS = "mlp,hff,hrdf_mer,mcn_cl,dialoguernn,dialoguegcn,cogmen"


def extraction_speed(pickle_path: Path, cache: Path, threads: int) -> tuple[str, int]:
    import torch
    from sentence_transformers import SentenceTransformer

    from merbench.data.readers import read_corpus
    from merbench.features.build import build_corpus
    from merbench.features.text import minilm_dir

    torch.set_num_threads(threads)
    raw = read_corpus("iemocap", pickle_path, modalities=("text",))
    sentences = [u.text for d in raw.dialogues for u in d.utterances]
    t0 = time.perf_counter()
    build_corpus(raw, {"text": "minilm"}, cache_root=cache, progress=False)
    ours = time.perf_counter() - t0
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    t0 = time.perf_counter()
    model.encode(sentences, batch_size=32)
    theirs = time.perf_counter() - t0
    n = len(sentences)
    return (f"| extractor | seconds | utterances/s |\n|---|---|---|\n"
            f"| merbench extract --text minilm (fresh cache, incl. cache writes) | {ours:.1f} | {n / ours:.0f} |\n"
            f"| sentence-transformers encode, same model, batch 32 | {theirs:.1f} | {n / theirs:.0f} |\n"
            f"\n{n} utterances, {threads} torch thread(s).\n"), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle", type=Path, default=SHARED_PICKLE)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.pickle.exists():
        sys.exit(f"{args.pickle}: not found (pass --pickle PATH to your copy of the COSMIC iemocap.pkl)")
    OUT.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("MERBENCH_CACHE", OUT / "cache"))
    report = "# IEMOCAP text-only benchmark (session5-test, 6-way)\n\n"
    if not args.skip_speed:
        with tempfile.TemporaryDirectory() as fresh:
            speed, _ = extraction_speed(args.pickle, Path(fresh), args.threads)
        report += "## Extraction speed\n\n" + speed + "\n"
        print(speed, flush=True)
    env = {**os.environ, "MERBENCH_CACHE": str(cache), "MERBENCH_IEMOCAP_ROOT": str(args.pickle)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "merbench.cli.app", "compare", "--dataset", "iemocap", "--models", args.models,
         "--seeds", str(args.seeds), "--jobs", str(args.jobs), "--format", "markdown", "--references",
         "--out", str(OUT / "iemocap_text_grid"), "--quiet"],
        env=env, capture_output=True, text=True)
    print(proc.stderr[-3000:], file=sys.stderr)
    report += (f"## Text-only models, {args.seeds} seeds (wall {time.perf_counter() - t0:.0f} s)\n\n"
               + proc.stdout + "\n")
    (OUT / "iemocap_text.md").write_text(report)
    print(report)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
