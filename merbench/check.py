"""The CI regression check: results files against a committed reference.

A reference file is written only by ``merbench check --update`` from results files, never by
hand. Each entry is one group of runs (same recipe, any seeds) with, per metric, the mean
it had and the tolerance it may fall by. A metric that falls below its reference by more than
its tolerance (rises, for lower-is-better metrics such as MAE) is a regression.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from merbench.aggregate import Group, differences, modality_label
from merbench.atomic import output_problem
from merbench.errors import MerbenchError, excerpt
from merbench.metrics import LOWER_IS_BETTER
from merbench.ranges import FINITE, NON_NEGATIVE
from merbench.recipe import SPLITS, TRAIN_DEFAULTS
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
    """The entry of a group: a hash of its recipe with the train keys that sit at their default
    left out, so a train key added later (whose default keeps the old behaviour) leaves every
    entry in place and the check compares the numbers. A changed default keeps the entry too:
    the numbers it moves are then checked against the reference."""
    train = {k: v for k, v in group.recipe["train"].items() if k not in TRAIN_DEFAULTS or v != TRAIN_DEFAULTS[k]}
    return hashlib.sha256(json.dumps({**group.recipe, "train": train}, sort_keys=True).encode()).hexdigest()[:12]


def entry_label(group: Group) -> str:
    return f"{group.spec.dataset.name}/{group.model} [{modality_label(group.modalities)}]"


def new_label(group: Group, groups: list[Group]) -> str:
    """A group the reference lacks, named by its own identity: its label, what tells it apart
    from groups of the same label (``lr=0.001``, ``dataset.seed=3``) and its entry id."""
    same = [g for g in groups if g is not group and entry_label(g) == entry_label(group)]
    diffs = differences(group, same) if same else []
    return f"{entry_label(group)}{' (' + ', '.join(diffs) + ')' if diffs else ''} entry {entry_id(group)}"


def load_reference(path: Path) -> dict:
    """The reference at ``path``, every entry checked: a reference that cannot fail (a NaN,
    missing or non-numeric reference value or tolerance, an entry without metrics) is refused
    with one line naming the file, the entry and the key."""
    data = load_json(path, "no such reference file (create it with --update)")
    if not isinstance(data, dict) or data.get("schema_version") != REFERENCE_SCHEMA or "entries" not in data:
        raise MerbenchError(f"{path}: not a merbench reference file (expected schema_version "
                            f"{REFERENCE_SCHEMA} and an 'entries' mapping)")
    problems = []
    if data.get("split", "test") not in SPLITS:
        problems.append(f"split: expected one of {', '.join(SPLITS)}, got {excerpt(data.get('split'))}")
    entries = data["entries"]
    if not isinstance(entries, dict) or not entries:
        problems.append(f"entries: expected a non-empty mapping of entry id -> entry, got {excerpt(entries)}")
        entries = {}
    for eid, entry in entries.items():
        problems += [f"entries.{eid}{p}" for p in _entry_problems(entry)]
    if problems:
        raise MerbenchError(f"{path}: {'; '.join(problems)}")
    return data


def _entry_problems(entry) -> list[str]:
    if not isinstance(entry, dict):
        return [f": expected a mapping with label and metrics, got {excerpt(entry)}"]
    problems = [] if isinstance(entry.get("label"), str) else [f".label: expected a string, got {excerpt(entry.get('label'))}"]
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return problems + [f".metrics: expected a non-empty mapping of metric -> reference, got {excerpt(metrics)}"]
    for name, spec in metrics.items():
        if not isinstance(spec, dict):
            problems.append(f".metrics.{name}: expected a mapping with reference and tolerance, got {excerpt(spec)}")
            continue
        for key, rng in (("reference", FINITE), ("tolerance", NON_NEGATIVE)):
            value = spec.get(key)
            if key not in spec:
                problems.append(f".metrics.{name}.{key}: missing")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f".metrics.{name}.{key}: expected a number, got {excerpt(value)}")
            elif rng.problem(value):
                problems.append(f".metrics.{name}.{key}: {rng.problem(value)}")
        if not isinstance(spec.get("lower_is_better"), bool):
            problems.append(f".metrics.{name}.lower_is_better: expected true or false, "
                            f"got {excerpt(spec.get('lower_is_better'))}")
    return problems


def build_reference(groups: list[Group], split: str, tolerance: float, metrics: list[str] | None) -> dict:
    if NON_NEGATIVE.problem(tolerance):
        raise MerbenchError(f"--tolerance: {NON_NEGATIVE.problem(tolerance)} (how far a metric may fall, in points)")
    if split not in SPLITS:
        raise MerbenchError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    if not groups:
        raise MerbenchError("no results to build a reference from")
    entries = {}
    for g in groups:
        names = metrics or DEFAULT_METRICS[g.dataset.task]
        values = {}
        for metric in names:
            cell = g.cell(metric, split)
            if cell is None:
                raise MerbenchError(f"--metric {metric}: not in the {split} metrics of {entry_label(g)}")
            if not math.isfinite(cell.mean):
                raise MerbenchError(f"{entry_label(g)}: {split} {metric} is {cell.mean}, not a number to guard")
            values[metric] = {"reference": round(cell.mean, 4),
                              "tolerance": DEFAULT_TOLERANCE.get(metric, tolerance),
                              "lower_is_better": metric in LOWER_IS_BETTER, "n": cell.n}
        entries[entry_id(g)] = {"label": entry_label(g), "recipe": g.recipe, "metrics": values,
                                "runs": sorted(r.run_id for r in g.results)}
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
            # A NaN compares false with everything: it must fail, never pass.
            status = "ok" if drop <= spec["tolerance"] + 1e-9 else "regression"
            findings.append(Finding(entry["label"], metric, spec["reference"], spec["tolerance"], cell.mean, status))
    for eid, g in by_id.items():
        if eid not in reference["entries"]:
            findings.append(Finding(new_label(g, list(by_id.values())), "-", None, None, None, "new"))
    return findings


def write_reference(path: Path, reference: dict) -> None:
    """Written atomically: a reference already there stays whole when the write fails."""
    if Path(path).is_dir():
        raise MerbenchError(f"{path}: is a folder, expected the reference JSON file to write")
    problem = output_problem(Path(path))  # a file where one of its folders should be
    if not problem:
        try:
            write_json(Path(path), reference)
            return
        except OSError as e:
            problem = e.strerror or str(e)
    raise MerbenchError(f"{path}: cannot write the reference ({problem}); expected a path in a "
                        f"writable folder; nothing was changed")
