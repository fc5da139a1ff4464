"""Test-time robustness (MultiBench-style): a modality missing, or features made noisy.

A ``Condition`` says what to do to the test batches; ``Perturbation`` does it to each batch
and is passed to ``evaluate.predict(..., transform=...)``. The model and its weights are
untouched: only what it receives changes.

- Missing: a model is built for a fixed set of modalities, so a missing modality cannot be
  left out of ``batch.features``. It is replaced by an uninformative input instead:
  ``zero`` (the default, MultiBench's zero imputation) or ``mean`` (the training split's
  mean feature vector). For frame sequences the utterance becomes one such frame with a
  mask of exactly that frame: an empty mask would make attention over frames undefined
  (softmax over nothing), and one zero frame mean-pools to the same zero vector a vector
  model receives, so both kinds of model see the same "absent" input.
- Noise: Gaussian noise with standard deviation ``level * std_d`` on each feature
  dimension d, where std_d is measured on the training split in the form the model receives
  (vectors, or the valid frames of frame sequences). The noise of an utterance depends only
  on (seed, modality, its index in the split), never on batching or on the level, so two
  models see the same noise and curves over levels use the same draws scaled.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from merbench.aggregate import Cell, collect, group_results, row_labels
from merbench.data.batching import Batch, SplitTensors
from merbench.data.types import MODALITIES, modality_hint
from merbench.errors import MerbenchError
from merbench.figures import robustness_plot
from merbench.registry import closest
from merbench.results import utc_now, write_json
from merbench.run import Run, load_run

MISSING_MODES = ("zero", "mean")
DEFAULT_LEVELS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Condition:
    """What is done to every test batch: modalities made absent, noise levels per modality."""

    missing: tuple[str, ...] = ()
    noise: dict[str, float] = field(default_factory=dict)  # modality -> level (x training std)
    missing_mode: str = "zero"
    seed: int = 0

    @property
    def is_clean(self) -> bool:
        return not self.missing and not any(level > 0 for level in self.noise.values())

    def describe(self) -> str:
        parts = [f"missing {m} ({self.missing_mode})" for m in self.missing]
        parts += [f"noise {m}={level:g}" for m, level in self.noise.items() if level > 0]
        return ", ".join(parts) or "clean"


# --- Parsing what the user typed -----------------------------------------------------------

def parse_modality(text: str, option: str) -> str:
    name = text.strip()
    if name not in MODALITIES:
        raise MerbenchError(f"{option} {text}: unknown modality{modality_hint(name)}; "
                            f"expected one of {', '.join(MODALITIES)}")
    return name


def parse_modalities(text: str, option: str = "--modalities") -> list[str]:
    """'audio,text' -> ['audio', 'text'] (order of MODALITIES, no repeats)."""
    names = [parse_modality(part, option) for part in text.split(",") if part.strip()]
    if not names:
        raise MerbenchError(f"{option} {text!r}: expected a comma-separated list of {', '.join(MODALITIES)}")
    return [m for m in MODALITIES if m in names]


def parse_level(text: str, where: str) -> float:
    """A noise level: a finite number >= 0. ``where`` names the option and value in errors."""
    try:
        level = float(text)
    except ValueError:
        raise MerbenchError(f"{where}: level {text.strip()!r} is not a number") from None
    if not math.isfinite(level) or level < 0:
        raise MerbenchError(f"{where}: level {text.strip()!r} must be a finite number >= 0 "
                            f"(a multiple of the feature's training std)")
    return level


def parse_noise(items: list[str]) -> dict[str, float]:
    """['vision=0.5', 'audio=1'] -> {'vision': 0.5, 'audio': 1.0}."""
    noise: dict[str, float] = {}
    for item in items:
        if item.count("=") != 1:
            raise MerbenchError(f"--noise {item}: expected MODALITY=LEVEL, e.g. vision=0.5")
        name, level = item.split("=")
        modality = parse_modality(name, "--noise")
        if modality in noise:
            raise MerbenchError(f"--noise {item}: {modality} is given twice")
        noise[modality] = parse_level(level, f"--noise {item}")
    return noise


def parse_levels(text: str) -> list[float]:
    """'0,0.25,1' -> [0.0, 0.25, 1.0] (sorted, no repeats)."""
    levels = [parse_level(part, f"--levels {text}") for part in text.split(",") if part.strip()]
    if not levels:
        raise MerbenchError(f"--levels {text!r}: expected comma-separated numbers >= 0, e.g. 0,0.5,1")
    return sorted(set(levels))


def check_missing_mode(missing_mode: str) -> None:
    if missing_mode not in MISSING_MODES:
        raise MerbenchError(f"--missing-mode {missing_mode}: expected one of {', '.join(MISSING_MODES)}")


def make_condition(missing: list[str], noise: dict[str, float], missing_mode: str = "zero",
                   seed: int = 0) -> Condition:
    check_missing_mode(missing_mode)
    names = [parse_modality(m, "--missing") for m in missing]
    for m in names:
        if m in noise:
            raise MerbenchError(f"--noise {m}={noise[m]:g}: {m} is also --missing; give one or the other")
    return Condition(tuple(m for m in MODALITIES if m in names), dict(noise), missing_mode, seed)


def check_uses(condition: Condition, used: list[str], run: str) -> None:
    """Every modality the condition touches must be one the run's model takes."""
    for option, names in (("--missing", condition.missing), ("--noise", list(condition.noise))):
        for m in names:
            if m not in used:
                raise MerbenchError(f"{option} {m}: run {run} does not use {m} (it uses {', '.join(used)})")


