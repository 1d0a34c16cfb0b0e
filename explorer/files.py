"""Safe file output and input: every file ``explorer`` writes goes through ``atomic_write``.

A write goes to a temporary file in the target's directory, named after the target, the host,
the process id and a random part (``.results.csv.host.4242.9f3a1c0e.tmp``), so concurrent
workers never share one; it is flushed, ``fsync``-ed and renamed over the target with
``os.replace`` (atomic on POSIX): a reader sees the old file or the new one, never half of
one. On any exception, Ctrl-C or SIGTERM (the CLI turns SIGTERM into ``SystemExit``) the
temporary file is removed; the temporary files of processes killed outright (SIGKILL) are
removed by the next write into the same directory from the same host.

A target that exists and is not a regular file (``/dev/null``, a FIFO, a directory) is refused
with a one-line ``UsageError`` instead of being replaced; a symbolic link is followed, so the
file it names is replaced and the link kept. Reads of user files go through
``require_regular_file``: opening a FIFO named like a ``.wav`` would block forever.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from explorer.errors import ExplorerError, UsageError

__all__ = [
    "atomic_output",
    "atomic_write",
    "check_output_path",
    "exit_on_sigterm",
    "file_kind",
    "irregular_reason",
    "require_regular_file",
    "write_bytes_atomic",
    "write_text_atomic",
]

_HOST = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:24] or "host"
_TMP_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def file_kind(mode: int) -> str:
    """A word for a non-regular file type (``directory``, ``character device``, ``FIFO``...)."""
    kinds = (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((word for test, word in kinds if test(mode)), "special file")


def check_output_path(path: str | os.PathLike[str], *, what: str = "output file") -> Path:
    """The path a write to ``path`` replaces: symbolic links resolved, the target checked.

    Raises:
        UsageError: the target exists and is not a regular file, or its directory is a file.
    """
    target = Path(path).expanduser()
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if str(target) in ("", ".") or target.name in ("", ".", ".."):
        raise UsageError(f"{what} {str(path)!r} names a directory, not a file: add a file name")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise UsageError(
            f"{what} {str(path)!r} is under a path that is a file, not a directory: "
            "choose another location"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"{what} {str(path)!r} cannot be used ({exc.strerror}): choose another"
        ) from None
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(
            f"{what} {str(path)!r} exists and is a {file_kind(mode)}, not a regular file; "
            "explorer refuses to replace it: give the path of a new or regular file"
        )
    return target


def require_regular_file(path: str | os.PathLike[str], *, what: str = "file") -> Path:
    """``path`` if it names an existing regular file (after symbolic links), else raise.

    Raises:
        UsageError: the path does not exist or is a directory, device, FIFO or socket.
    """
    reason = irregular_reason(path)
    if reason:
        raise UsageError(f"{what} {str(path)!r} {reason}: give the path of a regular file")
    return Path(path)


def irregular_reason(path: str | os.PathLike[str]) -> str | None:
    """None for a regular file, else why it is not one (``does not exist``, ``is a FIFO``...)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None if stat.S_ISREG(mode) else f"is a {file_kind(mode)}, not a regular file"


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``kill``, a batch system's time limit) into ``SystemExit(143)``, so
    ``finally`` blocks run and half-done writes remove their temporary files. Only in the
    main thread (Python delivers signals there); a second SIGTERM ends the process at once."""

    def _terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def _sweep_stale(directory: Path) -> None:
    """Remove temporary files this host's killed processes left in ``directory``."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            m = _TMP_RE.match(entry.name)
            if not m or m["host"] != _HOST or int(m["pid"]) == os.getpid():
                continue
            try:
                os.kill(int(m["pid"]), 0)
            except ProcessLookupError:  # its writer is gone: nobody will rename it
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
            except (PermissionError, OverflowError):
                pass  # another user's live process, or not a pid: leave it


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    text: bool = False,
    newline: str | None = None,
    what: str = "output file",
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it replaces ``path`` atomically.

    Args:
        path: the target; its directory is created when missing.
        text: open in text mode (UTF-8) instead of binary.
        newline: passed to ``open`` in text mode (``""`` for the csv module).
        what: how error messages name the target (``"--out"``, ``"checkpoint"``).

    Yields:
        The open file object.

    Raises:
        UsageError: the target is not a regular file, or its directory cannot be created or
            written (the reason in one line).
    """
    target, tmp = _prepare(path, what=what)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _unwritable(path, exc, what) from None
    try:
        mode = "w" if text else "wb"
        encoding = "utf-8" if text else None
        with os.fdopen(fd, mode, encoding=encoding, newline=newline if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, what: str = "output file") -> Iterator[Path]:
    """A staging path for writers that want a file name (ONNX export, quantisation).

    Yields ``STAGE/NAME`` inside a fresh temporary directory next to ``path``; the writer may
    also create side files there (``NAME.data``: ONNX external weights, whose location inside
    the model is relative to it). On success every file in the directory is moved next to
    ``path`` (side files first, ``path`` last); on failure the directory and all it holds are
    removed, so a failed export leaves nothing behind.

    Raises:
        UsageError: as ``atomic_write``; a side file's target is not a regular file.
        ExplorerError: the writer created nothing under the yielded name.
    """
    target, stage = _prepare(path, what=what)
    try:
        os.mkdir(stage, 0o700)
    except OSError as exc:
        raise _unwritable(path, exc, what) from None
    try:
        staged = stage / target.name
        yield staged
        if not staged.is_file():
            raise ExplorerError(f"{what} {str(path)!r} was not written (nothing was produced)")
        sides = [p for p in stage.iterdir() if p.name != target.name]
        for side in sides:
            check_output_path(target.parent / side.name, what=what)
        for p in [*sides, staged]:
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(p, target.parent / p.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _unwritable(path: str | os.PathLike[str], exc: OSError, what: str) -> UsageError:
    hint = "a shorter name" if exc.errno == errno.ENAMETOOLONG else "a writable location"
    return UsageError(f"{what} {str(path)!r} cannot be written ({exc.strerror}): use {hint}")


def _prepare(path: str | os.PathLike[str], *, what: str) -> tuple[Path, Path]:
    """The checked target and a unique temporary name beside it (its directory created)."""
    target = check_output_path(path, what=what)
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(
            f"{what} {str(path)!r}: {str(directory)!r} is a file, not a directory; "
            "choose another location"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"{what} {str(path)!r}: cannot create its directory ({exc.strerror})"
        ) from None
    _sweep_stale(directory)
    name = target.name[:200]  # keep the temporary name under NAME_MAX
    return target, directory / f".{name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write_text_atomic(
    path: str | os.PathLike[str], text: str, *, what: str = "output file"
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through ``atomic_write``; returns the target path."""
    with atomic_write(path, text=True, what=what) as fh:
        fh.write(text)
    return Path(path)


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, what: str = "output file"
) -> Path:
    """Write ``data`` to ``path`` through ``atomic_write``; returns the target path."""
    with atomic_write(path, what=what) as fh:
        fh.write(data)
    return Path(path)
