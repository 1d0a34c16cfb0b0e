"""Integrated-Gradients explanations of a trained audio-visual model, per class and modality.

    >>> explanation = explain_checkpoint("model.pt", dataset="synthetic", samples_per_class=8)
    >>> [(c.class_name, c.audio_share) for c in explanation.classes]

Integrated Gradients (Sundararajan, Taly and Yan, 2017, "Axiomatic Attribution for Deep
Networks"; Captum's implementation) attributes the logit of each sample's true class to every
input element, along the straight path from a baseline: black frames for the video and the
training-set mean for the audio features (zero after the checkpoint's normalisation). By
completeness the attributions of one sample sum to ``f(x) - f(baseline)``; Captum's
convergence delta is the gap, reported here. Per class the absolute attributions are averaged
into an audio map (coefficient by time step, whatever the model's ``InputSpec`` feeds: MFCC,
FRFT-MFCC, log-mel), a per-frame and a spatial video map, and each modality's share of the
total absolute attribution: a fused model that uses both modalities gives both a real share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.errors import UsageError

__all__ = [
    "Attributions",
    "ClassAttribution",
    "Explanation",
    "explain_checkpoint",
    "explain_model",
    "integrated_gradients",
]


@dataclass(frozen=True, kw_only=True, eq=False)
class Attributions:
    """Integrated-Gradients attributions of a batch (same shapes as the inputs), the logit
    differences they explain and Captum's convergence deltas (one per sample)."""

    audio: torch.Tensor
    video: torch.Tensor
    logit_change: torch.Tensor  # f(x)[target] - f(baseline)[target]
    delta: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class ClassAttribution:
    """Mean absolute attributions of the samples of one class (attributing that class).

    ``audio_share`` + ``video_share`` = 1 (each sample's shares, averaged).
    ``audio_map[c][t]`` is per audio coefficient and time step (one step for time-averaged
    MFCCs); ``video_frames[f]`` sums frame ``f``; ``video_map[y][x]`` is per pixel, summed over
    channels and averaged over frames.
    """

    class_name: str
    samples: int
    audio_share: float
    video_share: float
    audio_total: float  # mean signed attribution sum per modality (they add up to the
    video_total: float  # mean logit change, by completeness)
    audio_map: tuple[tuple[float, ...], ...]
    video_frames: tuple[float, ...]
    video_map: tuple[tuple[float, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_name": self.class_name,
            "samples": self.samples,
            "audio_share": self.audio_share,
            "video_share": self.video_share,
            "audio_total": self.audio_total,
            "video_total": self.video_total,
            "audio_map": [list(r) for r in self.audio_map],
            "video_frames": list(self.video_frames),
            "video_map": [list(r) for r in self.video_map],
        }


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """What ``explain_checkpoint`` returns: per-class attributions and how faithful they are."""

    model: str
    family: str
    audio_kind: str
    dataset: str
    samples: int
    steps: int
    classes: tuple[ClassAttribution, ...]  # classes with at least one sample, in label order
    max_abs_delta: float  # worst |convergence delta| over the samples
    max_abs_logit_change: float  # the scale the deltas are read against

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "audio_kind": self.audio_kind,
            "dataset": self.dataset,
            "samples": self.samples,
            "steps": self.steps,
            "max_abs_delta": self.max_abs_delta,
            "max_abs_logit_change": self.max_abs_logit_change,
            "classes": [c.to_dict() for c in self.classes],
        }


def integrated_gradients(
    model: nn.Module,
    audio: torch.Tensor,
    video: torch.Tensor,
    target: torch.Tensor,
    *,
    steps: int = 32,
    internal_batch_size: int | None = None,
) -> Attributions:
    """Captum's Integrated Gradients of ``model(audio, video)[i, target[i]]`` from a zero
    baseline (black frames, mean audio) with ``steps`` Gauss-Legendre points.

    Raises:
        UsageError: ``steps`` below 2.
    """
    from captum.attr import IntegratedGradients

    if steps < 2:
        raise UsageError(f"--steps must be at least 2, got {steps}")
    model = model.eval()
    baselines = (torch.zeros_like(audio), torch.zeros_like(video))
    ig = IntegratedGradients(lambda a, v: model(a, v))
    (attr_audio, attr_video), delta = ig.attribute(
        (audio, video),
        baselines=baselines,
        target=target,
        n_steps=steps,
        internal_batch_size=internal_batch_size or max(len(audio) * steps, 1),
        return_convergence_delta=True,
    )
    with torch.no_grad():
        rows = torch.arange(len(target))
        change = model(audio, video)[rows, target] - model(*baselines)[rows, target]
    return Attributions(
        audio=attr_audio.detach(), video=attr_video.detach(), logit_change=change, delta=delta
    )


