"""The ``explorer`` command line. Only the console script imports this package.

Each command lives in its own module and registers itself on ``_app.app``; this module turns
errors into one line and an exit code (2 for usage errors, 1 otherwise), with the traceback
only under ``--debug``.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from ._app import app

# Command modules, in the order their commands appear in --help.
_COMMANDS = (
    "devices",
    "spaces",
    "profile",
    "bench",
    "export",
    "calibrate",
    "data",
    "train",
    "search",
    "report",
    "roofline",
    "prune",
    "explain",
    "env",
)
for _name in _COMMANDS:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["app", "main"]


def _usage_error_types() -> tuple[type[BaseException], ...]:
    from explorer.errors import UsageError

    types: list[type[BaseException]] = [UsageError]
    try:
        from search_spaces import ConfigError

        types.append(ConfigError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from device_profiles import DeviceError

        types.append(DeviceError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    argv, debug = _take_debug(list(sys.argv[1:] if argv is None else argv))
    debug = debug or os.environ.get("EXPLORER_DEBUG") == "1"
    from explorer.files import exit_on_sigterm

    exit_on_sigterm()  # temporary files of half-done writes are removed on `kill`
    from explorer.errors import ExplorerError

    try:
        rv = app(args=argv, prog_name="explorer", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # bad options or arguments, found by the parser
        if debug:
            raise
        if exc.format_message():  # empty for "no arguments, help shown"
            typer.echo(f"error: {exc.format_message()} (see explorer --help)", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except _usage_error_types() as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except (ExplorerError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(getattr(exc, "exit_code", 2 if isinstance(exc, OSError) else 1))
    except OSError as exc:
        if debug:
            raise
        if exc.filename is None:  # not about a path the user named: a failure of the work
            typer.echo(f"error: {_one_line(exc)}", err=True)
            sys.exit(1)
        # a path the user named (an --out under a file, a name too long for the file system)
        typer.echo(
            f"error: cannot use {str(exc.filename)[:200]!r}: {exc.strerror or exc}; "
            "choose another path",
            err=True,
        )
        sys.exit(2)
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            raise
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
            "(run again with --debug for the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _take_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` and whether it was there: the flag works before or after
    the command (``explorer prune ... --debug``, as the error hint says), not after ``--``."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a != "--debug"]
    return head + argv[end:], len(head) < end


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    return " ".join(text.split())
