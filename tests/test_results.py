"""result.json's one record type: what training writes is what every reader gets back."""

from __future__ import annotations

import json

import pytest

from merbench import run_folder
from merbench.errors import MerbenchError
from merbench.recipe import load_recipe
from merbench.results import Result, read_result
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe, write_recipe


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("record")
    return train(load_recipe(write_recipe(tmp / "r.yaml", tiny_recipe("mlp_tiny", max_epochs=2))), tmp / "runs",
                 progress=False)


def test_the_record_holds_the_whole_file(run_dir):
    """Read and written again, the record gives the file back key for key, in its order."""
    text = (run_dir / run_folder.RESULT).read_text()
    record = read_result(run_dir)
    assert json.dumps(record.to_json(), indent=2) + "\n" == text
    assert record.ok and record.path == run_dir / run_folder.RESULT and record.run_dir == run_dir
    assert record.selection.epochs_run == 2 and len(record.history) == 2
    assert record.dataset.class_counts["test"] and record.model.num_outputs == len(record.dataset.label_names)
    assert record["metrics"] == record.metrics and set(record) == set(json.loads(text))  # the file's mapping


def test_an_older_file_still_reads(run_dir, tmp_path):
    """A file written before model.num_outputs, the component lists and the dataset's counts
    were recorded reads with what today's training would derive, and tables show it."""
    data = json.loads((run_dir / run_folder.RESULT).read_text())
    for key in ("num_outputs", "active_components", "inactive_components"):
        del data["model"][key]
    for key in ("class_counts", "counts", "info"):
        del data["dataset"][key]
    del data["training"]
    old = tmp_path / "old"
    old.mkdir()
    (old / run_folder.RESULT).write_text(json.dumps(data))
    record = read_result(old)
    assert record.model.num_outputs == len(record.dataset.label_names)
    assert record.model.inactive_components is None and record.seconds is None and record.history == []
    assert record.metrics == read_result(run_dir).metrics
    shown = cli("table", old, "--format", "csv")
    assert shown.exit_code == 0 and "mlp_tiny" in shown.output, shown.output


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.__setitem__("recipe", ["mlp_tiny"]), "recipe: expected the resolved recipe (a mapping), got ['mlp_tiny']"),
    (lambda d: d["recipe"].__setitem__("model", "mlp_tiny"), "recipe.model: expected a mapping, got 'mlp_tiny'"),
    (lambda d: d.__setitem__("status", "done"), "status: expected ok or failed, got 'done'"),
    (lambda d: d["selection"].pop("metric"), "not a complete merbench result (missing 'metric')"),
    (lambda d: d.__setitem__("model", 3), "not a complete merbench result"),
])
def test_a_file_that_is_not_a_complete_record_is_one_line(run_dir, tmp_path, edit, expected):
    data = json.loads((run_dir / run_folder.RESULT).read_text())
    edit(data)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / run_folder.RESULT).write_text(json.dumps(data))
    with pytest.raises(MerbenchError, match="result.json: ") as info:
        read_result(bad)
    assert expected in str(info.value)
    line = one_line_error(cli("table", bad))
    assert str(bad / run_folder.RESULT) in line and expected in line


def test_readers_get_the_record(run_dir):
    from merbench.aggregate import collect, group_results
    from merbench.run import load_run

    (record,) = collect([run_dir])
    assert isinstance(record, Result)
    assert group_results([record])[0].dataset.name == "synthetic"
    assert load_run(run_dir).result == record
