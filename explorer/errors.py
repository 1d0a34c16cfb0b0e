"""Errors a user can cause, each turned into one line and an exit code by the CLI.

Every message states the rule, the value given and the fix. ``UsageError`` subclasses mean the
command line or an input named on it was wrong (exit code 2); other ``ExplorerError``\\ s are
failures while doing the work (exit code 1). ``search_spaces.ConfigError`` and
``device_profiles.DeviceError`` come from packages that import nothing of ours; the CLI treats
them as usage errors too.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DataError",
    "ExplorerError",
    "MissingExtraError",
    "UsageError",
]


class ExplorerError(Exception):
    """Base class of every error ``explorer`` raises on purpose."""

    exit_code = 1


class UsageError(ExplorerError, ValueError):
    """The user asked for something malformed or unknown (exit code 2)."""

    exit_code = 2


class CheckpointError(ExplorerError, ValueError):
    """A checkpoint is missing, corrupt, from another tool, or unsafe to load."""

    exit_code = 2


class DataError(ExplorerError, ValueError):
    """A data set cannot be read or has no usable clip."""


class MissingExtraError(ExplorerError, ImportError):
    """An optional package is needed; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package {package!r}; "
            f"install it with: pip install -e '.[{extra}]'"
        )
