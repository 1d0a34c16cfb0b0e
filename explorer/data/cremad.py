"""CREMA-D loader (Cao et al. 2014): ``cremad:DIR``.

Layout as published: ``VideoFlash/1001_DFA_ANG_XX.flv`` and ``AudioWAV/1001_DFA_ANG_XX.wav``
(any nesting works; ``.mp4`` videos are accepted too). The name is actor (1001..1091),
sentence code (12 sentences, e.g. DFA = "Don't forget a jacket"), emotion (ANG, DIS, FEA, HAP,
NEU, SAD) and intensity (LO, MD, HI, XX = unspecified). Six classes, in the order of
``CREMAD_CLASSES``. Unpaired, badly named or unreadable files are reported and skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._media import build_real_dataset, resolve_root
from ._types import Dataset, SkippedFile

__all__ = ["CREMAD_CLASSES", "load_cremad", "parse_cremad_name"]

CREMAD_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "disgust")
_EMOTIONS = {"NEU": 0, "HAP": 1, "SAD": 2, "ANG": 3, "FEA": 4, "DIS": 5}
_INTENSITY = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def parse_cremad_name(stem: str) -> dict[str, object] | None:
    """Actor, sentence, label and intensity of a CREMA-D file name, or None."""
    m = _NAME.match(stem)
    if not m or m.group(3) not in _EMOTIONS or m.group(4) not in _INTENSITY:
        return None
    if m.group(2) not in _SENTENCES:
        return None
    return {
        "actor": m.group(1),
        "sentence": m.group(2),
        "label": _EMOTIONS[m.group(3)],
        "intensity": _INTENSITY[m.group(4)],
    }


def load_cremad(directory: str | Path) -> Dataset:
    """Scan ``directory`` for CREMA-D clips. See the module docstring."""
    root = resolve_root("cremad", directory)
    pairs: dict[tuple, dict[str, object]] = {}
    skipped: list[SkippedFile] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".flv", ".mp4", ".wav")):
        code = parse_cremad_name(path.stem)
        if code is None:
            skipped.append(
                SkippedFile(
                    path=str(path), reason="name does not follow the CREMA-D code 1001_DFA_ANG_XX"
                )
            )
            continue
        entry = pairs.setdefault(
            (path.stem,),
            {
                "want_audio": f"{path.stem}.wav",
                "info": {
                    "clip_id": path.stem,
                    "label": code["label"],
                    "actor": code["actor"],
                    "intensity": code["intensity"],
                    "statement": _SENTENCES[str(code["sentence"])],
                    "extra": {"sentence_code": code["sentence"]},
                },
            },
        )
        if path.suffix.lower() == ".wav":
            entry["audio"] = path
        elif path.suffix.lower() == ".flv" or "video" not in entry:
            entry["video"] = path
    return build_real_dataset(
        kind="cremad",
        root=root,
        class_names=CREMAD_CLASSES,
        pairs=pairs,
        skipped=skipped,
        layout_hint="VideoFlash/1001_DFA_ANG_XX.flv with AudioWAV/1001_DFA_ANG_XX.wav",
        description=f"CREMA-D at {root}",
    )
