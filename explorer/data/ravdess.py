"""RAVDESS loader (Livingstone & Russo 2018): ``ravdess:DIR``.

Layout as published: ``Video_Speech_Actor_XX/Actor_XX/01-01-EE-II-SS-RR-AA.mp4`` (and
``Video_Song_Actor_XX``) plus the audio-only archives
``Audio_Speech_Actors_01-24/Actor_XX/03-01-...wav`` and ``Audio_Song_Actors_01-24``. Any folder
nesting works: every ``.mp4``/``.wav`` under DIR is read by its name, ``MM-VC-EE-II-SS-RR-AA``
= modality (01 audio-video, 02 video-only, 03 audio-only), vocal channel (01 speech,
02 song), emotion (01..08 = neutral, calm, happy, sad, angry, fearful, disgust, surprised),
intensity (01 normal, 02 strong), statement (01 "Kids are talking by the door", 02 "Dogs are
sitting by the door"), repetition, actor.

A video is paired with the ``03-...`` WAV with the same remaining fields (OpenCV cannot read the
audio track of the ``.mp4``). A video without its WAV, a WAV without its video, a badly named or
unreadable/truncated file is reported in ``skipped`` and left out; when a clip exists both as
01 (with sound) and 02 (silent) video, the 01 file is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._media import build_real_dataset, resolve_root
from ._types import RAVDESS_CLASSES, Dataset, SkippedFile

__all__ = ["load_ravdess", "parse_ravdess_name"]

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}


def parse_ravdess_name(stem: str) -> dict[str, int] | None:
    """The seven code fields of a RAVDESS file name, or None when it does not follow the code."""
    m = _NAME.match(stem)
    if not m:
        return None
    mod, chan, emo, inten, stmt, rep, actor = (int(g) for g in m.groups())
    if not (
        1 <= mod <= 3
        and chan in (1, 2)
        and 1 <= emo <= 8
        and inten in (1, 2)
        and stmt in (1, 2)
        and rep in (1, 2)
        and actor >= 1
    ):
        return None
    if emo == 1 and inten == 2:  # RAVDESS has no strong neutral
        return None
    return {
        "modality": mod,
        "channel": chan,
        "emotion": emo,
        "intensity": inten,
        "statement": stmt,
        "repetition": rep,
        "actor": actor,
    }


def load_ravdess(directory: str | Path) -> Dataset:
    """Scan ``directory`` for RAVDESS clips (speech and song). See the module docstring."""
    root = resolve_root("ravdess", directory)
    pairs: dict[tuple, dict[str, object]] = {}
    skipped: list[SkippedFile] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mp4", ".wav")):
        code = parse_ravdess_name(path.stem)
        if code is None:
            skipped.append(
                SkippedFile(
                    path=str(path),
                    reason="name does not follow the RAVDESS code MM-VC-EE-II-SS-RR-AA",
                )
            )
            continue
        key = (
            code["actor"],
            code["channel"],
            code["emotion"],
            code["intensity"],
            code["statement"],
            code["repetition"],
        )
        rest = "-".join(
            f"{v:02d}"
            for v in (
                code["channel"],
                code["emotion"],
                code["intensity"],
                code["statement"],
                code["repetition"],
                code["actor"],
            )
        )
        entry = pairs.setdefault(
            key,
            {
                "want_audio": f"03-{rest}.wav",
                "info": {
                    "clip_id": rest,
                    "label": code["emotion"] - 1,
                    "actor": f"{code['actor']:02d}",
                    "intensity": "normal" if code["intensity"] == 1 else "strong",
                    "statement": _STATEMENTS[code["statement"]],
                    "extra": {
                        "channel": "speech" if code["channel"] == 1 else "song",
                        "repetition": code["repetition"],
                    },
                },
            },
        )
        if path.suffix.lower() == ".wav":
            entry["audio"] = path
        elif code["modality"] == 1 or "video" not in entry:  # prefer 01 (it has sound)
            entry["video"] = path
    return build_real_dataset(
        kind="ravdess",
        root=root,
        class_names=RAVDESS_CLASSES,
        pairs=pairs,
        skipped=skipped,
        layout_hint=(
            "Video_Speech_Actor_XX/Actor_XX/01-01-EE-II-SS-RR-AA.mp4 with "
            "Audio_Speech_Actors_01-24/Actor_XX/03-01-EE-II-SS-RR-AA.wav"
        ),
        description=f"RAVDESS at {root}",
    )
