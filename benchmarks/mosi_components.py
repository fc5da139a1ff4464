"""What each paper model's components do on a split of the data its run trained on.

For each finished run folder (``merbench train ... --out DIR`` writes one), rebuilds the model
with its best weights and its corpus (``merbench.load_run``) and prints ``merbench.probes``'
Markdown table per model: HFF's dynamic (Eq. 17-18) and uncertainty (Eq. 19-20) weights per
modality, HRDF-MER's CMDF gate per stage, MCN-CL's contrastive term and the cosine similarity
of same-label vs different-label utterances in its fused embedding (docs/probes.md).

    python benchmarks/mosi_components.py RUN_DIR [RUN_DIR ...] [--split test] [--threads 2]

A folder holding run folders (``--out`` of several trainings, a grid) probes each run in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders, or folders holding run folders")
    parser.add_argument("--split", default="test", help="split to probe (default: test)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)

    import torch

    from merbench.api import load_results
    from merbench.errors import MerbenchError
    from merbench.probes import markdown, probe

    torch.set_num_threads(args.threads)
    try:
        found = load_results(args.runs)
        if not found:
            raise MerbenchError(f"no run folders under {', '.join(map(str, args.runs))}")
        probes = [probe(run, args.split, args.device) for run in found if run.ok]
        if not probes:
            raise MerbenchError("every run found had failed: nothing to probe")
    except MerbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(probes), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
