"""The field's extractors beyond merbench's first ones: openSMILE, any transformers audio
encoder (Whisper's included), models by hub id, and faces before the vision encoder.

Media are generated (tones, espeak-ng speech when installed, frames with faces drawn in);
models are tiny random configurations saved with ``save_pretrained``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from merbench.data.types import RawUtterance
from merbench.errors import MerbenchError
from merbench.features.audio import OpenSMILE, load_audio
from merbench.features.build import make_extractor
from test_features import raw_corpus, tone, write_wav

opensmile = pytest.importorskip("opensmile")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, str]:
    """Speech-like audio: espeak-ng when installed, else a tone with a moving pitch and pauses."""
    root = tmp_path_factory.mktemp("speech")
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(root / "s.wav"), "I am so happy to see you today"], check=True)
        return {"speech": str(root / "s.wav"), "short": write_wav(root / "short.wav", tone(200, 0.03))}
    t = np.arange(32000) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * (120 + 40 * np.sin(2 * np.pi * 2 * t)) * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    return {"speech": write_wav(root / "s.wav", voiced), "short": write_wav(root / "short.wav", tone(200, 0.03))}


# --- openSMILE --------------------------------------------------------------------------------


def test_opensmile_functionals_and_lld_match_the_library(speech):
    u = RawUtterance("s", "F", 0, audio_path=speech["speech"])
    signal = load_audio(u)
    func = OpenSMILE(feature_set="eGeMAPSv02").extract([u])[0]
    lld = OpenSMILE(feature_set="eGeMAPSv02", level="lld").extract([u])[0]
    assert func.shape == (88,) and func.dtype == np.float32 and np.isfinite(func).all()
    assert lld.ndim == 2 and lld.shape[1] == 25 and abs(lld.shape[0] - len(signal) / 160) < 8  # 100 frames/s
    library = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                              feature_level=opensmile.FeatureLevel.Functionals)
    np.testing.assert_allclose(func, library.process_signal(signal, 16000).to_numpy()[0], rtol=1e-5)
    assert OpenSMILE(level="lld").sequence and not OpenSMILE().sequence


def test_opensmile_pads_short_utterances_and_keeps_order(speech):
    utts = [RawUtterance("s", "F", 0, audio_path=speech["speech"]),
            RawUtterance("t", "F", 0, audio_path=speech["short"])]  # 30 ms: NaN rows without padding
    feats = OpenSMILE(feature_set="IS10").extract(utts)
    assert [f.shape for f in feats] == [(1582,), (1582,)] and all(np.isfinite(f).all() for f in feats)
    assert not np.allclose(feats[0], feats[1])


def test_opensmile_options_are_one_line_errors():
    with pytest.raises(MerbenchError, match=r"feature_set='eGeMAPS2': unknown \(did you mean 'eGeMAPS'") as err:
        make_extractor("audio", {"name": "opensmile", "feature_set": "eGeMAPS2"})
    assert "\n" not in str(err.value) and "ComParE_2016" in str(err.value)
    with pytest.raises(MerbenchError, match="level='frames': expected 'functionals' or 'lld'"):
        OpenSMILE(level="frames")
    with pytest.raises(MerbenchError, match="did you mean 'feature_set'"):
        make_extractor("audio", {"name": "opensmile", "featureset": "IS09"})


def test_opensmile_through_the_cache(media_corpus, tmp_path):
    from merbench.features.build import build_corpus

    corpus = build_corpus(media_corpus, {"audio": {"name": "opensmile", "level": "lld"}},
                          cache_root=tmp_path, progress=False)
    info = corpus.info["features"]["audio"]
    assert info["dim"] == 25 and info["sequence"] and info["config"]["feature_set"] == "eGeMAPSv02"
    assert all(x.ndim == 2 and x.shape[1] == 25 for d in corpus.dialogues for x in d.features["audio"])


@pytest.fixture(scope="module")
def media_corpus(tmp_path_factory):
    from test_features import write_video

    root = tmp_path_factory.mktemp("media")
    media = {"a": write_wav(root / "a.wav", tone(220, 0.5)), "b": write_wav(root / "b.wav", tone(440, 0.9)),
             "long": write_wav(root / "long.wav", tone(330, 2.0)), "video": write_video(root / "clip.mp4")}
    return raw_corpus(media)


def test_cli_extract_opensmile_on_the_raw_iemocap_fixture(tmp_path):
    from fixtures import write_iemocap_raw
    from helpers import cli, one_line_error

    root = tmp_path / "IEMOCAP_full_release"
    write_iemocap_raw(root)
    args = ["extract", "--dataset", "iemocap", "--root", root, "--cache", tmp_path / "cache", "--quiet",
            "--audio", "opensmile"]
    result = cli(*args, "--option", "audio.level=lld", "--option", "audio.feature_set=ComParE_2016")
    assert result.exit_code == 0, result.output
    assert "audio: 65-d frame sequences, extracted by opensmile" in result.output
    recipe_line = result.output.replace("\n", "")  # Rich wraps it
    assert "features: {audio: {name: opensmile, level: lld, feature_set: ComParE_2016}}" in recipe_line
    line = one_line_error(cli(*args, "--option", "audio.feature_set=IS99"))
    assert "opensmile feature_set='IS99': unknown (did you mean 'IS09'?)" in line
    line = one_line_error(cli(*args, "--option", "audio.levels=lld"))
    assert "levels" in line and "did you mean 'level'" in line
    line = one_line_error(cli(*args, "--option", "vision.frames=3"))
    assert "--option vision.frames: no --vision extractor asked for" in line
    assert "expected MODALITY.KEY=VALUE" in one_line_error(cli(*args, "--option", "level=lld"))
    assert "expected MODALITY.KEY=VALUE" in one_line_error(cli(*args, "--option", "audio.level"))


# --- any transformers audio encoder -------------------------------------------------------------

TINY_SSL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory) -> dict[str, str]:
    """Tiny random HuBERT, WavLM, data2vec-audio, wav2vec 2.0 and Whisper dirs (save_pretrained)."""
    import torch
    import transformers as tf

    root = tmp_path_factory.mktemp("encoders")
    torch.manual_seed(0)
    built = {
        "hubert": tf.HubertModel(tf.HubertConfig(**TINY_SSL)),
        "wavlm": tf.WavLMModel(tf.WavLMConfig(**TINY_SSL, num_buckets=16, max_bucket_distance=20)),
        "data2vec": tf.Data2VecAudioModel(tf.Data2VecAudioConfig(
            **{**TINY_SSL, "num_conv_pos_embeddings": 5}, conv_pos_kernel_size=5)),
        "wav2vec2": tf.Wav2Vec2Model(tf.Wav2Vec2Config(**TINY_SSL)),
        "whisper": tf.WhisperModel(tf.WhisperConfig(
            d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
            vocab_size=64, max_target_positions=8, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1)),
    }
    dirs = {}
    for name, net in built.items():
        net.save_pretrained(root / name)
        dirs[name] = str(root / name)
    tf.Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(root / "wavlm")
    tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    return dirs


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> list[RawUtterance]:
    root = tmp_path_factory.mktemp("tones")
    return [RawUtterance("a", "F", 0, audio_path=write_wav(root / "a.wav", tone(220, 0.5))),
            RawUtterance("b", "M", 0, audio_path=write_wav(root / "b.wav", tone(440, 0.9)))]


@pytest.mark.parametrize("family", ["hubert", "wavlm", "data2vec", "wav2vec2"])
def test_encoder_runs_every_ssl_family_with_layers_and_pooling(family, encoders, tones):
    import torch
    from transformers import AutoModel

    from merbench.features.audio import AudioEncoder

    frames = AudioEncoder(model=encoders[family], pool="frames", device="cpu").extract(tones)
    assert [f.shape for f in frames] == [(24, 32), (44, 32)]  # 50 frames/s
    mean = AudioEncoder(model=encoders[family], device="cpu").extract(tones)
    assert np.allclose(mean[1], frames[1].mean(0), atol=1e-5)
    first = AudioEncoder(model=encoders[family], layer=1, pool="frames", device="cpu").extract(tones[:1])[0]
    net = AutoModel.from_pretrained(encoders[family]).eval()
    x = torch.from_numpy(load_audio(tones[0]))[None]
    x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)  # the feature extractor's normalisation
    with torch.no_grad():
        expected = net(x, output_hidden_states=True).hidden_states[1][0].numpy()
    np.testing.assert_allclose(first, expected, atol=1e-4)


def test_encoder_runs_whisper_encoder_in_30s_windows(encoders, tmp_path):
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    from merbench.features.audio import AudioEncoder

    long = RawUtterance("l", "F", 0, audio_path=write_wav(tmp_path / "l.wav", tone(300, 31.0)))
    short = RawUtterance("s", "F", 0, audio_path=write_wav(tmp_path / "s.wav", tone(300, 0.5)))
    extractor = AudioEncoder(model=encoders["whisper"], pool="frames", layer=1, device="cpu")
    feats = extractor.extract([short, long])
    assert [f.shape for f in feats] == [(25, 16), (1500 + 50, 16)]  # ceil(samples / 320) per window
    net = WhisperModel.from_pretrained(encoders["whisper"]).get_encoder().eval()
    mels = WhisperFeatureExtractor(feature_size=80)(load_audio(short), sampling_rate=16000,
                                                    return_tensors="pt")["input_features"]
    with torch.no_grad():
        expected = net(mels, output_hidden_states=True).hidden_states[1][0, :25].numpy()
    np.testing.assert_allclose(feats[0], expected, atol=1e-4)
    mean = AudioEncoder(model=encoders["whisper"], device="cpu").extract([short])[0]
    assert mean.shape == (16,) and extractor.config()["model_type"] == "whisper"


def test_encoder_options_are_one_line_errors(encoders, tmp_path):
    from merbench.features.audio import AudioEncoder

    with pytest.raises(MerbenchError, match=r"encoder layer=3: expected -1 \(last\) or 0\.\.2") as err:
        make_extractor("audio", {"name": "encoder", "model": encoders["whisper"], "layer": 3})
    assert "\n" not in str(err.value)
    with pytest.raises(MerbenchError, match="encoder pool='max': expected 'mean' or 'frames'"):
        AudioEncoder(model=encoders["hubert"], pool="max")
    with pytest.raises(MerbenchError, match="model_type 'whisper'.*expected one of wav2vec2"):
        make_extractor("audio", {"name": "wav2vec2", "model": encoders["whisper"]})


# --- models by hub id -------------------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, encoders):
    """HuggingFace's cache (HF_HOME) holding org/tiny-hubert and org/tiny-bert at COMMIT in
    the hub layout (snapshots/<commit>/, refs/main), offline: resolution needs no network."""
    import huggingface_hub
    from transformers import BertConfig, BertModel, BertTokenizer

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def publish(repo: str) -> tuple[Path, Path]:
        repo_dir = cache / f"models--{repo.replace('/', '--')}"
        (repo_dir / "refs").mkdir(parents=True)
        (repo_dir / "refs" / "main").write_text(COMMIT)
        return repo_dir / "snapshots" / COMMIT, repo_dir

    shutil.copytree(encoders["hubert"], publish("org/tiny-hubert")[0])
    snapshot, _ = publish("org/tiny-bert")
    snapshot.mkdir(parents=True)
    words = "i am so happy sad today".split()
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(snapshot)
    BertModel(BertConfig(vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=16)).save_pretrained(snapshot)
    return cache


def test_hub_id_resolves_offline_from_the_cache_and_keys_on_the_commit(hub_cache, tones, encoders):
    from merbench.features.audio import AudioEncoder
    from merbench.features.text import BertText

    for spec in ("org/tiny-hubert", f"org/tiny-hubert@{COMMIT}", "org/tiny-hubert@main"):
        extractor = AudioEncoder(model=spec, device="cpu")
        assert extractor.config()["model_hash"] == f"hub:org/tiny-hubert@{COMMIT}"
    by_id = extractor.extract(tones)
    by_dir = AudioEncoder(model=encoders["hubert"], device="cpu").extract(tones)
    np.testing.assert_allclose(by_id[0], by_dir[0], atol=1e-6)  # the same weights
    text = BertText(model="org/tiny-bert", device="cpu")
    assert text.config()["model_hash"] == f"hub:org/tiny-bert@{COMMIT}"
    feats = text.extract([RawUtterance("t", "F", 0, text="i am so happy")])
    assert feats[0].shape == (32,)


def test_hub_id_missing_offline_is_one_line_saying_what_to_do(hub_cache):
    from merbench.features.audio import AudioEncoder

    with pytest.raises(MerbenchError) as err:
        AudioEncoder(model="org/absent")
    message = str(err.value)
    assert "\n" not in message and message.startswith("--audio-model org/absent: no such directory, and org/absent")
    assert "HF_HUB_OFFLINE=1" in message and "hf download org/absent" in message
    with pytest.raises(MerbenchError, match="at revision v2 is not in the HuggingFace cache"):
        AudioEncoder(model="org/tiny-hubert@v2")
    weights = hub_cache / "models--org--tiny-hubert" / "snapshots" / COMMIT / "model.safetensors"
    weights.unlink()
    with pytest.raises(MerbenchError, match=f"the weights of org/tiny-hubert@{COMMIT[:12]} are not in"):
        AudioEncoder(model="org/tiny-hubert")
    with pytest.raises(MerbenchError, match="no such directory"):
        AudioEncoder(model="org/bad@@rev")  # not a hub id: a missing directory


def test_finetune_starts_from_a_hub_id_and_records_its_commit(hub_cache, tmp_path):
    from merbench.features import finetune as ft
    from test_finetune import TWO_STEPS, corpus

    folder = ft.finetune(corpus(), "org/tiny-bert", tmp_path / "ft", TWO_STEPS, device="cpu", progress=False)
    record = json.loads((folder / ft.RECORD).read_text())
    assert record["base_model_hash"] == f"hub:org/tiny-bert@{COMMIT}"


def test_features_provenance_records_the_hub_commit(hub_cache, tmp_path, media_corpus):
    """corpus.info["features"] is what result.json's info records per modality."""
    from merbench.features.build import build_corpus

    corpus = build_corpus(media_corpus, {"audio": {"name": "encoder", "model": "org/tiny-hubert@main"}},
                          cache_root=tmp_path / "cache", progress=False)
    info = corpus.info["features"]["audio"]
    assert info["config"]["model_hash"] == f"hub:org/tiny-hubert@{COMMIT}"
    assert info["options"]["model"] == "org/tiny-hubert@main"
    folders = list((tmp_path / "cache").glob("*/audio-encoder-*"))
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert len(folders) == 1 and manifest["config"]["model_hash"] == f"hub:org/tiny-hubert@{COMMIT}"


