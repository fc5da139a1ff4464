"""Grouping results by recipe (merbench.aggregate): seeds, devices and thread counts pooled,
anything else apart, failed runs counted, every run's number in the mean; reading run
folders, result.json files and folders of runs; row labels that tell groups apart."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from merbench.aggregate import collect, group_results, modality_label, one_group, row_labels
from merbench.errors import MerbenchError
from merbench.results import SCHEMA_VERSION, Result


def _result(seed=0, wf1=50.0, status="ok", model="mlp", modalities=("audio", "text"), **train) -> dict:
    """A small but complete result.json (as a dict): what a reader of the file gets."""
    recipe = {"dataset": {"name": "synthetic", "modalities": list(modalities)}, "model": {"name": model},
              "train": {"seed": seed, "lr": 0.001, **train}}
    return {"schema_version": SCHEMA_VERSION, "run_id": f"{model}-{seed}-{wf1}", "status": status,
            "created_utc": "2026-01-01T00:00:00+00:00", "command": ["merbench"], "provenance": {},
            "recipe": recipe, "recipe_hash": "h", "seed": seed,
            "dataset": {"name": "synthetic", "task": "classification", "protocol": None,
                        "modalities": list(modalities), "dims": {}, "fingerprint": "f" * 64, "label_names": []},
            "model": {"name": model}, "selection": {"split": "valid", "metric": "wf1", "best_epoch": 1,
                                                    "best_value": wf1, "epochs_run": 1},
            "metrics": {"test": {"wf1": wf1, "acc": wf1 + 1}} if status == "ok" else {}}


def _records(*results: dict) -> list[Result]:
    """The records ``read_result`` would give for these files."""
    return [Result.from_json(r, Path(f"runs/{i}/result.json")) for i, r in enumerate(results)]


def test_seeds_devices_and_threads_pool_anything_else_splits():
    results = [_result(0, 50.0, device="cpu", threads=1), _result(1, 54.0, device="cuda", threads=4),
               _result(2, 0.0, status="failed"), _result(0, 70.0, lr=0.01), _result(0, 60.0, model="tfn"),
               _result(0, 61.0, modalities=("text",))]
    groups = group_results(_records(*results))
    assert [len(g.results) for g in groups] == [2, 1, 1, 1]
    pooled = groups[0]
    assert pooled.failed == 1 and pooled.model == "mlp" and pooled.modalities == ["audio", "text"]
    assert "seed" not in pooled.recipe["train"] and "device" not in pooled.recipe["train"]
    cell = pooled.cell("wf1")
    assert (cell.values, cell.n, cell.mean) == ([50.0, 54.0], 2, 52.0)
    assert cell.std == pytest.approx(math.sqrt(8))
    assert pooled.cell("wf1", "valid") is None and pooled.cell("mae") is None
    assert (pooled.dataset.name, pooled.dataset.task) == ("synthetic", "classification")
    # a recipe whose every run failed makes no group
    assert group_results(_records(_result(0, status="failed"))) == []


def test_row_labels_name_what_tells_groups_apart():
    groups = group_results(_records(_result(0, model="mlp"), _result(0, model="tfn"), _result(0, model="mlp", lr=0.01),
                                    _result(0, model="tfn", modalities=("text",))))
    assert row_labels(groups) == ["mlp (lr=0.001)", "tfn [S+T]", "mlp (lr=0.01)", "tfn [T]"]
    assert modality_label(["vision", "audio", "text"]) == "S+T+V" and modality_label(["text"]) == "T"


def _write(folder, result):
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def test_collect_reads_folders_files_and_trees(tmp_path):
    a = _write(tmp_path / "grid" / "a", _result(0, 50.0))
    b = _write(tmp_path / "grid" / "sub" / "b", _result(1, 54.0))
    assert [r["seed"] for r in collect([a])] == [0]
    assert [r["seed"] for r in collect([b / "result.json"])] == [1]
    assert sorted(r["seed"] for r in collect([tmp_path / "grid"])) == [0, 1]
    assert one_group(tmp_path / "grid", "x").cell("wf1").mean == 52.0
    (tmp_path / "empty").mkdir()
    with pytest.raises(MerbenchError, match="empty: holds no result.json"):
        collect([tmp_path / "empty"])
    _write(tmp_path / "grid" / "c", _result(0, 70.0, model="tfn"))
    with pytest.raises(MerbenchError, match="holds runs of 2 different recipes; pick one"):
        one_group(tmp_path / "grid", "pick one")
    _write(tmp_path / "failed" / "x", _result(0, status="failed"))
    with pytest.raises(MerbenchError, match="failed: holds no finished run"):
        one_group(tmp_path / "failed", "x")


def test_collect_counts_each_run_once(tmp_path, caplog):
    """A file named twice (a folder and its run, a run folder and its result.json) is read once,
    silently; a copy elsewhere (same run id) once, with a warning naming both; order is kept."""
    a = _write(tmp_path / "grid" / "a", _result(0, 50.0))
    b = _write(tmp_path / "grid" / "b", _result(1, 54.0))
    copy = _write(tmp_path / "elsewhere" / "a2", _result(0, 50.0))
    with caplog.at_level("WARNING", logger="merbench"):
        assert [r["seed"] for r in collect([b, tmp_path / "grid", a / "result.json", a])] == [1, 0]
        assert [r["seed"] for r in collect([a, a / "result.json", b])] == [0, 1]  # reading goes on after one
        assert not caplog.records
        found = collect([a, copy, tmp_path / "elsewhere", b])
    assert [(r["seed"], r.path.parent) for r in found] == [(0, a), (1, b)]
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("merbench", "WARNING", f"{copy}: run mlp-0-50.0 again (first at {a}); counted once")]  # the copy named twice: once
    assert one_group(tmp_path / "grid", "x").cell("wf1").n == 2


def test_grouping_leaves_results_untouched_and_ignores_key_order():
    from merbench.aggregate import group_key

    a = _result(0, 50.0)
    b = _result(1, 52.0)
    b["recipe"] = {"train": dict(reversed(list(b["recipe"]["train"].items()))), "model": b["recipe"]["model"],
                   "dataset": b["recipe"]["dataset"]}
    (group,) = group_results(_records(a, b, _result(2, status="failed"), _result(3, status="failed")))
    assert len(group.results) == 2 and group.failed == 2
    assert group.key == group_key(a["recipe"])[0]
    assert a["recipe"]["train"]["seed"] == 0 and b["recipe"]["train"]["seed"] == 1  # the results keep their seeds


def test_row_labels_list_every_difference_and_skip_names():
    groups = group_results(_records(_result(0, lr=0.01, patience=3), _result(0, lr=0.02, patience=4)))
    assert row_labels(groups) == ["mlp (lr=0.01, patience=3)", "mlp (lr=0.02, patience=4)"]
    # a dataset key after "modalities" in sorted order still counts; the dataset's name does not
    noisy = [_result(0), _result(0)]
    noisy[0]["recipe"]["dataset"]["noise"], noisy[1]["recipe"]["dataset"]["noise"] = 0.1, 0.2
    noisy[1]["recipe"]["dataset"]["name"] = "synthetic_mosei"
    assert row_labels(group_results(_records(*noisy))) == ["mlp (dataset.noise=0.1)", "mlp (dataset.noise=0.2)"]
