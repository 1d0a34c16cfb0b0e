"""``build_features``: decode every clip as an ``InputSpec`` asks, with an on-disk cache."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from explorer.errors import DataError, UsageError
from explorer.memory import check_feature_memory
from search_spaces import InputSpec

from . import cache as _cache
from ._types import Dataset, FeatureSet, MediaRequest, SkippedFile
from .features import (
    fit_length,
    logmel,
    mel_filters,
    mfcc_from_mel,
    power_spectrogram,
    segment_audio,
    standardise_audio,
)

__all__ = ["build_features"]


# Mel power spectrograms of the MFCC kinds by (data set, clip, piece, sample rate, length,
# n_fft, hop, FRFT order, mels), least recently used first. A search builds features for a new
# input shape at nearly every trial; shapes that differ only in their video, their MFCC count
# or their frames share these, and a fractional Fourier transform is ~0.1 s per clip.
_MEL_MEMO: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_MEL_MEMO_BYTES = 160 * 2**20


def _memo_mel(key: tuple[Any, ...] | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if key is None:
        return compute()
    hit = _MEL_MEMO.get(key)
    if hit is not None:
        _MEL_MEMO.move_to_end(key)
        return hit
    mel = compute()
    mel.setflags(write=False)
    _MEL_MEMO[key] = mel
    total = sum(v.nbytes for v in _MEL_MEMO.values())
    while total > _MEL_MEMO_BYTES and len(_MEL_MEMO) > 1:
        total -= _MEL_MEMO.popitem(last=False)[1].nbytes
    return mel


def _mfcc(
    y: np.ndarray, spec: InputSpec, *, n_mfcc: int, order: float, key: tuple[Any, ...] | None
) -> np.ndarray:
    """``features.mfcc`` of ``y`` (the same operations), through the mel memo."""
    sr, n_fft, n_mels = spec.sample_rate_hz, spec.n_fft, max(128, n_mfcc)

    def compute() -> np.ndarray:
        power = power_spectrogram(y, n_fft=n_fft, hop_length=spec.hop_length, frft_order=order)
        return mel_filters(sr, n_fft, n_mels) @ power

    full = None if key is None else (*key, sr, n_fft, spec.hop_length, order, n_mels)
    return mfcc_from_mel(_memo_mel(full, compute), n_mfcc=n_mfcc)


def _audio_features(
    y: np.ndarray, spec: InputSpec, *, standardise: bool, key: tuple[Any, ...] | None = None
) -> np.ndarray:
    """``spec``'s audio features of the waveform ``y``; ``key`` names ``y`` (data set, clip,
    piece) for the mel memo, None to bypass it."""
    sr = spec.sample_rate_hz
    kind = spec.audio_kind
    if kind == "mfcc_mean":
        # Ding et al.: 40 MFCCs of the (segment of the) clip, averaged over time
        key = None if key is None else (*key, None)
        return _mfcc(y, spec, n_mfcc=spec.audio_shape[0], order=1.0, key=key).mean(axis=1)
    if standardise:
        y = standardise_audio(y, sample_rate_hz=sr, clip_seconds=spec.clip_seconds)
    rows, steps = spec.audio_shape
    if kind == "logmel":
        feat = logmel(
            y, sample_rate_hz=sr, n_mels=rows, n_fft=spec.n_fft, hop_length=spec.hop_length
        )
    else:
        order = spec.frft_order if kind == "frft_mfcc_seq" else 1.0
        key = None if key is None else (*key, spec.clip_seconds if standardise else None)
        feat = _mfcc(y, spec, n_mfcc=rows, order=order, key=key)
    return fit_length(feat, steps, axis=1)


def build_features(
    dataset: Dataset,
    spec: InputSpec,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    samples_per_clip: int = 1,
    progress: bool = False,
) -> FeatureSet:
    """Features of every clip of ``dataset`` in the shapes ``spec`` declares.

    Args:
        dataset: from ``load_dataset``.
        spec: the model's ``input_spec``.
        cache_dir: feature cache directory (default ``$EXPLORER_CACHE`` or
            ``~/.cache/explorer/features``); a second call with the same data set and spec
            reads the cache and decodes nothing.
        use_cache: False neither reads nor writes the cache.
        samples_per_clip: Ding et al. cut each clip into this many equal segments and make one
            sample of each (its central frame(s) and its audio segment); 1 (the default) makes
            one sample per clip from the whole clip.
        progress: show a progress bar on stderr.

    Returns:
        A ``FeatureSet``: audio ``(N, *spec.audio_shape)`` float32, video uint8
        ``(N, frames, channels, height, width)``, labels, actors, clip indexes.

    Raises:
        UsageError: the spec's class count differs from the data set's, bad options, or the
            features need more than the memory limit (``explorer.memory``).
        DataError: no clip could be decoded.
    """
    if spec.num_classes != len(dataset.class_names):
        raise UsageError(
            f"the model predicts {spec.num_classes} classes but data set {dataset.name!r} has "
            f"{len(dataset.class_names)} ({', '.join(dataset.class_names)}): build the model "
            f"with num_classes={len(dataset.class_names)} (e.g. ding2025:num_classes="
            f"{len(dataset.class_names)})"
        )
    if not (isinstance(samples_per_clip, int) and 1 <= samples_per_clip <= 64):
        raise UsageError(f"samples_per_clip={samples_per_clip!r} is invalid: use 1..64")
    samples = len(dataset) * samples_per_clip
    check_feature_memory(samples, spec, dataset=dataset.name, stacking=False)  # a cached set
    start = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir is not None else _cache.default_cache_dir()
    key = _cache.cache_key(dataset.fingerprint, spec.to_dict(), samples_per_clip=samples_per_clip)
    if use_cache:
        hit = _cache.load_entry(cache_dir, key)
        if hit is not None and _cache_problem(hit[0], dataset, spec) is not None:
            # passed its CRCs but cannot be this data set's features (edited, or written by a
            # buggy version): out-of-range labels would crash training; rebuild it
            _cache.drop_entry(cache_dir, key)
            hit = None
        if hit is not None:
            arrays, meta = hit
            skipped_before = tuple(SkippedFile(**x) for x in meta.get("skipped", []))
            return _feature_set(
                dataset, spec, arrays, start, from_cache=True, skipped=skipped_before
            )

    check_feature_memory(samples, spec, dataset=dataset.name)  # per-clip arrays, then stacked
    arrays, skipped = _decode_all(
        dataset, spec, samples_per_clip=samples_per_clip, progress=progress
    )
    if use_cache:
        _cache.save_entry(
            cache_dir,
            key,
            arrays,
            {
                "dataset": dataset.name,
                "spec": spec.to_dict(),
                "skipped": [x.to_dict() for x in skipped],
            },
        )
    return _feature_set(dataset, spec, arrays, start, from_cache=False, skipped=tuple(skipped))


def _decode_all(
    dataset: Dataset, spec: InputSpec, *, samples_per_clip: int, progress: bool
) -> tuple[dict[str, np.ndarray], list[SkippedFile]]:
    """Decode every clip and compute its features: the arrays of a ``FeatureSet`` and the
    clips left out (undecodable, or with non-finite audio features).

    Raises:
        DataError: no clip could be decoded.
    """
    s = samples_per_clip
    request = MediaRequest(
        sample_rate_hz=spec.sample_rate_hz,
        frames=spec.frames * s,
        height=spec.height,
        width=spec.width,
        channels=spec.channels,
    )
    audio, video, labels, actors, clip_index = [], [], [], [], []
    skipped: list[SkippedFile] = []
    actor_ids = {a: i for i, a in enumerate(dataset.actors)}
    bar = _progress(progress, len(dataset), f"features {dataset.name}")
    try:
        for i, clip in enumerate(dataset.clips):
            try:
                media = dataset.read(i, request)
            except DataError as exc:  # a file that passed the scan but fails to decode
                skipped.append(
                    SkippedFile(path=str(clip.video_path or clip.clip_id), reason=str(exc))
                )
                continue
            frames = np.transpose(media.video, (0, 3, 1, 2))  # (F, C, H, W)
            pieces = segment_audio(media.audio, s) if s > 1 else [media.audio]
            feats = [
                _audio_features(
                    p, spec, standardise=s == 1, key=(dataset.fingerprint, i, s, j)
                ).astype(np.float32)
                for j, p in enumerate(pieces)
            ]
            if not all(np.isfinite(f).all() for f in feats):  # would train to a NaN loss
                skipped.append(
                    SkippedFile(
                        path=str(clip.audio_path or clip.clip_id),
                        reason="audio features are NaN or infinite (corrupt or overflowing "
                        "samples)",
                    )
                )
                continue
            for j, feat in enumerate(feats):
                audio.append(feat)
                video.append(frames[j * spec.frames : (j + 1) * spec.frames])
                labels.append(clip.label)
                actors.append(actor_ids[clip.actor])
                clip_index.append(i)
            if bar is not None:
                bar[0].advance(bar[1])
    finally:
        if bar is not None:
            bar[0].stop()
    if not labels:
        raise DataError(
            f"no clip of data set {dataset.name!r} could be decoded ({len(skipped)} failed, "
            "first: " + (skipped[0].reason if skipped else "none") + "): check the files"
        )
    arrays = {
        "audio": np.stack(audio),
        "video": np.stack(video).astype(np.uint8),
        "labels": np.asarray(labels, dtype=np.int64),
        "actors": np.asarray(actors, dtype=np.int64),
        "clip_index": np.asarray(clip_index, dtype=np.int64),
    }
    return arrays, skipped


def _cache_problem(arrays: dict[str, np.ndarray], dataset: Dataset, spec: InputSpec) -> str | None:
    """None when a cache entry's arrays fit ``dataset`` and ``spec``, else what is wrong."""
    names = ("audio", "video", "labels", "actors", "clip_index")
    if any(name not in arrays for name in names):
        return "arrays missing"
    n = len(arrays["labels"])
    if n == 0 or any(arrays[name].ndim < 1 or len(arrays[name]) != n for name in names):
        return "array lengths differ"
    video_shape = (spec.frames, spec.channels, spec.height, spec.width)
    if tuple(arrays["audio"].shape[1:]) != tuple(spec.audio_shape):
        return f"audio shape {arrays['audio'].shape[1:]}, expected {tuple(spec.audio_shape)}"
    if tuple(arrays["video"].shape[1:]) != video_shape or arrays["video"].dtype != np.uint8:
        return f"video shape {arrays['video'].shape[1:]}, expected {video_shape}"
    for name, limit in (
        ("labels", len(dataset.class_names)),
        ("actors", len(dataset.actors)),
        ("clip_index", len(dataset)),
    ):
        values = arrays[name]
        if arrays[name].ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            return f"{name} are not integers"
        if values.min() < 0 or values.max() >= limit:
            return f"{name} outside 0..{limit - 1}"
    if not np.isfinite(arrays["audio"]).all():
        return "audio features are not finite"
    return None


def _feature_set(dataset, spec, arrays, start, *, from_cache: bool, skipped=()) -> FeatureSet:
    return FeatureSet(
        audio=arrays["audio"],
        video_uint8=arrays["video"],
        labels=arrays["labels"],
        actors=arrays["actors"],
        clip_index=arrays["clip_index"],
        class_names=dataset.class_names,
        actor_names=dataset.actors,
        spec=spec,
        dataset_name=dataset.name,
        build_seconds=time.perf_counter() - start,
        from_cache=from_cache,
        skipped=tuple(skipped),
    )


def _progress(enabled: bool, total: int, label: str):
    import sys

    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(label, total=total)
    bar.start()
    return bar, task
