"""The iemocap / mosei / meld / mosi registry entries: a release -> a Corpus -> a trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

from merbench.errors import MerbenchError
from merbench.recipe import load_recipe
from merbench.registry import DATASETS
from merbench.results import read_result
from merbench.train import train

from conftest import IEMOCAP_PKL, MOSI_ROOT, needs_shared_iemocap, needs_shared_mosi
from fixtures import write_iemocap_dialoguernn, write_meld_dialoguernn, write_mmsa, write_mosi_bclstm
from helpers import cli, one_line_error, write_recipe

BASE_MOSI = Path(__file__).resolve().parents[1] / "recipes" / "base" / "mosi.yaml"


def test_shipped_features_train_end_to_end(tmp_path):
    pkl = tmp_path / "IEMOCAP_features.pkl"
    write_iemocap_dialoguernn(pkl)
    recipe = {"dataset": {"name": "iemocap", "root": str(pkl), "features": {}},
              "model": {"name": "mlp_tiny"}, "train": {"max_epochs": 2, "threads": 1}}
    run_dir = train(load_recipe(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "runs", progress=False)
    res = read_result(run_dir)
    assert res["status"] == "ok" and res["dataset"]["name"] == "iemocap"
    assert res["dataset"]["dims"] == {"audio": 100, "text": 100, "vision": 512}
    assert res["dataset"]["protocol"] == "session5-test"
    assert res["dataset"]["info"]["features"]["text"]["source"] == "shipped"
    # The fixture is smaller than the release: the count warning is kept in the results file.
    assert any("7433" in w or "7,433" in w for w in res["dataset"]["info"]["warnings"])


def test_mosei_is_regression_and_meld_has_seven_emotions(tmp_path):
    write_mmsa(tmp_path / "unaligned_50.pkl")
    mosei = DATASETS.get("mosei")(root=str(tmp_path / "unaligned_50.pkl"))
    assert mosei.task == "regression" and set(mosei.modalities) == {"audio", "text", "vision"}
    pkl = tmp_path / "MELD_features_raw.pkl"
    write_meld_dialoguernn(pkl)
    meld = DATASETS.get("meld")(root=str(pkl))
    assert meld.task == "classification" and len(meld.label_names) == 7


def test_root_from_the_environment_and_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MERBENCH_IEMOCAP_ROOT", raising=False)
    with pytest.raises(MerbenchError, match=r"dataset.root: no iemocap location given; .*MERBENCH_IEMOCAP_ROOT"):
        DATASETS.get("iemocap")()
    with pytest.raises(MerbenchError, match=r"dataset.root: .*nowhere does not exist"):
        DATASETS.get("iemocap")(root=str(tmp_path / "nowhere"))
    pkl = tmp_path / "IEMOCAP_features.pkl"
    write_iemocap_dialoguernn(pkl)
    monkeypatch.setenv("MERBENCH_IEMOCAP_ROOT", str(pkl))
    assert DATASETS.get("iemocap")(features={}).name == "iemocap"
    with pytest.raises(MerbenchError, match=r"features.txt: unknown modality"):
        DATASETS.get("iemocap")(features={"txt": "minilm"})


def test_extract_cli_errors(tmp_path):
    assert "does not exist" in one_line_error(cli("extract", "--dataset", "iemocap", "--root", tmp_path / "x", "--text", "minilm"))
    assert "--audio-model given without --audio" in one_line_error(
        cli("extract", "--dataset", "iemocap", "--root", tmp_path, "--audio-model", tmp_path))
    # --text-model alone implies --text bert (a fine-tuned folder works directly): no option error.
    assert "no iemocap format found" in one_line_error(
        cli("extract", "--dataset", "iemocap", "--root", tmp_path, "--text-model", tmp_path))
    assert "unknown dataset 'iemocop'" in one_line_error(
        cli("extract", "--dataset", "iemocop", "--root", tmp_path, "--text", "minilm"))


@pytest.mark.shared_data
@needs_shared_iemocap()
def test_shared_transcripts_extract_with_minilm_and_cache(tmp_path):
    args = ["extract", "--dataset", "iemocap", "--root", IEMOCAP_PKL, "--text", "minilm", "--cache", tmp_path, "--quiet"]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "train 5163, valid 647, test 1623" in first.output and "768-d vectors" in first.output
    corpus = DATASETS.get("iemocap")(root=str(IEMOCAP_PKL), features={"text": "minilm"}, cache=str(tmp_path))
    assert corpus.modalities == ["text"] and corpus.dims == {"text": 768}
    assert corpus.class_counts() == {"happy": 648, "sad": 1084, "neutral": 1708, "angry": 1103,
                                     "excited": 1041, "frustrated": 1849}


def test_mosi_task_follows_the_format_through_training_and_tables(tmp_path):
    """The bc-LSTM release trains as binary classification, MMSA's pickle (base recipe plus the
    documented overrides) as regression; `merbench table` gives each task its own table."""
    write_mosi_bclstm(tmp_path / "bclstm")
    write_mmsa(tmp_path / "mmsa" / "unaligned_50.pkl", audio_dim=5, vision_dim=20)
    run_dirs = []
    for root, overrides in ((tmp_path / "bclstm", {}), (tmp_path / "mmsa", {"labels": "sentiment", "protocol": "standard"})):
        recipe = {"extends": str(BASE_MOSI), "dataset": {"root": str(root), **overrides},
                  "model": {"name": "mlp_tiny"}, "train": {"max_epochs": 2, "threads": 1}}
        run_dirs.append(train(load_recipe(write_recipe(tmp_path / f"{root.name}.yaml", recipe)), tmp_path / "runs",
                              progress=False))
    bclstm, mmsa = (read_result(d) for d in run_dirs)
    assert bclstm["dataset"]["task"] == "classification" and bclstm["dataset"]["protocol"] == "unseen-valid"
    assert bclstm["dataset"]["dims"] == {"audio": 73, "text": 100, "vision": 100}
    assert {"acc", "wf1", "f1_positive"} <= set(bclstm["metrics"]["test"])
    assert mmsa["dataset"]["task"] == "regression" and mmsa["dataset"]["protocol"] == "standard"
    assert {"acc2_has0", "acc7", "mae", "corr"} <= set(mmsa["metrics"]["test"])
    result = cli("table", *run_dirs)
    assert result.exit_code == 0, result.output
    assert "mosi (test, layout iemocap" in result.output and "mosi (test, layout mosei" in result.output


def test_mosi_transcripts_serve_minilm_and_finetune(tmp_path):
    root = tmp_path / "data"
    write_mosi_bclstm(root)
    corpus = DATASETS.get("mosi")(root=str(root), features={"text": "minilm"}, cache=str(tmp_path / "cache"))
    assert corpus.dims == {"audio": 73, "text": 768, "vision": 100}
    assert corpus.info["features"]["text"]["source"] == "extracted"
    result = cli("finetune", "--dataset", "mosi", "--root", root, "--epochs", "1", "--max-length", "16",
                 "--threads", "1", "--out", tmp_path / "models", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "models").glob("mosi-unseen-valid-*"))) == 1


@pytest.mark.shared_data
@needs_shared_mosi()
def test_shared_mosi_release_is_a_corpus(monkeypatch):
    monkeypatch.setenv("MERBENCH_MOSI_ROOT", str(MOSI_ROOT))
    corpus = DATASETS.get("mosi")()
    assert corpus.task == "classification" and corpus.dims == {"audio": 73, "text": 100, "vision": 100}
    assert corpus.counts() == {"train": 1447, "valid": 295, "test": 457}
    assert corpus.class_counts("test") == {"negative": 174, "positive": 283}