# --- faces before the vision encoder ----------------------------------------------------------------


def draw_face(img: np.ndarray, cx: int, cy: int, s: int, skin: tuple[int, int, int]) -> None:
    """A frontal cartoon face about 2.6 s high at (cx, cy): skin, brows, eyes, nose, mouth."""
    import cv2

    cv2.ellipse(img, (cx, cy), (s, int(1.3 * s)), 0, 0, 360, skin, -1)
    for dx in (-0.4, 0.4):
        ex, ey = int(cx + dx * s), int(cy - 0.25 * s)
        cv2.ellipse(img, (ex, ey - int(0.22 * s)), (int(0.25 * s), int(0.06 * s)), 0, 0, 360, (60, 40, 30), -1)
        cv2.ellipse(img, (ex, ey), (int(0.18 * s), int(0.09 * s)), 0, 0, 360, (240, 240, 240), -1)
        cv2.circle(img, (ex, ey), int(0.08 * s), (30, 20, 20), -1)
    cv2.ellipse(img, (cx, cy + int(0.15 * s)), (int(0.08 * s), int(0.2 * s)), 0, 0, 360,
                tuple(int(c * 0.8) for c in skin), -1)
    cv2.ellipse(img, (cx, cy + int(0.6 * s)), (int(0.35 * s), int(0.1 * s)), 0, 0, 360, (110, 50, 50), -1)


