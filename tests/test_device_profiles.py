"""The device registry: built-in files, aliases, user files, validation and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import device_profiles as dp
from device_profiles import Calibration, DeviceError, DeviceProfile

# the published figures each built-in profile carries: key -> (FP32 GFLOP/s, GB/s)
REFERENCE = {
    "rpi4": (30.0, 12.8),
    "rpi5": (120.0, 17.1),
    "zenbo-junior-2": (25.76, 25.6),
    "orin-nano": (1280.0, 68.0),
    "orin-nano-super": (2080.0, 102.0),
    "orin-nano-4gb": (640.0, 34.0),
    "jetson-nano": (236.0, 25.6),
    "xavier-nx": (845.0, 51.2),
    "orin-nx-16gb": (1880.0, 102.0),
    "agx-orin-64gb": (5320.0, 204.8),
    "agx-xavier": (1410.0, 136.5),
}

MINIMAL = """
key = "{key}"
name = "My board"
kind = "cpu"
bandwidth_gb_s = 10.0
{extra}
[peak_gflops]
fp32 = 40.0
"""


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own ~/.config/explorer/devices and EXPLORER_DEVICES out of tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("EXPLORER_DEVICES", raising=False)


def write(path: Path, key: str = "my-board", extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINIMAL.format(key=key, extra=extra), encoding="utf-8")
    return path


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_builtin_profiles_match_reference_table(key: str) -> None:
    dev = dp.get(key)
    peak, bw = REFERENCE[key]
    assert dev.key == key
    assert dev.peak_gflops_fp32 == pytest.approx(peak)
    assert dev.bandwidth_gb_s == pytest.approx(bw)
    assert dev.ridge_flops_per_byte == pytest.approx(peak / bw)
    assert dev.sources, "every built-in profile names its sources"
    assert dev.kind in ("cpu", "gpu")


def test_registry_holds_exactly_the_reference_rows() -> None:
    assert {d.key for d in dp.list_devices()} == set(REFERENCE)


@pytest.mark.parametrize(
    ("key", "printed"), [("rpi4", 2.34), ("rpi5", 7.01), ("zenbo-junior-2", 1.01)]
)
def test_ridge_reproduces_lu_2025_table_ix(key: str, printed: float) -> None:
    """Table IX's ridge column; the paper prints 7.01 for 120/17.1 = 7.018 (truncated)."""
    dev = dp.get(key)
    assert abs(dev.ridge_flops_per_byte - printed) < 0.01
    assert dev.alternatives["paper"]["ridge_flops_per_byte"] == printed


def test_paper_and_datasheet_values_are_both_recorded() -> None:
    rpi4 = dp.get("rpi4")
    assert rpi4.peak_gflops_fp32 == 30.0  # the paper's value is the default
    assert rpi4.alternatives["datasheet"]["peak_gflops_fp32"] == 48.0
    assert rpi4.alternatives["measured"]["bandwidth_gb_s"] == 5.5
    assert dp.get("orin-nano").peak_gflops["fp16"] == 2560.0


@pytest.mark.parametrize(
    ("alias", "key"),
    [
        ("rpi4b", "rpi4"),
        ("raspberry-pi-4", "rpi4"),
        ("Raspberry Pi 4", "rpi4"),
        ("RPI5", "rpi5"),
        ("zenbo", "zenbo-junior-2"),
        ("jetson_orin_nano", "orin-nano"),
    ],
)
def test_aliases_resolve_case_insensitively(alias: str, key: str) -> None:
    assert dp.get(alias).key == key


def test_unknown_device_suggests_closest_names() -> None:
    with pytest.raises(DeviceError) as info:
        dp.get("rpi6")
    msg = str(info.value)
    assert "'rpi6'" in msg and "rpi5" in msg and "\n" not in msg


