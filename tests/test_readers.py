"""Readers of the real-dataset formats, on tiny copies of each layout written under tmp_path,
plus the real IEMOCAP transcripts pickle from ../shared when it is there."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from merbench.data import _iemocap, _meld
from merbench.data import meld_dialoguernn as meld_dialoguernn_module
from merbench.data._common import carve_validation, fix_mojibake
from merbench.data.readers import FORMATS, detect_format, options_of, read_corpus
from merbench.errors import MerbenchError

from conftest import MOSI_ROOT, needs_shared_iemocap, needs_shared_mosi
from fixtures import (
    IEMOCAP_KEPT, MELD_CLEAN, MELD_ROWS, MOSI_BCLSTM, write_csd, write_iemocap_cosmic, write_iemocap_dialoguernn,
    write_iemocap_raw, write_meld_dialoguernn, write_meld_raw, write_mmsa, write_mosi_bclstm, mosi_bclstm_features,
)


IEMOCAP_PKL = Path(__file__).resolve().parents[2] / "shared" / "data" / "iemocap" / "iemocap.pkl"


def utterances(corpus, split=None):
    return [u for d in corpus.dialogues if split in (None, d.split) for u in d.utterances]


def counts(corpus):
    return {k: v for k, v in corpus.info["counts"].items()}


# --- IEMOCAP raw -----------------------------------------------------------------------------


@pytest.fixture
def iemocap_root(tmp_path):
    write_iemocap_raw(tmp_path / "IEMOCAP_full_release")
    return tmp_path / "IEMOCAP_full_release"


def test_iemocap_raw_reads_labels_speakers_order_and_drops(iemocap_root):
    corpus = read_corpus("iemocap", iemocap_root)
    assert corpus.info["format"] == "iemocap_raw"
    assert corpus.label_names == ["happy", "sad", "neutral", "angry", "excited", "frustrated"]
    assert len(corpus.dialogues) == 10 and counts(corpus)["total"] == 30
    assert corpus.info["dropped"] == {"no agreement": 5, "surprise": 5}
    impro = next(d for d in corpus.dialogues if d.id == "Ses02F_impro01")
    # EmoEvaluation lists them in reverse; order is by start time.
    assert [u.id for u in impro.utterances] == [f"Ses02F_impro01_{s}" for s in ("F000", "M000", "F001", "F002")]
    assert [u.speaker for u in impro.utterances] == ["F", "M", "F", "F"]
    assert [corpus.label_names[u.label] for u in impro.utterances] == ["neutral", "happy", "excited", "frustrated"]
    assert impro.utterances[0].text == "words of Ses02F_impro01_F000."
    assert impro.session == "Ses02"
    assert impro.utterances[0].audio_path.endswith("Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_F000.wav")
    assert impro.utterances[0].video_path is None and impro.utterances[0].video_interval is None
    assert any(s.endswith("EmoEvaluation/Ses02F_impro01.txt") for s in corpus.info["source"])


def test_iemocap_raw_session5_test_and_validation_carve(iemocap_root):
    corpus = read_corpus("iemocap", iemocap_root, protocol="session5-test")
    test = [d for d in corpus.dialogues if d.split == "test"]
    valid = [d for d in corpus.dialogues if d.split == "valid"]
    assert {d.session for d in test} == {"Ses05"} and len(test) == 2
    assert len(valid) == 1 and valid[0].session != "Ses05"
    assert counts(corpus)["test"] == 6 and counts(corpus)["train"] + counts(corpus)["valid"] == 24
    again = read_corpus("iemocap", iemocap_root, protocol="session5-test")
    assert [(d.id, d.split) for d in again.dialogues] == [(d.id, d.split) for d in corpus.dialogues]
    assert corpus.fingerprint() == again.fingerprint()


@pytest.mark.parametrize("fold", [1, 3, 5])
def test_iemocap_raw_leave_one_session_out(iemocap_root, fold):
    corpus = read_corpus("iemocap", iemocap_root, protocol="loso", fold=fold)
    assert corpus.protocol == "loso" and corpus.info["fold"] == fold
    assert {d.session for d in corpus.dialogues if d.split == "test"} == {f"Ses0{fold}"}
    assert all(d.session != f"Ses0{fold}" for d in corpus.dialogues if d.split != "test")
    assert sum(d.split == "valid" for d in corpus.dialogues) == 1


def test_iemocap_four_way_merges_excited_and_drops_frustrated(iemocap_root):
    corpus = read_corpus("iemocap", iemocap_root, labels="iemocap4")
    assert corpus.label_names == ["happy", "sad", "neutral", "angry"]
    assert counts(corpus)["total"] == 5 * sum(IEMOCAP_KEPT["iemocap4"].values())
    assert corpus.info["dropped"]["frustrated"] == 5
    impro = next(d for d in corpus.dialogues if d.id == "Ses01F_impro01")
    assert [corpus.label_names[u.label] for u in impro.utterances] == ["neutral", "happy", "happy"]


def test_iemocap_count_mismatch_is_a_warning_naming_both_numbers(iemocap_root, monkeypatch):
    corpus = read_corpus("iemocap", iemocap_root)
    assert any("7,433" in w and " 30 " in w for w in corpus.info["warnings"])
    assert any("1,623" in w and " 6 " in w for w in corpus.info["warnings"])
    monkeypatch.setitem(_iemocap.SESSION_COUNTS, "iemocap6", {s: 6 for s in range(1, 6)})
    assert read_corpus("iemocap", iemocap_root).info["warnings"] == []


def test_iemocap_raw_without_media_and_missing_media(tmp_path):
    root = tmp_path / "iemocap"
    write_iemocap_raw(root, wav=False)
    corpus = read_corpus("iemocap", root, modalities=["text"])
    assert all(u.audio_path is None and u.video_path is None for u in utterances(corpus))
    with pytest.raises(MerbenchError, match=r"missing audio file .*Ses01F_impro01_F000\.wav"):
        read_corpus("iemocap", root, modalities=["audio"])
    with pytest.raises(MerbenchError, match=r"missing vision file .*Ses01F_impro01\.avi"):
        read_corpus("iemocap", root, modalities=["vision"])


def test_iemocap_raw_missing_media_drop_counts(tmp_path):
    root = tmp_path / "iemocap"
    write_iemocap_raw(root)
    (root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav").unlink()
    corpus = read_corpus("iemocap", root, modalities=["audio"], missing_media="drop")
    assert counts(corpus)["total"] == 29 and corpus.info["missing_media_dropped"] == {"audio": 1}


def test_iemocap_raw_nothing_left_is_an_error(tmp_path):
    root = tmp_path / "iemocap"
    write_iemocap_raw(root, sessions=(5,), wav=False)
    with pytest.raises(MerbenchError, match=r"^iemocap_raw: no utterance left after reading .*EmoEvaluation/Ses05F_impro01\.txt and 3 other files$"):
        read_corpus("iemocap", root, modalities=["audio"], missing_media="drop")


def test_iemocap_raw_records_video_cut_by_interval(tmp_path):
    root = tmp_path / "iemocap"
    write_iemocap_raw(root, sessions=(1, 5), avi=True)
    corpus = read_corpus("iemocap", root, modalities=["audio", "vision"])
    u = next(u for u in utterances(corpus) if u.id == "Ses01F_impro01_F001")
    assert u.video_path.endswith("Session1/dialog/avi/DivX/Ses01F_impro01.avi")
    assert u.video_interval == (3.5, 4.0)
    assert any("only Sessions [1, 5]" in w for w in corpus.info["warnings"])


@pytest.mark.parametrize("edit, match", [
    (lambda r: _replace(r / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", "\tneu\t", "\tjoy\t"),
     r"Ses01F_impro01\.txt line \d+: utterance 'Ses01F_impro01_F000' has label 'joy'; expected one of neu"),
    (lambda r: (r / "Session2/dialog/transcriptions/Ses02M_script01_1.txt").unlink(),
     r"missing file .*transcriptions/Ses02M_script01_1\.txt"),
    (lambda r: _replace(r / "Session3/dialog/transcriptions/Ses03F_impro01.txt",
                        "Ses03F_impro01_M000 [", "Ses03F_impro01_Q000 ["),
     r"Ses03F_impro01\.txt: utterance 'Ses03F_impro01_M000' has no transcript"),
    (lambda r: _replace(r / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", "[1.0000 - 2.0000]", "[1.0000 - ]"),
     r"Ses01F_impro01\.txt line \d+: .*expected '\[start - end\]<TAB>utt_id<TAB>label<TAB>\[V, A, D\]'"),
    # An utterance line that lost its opening bracket: an error, never an utterance skipped unsaid.
    (lambda r: _replace(r / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", "[1.0000 - 2.0000]", "1.0000 - 2.0000]"),
     r"Ses01F_impro01\.txt line 19: '1\.0000 - 2\.0000\]\\tSes01F_impro01_F000\\tneu.*; expected '\[start - end\]"),
    (lambda r: [_replace(r / f"Session1/dialog/{folder}/Ses01F_impro01.txt", "_F000", "_X000")
                for folder in ("EmoEvaluation", "transcriptions")],
     r"EmoEvaluation/Ses01F_impro01\.txt: utterance 'Ses01F_impro01_X000' has no speaker letter"),
])
def test_iemocap_raw_bad_input(iemocap_root, edit, match):
    edit(iemocap_root)
    with pytest.raises(MerbenchError, match=match):
        read_corpus("iemocap", iemocap_root)


def _replace(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_iemocap_options_are_checked(iemocap_root):
    with pytest.raises(MerbenchError, match=r"labels 'iemocap5' is not valid .*iemocap6, iemocap4"):
        read_corpus("iemocap", iemocap_root, labels="iemocap5")
    with pytest.raises(MerbenchError, match=r"protocol 'loso' needs fold in 1\.\.5; got None"):
        read_corpus("iemocap", iemocap_root, protocol="loso")
    with pytest.raises(MerbenchError, match=r"protocol 'session5-test' has no folds; got fold 2"):
        read_corpus("iemocap", iemocap_root, fold=2)
    with pytest.raises(MerbenchError, match=r"protocol 'random' is not valid"):
        read_corpus("iemocap", iemocap_root, protocol="random")
    with pytest.raises(MerbenchError, match=r"unknown option 'missing_medium' \(did you mean 'missing_media'\?\)"):
        read_corpus("iemocap", iemocap_root, missing_medium="drop")


# --- IEMOCAP pickles -------------------------------------------------------------------------


def test_iemocap_cosmic_uses_the_file_validation_list(tmp_path):
    tables = write_iemocap_cosmic(tmp_path / "iemocap.pkl")
    corpus = read_corpus("iemocap", tmp_path)
    assert corpus.info["format"] == "iemocap_cosmic"
    assert [d.id for d in corpus.dialogues if d.split == "valid"] == ["Ses01F_impro01"]
    assert counts(corpus) == {"train": 20, "valid": 4, "test": 6, "total": 30}
    d = next(d for d in corpus.dialogues if d.id == "Ses04M_script01_1")
    assert [u.speaker for u in d.utterances] == tables[d.id][0]
    assert [u.label for u in d.utterances] == tables[d.id][1]
    assert [u.text for u in d.utterances] == tables[d.id][2]
    assert d.utterances[1].id == "Ses04M_script01_1#001"
    loso = read_corpus("iemocap", tmp_path / "iemocap.pkl", protocol="loso", fold=2)
    assert {d.session for d in loso.dialogues if d.split == "test"} == {"Ses02"}
    assert loso.info["validation"] == "carved"


def test_iemocap_cosmic_four_way(tmp_path):
    write_iemocap_cosmic(tmp_path / "iemocap.pkl")
    corpus = read_corpus("iemocap", tmp_path, labels="iemocap4")
    assert Counter(u.label for u in utterances(corpus)) == {0: 10, 1: 5, 2: 5, 3: 5}


@pytest.mark.parametrize("edit, match", [
    (lambda data: data[1]["Ses01F_impro01"].__setitem__(0, 7), r"'Ses01F_impro01' utterance 0 has label 7; expected an id 0\.\.5"),
    (lambda data: data[0]["Ses02F_impro01"].__setitem__(1, "X"), r"'Ses02F_impro01' utterance 1 has speaker 'X'"),
    (lambda data: data[2]["Ses02F_impro01"].__setitem__(1, " "), r"'Ses02F_impro01' utterance 1 has no transcript"),
    (lambda data: data[2]["Ses02F_impro01"].pop(), r"'Ses02F_impro01' has 4 labels and 3 transcripts"),
    (lambda data: data.pop(), r"expected a list of 6 items"),
    (lambda data: data[4].append("Ses09F_impro01"), r"dialogue 'Ses09F_impro01' is not listed exactly once"),
])
def test_iemocap_cosmic_bad_input(tmp_path, edit, match):
    path = tmp_path / "iemocap.pkl"
    write_iemocap_cosmic(path)
    data = pickle.loads(path.read_bytes())
    edit(data)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(MerbenchError, match=match):
        read_corpus("iemocap", path)


def test_iemocap_cosmic_holds_no_media(tmp_path):
    write_iemocap_cosmic(tmp_path / "iemocap.pkl")
    with pytest.raises(MerbenchError, match=r"holds transcripts only; audio was asked"):
        read_corpus("iemocap", tmp_path, modalities=["text", "audio"])


def test_iemocap_dialoguernn_ships_features_aligned_with_utterances(tmp_path):
    write_iemocap_dialoguernn(tmp_path / "IEMOCAP_features.pkl")
    corpus = read_corpus("iemocap", tmp_path, labels="iemocap4")
    assert corpus.info["format"] == "iemocap_dialoguernn"
    d = next(d for d in corpus.dialogues if d.id == "Ses03F_impro01")
    # frustrated (the 4th utterance) is dropped with its feature rows.
    assert [u.id for u in d.utterances] == [f"Ses03F_impro01_{s}" for s in ("F000", "M000", "F001")]
    assert [x[0] for x in d.features["text"]] == [0, 1, 2]
    assert {m: d.features[m][0].shape for m in d.features} == {"text": (100,), "audio": (100,), "vision": (512,)}
    assert sum(dd.split == "valid" for dd in corpus.dialogues) == 1
    assert {dd.session for dd in corpus.dialogues if dd.split == "test"} == {"Ses05"}


@pytest.mark.parametrize("modality, position", [("text", 3), ("vision", 5)])
def test_iemocap_dialoguernn_bad_features(tmp_path, modality, position):
    path = tmp_path / "IEMOCAP_features.pkl"
    write_iemocap_dialoguernn(path)
    data = list(pickle.loads(path.read_bytes()))
    data[position]["Ses02M_script01_1"] = data[position]["Ses02M_script01_1"][:, :-1]
    path.write_bytes(pickle.dumps(tuple(data)))
    with pytest.raises(MerbenchError, match=rf"'Ses02M_script01_1' {modality} has shape \(2, \d+\); "
                                            rf"expected 2 dims with last dimension (100|512)"):
        read_corpus("iemocap", path)


def test_iemocap_dialoguernn_nan_is_an_error_unless_zeroed(tmp_path):
    path = tmp_path / "IEMOCAP_features.pkl"
    write_iemocap_dialoguernn(path)
    data = list(pickle.loads(path.read_bytes()))
    data[4]["Ses01F_impro01"][1, 3] = np.nan
    path.write_bytes(pickle.dumps(tuple(data)))
    with pytest.raises(MerbenchError, match=r"'Ses01F_impro01' audio holds 1 NaN/inf values"):
        read_corpus("iemocap", path)
    corpus = read_corpus("iemocap", path, nonfinite="zero")
    assert corpus.info["nonfinite_zeroed"] == {"audio": 1}


# --- MELD ------------------------------------------------------------------------------------


def test_meld_raw_reads_mis_encoded_csvs(tmp_path):
    write_meld_raw(tmp_path)
    corpus = read_corpus("meld", tmp_path)
    assert corpus.info["format"] == "meld_raw"
    assert corpus.info["encodings"] == {"train_sent_emo.csv": "cp1252", "dev_sent_emo.csv": "utf-8",
                                        "test_sent_emo.csv": "utf-8"}
    texts = {u.id: u.text for u in utterances(corpus)}
    for split, rows in MELD_ROWS.items():
        for d, u, text, *_ in rows:
            assert texts[f"{split}_dia{d}_utt{u}"] == MELD_CLEAN.get(text, text)
    assert counts(corpus) == {"train": 6, "valid": 3, "test": 2, "total": 11}
    assert {d.split for d in corpus.dialogues if d.id.startswith("dev_")} == {"valid"}


def test_meld_raw_speakers_order_and_labels(tmp_path):
    write_meld_raw(tmp_path)
    corpus = read_corpus("meld", tmp_path, labels="meld7")
    d = next(d for d in corpus.dialogues if d.id == "train_dia0")
    assert [u.id for u in d.utterances] == [f"train_dia0_utt{i}" for i in range(4)]
    assert [u.speaker for u in d.utterances] == ["0", "1", "0", "2"]
    assert corpus.info["speaker_names"]["train_dia0"] == ["Ross", "Rachel", "Monica"]
    assert [corpus.label_names[u.label] for u in d.utterances] == ["neutral", "joy", "surprise", "anger"]
    sentiment = read_corpus("meld", tmp_path, labels="meld3")
    d = next(d for d in sentiment.dialogues if d.id == "train_dia0")
    assert [sentiment.label_names[u.label] for u in d.utterances] == ["neutral", "positive", "positive", "negative"]
    assert any("9,989" in w and " 6 " in w for w in corpus.info["warnings"])
    assert all(u.audio_path is None for u in utterances(corpus))


def test_meld_raw_clips(tmp_path):
    write_meld_raw(tmp_path, clips=True)
    corpus = read_corpus("meld", tmp_path, modalities=["audio", "vision"])
    u = next(u for u in utterances(corpus) if u.id == "dev_dia1_utt0")
    assert u.audio_path == u.video_path and u.video_path.endswith("dev_splits_complete/dia1_utt0.mp4")
    (tmp_path / "output_repeated_splits_test/dia0_utt1.mp4").unlink()
    with pytest.raises(MerbenchError, match=r"missing vision file .*output_repeated_splits_test/dia0_utt1\.mp4"):
        read_corpus("meld", tmp_path, modalities=["vision"])


def test_meld_count_warning_goes_when_counts_match(tmp_path, monkeypatch):
    write_meld_raw(tmp_path)
    monkeypatch.setattr(_meld, "COUNTS", {"train": 6, "valid": 3, "test": 2})
    assert read_corpus("meld", tmp_path).info["warnings"] == []


@pytest.mark.parametrize("split, old, new, match", [
    ("test", b"Neutral,neutral", b"happy,neutral", r"test_sent_emo\.csv row 2 \(dia0_utt0\): Emotion 'happy'; expected one of neutral"),
    ("test", b"joy,positive", b"joy,upbeat", r"row 3 \(dia0_utt1\): Sentiment 'upbeat'"),
    ("dev", b"Dialogue_ID", b"Dialog_ID", r"dev_sent_emo\.csv has no column 'Dialogue_ID'"),
    ("test", b",0,1,1,1,", b",0,0,1,1,", r"row 3 \(dia0_utt0\): dia0_utt0 appears twice"),
    ("test", b"A caf\xc3\xa9 au lait.", b"", r"row 2 \(dia0_utt0\): the Utterance is empty"),
    ("test", b",0,1,1,1,", b",x,1,1,1,", r"test_sent_emo\.csv row 3: Dialogue_ID is 'x'; expected an integer"),
])
def test_meld_raw_bad_input(tmp_path, split, old, new, match):
    write_meld_raw(tmp_path)
    path = tmp_path / f"{split}_sent_emo.csv"
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    with pytest.raises(MerbenchError, match=match):
        read_corpus("meld", tmp_path)


def test_meld_raw_unparseable_csv(tmp_path):
    write_meld_raw(tmp_path)
    (tmp_path / "dev_sent_emo.csv").write_text('"' + "x" * 200_000)  # one field past the csv module's limit
    with pytest.raises(MerbenchError, match=r"meld_raw: .*dev_sent_emo\.csv line 1: not readable as CSV "
                                            r"\(field larger than field limit .*\); expected a CSV file with columns"):
        read_corpus("meld", tmp_path)


def test_meld_raw_missing_csv(tmp_path):
    write_meld_raw(tmp_path)
    (tmp_path / "dev_sent_emo.csv").unlink()
    with pytest.raises(MerbenchError, match=r"missing file .*dev_sent_emo\.csv \(expected the MELD dev CSV\)"):
        read_corpus("meld", tmp_path)


@pytest.mark.parametrize("text, clean", [
    ("It\u00e2\u20ac\u2122s", "It\u2019s"), ("I\u00e2\u0080\u0099m", "I\u2019m"), ("caf\u00e9", "caf\u00e9"),
    ("\u00c2\u00a0", "\u00a0"), ("don\u0092t", "don\u2019t"), ("na\u00efve \u2019", "na\u00efve \u2019"),
    ("plain", "plain"), ("\u00c3\u00a9t\u00c3\u00a9", "\u00e9t\u00e9"),
])
def test_fix_mojibake(text, clean):
    assert fix_mojibake(text) == clean


def test_meld_dialoguernn(tmp_path):
    tables = write_meld_dialoguernn(tmp_path / "MELD_features_raw.pkl")
    corpus = read_corpus("meld", tmp_path)
    assert corpus.info["format"] == "meld_dialoguernn"
    assert {d.id for d in corpus.dialogues if d.split == "test"} == {"10", "11", "12"}
    assert sum(d.split == "valid" for d in corpus.dialogues) == 1
    d = next(d for d in corpus.dialogues if d.id == "4")
    assert [u.label for u in d.utterances] == tables["emotions"][4]
    assert [u.speaker for u in d.utterances] == ["0", "1", "0"]
    assert corpus.info["speaker_names"]["4"] == ["one-hot 4", "one-hot 7"]
    assert np.array_equal(np.stack(d.features["text"]), tables["text"][4])
    assert d.features["audio"][0].shape == (300,)
    assert any("11,098" in w for w in corpus.info["warnings"])
    sentiment = read_corpus("meld", tmp_path, labels="meld3")
    d = next(d for d in sentiment.dialogues if d.id == "4")
    assert [u.label for u in d.utterances] == tables["sentiment"][4]
    with pytest.raises(MerbenchError, match=r"ships text and audio features only; vision was asked"):
        read_corpus("meld", tmp_path, modalities=["vision"])


def test_meld_dialoguernn_count_warning_goes_when_counts_match(tmp_path, monkeypatch):
    write_meld_dialoguernn(tmp_path / "MELD_features_raw.pkl")
    corpus = read_corpus("meld", tmp_path)
    monkeypatch.setattr(meld_dialoguernn_module, "COUNTS", {
        "train+valid": corpus.info["counts"]["train"] + corpus.info["counts"]["valid"],
        "test": corpus.info["counts"]["test"]})
    assert read_corpus("meld", tmp_path).info["warnings"] == []


@pytest.mark.parametrize("edit, match", [
    (lambda data: data[2][3].__setitem__(0, 9), r"dialogue 3 utterance 0 has emotion 9; expected an id 0\.\.6"),
    (lambda data: data[8][3].__setitem__(0, -1), r"dialogue 3 utterance 0 has sentiment -1"),
    (lambda data: data[1][3].__setitem__(0, [0] * 9), r"dialogue 3 utterance 0 has speaker .*expected a one-hot vector"),
    (lambda data: data[3].__setitem__(3, data[3][3][:, :512]), r"dialogue 3 text has shape \(2, 512\); expected 2 dims with last dimension 600"),
    (lambda data: data[5][3].__setitem__(0, ""), r"dialogue 3 utterance 0 has no transcript"),
])
def test_meld_dialoguernn_bad_input(tmp_path, edit, match):
    path = tmp_path / "MELD_features_raw.pkl"
    write_meld_dialoguernn(path)
    data = list(pickle.loads(path.read_bytes()))
    edit(data)
    path.write_bytes(pickle.dumps(tuple(data)))
    with pytest.raises(MerbenchError, match=match):
        read_corpus("meld", path, labels="meld3" if "sentiment" in match else None)


# --- CMU-MOSEI -------------------------------------------------------------------------------


def test_mosei_mmsa_unaligned(tmp_path):
    lengths = write_mmsa(tmp_path / "unaligned_50.pkl")
    corpus = read_corpus("mosei", tmp_path)
    assert corpus.info["format"] == "mosei_mmsa" and corpus.task == "regression"
    assert corpus.label_names == ["-3", "-2", "-1", "0", "1", "2", "3"]
    assert counts(corpus) == {"train": 4, "valid": 1, "test": 2, "total": 7}
    a = next(d for d in corpus.dialogues if d.id == "vidA")
    # Clip order: 2 before 10.
    assert [u.id for u in a.utterances] == ["vidA$_$2", "vidA$_$10"]
    assert [u.speaker for u in a.utterances] == ["vidA", "vidA"]
    assert [u.value for u in a.utterances] == pytest.approx([-0.4, 2.6])
    assert [u.label for u in a.utterances] == [3, 6]
    b = next(d for d in corpus.dialogues if d.id == "vidB")
    assert [u.label for u in b.utterances] == [3, 0]  # 0.5 rounds half to even
    assert b.utterances[0].text == "clip 0 of vidB"
    # vidA$_$10 is record 0 of train, vidA$_$2 record 1.
    assert a.features["audio"][1].shape == (lengths["train"]["audio"][0], 74)
    assert a.features["vision"][0].shape == (lengths["train"]["vision"][1], 35)
    assert a.features["text"][0].shape == (lengths["train"]["text"][1], 768)
    assert corpus.info["aligned"] is False
    assert any("16,326" in w and " 4 " in w for w in corpus.info["warnings"])


def test_mosei_mmsa_aligned_keeps_frames_aligned(tmp_path):
    lengths = write_mmsa(tmp_path / "aligned_50.pkl", aligned=True)
    corpus = read_corpus("mosei", tmp_path)
    d = next(d for d in corpus.dialogues if d.id == "vidD")
    # vidD$_$1 is test record 1, vidD$_$3 record 0.
    keep = lengths["test"]["all"]
    assert [x.shape[0] for x in d.features["audio"]] == [keep[1], keep[0]]
    assert [x.shape for x in d.features["text"]] == [(keep[1], 300), (keep[0], 300)]
    assert corpus.info["aligned"] is True


def test_mosei_mmsa_text_bert_ids_are_kept_out(tmp_path):
    write_mmsa(tmp_path / "unaligned_50.pkl", text_bert_only=True)
    corpus = read_corpus("mosei", tmp_path, modalities=["text", "audio"])
    assert set(corpus.dialogues[0].features) == {"audio", "vision"}
    assert "token ids only" in corpus.info["text_bert"]
    assert all(u.text for u in utterances(corpus))


def test_mosei_mmsa_audio_neg_inf_is_zeroed_nan_is_an_error(tmp_path):
    path = tmp_path / "unaligned_50.pkl"
    write_mmsa(path)
    data = pickle.loads(path.read_bytes())
    data["valid"]["audio"][0, 0, :3] = -np.inf
    path.write_bytes(pickle.dumps(data))
    assert read_corpus("mosei", path).info["audio_neg_inf_zeroed"] == 3
    data["test"]["vision"][1, 0, 0] = np.nan
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(MerbenchError, match=r"test\.vision record 1 \(id 'vidD\$_\$1'\) holds NaN/inf"):
        read_corpus("mosei", path)
    assert read_corpus("mosei", path, nonfinite="zero").info["counts"]["test"] == 2


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["train"].pop("vision"), r"train has no key 'vision'"),
    (lambda d: d.pop("valid"), r"expected a dict with keys train, valid, test"),
    (lambda d: d["test"].__setitem__("audio", d["test"]["audio"][..., :70]), r"test\.audio has shape \(2, 8, 70\); expected \(2, T, 74\)"),
    (lambda d: d["train"]["id"].__setitem__(0, "vidA_10"), r"train record 0 has id 'vidA_10'; expected 'videoid\$_\$clipid'"),
    (lambda d: d["train"]["regression_labels"].__setitem__(2, 3.5), r"train record 2 \(vidB\$_\$0\) has sentiment 3\.5; expected a number in \[-3, 3\]"),
    (lambda d: [d["test"].pop(k) for k in ("text", "text_bert")], r"test has no key 'text' or 'text_bert'"),
])
def test_mosei_mmsa_bad_input(tmp_path, edit, match):
    path = tmp_path / "unaligned_50.pkl"
    write_mmsa(path)
    data = pickle.loads(path.read_bytes())
    edit(data)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(MerbenchError, match=match):
        read_corpus("mosei", tmp_path)


def test_mosei_csd_cuts_features_to_segments(tmp_path):
    write_csd(tmp_path)
    corpus = read_corpus("mosei", tmp_path)
    assert corpus.info["format"] == "mosei_csd"
    assert {d.id: d.split for d in corpus.dialogues} == {"vidA": "train", "vidB": "valid", "vidC": "test"}
    assert corpus.info["unassigned_videos"] == 1
    a = next(d for d in corpus.dialogues if d.id == "vidA")
    # Segments ordered by start: [0, 1] then [2, 3].
    assert [u.id for u in a.utterances] == ["vidA[0]", "vidA[1]"]
    assert [u.value for u in a.utterances] == [-2.0, 1.0] and [u.label for u in a.utterances] == [1, 4]
    assert [x.shape for x in a.features["audio"]] == [(10, 74), (10, 74)]
    assert [x.shape for x in a.features["vision"]] == [(5, 35), (5, 35)]
    assert [x.shape for x in a.features["text"]] == [(4, 300), (4, 300)]
    assert a.utterances[0].text == "hello there good"
    b = next(d for d in corpus.dialogues if d.id == "vidB")
    assert b.features["audio"][0].shape == (10, 74) and b.features["vision"][0].shape == (6, 35)
    assert b.utterances[0].text == "there good day"
    assert corpus.info["emotions"]["vidA[0]"] == pytest.approx([0, 2.0, 0.3, 0, 0, 0])
    assert corpus.info["emotion_names"] == ["happy", "sad", "anger", "surprise", "disgust", "fear"]
    assert len(corpus.info["emotions"]) == 4


def test_mosei_csd_reads_only_the_modalities_asked(tmp_path):
    write_csd(tmp_path, skip=("CMU_MOSEI_VisualFacet42.csd",))
    corpus = read_corpus("mosei", tmp_path, modalities=["audio"])
    assert set(corpus.dialogues[0].features) == {"audio"}
    with pytest.raises(MerbenchError, match=r"missing file .*CMU_MOSEI_VisualFacet42\.csd \(expected vision features\)"):
        read_corpus("mosei", tmp_path, modalities=["vision"])


def test_mosei_csd_needs_folds(tmp_path):
    write_csd(tmp_path, folds=False)
    with pytest.raises(MerbenchError, match=r"folds\.json.*standard train/valid/test video lists are not shipped"):
        read_corpus("mosei", tmp_path)
    (tmp_path / "folds.csv").write_bytes(b"video_id,split\nvidA,train\nvidB,valid\nvidC,test\nvidX,test\nvid\xe9Z,test\n")  # cp1252
    corpus = read_corpus("mosei", tmp_path)
    assert corpus.info["counts"] == {"train": 2, "valid": 1, "test": 2, "total": 5}


@pytest.mark.parametrize("folds, match", [
    ('{"train": ["vidA"], "test": ["vidC"]}', r"expected lists under exactly train, valid, test"),
    ('{"train": ["vidA"], "valid": ["vidA"], "test": []}', r"video 'vidA' is in train and valid"),
    ("not json", r"folds\.json is not valid JSON"),
])
def test_mosei_csd_bad_folds(tmp_path, folds, match):
    write_csd(tmp_path)
    (tmp_path / "folds.json").write_text(folds)
    with pytest.raises(MerbenchError, match=match):
        read_corpus("mosei", tmp_path)


@pytest.mark.parametrize("folds, match", [
    (b'"' + b"x" * 200_000, r"folds\.csv line 1: not readable as CSV \(field larger than field limit"),
    (b"video,fold\nvidA,train\n", r"folds\.csv has columns \['video', 'fold'\]; expected video_id, split"),
    (b"video_id,split\nvidA\n", r"video 'vidA' .*"),
])
def test_mosei_csd_bad_folds_csv(tmp_path, folds, match):
    """Unparseable, wrong columns, short rows: one line each (a cp1252 file reads, as the other
    readers' CSVs do)."""
    write_csd(tmp_path, folds=False)
    (tmp_path / "folds.csv").write_bytes(folds)
    with pytest.raises(MerbenchError, match=match):
        read_corpus("mosei", tmp_path)


def test_mosei_csd_bad_features(tmp_path):
    import h5py

    write_csd(tmp_path)
    with h5py.File(tmp_path / "CMU_MOSEI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/vidB/features"]
        f["COVAREP/data/vidB"].create_dataset("features", data=np.zeros((30, 73), np.float32))
    with pytest.raises(MerbenchError, match=r"CMU_MOSEI_COVAREP\.csd: video 'vidB' audio has shape \(30, 73\)"):
        read_corpus("mosei", tmp_path)
    with h5py.File(tmp_path / "CMU_MOSEI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/vidB/features"], f["COVAREP/data/vidA/intervals"]
        f["COVAREP/data/vidB"].create_dataset("features", data=np.zeros((30, 74), np.float32))
    with pytest.raises(MerbenchError, match=r"COVAREP\.csd: COVAREP/data/vidA has no 'intervals'; expected features and intervals"):
        read_corpus("mosei", tmp_path)
    (tmp_path / "CMU_MOSEI_Labels.csd").write_bytes(b"not hdf5")
    with pytest.raises(MerbenchError, match=r"CMU_MOSEI_Labels\.csd is not an HDF5 computational sequence"):
        read_corpus("mosei", tmp_path)


# --- CMU-MOSI --------------------------------------------------------------------------------


def shuffle_bclstm(root, seed):
    """Permute every file's rows consistently: transcripts.csv (renumbering column 0 of the
    text_<split>.csv files), and each text_<split>.csv with its three <m>_<split>0.csv."""
    import csv

    def rows(path):
        with open(path, newline="") as f:
            return list(csv.reader(f))

    def write(path, table):
        with open(path, "w", newline="") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(table)

    rng = np.random.default_rng(seed)
    transcripts = rows(root / "transcripts.csv")
    order = rng.permutation(len(transcripts))
    write(root / "transcripts.csv", [transcripts[k] for k in order])
    new_row = {int(old): new for new, old in enumerate(order)}
    for split in ("train", "test"):
        index = rows(root / f"text_{split}.csv")
        perm = rng.permutation(len(index))
        write(root / f"text_{split}.csv", [[str(new_row[int(index[k][0])]), *index[k][1:]] for k in perm])
        for stem in ("text", "audio", "video"):
            table = rows(root / stem / f"{stem}_{split}0.csv")
            write(root / stem / f"{stem}_{split}0.csv", [table[k] for k in perm])


@pytest.fixture
def mosi_root(tmp_path):
    return write_mosi_bclstm(tmp_path / "data")


def test_mosi_bclstm_joins_rows_orders_utterances_and_carves_validation(mosi_root):
    corpus = read_corpus("mosi", mosi_root, protocol="bclstm")
    assert corpus.info["format"] == "mosi_bclstm" and corpus.task == "classification"
    assert corpus.label_names == ["negative", "positive"] and corpus.protocol == "bclstm"
    assert {d.id: d.split for d in corpus.dialogues} == {
        "trainVidA": "train", "trainVidB": "train", "5W7Z1C_fDaE": "valid", "testVidA": "test", "2WGyTLYerpo": "test"}
    assert counts(corpus) == {"train": 6, "valid": 2, "test": 3, "total": 11}
    a = next(d for d in corpus.dialogues if d.id == "trainVidA")
    assert [u.id for u in a.utterances] == ["trainVidA_1", "trainVidA_2", "trainVidA_10"]  # by n, numerically
    assert [u.text for u in a.utterances] == ["SO I SAW IT", "IT WAS FINE", "BUT FAR TOO LONG"]
    assert [u.label for u in a.utterances] == [1, 1, 0] and {u.speaker for u in a.utterances} == {"trainVidA"}
    for d in corpus.dialogues:
        for m, dim in (("text", 100), ("audio", 73), ("vision", 100)):
            for u, x in zip(d.utterances, d.features[m]):
                assert x.shape == (dim,)
                np.testing.assert_array_equal(x, mosi_bclstm_features(u.id, m))
    warnings = corpus.info["warnings"]
    assert any("train has 6 utterances; the bc-LSTM release under protocol bclstm has 1,110" in w for w in warnings)
    assert any("valid has 1 videos; the bc-LSTM release under protocol bclstm has 12" in w for w in warnings)
    assert corpus.info["unused_transcripts"] == 0 and "12 fixed training videos" in corpus.info["validation"]


def test_mosi_bclstm_does_not_depend_on_row_order(mosi_root, tmp_path):
    from merbench.features.build import build_corpus

    before = read_corpus("mosi", mosi_root)
    files = {p: p.read_bytes() for p in mosi_root.rglob("*.csv")}
    shuffle_bclstm(mosi_root, seed=3)
    assert all(p.read_bytes() != data for p, data in files.items())  # every file's rows moved
    after = read_corpus("mosi", mosi_root)
    assert after.fingerprint() == before.fingerprint()
    assert build_corpus(after, progress=False).fingerprint() == build_corpus(before, progress=False).fingerprint()


def test_mosi_bclstm_modalities_asked_and_options(mosi_root):
    assert read_corpus("mosi", mosi_root, labels="binary", protocol="bclstm").info["counts"]["total"] == 11
    with pytest.raises(MerbenchError, match=r"mosi_bclstm: protocol 'standard' is not valid; expected one of bclstm"):
        read_corpus("mosi", mosi_root, protocol="standard")
    with pytest.raises(MerbenchError, match=r"labels 'sentiment' is not valid; expected one of binary"):
        read_corpus("mosi", mosi_root, labels="sentiment")
    for split in ("train", "test"):
        (mosi_root / "text" / f"text_{split}0.csv").unlink()
    # Text asked without its feature files: the transcripts serve it; the other two are read.
    corpus = read_corpus("mosi", mosi_root, modalities=["text"])
    assert set(corpus.dialogues[0].features) == {"audio", "vision"} and corpus.info["modalities_read"] == ["audio", "vision"]
    with pytest.raises(MerbenchError, match=r"mosi_bclstm: missing file .*text_train0\.csv \(expected text features\)"):
        read_corpus("mosi", mosi_root)
    (mosi_root / "video" / "video_test0.csv").unlink()
    with pytest.raises(MerbenchError, match=r"missing file .*video/video_test0\.csv \(expected vision features\)"):
        read_corpus("mosi", mosi_root, modalities=["vision"])


def _edit_line(path, line, edit):
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")


def _cells(edit):
    """An edit of one line's quoted cells."""
    return lambda line: ",".join(f'"{c}"' for c in edit(line.strip('"').split('","')))


def _set(i, value):
    """An edit that sets cell ``i`` of a line to ``value``."""
    def edit(cells):
        cells[i] = value
        return cells
    return _cells(edit)


# (file, line, edit, expected message). Line 1 of text_train.csv names trainVidB_2 (transcripts.csv line 11).
BCLSTM_BAD = [
    ("audio/audio_train0.csv", 2, _cells(lambda c: c[:-2] + [c[-1]]),
     r"audio_train0\.csv line 2: 73 columns; expected 74 \(73 audio features, then the label\)"),
    ("video/video_test0.csv", 3, _set(4, "abc"),
     r"video_test0\.csv line 3 column 5: 'abc' is not a number; expected 100 vision features"),
    ("text/text_train0.csv", 1, _set(0, "nan"),
     r"text_train0\.csv line 1 column 1: 'nan'; expected finite features \(option nonfinite='zero' sets them to 0\)"),
    ("text_train.csv", 2, _set(0, "11"),
     r"text_train\.csv line 2: row number '11' is not a row of transcripts\.csv; expected a whole number in 0\.\.10"),
    ("text_test.csv", 1, _set(0, "x1"), r"text_test\.csv line 1: row number 'x1' is not a row of transcripts\.csv"),
    ("transcripts.csv", 4, _set(0, "trainVidB_2"),
     r"transcripts\.csv lines 4 and 11 both hold utterance 'trainVidB_2'; expected each id once"),
    ("transcripts.csv", 2, _set(0, "trainVidB-2"),
     r"transcripts\.csv line 2: id 'trainVidB-2' is not of the form <video id>_<n>"),
    ("transcripts.csv", 2, _set(3, "2"), r"transcripts\.csv line 2: label '2'; expected 0 \(negative\) or 1 \(positive\)"),
    ("transcripts.csv", 2, _set(1, " "), r"transcripts\.csv line 2 \(\w+_\d+\): empty transcript"),
    ("transcripts.csv", 2, _cells(lambda c: c[:3]), r"transcripts\.csv line 2: 3 columns; expected 4"),
    ("audio/audio_train0.csv", 1, _set(-1, "1"),
     r"audio_train0\.csv line 1: label 1 disagrees with transcripts\.csv line 11 \(trainVidB_2: 0\); expected the same label"),
]


@pytest.mark.parametrize("name, line, edit, match", BCLSTM_BAD, ids=[f"{b[0]}:{b[1]}" for b in BCLSTM_BAD])
def test_mosi_bclstm_bad_input(mosi_root, name, line, edit, match):
    _edit_line(mosi_root / name, line, edit)
    with pytest.raises(MerbenchError, match=match):
        read_corpus("mosi", mosi_root)


@pytest.mark.parametrize("name, data, match", [
    ("transcripts.csv", b"", r"transcripts\.csv has no rows; expected one per utterance"),
    ("transcripts.csv", b'"' + b"x" * 200_000, r"transcripts\.csv line 1: not readable as CSV \(field larger than "
                                                r"field limit .*\); expected the bc-LSTM release's quoted CSV rows"),
    ("audio/audio_train0.csv", _set(0, "\x07" * 5_000), r"audio_train0\.csv line 1 column 1: '(\\x07){5,}\S*\.\.\.\S*' is not a number"),
    ("text_train.csv", _set(0, "9" * 5_000), r"text_train\.csv line 1: row number '9{20,}\.\.\.9{20,}' is not a row"),
])
def test_mosi_bclstm_unreadable_files(mosi_root, name, data, match):
    """Files the csv module cannot parse, or whose cells are thousands of characters: one
    bounded line (``data`` is the file's bytes, or an edit of its first line)."""
    if callable(data):
        _edit_line(mosi_root / name, 1, data)
    else:
        (mosi_root / name).write_bytes(data)
    with pytest.raises(MerbenchError, match=match) as error:
        read_corpus("mosi", mosi_root)
    assert len(str(error.value)) < 400


def test_mosi_bclstm_bad_joins(mosi_root):
    path = mosi_root / "audio" / "audio_test0.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(MerbenchError, match=r"audio_test0\.csv has 2 rows; expected 3, one per row of text_test\.csv"):
        read_corpus("mosi", mosi_root)
    write_mosi_bclstm(mosi_root)
    for train, test in (("text_train.csv", "text_test.csv"), *((f"{m}/{m}_train0.csv", f"{m}/{m}_test0.csv")
                                                              for m in ("text", "audio", "video"))):
        first = (mosi_root / train).read_text().splitlines()[0]  # names trainVidB_2
        (mosi_root / test).write_text((mosi_root / test).read_text() + first + "\n")
    with pytest.raises(MerbenchError, match=r"text_train\.csv line 1 and .*text_test\.csv line 4 both name "
                                            r"transcripts\.csv row 10 \(trainVidB_2\); expected each utterance once"):
        read_corpus("mosi", mosi_root)


def test_mosi_bclstm_unseen_valid_takes_validation_from_test_videos(mosi_root):
    corpus = read_corpus("mosi", mosi_root)
    assert corpus.protocol == "unseen-valid"  # the default
    assert {d.id: d.split for d in corpus.dialogues} == {
        "trainVidA": "train", "trainVidB": "train", "5W7Z1C_fDaE": "train", "testVidA": "test", "2WGyTLYerpo": "valid"}
    assert counts(corpus) == {"train": 8, "valid": 1, "test": 2, "total": 11}
    assert "10 fixed test videos of protocol unseen-valid" in corpus.info["validation"]
    assert any("test has 2 utterances; the bc-LSTM release under protocol unseen-valid has 457" in w
               for w in corpus.info["warnings"])
    # The two protocols differ only in where the validation videos come from.
    assert read_corpus("mosi", mosi_root, protocol="bclstm").fingerprint() != corpus.fingerprint()
    transcripts = mosi_root / "transcripts.csv"
    transcripts.write_text(transcripts.read_text().replace('"trainVidB_', '"Sqr0AcuoNnk_'))
    with pytest.raises(MerbenchError, match=r"video 'Sqr0AcuoNnk' is a validation video of protocol unseen-valid "
                                            r"but is in .*text_train\.csv; expected a test video"):
        read_corpus("mosi", mosi_root, protocol="unseen-valid")


def test_mosi_bclstm_video_splits_are_checked(mosi_root):
    # testVidA_1 renamed into a training video: trainVidA is then in both splits.
    transcripts = mosi_root / "transcripts.csv"
    transcripts.write_text(transcripts.read_text().replace('"testVidA_1"', '"trainVidA_7"'))
    with pytest.raises(MerbenchError, match=r"video 'trainVidA' has utterances in .*text_train\.csv line \d+ and "
                                            r".*text_test\.csv line \d+; expected one split per video"):
        read_corpus("mosi", mosi_root)
    write_mosi_bclstm(mosi_root)
    transcripts.write_text(transcripts.read_text().replace('"2WGyTLYerpo_1"', '"pLTX3ipuDJI_1"'))
    with pytest.raises(MerbenchError, match=r"video 'pLTX3ipuDJI' is a validation video of protocol bclstm but is in "
                                            r".*text_test\.csv; expected a training video"):
        read_corpus("mosi", mosi_root, protocol="bclstm")


def test_mosi_bclstm_nonfinite_zero_and_unused_transcripts(mosi_root):
    _edit_line(mosi_root / "audio" / "audio_train0.csv", 1, _set(0, "inf"))
    with open(mosi_root / "transcripts.csv", "a") as f:
        f.write('"spareVid_1","NOT IN ANY SPLIT","9","1"\n')
    corpus = read_corpus("mosi", mosi_root, nonfinite="zero")
    assert corpus.info["nonfinite_zeroed"] == {"audio": 1} and corpus.info["unused_transcripts"] == 1
    assert any("1 rows of" in w and "in neither text_train.csv nor text_test.csv" in w for w in corpus.info["warnings"])


def test_mosi_mmsa_checks_mosi_sizes(tmp_path):
    write_mmsa(tmp_path / "unaligned_50.pkl", audio_dim=5, vision_dim=20)
    corpus = read_corpus("mosi", tmp_path)
    assert corpus.info["format"] == "mosi_mmsa" and corpus.name == "mosi" and corpus.task == "regression"
    assert corpus.label_names == ["-3", "-2", "-1", "0", "1", "2", "3"] and corpus.protocol == "standard"
    a = next(d for d in corpus.dialogues if d.id == "vidA")
    assert [u.id for u in a.utterances] == ["vidA$_$2", "vidA$_$10"] and [u.value for u in a.utterances] == pytest.approx([-0.4, 2.6])
    assert {x.shape[1] for x in a.features["audio"]} == {5} and {x.shape[1] for x in a.features["vision"]} == {20}
    assert any("train has 4 utterances; the MMSA MOSI pickles has 1,284" in w for w in corpus.info["warnings"])
    write_mmsa(tmp_path / "unaligned_50.pkl")  # MOSEI's sizes
    with pytest.raises(MerbenchError, match=r"mosi_mmsa: .*train\.audio has shape \(4, 8, 74\); expected \(4, T, 5\)"):
        read_corpus("mosi", tmp_path)
    with pytest.raises(MerbenchError, match=r"mosi_mmsa: protocol 'bclstm' is not valid; expected one of standard"):
        read_corpus("mosi", tmp_path, format="mosi_mmsa", protocol="bclstm")


def test_mosi_csd_uses_the_shipped_standard_folds(tmp_path):
    write_csd(tmp_path, "mosi")
    corpus = read_corpus("mosi", tmp_path)
    assert corpus.info["format"] == "mosi_csd" and corpus.task == "regression"
    assert {d.id: d.split for d in corpus.dialogues} == {"2iD-tVS8NPw": "train", "WKA5OygbEKI": "valid", "tmZoasNr4rU": "test"}
    assert corpus.info["unassigned_videos"] == 1 and "emotions" not in corpus.info
    assert "merbench's copy of the SDK's standard folds" in corpus.info["validation"]
    a = next(d for d in corpus.dialogues if d.id == "2iD-tVS8NPw")
    assert [u.id for u in a.utterances] == ["2iD-tVS8NPw[0]", "2iD-tVS8NPw[1]"] and [u.value for u in a.utterances] == [-2.0, 1.0]
    assert [x.shape for x in a.features["audio"]] == [(10, 74), (10, 74)] and a.utterances[0].text == "hello there good"
    (tmp_path / "mine.json").write_text('{"train": ["tmZoasNr4rU"], "valid": [], "test": ["2iD-tVS8NPw"]}')
    mine = read_corpus("mosi", tmp_path, folds=str(tmp_path / "mine.json"))
    assert {d.id: d.split for d in mine.dialogues} == {"tmZoasNr4rU": "train", "2iD-tVS8NPw": "test"}


def test_mosi_csd_labels_are_sentiment_only(tmp_path):
    import h5py

    write_csd(tmp_path, "mosi")
    with h5py.File(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "a") as f:
        del f["Opinion Segment Labels/data/WKA5OygbEKI/features"]
        f["Opinion Segment Labels/data/WKA5OygbEKI"].create_dataset("features", data=np.zeros((1, 7), np.float32))
    with pytest.raises(MerbenchError, match=r"mosi_csd: .*CMU_MOSI_Opinion_Labels\.csd: video 'WKA5OygbEKI' labels have "
                                            r"shape \(1, 7\); expected \(N, 1\): sentiment"):
        read_corpus("mosi", tmp_path)
    assert options_of("mosi_csd") == ["folds", "nonfinite"] and options_of("mosi_bclstm") == ["nonfinite"]


@pytest.mark.shared_data
@needs_shared_mosi()
def test_real_mosi_bclstm_release():
    from merbench.data import mosi_bclstm
    from merbench.data._common import _name_key

    corpus = read_corpus("mosi", MOSI_ROOT, protocol="bclstm")
    assert corpus.info["format"] == "mosi_bclstm" and corpus.info["warnings"] == []
    assert corpus.info["counts"] == {"train": 1110, "valid": 337, "test": 752, "total": 2199}
    assert corpus.info["dialogue_counts"] == {"train": 50, "valid": 12, "test": 31}
    labels = {s: Counter(u.label for u in utterances(corpus, s)) for s in ("train", "valid", "test")}
    assert labels["train"] + labels["valid"] == Counter({0: 738, 1: 709}) and labels["test"] == Counter({0: 285, 1: 467})
    # The validation list is the documented rule applied to the release's training videos.
    training = [d.id for d in corpus.dialogues if d.split in ("train", "valid")]
    assert tuple(sorted(sorted(training, key=_name_key)[:12])) == mosi_bclstm.VALID_VIDEOS
    tested = [d.id for d in corpus.dialogues if d.split == "test"]
    assert tuple(sorted(sorted(tested, key=_name_key)[:10])) == mosi_bclstm.UNSEEN_VALID_VIDEOS
    unseen = read_corpus("mosi", MOSI_ROOT)  # the default protocol
    assert unseen.info["warnings"] == [] and unseen.info["counts"] == {"train": 1447, "valid": 295, "test": 457,
                                                                       "total": 2199}
    assert Counter(u.label for u in utterances(unseen, "test")) == Counter({0: 174, 1: 283})
    for d in corpus.dialogues:
        assert [int(u.id.rsplit("_", 1)[1]) for u in d.utterances] == list(range(1, len(d.utterances) + 1))
        assert {m: x[0].shape for m, x in d.features.items()} == {"audio": (73,), "text": (100,), "vision": (100,)}
    # The SDK's standard folds shipped for mosi_csd give MMSA's counts on the same utterances.
    from merbench.data._cmu import MOSI

    split_of = {v: s for s, videos in MOSI.folds.items() for v in videos}
    assert sorted(split_of) == sorted(d.id for d in corpus.dialogues)
    assert dict(Counter(split_of[u.id.rsplit("_", 1)[0]] for u in utterances(corpus))) == MOSI.counts


# --- Detection and the registry --------------------------------------------------------------


def test_every_format_is_registered_with_its_meta():
    assert FORMATS.names() == sorted(["iemocap_raw", "iemocap_cosmic", "iemocap_dialoguernn",
                                      "mosei_mmsa", "mosei_csd", "meld_raw", "meld_dialoguernn",
                                      "mosi_bclstm", "mosi_mmsa", "mosi_csd"])
    for entry in FORMATS.entries():
        assert entry.meta["dataset"] in ("iemocap", "mosei", "meld", "mosi") and entry.meta["description"]
        assert entry.name.startswith(entry.meta["dataset"] + "_")
    assert options_of("mosei_csd") == ["folds", "nonfinite"]


def test_detection_and_its_errors(tmp_path):
    write_iemocap_raw(tmp_path / "raw", sessions=(5,), wav=False)
    write_iemocap_cosmic(tmp_path / "cosmic" / "iemocap.pkl")
    write_csd(tmp_path / "csd")
    write_meld_raw(tmp_path / "meld")
    assert detect_format("iemocap", tmp_path / "raw") == "iemocap_raw"
    assert detect_format("iemocap", tmp_path / "cosmic") == "iemocap_cosmic"
    assert detect_format("iemocap", tmp_path / "cosmic" / "iemocap.pkl") == "iemocap_cosmic"
    assert detect_format("mosei", tmp_path / "csd") == "mosei_csd"
    assert detect_format("meld", tmp_path / "meld") == "meld_raw"
    with pytest.raises(MerbenchError, match=r"^no meld format found at .*: looked for meld_raw \(train_sent_emo\.csv\); "
                                            r"meld_dialoguernn \(MELD_features_raw\.pkl\); pass --format"):
        read_corpus("meld", tmp_path / "raw")
    write_iemocap_cosmic(tmp_path / "raw" / "iemocap.pkl")
    with pytest.raises(MerbenchError, match=r"matches several iemocap formats \(iemocap_raw, iemocap_cosmic\)"):
        read_corpus("iemocap", tmp_path / "raw")
    assert read_corpus("iemocap", tmp_path / "raw", format="iemocap_raw").info["format"] == "iemocap_raw"
    with pytest.raises(MerbenchError, match=r"format 'meld_raw' reads meld, not iemocap"):
        read_corpus("iemocap", tmp_path / "raw", format="meld_raw")
    with pytest.raises(MerbenchError, match=r"unknown dataset format 'iemocap_rw' \(did you mean 'iemocap_raw'\?\)"):
        read_corpus("iemocap", tmp_path / "raw", format="iemocap_rw")
    with pytest.raises(MerbenchError, match=r"unknown dataset 'cmu_mosi'"):
        read_corpus("cmu_mosi", tmp_path)
    write_mosi_bclstm(tmp_path / "bclstm")
    write_mmsa(tmp_path / "mmsa" / "aligned_50.pkl", audio_dim=5, vision_dim=20)
    write_csd(tmp_path / "mosi_csd", "mosi")
    assert [detect_format("mosi", tmp_path / d) for d in ("bclstm", "mmsa", "mosi_csd")] == [
        "mosi_bclstm", "mosi_mmsa", "mosi_csd"]
    with pytest.raises(MerbenchError, match=r"no mosi format found at .*: looked for mosi_bclstm \(transcripts\.csv "
                                            r"and text_train\.csv: .*\); mosi_mmsa .*; mosi_csd \(CMU_MOSI_Opinion_Labels\.csd\)"):
        read_corpus("mosi", tmp_path / "csd")
    with pytest.raises(MerbenchError, match=r"root .*nowhere does not exist"):
        read_corpus("meld", tmp_path / "nowhere")


def test_validation_carve_is_by_name_and_per_group():
    ids = [f"d{i:02d}" for i in range(40)]
    groups = {d: str(i % 4) for i, d in enumerate(ids)}
    chosen = carve_validation(ids, groups)
    assert len(chosen) == 4 and {groups[d] for d in chosen} == {"0", "1", "2", "3"}
    assert carve_validation(list(reversed(ids)), groups) == chosen
    assert carve_validation(ids[:5]) <= set(ids[:5]) and len(carve_validation(ids[:5])) == 1


def test_raw_fingerprint_covers_splits(tmp_path):
    write_iemocap_cosmic(tmp_path / "iemocap.pkl")
    a = read_corpus("iemocap", tmp_path)
    b = read_corpus("iemocap", tmp_path, protocol="loso", fold=5)
    assert a.fingerprint() != b.fingerprint()


# --- The real IEMOCAP transcripts (../shared), read in place ---------------------------------


@pytest.mark.shared_data
@needs_shared_iemocap()
def test_real_iemocap_cosmic_pickle():
    corpus = read_corpus("iemocap", IEMOCAP_PKL)
    assert corpus.info["format"] == "iemocap_cosmic"
    assert len(corpus.dialogues) == 151
    assert corpus.info["counts"] == {"train": 5163, "valid": 647, "test": 1623, "total": 7433}
    assert corpus.info["dialogue_counts"] == {"train": 108, "valid": 12, "test": 31}
    labels = Counter(u.label for u in utterances(corpus))
    assert [labels[i] for i in range(6)] == [648, 1084, 1708, 1103, 1041, 1849]
    assert corpus.info["warnings"] == []
    assert {d.session for d in corpus.dialogues if d.split == "test"} == {"Ses05"}
    assert all(u.speaker in ("M", "F") and u.text for u in utterances(corpus))


@pytest.mark.shared_data
@needs_shared_iemocap()
@pytest.mark.parametrize("labels", ["iemocap6", "iemocap4"])
def test_real_iemocap_leave_one_session_out_matches_the_release_counts(labels):
    for fold in (1, 2, 3, 4, 5):
        corpus = read_corpus("iemocap", IEMOCAP_PKL.parent, labels=labels, protocol="loso", fold=fold)
        assert corpus.info["warnings"] == []
        assert corpus.info["counts"]["test"] == _iemocap.SESSION_COUNTS[labels][fold]
        assert {d.session for d in corpus.dialogues if d.split == "test"} == {f"Ses0{fold}"}
        valid = [d for d in corpus.dialogues if d.split == "valid"]
        assert len({d.session for d in valid}) == 4  # every training session gives its share