FACE_FPS = 10
SKIN, RIGHT_SET = (190, 160, 140), (60, 80, 120)


def write_face_video(path: Path) -> str:
    """320x240 at 10 fps, 2 s: 0-1 s two actors (the left face larger; the right half of the
    set bluish), 1-1.5 s an empty set, 1.5-2 s the right actor alone."""
    import av
    from fractions import Fraction

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FACE_FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(2 * FACE_FPS):
            img = np.full((240, 320, 3), 90, np.uint8)
            img[:, 160:] = RIGHT_SET
            if i < 10:
                draw_face(img, 80, 120, 40, SKIN)
            if i < 10 or i >= 15:
                draw_face(img, 240, 120, 30, SKIN)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FACE_FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> str:
    pytest.importorskip("cv2")
    return write_face_video(tmp_path_factory.mktemp("faces") / "faces.mp4")


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory) -> str:
    import torch
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("resnet") / "resnet"
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                             layer_type="basic")).save_pretrained(root)
    return str(root)


def clip(video: str, speaker: str, start: float, end: float, name: str = "u") -> RawUtterance:
    return RawUtterance(name, speaker, 0, video_path=video, video_interval=(start, end))


def test_face_detection_finds_both_actors_and_chooses_the_speakers_side(face_video):
    from merbench.features.vision import FaceCropper, sample_frames

    frame = sample_frames(clip(face_video, "F", 0.0, 1.0), 1, None)[0]  # (240, 320, 3)
    cropper = FaceCropper(64, {"F": "left", "M": "right"})
    boxes = cropper.detect(frame)
    assert len(boxes) == 2
    left, right = sorted(boxes)
    assert left[0] + left[2] / 2 < 160 < right[0] + right[2] / 2 and left[2] > right[2]
    assert cropper.choose(boxes, 320, "F") == left and cropper.choose(boxes, 320, "M") == right
    assert FaceCropper(64, {}).choose(boxes, 320, "F") == left  # no side given: the largest
    crop, _ = cropper(frame, "M")
    assert crop.shape == (64, 64, 3)
    np.testing.assert_allclose(crop[32, 32], SKIN, atol=25)  # a face, centred
    np.testing.assert_allclose(crop[1, 1], RIGHT_SET, atol=25)  # the right actor's side of the set
    empty = sample_frames(clip(face_video, "F", 1.0, 1.5), 1, None)[0]
    assert cropper(empty, "F") == (None, False)


