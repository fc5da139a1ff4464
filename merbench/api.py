"""The Python API: what the command line does, as functions returning typed objects.

Every command that trains or reads runs is a thin layer over one of these (docs/python.md):

- ``train(recipe_or_path, **overrides) -> Run``: ``merbench train``;
- ``extract(dataset, root, ...) -> Extraction`` and ``finetune(dataset, ...) -> FinetuneReport``:
  ``merbench extract`` / ``merbench finetune``, features and fine-tuned encoders of a release;
- ``load_run(path) -> Run`` and ``load_results(paths)``: finished runs read back;
  ``evaluate(path) -> Evaluation``: ``merbench evaluate``;
- ``table(paths) -> TableReport``: ``merbench table``; ``check(paths, against) -> CheckReport``:
  ``merbench check``;
- ``compare(...)``, ``ablate(...)``, ``heads_sweep(...) -> GridReport``: the grid commands,
  whose ``tables`` are the tables the command prints (``dry_run=True`` sizes them only);
- ``tune(model, dataset, trials, ...) -> TuneReport``: ``merbench tune``.

Overrides are the recipe keys ``--set`` takes, spelt as dotted keyword names, each the exact
equivalent of one ``--set``: ``train("synthetic/tfn", **{"train.seed": 1, "model.hidden": 16})``
is ``merbench train synthetic/tfn --set train.seed=1 --set model.hidden=16``. Values are taken
as the Python values they are (no YAML reading of strings).
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from merbench import check as regression
from merbench import run_folder
from merbench.aggregate import collect, group_results, modality_label, one_group, row_labels
from merbench.atomic import output_file
from merbench.data.readers import read_corpus, resolve_root
from merbench.data.types import MODALITIES
from merbench.device import DEFAULT_THREADS
from merbench.errors import MerbenchError
from merbench.experiments.efficiency import device_label, latency_ms
from merbench.experiments.sizing import estimate, parallelism
from merbench.features.cache import MANIFEST, cache_root, features_folder
from merbench.features.finetuned import CROSSFIT_EVAL, RECORD
from merbench.features.options import FinetuneOptions
from merbench.figures import confusion_plot, figure_path, group_confusions
from merbench.grid import RunnerOptions, run_grid
from merbench.optional import import_optional
from merbench.recipe import (SPLITS, Recipe, apply_overrides, load_recipe, override_text, overrides_source,
                             validate)
from merbench.results import load_json
from merbench.run import Run, find_runs, load_run
from merbench.tables import Table, by_dataset, data_parts, layout_for, render_all, results_tables

if TYPE_CHECKING:
    from merbench.experiments._common import Plan
    from merbench.experiments.sizing import Estimate
    from merbench.grid import GridRun

__all__ = ["CheckReport", "Evaluation", "ExtractedFeatures", "Extraction", "FinetuneReport", "GridReport", "Robustness",
           "Run", "TableReport", "TuneReport", "ablate", "check", "compare", "confusion_figure", "evaluate", "extract",
           "finetune", "heads_sweep", "load_results", "load_run", "plan_grid", "results_frame", "robustness",
           "significance", "table", "train", "tune"]


def _override_list(overrides: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """``{"train.seed": 1}`` -> ``[("train.seed", 1)]``; a name without a dot is not a recipe key."""
    for key in overrides:
        if "." not in key:
            raise MerbenchError(f"{where}: unknown argument {key!r} (recipe overrides are dotted "
                                f"SECTION.KEY names, e.g. **{{'train.seed': 1}})")
    return list(overrides.items())


def resolve_recipe(recipe_or_path: Recipe | dict | str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """A validated recipe from a file (``merbench.recipe_paths`` finds packaged ones), a dict or
    a ``Recipe``, with overrides applied as ``--set`` applies them. Checked once: a ``Recipe``
    without overrides is returned as it is."""
    pairs = _override_list(overrides or {}, "train()")
    if isinstance(recipe_or_path, Recipe) and not pairs:
        return recipe_or_path
    if isinstance(recipe_or_path, (dict, Recipe)):
        raw = recipe_or_path.as_dict() if isinstance(recipe_or_path, Recipe) else copy.deepcopy(recipe_or_path)
        if not pairs:
            return validate(raw, "recipe")
        validate(raw, "recipe")  # the recipe must stand on its own, as a file must
        return validate(apply_overrides(raw, pairs), overrides_source(pairs, "recipe --set"))
    return load_recipe(recipe_or_path, pairs)


def train(recipe_or_path: Recipe | dict | str | Path, *, out: str | Path = "runs", resume: bool = False,
          force: bool = False, progress: bool = True, keep_last: bool = False,
          command: list[str] | None = None, console=None, **overrides: Any) -> Run:
    """Train one model on one dataset (``merbench train``) and return the finished ``Run``.

    A run that ended failed (a NaN loss) is returned with ``status == "failed"``; bad input
    raises ``MerbenchError`` before any work. The recipe is validated once, here. ``console``
    (a rich Console) is told when the run is already finished and is shown as it is.
    """
    # start-up: torch only when this runs
    from merbench.train import train as train_run

    recipe = resolve_recipe(recipe_or_path, overrides)
    if console is not None and not force and run_folder.is_finished(Path(out) / run_folder.run_name(recipe.data)):
        console.print("this recipe, seed, code and data already finished: showing that run (--force trains again)")
    if command is None:  # what result.json records as the command: this call, spelt as the CLI's
        source = "<recipe dict>" if isinstance(recipe_or_path, dict) else str(recipe_or_path)
        command = ["merbench.train", source] + [f"--set={override_text(item)}" for item in overrides.items()]
    run_dir = train_run(recipe, Path(out), resume=resume, force=force, progress=progress, keep_last=keep_last,
                        command=command)
    return load_run(run_dir)


@dataclass
class Evaluation:
    """What ``merbench evaluate`` prints: every metric of one split, scored again."""

    split: str
    condition: str | None  # None: the inputs as they are; else what was done ("missing audio (zero)")
    metrics: dict


def evaluate(run_dir: str | Path, *, split: str = "test", device: str = "cpu", missing: list[str] = (),
             noise: list[str] | dict[str, float] | None = None, missing_mode: str = "zero",
             seed: int = 0) -> Evaluation:
    """``merbench evaluate``: the run's best checkpoint scored again on ``split``, optionally with
    modalities ``missing`` (``missing_mode`` zero or mean) or ``noise`` ({modality: level} or
    ``--noise`` texts "vision=0.5"; level x the training std per dimension, drawn from ``seed``)."""
    # start-up: torch only when this runs
    from merbench.robustness import evaluate_condition, make_condition, parse_noise

    texts = [f"{m}={level}" for m, level in noise.items()] if isinstance(noise, dict) else list(noise or [])
    condition = make_condition(list(missing), parse_noise(texts), missing_mode, seed)
    if condition.missing or condition.noise:
        return Evaluation(split, condition.describe(), evaluate_condition(Path(run_dir), condition, split, device))
    return Evaluation(split, None, load_run(run_dir).evaluate(split, device))


# --- Features: extract and finetune -----------------------------------------------------

@dataclass
class ExtractedFeatures:
    """One modality's features as ``merbench extract`` left them."""

    modality: str
    source: str  # extracted (through the cache) | shipped (the release's own)
    dim: int
    sequence: bool  # frame sequences (T, D) per utterance, else vectors (D,)
    extractor: str | None = None  # the extractor's name (extracted only)
    config_hash: str | None = None  # the extractor's config hash: part of the cache folder's name
    folder: Path | None = None  # the cache folder (manifest.json and the shards); None if shipped
    counts: dict = field(default_factory=dict)  # what the extractor counted (the face step's frames)

    @property
    def manifest(self) -> Path | None:
        return self.folder / MANIFEST if self.folder is not None else None


