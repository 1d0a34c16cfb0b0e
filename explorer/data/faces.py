"""Face detection and cropping with OpenCV's Haar cascade (Viola-Jones), as Ding et al. do.

The largest detected face is cropped with a small margin, made square, converted to gray or
kept RGB and resized (area interpolation). When no face is found the centre square of the
frame is used instead, and the caller is told so it can report how often that happened.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

__all__ = ["crop_face", "detect_face"]


@functools.lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # pragma: no cover - a broken OpenCV installation
        raise RuntimeError(f"OpenCV's Haar cascade {path} could not be loaded")
    return cascade


def detect_face(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest face ``(x, y, w, h)`` in an RGB uint8 image, or None."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # detect on a copy at most 480 px high: RAVDESS is 1280x720 and the face fills a third
    scale = min(1.0, 480.0 / max(gray.shape[0], 1))
    small = (
        cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else gray
    )
    min_side = max(24, int(0.1 * min(small.shape[:2])))
    faces = _cascade().detectMultiScale(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return tuple(round(v / scale) for v in (x, y, w, h))  # type: ignore[return-value]


def crop_face(
    rgb: np.ndarray,
    *,
    height: int,
    width: int,
    channels: int,
    box: tuple[int, int, int, int] | None = None,
    margin: float = 0.1,
) -> tuple[np.ndarray, bool]:
    """Crop the face (``box`` or the detected one) and resize it.

    Returns ``(crop uint8 (height, width, channels), found)``; ``found`` is False when the
    centre square was used because no face was detected.
    """
    if box is None:
        box = detect_face(rgb)
    found = box is not None
    ih, iw = rgb.shape[:2]
    if box is None:
        side = min(ih, iw)
        x0, y0, x1, y1 = (iw - side) // 2, (ih - side) // 2, (iw + side) // 2, (ih + side) // 2
    else:
        x, y, w, h = box
        side = int(max(w, h) * (1 + 2 * margin))
        cx, cy = x + w // 2, y + h // 2
        x0, y0 = max(cx - side // 2, 0), max(cy - side // 2, 0)
        x1, y1 = min(x0 + side, iw), min(y0 + side, ih)
    crop = rgb[y0:y1, x0:x1]
    if crop.size == 0:
        crop = rgb
    crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None]
    return np.ascontiguousarray(crop, dtype=np.uint8), found
