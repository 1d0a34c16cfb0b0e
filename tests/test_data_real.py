"""RAVDESS and CREMA-D loaders on small real files written in the published layouts.

The videos hold a real photograph (scikit-image's astronaut), so OpenCV's Haar cascade has a
face to find; the WAVs are real PCM files; one file of each set is corrupt.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from explorer.data import build_features, load_dataset
from explorer.data._media import read_clip
from explorer.data.faces import crop_face, detect_face
from explorer.errors import DataError, UsageError
from search_spaces import InputSpec

skimage_data = pytest.importorskip("skimage.data")

SPEC = InputSpec(
    audio_kind="mfcc_mean",
    audio_shape=(40,),
    frames=2,
    channels=1,
    height=32,
    width=32,
    num_classes=8,
)


def _face_frames(count: int = 8, size: int = 256) -> list[np.ndarray]:
    face = cv2.resize(skimage_data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    return [np.roll(bgr, shift=i, axis=1) for i in range(count)]  # a little head motion


def write_video(path: Path, fourcc: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _face_frames()
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*fourcc), 30.0, frames[0].shape[1::-1]
    )
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def write_wav(path: Path, *, sr: int = 48000, seconds: float = 0.6, pitch_hz: float = 180) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    y = 0.2 * np.sin(2 * np.pi * pitch_hz * t) * np.hanning(t.size)
    sf.write(str(path), y.astype(np.float32), sr, subtype="PCM_16")


@pytest.fixture(scope="module")
def ravdess_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ravdess")
    good = [  # (video name, actor folder kind)
        "01-01-03-01-01-01-01",  # happy, actor 1
        "01-01-05-02-02-01-01",  # angry, strong, statement 2, actor 1
        "01-02-04-01-01-02-02",  # song, sad, repetition 2, actor 2
        "01-01-01-01-01-01-02",  # neutral, actor 2
    ]
    for name in good:
        chan, actor = name.split("-")[1], name.split("-")[-1]
        kind = "Speech" if chan == "01" else "Song"
        write_video(root / f"Video_{kind}_Actor_{actor}" / f"Actor_{actor}" / f"{name}.mp4", "mp4v")
        write_wav(
            root / f"Audio_{kind}_Actors_01-24" / f"Actor_{actor}" / f"03-{name[3:]}.wav",
            pitch_hz=150 + 20 * int(name.split("-")[2]),
        )
    speech2 = root / "Video_Speech_Actor_02" / "Actor_02"
    # a corrupt video with its audio
    (speech2 / "01-01-06-01-02-01-02.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 500)
    write_wav(root / "Audio_Speech_Actors_01-24" / "Actor_02" / "03-01-06-01-02-01-02.wav")
    # a video whose audio file is missing
    write_video(speech2 / "02-01-07-01-01-01-02.mp4", "mp4v")
    # a video whose audio file is truncated (cut-off download)
    write_video(speech2 / "01-01-08-01-01-01-02.mp4", "mp4v")
    wav = root / "Audio_Speech_Actors_01-24" / "Actor_02" / "03-01-08-01-01-01-02.wav"
    write_wav(wav)
    wav.write_bytes(wav.read_bytes()[:3000])
    # a file that does not follow the naming code
    write_video(speech2 / "holiday.mp4", "mp4v")
    return root


def test_haar_cascade_finds_the_photographed_face() -> None:
    rgb = cv2.cvtColor(_face_frames(1)[0], cv2.COLOR_BGR2RGB)
    box = detect_face(rgb)
    assert box is not None
    x, y, w, h = box
    assert 60 <= x <= 120 and 10 <= y <= 60 and 40 <= w <= 80 and 40 <= h <= 80  # her face
    crop, found = crop_face(rgb, height=24, width=24, channels=1)
    assert found and crop.shape == (24, 24, 1)
    _, found = crop_face(np.full((120, 160, 3), 128, np.uint8), height=8, width=8, channels=3)
    assert not found  # a blank frame falls back to the centre square


def test_ravdess_labels_actors_and_skipped_files(ravdess_dir: Path) -> None:
    ds = load_dataset(f"ravdess:{ravdess_dir}")
    by_id = {c.clip_id: c for c in ds.clips}
    assert sorted(by_id) == [
        "01-01-01-01-01-02",
        "01-03-01-01-01-01",
        "01-05-02-02-01-01",
        "02-04-01-01-02-02",
    ]
    happy = by_id["01-03-01-01-01-01"]
    assert ds.class_names[happy.label] == "happy" and happy.actor == "01"
    angry = by_id["01-05-02-02-01-01"]
    assert ds.class_names[angry.label] == "angry" and angry.intensity == "strong"
    assert angry.statement == "Dogs are sitting by the door"
    song = by_id["02-04-01-01-02-02"]
    assert ds.class_names[song.label] == "sad" and song.extra["channel"] == "song"
    assert song.audio_path.name == "03-02-04-01-01-02-02.wav"
    assert ds.actors == ("01", "02")
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "unreadable video" in reasons["01-01-06-01-02-01-02.mp4"]
    assert "without its audio" in reasons["02-01-07-01-01-01-02.mp4"]
    assert "truncated" in reasons["03-01-08-01-01-01-02.wav"]
    assert "RAVDESS code" in reasons["holiday.mp4"]
    summary = ds.summary()
    assert summary["clips"] == 4 and summary["class_counts"]["angry"] == 1
    assert summary["class_counts"]["calm"] == 0


def test_ravdess_features_have_face_crops_and_resampled_audio(ravdess_dir, tmp_path) -> None:
    from explorer.data import MediaRequest

    ds = load_dataset(f"ravdess:{ravdess_dir}")
    media = read_clip(
        ds.clips[0], MediaRequest(sample_rate_hz=16000, frames=3, height=32, width=32, channels=3)
    )
    assert media.notes == ()  # the face was found in every sampled frame
    assert media.video.shape == (3, 32, 32, 3) and abs(media.audio.size - 9600) <= 2  # 0.6 s
    feats = build_features(ds, SPEC, cache_dir=tmp_path)
    assert feats.audio.shape == (4, 40) and feats.video.shape == (4, 2, 1, 32, 32)
    assert np.isfinite(feats.audio).all()
    # different pitches give different MFCCs; the same face gives similar crops
    assert np.abs(feats.audio[0] - feats.audio[1]).max() > 1.0
    assert np.abs(feats.video[0] - feats.video[2]).mean() < 0.1
    # the crop is the face, not the whole frame: compare with a plain resize of the frame
    whole = (
        cv2.resize(
            cv2.cvtColor(_face_frames(1)[0], cv2.COLOR_BGR2GRAY),
            (32, 32),
            interpolation=cv2.INTER_AREA,
        )
        / 255.0
    )
    assert np.abs(feats.video[0, 0, 0] - whole).mean() > 0.1
    assert build_features(ds, SPEC, cache_dir=tmp_path).from_cache


@pytest.fixture(scope="module")
def cremad_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cremad")
    for i, name in enumerate(["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1002_TIE_SAD_LO"]):
        write_video(root / "VideoFlash" / f"{name}.flv", "FLV1")
        write_wav(root / "AudioWAV" / f"{name}.wav", sr=16000, pitch_hz=150 + 40 * i)
    (root / "VideoFlash" / "1002_IOM_NEU_XX.flv").write_bytes(b"FLV\x01" + b"\x07" * 300)
    write_wav(root / "AudioWAV" / "1002_IOM_NEU_XX.wav", sr=16000)
    write_wav(root / "AudioWAV" / "1003_DFA_FEA_MD.wav", sr=16000)  # no video
    return root


def test_cremad_labels_actors_skipped_and_features(cremad_dir: Path, tmp_path) -> None:
    ds = load_dataset(f"cremad:{cremad_dir}")
    assert ds.class_names == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    got = {c.clip_id: (ds.class_names[c.label], c.actor, c.intensity) for c in ds.clips}
    assert got == {
        "1001_DFA_ANG_XX": ("angry", "1001", "unspecified"),
        "1001_IEO_HAP_HI": ("happy", "1001", "high"),
        "1002_TIE_SAD_LO": ("sad", "1002", "low"),
    }
    assert ds.clips[0].statement == "Don't forget a jacket"
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "unreadable video" in reasons["1002_IOM_NEU_XX.flv"]
    assert "without its video" in reasons["1003_DFA_FEA_MD.wav"]
    spec6 = InputSpec(
        audio_kind="mfcc_seq",
        audio_shape=(40, 20),
        frames=3,
        channels=3,
        height=24,
        width=24,
        num_classes=6,
        clip_seconds=0.5,
    )
    feats = build_features(ds, spec6, cache_dir=tmp_path)
    assert feats.audio.shape == (3, 40, 20) and feats.video.shape == (3, 3, 3, 24, 24)
    with pytest.raises(UsageError, match="num_classes=6"):
        build_features(ds, SPEC, cache_dir=tmp_path)


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_dataset(f"ravdess:{tmp_path / 'nope'}")
    (tmp_path / "AudioWAV").mkdir()
    (tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable cremad clip"):
        load_dataset(f"cremad:{tmp_path}")
    with pytest.raises(UsageError, match="needs a directory"):
        load_dataset("ravdess")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from explorer.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_data_inspect_json_and_errors(ravdess_dir: Path, tmp_path: Path) -> None:
    out = _cli("data", "inspect", f"ravdess:{ravdess_dir}", "--format", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["clips"] == 4 and info["actors"] == 2 and len(info["skipped"]) == 4
    assert info["class_counts"]["happy"] == 1


@pytest.mark.parametrize(
    ("sub", "code", "needle"), [("", 1, "no usable ravdess clip"), ("nope", 2, "does not exist")]
)
def test_cli_data_inspect_errors_are_one_line(tmp_path, capsys, sub, code, needle) -> None:
    from explorer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "inspect", f"ravdess:{tmp_path / sub}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == code and len(err) == 1 and needle in err[0]
