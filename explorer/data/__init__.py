"""Data sets, features and splits for training audio-visual emotion models.

    >>> from explorer.data import load_dataset, build_features, make_split
    >>> ds = load_dataset("synthetic")                # or "ravdess:DIR", "cremad:DIR"
    >>> feats = build_features(ds, model.input_spec)  # cached on disk
    >>> split = make_split(feats, kind="actor")       # actor-independent hold-out

``load_dataset`` accepts ``synthetic`` (options as keyword arguments or
``synthetic:actors=6,clips_per_class=2,difficulty=0.3``), ``ravdess:DIR`` and ``cremad:DIR``.
"""

from __future__ import annotations

from typing import Any

from explorer.errors import UsageError

from ._build import build_features
from ._types import ClipInfo, ClipMedia, Dataset, FeatureSet, MediaRequest, SkippedFile, Split
from .splits import SPLIT_KINDS, make_split, split_count

__all__ = [
    "SPLIT_KINDS",
    "ClipInfo",
    "ClipMedia",
    "Dataset",
    "FeatureSet",
    "MediaRequest",
    "SkippedFile",
    "Split",
    "build_features",
    "inspect_dataset",
    "load_dataset",
    "make_split",
    "split_count",
]


def _parse_options(text: str) -> dict[str, Any]:
    from search_spaces import parse_value

    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"data set option {part!r} is malformed: write key=value, "
                "e.g. synthetic:actors=6,difficulty=0.3"
            )
        options[key.strip()] = parse_value(value)
    return options


def load_dataset(name: str = "synthetic", **options: Any) -> Dataset:
    """Open a data set by name.

    Args:
        name: ``synthetic`` (optionally ``synthetic:key=value,...``), ``ravdess:DIR`` or
            ``cremad:DIR``.
        options: for ``synthetic``, ``SyntheticConfig`` fields (actors, clips_per_class,
            clip_seconds, difficulty, seed).

    Raises:
        UsageError: unknown name or option, missing directory.
        DataError: a directory with no usable clip.
    """
    head, _, rest = str(name).partition(":")
    head = head.strip().lower()
    if head == "synthetic":
        from .synthetic import load_synthetic

        return load_synthetic(**{**_parse_options(rest), **options})
    if head in ("ravdess", "cremad", "crema-d"):
        if not rest.strip():
            raise UsageError(
                f"data set {name!r} needs a directory: write {head}:DIR, e.g. {head}:~/data/{head}"
            )
        if options:
            raise UsageError(f"data set {head} takes no options, got {sorted(options)}")
        if head == "ravdess":
            from .ravdess import load_ravdess

            return load_ravdess(rest.strip())
        from .cremad import load_cremad

        return load_cremad(rest.strip())
    raise UsageError(f"unknown data set {name!r}: use synthetic, ravdess:DIR or cremad:DIR")


def inspect_dataset(name: str, **options: Any) -> dict[str, Any]:
    """``load_dataset(name).summary()``: clips, actors, per-class counts, skipped files."""
    return load_dataset(name, **options).summary()
