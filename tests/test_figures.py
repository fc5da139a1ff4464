"""Figures: every file written is a valid PNG, PDF or SVG (by its suffix), atomically; the CLI's figure options."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from merbench.aggregate import collect, group_results
from merbench.errors import MerbenchError
from merbench.figures import (PNG_SIGNATURE, confusion_plot, group_confusions, heads_plot, normalise_rows,
                              robustness_plot)
from merbench.recipe import validate
from merbench.train import train

from helpers import cli, one_line_error, tiny_recipe

LABELS = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of mlp_tiny and one late_mlp on the same synthetic data, plus a regression run."""
    tmp = tmp_path_factory.mktemp("figs")
    for model, seed in (("mlp_tiny", 0), ("mlp_tiny", 1), ("late_mlp", 0)):
        train(validate(tiny_recipe(model, max_epochs=2, seed=seed), "test"), tmp / "cls", progress=False)
    recipe = tiny_recipe("mlp_tiny", max_epochs=2)
    recipe["dataset"]["name"] = "synthetic_mosei"
    train(validate(recipe, "test"), tmp / "reg", progress=False)
    return tmp


def assert_png(path, min_size=100):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_size and image.shape[1] >= min_size
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")]  # no temp file left


def test_normalise_rows():
    norm = normalise_rows(np.array([[3, 1], [0, 0]]))
    assert norm.tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_confusion_plot_single_and_grid(tmp_path):
    conf = np.arange(36).reshape(6, 6)
    assert_png(confusion_plot([("one", conf, LABELS)], tmp_path / "one.png"))
    panels = [(f"run {i}", conf + i, LABELS) for i in range(4)]
    grid = confusion_plot(panels, tmp_path / "sub" / "grid.png")  # folders are created
    assert_png(grid)
    assert imread(grid).shape[1] > imread(tmp_path / "one.png").shape[1]  # 3 panels across
    with pytest.raises(MerbenchError, match="does not match 6 classes"):
        confusion_plot([("bad", np.zeros((5, 5)), LABELS)], tmp_path / "bad.png")


def test_heads_plot(tmp_path):
    rows = [(4, {"iemocap": (66.0, 0.5), "meld": (58.0, 0.3)}), (1, {"iemocap": (64.0, 0.9)}),
            (2, {"iemocap": (65.0, 0.4), "meld": (57.5, 0.2)})]
    assert_png(heads_plot(rows, tmp_path / "heads.png", title="HFF heads"))
    with pytest.raises(MerbenchError):
        heads_plot([], tmp_path / "none.png")


def test_robustness_plot(tmp_path):
    curves = [("mlp / text", [0, 0.5, 1], [60.0, 50.0, 30.0], 20.0), ("mlp / audio", [0, 0.5, 1], [60.0, 59.0, 55.0], None)]
    assert_png(robustness_plot(curves, tmp_path / "rob.png"))


@pytest.mark.parametrize("suffix, signature", [(".pdf", b"%PDF-"), (".svg", b"<?xml"), (".PNG", PNG_SIGNATURE)])
def test_the_suffix_sets_the_format(tmp_path, suffix, signature):
    rows = [(1, {"x": (1.0, 0.0)}), (2, {"x": (2.0, 0.5)})]
    first = heads_plot(rows, tmp_path / f"a{suffix}").read_bytes()
    assert first.startswith(signature)
    if suffix == ".svg":
        assert b"<svg" in first
    # No timestamp in the file: the same numbers give the same bytes.
    assert heads_plot(rows, tmp_path / f"b{suffix}").read_bytes() == first


def test_other_suffixes_are_refused(tmp_path):
    with pytest.raises(MerbenchError, match=r"ending in .png, .pdf, .svg"):
        heads_plot([(1, {"x": (1.0, 0.0)})], tmp_path / "heads.jpg")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    heads_plot([(1, {"x": (1.0, 0.0)})], path)
    before = path.read_bytes()
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError):
        heads_plot([(2, {"x": (1.0, 0.0)})], path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_group_confusion_is_the_mean_over_seeds(runs):
    groups = group_results(collect([runs / "cls"]))
    (mlp,) = [g for g in groups if g.model == "mlp_tiny"]
    (title, matrix, names), = group_confusions([mlp], ["mlp_tiny"])
    seeds = [np.array(r["metrics"]["test"]["confusion"]) for r in mlp.results]
    assert np.allclose(matrix, (seeds[0] + seeds[1]) / 2) and names == LABELS and "mean of 2 runs" in title


def test_cli_figure_confusion(runs, tmp_path):
    run = next(p for p in (runs / "cls").iterdir() if "mlp_tiny-seed0" in p.name)
    out = cli("figure", "confusion", run, "--out", tmp_path / "c.png")
    assert out.exit_code == 0, out.output
    assert_png(tmp_path / "c.png")
    assert "different recipes" in one_line_error(cli("figure", "confusion", runs / "cls", "--out", tmp_path / "x.png"))
    assert "--out x.jpg: give a path ending in .png, .pdf, .svg" in one_line_error(cli("figure", "confusion", run, "--out", "x.jpg"))
    assert "--split dev: expected one of" in one_line_error(cli("figure", "confusion", run, "--out", tmp_path / "y.png",
                                                                "--split", "dev"))
    assert "need a classification dataset" in one_line_error(cli("figure", "confusion", runs / "reg", "--out",
                                                                 tmp_path / "r.png"))


def test_cli_table_figure(runs, tmp_path):
    out = cli("table", runs / "cls", "--format", "csv", "--figure", tmp_path / "t.png")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0].startswith("Model,")  # the figure's path goes to stderr
    assert_png(tmp_path / "t.png")
    assert "need a classification dataset" in one_line_error(cli("table", runs / "reg", "--figure", tmp_path / "r.png"))
    assert "--figure" in one_line_error(cli("table", runs / "cls", "--figure", tmp_path / "t.gif"))
    out = cli("table", runs / "cls", "--figure", tmp_path / "t.pdf")
    assert out.exit_code == 0 and (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF-")
    assert "--significance: needs a classification table" in one_line_error(cli("table", runs / "reg", "--significance"))
