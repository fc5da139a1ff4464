"""The CI regression check: results files against a committed reference.

A reference file is written only by ``merbench check --update`` from results files, never by
hand. Each entry is one group of runs (same recipe, any seeds) with, per metric, the mean
it had and the tolerance it may fall by. A metric that falls below its reference by more than
its tolerance (rises, for lower-is-better metrics such as MAE) is a regression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from merbench.aggregate import Group, modality_label
from merbench.errors import MerbenchError
from merbench.metrics import LOWER_IS_BETTER
from merbench.results import load_json, utc_now, write_json

REFERENCE_SCHEMA = 1
DEFAULT_METRICS = {"classification": ["acc", "wf1"], "regression": ["acc2_has0", "acc7", "mae"]}
DEFAULT_TOLERANCE = {"mae": 0.05, "corr": 0.05}  # absolute; every other metric: --tolerance points


@dataclass
class Finding:
    entry: str
    metric: str
    reference: float | None
    tolerance: float | None
    got: float | None
    status: str  # "ok" | "regression" | "missing" | "new"


def entry_id(group: Group) -> str:
    return hashlib.sha256(group.key.encode()).hexdigest()[:12]


def entry_label(group: Group) -> str:
    return f"{group.recipe['dataset']['name']}/{group.model} [{modality_label(group.modalities)}]"


def load_reference(path: Path) -> dict:
    data = load_json(path, "no such reference file (create it with --update)")
    if not isinstance(data, dict) or data.get("schema_version") != REFERENCE_SCHEMA or "entries" not in data:
        raise MerbenchError(f"{path}: not a merbench reference file (expected schema_version "
                            f"{REFERENCE_SCHEMA} and an 'entries' mapping)")
    return data


def build_reference(groups: list[Group], split: str, tolerance: float, metrics: list[str] | None) -> dict:
    entries = {}
    for g in groups:
        names = metrics or DEFAULT_METRICS[g.dataset["task"]]
        values = {}
        for metric in names:
            cell = g.cell(metric, split)
            if cell is None:
                raise MerbenchError(f"--metric {metric}: not in the {split} metrics of {entry_label(g)}")
            values[metric] = {"reference": round(cell.mean, 4),
                              "tolerance": DEFAULT_TOLERANCE.get(metric, tolerance),
                              "lower_is_better": metric in LOWER_IS_BETTER, "n": cell.n}
        entries[entry_id(g)] = {"label": entry_label(g), "recipe": g.recipe, "metrics": values,
                                "runs": sorted(r["run_id"] for r in g.results)}
    return {"schema_version": REFERENCE_SCHEMA, "created_utc": utc_now(), "split": split, "entries": entries}


def compare(groups: list[Group], reference: dict) -> list[Finding]:
    split = reference.get("split", "test")
    by_id = {entry_id(g): g for g in groups}
    findings = []
    for eid, entry in reference["entries"].items():
        group = by_id.get(eid)
        for metric, spec in entry["metrics"].items():
            cell = group.cell(metric, split) if group else None
            if cell is None:
                findings.append(Finding(entry["label"], metric, spec["reference"], spec["tolerance"], None, "missing"))
                continue
            drop = (cell.mean - spec["reference"]) if spec["lower_is_better"] else (spec["reference"] - cell.mean)
            status = "regression" if drop > spec["tolerance"] + 1e-9 else "ok"
            findings.append(Finding(entry["label"], metric, spec["reference"], spec["tolerance"], cell.mean, status))
    for eid, g in by_id.items():
        if eid not in reference["entries"]:
            findings.append(Finding(entry_label(g), "-", None, None, None, "new"))
    return findings


def write_reference(path: Path, reference: dict) -> None:
    write_json(Path(path), reference)