def test_profile_by_path_and_key_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "bench-board.toml"
    path.write_text(MINIMAL.format(key="x", extra="").replace('key = "x"\n', ""), "utf-8")
    dev = dp.get(str(path))
    assert dev.key == "bench-board"
    assert dev.ridge_flops_per_byte == pytest.approx(4.0)
    assert dev.origin == str(path)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("colour = 'red'", "unknown key 'colour'"),
        ("memory_gb = -1", "memory_gb must be a positive number"),
        ("architecture = 'Ampere GPU'", "architecture must be a lower-case name"),
        ("architecture = 3", "architecture must be a lower-case name"),
        (
            "[calibration]\ncompute_fraction = 17.0\nbandwidth_fraction = 0.5\noverhead_us = 1",
            "compute_fraction",
        ),
        ("[calibration]\ncompute_fraction = 0.5\nbandwidth_fraction = 0.5", "overhead_us"),
        (
            "[calibration]\ncompute_fraction = 0.5\nbandwidth_fraction = 0.5\noverhead_us = 1\n"
            "speed = 2",
            "unknown key 'speed'",
        ),
        ("[alternatives.datasheet]\npeak_gflops_fp32 = 0", "must be a positive number"),
    ],
)
def test_invalid_files_give_one_line_errors(tmp_path: Path, extra: str, needle: str) -> None:
    path = write(tmp_path / "bad.toml", extra=extra)
    with pytest.raises(DeviceError) as info:
        dp.load_file(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_non_positive_peak_and_malformed_toml(tmp_path: Path) -> None:
    bad = tmp_path / "zero.toml"
    bad.write_text(MINIMAL.format(key="z", extra="").replace("fp32 = 40.0", "fp32 = 0"), "utf-8")
    with pytest.raises(DeviceError, match=r"peak_gflops\.fp32 must be a positive number"):
        dp.load_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("key = 'b'\nname = [unclosed\n", "utf-8")
    with pytest.raises(DeviceError, match="not valid TOML"):
        dp.get(str(broken))
    with pytest.raises(DeviceError, match="does not exist"):
        dp.get(str(tmp_path / "missing.toml"))


def test_explorer_devices_directory_is_scanned(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "lab" / "board.toml", key="lab-board", extra='aliases = ["bench-pi"]')
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "lab"))
    assert dp.get("bench-pi").key == "lab-board"
    assert "lab-board" in {d.key for d in dp.list_devices()}
    assert dp.user_device_dir() == tmp_path / "lab"


def test_user_config_dir_is_scanned_and_is_the_default_output(tmp_path: Path) -> None:
    user_dir = tmp_path / "config" / "explorer" / "devices"
    assert dp.user_device_dir() == user_dir
    write(user_dir / "host.toml", key="host")
    assert dp.get("host").origin == str(user_dir / "host.toml")


def test_user_profile_replaces_builtin_key(tmp_path: Path, monkeypatch) -> None:
    """A calibrated copy of a built-in device saved by the user wins over the built-in one."""
    text = dp.to_toml(dp.get("rpi4")).replace(
        "[peak_gflops]",
        "[calibration]\n"
        "compute_fraction = 0.4\nbandwidth_fraction = 0.6\noverhead_us = 12.0\n\n[peak_gflops]",
    )
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "rpi4.toml").write_text(text, "utf-8")
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "lab"))
    dev = dp.get("rpi4b")
    assert dev.calibration is not None and dev.calibration.overhead_us == 12.0
    assert dev.peak_gflops_fp32 == 30.0


def test_duplicate_alias_across_files_names_both(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "lab" / "a.toml", key="board-a", extra='aliases = ["shared"]')
    write(tmp_path / "lab" / "b.toml", key="board-b", extra='aliases = ["shared"]')
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "lab"))
    with pytest.raises(DeviceError) as info:
        dp.list_devices()
    assert "a.toml" in str(info.value) and "b.toml" in str(info.value)


def test_alias_clashing_with_a_builtin_is_an_error(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "lab" / "mine.toml", key="mine", extra='aliases = ["rpi4b"]')
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "lab"))
    with pytest.raises(DeviceError, match=r"rpi4\.toml"):
        dp.get("mine")