@dataclass
class Extraction:
    """What ``merbench extract`` did: the release read and, per modality, where its features
    are now (``features``), with the ``recipe`` section that trains on them."""

    dataset: str
    root: Path
    format: str | None  # the format read (detected when not given)
    protocol: str
    counts: dict[str, int]  # utterances per split
    features: dict[str, ExtractedFeatures]
    extractors: dict[str, dict]  # modality -> {name, **options}: the extractors asked for
    seconds: float  # reading the features (extracting what the cache lacked)
    cache: Path  # the cache root
    warnings: list[str] = field(default_factory=list)  # what the reader said of the release
    format_named: bool = False  # the format was named (``format=``), not detected

    @property
    def utterances(self) -> int:
        return sum(self.counts.values())

    def recipe(self) -> dict:
        """The recipe's ``dataset`` section that trains on these features (the command's
        ``recipe:`` line): name, root, the format when it was named, ``features`` when
        extractors ran."""
        features = {m: s["name"] if len(s) == 1 else dict(s) for m, s in self.extractors.items()}
        return {"name": self.dataset, "root": str(self.root), **({"format": self.format} if self.format_named else {}),
                **({"features": features} if features else {})}


def extract(dataset: str, root: str | Path, *, format: str | None = None, labels: str | None = None,
            protocol: str | None = None, fold: int | None = None, audio: str | None = None,
            audio_model: str | None = None, text: str | None = None, text_model: str | None = None,
            crossfit_eval: str = "full", vision: str | None = None, vision_model: str | None = None,
            frames: int = 8, face: bool = False, options: dict[str, Any] | None = None,
            device: str | None = None, cache: str | Path | None = None, progress: bool = True,
            warn: Callable[[str], None] | None = None) -> Extraction:
    """``merbench extract``: read ``dataset``'s release at ``root`` and extract (or find in the
    cache) the features of the extractors named; modalities without one keep what the release
    ships. ``options``: extractor options as dotted ``MODALITY.KEY`` names
    (``{"audio.level": "lld"}``, ``--option``). ``warn`` is called with each warning of the
    reader as it comes (they are also in ``Extraction.warnings``). The options are checked
    together, every problem in one error, before the release is read."""
    # start-up: torch (the extractors) only when this runs
    from merbench.features.build import build_corpus

    if text_model and not text:
        text = "bert"  # any encoder dir, a fine-tuned one included; its record fixes the input
    specs: dict[str, dict] = {}
    problems: list[str] = []
    text_extra = {} if crossfit_eval == "full" else {"crossfit_eval": crossfit_eval}  # the extractor checks it
    vision_extra = {"frames": frames, **({"face": True} if face else {})}
    for modality, name, model, extra in (("audio", audio, audio_model, {}), ("text", text, text_model, text_extra),
                                         ("vision", vision, vision_model, vision_extra)):
        if name:
            specs[modality] = {"name": name, **({"model": str(model)} if model else {}), **extra}
        elif model:
            problems.append(f"--{modality}-model given without --{modality}")
    for dotted, value in (options or {}).items():
        modality, dot, key = str(dotted).partition(".")
        if not dot or modality not in MODALITIES or not key or "." in key:
            problems.append(f"--option {dotted}: expected MODALITY.KEY=VALUE with MODALITY one of "
                            f"{', '.join(MODALITIES)}, e.g. audio.feature_set=ComParE_2016")
        elif modality not in specs:
            problems.append(f"--option {modality}.{key}: no --{modality} extractor asked for")
        else:
            specs[modality][key] = value  # the extractor checks the name and the value
    if problems:
        raise MerbenchError("; ".join(problems))
    warned: list[str] = []
    raw = read_corpus(dataset, Path(root), format, labels, protocol, fold, modalities=tuple(specs))
    for warning in raw.info.get("warnings", []):
        warned.append(warning)
        if warn is not None:
            warn(warning)
    started = time.perf_counter()
    corpus = build_corpus(raw, specs, cache_root=cache, device=device, progress=progress)
    seconds = time.perf_counter() - started
    fingerprint = corpus.info["raw_fingerprint"]
    features = {}
    for m, info in corpus.info["features"].items():
        extracted = info["source"] == "extracted"
        features[m] = ExtractedFeatures(
            m, info["source"], int(info["dim"]), bool(info["sequence"]), info.get("extractor"),
            info.get("config_hash"),
            features_folder(cache, raw.name, fingerprint, m, info["extractor"], info["config_hash"])
            if extracted else None, dict(info.get("counts", {})))
    return Extraction(dataset, Path(root), raw.info.get("format", format), raw.protocol, corpus.counts(), features,
                      specs, seconds, cache_root(cache), warned, format is not None)


