"""Hostile data: FIFOs named like clips, NaN/inf samples, cache entries with bad labels."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from explorer.data import build_features, load_dataset, make_split
from explorer.data import cache as feature_cache
from explorer.training import NonFiniteLossError, TrainSettings, train
from search_spaces import InputSpec
from tests.test_data_real import write_video, write_wav

SPEC = InputSpec(
    audio_kind="mfcc_mean",
    audio_shape=(40,),
    frames=1,
    channels=1,
    height=16,
    width=16,
    num_classes=8,
)
TINY = "synthetic:actors=4,clips_per_class=1,clip_seconds=0.5"


def _ravdess(root: Path) -> Path:
    """Two good RAVDESS clips (actor 1)."""
    for name in ("01-01-03-01-01-01-01", "01-01-05-02-02-01-01"):
        write_video(root / "Video_Speech_Actor_01" / "Actor_01" / f"{name}.mp4", "mp4v")
        write_wav(root / "Audio_Speech_Actors_01-24" / "Actor_01" / f"03-{name[3:]}.wav")
    return root


def _with_timeout(fn, seconds: float = 60.0):
    """Run ``fn`` in a thread: a FIFO read would block forever, so fail instead of hanging."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked on a special file"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_fifos_named_like_clips_are_skipped_not_opened(tmp_path: Path) -> None:
    root = _ravdess(tmp_path / "ravdess")
    fifo_video = root / "Video_Speech_Actor_01" / "Actor_01" / "01-01-04-01-01-01-01.mp4"
    fifo_audio = root / "Audio_Speech_Actors_01-24" / "Actor_01" / "03-01-04-01-01-01-01.wav"
    os.mkfifo(fifo_video)
    os.mkfifo(fifo_audio)
    ds = _with_timeout(lambda: load_dataset(f"ravdess:{root}"))
    assert len(ds) == 2
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "FIFO" in reasons[fifo_video.name]
    feats = _with_timeout(lambda: build_features(ds, SPEC, use_cache=False))
    assert len(feats) == 2


def test_wav_of_nan_or_inf_samples_is_skipped_with_its_reason(tmp_path: Path) -> None:
    root = _ravdess(tmp_path / "ravdess")
    for emotion, value in (("04", np.nan), ("06", np.inf)):
        name = f"01-01-{emotion}-01-01-01-01"
        write_video(root / "Video_Speech_Actor_01" / "Actor_01" / f"{name}.mp4", "mp4v")
        y = np.full(4800, 0.1, dtype=np.float32)
        y[100] = value
        wav = root / "Audio_Speech_Actors_01-24" / "Actor_01" / f"03-{name[3:]}.wav"
        sf.write(str(wav), y, 48000, subtype="FLOAT")
    ds = load_dataset(f"ravdess:{root}")
    assert len(ds) == 2
    bad = [s for s in ds.skipped if "NaN or infinite" in s.reason]
    assert sorted(Path(s.path).name.split("-")[2] for s in bad) == ["04", "06"]
    feats = build_features(ds, SPEC, use_cache=False)
    assert np.isfinite(feats.audio).all()


def test_non_finite_features_stop_training_with_the_cause(tmp_path: Path) -> None:
    import search_spaces as ss

    model = ss.build(ss.config_from_string("ding:num_classes=8"))
    feats = build_features(load_dataset(TINY), model.input_spec, cache_dir=tmp_path)
    audio = feats.audio.copy()
    audio[3, 0] = np.nan  # as a corrupt clip would leave them
    poisoned = dataclasses.replace(feats, audio=audio)
    split = make_split(poisoned, kind="stratified", seed=0)
    settings = TrainSettings(epochs=1, batch_size=64, normalize_audio=False)
    with pytest.raises(NonFiniteLossError, match="input features hold NaN") as info:
        train(model, poisoned, split, settings=settings)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def cached(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A cache directory holding the one entry of TINY's features, and their labels."""
    directory = tmp_path_factory.mktemp("cache")
    return directory, build_features(load_dataset(TINY), SPEC, cache_dir=directory).labels


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda a: a["labels"].__setitem__(0, 99), "label past the class count"),
        (lambda a: a["labels"].__setitem__(1, -1), "negative label"),
        (lambda a: a.update(actors=a["actors"][:-1]), "short array"),
        (lambda a: a.update(audio=a["audio"][:, :10]), "wrong audio shape"),
    ],
)
def test_a_cache_entry_with_a_valid_checksum_but_bad_content_is_rebuilt(
    cached: tuple[Path, np.ndarray], tmp_path: Path, edit, why: str
) -> None:
    ds = load_dataset(TINY)
    tmp_path = tmp_path / "cache"
    shutil.copytree(cached[0], tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    key = entry.stem
    arrays, meta = feature_cache.load_entry(tmp_path, key)
    arrays = {k: v.copy() for k, v in arrays.items()}
    edit(arrays)
    meta = {k: v for k, v in meta.items() if k not in ("key", "shapes")}
    feature_cache.save_entry(tmp_path, key, arrays, meta)  # consistent CRCs and shapes
    assert feature_cache.load_entry(tmp_path, key) is not None, why
    again = build_features(ds, SPEC, cache_dir=tmp_path)
    assert not again.from_cache, why  # rebuilt, not trusted
    np.testing.assert_array_equal(again.labels, cached[1])
    assert build_features(ds, SPEC, cache_dir=tmp_path).from_cache  # the rebuilt entry is used
