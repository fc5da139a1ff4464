"""Extraction speed: merbench's MiniLM vs sentence-transformers' encode, MFCC and openSMILE on
tones, audio encoders at their real sizes, and the vision face step on drawn faces.

    python benchmarks/extract_speed.py --threads 1 --out benchmarks/out/extract_speed.json
    python benchmarks/extract_speed.py --only opensmile,encoder,face --threads 2

Text: ``--sentences`` generated sentences of 2-60 words (seeded; no corpus file), encoded by
merbench's ``minilm`` extractor and by ``SentenceTransformer(<same dir>).encode`` with the
model already loaded, alternating, best of ``--repeats``. Audio: ``--tones`` 3-second tones
written as 16 kHz wavs, through the ``mfcc`` extractor (reading the wavs included).
openSMILE: the same tones through ``opensmile`` (eGeMAPSv02 and ComParE_2016 functionals,
eGeMAPSv02 LLDs). Encoders: HuBERT-base and Whisper-base's encoder built from their published
sizes with random weights (no hub is reached; the cost does not depend on the weights) on
3-second tones. Face: ``--clips`` 3-second 720x480 clips (IEMOCAP's frame size) with two
drawn faces, 8 frames per utterance, through a ResNet-18-sized random ``resnet`` with and
without ``face: true``. Each reports utterances per second and seconds per hour of media.
Writes one JSON file; the figures quoted in docs come from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import torch

from merbench.data.types import RawUtterance
from merbench.features._common import versions
from merbench.features.audio import MFCC
from merbench.features.text import MiniLM

WORDS = ("i you we they it this that the a my your really so very not just well okay yeah "
         "know think feel want need said told going come back home work today tomorrow never "
         "always again happy sad angry tired sorry great terrible fine good bad love hate "
         "believe remember forget understand wait listen look money time people friend mother "
         "husband wife job car house night morning because but and or if when why what how").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(10), 0.7, n).astype(int), 2, 60)  # dialogue-like lengths
    out = []
    for length in lengths:
        words = rng.choice(WORDS, length)
        text = " ".join(words).capitalize()
        out.append(text + rng.choice([".", "?", "!", "..."]))
    return out


def rates(fn, count: int, repeats: int) -> dict[str, float]:
    """Best utterances per wall second, and per CPU second of this process (all threads): the
    CPU figure is the steadier one on a machine shared with other jobs."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"utt_per_s": count / min(wall), "utt_per_cpu_s": count / min(cpu)}


def text_speed(n: int, repeats: int) -> dict:
    from sentence_transformers import SentenceTransformer

    texts = sentences(n)
    utterances = [RawUtterance(str(i), "A", 0, text=t) for i, t in enumerate(texts)]
    ours = MiniLM(device="cpu")
    ours.extract(utterances[:16])  # load + warm up
    reference = SentenceTransformer(str(ours.root), device="cpu")
    reference.encode(texts[:16])
    large = MiniLM(batch_size=64, device="cpu")
    large.load()
    runs = {  # both at their default batch size 32, and merbench at 64
        "merbench_bs32": lambda: ours.extract(utterances),
        "merbench_bs64": lambda: large.extract(utterances),
        "sentence_transformers_bs32": lambda: reference.encode(texts, batch_size=32),
    }
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(repeats):  # alternate, so machine load hits all alike
        for name, fn in runs.items():
            measured[name].append(rates(fn, n, 1))
    best = {name: {k: max(r[k] for r in runs_) for k in runs_[0]} for name, runs_ in measured.items()}
    same = np.stack([f[384:] for f in ours.extract(utterances[:64])])
    same /= np.linalg.norm(same, axis=1, keepdims=True)
    return {
        "sentences": n, "mean_words": float(np.mean([len(t.split()) for t in texts])),
        "best": best, "all_runs": measured,
        "max_abs_diff_mean_half_vs_st": float(np.abs(same - reference.encode(texts[:64])).max()),
    }


