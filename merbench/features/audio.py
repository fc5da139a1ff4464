"""Audio extractors: MFCC frame sequences (HFF), openSMILE, and pretrained speech encoders.

``mfcc`` follows HFF's speech pipeline (Eq. 1-5: STFT, mel filter bank, log, DCT) computed
batched with torch and pinned to ``librosa.feature.mfcc`` by a test. ``opensmile`` runs
audEERING's openSMILE sets (eGeMAPS, ComParE, IS09-IS13). ``encoder`` runs any transformers
audio encoder (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, Whisper's encoder);
``wav2vec2`` is the same for the wav2vec 2.0 family. Audio is read with soundfile (wav, flac, ogg), or
PyAV for containers (mp4, avi), mixed to mono, cut to the utterance's interval when the
release gives one, and resampled to 16 kHz with soxr.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from merbench.data.types import RawUtterance
from merbench.device import resolve_device
from merbench.errors import MerbenchError
from merbench.features._common import (
    Extractor, Progress, check_model_dir, length_batches, load_pretrained, model_config,
    model_dir_hash, require, versions,
)
from merbench.optional import import_optional
from merbench.registry import EXTRACTORS, closest

SAMPLE_RATE = 16000


def load_audio(utterance: RawUtterance, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The utterance's audio as float32 mono ``(n,)`` at ``sample_rate``, cut to its interval."""
    path = require(utterance, "audio_path", "audio")
    if not os.path.isfile(path):
        raise MerbenchError(f"utterance {utterance.id}: audio_path {path} does not exist")
    interval = utterance.audio_interval
    signal, native = _read_soundfile(path, interval)
    if signal is None:  # a container libsndfile does not read (MELD's mp4, IEMOCAP's avi)
        signal, native = _read_pyav(path, interval, utterance.id)
    if signal.size == 0:
        raise MerbenchError(f"utterance {utterance.id}: no audio in {path} for interval {interval}")
    if native != sample_rate:
        librosa = import_optional("librosa", "resampling audio")
        signal = librosa.resample(signal, orig_sr=native, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(signal, dtype=np.float32)


def _read_soundfile(path: str, interval: tuple[float, float] | None) -> tuple[np.ndarray | None, int]:
    try:
        import soundfile
    except ImportError:
        return None, 0
    try:
        with soundfile.SoundFile(path) as f:
            native = f.samplerate
            start, stop = 0, f.frames
            if interval is not None:
                start = min(f.frames, int(round(interval[0] * native)))
                stop = min(f.frames, int(round(interval[1] * native)))
            f.seek(start)
            data = f.read(max(0, stop - start), dtype="float32", always_2d=True)  # (n, channels)
    except soundfile.LibsndfileError:
        return None, 0
    return data.mean(axis=1), native


def _read_pyav(path: str, interval: tuple[float, float] | None,
               utterance: str) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV (FFmpeg's libraries; no ffmpeg binary needed)."""
    av = import_optional("av", "reading audio from a video container")

    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise MerbenchError(f"utterance {utterance}: {path} is neither audio soundfile reads nor "
                            f"a container PyAV reads ({err})") from None
    with container:
        if not container.streams.audio:
            raise MerbenchError(f"utterance {utterance}: {path} has no audio stream")
        stream = container.streams.audio[0]
        start, end = (float(interval[0]), float(interval[1])) if interval else (0.0, np.inf)
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        first_time, native, pieces = None, 0, []
        for frame in container.decode(stream):
            time = frame.time if frame.time is not None else 0.0
            if time >= end:
                break
            first_time = time if first_time is None else first_time
            native = frame.sample_rate
            pieces.append(_mono_float(frame))
    if not pieces:
        return np.zeros(0, np.float32), native or SAMPLE_RATE
    signal = np.concatenate(pieces)
    # Decoding starts at the packet at or before ``start``: cut to the exact samples.
    lo = max(0, int(round((start - first_time) * native)))
    hi = len(signal) if end == np.inf else max(lo, int(round((end - first_time) * native)))
    return signal[lo:hi], native


def _mono_float(frame) -> np.ndarray:
    """One decoded audio frame as float32 mono ``(n,)`` (the mean of its channels)."""
    data = frame.to_ndarray()  # planar (channels, n); packed (1, n * channels)
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T  # (channels, n)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    return data.astype(np.float32).mean(axis=0)


def load_batch(utterances: Sequence[RawUtterance]) -> list[np.ndarray]:
    return [load_audio(u) for u in utterances]


class MFCC(Extractor):
    """MFCC frame sequences, HFF's speech input (Eq. 1-5): ``(T, n_mfcc)`` per utterance.

    Equal to ``librosa.feature.mfcc(y, sr=16000, n_mfcc, n_fft, hop_length, n_mels, htk=True)``
    (Hann window, centred frames, power spectrum, dB with top_db 80, orthonormal DCT-II),
    computed for a batch of utterances at once. T = 1 + samples // hop_length (100 frames/s).
    """

    name = "mfcc"
    modality = "audio"
    sequence = True

    # Paper: HFF gives no frame sizes; merbench uses the speech convention of 25 ms windows
    # every 10 ms (n_fft 400, hop 160 at 16 kHz) rather than librosa's music defaults
    # (2048 / 512, 93 ms windows). The paper's M (mel bands) is not given: 64.
    def __init__(self, *, n_mfcc: int = 40, n_mels: int = 64, n_fft: int = 400, hop_length: int = 160,
                 htk: bool = True, top_db: float = 80.0, batch_size: int = 32,
                 device: str | None = None) -> None:
        if not 0 < n_mfcc <= n_mels:
            raise MerbenchError(f"mfcc n_mfcc={n_mfcc}: expected 1..n_mels ({n_mels})")
        if not 0 < hop_length <= n_fft:
            raise MerbenchError(f"mfcc hop_length={hop_length}: expected 1..n_fft ({n_fft})")
        self.n_mfcc, self.n_mels, self.n_fft, self.hop_length = n_mfcc, n_mels, n_fft, hop_length
        # Paper: Eq. 2 is the HTK mel scale 2595 log10(1 + f / 700); librosa's default is
        # Slaney's. merbench follows the paper (htk=True).
        self.htk, self.top_db, self.batch_size = htk, float(top_db), batch_size
        self.device = resolve_device(device)
        self._basis: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "sample_rate": SAMPLE_RATE, "n_mfcc": self.n_mfcc,
            "n_mels": self.n_mels, "n_fft": self.n_fft, "hop_length": self.hop_length,
            "window": "hann", "center": True, "htk": self.htk, "top_db": self.top_db,
            "log": "power_to_db", "dct": "type 2 ortho",
            "versions": versions("numpy", "torch", "librosa", "soundfile", "soxr", "av"),
        }

    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._basis is None:
            import scipy.fft

            librosa = import_optional("librosa", "the MFCC extractor")

            mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=self.n_fft, n_mels=self.n_mels, htk=self.htk)
            # Rows of the orthonormal DCT-II matrix, as scipy.fft.dct(type=2, norm="ortho").
            dct = scipy.fft.dct(np.eye(self.n_mels), type=2, norm="ortho", axis=0)[: self.n_mfcc]
            window = torch.hann_window(self.n_fft, periodic=True)
            self._basis = tuple(torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)
                                for a in (mel, dct, window))
        return self._basis

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        signals = load_batch(utterances)
        out: list[np.ndarray | None] = [None] * len(signals)
        for idx in length_batches([len(s) for s in signals], self.batch_size):
            for i, feats in zip(idx, self.compute([signals[i] for i in idx])):
                out[i] = feats
            if progress:
                progress(len(idx))
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def compute(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """MFCCs of 16 kHz signals: per signal ``(1 + len // hop_length, n_mfcc)`` float32."""
        mel, dct, window = self.load()
        lengths = torch.tensor([len(s) for s in signals])
        x = torch.zeros(len(signals), int(lengths.max()))  # (B, N), zero-padded like centre padding
        for i, s in enumerate(signals):
            x[i, : len(s)] = torch.from_numpy(s)
        x = x.to(self.device)
        spec = torch.stft(x, self.n_fft, self.hop_length, window=window, center=True,
                          pad_mode="constant", return_complex=True)  # (B, F, T)   Eq. 1
        power = spec.real.square() + spec.imag.square()
        energy = mel @ power  # (B, M, T)   Eq. 3
        db = 10.0 * torch.log10(energy.clamp(min=1e-10))  # Eq. 4 as librosa.power_to_db, ref 1
        frames = (1 + lengths // self.hop_length).to(self.device)  # (B,)
        valid = torch.arange(db.shape[-1], device=self.device)[None, :] < frames[:, None]  # (B, T)
        # top_db clips each utterance at its own loudest valid value minus top_db.
        peak = db.masked_fill(~valid[:, None, :], -torch.inf).amax(dim=(1, 2))  # (B,)
        db = torch.maximum(db, (peak - self.top_db)[:, None, None])
        coeffs = (dct @ db).transpose(1, 2).cpu().numpy()  # (B, T, n_mfcc)   Eq. 5
        return [np.ascontiguousarray(coeffs[i, : int(frames[i])]) for i in range(len(signals))]


WAV2VEC2_TYPES = ("wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio",
                  "unispeech", "unispeech-sat")
# Every model_type the ``encoder`` extractor runs: the wav2vec 2.0 family and its relatives
# (raw waveform in, a convolutional front end at 50 frames/s), and Whisper's encoder.
ENCODER_TYPES = WAV2VEC2_TYPES + ("sew", "sew-d", "whisper")
# wav2vec 2.0's convolutional front end needs one 25 ms receptive field.
MIN_SAMPLES = 400
# Whisper reads 30 s windows of log-mel frames (100 per second) and gives 1500 frames per window.
WHISPER_WINDOW = 30 * SAMPLE_RATE
WHISPER_HOP = 320  # samples per encoder frame (50 frames/s)


class AudioEncoder(Extractor):
    """Any transformers audio encoder (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, UniSpeech,
    SEW, or Whisper's encoder), a local directory or a hub id: the mean over time of one layer,
    ``(D,)``, or its frames ``(T, D)`` (``pool="frames"``, 50 frames/s)."""

    name = "encoder"
    modality = "audio"
    model_types = ENCODER_TYPES

    def __init__(self, *, model: str | None = None, layer: int = -1, pool: str = "mean",
                 batch_size: int = 8, device: str | None = None) -> None:
        if pool not in ("mean", "frames"):
            raise MerbenchError(f"{self.name} pool={pool!r}: expected 'mean' or 'frames'")
        self.root = check_model_dir(model, "--audio-model", self.model_types)
        self.model_hash = model_dir_hash(self.root)
        config = model_config(self.root)
        self.model_type = config["model_type"]
        self.whisper = self.model_type == "whisper"
        layers = int(config.get("encoder_layers" if self.whisper else "num_hidden_layers", 0))
        if not -1 <= layer <= layers:
            raise MerbenchError(f"{self.name} layer={layer}: expected -1 (last) or 0..{layers} "
                                f"(0 = input to the transformer) for {model}")
        self.layer, self.pool, self.batch_size = layer, pool, batch_size
        self.sequence = pool == "frames"
        self.device = resolve_device(device)
        self._loaded: tuple[Any, Any] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "model_hash": self.model_hash, "model_type": self.model_type,
            "layer": self.layer, "pool": self.pool, "sample_rate": SAMPLE_RATE,
            "min_samples": MIN_SAMPLES, "whisper_window": WHISPER_WINDOW if self.whisper else None,
            "versions": versions("numpy", "torch", "transformers", "soundfile", "soxr", "av"),
        }

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            transformers = import_optional("transformers", f"the {self.name} extractor")
            if (self.root / "preprocessor_config.json").is_file():
                processor = load_pretrained("FeatureExtractor", self.root)
            elif self.whisper:
                processor = transformers.WhisperFeatureExtractor(
                    feature_size=model_config(self.root).get("num_mel_bins", 80))
            else:
                processor = transformers.Wav2Vec2FeatureExtractor()  # zero mean, unit variance per utterance
            net = load_pretrained("Model", self.root)
            if self.whisper:
                net = net.get_encoder()  # the decoder is never run
            self._loaded = (processor, net.eval().to(self.device))
        return self._loaded

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        processor, net = self.load()
        signals = [np.pad(s, (0, max(0, MIN_SAMPLES - len(s)))) for s in load_batch(utterances)]
        if self.whisper:
            # Every window is padded to 30 s and the encoder takes no mask: batching changes nothing.
            batch_size, forward = self.batch_size, self._forward_whisper
        else:
            # Models with group norm in the front end (wav2vec2-base) see the padding of a batch:
            # their preprocessor says return_attention_mask=False, and they run one utterance at a
            # time so an utterance's features never depend on its batch mates.
            batch_size = self.batch_size if processor.return_attention_mask else 1
            forward = self._forward
        out: list[np.ndarray | None] = [None] * len(signals)
        for idx in length_batches([len(s) for s in signals], batch_size):
            for i, feats in zip(idx, forward(processor, net, [signals[i] for i in idx])):
                out[i] = feats
            if progress:
                progress(len(idx))
        return out  # type: ignore[return-value]

    def _hidden(self, result: Any) -> Any:
        return result.last_hidden_state if self.layer == -1 else result.hidden_states[self.layer]

    @torch.inference_mode()
    def _forward(self, processor: Any, net: Any, signals: list[np.ndarray]) -> list[np.ndarray]:
        inputs = processor(signals, sampling_rate=SAMPLE_RATE, padding=True,
                           return_attention_mask=True, return_tensors="pt")
        values = inputs["input_values"].to(self.device)  # (B, N)
        mask = inputs["attention_mask"].to(self.device)  # (B, N)
        result = net(values, attention_mask=mask if len(signals) > 1 else None,
                     output_hidden_states=self.layer != -1)
        hidden = self._hidden(result)  # (B, T, D)
        frames = net._get_feat_extract_output_lengths(mask.sum(-1)).tolist()  # valid frames per utterance
        return [self._pool(hidden[i, : int(t)]) for i, t in enumerate(frames)]

    @torch.inference_mode()
    def _forward_whisper(self, processor: Any, net: Any, signals: list[np.ndarray]) -> list[np.ndarray]:
        # Paper: Whisper's encoder reads 30 s windows; MER work that uses it (MERBench) pools
        # its states over the utterance. merbench cuts a longer utterance into 30 s windows,
        # keeps each window's frames that cover speech (not the window's padding) and
        # pools over all of them.
        pieces, owner = [], []
        for i, s in enumerate(signals):
            for start in range(0, len(s), WHISPER_WINDOW):
                pieces.append(s[start:start + WHISPER_WINDOW])
                owner.append(i)
        inputs = processor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        result = net(inputs["input_features"].to(self.device),  # (P, mels, 3000)
                     output_hidden_states=self.layer != -1)
        hidden = self._hidden(result)  # (P, 1500, D)
        kept: list[list[torch.Tensor]] = [[] for _ in signals]
        for p, (piece, i) in enumerate(zip(pieces, owner)):
            frames = min(hidden.shape[1], -(-len(piece) // WHISPER_HOP))  # ceil: frames holding speech
            kept[i].append(hidden[p, :frames])
        return [self._pool(torch.cat(k)) for k in kept]

    def _pool(self, h: torch.Tensor) -> np.ndarray:
        h = h.float()  # (T, D)
        return (h if self.sequence else h.mean(0)).cpu().numpy()


class Wav2Vec2(AudioEncoder):
    """``encoder`` restricted to the wav2vec 2.0 family (wav2vec 2.0, HuBERT, WavLM,
    data2vec-audio, UniSpeech), under the name merbench first gave it; its cache key is
    unchanged."""

    name = "wav2vec2"
    model_types = WAV2VEC2_TYPES

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "model_hash": self.model_hash, "layer": self.layer,
            "pool": self.pool, "sample_rate": SAMPLE_RATE, "min_samples": MIN_SAMPLES,
            "versions": versions("numpy", "torch", "transformers", "soundfile", "soxr", "av"),
        }


# openSMILE's feature sets (opensmile.FeatureSet) and merbench's names for its levels.
OPENSMILE_LEVELS = {"functionals": "Functionals", "lld": "LowLevelDescriptors"}
# The shortest signal every packaged set computes on: shorter ones came back as NaN rows
# (IS10-IS12 need 75 ms, ComParE and eGeMAPS 62.5 ms), so they are zero-padded to 100 ms.
OPENSMILE_MIN_SAMPLES = 1600


class OpenSMILE(Extractor):
    """openSMILE (audEERING's ``opensmile`` package) on the 16 kHz utterance: one vector of
    functionals ``(D,)`` (eGeMAPSv02: 88, ComParE_2016: 6373, IS09: 384, IS10: 1582), or the
    low-level descriptors as frames ``(T, D)`` (``level="lld"``, 100 frames/s; eGeMAPSv02: 25,
    ComParE_2016: 65) for the models that take sequences."""

    name = "opensmile"
    modality = "audio"

    # Paper: the MER releases run SMILExtract on the file at its own rate; merbench reads every
    # utterance as the other extractors do (mono, cut to its interval, 16 kHz), so an
    # utterance's features do not depend on how its release stored it.
    def __init__(self, *, feature_set: str = "eGeMAPSv02", level: str = "functionals",
                 device: str | None = None) -> None:
        opensmile = import_optional("opensmile", "the opensmile extractor")
        sets = [f.name for f in opensmile.FeatureSet]
        if feature_set not in sets:
            raise MerbenchError(f"opensmile feature_set={feature_set!r}: unknown"
                                f"{closest(feature_set, sets)}; expected one of {', '.join(sets)}")
        if level not in OPENSMILE_LEVELS:
            raise MerbenchError(f"opensmile level={level!r}: expected "
                                f"{' or '.join(repr(k) for k in OPENSMILE_LEVELS)}")
        self.feature_set, self.level = feature_set, level
        self.sequence = level == "lld"
        self._smile: Any = None  # openSMILE runs on the CPU: ``device`` is accepted and unused

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "feature_set": self.feature_set, "level": self.level,
            "sample_rate": SAMPLE_RATE, "min_samples": OPENSMILE_MIN_SAMPLES,
            "versions": versions("numpy", "opensmile", "soundfile", "soxr", "av"),
        }

    def load(self) -> Any:
        if self._smile is None:
            opensmile = import_optional("opensmile", "the opensmile extractor")
            self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet[self.feature_set],
                                          feature_level=opensmile.FeatureLevel[OPENSMILE_LEVELS[self.level]])
        return self._smile

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        smile = self.load()
        out = []
        for utterance in utterances:
            signal = load_audio(utterance)
            signal = np.pad(signal, (0, max(0, OPENSMILE_MIN_SAMPLES - len(signal))))
            feats = smile.process_signal(signal, SAMPLE_RATE).to_numpy(np.float32)  # (T, D) or (1, D)
            if not np.isfinite(feats).all():
                raise MerbenchError(f"utterance {utterance.id}: openSMILE {self.feature_set} "
                                    f"{self.level} gave NaN or infinite values")
            out.append(np.ascontiguousarray(feats if self.sequence else feats[0]))
            if progress:
                progress(1)
        return out


EXTRACTORS.register("mfcc", MFCC, modality="audio")
EXTRACTORS.register("wav2vec2", Wav2Vec2, modality="audio")
EXTRACTORS.register("encoder", AudioEncoder, modality="audio")
EXTRACTORS.register("opensmile", OpenSMILE, modality="audio")
