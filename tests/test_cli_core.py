"""The command line's contract: version, env, and one-line errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from explorer.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess (exit codes and streams as a user sees)."""
    return subprocess.run(
        [sys.executable, "-c", "from explorer.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version_prints_package_version() -> None:
    from explorer import __version__

    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"explorer {__version__}"


def test_env_json_is_one_document_with_versions() -> None:
    out = run_cli("env", "--format", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["packages"]["torch"]
    assert info["cpu_count"] >= 1
    assert info["python"].count(".") == 2


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["nosuch-command"], 2, "No such command"),
        (["env", "--format", "xml"], 2, "xml"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], code: int, needle: str) -> None:
    out = run_cli(*args)
    assert out.returncode == code
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in out.stderr


def test_library_errors_map_to_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """An ExplorerError raised inside a command is one line, exit 1; with --debug it raises."""
    from explorer.cli import _app
    from explorer.errors import ExplorerError

    @_app.app.command("_boom", hidden=True)
    def _boom() -> None:
        raise ExplorerError("the thing failed: do X instead")

    with pytest.raises(SystemExit) as exc:
        main(["_boom"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the thing failed: do X instead"]
    with pytest.raises(ExplorerError):
        main(["--debug", "_boom"])
