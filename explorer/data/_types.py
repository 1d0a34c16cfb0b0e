"""The data types shared by the loaders, the feature builder and the trainer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import InputSpec

__all__ = ["ClipInfo", "ClipMedia", "Dataset", "FeatureSet", "MediaRequest", "SkippedFile", "Split"]

# The eight RAVDESS emotions in the order of its file-name code (01..08).
RAVDESS_CLASSES = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)


@dataclass(frozen=True, kw_only=True)
class ClipInfo:
    """One audio-visual clip of a data set (metadata only; media are read on demand)."""

    clip_id: str
    label: int
    actor: str
    intensity: str = ""
    statement: str = ""
    video_path: Path | None = None
    audio_path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SkippedFile:
    """A file the loader could not use, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class MediaRequest:
    """What the feature builder asks a data set to read for one clip.

    ``frames`` frames are sampled (the central frame of each of ``frames`` equal segments),
    each a face crop of ``height`` x ``width`` with ``channels`` channels; the audio is mono at
    ``sample_rate_hz``.
    """

    sample_rate_hz: int
    frames: int
    height: int
    width: int
    channels: int


@dataclass(frozen=True, kw_only=True, eq=False)
class ClipMedia:
    """The decoded media of one clip: ``audio`` float32 (samples,) in [-1, 1] at the requested
    rate, ``video`` uint8 (frames, height, width, channels)."""

    audio: np.ndarray
    video: np.ndarray
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """A labelled audio-visual data set: clip metadata plus a reader for each clip's media.

    ``fingerprint`` changes whenever the media could change (generator parameters for the
    synthetic set; names, sizes and modification times of the files for real sets), so the
    feature cache can key on it.
    """

    name: str
    class_names: tuple[str, ...]
    clips: tuple[ClipInfo, ...]
    fingerprint: str
    reader: Callable[[ClipInfo, MediaRequest], ClipMedia]
    skipped: tuple[SkippedFile, ...] = ()
    description: str = ""

    def __len__(self) -> int:
        return len(self.clips)

    def read(self, index: int, request: MediaRequest) -> ClipMedia:
        """Decode clip ``index`` as ``request`` asks."""
        return self.reader(self.clips[index], request)

    @property
    def actors(self) -> tuple[str, ...]:
        """Distinct actor ids, sorted."""
        return tuple(sorted({c.actor for c in self.clips}))

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: clips, actors, per-class counts, skipped files."""
        counts = {name: 0 for name in self.class_names}
        for clip in self.clips:
            counts[self.class_names[clip.label]] += 1
        return {
            "dataset": self.name,
            "description": self.description,
            "fingerprint": self.fingerprint,
            "clips": len(self.clips),
            "actors": len(self.actors),
            "actor_ids": list(self.actors),
            "classes": list(self.class_names),
            "class_counts": counts,
            "skipped": [s.to_dict() for s in self.skipped],
        }


@dataclass(frozen=True, kw_only=True, eq=False)
class FeatureSet:
    """Model-ready features of a data set for one ``InputSpec``.

    ``audio`` is float32 ``(N, *spec.audio_shape)``. Video is kept as uint8
    ``(N, frames, channels, height, width)`` in ``video_uint8`` (a 15-frame 224x224 RGB set is
    four times smaller that way); ``video`` converts all of it to float32 in [0, 1], and
    ``tensors(idx)`` converts one batch. ``clip_index`` maps each sample to its clip in the
    data set (several samples per clip when the features were built with
    ``samples_per_clip > 1``).
    """

    audio: np.ndarray
    video_uint8: np.ndarray
    labels: np.ndarray
    actors: np.ndarray
    clip_index: np.ndarray
    class_names: tuple[str, ...]
    actor_names: tuple[str, ...]
    spec: InputSpec
    dataset_name: str = ""
    build_seconds: float = 0.0
    from_cache: bool = False
    skipped: tuple[SkippedFile, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def video(self) -> np.ndarray:
        """All video as float32 in [0, 1], shape ``(N, *spec.video_shape)`` (a new array)."""
        return self.video_uint8.astype(np.float32) / 255.0

    def tensors(self, idx: np.ndarray | None = None) -> tuple[Any, Any, Any]:
        """``(audio, video, labels)`` torch tensors for the samples ``idx`` (all when None)."""
        import torch

        if idx is None:
            idx = np.arange(len(self))
        audio = torch.from_numpy(np.ascontiguousarray(self.audio[idx]))
        video = torch.from_numpy(np.ascontiguousarray(self.video_uint8[idx])).float().div_(255.0)
        labels = torch.from_numpy(np.ascontiguousarray(self.labels[idx]))
        return audio, video, labels


@dataclass(frozen=True, kw_only=True, eq=False)
class Split:
    """Indices (into a ``FeatureSet``) of the training and validation samples."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    kind: str = "actor"
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "train": int(self.train_idx.size),
            "val": int(self.val_idx.size),
            "description": self.description,
        }
