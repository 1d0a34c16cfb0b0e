"""The family registry: one decorator, one dict, helpful lookups."""

from __future__ import annotations

import dataclasses
import difflib
import json
import random
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._spec import ConfigError, Param, active, bounded, unknown_field_error

__all__ = ["Family", "Published", "families", "family_of", "register_family"]


@dataclass(frozen=True, kw_only=True)
class Published:
    """What a paper reports for a preset, for the reproduced-numbers table and its tests.

    ``flops`` is what the paper calls FLOPs; ``flops_are_macs`` says whether those are really
    multiply-accumulates (the thop/fvcore convention), so they compare with our ``macs``.
    """

    params: int | None = None
    flops: int | None = None
    flops_are_macs: bool = False
    source: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Family:
    """A registered architecture family."""

    name: str
    config_cls: type
    build_fn: Callable[[Any], Any]
    presets: Mapping[str, Any]
    space: Mapping[str, Param]
    published: Mapping[str, Published] = field(default_factory=dict)
    summary: str = ""
    paper: str = ""

    def field_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.config_cls)]


_FAMILIES: dict[str, Family] = {}
_PRESETS: dict[str, str] = {}  # preset name -> family name


def register_family(
    name: str,
    *,
    config: type,
    presets: Mapping[str, Any],
    space: Mapping[str, Param],
    published: Mapping[str, Published] | None = None,
    summary: str = "",
    paper: str = "",
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register ``build(config) -> nn.Module`` for a family; raises on duplicate names."""

    def deco(build_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} is registered twice")
        for field_name in space:
            if field_name not in {f.name for f in dataclasses.fields(config)}:
                raise ValueError(f"{name}.SPACE names {field_name!r}, which Config lacks")
        for preset in presets:
            if preset in _PRESETS:
                raise ValueError(f"preset {preset!r} is registered twice")
            _PRESETS[preset] = name
        config.family = name  # ClassVar used by build()/to_dict() to find the family
        _FAMILIES[name] = Family(
            name=name,
            config_cls=config,
            build_fn=build_fn,
            presets=dict(presets),
            space=dict(space),
            published=dict(published or {}),
            summary=summary,
            paper=paper,
        )
        return build_fn

    return deco


def _lookup_error(kind: str, name: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(sorted(valid))}")


def families() -> dict[str, Family]:
    """All registered families by name."""
    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    """The family called ``name``; an error lists the valid names and the closest match."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise _lookup_error("family", name, list(_FAMILIES)) from None


def family_of(config: Any) -> Family:
    """The family a Config instance belongs to."""
    name = getattr(type(config), "family", None)
    if name is None or name not in _FAMILIES:
        raise ConfigError(f"{type(config).__name__} is not a registered family Config")
    return _FAMILIES[name]


def preset_names() -> dict[str, str]:
    """Preset name -> family name."""
    return dict(_PRESETS)


def get_preset(name: str) -> Any:
    """The Config of a published preset (e.g. ``ding2025``)."""
    if name not in _PRESETS:
        raise _lookup_error("preset", name, list(_PRESETS))
    return _FAMILIES[_PRESETS[name]].presets[name]


# --- configs <-> plain data --------------------------------------------------------------


def _coerce(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """Turn JSON values (lists) back into what the Config field expects (tuples)."""
    origin = typing.get_origin(annotation)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(_coerce(owner, name, v, inner) for v in value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return _coerce(owner, name, value, arg)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def make_config(family: str, values: Mapping[str, Any], *, base: Any = None) -> Any:
    """Build ``family``'s Config from ``values`` (over ``base`` or the defaults), coercing JSON."""
    fam = get_family(family)
    hints = typing.get_type_hints(fam.config_cls)
    names = fam.field_names()
    kwargs = dataclasses.asdict(base) if base is not None else {}
    for key, value in values.items():
        if key not in names:
            raise unknown_field_error(f"{family}.Config", key, names)
        kwargs[key] = _coerce(family, key, value, hints.get(key, Any))
    kwargs = {k: _coerce(family, k, v, hints.get(k, Any)) for k, v in kwargs.items()}
    try:
        return fam.config_cls(**kwargs)
    except TypeError as exc:  # a field of the wrong kind that __post_init__ did not catch
        raise ConfigError(f"{family}.Config: {exc}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-safe dict with a ``family`` key; inverse of ``config_from_dict``."""
    fam = family_of(config)
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    return {"family": fam.name, **data}


def config_from_dict(data: Mapping[str, Any]) -> Any:
    """Rebuild a Config from ``config_to_dict`` output."""
    if "family" not in data:
        raise ConfigError("a config dict needs a 'family' key naming its family")
    values = {k: v for k, v in data.items() if k != "family"}
    return make_config(data["family"], values)


def parse_value(text: str) -> Any:
    """``'8'`` -> 8, ``'0.5'`` -> 0.5, ``'true'`` -> True, ``'[16,32]'`` -> [16, 32], else str."""
    try:
        return json.loads(text)
    except RecursionError:  # json decodes nested lists recursively
        raise ConfigError(
            f"value {text[:20]!r}... is nested too deeply: give a number, true/false or a flat "
            "list such as [16,32]"
        ) from None
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text.strip()


def config_from_string(text: str) -> Any:
    """``'ding2025'`` (a preset), ``'lu'`` (family defaults) or ``'lu:frames=8,width_mult=0.5'``.

    Overrides apply on top of the family's default Config; a preset may also be the base:
    ``'lu2025_f1:frames=8'``.
    """
    head, _, tail = text.partition(":")
    head = head.strip()
    if head in _PRESETS:
        base = get_preset(head)
        family = _PRESETS[head]
    else:
        family = get_family(head).name
        base = None
    values: dict[str, Any] = {}
    if tail.strip():
        # split on commas that are not inside brackets, so lists like [16,32] survive
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(tail):
            depth += ch in "[("
            depth -= ch in "])"
            if ch == "," and depth == 0:
                parts.append(tail[start:i])
                start = i + 1
        parts.append(tail[start:])
        for part in parts:
            key, eq, value = part.partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"override {part!r} in {text!r} is malformed: write key=value, "
                    "e.g. lu:frames=8,width_mult=0.5"
                )
            key = key.strip()
            if key in values:
                raise ConfigError(
                    f"override {key!r} is given twice in {text!r}: keep one {key}=value"
                )
            values[key] = parse_value(value)
    return make_config(family, values, base=base)


def sample_config(family: str, *, seed: int | None = None, rng: random.Random | None = None) -> Any:
    """Draw a Config uniformly from ``family``'s SPACE (conditional fields respected).

    Combinations the Config rejects are redrawn (up to 1000 times) so the result is valid.
    """
    fam = get_family(family)
    rng = rng or random.Random(seed)
    last: ConfigError | None = None
    for _ in range(1000):
        values: dict[str, Any] = {}
        for name, param in fam.space.items():
            if active(param, values):
                values[name] = bounded(param, param.sample(rng), values)
        try:
            return make_config(family, values)
        except ConfigError as exc:
            last = exc
    raise ConfigError(f"could not draw a valid {family} config in 1000 tries; last error: {last}")
