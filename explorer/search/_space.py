"""Map the families' SPACEs onto Optuna distributions, one ``suggest_*`` per field.

The family is ``trial.suggest_categorical("family", families)``; each field of each SPACE
becomes ``f"{family}.{field}"`` so distributions of different families never collide. Optuna's
categorical values must be None/bool/int/float/str, so tuple values are offered as JSON text
(``"[16, 32]"``) and decoded by position. ``max_frames`` / ``max_image_px`` drop larger choices
of the ``frames`` and ``image_size_px`` fields (the caps are part of the stored settings, so
every trial of a study sees the same distributions).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import search_spaces as ss

__all__ = ["capped_space", "paper_presets", "preset_params", "suggest_config"]

_PRIMITIVE = (type(None), bool, int, float, str)
# Field names that carry the video input's frame count and image side in the families.
_FRAME_FIELDS = ("frames",)
_IMAGE_FIELDS = ("image_size_px",)


def _encode(value: Any) -> Any:
    return value if isinstance(value, _PRIMITIVE) else json.dumps(value)


def _cap(param: Any, limit: int | None) -> Any:
    """``param`` without the values above ``limit`` (at least its smallest value is kept)."""
    if limit is None:
        return param
    if isinstance(param, ss.Choice):
        numeric = [v for v in param.values if isinstance(v, (int, float)) and v <= limit]
        if not numeric:
            numeric = [min(v for v in param.values if isinstance(v, (int, float)))]
        return dataclasses.replace(param, values=tuple(numeric))
    if isinstance(param, ss.IntRange):
        return dataclasses.replace(param, high=max(param.low, min(param.high, limit)))
    return param


def capped_space(
    family: str, *, max_frames: int | None, max_image_px: int | None
) -> dict[str, Any]:
    """``family``'s SPACE with the frame and image-size caps applied."""
    space = dict(ss.get_family(family).space)
    for name, param in space.items():
        if name in _FRAME_FIELDS:
            space[name] = _cap(param, max_frames)
        elif name in _IMAGE_FIELDS:
            space[name] = _cap(param, max_image_px)
    return space


def paper_presets(families: Sequence[str]) -> list[str]:
    """The papers' own models of ``families``: a preset name without a suffix (``ding2025``,
    not its ablations), sorted by name."""
    return [
        name for name, fam in sorted(ss.presets().items()) if fam in families and "_" not in name
    ]


def _project(param: Any, value: Any) -> Any:
    """``value`` as ``param`` would draw it (encoded): a number outside the space moves to the
    nearest value in it (so a 64-px face becomes the 48-px cap); None when nothing is close."""
    if isinstance(param, ss.Choice):
        encoded = [_encode(v) for v in param.values]
        if _encode(value) in encoded:
            return _encode(value)
        numeric = [v for v in param.values if isinstance(v, (int, float))]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and numeric:
            return _encode(min(numeric, key=lambda v: (abs(v - value), v)))
        return None
    if isinstance(param, ss.IntRange):
        clipped = min(max(int(value), param.low), param.high)
        if not param.log:
            clipped = param.low + round((clipped - param.low) / param.step) * param.step
        return int(min(clipped, param.high))
    if isinstance(param, ss.FloatRange):
        return float(min(max(float(value), param.low), param.high))
    return None


def preset_params(
    family: str, preset: Any, *, max_frames: int | None, max_image_px: int | None
) -> dict[str, Any]:
    """The trial parameters (``f"{family}.{field}"`` -> raw draw) that reproduce ``preset``
    in ``family``'s capped space, each field projected onto the space where the preset lies
    outside it (its frames and image size over the caps, most often); a field with no close
    value is left out (the sampler draws it)."""
    space = capped_space(family, max_frames=max_frames, max_image_px=max_image_px)
    values = ss.config_to_dict(preset)
    out = {}
    for name, param in space.items():
        if name not in values:
            continue
        value = values[name]
        projected = _project(param, tuple(value) if isinstance(value, list) else value)
        if projected is not None:
            out[f"{family}.{name}"] = projected
    return out


def _suggest(trial: Any, name: str, param: Any) -> Any:
    if isinstance(param, ss.Choice):
        encoded = [_encode(v) for v in param.values]
        picked = trial.suggest_categorical(name, encoded)
        return param.values[encoded.index(picked)]
    if isinstance(param, ss.IntRange):
        if param.log and param.step != 1:  # Optuna has no stepped log ints: snap to the grid
            raw = trial.suggest_int(name, param.low, param.high, log=True)
            snapped = param.low + round((raw - param.low) / param.step) * param.step
            return int(min(max(snapped, param.low), param.high))
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, ss.FloatRange):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    raise TypeError(f"unknown SPACE parameter type {type(param).__name__} for {name}")


def suggest_config(
    trial: Any,
    families: Sequence[str],
    *,
    max_frames: int | None = None,
    max_image_px: int | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> tuple[str, Mapping[str, Any], Any]:
    """Draw a family and its fields on ``trial``; return ``(family, values, config)``.

    Every field of every family is drawn on every trial, although only the chosen family's
    active fields are used: NSGA-II (and multivariate TPE) evolve only the parameters that
    all past trials share (Optuna's intersection search space), so a conditional space would
    leave them evolving ``family`` alone and sampling everything else at random.

    Raises ``search_spaces.ConfigError`` when the Config rejects the drawn combination (the
    caller records the trial as infeasible); ``values`` are the used fields, decoded and
    lowered to their ``at_most`` bounds (the trial's params keep the raw draw).
    ``fixed`` values (e.g. ``num_classes`` of the data set) are set on every family whose
    Config has the field.
    """
    family = trial.suggest_categorical("family", list(families))
    values: dict[str, Any] = {}
    for fam in families:
        space = capped_space(fam, max_frames=max_frames, max_image_px=max_image_px)
        for name, param in space.items():
            value = _suggest(trial, f"{fam}.{name}", param)
            if fam == family and ss.active(param, values):
                values[name] = ss.bounded(param, value, values)
    fields = set(ss.get_family(family).field_names())
    values.update({k: v for k, v in (fixed or {}).items() if k in fields})
    return family, values, ss.config_from_dict({"family": family, **values})