def test_face_crop_rotates_about_the_face_centre():
    import cv2

    from merbench.features.vision import FaceCropper

    img = np.zeros((100, 100, 3), np.uint8)
    cv2.rectangle(img, (40, 48), (60, 52), (255, 255, 255), -1)  # a horizontal bar at the centre
    cropper = FaceCropper(40, {})
    flat = cropper.crop(img, (30, 30, 40, 40), 0.0)
    turned = cropper.crop(img, (30, 30, 40, 40), 90.0)
    assert flat[20, 14:26].mean() > 200 and flat[8:32, 20].mean() < 128
    assert turned[14:26, 20].mean() > 200 and turned[20, 8:32].mean() < 128  # the bar stands up


def test_resnet_face_step_counts_frames_without_a_face(face_video, resnet_dir):
    from merbench.features.vision import ResNet

    utts = [clip(face_video, "F", 0.0, 1.0, "both"), clip(face_video, "M", 1.0, 1.5, "empty"),
            clip(face_video, "F", 0.5, 1.5, "half")]
    seq = ResNet(model=resnet_dir, frames=4, size=32, pool="frames", face=True, device="cpu")
    frames = seq.extract(utts)
    assert [f.shape for f in frames] == [(4, 16), (1, 16), (2, 16)]  # frames with a face; none: one zero row
    assert not frames[1].any()
    mean = ResNet(model=resnet_dir, frames=4, size=32, face=True, device="cpu")
    vectors = mean.extract(utts)
    counts = mean.take_counts()
    assert {k: counts[k] for k in ("frames", "frames_without_face", "utterances_without_face")} == {
        "frames": 12, "frames_without_face": 6, "utterances_without_face": 1}
    np.testing.assert_allclose(vectors[2], frames[2].mean(0), atol=1e-5)  # mean over face frames only
    assert not vectors[1].any() and vectors[0].any()
    whole = ResNet(model=resnet_dir, frames=4, size=32, device="cpu").extract(utts[:1])[0]
    assert not np.allclose(whole, vectors[0])  # the face, not the set
    sided = ResNet(model=resnet_dir, frames=4, size=32, face=True, speaker_side={"F": "left", "M": "right"},
                   device="cpu")
    by_side = sided.extract([clip(face_video, "F", 0.0, 1.0), clip(face_video, "M", 0.0, 1.0),
                             clip(face_video, "F", 1.5, 2.0)])
    np.testing.assert_allclose(by_side[0], vectors[0], atol=1e-5)  # F: left, the larger face
    assert not np.allclose(by_side[0], by_side[1])  # M: the right actor
    assert not by_side[2].any()  # F's side is empty there: no face, though M's is on screen


