"""Group results files that differ only by seed and summarise them as mean, std and n.

Aggregates use every run of a group, never the best one; failed runs are left out and
counted so a table can say so.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from merbench.data.types import MODALITIES, MODALITY_LETTERS
from merbench.errors import MerbenchError
from merbench.results import DatasetInfo, Result, read_result

# Recipe keys that never change a result's meaning, left out when grouping runs.
IGNORED_TRAIN_KEYS = ("seed", "device", "threads")


@dataclass
class Cell:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> float:
        if len(self.values) < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))


@dataclass
class Group:
    key: str
    recipe: dict  # the shared recipe, seed removed
    results: list[Result] = field(default_factory=list)
    failed: int = 0

    @property
    def model(self) -> str:
        return self.recipe["model"]["name"]

    @property
    def dataset(self) -> DatasetInfo:
        return self.results[0].dataset

    @property
    def modalities(self) -> list[str]:
        return self.recipe["dataset"]["modalities"]

    def cell(self, metric: str, split: str = "test") -> Cell | None:
        values = [r.metrics[split][metric] for r in self.results
                  if split in r.metrics and metric in r.metrics[split]]
        return Cell(values) if values else None


def modality_label(modalities: Iterable[str]) -> str:
    """['audio', 'text'] -> 'S+T', the papers' column names."""
    return "+".join(MODALITY_LETTERS[m] for m in MODALITIES if m in modalities)


def group_key(recipe: dict) -> tuple[str, dict]:
    shared = copy.deepcopy(recipe)
    for key in IGNORED_TRAIN_KEYS:
        shared["train"].pop(key, None)
    return json.dumps(shared, sort_keys=True), shared


def group_results(results: list[Result]) -> list[Group]:
    groups: dict[str, Group] = {}
    for result in results:
        key, shared = group_key(result.recipe)
        group = groups.setdefault(key, Group(key, shared))
        if result.ok:
            group.results.append(result)
        else:
            group.failed += 1
    return [g for g in groups.values() if g.results]


def collect(paths: Iterable[Path]) -> list[Result]:
    """Results from run folders, result.json files, or folders holding run folders (grids)."""
    out = []
    for path in paths:
        path = Path(path)
        if path.is_dir() and not (path / "result.json").exists():
            found = sorted(path.rglob("result.json"))
            if not found:
                raise MerbenchError(f"{path}: holds no result.json (expected a run folder or a folder of runs)")
            out.extend(read_result(p) for p in found)
        else:
            out.append(read_result(path))
    return out


def one_group(path: Path, several: str) -> Group:
    """The single recipe group of the runs at ``path``; ``several`` says what to do instead."""
    groups = group_results(collect([path]))
    if not groups:
        raise MerbenchError(f"{path}: holds no finished run")
    if len(groups) > 1:
        raise MerbenchError(f"{path}: holds runs of {len(groups)} different recipes; {several}")
    return groups[0]


def row_labels(groups: list[Group]) -> list[str]:
    """Model name, plus whatever else tells apart groups that share a model name."""
    labels = []
    for g in groups:
        label = g.model
        same = [o for o in groups if o.model == g.model and o is not g]
        if same:
            if any(o.modalities != g.modalities for o in same):
                label += f" [{modality_label(g.modalities)}]"
            diffs = _differences(g, same)
            if diffs:
                label += f" ({', '.join(diffs)})"
        labels.append(label)
    return labels


def _differences(g: Group, others: list[Group]) -> list[str]:
    diffs = []
    for section in ("model", "dataset", "train"):
        for key, value in sorted(g.recipe[section].items()):
            if key in ("name", "modalities"):
                continue
            if any(o.recipe[section].get(key) != value for o in others):
                diffs.append(f"{key}={value}")
    return diffs