def write_wav(path: Path, signal: np.ndarray, sr: int) -> Path:
    """A mono 16-bit WAV of ``signal`` (in [-1, 1])."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((signal * 32767).astype("<i2").tobytes())
    return path


def mfcc_speed(n: int, repeats: int) -> dict:
    sr, seconds = 16000, 3.0
    t = np.arange(int(sr * seconds)) / sr
    with tempfile.TemporaryDirectory() as tmp:
        utterances = []
        for i in range(n):
            path = write_wav(Path(tmp) / f"tone{i}.wav", 0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t), sr)
            utterances.append(RawUtterance(str(i), "A", 0, audio_path=str(path)))
        extractor = MFCC(device="cpu")
        extractor.extract(utterances[:4])
        with_reading = rates(lambda: extractor.extract(utterances), n, repeats)
        signals = [(0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t)).astype(np.float32) for i in range(n)]
        compute = rates(lambda: [extractor.compute(signals[k:k + 32]) for k in range(0, n, 32)],
                        n, repeats)
    return {"tones": n, "seconds_each": seconds, "with_wav_reading": with_reading,
            "compute_only": compute, "config": extractor.config()}


def write_tones(folder: Path, n: int, seconds: float = 3.0, sr: int = 16000) -> list[RawUtterance]:
    t = np.arange(int(sr * seconds)) / sr
    utterances = []
    for i in range(n):
        tone = 0.3 * np.sin(2 * np.pi * (150 + 5 * i) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        path = write_wav(folder / f"tone{i}.wav", tone, sr)
        utterances.append(RawUtterance(str(i), "A", 0, audio_path=str(path)))
    return utterances


def per_hour(rate: dict[str, float], seconds: float) -> dict[str, float]:
    """Utterances per second -> seconds of work per hour of media."""
    return {**rate, "s_per_media_hour": 3600 / seconds / rate["utt_per_s"]}


def opensmile_speed(n: int, repeats: int) -> dict:
    from merbench.features.audio import OpenSMILE

    out = {"tones": n, "seconds_each": 3.0}
    with tempfile.TemporaryDirectory() as tmp:
        utterances = write_tones(Path(tmp), n)
        for name, options in (("eGeMAPSv02_functionals", {}), ("ComParE_2016_functionals", {"feature_set": "ComParE_2016"}),
                              ("eGeMAPSv02_lld", {"level": "lld"})):
            extractor = OpenSMILE(**options)
            extractor.extract(utterances[:2])
            out[name] = per_hour(rates(lambda: extractor.extract(utterances), n, repeats), 3.0)
    out["versions"] = versions("opensmile")
    return out


def encoder_speed(n: int, repeats: int) -> dict:
    import transformers as tf

    from merbench.features.audio import AudioEncoder

    out = {"tones": n, "seconds_each": 3.0, "weights": "random (published sizes; cost does not depend on them)"}
    with tempfile.TemporaryDirectory() as tmp:
        utterances = write_tones(Path(tmp), n)
        models = {"hubert_base": (tf.HubertModel, tf.HubertConfig(), tf.Wav2Vec2FeatureExtractor(return_attention_mask=True)),
                  "whisper_base_encoder": (tf.WhisperModel, tf.WhisperConfig(  # openai/whisper-base's sizes
                      d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                      decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048), tf.WhisperFeatureExtractor())}
        for name, (cls, config, processor) in models.items():
            torch.manual_seed(0)
            folder = Path(tmp) / name
            cls(config).save_pretrained(folder)
            processor.save_pretrained(folder)
            extractor = AudioEncoder(model=str(folder), device="cpu")
            extractor.extract(utterances[:2])
            out[name] = per_hour(rates(lambda: extractor.extract(utterances), n, repeats), 3.0)
    return out


def face_speed(n: int, repeats: int) -> dict:
    import cv2
    from fractions import Fraction

    import av
    import transformers as tf

    from merbench.features.vision import ResNet

    seconds, fps, width, height = 3.0, 25, 720, 480

    def face(img: np.ndarray, cx: int, cy: int, s: int) -> None:  # as tests/test_extractors.py draws
        cv2.ellipse(img, (cx, cy), (s, int(1.3 * s)), 0, 0, 360, (190, 160, 140), -1)
        for dx in (-0.4, 0.4):
            ex, ey = int(cx + dx * s), int(cy - 0.25 * s)
            cv2.ellipse(img, (ex, ey - int(0.22 * s)), (int(0.25 * s), int(0.06 * s)), 0, 0, 360, (60, 40, 30), -1)
            cv2.ellipse(img, (ex, ey), (int(0.18 * s), int(0.09 * s)), 0, 0, 360, (240, 240, 240), -1)
            cv2.circle(img, (ex, ey), int(0.08 * s), (30, 20, 20), -1)
        cv2.ellipse(img, (cx, cy + int(0.15 * s)), (int(0.08 * s), int(0.2 * s)), 0, 0, 360, (152, 128, 112), -1)
        cv2.ellipse(img, (cx, cy + int(0.6 * s)), (int(0.35 * s), int(0.1 * s)), 0, 0, 360, (110, 50, 50), -1)

    with tempfile.TemporaryDirectory() as tmp:
        utterances = []
        for i in range(n):
            path = Path(tmp) / f"clip{i}.mp4"
            with av.open(str(path), "w") as container:
                stream = container.add_stream("mpeg4", rate=fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                for k in range(int(seconds * fps)):
                    img = np.full((height, width, 3), 90, np.uint8)
                    face(img, 180 + k % 5, 240, 70)
                    face(img, 540, 240 - k % 5, 60)
                    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                    frame.pts, frame.time_base = k, Fraction(1, fps)
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
            utterances.append(RawUtterance(str(i), "F", 0, video_path=str(path)))
        torch.manual_seed(0)
        folder = Path(tmp) / "resnet18"
        tf.ResNetModel(tf.ResNetConfig(layer_type="basic", depths=[2, 2, 2, 2],  # microsoft/resnet-18's sizes
                                       hidden_sizes=[64, 128, 256, 512])).save_pretrained(folder)
        out: dict = {"clips": n, "seconds_each": seconds, "frames_per_utterance": 8, "frame": f"{width}x{height}"}
        for name, options in (("whole_frame", {}), ("face", {"face": True, "speaker_side": {"F": "left"}})):
            extractor = ResNet(model=str(folder), device="cpu", **options)
            extractor.extract(utterances[:1])
            out[name] = per_hour(rates(lambda: extractor.extract(utterances), n, repeats), seconds)
            out[name]["counts"] = extractor.take_counts()
    out["versions"] = versions("opencv-python-headless", "av")
    return out


SECTIONS = ("text", "mfcc", "opensmile", "encoder", "face")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/extract_speed.json")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--tones", type=int, default=500)
    parser.add_argument("--encoder-tones", type=int, default=16)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    if only - set(SECTIONS):
        parser.error(f"--only {args.only}: expected names among {', '.join(SECTIONS)}")
    result = {
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "load_average_at_start": os.getloadavg(),
                    "versions": versions("torch", "transformers", "sentence-transformers", "librosa")},
        "command": "python benchmarks/extract_speed.py " + " ".join(sys.argv[1:]),
    }
    runs = {"text": ("text_minilm", lambda: text_speed(args.sentences, args.repeats)),
            "mfcc": ("audio_mfcc", lambda: mfcc_speed(args.tones, args.repeats)),
            "opensmile": ("audio_opensmile", lambda: opensmile_speed(args.tones, args.repeats)),
            "encoder": ("audio_encoder", lambda: encoder_speed(args.encoder_tones, args.repeats)),
            "face": ("vision_face", lambda: face_speed(args.clips, args.repeats))}
    for section in SECTIONS:
        if section in only:
            key, run = runs[section]
            result[key] = run()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
