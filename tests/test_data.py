"""Features against librosa, the synthetic set, the feature cache and the splits."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.data import build_features, load_dataset, make_split
from explorer.data.cache import load_entry
from explorer.data.features import frame_indices, logmel, mel_filters, mfcc, segment_audio
from explorer.data.frft import frft, frft_matrix
from explorer.errors import UsageError
from search_spaces import InputSpec

librosa = pytest.importorskip("librosa")

TINY = {"actors": 4, "clips_per_class": 1, "clip_seconds": 0.6}


def _speechlike(sr: int = 16000, seconds: float = 1.3) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 140 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 12))
    return (0.1 * y * np.sin(np.pi * 3 * t) ** 2 + 0.003 * rng.normal(size=t.size)).astype(
        np.float32
    )


@pytest.mark.parametrize("sr", [16000, 22050])
def test_mfcc_matches_librosa_defaults(sr: int) -> None:
    y = _speechlike(sr)
    ours = mfcc(y, sample_rate_hz=sr, n_mfcc=40)
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)  # librosa defaults: 2048/512/128 mels
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3 * np.abs(ref).max(), rtol=0)


def test_mel_filters_and_logmel_match_librosa() -> None:
    np.testing.assert_allclose(
        mel_filters(16000, 400, 64), librosa.filters.mel(sr=16000, n_fft=400, n_mels=64), atol=1e-6
    )
    y = _speechlike()
    ours = logmel(y, sample_rate_hz=16000, n_mels=64, n_fft=400, hop_length=160)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=64)
    )
    np.testing.assert_allclose(ours, ref, atol=0.05)


def test_frft_orders() -> None:
    x = np.random.default_rng(1).normal(size=32)
    np.testing.assert_allclose(frft(x, 1.0), np.fft.fft(x) / np.sqrt(32), atol=1e-10)
    np.testing.assert_allclose(frft(x, 0.0), x, atol=1e-10)
    np.testing.assert_allclose(frft(frft(x, 0.3), 0.7), frft(x, 1.0), atol=1e-10)
    mat = frft_matrix(32, 0.5)
    np.testing.assert_allclose(mat @ mat.conj().T, np.eye(32), atol=1e-10)  # unitary


def test_frft_mfcc_order_one_is_mfcc_and_other_orders_differ() -> None:
    y = _speechlike(seconds=0.5)
    plain = mfcc(y, sample_rate_hz=16000, n_fft=256, hop_length=128)
    one = mfcc(y, sample_rate_hz=16000, n_fft=256, hop_length=128, frft_order=1.0 - 1e-12)
    half = mfcc(y, sample_rate_hz=16000, n_fft=256, hop_length=128, frft_order=0.8)
    np.testing.assert_allclose(one, plain, atol=1e-3)
    assert np.abs(half - plain).max() > 1.0


def test_frame_sampling_and_audio_segments_align() -> None:
    assert frame_indices(60, 6).tolist() == [5, 15, 25, 35, 45, 55]  # centre of each sixth
    assert frame_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    segs = segment_audio(np.arange(600.0), 6)
    assert [s[0] for s in segs] == [0, 100, 200, 300, 400, 500] and all(s.size == 100 for s in segs)


def test_synthetic_is_deterministic_and_rendered_at_the_requested_size() -> None:
    from explorer.data import MediaRequest

    a = load_dataset("synthetic", **TINY)
    b = load_dataset("synthetic:actors=4,clips_per_class=1,clip_seconds=0.6")
    assert a.fingerprint == b.fingerprint and len(a) == 4 * 8 * 1
    assert a.summary()["class_counts"] == dict.fromkeys(a.class_names, 4)
    req = MediaRequest(sample_rate_hz=8000, frames=3, height=20, width=30, channels=3)
    m1, m2 = a.read(5, req), b.read(5, req)
    assert m1.video.shape == (3, 20, 30, 3) and m1.video.dtype == np.uint8
    assert abs(m1.audio.size - 4800) < 0.11 * 4800  # ~0.6 s at 8 kHz
    np.testing.assert_array_equal(m1.video, m2.video)
    np.testing.assert_array_equal(m1.audio, m2.audio)
    other = load_dataset("synthetic", **TINY, seed=1)
    assert other.fingerprint != a.fingerprint
    assert not np.array_equal(other.read(5, req).audio[:100], m1.audio[:100])


def test_synthetic_options_are_checked() -> None:
    with pytest.raises(UsageError, match="difficulty"):
        load_dataset("synthetic", difficulty=2.0)
    with pytest.raises(UsageError, match="unknown synthetic option"):
        load_dataset("synthetic", colour="red")
    with pytest.raises(UsageError, match="unknown data set"):
        load_dataset("imagenet")


SPECS = [
    InputSpec(audio_kind="mfcc_mean", audio_shape=(40,), frames=1, channels=1, height=16, width=16),
    InputSpec(
        audio_kind="mfcc_seq",
        audio_shape=(20, 30),
        frames=4,
        channels=3,
        height=12,
        width=10,
        clip_seconds=1.0,
    ),
    InputSpec(
        audio_kind="logmel",
        audio_shape=(32, 50),
        frames=2,
        channels=1,
        height=8,
        width=8,
        n_fft=400,
        hop_length=160,
        clip_seconds=1.0,
    ),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.audio_kind)
def test_build_features_has_the_spec_shapes_and_is_cached(spec: InputSpec, tmp_path) -> None:
    ds = load_dataset("synthetic", **TINY)
    feats = build_features(ds, spec, cache_dir=tmp_path)
    n = len(ds)
    assert feats.audio.shape == (n, *spec.audio_shape) and feats.audio.dtype == np.float32
    assert feats.video.shape == (n, *spec.video_shape) and feats.video.dtype == np.float32
    assert feats.video.min() >= 0.0 and feats.video.max() <= 1.0
    assert np.isfinite(feats.audio).all() and feats.audio.std() > 0
    assert feats.labels.tolist() == [c.label for c in ds.clips]
    assert sorted(set(feats.actors.tolist())) == [0, 1, 2, 3]
    again = build_features(ds, spec, cache_dir=tmp_path)
    assert again.from_cache and not feats.from_cache
    np.testing.assert_array_equal(again.audio, feats.audio)
    np.testing.assert_array_equal(again.video_uint8, feats.video_uint8)


def test_corrupt_or_partial_cache_entries_are_rebuilt(tmp_path) -> None:
    spec = SPECS[0]
    ds = load_dataset("synthetic", **TINY)
    first = build_features(ds, spec, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    # a temporary file left by an interrupted build is never read back
    (tmp_path / f".{entry.stem}.abc.tmp").write_bytes(b"half written")
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])  # truncated
    assert load_entry(tmp_path, entry.stem) is None and not entry.exists()
    rebuilt = build_features(ds, spec, cache_dir=tmp_path)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(rebuilt.audio, first.audio)
    # flip bytes inside the stored audio array: the zip CRC catches it
    data = bytearray(entry.read_bytes())
    pos = bytes(data).find(b"NUMPY") + 200
    data[pos : pos + 8] = b"\x00\xff" * 4
    entry.write_bytes(bytes(data))
    assert not build_features(ds, spec, cache_dir=tmp_path).from_cache


def test_samples_per_clip_cuts_clips_into_aligned_segments(tmp_path) -> None:
    ds = load_dataset("synthetic", **TINY)
    feats = build_features(ds, SPECS[0], cache_dir=tmp_path, samples_per_clip=3)
    assert len(feats) == 3 * len(ds)
    assert feats.clip_index.tolist()[:6] == [0, 0, 0, 1, 1, 1]
    assert not np.array_equal(feats.audio[0], feats.audio[1])  # different segments
    split = make_split(feats, kind="stratified", seed=0)
    train_clips = set(feats.clip_index[split.train_idx].tolist())
    assert train_clips.isdisjoint(feats.clip_index[split.val_idx].tolist())


def test_class_count_mismatch_names_the_fix(tmp_path) -> None:
    spec = InputSpec(
        audio_kind="mfcc_mean",
        audio_shape=(40,),
        frames=1,
        channels=1,
        height=8,
        width=8,
        num_classes=6,
    )
    with pytest.raises(UsageError, match="num_classes=8"):
        build_features(load_dataset("synthetic", **TINY), spec, cache_dir=tmp_path)


@pytest.fixture(scope="module")
def small_features(tmp_path_factory):
    ds = load_dataset("synthetic", actors=6, clips_per_class=2, clip_seconds=0.6)
    return build_features(ds, SPECS[0], cache_dir=tmp_path_factory.mktemp("cache"))


def test_actor_split_holds_out_whole_actors(small_features) -> None:
    f = small_features
    split = make_split(f, kind="actor", seed=3, val_fraction=0.34)
    tr, va = set(f.actors[split.train_idx]), set(f.actors[split.val_idx])
    assert tr.isdisjoint(va) and len(va) == 2 and len(tr) == 4
    assert split.train_idx.size + split.val_idx.size == len(f)
    assert (
        make_split(f, kind="actor", seed=3).val_idx.tolist()
        == make_split(f, kind="actor", seed=3).val_idx.tolist()
    )


def test_stratified_kfold_and_loao_splits(small_features) -> None:
    f = small_features
    strat = make_split(f, kind="stratified", val_fraction=0.25)
    counts = np.bincount(f.labels[strat.val_idx], minlength=8)
    assert (counts == 3).all()  # 12 clips per class, 25 % each
    folds = [make_split(f, kind="kfold", fold=i, folds=4) for i in range(4)]
    union = np.sort(np.concatenate([s.val_idx for s in folds]))
    np.testing.assert_array_equal(union, np.arange(len(f)))  # each sample validated once
    loao = make_split(f, kind="loao", fold=2)
    assert set(f.actors[loao.val_idx].tolist()) == {2}
    with pytest.raises(UsageError, match="split kind"):
        make_split(f, kind="random")
    with pytest.raises(UsageError, match="fold"):
        make_split(f, kind="loao", fold=6)


def test_synthetic_modalities_are_complementary_by_design() -> None:
    """Every class pair differs in face or voice; neither alone separates all eight."""
    from explorer.data._types import RAVDESS_CLASSES
    from explorer.data.synthetic import _CLASS_PAIRS, _FACES, _VOICES

    pairs = [_CLASS_PAIRS[c] for c in RAVDESS_CLASSES]
    assert len(set(pairs)) == 8  # fused: all classes distinct
    faces = [f for f, _ in pairs]
    voices = [v for _, v in pairs]
    # the best a single modality can do is one class per distinct prototype: 5 of 8
    assert len(set(faces)) == 5 and len(set(voices)) == 5
    assert set(faces) == set(_FACES) and set(voices) == set(_VOICES)
    face_only_twins = {
        (a, b)
        for i, a in enumerate(RAVDESS_CLASSES)
        for b in RAVDESS_CLASSES[i + 1 :]
        if faces[i] == faces[RAVDESS_CLASSES.index(b)]
    }
    assert ("neutral", "calm") in face_only_twins and ("angry", "disgust") in face_only_twins
    # prototypes really differ in what they render
    assert all(
        np.abs(np.subtract(_FACES[a], _FACES[b])).max() >= 0.5
        for a in _FACES
        for b in _FACES
        if a < b
    )
    assert all(
        np.abs(np.subtract(_VOICES[a], _VOICES[b])).max() >= 0.5
        for a in _VOICES
        for b in _VOICES
        if a < b
    )
