"""The benchmarks' results files: indented JSON ending with the machine it was measured on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer.environment import environment


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` and ``environment()`` (its last key) to ``path`` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**payload, "environment": environment()}, indent=2) + "\n")
