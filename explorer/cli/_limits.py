"""``--max-memory``, shared by the commands that build models."""

from __future__ import annotations

import typer

__all__ = ["MAX_MEMORY"]


def _set(value: str | None) -> str | None:
    if value:
        from explorer.memory import set_max_memory

        set_max_memory(value)  # the environment: worker processes inherit it
    return value


MAX_MEMORY = typer.Option(
    None,
    "--max-memory",
    callback=_set,
    help="Refuse models whose weights, inputs and activations need more (default 2GB; "
    "e.g. 8GB, 512MiB).",
)