def _class_attribution(name: str, attrs: Sequence[Attributions]) -> ClassAttribution:
    audio = torch.cat([a.audio for a in attrs]).double()
    video = torch.cat([a.video for a in attrs]).double()
    n = len(audio)
    abs_audio = audio.abs().reshape(n, -1).sum(1)
    abs_video = video.abs().reshape(n, -1).sum(1)
    total = (abs_audio + abs_video).clamp_min(1e-30)
    share_audio = float((abs_audio / total).mean())
    amap = audio.abs().mean(0)
    amap = amap.unsqueeze(-1) if amap.dim() == 1 else amap  # time-averaged MFCC: one step
    vabs = video.abs().mean(0)  # (frames, channels, h, w)
    return ClassAttribution(
        class_name=name,
        samples=n,
        audio_share=share_audio,
        video_share=1.0 - share_audio,
        audio_total=float(audio.reshape(n, -1).sum(1).mean()),
        video_total=float(video.reshape(n, -1).sum(1).mean()),
        audio_map=tuple(tuple(float(x) for x in row) for row in amap.tolist()),
        video_frames=tuple(float(x) for x in vabs.sum(dim=(1, 2, 3)).tolist()),
        video_map=tuple(tuple(float(x) for x in row) for row in vabs.sum(1).mean(0).tolist()),
    )


def explain_model(
    model: nn.Module,
    features: Any,
    idx: np.ndarray,
    *,
    class_names: Sequence[str],
    normalization: Mapping[str, Any] | None = None,
    steps: int = 32,
    batch_size: int = 4,
    name: str = "model",
    dataset: str = "",
) -> Explanation:
    """Attribute each sample ``idx`` of a ``FeatureSet`` to its true class and average per class.

    Args:
        model: a family model (``forward(audio, video)``), moved to the CPU.
        normalization: the training run's audio mean/std (flattened), as in checkpoints.
        steps: Integrated-Gradients steps per sample.
        batch_size: samples attributed together (each costs ``steps`` forward/backward passes).

    Raises:
        UsageError: no samples, or ``steps`` below 2.
    """
    idx = np.asarray(idx)
    if idx.size == 0:
        raise UsageError("no samples to explain: use a data set with clips of every class")
    model = model.cpu().eval()
    audio_all, video_all, labels_all = features.tensors(idx)
    shape = audio_all.shape[1:]
    if normalization:
        mean = torch.tensor(normalization["mean"], dtype=torch.float32).reshape(shape)
        std = torch.tensor(normalization["std"], dtype=torch.float32).reshape(shape)
        audio_all = (audio_all - mean) / std
    per_class: dict[int, list[Attributions]] = {}
    for start in range(0, len(idx), batch_size):
        sl = slice(start, start + batch_size)
        labels = labels_all[sl]
        attrs = integrated_gradients(model, audio_all[sl], video_all[sl], labels, steps=steps)
        for label in labels.unique().tolist():
            keep = labels == label
            per_class.setdefault(int(label), []).append(
                Attributions(
                    audio=attrs.audio[keep],
                    video=attrs.video[keep],
                    logit_change=attrs.logit_change[keep],
                    delta=attrs.delta[keep],
                )
            )
    every = [a for group in per_class.values() for a in group]
    deltas = torch.cat([a.delta for a in every]).abs()
    changes = torch.cat([a.logit_change for a in every]).abs()
    spec = getattr(model, "input_spec", None)
    config = getattr(model, "config", None)
    return Explanation(
        model=name,
        family=getattr(config, "family", "") or type(model).__name__,
        audio_kind=getattr(spec, "audio_kind", ""),
        dataset=dataset,
        samples=int(idx.size),
        steps=steps,
        classes=tuple(_class_attribution(class_names[k], per_class[k]) for k in sorted(per_class)),
        max_abs_delta=float(deltas.max()),
        max_abs_logit_change=float(changes.max()),
    )


def explain_checkpoint(
    path: str | Path,
    *,
    dataset: str = "synthetic",
    samples_per_class: int = 8,
    steps: int = 32,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> Explanation:
    """Explain an explorer checkpoint on the validation clips of ``dataset``.

    Takes up to ``samples_per_class`` validation samples of each class (actor-independent
    split with ``seed``, as ``explorer train`` makes it), normalises the audio with the
    checkpoint's training statistics and runs ``explain_model``.

    Raises:
        CheckpointError: unreadable checkpoint.
        UsageError: bad options, or a data set whose class count differs from the model's.
    """
    from explorer.checkpoints import load_checkpoint
    from explorer.data import build_features, load_dataset, make_split

    if samples_per_class < 1:
        raise UsageError(f"--samples-per-class must be at least 1, got {samples_per_class}")
    if steps < 2:
        raise UsageError(f"--steps must be at least 2, got {steps}")
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    ds = load_dataset(dataset)
    if len(ds.class_names) != ckpt.input_spec.num_classes:
        raise UsageError(
            f"{ds.name} has {len(ds.class_names)} classes but {str(path)!r} predicts "
            f"{ckpt.input_spec.num_classes}: explain it on the data set it was trained on"
        )
    features = build_features(ds, model.input_spec, cache_dir=cache_dir)
    split = make_split(features, kind="actor", seed=seed)
    labels = np.asarray(features.labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(len(ds.class_names)):
        pool = split.val_idx[labels[split.val_idx] == k]
        if pool.size:
            chosen.extend(rng.choice(pool, size=min(samples_per_class, pool.size), replace=False))
    return explain_model(
        model,
        features,
        np.sort(np.asarray(chosen, dtype=np.int64)),
        class_names=ckpt.class_names or ds.class_names,
        normalization=ckpt.extra.get("audio_normalization") or None,
        steps=steps,
        name=Path(path).name,
        dataset=ds.name,
    )
