"""The five published architecture families, their presets, search spaces, and hybrids.

Each family module (``ding``, ``lu``, ``yang``, ``ishtiaq``, ``kumar``, ``hybrid``) defines a
frozen ``Config``, its blocks, the model, ``PRESETS``, ``SPACE`` and a registered ``build``.
This package imports nothing else of the project.

    >>> import search_spaces as ss
    >>> model = ss.build(ss.get_preset("ding2025"))
    >>> logits = model(*ss.example_inputs(model))
"""

from __future__ import annotations

from typing import Any

from ._base import AVModel, example_inputs
from ._catalogue import catalogue, family_details
from ._registry import (
    Family,
    Published,
    config_from_dict,
    config_from_string,
    config_to_dict,
    family_of,
    get_family,
    get_preset,
    parse_value,
    preset_names,
    sample_config,
)
from ._spec import (
    AUDIO_KINDS,
    Choice,
    ConfigError,
    FloatRange,
    InputSpec,
    IntRange,
    active,
    bounded,
)

__all__ = [
    "AUDIO_KINDS",
    "AVModel",
    "Choice",
    "ConfigError",
    "Family",
    "FloatRange",
    "InputSpec",
    "IntRange",
    "Published",
    "active",
    "bounded",
    "build",
    "catalogue",
    "config_from_dict",
    "config_from_string",
    "config_to_dict",
    "example_inputs",
    "family_details",
    "get_family",
    "get_preset",
    "list_families",
    "parse_value",
    "presets",
    "sample",
]


def _load_families() -> None:
    # Importing a family module registers it, in this order (hybrid combines the others).
    import importlib

    for name in ("ding", "lu", "yang", "ishtiaq", "kumar", "hybrid"):
        importlib.import_module(f"{__name__}.{name}")


_load_families()


def list_families() -> list[str]:
    """Names of the registered families."""
    from ._registry import families

    return list(families())


def presets() -> dict[str, str]:
    """Every preset name mapped to its family name."""
    return preset_names()


def sample(family: str, *, seed: int | None = None) -> Any:
    """A Config drawn uniformly from ``family``'s SPACE; always valid."""
    return sample_config(family, seed=seed)


def build(config: Any) -> AVModel:
    """Build the ``nn.Module`` for any family's Config (or a preset / override string)."""
    if isinstance(config, str):
        config = config_from_string(config)
    model = family_of(config).build_fn(config)
    model.eval()
    return model
