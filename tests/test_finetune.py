"""merbench finetune: fine-tuned (context-aware, cross-fitted) text encoders, on a tiny BERT.

The encoder is a randomly initialised 2-layer BERT saved with ``save_pretrained``; corpora are
a few generated dialogues, and a tiny COSMIC-format ``iemocap.pkl`` for the LOSO check.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from merbench.cli.app import app
from merbench.data.readers import read_corpus
from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.errors import MerbenchError
from merbench.features import finetune as ft
from merbench.features.build import build_corpus
from merbench.features.cache import feature_dir
from merbench.features.text import BertText, TextInput, text_inputs, tokenize

WORDS = "i am so happy sad today this is terrible the cat sat on mat a dog ran m f".split()
TEXTS = ["i am so happy", "this is terrible", "the cat sat on the mat", "a dog ran", "sad today",
         "i am sad", "the dog is happy", "so terrible today"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("bert")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", *WORDS]) + "\n")
    folder = root / "tiny"
    torch.manual_seed(0)
    BertTokenizer(str(vocab)).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(WORDS) + 6, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37)).save_pretrained(folder)
    return folder


def dialogue(name: str, split: str, n: int, offset: int = 0) -> RawDialogue:
    utterances = [RawUtterance(f"{name}#{i}", "MF"[i % 2], (i + offset) % 3,
                               text=TEXTS[(i + offset) % len(TEXTS)]) for i in range(n)]
    return RawDialogue(name, split, utterances, session=f"S{offset}")


def corpus(splits: tuple[str, ...] = ("train", "train", "train", "valid", "test")) -> RawCorpus:
    dialogues = [dialogue(f"d{k}", s, 4, k) for k, s in enumerate(splits)]
    return RawCorpus("toy", "classification", ["a", "b", "c"], dialogues, "standard")


TWO_STEPS = ft.FinetuneOptions(epochs=1, batch_size=6, lr=1e-3, max_length=32)  # 12 train utterances


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder), local_files_only=True).state_dict()


# --- the encoder's input -----------------------------------------------------------------------


def test_context_is_previous_utterances_of_the_same_dialogue_only():
    d = dialogue("x", "train", 5)
    inputs = text_inputs(d, 2)
    tagged = [f"{u.speaker}: {u.text}" for u in d.utterances]
    assert inputs[0] == TextInput((), tagged[0])
    assert inputs[1] == TextInput((tagged[0],), tagged[1])
    assert inputs[4] == TextInput((tagged[2], tagged[3]), tagged[4])  # never a later one
    assert [x.text for x in text_inputs(d, 0)] == [u.text for u in d.utterances]  # bare, as frozen
    assert all(x.context == () for x in text_inputs(d, 0))
    # The first utterance of a dialogue has no context, whatever precedes it in the corpus.
    other = dialogue("y", "train", 2, offset=3)
    assert text_inputs(other, 3)[0].context == ()
    with pytest.raises(MerbenchError, match="context -1"):
        text_inputs(d, -1)


def test_tokenized_context_is_the_first_segment_and_loses_its_oldest_tokens_first(bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(bert))
    x = TextInput(("m : i am so happy", "f : this is terrible"), "m : a dog ran")
    row = tokenize(tok, [x], 64, context=2)[0]
    words = tok.convert_ids_to_tokens(row["input_ids"])
    assert words == ["[CLS]", "m", ":", "i", "am", "so", "happy", "f", ":", "this", "is", "terrible",
                     "[SEP]", "m", ":", "a", "dog", "ran", "[SEP]"]
    assert row["token_type_ids"] == [0] * 13 + [1] * 6  # the utterance is the second segment
    short = tok.convert_ids_to_tokens(tokenize(tok, [x], 12, context=2)[0]["input_ids"])
    assert short == ["[CLS]", ":", "this", "is", "terrible", "[SEP]", "m", ":", "a", "dog", "ran", "[SEP]"]


# --- fine-tuning ---------------------------------------------------------------------------------


def test_finetune_two_steps_reloads_changes_outputs_and_is_reproducible(bert, tmp_path):
    raw = corpus()
    a = ft.finetune(raw, bert, tmp_path / "a", TWO_STEPS, device="cpu", progress=False)
    b = ft.finetune(raw, bert, tmp_path / "b", TWO_STEPS, device="cpu", progress=False)
    record = json.loads((a / ft.RECORD).read_text())
    assert record["history"][0]["epoch"] == 1 and record["best_epoch"] == 1
    assert record["train_utterances"] == 12 and record["train_dialogues"] == ["d0", "d1", "d2"]
    assert record["data_fingerprint"] == raw.fingerprint() and record["options"]["seed"] == 0
    assert "git_commit" in record["provenance"] and "packages" in record["provenance"]
    assert not (a / "checkpoints").exists() and (a / ft.HEAD).is_file()
    base, tuned, again = weights(bert), weights(a), weights(b)
    assert any(not torch.equal(base[k], tuned[k]) for k in base)
    assert all(torch.equal(tuned[k], again[k]) for k in tuned)  # same seed, same weights
    other = ft.finetune(raw, bert, tmp_path / "c", ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "seed": 1}),
                        device="cpu", progress=False)
    assert any(not torch.equal(tuned[k], weights(other)[k]) for k in tuned)
    # Extraction from the written folder: other features than the frozen encoder's.
    utts = [u for d in raw.dialogues for u in d.utterances]
    frozen = np.stack(BertText(model=str(bert), device="cpu").extract(utts))
    fine = np.stack(BertText(model=str(a), device="cpu").extract(utts))
    assert frozen.shape == fine.shape == (20, 64) and not np.allclose(frozen, fine)


def test_finished_folder_is_found_and_interrupted_one_resumes_to_the_same_weights(bert, tmp_path, monkeypatch):
    raw = corpus()
    options = ft.FinetuneOptions(epochs=2, batch_size=3, lr=1e-3, max_length=32)  # 4 steps an epoch
    whole = ft.finetune(raw, bert, tmp_path / "whole", options, device="cpu", progress=False)
    monkeypatch.setattr(ft, "CHECKPOINT_SECONDS", -1.0)  # a checkpoint after every step
    calls = {"n": 0}
    real_loss = ft._loss

    def crash_at_step_6(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(ft, "_loss", crash_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        ft.finetune(raw, bert, tmp_path / "resumed", options, device="cpu", progress=False)
    folder = tmp_path / "resumed" / whole.name
    assert (folder / ft.LAST).is_file() and not ft.is_finished(folder)
    assert torch.load(folder / ft.LAST, weights_only=False)["step"] == 1  # epoch 2, step 1 done
    monkeypatch.setattr(ft, "_loss", real_loss)
    ft.finetune(raw, bert, tmp_path / "resumed", options, device="cpu", progress=False)
    w1, w2 = weights(whole), weights(folder)
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6) for k in w1)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished folder must not be fine-tuned again")

    monkeypatch.setattr(ft, "_finetune_one", refuse)
    assert ft.finetune(raw, bert, tmp_path / "whole", options, device="cpu", progress=False) == whole


def test_regression_corpus_gets_a_regression_head(bert, tmp_path):
    raw = corpus()
    raw.task, raw.label_names = "regression", []
    for d in raw.dialogues:
        for i, u in enumerate(d.utterances):
            u.label, u.value = -1, float(i) - 1.5
    folder = ft.finetune(raw, bert, tmp_path, TWO_STEPS, device="cpu", progress=False)
    record = json.loads((folder / ft.RECORD).read_text())
    assert record["selection_metric"] == "mae"
    assert torch.load(folder / ft.HEAD)["weight"].shape == (1, 64)


# --- no test utterance reaches a fine-tuning batch ------------------------------------------------


def write_cosmic_pickle(path: Path) -> None:
    """Two dialogues per session, six utterances each, in the COSMIC list-of-six layout."""
    speakers, labels, texts = {}, {}, {}
    for s in range(1, 6):
        for k in range(2):
            d = f"Ses0{s}F_impro0{k + 1}"
            speakers[d] = ["M", "F"] * 3
            labels[d] = [(s + k + i) % 6 for i in range(6)]
            texts[d] = [TEXTS[(s + k + i) % len(TEXTS)] for i in range(6)]
    ids = sorted(labels)
    test = [d for d in ids if d.startswith("Ses05")]
    valid = [ids[0]]
    train = [d for d in ids if d not in test and d not in valid]
    path.write_bytes(pickle.dumps([speakers, labels, texts, train, test, valid]))


@pytest.mark.parametrize("crossfit", [0, 2])
def test_loso_fold_never_puts_test_utterances_in_a_finetuning_batch(bert, tmp_path, monkeypatch, crossfit):
    pkl = tmp_path / "iemocap.pkl"
    write_cosmic_pickle(pkl)
    raw = read_corpus("iemocap", pkl, protocol="loso", fold=2, modalities=("text",))
    test_ids = {u.id for d in raw.dialogues if d.split == "test" for u in d.utterances}
    train_ids = {u.id for d in raw.dialogues if d.split == "train" for u in d.utterances}
    assert test_ids and all(i.startswith("Ses02") for i in test_ids)
    seen: list[set[str]] = []
    real = ft.training_batches

    def spy(items, *args):
        batches = real(items, *args)
        seen.append({x.id for b in batches for x in b})
        return batches

    monkeypatch.setattr(ft, "training_batches", spy)
    options = ft.FinetuneOptions(epochs=1, batch_size=8, lr=1e-3, max_length=32, crossfit=crossfit)
    folder = ft.finetune(raw, bert, tmp_path / "models", options, device="cpu", progress=False)
    batched = set().union(*seen)
    assert batched and not batched & test_ids
    assert batched == train_ids  # valid dialogues select the epoch, they are not trained on
    if crossfit:
        record = ft.read_record(folder)
        assert record is not None and sorted(sum(record.folds, [])) == sorted(
            {d.id for d in raw.dialogues if d.split == "train"})
        for name, held_out in zip(record.fold_names(), record.folds):
            trained = json.loads((folder / name / ft.RECORD).read_text())["train_dialogues"]
            assert not set(trained) & set(held_out) and trained


# --- extraction from fine-tuned encoders ---------------------------------------------------------


def test_cache_keys_differ_between_frozen_and_finetuned_encoders(bert, tmp_path):
    raw = corpus()
    tuned = ft.finetune(raw, bert, tmp_path / "m", TWO_STEPS, device="cpu", progress=False)
    ctx = ft.finetune(raw, bert, tmp_path / "m", ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "context": 2}),
                      device="cpu", progress=False)
    dirs = {feature_dir(tmp_path, "toy", raw.fingerprint(), BertText(model=str(m), device="cpu"))
            for m in (bert, tuned, ctx)}
    assert len(dirs) == 3
    assert BertText(model=str(ctx)).context == 2 and BertText(model=str(ctx)).max_length == 32
    assert "finetuned" not in BertText(model=str(bert)).config()  # frozen keys are unchanged


def test_context_encoder_extracts_with_its_context_through_build_corpus(bert, tmp_path):
    raw = corpus()
    ctx = ft.finetune(raw, bert, tmp_path / "m", ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "context": 2}),
                      device="cpu", progress=False)
    built = build_corpus(raw, {"text": {"name": "bert", "model": str(ctx)}}, cache_root=tmp_path / "c",
                         device="cpu", progress=False)
    got = np.stack([x for d in built.dialogues for x in d.features["text"]])
    # The same encoder, fed each utterance with its two previous turns by hand.
    from transformers import AutoModel, AutoTokenizer

    from merbench.features.text import pad, pool

    tok, net = AutoTokenizer.from_pretrained(str(ctx)), AutoModel.from_pretrained(str(ctx)).eval()
    inputs = [x for d in raw.dialogues for x in text_inputs(d, 2)]
    batch = pad(tokenize(tok, inputs, 32, 2), 0)
    with torch.no_grad():
        want = pool(net(**batch).last_hidden_state, batch["attention_mask"]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(MerbenchError, match="extract through build_corpus"):
        BertText(model=str(ctx)).extract(raw.dialogues[0].utterances)


@pytest.mark.parametrize("variant", ["full", "mean"])
def test_crossfit_training_utterances_come_from_the_encoder_that_did_not_see_them(bert, tmp_path, variant):
    raw = corpus(("train",) * 4 + ("valid", "test"))
    options = ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "crossfit": 2})
    folder = ft.finetune(raw, bert, tmp_path / "m", options, device="cpu", progress=False)
    record = ft.read_record(folder)
    built = build_corpus(raw, {"text": {"name": "bert", "model": str(folder), "crossfit_eval": variant}},
                         cache_root=tmp_path / "c", device="cpu", progress=False)
    by_id = {d.id: np.stack(d.features["text"]) for d in built.dialogues}
    single = {n: BertText(model=str(folder / n), device="cpu") for n in record.encoder_names()}
    for d in raw.dialogues:
        if d.split == "train":
            name = record.fold_of_dialogue()[d.id]
            want = np.stack(single[name].extract(d.utterances))
        elif variant == "full":
            want = np.stack(single["full"].extract(d.utterances))
        else:
            want = np.mean([np.stack(single[n].extract(d.utterances)) for n in record.fold_names()], 0)
        np.testing.assert_allclose(by_id[d.id], want, atol=1e-5)


def test_crossfit_mean_skips_the_full_encoder_until_asked(bert, tmp_path, monkeypatch):
    """``crossfit_eval: mean`` never reads the encoder on all training dialogues, so a recipe
    with it fine-tunes K encoders, not K + 1; asking for ``full`` later adds only that one."""
    raw = corpus(("train",) * 4 + ("valid", "test"))
    options = ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "crossfit": 2})
    spec = {"name": "bert", "model": str(bert), "finetune": {**TWO_STEPS.__dict__, "crossfit": 2}}
    build_corpus(raw, {"text": {**spec, "crossfit_eval": "mean"}}, cache_root=tmp_path, device="cpu", progress=False)
    (folder,) = [p for p in (tmp_path / "finetuned").iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["fold-1", "fold-2"]
    assert ft.read_record(folder).encoder_names() == ["fold-1", "fold-2"]
    with pytest.raises(MerbenchError, match="without the encoder on all training dialogues"):
        BertText(model=str(folder), crossfit_eval="full")
    calls = []
    real = ft._finetune_one
    monkeypatch.setattr(ft, "_finetune_one", lambda *a, **k: (calls.append(Path(a[3]).name), real(*a, **k))[1])
    assert ft.finetune(raw, bert, tmp_path / "finetuned", options, device="cpu", progress=False, full=False) == folder
    assert calls == []  # finished for mean: nothing runs
    weights = {n: (folder / n / "model.safetensors").read_bytes() for n in ("fold-1", "fold-2")}
    build_corpus(raw, {"text": {**spec, "crossfit_eval": "full"}}, cache_root=tmp_path, device="cpu", progress=False)
    assert calls[-1] == "full" and ft.is_finished(folder / "full")
    assert all((folder / n / "model.safetensors").read_bytes() == w for n, w in weights.items())  # kept, not retrained
    assert ft.read_record(folder).encoder_names() == ["fold-1", "fold-2", "full"]


def test_recipe_finetune_key_fine_tunes_once_then_reuses(bert, tmp_path, monkeypatch):
    raw = corpus()
    spec = {"text": {"name": "bert", "model": str(bert), "finetune": {"epochs": 1, "batch_size": 6,
                                                                       "lr": 0.001, "max_length": 32}}}
    first = build_corpus(raw, spec, cache_root=tmp_path, device="cpu", progress=False)
    made = list((tmp_path / "finetuned").iterdir())
    assert len([p for p in made if p.is_dir()]) == 1 and ft.is_finished(next(p for p in made if p.is_dir()))
    monkeypatch.setattr(ft, "_finetune_one", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    second = build_corpus(raw, spec, cache_root=tmp_path, device="cpu", progress=False)
    assert first.info["features"]["text"]["config_hash"] == second.info["features"]["text"]["config_hash"]
    with pytest.raises(MerbenchError, match=r"dataset.features.text.finetune.epoch: unknown argument.*epochs"):
        build_corpus(raw, {"text": {"name": "bert", "model": str(bert), "finetune": {"epoch": 1}}},
                     cache_root=tmp_path, device="cpu", progress=False)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_one_line_error(bert, tmp_path):
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((bert / "config.json").read_text())
    with pytest.raises(MerbenchError, match="no weights"):
        ft.finetune(corpus(), no_weights, tmp_path, TWO_STEPS, progress=False)
    with pytest.raises(MerbenchError, match="has no valid split"):
        ft.finetune(corpus(("train", "train", "test")), bert, tmp_path, TWO_STEPS, progress=False)
    with pytest.raises(MerbenchError, match="crossfit 1"):
        ft.finetune(corpus(), bert, tmp_path, ft.FinetuneOptions(crossfit=1), progress=False)
    runner = CliRunner()
    pkl = tmp_path / "iemocap.pkl"
    write_cosmic_pickle(pkl)
    for args, expected in [(["--context", "-1"], "error: --context -1: expected 0 or more"),
                           (["--text-model", str(no_weights)], "error: --text-model"),
                           (["--epochs", "0"], "error: --epochs 0: expected at least 1"),
                           (["--crossfit", "2", "--crossfit-eval", "avg"], "error: --crossfit-eval avg: expected full or mean")]:
        result = runner.invoke(app, ["finetune", "--dataset", "iemocap", "--root", str(pkl), *args])
        assert result.exit_code == 2, result.output
        lines = [x for x in result.output.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and lines[0].startswith(expected) and "Traceback" not in result.output


def test_extract_cli_reads_a_finetuned_folder_with_its_context(bert, tmp_path):
    pkl = tmp_path / "iemocap.pkl"
    write_cosmic_pickle(pkl)
    raw = read_corpus("iemocap", pkl, modalities=("text",))
    folder = ft.finetune(raw, bert, tmp_path / "m", ft.FinetuneOptions(**{**TWO_STEPS.__dict__, "context": 1}),
                         device="cpu", progress=False)
    result = CliRunner().invoke(app, ["extract", "--dataset", "iemocap", "--root", str(pkl), "--text-model",
                                      str(folder), "--cache", str(tmp_path / "c"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "text: 64-d vectors, extracted by bert" in result.output
    manifest = json.loads(next((tmp_path / "c").rglob("manifest.json")).read_text())
    assert manifest["config"]["finetuned"]["context"] == 1 and manifest["count"] == 60


def test_a_request_while_another_process_fine_tunes_waits_and_finds_it_finished(bert, tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    from merbench.features._common import model_dir_hash

    raw = corpus()
    done = ft.finetune(raw, bert, tmp_path / "done", TWO_STEPS, device="cpu", progress=False)
    folder = tmp_path / "m" / ft.folder_name(raw, model_dir_hash(bert), TWO_STEPS)
    # Another process holds the folder's lock, then "finishes" it (copies a finished folder in).
    holder = subprocess.Popen([sys.executable, "-c", (
        "import shutil, sys, time\nfrom merbench.lock import hold\n"
        f"with hold({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(2)\n"
        f"    shutil.copytree({str(done)!r}, {str(folder)!r})\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    monkeypatch.setattr(ft, "_finetune_one", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    started = time.perf_counter()
    assert ft.finetune(raw, bert, tmp_path / "m", TWO_STEPS, device="cpu", progress=False) == folder
    assert time.perf_counter() - started > 0.5 and holder.wait() == 0
