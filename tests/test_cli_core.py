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


TINY = "ding:conv_channels=[8],audio_channels=[8],image_size_px=32,n_mfcc=16"


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["bench", TINY, "--device", "rpi4"], "cpu|cuda"),
        (["train", TINY, "--device", "cpu"], "auto"),
    ],
)
def test_device_in_bench_and_train_is_refused_with_the_torch_device_hint(
    args: list[str], choices: str
) -> None:
    # everywhere else --device names a board; these commands take --torch-device
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "--device names a board elsewhere; use --torch-device" in lines[0]
    assert choices in lines[0] and out.stdout == ""


def test_bench_runs_torch_on_the_torch_device_given() -> None:
    args = ["--backend", "torch", "--torch-device", "cpu:0", "--runs", "2", "--warmup", "0"]
    out = run_cli("bench", TINY, *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    result = result[0] if isinstance(result, list) else result
    assert result["device"] == "cpu:0" and result["backend"] == "torch"
    assert result["runs"] == 2 and result["median_ms"] > 0
