"""Tables written to a pipe or a log keep every cell whole (no 80-column cut, no "…")."""

from __future__ import annotations

import os
import subprocess
import sys

import device_profiles


def test_piped_tables_print_full_width_cells() -> None:
    env = dict(os.environ, COLUMNS="80")  # what a CI log or `| tee` often reports
    out = subprocess.run(
        [sys.executable, "-c", "from explorer.cli import main; main()", "devices"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) > 80
    for profile in device_profiles.list_devices():
        # Each device is one row holding its key and its full name.
        assert any(profile.key in line and profile.name in line for line in lines), profile.key
