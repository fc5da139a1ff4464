"""Start-up cost of the command line: how long a command takes when it does little work.

Times, each in a fresh process and several times over, ``merbench --help``, ``merbench
models`` and ``merbench train synthetic/mlp --set train.max_epochs=1`` (into a new temporary
folder each time, so nothing is reused), and prints the median, min and max of both the wall
time and the CPU time (user + system) of each. On a busy machine the wall time grows with the
other jobs while the CPU time hardly does, so the table gives both, and the load average
beside them. Writes benchmarks/out/startup.md.

    python benchmarks/startup.py [--repeats 5] [--root PATH]

``--root`` times the merbench found under another checkout (its folder goes first on
PYTHONPATH), e.g. the commit before a change, to compare before and after on one machine.
Targets (on an idle core): ``--help`` and ``models`` under 1 s, the 1-epoch MLP under 3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
TRAIN = "train synthetic/mlp --set train.max_epochs=1"
TARGETS = {"--help": 1.0, "models": 1.0, TRAIN: 3.0}  # seconds, on an idle core


def commands(out: Path) -> dict[str, list[str]]:
    return {"--help": ["--help"], "models": ["models"], TRAIN: [*TRAIN.split(), "--out", str(out), "--quiet"]}


def run_once(args: list[str], root: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of ``python -m merbench ARGS``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "merbench", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"merbench {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose merbench is timed")
    args = parser.parse_args()
    root = args.root.resolve()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in TARGETS}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved: a burst of load hits every command alike
            for name, argv in commands(Path(tmp) / f"runs{i}").items():
                loads.append(os.getloadavg()[0])
                times[name].append(run_once(argv, root))
    rows = ["| command | wall median | wall min | wall max | CPU median | CPU min | CPU max | target |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, measured in times.items():
        wall, cpu = [m[0] for m in measured], [m[1] for m in measured]
        rows.append(f"| `merbench {name}` | {statistics.median(wall):.2f} | {min(wall):.2f} | {max(wall):.2f} | "
                    f"{statistics.median(cpu):.2f} | {min(cpu):.2f} | {max(cpu):.2f} | < {TARGETS[name]:g} |")
    table = "\n".join(rows)
    note = (f"seconds, {args.repeats} runs each in a fresh process; load average (1 min) "
            f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    text = f"{table}\n\n{note}\n"
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
