"""The families' metadata as plain JSON, so that ``explorer spaces`` needs no torch.

``catalogue.json`` (beside this file) holds, for each registered family, what
``explorer spaces`` and ``explorer spaces show`` print: summary, paper, knobs (values,
default, condition) and presets (config, published numbers). The family modules define their
``nn.Module`` next to their ``Config``, so importing them imports torch (seconds); reading a
JSON file does not. The file is generated from the registry, never edited by hand:
``python -m search_spaces._catalogue`` rewrites it, and a test fails when it differs from
what the registry gives.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["CATALOGUE_FORMAT", "PATH", "catalogue", "family_details"]

CATALOGUE_FORMAT = 1
PATH = Path(__file__).with_name("catalogue.json")


def family_details(name: str) -> dict[str, Any]:
    """JSON-safe metadata of the family ``name``: ``family``, ``summary``, ``paper``,
    ``presets`` (preset, config, published) and ``knobs`` (field, values, default, when).

    Raises:
        ConfigError: no family is registered under ``name`` (the error lists them).
    """
    from ._registry import config_to_dict, get_family

    fam = get_family(name)
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(fam.config_cls)
        if f.default is not dataclasses.MISSING
    }
    knobs = [
        {
            "field": field,
            "values": param.describe(),
            "default": defaults.get(field),
            "when": {k: list(v) for k, v in param.when.items()},
        }
        for field, param in fam.space.items()
    ]
    presets = []
    for preset, config in fam.presets.items():
        pub = fam.published.get(preset)
        presets.append(
            {
                "preset": preset,
                "config": config_to_dict(config),
                "published": dataclasses.asdict(pub) if pub else None,
            }
        )
    details = {
        "family": name,
        "summary": fam.summary,
        "paper": fam.paper,
        "presets": presets,
        "knobs": knobs,
    }
    return json.loads(json.dumps(details))  # tuples become lists, as read back from the file


def catalogue() -> dict[str, Any]:
    """``{"format": CATALOGUE_FORMAT, "families": {name: family_details(name)}}`` for every
    registered family, in registry order."""
    from ._registry import families

    return {
        "format": CATALOGUE_FORMAT,
        "families": {name: family_details(name) for name in families()},
    }


def main() -> None:
    """Rewrite ``catalogue.json`` from the registry (after a family or preset changes)."""
    text = json.dumps(catalogue(), indent=1, ensure_ascii=False) + "\n"
    tmp = PATH.with_name(PATH.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(PATH)
    print(f"wrote {PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
