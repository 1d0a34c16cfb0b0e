"""Audio and video features as the papers compute them, without librosa at run time.

``mfcc`` reproduces ``librosa.feature.mfcc`` with its defaults (centred frames with zero
padding, periodic Hann window, 2048-point FFT, hop 512, power spectrum, 128 Slaney-normalised
Slaney-scale mel bands up to Nyquist, ``power_to_db`` with ``top_db=80``, orthonormal DCT-II,
40 coefficients); a test checks it against librosa. ``logmel`` is the same mel spectrogram in
dB; ``frft_mfcc`` replaces each frame's Fourier transform by a discrete fractional Fourier
transform of order ``a`` (``a = 1`` is exactly ``mfcc``).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from scipy.fft import dct

from .frft import frft_matrix

__all__ = [
    "fit_length",
    "frame_indices",
    "logmel",
    "mel_filters",
    "mfcc",
    "mfcc_from_mel",
    "mfcc_from_power",
    "power_spectrogram",
    "segment_audio",
    "standardise_audio",
]


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney's auditory-toolbox scale: linear below 1 kHz, logarithmic above (librosa htk=False)
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels
    )


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=16)
def mel_filters(sample_rate_hz: int, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """Slaney-normalised mel filter bank ``(n_mels, 1 + n_fft // 2)`` (``librosa.filters.mel``)."""
    fftfreqs = np.linspace(0, sample_rate_hz / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate_hz / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    # periodic Hann, as scipy.signal.get_window("hann", n, fftbins=True)
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def _frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    y = np.pad(y, n_fft // 2, mode="constant")  # librosa center=True, pad_mode="constant"
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    count = 1 + (y.size - n_fft) // hop_length
    return np.lib.stride_tricks.as_strided(
        y, shape=(count, n_fft), strides=(y.strides[0] * hop_length, y.strides[0]), writeable=False
    )


def power_spectrogram(
    y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 512, frft_order: float = 1.0
) -> np.ndarray:
    """``|X|^2`` of centred Hann-windowed frames, ``(1 + n_fft // 2, frames)``.

    With ``frft_order != 1`` each windowed frame goes through the discrete fractional Fourier
    transform of that order (scaled like the FFT), and the first ``1 + n_fft // 2`` bins are kept.
    """
    frames = _frames(y, n_fft, hop_length) * _hann(n_fft)
    if frft_order == 1.0:
        return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).T
    real, imag = _frft_rows(n_fft, float(frft_order))
    return ((frames @ real) ** 2 + (frames @ imag) ** 2).T


@functools.lru_cache(maxsize=8)
def _frft_rows(n_fft: int, order: float) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of the first ``1 + n_fft // 2`` rows of the FRFT matrix,
    transposed and scaled like the FFT: two real products of real frames with the kept rows
    cost a quarter of one complex product with the whole matrix (a yang clip: 0.15 s -> 0.04 s).
    """
    rows = frft_matrix(n_fft, order)[: 1 + n_fft // 2] * np.sqrt(n_fft)
    real, imag = np.ascontiguousarray(rows.real.T), np.ascontiguousarray(rows.imag.T)
    real.setflags(write=False)
    imag.setflags(write=False)
    return real, imag


def _power_to_db(s: np.ndarray, top_db: float = 80.0) -> np.ndarray:
    log_spec = 10.0 * np.log10(np.maximum(1e-10, s))
    return np.maximum(log_spec, log_spec.max() - top_db)


def mfcc_from_power(
    power: np.ndarray, *, sample_rate_hz: int, n_fft: int, n_mfcc: int = 40, n_mels: int = 128
) -> np.ndarray:
    """MFCCs ``(n_mfcc, frames)`` from a power spectrogram."""
    return mfcc_from_mel(mel_filters(sample_rate_hz, n_fft, n_mels) @ power, n_mfcc=n_mfcc)


def mfcc_from_mel(mel: np.ndarray, *, n_mfcc: int = 40) -> np.ndarray:
    """MFCCs ``(n_mfcc, frames)`` from a mel power spectrogram ``(n_mels, frames)``."""
    return dct(_power_to_db(mel), axis=0, type=2, norm="ortho")[:n_mfcc]


def mfcc(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 40,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    frft_order: float = 1.0,
) -> np.ndarray:
    """MFCCs ``(n_mfcc, frames)`` equal to ``librosa.feature.mfcc`` with the same arguments."""
    power = power_spectrogram(y, n_fft=n_fft, hop_length=hop_length, frft_order=frft_order)
    return mfcc_from_power(
        power, sample_rate_hz=sample_rate_hz, n_fft=n_fft, n_mfcc=n_mfcc, n_mels=max(n_mels, n_mfcc)
    )


def logmel(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
) -> np.ndarray:
    """Log-mel spectrogram in dB ``(n_mels, frames)`` (``librosa.power_to_db(melspectrogram)``)."""
    power = power_spectrogram(y, n_fft=n_fft, hop_length=hop_length)
    return _power_to_db(mel_filters(sample_rate_hz, n_fft, n_mels) @ power)


def fit_length(x: np.ndarray, length: int, *, axis: int = -1) -> np.ndarray:
    """Centre-crop or zero-pad (at the end) ``x`` along ``axis`` to ``length``."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    n = x.shape[-1]
    if n > length:
        start = (n - length) // 2
        x = x[..., start : start + length]
    elif n < length:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], length - n), dtype=x.dtype)], axis=-1)
    return np.moveaxis(x, -1, axis)


def standardise_audio(y: np.ndarray, *, sample_rate_hz: int, clip_seconds: float) -> np.ndarray:
    """Zero-pad or centre-crop a waveform to ``clip_seconds`` (as the yang paper does)."""
    return fit_length(y, round(clip_seconds * sample_rate_hz))


def frame_indices(total_frames: int, count: int) -> np.ndarray:
    """The central frame of each of ``count`` equal segments of ``total_frames`` frames."""
    if total_frames <= 0:
        return np.zeros(count, dtype=np.int64)
    centres = (np.arange(count) + 0.5) * total_frames / count
    return np.minimum(np.floor(centres).astype(np.int64), total_frames - 1)


def segment_audio(y: np.ndarray, count: int) -> list[np.ndarray]:
    """Split a waveform into ``count`` equal, non-overlapping segments (Ding et al., Fig. 2),
    each aligned with the frame that ``frame_indices`` picks from the same segment."""
    edges = np.linspace(0, y.size, count + 1).round().astype(int)
    return [y[a:b] for a, b in itertools.pairwise(edges)]
