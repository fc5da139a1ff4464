"""What each cell of a grid is doing, read from its run folder alone.

done         result.json says ok
running      running.json names a live process (on this host), or a process on another host
interrupted  a checkpoint but no result and no live process: the next run resumes from it
failed       result.json says failed, or error.txt holds the error the runner caught
pending      nothing written yet
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from merbench import run_folder
from merbench.grid.manifest import ERROR, GridCell, RUNNING, read_manifest

STATES = ("done", "running", "interrupted", "failed", "pending")


@dataclass
class CellState:
    cell: GridCell
    state: str
    detail: str


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _epochs(run_dir: Path) -> int:
    try:
        with open(run_dir / run_folder.METRICS_CSV, encoding="utf-8") as f:
            return sum(1 for _ in csv.DictReader(f))
    except OSError:
        return 0


def cell_state(run_dir: Path) -> tuple[str, str]:
    result = _read_json(run_dir / run_folder.RESULT)
    if result and result.get("status") == "ok":
        sel, training = result.get("selection", {}), result.get("training", {})
        return "done", (f"best epoch {sel.get('best_epoch')} of {sel.get('epochs_run')}, "
                        f"{training.get('seconds')} s")
    marker = _read_json(run_dir / RUNNING)
    last = run_dir / run_folder.LAST
    if marker:
        here = marker.get("host") == socket.gethostname()
        if not here or _alive(int(marker.get("pid", -1))):
            since = f", last checkpoint {time.time() - last.stat().st_mtime:.0f} s ago" if last.exists() else ""
            job = f" (Slurm job {marker['slurm_job']})" if marker.get("slurm_job") else ""
            return "running", f"epoch {_epochs(run_dir)} on {marker.get('host')} pid {marker.get('pid')}{job}{since}"
    if result and result.get("status") == "failed":
        return "failed", str(result.get("error") or "the run failed")
    if (run_dir / ERROR).exists():
        lines = (run_dir / ERROR).read_text(encoding="utf-8").splitlines()
        return "failed", lines[0] if lines else "failed (empty error.txt)"
    if last.exists():
        return "interrupted", f"stopped after epoch {_epochs(run_dir)}; the next run resumes from its checkpoint"
    return "pending", ""


def grid_status(grid_dir: Path) -> tuple[dict, list[CellState]]:
    """The manifest and every cell's state, in manifest order."""
    manifest = read_manifest(grid_dir)
    return manifest, [CellState(c, *cell_state(Path(grid_dir) / c.run)) for c in manifest["cells"]]
