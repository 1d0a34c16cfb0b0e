"""Train/validation splits of a ``FeatureSet``.

``actor`` (default) holds out whole actors: no one is both in training and validation, the
honest protocol for emotion recognition. ``stratified`` holds out a share of each class at
random, the protocol most papers use (the same actor sits on both sides, so it scores
higher). ``kfold`` is stratified k-fold, ``loao`` leave-one-actor-out; both take ``fold``.
Samples cut from one clip (``samples_per_clip > 1``) always stay on the same side, so no clip
leaks into its own validation set.
"""

from __future__ import annotations

import numpy as np

from explorer.errors import UsageError

from ._types import FeatureSet, Split

__all__ = ["SPLIT_KINDS", "make_split", "split_count"]

SPLIT_KINDS = ("actor", "stratified", "kfold", "loao")


def split_count(features: FeatureSet, *, kind: str, folds: int = 5) -> int:
    """How many folds ``kind`` has (1 for the single hold-out splits)."""
    if kind == "kfold":
        return folds
    if kind == "loao":
        return int(np.unique(features.actors).size)
    return 1


def make_split(
    features: FeatureSet,
    *,
    kind: str = "actor",
    seed: int = 0,
    val_fraction: float = 0.25,
    fold: int = 0,
    folds: int = 5,
) -> Split:
    """Split ``features`` into training and validation indices.

    Args:
        kind: ``actor``, ``stratified``, ``kfold`` or ``loao`` (see the module docstring).
        seed: shuffles actors / clips reproducibly.
        val_fraction: share held out by ``actor`` (of actors, at least one) and
            ``stratified`` (of each class's clips).
        fold, folds: which fold of ``kfold`` (``folds`` folds) or ``loao`` (actor ``fold``).

    Raises:
        UsageError: unknown kind, bad fraction or fold, or too few actors to hold one out.
    """
    if kind not in SPLIT_KINDS:
        raise UsageError(f"split kind {kind!r} is unknown: use one of {', '.join(SPLIT_KINDS)}")
    if not (0.0 < val_fraction < 1.0):
        raise UsageError(f"val_fraction={val_fraction!r} is invalid: use a number in (0, 1)")
    rng = np.random.default_rng(seed)
    clips = features.clip_index
    if kind in ("actor", "loao"):
        actors = np.unique(features.actors)
        if actors.size < 2:
            raise UsageError(
                f"an actor-independent split needs at least 2 actors, the data has {actors.size}: "
                "use --split stratified"
            )
        if kind == "actor":
            count = min(max(1, round(val_fraction * actors.size)), actors.size - 1)
            held = rng.permutation(actors)[:count]
            desc = f"actors held out: {', '.join(features.actor_names[a] for a in sorted(held))}"
        else:
            if not (0 <= fold < actors.size):
                raise UsageError(f"loao fold={fold} is invalid: use 0..{actors.size - 1}")
            held = actors[fold : fold + 1]
            desc = f"leave-one-actor-out: actor {features.actor_names[held[0]]}"
        val = np.isin(features.actors, held)
        return _split(val, kind, desc)
    # stratified / kfold work on clips, stratified by class
    unique_clips, first = np.unique(clips, return_index=True)
    clip_labels = features.labels[first]
    val_clips: list[np.ndarray] = []
    if kind == "kfold":
        if not (isinstance(folds, int) and folds >= 2):
            raise UsageError(f"folds={folds!r} is invalid: use an integer >= 2")
        if not (0 <= fold < folds):
            raise UsageError(f"kfold fold={fold} is invalid: use 0..{folds - 1}")
    for label in np.unique(clip_labels):
        members = rng.permutation(unique_clips[clip_labels == label])
        if kind == "stratified":
            count = min(max(1, round(val_fraction * members.size)), max(members.size - 1, 1))
            val_clips.append(members[:count])
        else:
            val_clips.append(np.array_split(members, folds)[fold])
    val = np.isin(clips, np.concatenate(val_clips))
    desc = (
        f"stratified random, {val_fraction:.0%} of each class's clips"
        if kind == "stratified"
        else f"stratified {folds}-fold, fold {fold}"
    )
    return _split(val, kind, desc)


def _split(val_mask: np.ndarray, kind: str, desc: str) -> Split:
    return Split(
        train_idx=np.flatnonzero(~val_mask).astype(np.int64),
        val_idx=np.flatnonzero(val_mask).astype(np.int64),
        kind=kind,
        description=desc,
    )
