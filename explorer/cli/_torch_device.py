"""``--torch-device`` (where a command runs torch) and the refused ``--device`` of ``bench``
and ``train``: everywhere else ``--device`` names a board (``rpi4``, ``orin-nano:gpu-fp16``)."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["old_device_option", "refuse_old_device", "torch_device_option"]


def torch_device_option(default: str, *, help: str) -> Any:
    """The ``--torch-device`` option with ``default`` (``cpu``, ``auto``)."""
    return typer.Option(default, "--torch-device", help=help)


def old_device_option() -> Any:
    """A hidden ``--device`` kept only to refuse it with a hint (see ``refuse_old_device``)."""
    return typer.Option(None, "--device", hidden=True)


def refuse_old_device(value: str | None, *, choices: str) -> None:
    """Refuse ``--device`` given to a command whose torch device is ``--torch-device``.

    Raises:
        UsageError: ``value`` is not None (exit code 2, one line with the fix).
    """
    if value is not None:
        from explorer.errors import UsageError

        raise UsageError(
            f"--device names a board elsewhere; use --torch-device {choices} "
            f"(got --device {value!r})"
        )