@dataclass
class FinetuneReport:
    """What ``merbench finetune`` wrote: the encoder's folder (``merbench extract
    --text-model`` reads it) and its record (``merbench_finetune.json``) with the validation
    scores the kept epoch was chosen on."""

    folder: Path
    record: dict  # the folder's merbench_finetune.json
    warnings: list[str] = field(default_factory=list)  # what the reader said of the release

    @property
    def kind(self) -> str:
        """encoder (one fine-tuned encoder) | crossfit (K fold encoders, and ``full`` unless skipped)."""
        return self.record.get("kind", "encoder")

    @property
    def best_epoch(self) -> int | None:
        return self.record.get("best_epoch")

    @property
    def selection_metric(self) -> str | None:
        return self.record.get("selection_metric")

    @property
    def best_valid(self) -> float | None:
        """The kept epoch's validation score (``selection_metric``); None for a cross-fitted folder."""
        return self.record.get("best_valid")

    @property
    def history(self) -> list[dict]:
        """One row per epoch: train loss, the validation score, seconds (an encoder folder)."""
        return list(self.record.get("history", []))

    @property
    def seconds_per_epoch(self) -> float | None:
        return self.record.get("seconds_per_epoch")


def finetune(dataset: str, root: str | Path | None = None, *, format: str | None = None,
             labels: str | None = None, protocol: str | None = None, fold: int | None = None,
             text: str = "minilm", text_model: str | Path | None = None, context: int = 0, epochs: int = 3,
             seed: int = 0, lr: float = 5e-5, batch_size: int = 16, max_length: int = 128, crossfit: int = 0,
             crossfit_eval: str = "full", out: str | Path = "models", device: str | None = None,
             threads: int = 0, progress: bool = True, command: list[str] | None = None,
             warn: Callable[[str], None] | None = None) -> FinetuneReport:
    """``merbench finetune``: fine-tune a text encoder (``text``: minilm or mpnet, or
    ``text_model``: a folder or hub id) as an utterance classifier (regressor on MOSEI) on
    ``dataset``'s training split, the epoch chosen on validation; ``root`` defaults to
    ``$MERBENCH_<DATASET>_ROOT``. A finished folder of the same options and data is found, an
    interrupted one resumed. Every bad option is reported at once, before the release is read;
    ``warn`` is called with each warning of the reader."""
    # start-up: torch and transformers only when this runs
    from merbench.features.finetune import finetune as run
    from merbench.features.text import NAMED_MODELS, named_model_dir

    settings = FinetuneOptions(context=context, epochs=epochs, seed=seed, lr=lr, batch_size=batch_size,
                               max_length=max_length, crossfit=crossfit)
    problems = [f"--{name.replace('_', '-')} {getattr(settings, name)}: expected {expected}"
                for name, expected in settings.problems()]
    if text not in NAMED_MODELS:
        problems.append(f"--text {text}: expected {' or '.join(NAMED_MODELS)} (or --text-model DIR)")
    if crossfit_eval not in CROSSFIT_EVAL:
        problems.append(f"--crossfit-eval {crossfit_eval}: expected {' or '.join(CROSSFIT_EVAL)}")
    if problems:  # bad options stop before the dataset is read
        raise MerbenchError("; ".join(problems))
    raw = read_corpus(dataset, resolve_root(dataset, str(root or "")), format, labels, protocol, fold,
                      modalities=("text",))
    warned = list(raw.info.get("warnings", []))
    for warning in warned if warn is not None else []:
        warn(warning)
    folder = run(raw, text_model or named_model_dir(text), out, settings, device=device, threads=threads,
                 progress=progress, command=command or ["merbench.finetune", dataset],
                 full=crossfit_eval == "full")
    return FinetuneReport(folder, load_json(folder / RECORD, "no fine-tuning record"), warned)


