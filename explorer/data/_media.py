"""Reading real clips: WAV audio (soundfile) and video frames (OpenCV), with face crops."""

from __future__ import annotations

import hashlib
import os
from math import gcd
from pathlib import Path

import cv2
import numpy as np

from explorer.errors import DataError
from explorer.files import irregular_reason

from ._types import ClipInfo, ClipMedia, MediaRequest
from .faces import crop_face
from .features import frame_indices

__all__ = ["check_audio", "check_video", "files_fingerprint", "read_clip"]

# Corrupt files are reported in ``Dataset.skipped``; FFmpeg's own messages about them would
# only clutter stderr (and break the CLI's one-line errors). Read when the first capture opens.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")


def _wav_truncation(path: Path) -> str | None:
    """For RIFF/WAVE files: a reason when the data chunk is shorter than its header declares
    (libsndfile silently reads what is there, so a cut-off download would go unnoticed)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                break
            declared = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                have = size - pos - 8
                if declared != 0xFFFFFFFF and have < declared:
                    return f"truncated audio (header declares {declared} bytes, file holds {have})"
                return None
            pos += 8 + declared + (declared & 1)
    return None


_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_NON_FINITE = "audio holds NaN or infinite samples (a corrupt float WAV)"


def check_audio(path: Path) -> str | None:
    """None when ``path`` is a readable audio file with samples, else the reason it is not."""
    import soundfile as sf

    path = Path(path)
    irregular = irregular_reason(path)  # a FIFO named like a .wav would block the scan
    if irregular:
        return irregular
    try:
        truncated = _wav_truncation(path)
        if truncated:
            return truncated
        info = sf.info(str(path))
        if info.frames <= 0:
            return "audio file has no samples"
        with sf.SoundFile(str(path)) as fh:  # read the tail: truncated files fail here
            fh.seek(max(info.frames - 16, 0))
            if fh.read(16).size == 0:
                return "audio file is truncated"
            if info.subtype in _FLOAT_SUBTYPES:  # only float samples can be NaN or inf
                fh.seek(0)
                for block in fh.blocks(blocksize=1 << 16, dtype="float32"):
                    if not np.isfinite(block).all():
                        return _NON_FINITE
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
        return f"unreadable audio ({' '.join(str(exc).split())[:120]})"
    return None


def check_video(path: Path) -> str | None:
    """None when OpenCV opens ``path`` and decodes a first frame, else the reason."""
    irregular = irregular_reason(path)  # FFmpeg would wait forever on a FIFO
    if irregular:
        return irregular
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return "unreadable video (OpenCV cannot open it)"
        ok, frame = cap.read()
        if not ok or frame is None:
            return "unreadable video (no frame could be decoded)"
    finally:
        cap.release()
    return None


def files_fingerprint(kind: str, root: Path, paths: list[Path]) -> str:
    """A digest of the names, sizes and modification times of ``paths`` under ``root``."""
    h = hashlib.sha256(kind.encode())
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return f"{kind}-{h.hexdigest()[:16]}"


def _read_audio(path: Path, sample_rate_hz: int) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    irregular = irregular_reason(path)  # replaced by a FIFO since the scan
    if irregular:
        raise DataError(f"audio {path} {irregular}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(f"cannot read audio {path}: {' '.join(str(exc).split())[:120]}") from None
    if not np.isfinite(data).all():
        raise DataError(f"{_NON_FINITE}: {path}")
    y = data.mean(axis=1)
    if sr != sample_rate_hz:
        g = gcd(int(sr), int(sample_rate_hz))
        y = resample_poly(y, sample_rate_hz // g, int(sr) // g).astype(np.float32)
    return np.ascontiguousarray(y, dtype=np.float32)


def _read_frames(path: Path, count: int) -> list[np.ndarray]:
    """RGB frames: the central frame of each of ``count`` equal segments of the video."""
    irregular = irregular_reason(path)
    if irregular:
        raise DataError(f"video {path} {irregular}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"cannot open video {path}")
        frames: list[np.ndarray] = []
        while True:  # decode all: frame counts in containers are often wrong, clips are short
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise DataError(f"no frame could be decoded from video {path}")
    picks = frame_indices(len(frames), count)
    return [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in picks]


def read_clip(clip: ClipInfo, request: MediaRequest) -> ClipMedia:
    """Decode a real clip: audio at the requested rate, face crops of the sampled frames."""
    if clip.video_path is None or clip.audio_path is None:
        raise DataError(f"clip {clip.clip_id} lacks its video or audio file")
    audio = _read_audio(clip.audio_path, request.sample_rate_hz)
    crops, misses = [], 0
    for rgb in _read_frames(clip.video_path, request.frames):
        crop, found = crop_face(
            rgb, height=request.height, width=request.width, channels=request.channels
        )
        misses += not found
        crops.append(crop)
    notes = (f"no face found in {misses} of {request.frames} frames",) if misses else ()
    return ClipMedia(audio=audio, video=np.stack(crops), notes=notes)


def build_real_dataset(
    *,
    kind: str,
    root: Path,
    class_names: tuple[str, ...],
    pairs: dict[tuple, dict[str, object]],
    skipped: list,
    layout_hint: str,
    description: str,
):
    """Check and pair the scanned files into a ``Dataset`` (shared by RAVDESS and CREMA-D).

    ``pairs`` maps a clip key to ``{"video": Path, "audio": Path, "info": dict(ClipInfo
    fields)}``; a clip missing either file, or with an unreadable one, is skipped with the
    reason. Raises ``DataError`` when nothing usable is left.
    """
    from ._types import Dataset, SkippedFile

    clips, used = [], []
    for key in sorted(pairs):
        entry = pairs[key]
        video, audio, info = entry.get("video"), entry.get("audio"), entry["info"]
        if video is None:
            skipped.append(SkippedFile(path=str(audio), reason="audio without its video file"))
            continue
        if audio is None:
            skipped.append(
                SkippedFile(
                    path=str(video), reason=f"video without its audio file ({entry['want_audio']})"
                )
            )
            continue
        bad = check_video(video)  # type: ignore[arg-type]
        if bad:
            skipped.append(SkippedFile(path=str(video), reason=bad))
            continue
        bad = check_audio(audio)  # type: ignore[arg-type]
        if bad:
            skipped.append(SkippedFile(path=str(audio), reason=bad))
            continue
        clips.append(ClipInfo(video_path=video, audio_path=audio, **info))  # type: ignore[arg-type]
        used += [video, audio]
    if not clips:
        first = f" (first: {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise DataError(
            f"no usable {kind} clip in {root}: {len(skipped)} file(s) skipped{first}; expected "
            f"{layout_hint}"
        )
    return Dataset(
        name=f"{kind}:{root}",
        class_names=class_names,
        clips=tuple(clips),
        fingerprint=files_fingerprint(kind, root, used),  # type: ignore[arg-type]
        reader=read_clip,
        skipped=tuple(skipped),
        description=description,
    )


def resolve_root(kind: str, directory: str | Path) -> Path:
    """The data set directory, or a ``UsageError`` naming the fix."""
    from explorer.errors import UsageError

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UsageError(
            f"{kind} directory {str(root)!r} does not exist or is not a directory: "
            f"give the folder you unpacked {kind} into, e.g. {kind}:~/data/{kind}"
        )
    return root.resolve()
