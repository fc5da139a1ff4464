"""Shared fixtures: a tiny synthetic corpus and the shared-data location."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from merbench.registry import DATASETS

SHARED = Path(__file__).resolve().parents[2] / "shared"
IEMOCAP_PKL = SHARED / "data" / "iemocap" / "iemocap.pkl"
MOSI_ROOT = SHARED / "data" / "mosi"  # the bc-LSTM release, read in place (never copied)

torch.set_num_threads(1)


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
    return pytest.mark.skipif(not IEMOCAP_PKL.exists(),
                              reason=f"{IEMOCAP_PKL} is absent (../shared is not checked out)")


def needs_shared_mosi():
    return pytest.mark.skipif(not (MOSI_ROOT / "transcripts.csv").exists(),
                              reason=f"{MOSI_ROOT} is absent (../shared is not checked out)")