# --- Finished runs as records or a table of numbers -----------------------------------------

def load_results(paths, *, as_frame: bool = False, split: str = "test"):
    """Every run under ``paths`` (run folders, result.json files, folders of runs) as ``Run``
    records; ``as_frame=True``: a pandas DataFrame with one row per run and one column per
    metric of ``split`` (``results_frame``)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found = find_runs([Path(p) for p in paths])
    return results_frame(found, split) if as_frame else found


def results_frame(found: list[Run], split: str = "test"):
    """One row per run: path, run id, status, dataset, model, modalities, seed, best epoch,
    training seconds, parameters, then one column per metric of ``split`` (empty if failed)."""
    try:
        import pandas as pd
    except ImportError:
        raise MerbenchError("as_frame=True needs pandas (pip install merbench[frame])") from None

    rows = []
    for run in found:
        rows.append({"path": str(run.path), "run_id": run.run_id, "status": run.status,
                     "dataset": run.dataset.name, "model": run.model_name,
                     "modalities": modality_label(run.dataset.modalities), "seed": run.seed,
                     "best_epoch": run.selection.best_epoch, "seconds": run.seconds,
                     "parameters": run.model_info.parameters, **run.scores(split)})
    return pd.DataFrame(rows)


@dataclass
class TableReport:
    """What ``merbench table`` prints: one table per dataset, and the confusion figure if asked."""

    tables: list["Table"]
    figure: Path | None = None

    def render(self, fmt: str = "rich") -> str:
        """The tables as the command prints them (rich, markdown, latex, csv or json)."""
        return render_all(self.tables, fmt)


def table(paths, *, layout: str | None = None, split: str = "test", significance: bool = False,
          resamples: int = 10_000, figure: str | Path | None = None) -> TableReport:
    """``merbench table``: the runs under ``paths`` in the HFF paper's layouts, one table per
    dataset and data (fingerprint, features, protocol); runs that differ only by seed are one row (mean ± std (n)). ``significance``
    marks with † the cells not significantly different from their column's best; ``figure``
    (.png, .pdf or .svg) also writes each row's row-normalised confusion matrix. Every error
    comes before the figure is written."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if split not in SPLITS:
        raise MerbenchError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    groups = group_results(_with_components(collect([Path(p) for p in paths])))
    report = TableReport(results_tables(groups, layout, split))
    if figure is not None:
        figure_path(Path(figure))
        # One panel per row of every table, labelled as in its table plus what its data differs by.
        parts = data_parts(groups)
        labels = [label + (f" ({', '.join(part.differs)})" if part.differs else "")
                  for part in parts for label in row_labels(part.groups)]
        panels = group_confusions([g for part in parts for g in part.groups], labels, split)  # errors before any output
    if significance:
        # start-up: the permutation tests (numpy) only when asked for
        from merbench.significance import mark_not_significant

        for result, part in zip(report.tables, by_dataset(groups)):
            mark_not_significant(result, part, layout_for(part, layout), split, resamples=resamples)
    if figure is not None:
        report.figure = confusion_plot(panels, Path(figure))
    return report