def test_face_options_are_one_line_errors(resnet_dir):
    with pytest.raises(MerbenchError, match="speaker_side: F: 'middle'; expected left or right"):
        make_extractor("vision", {"name": "resnet", "model": resnet_dir, "face": True,
                                  "speaker_side": {"F": "middle"}})
    with pytest.raises(MerbenchError, match="speaker_side: chooses a face; it needs face: true"):
        make_extractor("vision", {"name": "resnet", "model": resnet_dir, "speaker_side": {"F": "left"}})
    with pytest.raises(MerbenchError, match="features.vision.face: expected bool, got 'yes'"):
        make_extractor("vision", {"name": "resnet", "model": resnet_dir, "face": "yes"})


def test_train_on_opensmile_and_face_features_from_the_raw_iemocap_fixture(tmp_path, resnet_dir):
    """The fixture's videos are flat grey: every frame is counted without a face, in the
    manifest, the CLI's warning and result.json."""
    from fixtures import write_iemocap_raw
    from helpers import cli, write_recipe

    from merbench.recipe import load_recipe
    from merbench.results import read_result
    from merbench.train import train

    root = tmp_path / "IEMOCAP_full_release"
    write_iemocap_raw(root, avi=True)
    vision = {"name": "resnet", "model": resnet_dir, "face": True, "frames": 2, "size": 32,
              "speaker_side": {"F": "left", "M": "right"}}
    recipe = {"dataset": {"name": "iemocap", "root": str(root), "cache": str(tmp_path / "cache"),
                          "modalities": ["audio", "vision"],
                          "features": {"audio": {"name": "opensmile"}, "vision": vision}},
              "model": {"name": "mlp_tiny"}, "train": {"max_epochs": 1, "threads": 1}}
    run_dir = train(load_recipe(write_recipe(tmp_path / "r.yaml", recipe)), tmp_path / "runs", progress=False)
    res = read_result(run_dir)
    assert res["status"] == "ok" and res["dataset"]["dims"] == {"audio": 88, "vision": 16}
    counts = res["dataset"]["info"]["features"]["vision"]["counts"]
    n = sum(res["dataset"]["info"]["counts"].values())
    assert counts["frames"] == 2 * n and counts["frames_without_face"] == 2 * n
    assert counts["utterances_without_face"] == n
    result = cli("extract", "--dataset", "iemocap", "--root", root, "--cache", tmp_path / "cache", "--quiet",
                 "--vision", "resnet", "--vision-model", resnet_dir, "--face", "--frames", "2",
                 "--option", "vision.size=32", "--option", "vision.speaker_side={F: left, M: right}")
    assert result.exit_code == 0, result.output
    assert f"warning: vision: {2 * n} of {2 * n} frames had no face (left out); {n} utterances" in result.output
