"""The in-process memos behind ``build_features`` (rendered voices, mel spectrograms) change
nothing but speed: features built through them equal features built from scratch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explorer.data import _build, build_features, load_dataset, synthetic
from explorer.data.features import power_spectrogram
from explorer.data.frft import frft_matrix
from search_spaces import InputSpec

TINY = {"actors": 2, "clips_per_class": 1, "clip_seconds": 0.6}
SEQ = InputSpec(
    audio_kind="frft_mfcc_seq",
    audio_shape=(13, 20),
    frames=1,
    channels=1,
    height=8,
    width=8,
    sample_rate_hz=16000,
    n_fft=256,
    hop_length=128,
    frft_order=0.8,
    clip_seconds=0.6,
)
# the same voice and mel spectrogram, another MFCC count and another video
SEQ_OTHER_VIDEO = dataclasses.replace(SEQ, audio_shape=(20, 20), frames=2, channels=3, height=12)
MEAN = dataclasses.replace(SEQ, audio_kind="mfcc_mean", audio_shape=(16,), frft_order=1.0)


def _clear() -> None:
    _build._MEL_MEMO.clear()
    synthetic._VOICES_MEMO.clear()


@pytest.mark.parametrize("second", [SEQ_OTHER_VIDEO, MEAN], ids=["seq", "mean"])
def test_memoised_features_equal_features_built_from_scratch(second: InputSpec) -> None:
    ds = load_dataset("synthetic", **TINY)
    _clear()
    build_features(ds, SEQ, use_cache=False)  # fills the memos
    assert len(synthetic._VOICES_MEMO) == len(ds) and len(_build._MEL_MEMO) == len(ds)
    calls = []
    real = synthetic._render_audio
    try:  # a memo hit renders no voice
        synthetic._render_audio = lambda *a: calls.append(1) or real(*a)
        memoised = build_features(ds, second, use_cache=False)
    finally:
        synthetic._render_audio = real
    assert calls == []
    _clear()
    scratch = build_features(ds, second, use_cache=False)
    np.testing.assert_array_equal(memoised.audio, scratch.audio)
    np.testing.assert_array_equal(memoised.video_uint8, scratch.video_uint8)


def test_fractional_spectrogram_equals_the_full_complex_product() -> None:
    y = np.random.default_rng(0).normal(size=3000).astype(np.float32)
    ours = power_spectrogram(y, n_fft=256, hop_length=128, frft_order=0.7)
    padded = np.pad(y.astype(np.float64), 128)
    frames = np.stack([padded[i : i + 256] for i in range(0, padded.size - 255, 128)])
    frames = frames * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256))
    spec = (frames @ frft_matrix(256, 0.7).T)[:, :129] * np.sqrt(256)
    np.testing.assert_allclose(ours, (np.abs(spec) ** 2).T, rtol=1e-9, atol=1e-12)