# --- Applying a condition to batches -------------------------------------------------------

@dataclass
class FeatureStats:
    mean: torch.Tensor  # (D,)
    std: torch.Tensor  # (D,)


def training_stats(train: SplitTensors) -> dict[str, FeatureStats]:
    """Per-dimension mean and std of each modality on the training split, as the model sees it."""
    stats = {}
    for m, x in train.features.items():
        if m in train.masks:
            x = x[train.masks[m]]  # valid frames only: (N, T, D) -> (F, D)
        x = x.double()
        stats[m] = FeatureStats(x.mean(0).float(), x.std(0, unbiased=False).float())
    return stats


def _modality_seed(seed: int, modality: str) -> list[int]:
    return [int(seed), MODALITIES.index(modality)]


class Perturbation:
    """Callable ``Batch -> Batch`` that applies one ``Condition`` (new tensors, input untouched)."""

    def __init__(self, condition: Condition, stats: dict[str, FeatureStats]):
        self.condition = condition
        self.stats = stats

    def __call__(self, batch: Batch) -> Batch:
        features, masks = dict(batch.features), dict(batch.masks)
        for m in self.condition.missing:
            features[m], mask = self._absent(batch, m)
            if mask is not None:
                masks[m] = mask
        for m, level in self.condition.noise.items():
            if level > 0:
                features[m] = features[m] + level * self.stats[m].std * self._unit_noise(batch, m)
        return dataclasses.replace(batch, features=features, masks=masks)

    def _present(self, batch: Batch) -> torch.Tensor:
        """(B,) or (B, L) bool: real utterances (padding stays zero)."""
        return torch.ones(batch.labels.shape, dtype=torch.bool) if batch.utt_mask is None else batch.utt_mask

    def _absent(self, batch: Batch, m: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = batch.features[m]
        present = self._present(batch)
        fill = self.stats[m].mean if self.condition.missing_mode == "mean" else torch.zeros(x.shape[-1])
        if m not in batch.masks:  # vectors: (B, [L,] D)
            return fill.to(x.dtype) * present.unsqueeze(-1).to(x.dtype), None
        out = torch.zeros_like(x)  # (B, [L,] T, D): one frame holding ``fill``
        out[..., 0, :] = fill.to(x.dtype) * present.unsqueeze(-1).to(x.dtype)
        mask = torch.zeros_like(batch.masks[m])
        mask[..., 0] = present
        return out, mask

    def _unit_noise(self, batch: Batch, m: str) -> torch.Tensor:
        """Standard normal draws shaped like ``features[m]``, zero on padding, fixed per utterance."""
        x = batch.features[m]
        noise = torch.zeros_like(x)
        mask = batch.masks.get(m)
        base = _modality_seed(self.condition.seed, m)
        for pos in (batch.index >= 0).nonzero().tolist():
            pos = tuple(pos)
            rng = np.random.default_rng(base + [int(batch.index[pos])])
            if mask is None:
                noise[pos] = torch.from_numpy(rng.standard_normal(x.shape[-1])).to(x.dtype)
            else:
                frames = mask[pos]  # (T,) valid frames of this utterance
                noise[pos][frames] = torch.from_numpy(rng.standard_normal((int(frames.sum()), x.shape[-1]))).to(x.dtype)
        return noise


# --- Scoring a run under conditions --------------------------------------------------------

@dataclass
class LoadedRun:
    """A finished run ready to be scored many times on one split: data and model built once."""

    run: Run
    split: str
    device: str
    tensors: SplitTensors
    stats: dict[str, FeatureStats]

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def model(self) -> torch.nn.Module:
        return self.run.scoring_model(self.device)[0]

    @property
    def corpus(self):
        return self.run.corpus()

    @property
    def modalities(self) -> list[str]:
        return list(self.run.dataset.modalities)

    def score(self, condition: Condition | None = None) -> dict:
        transform = None
        if condition is not None:
            check_uses(condition, self.modalities, str(self.run_dir))
            if not condition.is_clean:
                transform = Perturbation(condition, self.stats)
        # Run.evaluate: same numbers as a plain ``merbench evaluate`` when clean.
        return self.run.evaluate(self.split, self.device, transform, self.tensors)


def load_for_robustness(run_dir: Path | Run, split: str = "test", device: str = "cpu") -> LoadedRun:
    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    tensors = run.tensors(split)  # checks the split, reads the data
    if "train" not in run.corpus().split_names():
        raise MerbenchError(f"{run.path}: dataset {run.dataset.name!r} has no train split to measure feature statistics on")
    return LoadedRun(run, split, device, tensors, training_stats(run.tensors("train")))


def evaluate_condition(run_dir: Path, condition: Condition, split: str = "test", device: str = "cpu") -> dict:
    """Every metric of ``split`` with ``condition`` applied to the test-time inputs."""
    return load_for_robustness(run_dir, split, device).score(condition)


@dataclass
class RobustnessRow:
    """One run x one modality: the metric at each noise level, and with the modality missing."""

    run_dir: Path
    label: str
    modality: str
    levels: list[float]
    values: list[float]
    missing: float


def default_metric(task: str) -> str:
    return "wf1" if task == "classification" else "acc2_non0"


def robustness_sweep(run_dir: Path, label: str, modalities: list[str] | None = None,
                     levels: tuple[float, ...] | list[float] = DEFAULT_LEVELS, metric: str | None = None,
                     split: str = "test", device: str = "cpu", missing_mode: str = "zero",
                     seed: int = 0) -> list[RobustnessRow]:
    """One row per modality: ``metric`` at each noise level of that modality, then missing.

    ``metric`` None = WF1 for classification, ACC-2 (non0) for regression.
    """
    check_missing_mode(missing_mode)
    run = load_for_robustness(run_dir, split, device)
    for m in modalities or []:
        if m not in run.modalities:
            raise MerbenchError(f"--modalities {m}: run {run_dir} does not use {m} "
                                f"(it uses {', '.join(run.modalities)})")
    metric = metric or default_metric(run.corpus.task)
    clean = run.score()
    valid = [k for k, v in clean.items() if isinstance(v, float)]
    if metric not in valid:
        raise MerbenchError(f"--metric {metric}: not a metric of run {run_dir}{closest(metric, valid)}; "
                            f"valid: {', '.join(valid)}")
    rows = []
    for m in modalities or run.modalities:
        values = [clean[metric] if level == 0 else
                  run.score(Condition(noise={m: level}, missing_mode=missing_mode, seed=seed))[metric]
                  for level in levels]
        missing = run.score(Condition(missing=(m,), missing_mode=missing_mode, seed=seed))[metric]
        rows.append(RobustnessRow(Path(run_dir), label, m, list(levels), values, missing))
    return rows


@dataclass
class RobustnessReport:
    """Every row of a ``merbench robustness`` call, with what they were measured under."""

    rows: list[RobustnessRow]
    metric: str
    split: str
    missing_mode: str
    seed: int
    notes: list[str] = field(default_factory=list)

    def table(self):
        """rows = run x modality; columns = noise levels, then the modality missing."""
        # start-up: tabulate only when this runs
        from merbench.tables import Table, Value

        columns = (["Run", "Modality"] + [f"noise {level:g}" for level in self.rows[0].levels]
                   + [f"missing ({self.missing_mode})"])
        body = [[r.label, r.modality] + [Value(Cell([v]), 2) for v in r.values + [r.missing]] for r in self.rows]
        title = (f"{self.metric} on {self.split} with one modality noisy (x training std per dimension) "
                 f"or missing")
        return Table(title, columns, body, notes=list(self.notes), per_run=True)

    def figure(self, path: Path) -> Path:
        curves = [(f"{r.label} / {r.modality}", r.levels, r.values, r.missing) for r in self.rows]
        return robustness_plot(curves, path, ylabel=self.metric,
                               title=f"{self.metric} on {self.split}, missing = {self.missing_mode}")

    def save(self, path: Path) -> Path:
        write_json(path, {
            "kind": "robustness", "created_utc": utc_now(), "metric": self.metric, "split": self.split,
            "missing_mode": self.missing_mode, "noise_seed": self.seed,
            "rows": [{"run": str(r.run_dir), "label": r.label, "modality": r.modality, "levels": r.levels,
                      "values": r.values, "missing": r.missing} for r in self.rows],
        })
        return Path(path)


@dataclass
class RobustnessPlan:
    """The runs a ``merbench robustness`` call scores, before any is loaded."""

    runs: list[tuple[Path, str, list[str]]]  # run folder, row label, modalities it perturbs
    levels: list[float]
    metric: str
    notes: list[str] = field(default_factory=list)

    @property
    def scorings(self) -> int:
        """Test-split predictions: one clean per run, then per modality each level > 0 and missing."""
        noisy = sum(1 for level in self.levels if level > 0)
        return sum(1 + len(mods) * (noisy + 1) for _, _, mods in self.runs)

    def describe(self) -> str:
        return (f"{len(self.runs)} run(s), {self.scorings} scorings (each predicts the split once; "
                f"no estimate: robustness trains nothing, so no training time applies)")


def plan_robustness(paths: list[Path], modalities: list[str] | None = None,
                    levels: tuple[float, ...] | list[float] = DEFAULT_LEVELS,
                    metric: str | None = None) -> RobustnessPlan:
    """The finished runs under ``paths`` (run folders or folders of runs), labelled for the table."""
    results = collect(paths)
    finished = [r for r in results if r.ok]
    notes = [f"{len(results) - len(finished)} failed run(s) left out"] if len(finished) < len(results) else []
    if not finished:
        raise MerbenchError("no finished runs to score")
    tasks = {r.dataset.task for r in finished}
    if len(tasks) > 1:
        raise MerbenchError(f"the runs are of two tasks, and no metric scores both: {_by_task(finished)}; "
                            f"score each task's runs apart (merbench robustness RUN... with the runs of one task)")
    metric = metric or default_metric(tasks.pop())
    groups = group_results(finished)
    label_of = {id(r): f"{label} seed{r.seed}" for g, label in zip(groups, row_labels(groups)) for r in g.results}
    targets: list[tuple[Path, str, list[str]]] = []
    seen: set[Path] = set()
    for r in finished:
        run_dir = r.run_dir
        if run_dir.resolve() in seen:
            continue
        seen.add(run_dir.resolve())
        targets.append((run_dir, label_of[id(r)], list(modalities or r.dataset.modalities)))
    return RobustnessPlan(targets, list(levels), metric, notes)


def _by_task(results: list) -> str:
    """'2 classification runs (runs/a, runs/b), 1 regression run (runs/c)': a few folders each."""
    parts = []
    for task in sorted({r.dataset.task for r in results}):
        folders = [str(r.run_dir) for r in results if r.dataset.task == task]
        shown = ", ".join(folders[:2]) + (f", ... {len(folders) - 2} more" if len(folders) > 2 else "")
        parts.append(f"{len(folders)} {task} run{'s' if len(folders) != 1 else ''} ({shown})")
    return ", ".join(parts)


def robustness_report(paths: list[Path] | RobustnessPlan, modalities: list[str] | None = None,
                      levels: tuple[float, ...] | list[float] = DEFAULT_LEVELS, metric: str | None = None,
                      split: str = "test", device: str = "cpu", missing_mode: str = "zero",
                      seed: int = 0) -> RobustnessReport:
    """``robustness_sweep`` over run folders (or folders of runs, or a plan of them), one row per
    run and modality."""
    check_missing_mode(missing_mode)
    plan = paths if isinstance(paths, RobustnessPlan) else plan_robustness(paths, modalities, levels, metric)
    rows: list[RobustnessRow] = []
    for run_dir, label, _ in plan.runs:
        rows += robustness_sweep(run_dir, label, modalities, plan.levels, plan.metric, split, device,
                                 missing_mode, seed)
    return RobustnessReport(rows, plan.metric, split, missing_mode, seed, plan.notes)
