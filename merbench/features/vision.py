"""Vision extractor: a ResNet over frames sampled from the utterance's video (HFF Eq. 13-15).

Frames are decoded with PyAV, ``frames`` of them at the centres of equal parts of the
utterance's interval, resized to ``size`` x ``size`` and normalised with ImageNet's mean and
std. Each frame is pooled by global average pooling (the model's ``pooler_output``); the
utterance is the mean over its frames, or the frames as a sequence (``pool="frames"``).

With ``face=True`` each frame is first searched for faces (OpenCV's Viola-Jones cascade,
extra ``face``); the speaking actor's face is chosen (the largest, or the largest on the
side ``speaker_side`` gives the utterance's speaker), aligned on its eyes when both are
found, cropped square with a margin and resized to ``size`` x ``size``; frames without a
face are left out and counted.
"""

from __future__ import annotations

import math
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


def sample_frames(utterance: RawUtterance, count: int, size: int | None) -> np.ndarray:
    """``count`` RGB frames ``(count, size, size, 3)`` uint8, evenly spaced in the interval
    (``size=None``: at the video's own resolution, ``(count, H, W, 3)``).

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


def _rgb(frame: Any, size: int | None) -> np.ndarray:
    # Paper: HFF only says frames are resized and normalised; merbench squashes the whole
    # frame to size x size (bilinear, swscale), keeping every speaker in view, no crop.
    if size is None:
        return frame.to_ndarray(format="rgb24")  # (H, W, 3)
    return frame.to_ndarray(width=size, height=size, format="rgb24")  # (size, size, 3)


# --- faces ---------------------------------------------------------------------------------------

SIDES = ("left", "right")
FACE_MARGIN = 0.2  # the square crop is the detected box's longer side plus 20 % (MTCNN's habit)
FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"


class FaceCropper:
    """Find, choose, align and crop the speaker's face in RGB frames (OpenCV's cascades).

    Paper: MER releases crop faces with MTCNN (facenet-pytorch) or OpenFace. facenet-pytorch
    2.6.0 pins torch < 2.3 and numpy < 2 and needs torchvision's compiled ops, which PyPI's
    torchvision wheels do not load beside the CPU build of torch 2.13; OpenFace is a C++
    build. merbench uses the detector that ships with OpenCV's wheel (Viola-Jones frontal-face
    and eye cascades, no download), which finds frontal faces, as MER's seated actors show.
    """

    def __init__(self, size: int, speaker_side: dict[str, str]) -> None:
        cv2 = import_optional("cv2", "the face step (face: true)")
        self.cv2, self.size, self.speaker_side = cv2, size, speaker_side
        self.faces = cv2.CascadeClassifier(cv2.data.haarcascades + FACE_CASCADE)
        self.eyes = cv2.CascadeClassifier(cv2.data.haarcascades + EYE_CASCADE)

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes ``(x, y, w, h)`` in a frame ``(H, W, 3)``."""
        gray = self.cv2.equalizeHist(self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2GRAY))
        least = max(24, min(gray.shape) // 12)
        boxes = self.faces.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(least, least))
        return [tuple(int(v) for v in b) for b in boxes]

    def choose(self, boxes: list[tuple[int, int, int, int]], width: int,
               speaker: str) -> tuple[int, int, int, int] | None:
        """The largest face, on the speaker's side of the frame when ``speaker_side`` says."""
        side = self.speaker_side.get(speaker)
        if side is not None:
            boxes = [b for b in boxes if (b[0] + b[2] / 2 < width / 2) == (side == "left")]
        return max(boxes, key=lambda b: b[2] * b[3], default=None)

    def eye_angle(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
        """Degrees the eye line is tilted from horizontal, or None unless two eyes are found."""
        x, y, w, h = box
        gray = self.cv2.cvtColor(rgb[y:y + h * 3 // 5, x:x + w], self.cv2.COLOR_RGB2GRAY)  # the upper face
        eyes = self.eyes.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3,
                                          minSize=(max(4, w // 10),) * 2, maxSize=(w // 2,) * 2)
        if len(eyes) < 2:
            return None
        first, second = sorted(sorted(eyes, key=lambda e: -e[2] * e[3])[:2], key=lambda e: e[0])
        (x1, y1), (x2, y2) = [(e[0] + e[2] / 2, e[1] + e[3] / 2) for e in (first, second)]
        angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
        return angle if abs(angle) <= 30 else None  # steeper: not a pair of eyes

    def crop(self, rgb: np.ndarray, box: tuple[int, int, int, int], angle: float) -> np.ndarray:
        """The face box, rotated by ``angle`` about its centre, as ``(size, size, 3)``."""
        x, y, w, h = box
        centre = (x + w / 2, y + h / 2)
        side = max(w, h) * (1 + FACE_MARGIN)
        matrix = self.cv2.getRotationMatrix2D(centre, angle, self.size / side)  # (2, 3)
        matrix[:, 2] += (self.size / 2 - centre[0], self.size / 2 - centre[1])
        return self.cv2.warpAffine(rgb, matrix, (self.size, self.size), flags=self.cv2.INTER_LINEAR,
                                   borderMode=self.cv2.BORDER_REPLICATE)

    def __call__(self, rgb: np.ndarray, speaker: str) -> tuple[np.ndarray | None, bool]:
        """The aligned face crop (None without a face) and whether it was rotated on its eyes."""
        box = self.choose(self.detect(rgb), rgb.shape[1], speaker)
        if box is None:
            return None, False
        angle = self.eye_angle(rgb, box)
        return self.crop(rgb, box, angle or 0.0), angle is not None


class ResNet(Extractor):
    """A local ResNet (transformers ``ResNetModel``) over sampled frames: ``(C,)`` per utterance,
    the mean of the frames' pooled features, or ``(frames, C)`` with ``pool="frames"``."""

    name = "resnet"
    modality = "vision"

    def __init__(self, *, model: str | None = None, frames: int = 8, size: int = 224,
                 pool: str = "mean", face: bool = False, speaker_side: dict | None = None,
                 batch_size: int = 8, device: str | None = None) -> None:
        if pool not in ("mean", "frames"):
            raise MerbenchError(f"resnet pool={pool!r}: expected 'mean' or 'frames'")
        if frames < 1 or size < 32:
            raise MerbenchError(f"resnet frames={frames}, size={size}: expected frames >= 1, size >= 32")
        if not isinstance(face, bool):
            raise MerbenchError(f"resnet face={face!r}: expected true or false")
        speaker_side = dict(speaker_side or {})
        bad = next(((k, v) for k, v in speaker_side.items() if v not in SIDES), None)
        if bad is not None:
            raise MerbenchError(f"resnet speaker_side: {bad[0]}: {bad[1]!r}; expected left or right")
        if speaker_side and not face:
            raise MerbenchError("resnet speaker_side: chooses a face; it needs face: true")
        self.root = check_model_dir(model, "--vision-model", VISION_TYPES)
        self.model_hash = model_dir_hash(self.root)
        self.frames, self.size, self.pool, self.batch_size = frames, size, pool, batch_size
        self.face, self.speaker_side = face, {str(k): v for k, v in speaker_side.items()}
        self.sequence = pool == "frames"
        self.device = resolve_device(device)
        self._net: Any = None
        self._cropper = FaceCropper(size, self.speaker_side) if face else None
        self._counts = {"frames": 0, "frames_without_face": 0, "utterances_without_face": 0,
                        "frames_aligned": 0}

    def config(self) -> dict[str, Any]:
        config = {
            "extractor": self.name, "model_hash": self.model_hash, "frames": self.frames,
            "size": self.size, "pool": self.pool, "sampling": "interval centres",
            "resize": "squash bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "versions": versions("numpy", "torch", "transformers", "av"),
        }
        if self.face:  # whole-frame configs keep the keys their caches were made with
            config.update(resize="face crop", face={
                "detector": f"opencv {FACE_CASCADE}", "align": f"opencv {EYE_CASCADE}",
                "margin": FACE_MARGIN, "speaker_side": self.speaker_side, "no_face": "left out; zeros if none"})
            config["versions"] = versions("numpy", "torch", "transformers", "av", "opencv-python-headless")
        return config

    def take_counts(self) -> dict[str, int]:
        if not self.face:
            return {}
        counts = dict(self._counts)
        self._counts = dict.fromkeys(self._counts, 0)
        return counts

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
            if self.face:
                images, present = self._faces(chunk)  # (B*F, S, S, 3), (B, F) bool
            else:
                images = np.concatenate([sample_frames(u, self.frames, self.size) for u in chunk])
                present = np.ones((len(chunk), self.frames), bool)
            with torch.inference_mode():
                x = torch.from_numpy(images).to(self.device)  # (B*F, S, S, 3) uint8
                x = x.permute(0, 3, 1, 2).float() / 255  # (B*F, 3, S, S)
                pooled = net(pixel_values=(x - mean) / std).pooler_output  # (B*F, C, 1, 1)   Eq. 15
                pooled = pooled.flatten(1).view(len(chunk), self.frames, -1).float().cpu().numpy()  # (B, F, C)
            for feats, keep in zip(pooled, present):
                out.append(self._pool(feats, keep))
            if progress:
                progress(len(chunk))
        return out

    def _pool(self, feats: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """The frames with a face (all frames without the face step): ``(C,)`` or ``(T, C)``.
        No face in any frame: zeros, ``(C,)`` or ``(1, C)``, as OpenFace-based releases fill."""
        if not keep.any():
            zeros = np.zeros(feats.shape[-1], np.float32)
            return zeros[None] if self.sequence else zeros
        return feats[keep] if self.sequence else feats[keep].mean(0)

    def _faces(self, chunk: Sequence[RawUtterance]) -> tuple[np.ndarray, np.ndarray]:
        """Per utterance its frames' face crops (a blank image where none) and which had a face."""
        crops = np.zeros((len(chunk), self.frames, self.size, self.size, 3), np.uint8)
        present = np.zeros((len(chunk), self.frames), bool)
        for b, u in enumerate(chunk):
            for f, rgb in enumerate(sample_frames(u, self.frames, None)):
                crop, aligned = self._cropper(rgb, u.speaker)  # type: ignore[misc]
                if crop is not None:
                    crops[b, f], present[b, f] = crop, True
                    self._counts["frames_aligned"] += aligned
            self._counts["frames"] += self.frames
            self._counts["frames_without_face"] += int((~present[b]).sum())
            self._counts["utterances_without_face"] += int(not present[b].any())
        return crops.reshape(-1, self.size, self.size, 3), present


EXTRACTORS.register("resnet", ResNet, modality="vision")