def test_to_toml_round_trips_with_calibration(tmp_path: Path) -> None:
    cal = Calibration(
        compute_fraction=0.31,
        bandwidth_fraction=0.5,
        overhead_us=7.5,
        kind_compute_fraction={"conv": 0.42, "rnn": 0.05},
        kind_overhead_us={"rnn": 30.0},
        fuse_elementwise=True,
        threads=1,
        source="explorer calibrate",
    )
    dev = DeviceProfile(
        key="host",
        name="This machine",
        kind="cpu",
        peak_gflops={"fp32": 123.456789},
        bandwidth_gb_s=9.87654321,
        aliases=("this",),
        sources=("measured",),
        alternatives={"datasheet": {"peak_gflops_fp32": 200.0, "source": "x"}},
        calibration=cal,
    )
    path = tmp_path / "host.toml"
    path.write_text(dp.to_toml(dev), "utf-8")
    back = dp.load_file(path)
    assert back == dev
    assert back.calibration.compute_fraction_for("conv") == 0.42
    assert back.calibration.compute_fraction_for("linear") == 0.31
    assert back.calibration.overhead_us_for("rnn") == 30.0


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_builtin_files_round_trip_through_to_toml(key: str, tmp_path: Path) -> None:
    dev = dp.get(key)
    path = tmp_path / f"{key}.toml"
    path.write_text(dp.to_toml(dev), "utf-8")
    assert dp.load_file(path) == dev


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The real entry point in-process: (exit code, stdout, stderr)."""
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_devices_json_lists_every_device(capsys) -> None:
    code, stdout, _ = run_cli("devices", "--format", "json", capsys=capsys)
    assert code == 0
    rows = json.loads(stdout)
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == set(REFERENCE)
    for row in rows:
        assert {"key", "name", "peak_gflops_fp32", "bandwidth_gb_s", "ridge_flops_per_byte"} <= set(
            row
        )
    assert round(by_key["rpi4"]["ridge_flops_per_byte"], 2) == 2.34


def test_cli_show_by_alias_and_by_path(tmp_path: Path, capsys) -> None:
    code, stdout, _ = run_cli("devices", "show", "rpi4b", "--format", "json", capsys=capsys)
    assert code == 0
    assert json.loads(stdout)["key"] == "rpi4"
    path = write(tmp_path / "my-board.toml", key="my-board")
    code, stdout, _ = run_cli("devices", "show", str(path), capsys=capsys)
    assert code == 0 and "My board" in stdout and "4.000" in stdout


def test_cli_show_lists_each_class_launch_cost(tmp_path: Path, capsys) -> None:
    """An eager calibration fits a launch cost per operator class: show says them, not only
    the figure the classes without their own take."""
    from dataclasses import replace

    from explorer.cli.devices import _kernel_costs

    cal = dp.Calibration(
        compute_fraction=0.5,
        bandwidth_fraction=0.5,
        overhead_us=2.0,
        call_overhead_us=3.0,
        kind_overhead_us={"rnn": 111.0, "conv": 23.0},
    )
    text = _kernel_costs(cal)  # conv3x3 takes conv's figure when it has none of its own
    assert text == "µs per kernel by class: conv 23, conv3x3 23, rnn 111; 2 for any other class"
    assert _kernel_costs(replace(cal, kind_overhead_us={})) == "2 µs per kernel"
    base = dp.load_file(write(tmp_path / "b.toml", key="eager-board"))
    path = tmp_path / "eager-board.toml"
    path.write_text(dp.to_toml(replace(base, calibration=cal)), "utf-8")
    code, stdout, _ = run_cli("devices", "show", str(path), capsys=capsys)
    assert code == 0 and "by class" in stdout and "111" in stdout  # in the table (wrapped)


@pytest.mark.parametrize(
    ("arg", "needle"),
    [("rpi6", "did you mean 'rpi5'"), ("nowhere/board.toml", "does not exist")],
)
def test_cli_bad_device_is_one_line_exit_2(arg: str, needle: str, capsys) -> None:
    code, stdout, stderr = run_cli("devices", "show", arg, capsys=capsys)
    assert code == 2
    assert stderr.count("\n") == 1 and needle in stderr and stderr.startswith("error: ")
    assert stdout == ""


def test_cli_malformed_user_file_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    """As a user sees it: a separate process, exit code 2, one line, no traceback."""
    import os

    (tmp_path / "bad.toml").write_text("key = \n", "utf-8")
    out = subprocess.run(
        [sys.executable, "-c", "from explorer.cli import main; main()", "devices"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXPLORER_DEVICES": str(tmp_path)},
    )
    assert out.returncode == 2
    assert "bad.toml" in out.stderr and "not valid TOML" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
