"""The Python API of the feature commands: ``merbench.extract`` and ``merbench.finetune``
return what ``merbench extract`` / ``merbench finetune`` print, and check their options at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import merbench
from merbench.errors import MerbenchError
from merbench.features.finetuned import read_record

from fixtures import write_iemocap_raw
from helpers import cli
from test_finetune import bert, write_cosmic_pickle  # noqa: F401 (bert: the tiny BERT fixture)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    write_iemocap_raw(root)
    return root


def test_extract_returns_the_cache_folder_and_counts_the_command_prints(release, tmp_path):
    cache = tmp_path / "cache"
    done = merbench.extract("iemocap", release, audio="mfcc", options={"audio.n_mfcc": 13}, cache=cache,
                            progress=False)
    assert isinstance(done, merbench.Extraction)
    audio = done.features["audio"]
    assert set(done.features) == {"audio"} and audio.source == "extracted" and audio.extractor == "mfcc"
    manifest = json.loads(audio.manifest.read_text())
    assert audio.manifest == audio.folder / "manifest.json" and audio.folder.parent.parent == cache == done.cache
    assert manifest["config_hash"] == audio.config_hash and manifest["dim"] == audio.dim == 13
    assert audio.sequence and manifest["sequence"]
    assert manifest["count"] == done.utterances == sum(done.counts.values()) > 0
    assert done.protocol == "session5-test" and set(done.counts) == {"train", "valid", "test"}
    assert done.extractors == {"audio": {"name": "mfcc", "n_mfcc": 13}}
    assert done.recipe() == {"name": "iemocap", "root": str(release),
                             "features": {"audio": {"name": "mfcc", "n_mfcc": 13}}}
    assert done.seconds > 0

    printed = cli("extract", "--dataset", "iemocap", "--root", release, "--audio", "mfcc", "--option",
                  "audio.n_mfcc=13", "--cache", cache, "--quiet")
    assert printed.exit_code == 0, printed.output
    assert (f"audio: {audio.dim}-d frame sequences, extracted by mfcc (config {audio.config_hash[:12]})"
            in printed.stdout)
    assert f"{done.utterances} utterances in " in printed.stdout
    again = merbench.extract("iemocap", release, audio="mfcc", options={"audio.n_mfcc": 13}, cache=cache,
                             progress=False)
    assert again.features["audio"].folder == audio.folder  # the cache served it


def test_extract_reports_every_bad_option_at_once_before_reading(tmp_path):
    with pytest.raises(MerbenchError) as e:
        merbench.extract("iemocap", tmp_path / "nowhere", audio_model="x", text="minilm",
                         options={"vision.frames": 3, "level": 1, "text.pool": "cls"})
    message = str(e.value)
    assert message == ("--audio-model given without --audio; --option vision.frames: no --vision extractor "
                       "asked for; --option level: expected MODALITY.KEY=VALUE with MODALITY one of audio, "
                       "text, vision, e.g. audio.feature_set=ComParE_2016")


def test_finetune_returns_the_folder_and_its_validation_scores(bert, tmp_path):  # noqa: F811
    pkl = tmp_path / "iemocap.pkl"
    write_cosmic_pickle(pkl)
    settings = dict(text_model=bert, epochs=2, batch_size=6, lr=1e-3, max_length=32, out=tmp_path / "m",
                    device="cpu", progress=False)
    done = merbench.finetune("iemocap", pkl, **settings)
    assert isinstance(done, merbench.FinetuneReport)
    assert done.folder.parent == tmp_path / "m" and read_record(done.folder) is not None
    assert done.record == json.loads((done.folder / "merbench_finetune.json").read_text())
    assert done.kind == "encoder" and done.selection_metric == "wf1" and len(done.history) == 2
    scores = [row["valid_wf1"] for row in done.history]
    assert done.best_valid == max(scores) and done.best_epoch == scores.index(max(scores)) + 1
    assert done.record["options"]["epochs"] == 2 and done.seconds_per_epoch is not None
    again = merbench.finetune("iemocap", pkl, **settings)  # finished: found, not trained again
    assert again.folder == done.folder and again.record == done.record


def test_finetune_reports_every_bad_option_at_once_before_reading(tmp_path):
    with pytest.raises(MerbenchError) as e:
        merbench.finetune("iemocap", tmp_path / "nowhere", context=-1, epochs=0, text="mpnett", crossfit_eval="avg")
    assert str(e.value) == ("--context -1: expected 0 or more previous utterances; --epochs 0: expected at least 1; "
                            "--text mpnett: expected minilm or mpnet (or --text-model DIR); "
                            "--crossfit-eval avg: expected full or mean")


def _doc_features_script() -> str:
    """The feature example of docs/python.md."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "python.md").read_text()
    blocks = [b.split("```")[0] for b in doc.split("```python\n")[1:]]
    (script,) = [b for b in blocks if "# features.py" in b]
    return script


def test_the_docs_features_example_runs(release, bert, tmp_path):  # noqa: F811
    script = _doc_features_script()
    assert script.count('"IEMOCAP_full_release"') == 3 and script.count("epochs=1") == 1
    tiny = (script.replace('"IEMOCAP_full_release"', repr(str(release)))
            .replace("epochs=1", f"epochs=1, text_model={str(bert)!r}, batch_size=6, max_length=32"))
    (tmp_path / "features.py").write_text(tiny)
    env = {**os.environ, "PYTHONPATH": str(Path(merbench.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "features.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert (tmp_path / ".merbench-cache").is_dir() and (tmp_path / "models").is_dir()
