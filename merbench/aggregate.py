"""Group results files that differ only by seed and summarise them as mean, std and n.

Aggregates use every run of a group, never the best one; failed runs are left out and
counted so a table can say so.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from merbench.data.types import MODALITIES, MODALITY_LETTERS
from merbench.errors import MerbenchError
from merbench.recipe import Recipe, read_back
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
    recipe: dict  # the shared recipe as written, the IGNORED_TRAIN_KEYS removed (grouping and check hash it)
    results: list[Result] = field(default_factory=list)
    failed: int = 0

    @functools.cached_property
    def spec(self) -> Recipe:
        """The shared recipe, typed (``recipe.read_back``; the removed train keys at their defaults)."""
        first = self.results[0] if self.results else None
        return read_back(self.recipe, f"{first.path}: recipe" if isinstance(first, Result) else "recipe")

    @property
    def model(self) -> str:
        return self.spec.model.name

    @property
    def dataset(self) -> DatasetInfo:
        return self.results[0].dataset

    @property
    def modalities(self) -> list[str]:
        return list(self.spec.dataset.modalities)

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
    """Results from run folders, result.json files, or folders holding run folders (grids);
    each run once: a folder named twice (``runs runs/*``), or a copy of a run folder (the same
    ``run_id``: the same recipe, seed, code and data), would count one run as two seeds."""
    files = []
    for path in paths:
        path = Path(path)
        if path.is_dir() and not (path / "result.json").exists():
            found = sorted(path.rglob("result.json"))
            if not found:
                raise MerbenchError(f"{path}: holds no result.json (expected a run folder or a folder of runs)")
            files.extend(found)
        else:
            files.append(path / "result.json" if path.is_dir() else path)
    out: list[Result] = []
    first: dict[str, Path] = {}
    named: set[Path] = set()
    for file in files:
        if (resolved := file.resolve()) in named:  # a file named twice: once, silently
            continue
        named.add(resolved)
        result = read_result(file)
        if result.run_id in first:
            logging.getLogger("merbench").warning(
                "%s: run %s again (first at %s); counted once", file.parent, result.run_id, first[result.run_id].parent)
            continue
        first[result.run_id] = file
        out.append(result)
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
            diffs = differences(g, same)
            if diffs:
                label += f" ({', '.join(diffs)})"
        labels.append(label)
    return labels


def differences(g: Group, others: list[Group]) -> list[str]:
    """The recipe values of ``g`` that some of ``others`` do not share, as ``key=value``
    (a dataset key as ``dataset.key=value``)."""
    diffs = []
    for section in ("model", "dataset", "train"):
        for key, value in sorted(g.recipe[section].items()):
            if key in ("name", "modalities"):
                continue
            if any(o.recipe[section].get(key) != value for o in others):
                # dataset.seed is the corpus's seed, never to be read as the training seed
                diffs.append(f"{key}={value}" if section != "dataset" else f"dataset.{key}={value}")
    return diffs


# --- Which runs share their data --------------------------------------------------------------

# Recipe dataset keys that never name other data: the modalities read (the rows of one table
# may differ by them: "does fusion help?") and where the files lie (the fingerprint says
# whether two roots held the same data).
_NOT_DATA_KEYS = ("name", "modalities", "root")


@dataclass
class DataPart:
    """Groups scored on the same data: one table. ``differs`` says what sets this part apart
    from the other parts of its dataset (empty when it is the only one)."""

    groups: list[Group]
    differs: list[str] = field(default_factory=list)


def by_fingerprint(groups: list[Group]) -> list[Group]:
    """Each group split where its runs read different data (the same recipe on another root,
    or files that changed): runs on different data are never one mean."""
    out = []
    for g in groups:
        if len({r.dataset.fingerprint for r in g.results}) <= 1:
            out.append(g)
            continue
        prints: dict[str, Group] = {}
        for r in g.results:
            sub = prints.setdefault(r.dataset.fingerprint, Group(g.key, g.recipe))
            sub.results.append(r)
        parts = list(prints.values())
        parts[0].failed = g.failed
        out += parts
    return out


def _flat(value, prefix: str) -> dict[str, object]:
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def data_traits(group: Group) -> dict[str, object]:
    """What names the data a group was scored on, modalities aside: dataset, task, protocol,
    label set, the recipe's dataset arguments (features, labels, the synthetic corpus's seed
    and size, flattened to dotted keys) and the utterance counts per split."""
    d = group.dataset
    traits: dict[str, object] = {"dataset": d.name, "task": d.task, "protocol": d.protocol,
                                 "labels": tuple(d.label_names)}
    for key, value in sorted(group.recipe["dataset"].items()):
        if key not in _NOT_DATA_KEYS and key != "protocol":
            traits.update(_flat(value, f"dataset.{key}"))
    counts = d.counts
    traits["utterances"] = "/".join(f"{s} {counts[s]}" for s in ("train", "valid", "test") if s in counts)
    return traits


def by_data(groups: list[Group]) -> list[DataPart]:
    """Groups split into the sets scored on the same data (first-seen order), each to be its
    own table: runs on other data (fingerprint), features or protocol are never pooled, bolded
    or ranked against each other.

    Two groups share their data when their fingerprints are equal (the same utterances and
    features), or when every trait of :func:`data_traits` agrees: runs of other modalities
    read other features of the same utterances, so their fingerprints differ by design (a
    table's rows may differ by modalities). A set in which runs of the same modalities still
    read different data is split by fingerprint."""
    found = by_fingerprint(groups)
    traits = [data_traits(g) for g in found]
    prints = [g.results[0].dataset.fingerprint for g in found]
    root = list(range(len(found)))

    def top(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for i in range(len(found)):
        for j in range(i):
            if (prints[i] and prints[i] == prints[j]) or traits[i] == traits[j]:
                root[top(i)] = top(j)
    members: dict[int, list[int]] = {}
    for i in range(len(found)):
        members.setdefault(top(i), []).append(i)
    parts: list[tuple[dict, list[int]]] = []
    for ids in members.values():
        shared = _common(traits[i] for i in ids)
        by_modalities: dict[tuple, set] = {}
        for i in ids:
            by_modalities.setdefault(tuple(found[i].modalities), set()).add(prints[i])
        if all(len(p) == 1 for p in by_modalities.values()):
            parts.append((shared, ids))
            continue
        split: dict[str, list[int]] = {}
        for i in ids:
            split.setdefault(prints[i], []).append(i)
        for fingerprint, subset in split.items():
            parts.append(({**_common(traits[i] for i in subset), "data fingerprint": fingerprint[:12]}, subset))
    out = []
    for k, (shared, ids) in enumerate(parts):
        rivals = [t for m, (t, _) in enumerate(parts) if m != k
                  and (t.get("dataset"), t.get("task")) == (shared.get("dataset"), shared.get("task"))]
        fingerprints = sorted({prints[i][:12] for i in ids})
        out.append(DataPart([found[i] for i in ids], _differences_of(shared, rivals, fingerprints)))
    return out


def _common(traits) -> dict:
    """The traits on which every one of ``traits`` agrees."""
    traits = list(traits)
    return {k: v for k, v in traits[0].items() if all(t.get(k, _ABSENT) == v for t in traits[1:])}


def _differences_of(traits: dict, rivals: list[dict], fingerprints: list[str]) -> list[str]:
    """'dataset.seed=3', 'protocol loso': the traits in which this part differs from another
    part of its dataset (at most five, then how many more)."""
    if not rivals:
        return []
    out = []
    for key, value in traits.items():
        if key in ("dataset", "task") or all(r.get(key, _ABSENT) == value for r in rivals):
            continue
        if key == "labels":
            value = ", ".join(value)
        out.append(f"{key}={value}" if key.startswith("dataset.") else f"{key} {value}")
    if len(out) > 1:  # other counts follow from another corpus: name the cause only
        out = [d for d in out if not d.startswith("utterances ")]
    if not out:  # what sets it apart is not one of its own traits (another part's extra key)
        out = [f"data fingerprint {', '.join(fingerprints)}"]
    return out[:5] + ([f"{len(out) - 5} more"] if len(out) > 5 else [])


_ABSENT = object()
