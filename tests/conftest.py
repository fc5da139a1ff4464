"""Shared fixtures: a tiny synthetic corpus and the shared-data location."""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from pathlib import Path

# Tests never reach a model hub: huggingface_hub reads this at import (a hub id then resolves
# from HuggingFace's cache alone, as on an offline machine).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from merbench.registry import DATASETS

SHARED = Path(__file__).resolve().parents[2] / "shared"
IEMOCAP_PKL = SHARED / "data" / "iemocap" / "iemocap.pkl"
MOSI_ROOT = SHARED / "data" / "mosi"  # the bc-LSTM release, read in place (never copied)

torch.set_num_threads(1)

# CI sets MERBENCH_REQUIRE_ALL=1 (.ci/run): a test whose data or tool is absent then fails
# instead of skipping, so a missing ../shared or a failed install cannot pass in silence. On a
# user's clone, without the variable, the same tests skip with their reason.
REQUIRE_ALL = os.environ.get("MERBENCH_REQUIRE_ALL", "") not in ("", "0")


def require(present: bool, reason: str) -> None:
    """Inside a test: skip with ``reason`` when what it needs is absent, or fail under MERBENCH_REQUIRE_ALL."""
    if present:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{reason}; MERBENCH_REQUIRE_ALL is set, so this test must run", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(present, reason): skip when absent, fail under MERBENCH_REQUIRE_ALL")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        require(*mark.args)


def needs(present: bool, reason: str):
    """The decorator form of ``require`` (a plain skipif on a user's clone, so that the skip
    summary names the test)."""
    if REQUIRE_ALL:
        return pytest.mark.needs(bool(present), reason)
    return pytest.mark.skipif(not present, reason=reason)


@pytest.fixture(autouse=True)
def last_pt_every_epoch(monkeypatch):
    """Tests kill and resume runs of millisecond epochs: write last.pt after every epoch
    (test_train.py checks the throttle itself)."""
    import merbench.train

    monkeypatch.setattr(merbench.train, "LAST_EVERY_S", 0.0)


@pytest.fixture
def frozen_source(monkeypatch):
    """Run folder names hash merbench's source; freeze it so an edit elsewhere mid-test cannot rename them."""
    from merbench import run_folder

    code = run_folder.source_hash()
    monkeypatch.setattr(run_folder, "source_hash", lambda: code)


@pytest.fixture(scope="session")
def tiny_corpus():
    return DATASETS.get("synthetic")(n_dialogues=6, n_utterances=36, audio_dim=6, text_dim=8,
                                     vision_dim=5, seed=1)


@pytest.fixture(scope="session")
def tiny_frames_corpus():
    return DATASETS.get("synthetic")(n_dialogues=6, n_utterances=36, audio_dim=6, text_dim=8,
                                     vision_dim=5, frames=True, min_frames=2, max_frames=5, seed=1)


def needs_shared_iemocap():
    return needs(IEMOCAP_PKL.exists(), f"{IEMOCAP_PKL} is absent (../shared is not checked out)")


def needs_shared_mosi():
    return needs((MOSI_ROOT / "transcripts.csv").exists(), f"{MOSI_ROOT} is absent (../shared is not checked out)")


def needs_tool(name: str, install: str):
    """A program on PATH that .ci/run installs (espeak-ng, pdflatex)."""
    return needs(shutil.which(name) is not None, f"{name} is not installed ({install})")


def has_distribution(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True