@dataclass
class CheckReport:
    """What ``merbench check`` found: per reference metric a finding; after ``update``, the
    number of entries written instead."""

    reference: Path
    findings: list = field(default_factory=list)  # merbench.check.Finding
    written: int | None = None  # entries written by update=True

    @property
    def failed(self) -> list:
        """The findings that fail the check: a regression, or a reference metric with no result."""
        return [f for f in self.findings if f.status in ("regression", "missing")]


def check(paths, against: str | Path, *, update: bool = False, tolerance: float = 1.5,
          metrics: list[str] | None = None, split: str = "test") -> CheckReport:
    """``merbench check``: the runs under ``paths`` against the reference file ``against``;
    ``update=True`` writes the reference from them instead (``tolerance`` in points, ``metrics``
    to guard, default per task, of ``split``)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    groups = group_results(collect([Path(p) for p in paths]))
    if update:
        reference = regression.build_reference(groups, split, tolerance, metrics)
        regression.write_reference(Path(against), reference)
        return CheckReport(Path(against), written=len(reference["entries"]))
    return CheckReport(Path(against), regression.compare(groups, regression.load_reference(Path(against))))


def _with_components(results: list) -> list:
    """Files written before result.json recorded ``model.inactive_components`` get it from
    today's model code (which imports torch: only for such files), so their rows are marked ‡
    when the model went without some of its components."""
    if all(r.model.inactive_components is not None for r in results):
        return results
    # start-up: torch only for result files written before components were recorded
    from merbench.models.build import fill_components

    return [fill_components(r) for r in results]


@dataclass
class Robustness:
    """What ``merbench robustness`` did: its ``plan`` (runs and scorings), and unless it was a
    dry run the ``report`` (``merbench.robustness.RobustnessReport``: rows, ``table()``), with
    the ``figure`` and the ``saved`` numbers written if asked."""

    plan: Any  # merbench.robustness.RobustnessPlan
    report: Any = None
    figure: Path | None = None
    saved: Path | None = None

    def render(self, fmt: str = "rich") -> str:
        return render_all([self.report.table()], fmt) if self.report is not None else ""


def robustness(paths, *, modalities: str | list[str] | None = None, levels: str | list[float] = "0,0.25,0.5,1,2",
               metric: str | None = None, split: str = "test", missing_mode: str = "zero", seed: int = 0,
               device: str = "cpu", figure: str | Path | None = None, save: str | Path | None = None,
               dry_run: bool = False, console=None) -> Robustness:
    """``merbench robustness``: the runs under ``paths`` scored with each modality noisy (at
    ``levels`` x the training std per dimension) or missing (``missing_mode``). Every check
    (modalities, levels, the figure's format, runs of one task) comes before any scoring; the
    plan line goes to ``console`` when given; ``dry_run`` plans only."""
    # start-up: torch only when this runs
    from merbench.robustness import check_missing_mode, parse_levels, parse_modalities, plan_robustness, robustness_report

    if isinstance(paths, (str, Path)):
        paths = [paths]
    if figure is not None:
        figure_path(Path(figure))
    if save is not None:
        output_file(save, "--save")
    wanted = parse_modalities(modalities) if isinstance(modalities, str) else (list(modalities) if modalities else None)
    check_missing_mode(missing_mode)
    steps = parse_levels(levels) if isinstance(levels, str) else [float(v) for v in levels]
    plan = plan_robustness([Path(p) for p in paths], wanted, steps, metric)
    if console is not None:
        console.print(f"robustness: {plan.describe()}", soft_wrap=True)
    found = Robustness(plan)
    if dry_run:
        return found
    found.report = robustness_report(plan, wanted, split=split, device=device, missing_mode=missing_mode, seed=seed)
    if figure is not None:
        found.figure = found.report.figure(Path(figure))
    if save is not None:
        found.saved = found.report.save(Path(save))
    return found


def significance(run_a: str | Path, run_b: str | Path, metric: str = "wf1", split: str = "test", *,
                 resamples: int = 10_000, confidence: float = 0.95, seed: int = 0):
    """``merbench significance``: B - A in ``metric`` on ``split`` over the same utterances, a
    paired bootstrap interval and a paired permutation p-value (``merbench.significance.Comparison``)."""
    # start-up: the resampling (numpy) only when this runs
    from merbench.significance import significance as compare_runs

    return compare_runs(Path(run_a), Path(run_b), metric, split, resamples=resamples, confidence=confidence,
                        seed=seed)


def confusion_figure(run: str | Path, out: str | Path, *, split: str = "test") -> Path:
    """``merbench figure confusion``: the row-normalised confusion matrix of one recipe's runs
    (the mean over its seeds) written to ``out`` (.png, .pdf or .svg); returns the path."""
    if split not in SPLITS:
        raise MerbenchError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    figure_path(Path(out), "--out")
    groups = [one_group(Path(run), f"use merbench table {run} --figure {out} for one panel per recipe")]
    return confusion_plot(group_confusions(groups, row_labels(groups), split), Path(out))


# --- Grids --------------------------------------------------------------------------------

@dataclass
class GridReport:
    """What a grid command produced: its plan, size, the runs, and the tables it prints."""

    kind: str  # ablate | heads-sweep | compare
    plan: "Plan"
    grid_dir: Path
    estimate: "Estimate"
    grid: "GridRun | None" = None  # None for a dry run
    tables: list["Table"] = field(default_factory=list)
    figure: Path | None = None  # heads-sweep's plot
    notes: list[str] = field(default_factory=list)  # what the command says besides the tables

    @property
    def failed(self) -> list:
        return self.grid.failed if self.grid is not None else []

    def render(self, fmt: str = "rich") -> str:
        """The tables as the command prints them (rich, markdown, latex, csv or json)."""
        return render_all(self.tables, fmt)

    def runs(self) -> list[Run]:
        """The finished cells as ``Run`` objects, in plan order."""
        return self.grid.runs() if self.grid is not None else []


class GridFailed(MerbenchError):
    """Every cell of a grid failed: there is nothing to tabulate. ``report`` holds the grid and
    its per-cell errors (``report.grid.errors``); ``merbench grid status`` shows them too."""

    def __init__(self, report: GridReport) -> None:
        run = report.grid
        first = next((run.errors[c.run] for c in run.cells if c.run in run.errors), "no error recorded")
        super().__init__(f"all {len(run.cells)} cells of the grid failed, none to tabulate (first error: "
                         f"{first}); merbench grid status {run.grid_dir}")
        self.report = report


# Raised in a worker process of ``RunnerOptions(jobs=N)`` that is importing the user's script
# again: spawned workers run the script's top level, so a grid called there would start again.
GUARD = ('a grid with jobs > 1 was started again while one of its worker processes loaded the '
         'script: workers import the script that called it, so call the grid function under '
         '`if __name__ == "__main__":` (docs/python.md)')


def plan_grid(plan: "Plan", kind: str, out: str | Path = "grids", runner: "RunnerOptions | None" = None,
              dry_run: bool = False, command: list[str] | None = None, console=None) -> tuple[GridReport, bool]:
    """Size ``plan`` (printed to ``console`` when given) and, unless ``dry_run``, train its
    unfinished cells. Returns the report (no tables yet) and whether anything finished; raises
    :class:`GridFailed` when cells were to be trained and none finished."""
    # The flag multiprocessing itself checks before refusing to start processes from a worker
    # that is still importing the main module.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise MerbenchError(GUARD)
    runner = runner or RunnerOptions(quiet=True)
    runner.check()
    grid_dir = Path(out) / plan.name
    sized = estimate(plan.cells, grid_dir, Path(out), runner)
    report = GridReport(kind, plan, grid_dir, sized)
    if console is not None:
        console.print(f"{kind} {grid_dir}: {sized.describe()}", soft_wrap=True)
    if dry_run:
        return report, False
    report.grid = run_grid(grid_dir, plan.cells, kind, command or [f"merbench.{kind}"], runner,
                           console=console, extra={"info": plan.info})
    if report.grid.cells and not report.grid.results:
        raise GridFailed(report)
    return report, bool(report.grid.results)


def _cell_overrides(overrides: dict[str, Any], runner: "RunnerOptions | None") -> list:
    """The user's overrides plus the thread count: ``train.threads`` is part of every cell's
    recipe, so the run identity says how many threads made its numbers."""
    threads = runner.threads if runner is not None else DEFAULT_THREADS
    return _override_list(overrides, "grid") + [("train.threads", threads)]


def compare(dataset: str, models: str | list[str], *, seeds: int = 3, references: bool = False,
            efficiency: bool = False, device: str = "auto", recipes: str | Path | None = None,
            tuned: str | Path | None = None, out: str | Path = "grids", runner: "RunnerOptions | None" = None,
            dry_run: bool = False, command: list[str] | None = None, console=None, **overrides: Any) -> GridReport:
    """Train (or reuse) every model on ``dataset`` (``merbench compare``): the dataset's paper table.
    ``tuned``: a folder of ``merbench tune`` folders; each model's recipe is then its
    ``tune-<model>-<dataset>/best.yaml``, and the table shows each row's tuning budget."""
    # start-up: tabulate only when this runs
    from merbench.experiments import compare as experiment

    names = models if isinstance(models, str) else ",".join(models)
    if efficiency:  # before any training: a device that cannot measure would waste the grid
        # start-up: torch (resolve_device) only when latency is measured
        from merbench.device import resolve_device

        resolve_device(device)
    plan = experiment.plan(dataset, names, _cell_overrides(overrides, runner), seeds,
                           Path(recipes) if recipes else None, Path(tuned) if tuned else None)
    report, finished = plan_grid(plan, "compare", out, runner, dry_run, command, console)
    if finished:
        measured = None
        if efficiency:
            threads = runner.threads if runner is not None else DEFAULT_THREADS
            latency = {}
            for name in plan.info["models"]:
                first = next((c for c in plan.cells if c.labels["model"] == name and report.grid.result(c)), None)
                if first is not None:
                    latency[name] = latency_ms(report.grid_dir / first.run, device, threads)
            measured = {"latency": latency, "device": device_label(device, threads)}
            report.notes.append(f"latency measured on {measured['device']}")
        report.tables = experiment.tables(plan, report.grid, references, measured)
    return report


def ablate(model: str, drop: str | list[str], *, dataset: str | None = None, recipe: str | Path | None = None,
           recipes: str | Path | None = None, modalities: str | None = None, seeds: int = 3,
           references: bool = False, out: str | Path = "grids", runner: "RunnerOptions | None" = None,
           dry_run: bool = False, command: list[str] | None = None, console=None, **overrides: Any) -> GridReport:
    """The full model and each component switched off, per modality subset (``merbench ablate``)."""
    # start-up: torch and tabulate only when this runs
    from merbench.experiments import ablate as experiment

    drops = [drop] if isinstance(drop, str) else list(drop)
    plan = experiment.plan(model, drops, dataset, Path(recipe) if recipe else None,
                           _cell_overrides(overrides, runner), seeds, modalities,
                           Path(recipes) if recipes else None)
    report, finished = plan_grid(plan, "ablate", out, runner, dry_run, command, console)
    if finished:
        report.tables = experiment.tables(plan, report.grid, references)
    return report


HEADS_FIGURE = "heads-f1.png"  # default figure name inside the grid folder


def heads_sweep(model: str, heads: str | list[int] = "4,6,8,10", *, datasets: list[str] = (),
                recipe: list[str | Path] = (), recipes: str | Path | None = None, figure: str | Path | None = None,
                seeds: int = 3, references: bool = False, out: str | Path = "grids",
                runner: "RunnerOptions | None" = None, dry_run: bool = False, command: list[str] | None = None,
                console=None, **overrides: Any) -> GridReport:
    """The model at each head count on each dataset (``merbench heads-sweep``): tables and a plot."""
    # start-up: torch and tabulate only when this runs
    from merbench.experiments import heads as experiment

    counts = heads if isinstance(heads, str) else ",".join(str(h) for h in heads)
    if figure is not None:
        figure_path(Path(figure))
    plan = experiment.plan(model, counts, list(datasets), [Path(r) for r in recipe],
                           _cell_overrides(overrides, runner), seeds, Path(recipes) if recipes else None)
    report, finished = plan_grid(plan, "heads-sweep", out, runner, dry_run, command, console)
    if finished:
        report.tables = experiment.tables(plan, report.grid, references)
        report.figure = experiment.figure(plan, report.grid, Path(figure or report.grid_dir / HEADS_FIGURE),
                                          references)
    return report


# --- Tuning -------------------------------------------------------------------------------

@dataclass
class TuneReport:
    """What ``merbench tune`` produced: the study's trials, the best recipe, the final runs' table."""

    tune_dir: Path
    study_name: str
    metric: str  # the validation metric searched on
    direction: str  # maximize | minimize
    size: Any  # merbench.tuning.tune.Size, before the command ran
    trials: list = field(default_factory=list)  # merbench.tuning.study.TrialRecord, every trial of the study
    best: Any = None  # the best complete TrialRecord (None: none complete yet)
    best_recipe: Path | None = None  # best.yaml
    final: "GridRun | None" = None  # the --seeds-final runs of best.yaml
    tables: list["Table"] = field(default_factory=list)  # their test numbers
    figures: list[Path] = field(default_factory=list)
    errors: dict = field(default_factory=dict)  # trial number -> error (resumed by the next command)
    trained: list[int] = field(default_factory=list)  # trials run by this command
    wall_seconds: float = 0.0
    timed_out: int = 0  # trials not started: --timeout passed
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list:
        """Trials that raised, then final runs that did not finish."""
        return list(self.errors) + (self.final.failed if self.final is not None else [])

    def render(self, fmt: str = "rich") -> str:
        return render_all(self.tables, fmt)

    def runs(self) -> list[Run]:
        """The finished final runs as ``Run`` objects."""
        return self.final.runs() if self.final is not None else []


def tune(model: str, dataset: str, trials: int, *, space: str | Path | None = None,
         recipes: str | Path | None = None, recipe: str | Path | None = None, seeds_final: int = 3,
         sampler: str = "tpe", seed: int = 0, pruner: str = "median", prune_after: int = 5,
         storage: str | None = None, timeout: float | None = None, figure: str | Path | None = None,
         out: str | Path = "grids", runner: "RunnerOptions | None" = None, dry_run: bool = False,
         command: list[str] | None = None, console=None, **overrides: Any) -> TuneReport:
    """Search ``model``'s settings on ``dataset``'s validation split (``merbench tune``), then
    train ``seeds_final`` seeds of the best and table their test numbers.

    ``trials``: the study's size (trials already done count; a rerun runs only what is
    missing). ``space``: a search space file (default ``recipes/spaces/<model>.yaml``).
    ``timeout``: minutes after which no new trial starts. ``storage``: an Optuna storage URL
    (default: ``study.db`` in the tune folder).
    """
    # optional: optuna (merbench[tune]) only when a study runs
    from merbench.tuning.study import peek
    from merbench.tuning import tune as tuning

    runner = runner or _quiet_runner()
    runner.check()
    if figure is not None:
        figure_path(Path(figure))
    import_optional("optuna", "merbench tune")  # a one-line error naming the extra, before any work
    plan = tuning.plan(model, dataset, trials, overrides=_override_list(overrides, "tune()"),
                       threads=runner.threads, out=Path(out), space=Path(space) if space else None,
                       recipes=Path(recipes) if recipes else None, recipe=Path(recipe) if recipe else None,
                       seeds_final=seeds_final, sampler=sampler, seed=seed, pruner=pruner,
                       prune_after=prune_after, storage=storage, timeout_min=timeout)
    parallel = parallelism(runner, max(1, trials))
    records = peek(plan.info, plan.tune_dir, storage)
    sized = tuning.size(plan, records, parallel, Path(out), tuning.final_todo(plan, runner.threads))
    report = TuneReport(plan.tune_dir, plan.info["name"], plan.info["metric"], plan.info["direction"], sized,
                        trials=records, dry_run=dry_run)
    if console is not None:
        console.print(f"tune {plan.tune_dir}: {tuning.describe(sized, plan.info['metric'])}", soft_wrap=True)
    if dry_run:
        return report
    outcome = tuning.run(plan, runner, parallel, command or ["merbench.tune", model, dataset], console,
                         timeout, Path(figure) if figure else None, sized.to_run)
    search = outcome.search
    report.trials, report.best, report.best_recipe = search.trials, search.best, outcome.best_recipe
    report.final, report.figures, report.errors = outcome.final, outcome.figures, search.errors
    report.trained, report.wall_seconds, report.timed_out = search.trained, search.wall_seconds, search.timed_out
    if search.best is None:
        report.notes.append(f"no trial of study {plan.info['name']} is complete (pruned, failed or not run): "
                            f"no best.yaml and no final runs yet; run more trials")
    if search.timed_out:
        report.notes.append(f"--timeout {timeout} min passed: {search.timed_out} trial(s) not started "
                            f"(run the command again to go on)")
    if outcome.final is not None and outcome.final.results:
        report.tables = [tuning.final_table(plan, search, outcome.final)]
    return report


def _quiet_runner():
    return RunnerOptions(quiet=True)
