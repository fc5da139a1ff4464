"""Vision extractor: a local ResNet over frames sampled from the utterance's video (HFF Eq. 13-15).

Frames are decoded with PyAV, ``frames`` of them at the centres of equal parts of the
utterance's interval, resized to ``size`` x ``size`` and normalised with ImageNet's mean and
std. Each frame is pooled by global average pooling (the model's ``pooler_output``); the
utterance is the mean over its frames, or the frames as a sequence (``pool="frames"``).
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
    Extractor, Progress, check_model_dir, load_pretrained, model_dir_hash, require,
    versions,
)
from merbench.optional import import_optional
from merbench.registry import EXTRACTORS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Image models whose AutoModel output has a globally pooled ``pooler_output``.
VISION_TYPES = ("resnet", "regnet", "convnext", "convnextv2")


def sample_frames(utterance: RawUtterance, count: int, size: int) -> np.ndarray:
    """``count`` RGB frames ``(count, size, size, 3)`` uint8, evenly spaced in the interval.

    Frame k is the one on screen at ``start + (k + 0.5) * (end - start) / count``.
    """
    av = import_optional("av", "reading video frames")
    path = require(utterance, "video_path", "resnet")
    if not os.path.isfile(path):
        raise MerbenchError(f"utterance {utterance.id}: video_path {path} does not exist")
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise MerbenchError(f"utterance {utterance.id}: {path} is not a video PyAV can "
                            f"read ({err})") from None
    with container:
        if not container.streams.video:
            raise MerbenchError(f"utterance {utterance.id}: {path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start, end = utterance.video_interval or (0.0, _duration(container, stream))
        targets = start + (np.arange(count) + 0.5) * (float(end) - float(start)) / count
        if start > 0:
            # Lands on the keyframe at or before ``start``; decoding walks forward from there.
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        picked: list[np.ndarray] = []
        previous = None
        for frame in container.decode(stream):
            time = frame.time if frame.time is not None else 0.0
            while len(picked) < count and time > targets[len(picked)]:
                picked.append(_rgb(previous if previous is not None else frame, size))
            if len(picked) == count:
                break
            previous = frame
        if previous is None and not picked:
            raise MerbenchError(f"utterance {utterance.id}: no video frames in {path} "
                                f"for interval {utterance.video_interval}")
        while len(picked) < count:  # targets after the last frame: it stays on screen
            picked.append(_rgb(previous, size))
    return np.stack(picked)


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # microseconds (av.time_base)
    last = 0.0
    for packet in container.demux(stream):  # no header duration: read packet times
        if packet.pts is not None:
            last = max(last, float((packet.pts + (packet.duration or 0)) * stream.time_base))
    container.seek(0)
    return last


def _rgb(frame: Any, size: int) -> np.ndarray:
    # Paper: HFF only says frames are resized and normalised; merbench squashes the whole
    # frame to size x size (bilinear, swscale), keeping every speaker in view, no crop.
    return frame.to_ndarray(width=size, height=size, format="rgb24")  # (size, size, 3)


class ResNet(Extractor):
    """A local ResNet (transformers ``ResNetModel``) over sampled frames: ``(C,)`` per utterance,
    the mean of the frames' pooled features, or ``(frames, C)`` with ``pool="frames"``."""

    name = "resnet"
    modality = "vision"

    def __init__(self, *, model: str | None = None, frames: int = 8, size: int = 224,
                 pool: str = "mean", batch_size: int = 8, device: str | None = None) -> None:
        if pool not in ("mean", "frames"):
            raise MerbenchError(f"resnet pool={pool!r}: expected 'mean' or 'frames'")
        if frames < 1 or size < 32:
            raise MerbenchError(f"resnet frames={frames}, size={size}: expected frames >= 1, size >= 32")
        self.root = check_model_dir(model, "--vision-model", VISION_TYPES)
        self.model_hash = model_dir_hash(self.root)
        self.frames, self.size, self.pool, self.batch_size = frames, size, pool, batch_size
        self.sequence = pool == "frames"
        self.device = resolve_device(device)
        self._net: Any = None

    def config(self) -> dict[str, Any]:
        return {
            "extractor": self.name, "model_hash": self.model_hash, "frames": self.frames,
            "size": self.size, "pool": self.pool, "sampling": "interval centres",
            "resize": "squash bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "versions": versions("numpy", "torch", "transformers", "av"),
        }

    def load(self) -> Any:
        if self._net is None:
            self._net = load_pretrained("Model", self.root).eval().to(self.device)
        return self._net

    def extract(self, utterances: Sequence[RawUtterance],
                progress: Progress | None = None) -> list[np.ndarray]:
        net = self.load()
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        out = []
        for start in range(0, len(utterances), self.batch_size):
            chunk = utterances[start:start + self.batch_size]
            images = np.concatenate([sample_frames(u, self.frames, self.size) for u in chunk])
            with torch.inference_mode():
                x = torch.from_numpy(images).to(self.device)  # (B*F, S, S, 3) uint8
                x = x.permute(0, 3, 1, 2).float() / 255  # (B*F, 3, S, S)
                pooled = net(pixel_values=(x - mean) / std).pooler_output  # (B*F, C, 1, 1)   Eq. 15
                pooled = pooled.flatten(1).view(len(chunk), self.frames, -1).float()  # (B, F, C)
                feats = pooled if self.sequence else pooled.mean(1)
            out.extend(feats.cpu().numpy())
            if progress:
                progress(len(chunk))
        return out


EXTRACTORS.register("resnet", ResNet, modality="vision")
