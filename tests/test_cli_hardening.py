"""Nonsense on the command line and in the files it names: a one-line refusal with exit 2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from explorer.budget import parse_budget, tighten
from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.cli import main
from explorer.errors import CheckpointError, UsageError
from explorer.training import TrainSettings


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the console entry point in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def assert_refused(code: int, err: str, needle: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0], err
    assert needle in lines[0], err


# --- budgets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1e999flops", "finite"),
        ("1e308s", "finite"),
        ("9" * 400 + "flops", "more than 40 characters"),
        ("1e-320flops", "out of range"),
        ("1e30params", "out of range"),
        ("1e-12ms", "out of range"),
    ],
)
def test_absurd_budgets_are_refused(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as info:
        parse_budget(text)
    assert "\n" not in str(info.value)


def test_prune_refuses_infinite_budget_before_loading(capsys, tmp_path: Path) -> None:
    code, _, err = cli(
        capsys, "prune", str(tmp_path / "none.pt"), "--device", "rpi4", "--budget", "1e999flops"
    )
    assert code == 2 and "error:" in err


def test_conflicting_budgets_keep_the_tighter_and_say_so() -> None:
    kept, notices = tighten(
        [
            parse_budget("20ms"),
            parse_budget("1e9flops"),
            parse_budget("10ms"),
            parse_budget("5ms@rpi4"),
        ]
    )
    assert [b.text for b in kept] == ["10ms", "1e9flops", "5ms@rpi4"]
    assert notices == ["budgets 20ms and 10ms limit the same latency; keeping the tighter, 10ms"]
    kept, notices = tighten([parse_budget("1e8flops"), parse_budget("1e9flops")])
    assert [b.text for b in kept] == ["1e8flops"] and len(notices) == 1


# --- numeric options ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0, 1e308, 1.5])
def test_weight_decay_must_be_finite(value: float) -> None:
    # 1e308 is finite but overflows the float32 the optimiser computes in
    with pytest.raises(UsageError, match="weight_decay"):
        TrainSettings(weight_decay=value)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "ding2025", "--seed", "-1"], "--seed"),
        (["train", "ding2025", "--weight-decay", "nan"], "weight_decay"),
        (["train", "ding2025", "--weight-decay", "inf"], "weight_decay"),
        (["train", "ding2025", "--weight-decay", "1e308"], "weight_decay"),
        (["profile", "ding2025", "--batch-size", "9" * 400], "batch size"),
        (["train", "ding2025", "--batch-size", "9" * 400], "batch size"),
        (
            ["search", "--device", "rpi4", "--budget", "1e9flops", "--heartbeat", "9" * 400],
            "--heartbeat",
        ),
        (["bench", "ding2025", "--threads", "-1"], "--threads"),
        (["search", "--device", "rpi4", "--budget", "1e9flops", "--threads", "0"], "--threads"),
        (
            ["search", "--device", "rpi4", "--budget", "1e9flops", "--workers", "100000"],
            "4 per core",
        ),
        (["search", "--device", "rpi4", "--budget", "1e999flops"], "finite"),
    ],
)
def test_nonsense_options_exit_2_in_one_line(capsys, args: list[str], needle: str) -> None:
    assert_refused(*cli(capsys, *args)[::2], needle)


# --- --debug after the command -----------------------------------------------------------


def test_debug_after_the_command_is_accepted(capsys) -> None:
    from device_profiles import DeviceError

    # --debug: the error propagates with its traceback instead of "No such option: --debug"
    with pytest.raises(DeviceError, match="no-such-device"):
        main(["devices", "show", "no-such-device", "--debug"])
    code, _, err = cli(capsys, "devices", "show", "no-such-device")
    assert code == 2 and "No such option" not in err


# --- device files ------------------------------------------------------------------------


def test_deeply_nested_toml_names_the_file(capsys, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path))
    code, _, err = cli(capsys, "devices", "show", "rpi4")
    assert_refused(code, err, "deep.toml")


def test_subnormal_bandwidth_is_refused(capsys, tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        'name = "Tiny"\nkind = "cpu"\nbandwidth_gb_s = 1e-320\n[peak_gflops]\nfp32 = 1.0\n'
    )
    assert_refused(*cli(capsys, "devices", "show", str(path))[::2], "bandwidth_gb_s")


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "needle"),
    [("file/x.pt", "which is a file"), (".", "is a directory"), ("n" * 300 + ".pt", "bytes")],
)
def test_train_checks_out_before_training(capsys, tmp_path: Path, monkeypatch, out, needle) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    # --epochs 1 on ding2025 would take a minute: the refusal comes before any data is read
    assert_refused(*cli(capsys, "train", "ding2025", "--out", out)[::2], needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# --- checkpoint metadata -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory) -> Path:
    import search_spaces as ss

    config = ss.config_from_string("lu:frames=2,width_mult=0.25")
    model = ss.build(config)
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    save_checkpoint(path, model, class_names=[f"c{i}" for i in range(8)])
    return path


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["shapes"].update({next(iter(d["shapes"])): [1_000_000, 350_000]}), "shapes"),
        (lambda d: d.update(shapes=[1, 2]), "shapes"),
        (lambda d: d["shapes"].update({next(iter(d["shapes"])): ["x"]}), "shapes"),
        (lambda d: d.update(class_names="happy"), "class_names"),
        (lambda d: d.update(class_names=[1, 2]), "class_names"),
    ],
)
def test_malformed_checkpoint_metadata_is_refused(
    small_ckpt: Path, tmp_path: Path, edit, needle
) -> None:
    data = torch.load(small_ckpt, weights_only=True)
    edit(data)
    bad = tmp_path / "bad.pt"
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match=needle) as info:
        load_checkpoint(bad)
    assert "\n" not in str(info.value)


# --- a failed search start leaves nothing behind -----------------------------------------


def test_failed_search_start_creates_nothing(capsys, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = ["search", "--device", "rpi4", "--budget", "1e9flops", "--trials", "1"]
    code, _, err = cli(capsys, *args, "--dataset", "synthetic:actors=1", "--out", str(out))
    assert_refused(code, err, "actors=1")
    assert not out.exists()  # no run directory, no study.db whose settings would then refuse


# --- damaged run directories ---------------------------------------------------------------


def _run_dir(tmp_path: Path) -> Path:
    import json

    run = tmp_path / "run"
    run.mkdir()
    header = "number,state,family,feasible,pareto,macro_f1,params,flops,predicted_ms_rpi4"
    rows = [f"{i},COMPLETE,ding,true,false,0.{5 + i},{1000 * (i + 1)},2e6,1.5" for i in range(3)]
    (run / "results.csv").write_text("\n".join([header, *rows]) + "\n")
    device = {"key": "rpi4", "name": "Pi", "peak_gflops_fp32": 30.0, "bandwidth_gb_s": 12.8}
    (run / "search.json").write_text(json.dumps({"study": "s", "devices": [device]}))
    return run


def test_truncated_results_csv_is_reported_in_one_line(capsys, tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    text = (run / "results.csv").read_text()
    (run / "results.csv").write_text(text[: text.rindex("COMPLETE")])  # cut inside the last row
    code, _, err = cli(capsys, "report", str(run), "--no-breakdown")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "1 incomplete row" in notes[0] and "2 trial(s) shown" in notes[0]


@pytest.mark.parametrize("number", ["abc", "nan", "inf", "1e999", "-1", ""])
def test_rows_without_a_trial_number_are_left_out_with_a_note(
    capsys, tmp_path: Path, number: str
) -> None:
    run = _run_dir(tmp_path)
    lines = (run / "results.csv").read_text().splitlines()
    lines[1] = number + lines[1][1:]  # the first trial's number replaced
    (run / "results.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli(capsys, "report", str(run), "--no-breakdown")
    assert code == 0 and "unexpected" not in err, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "1 row(s) whose 'number'" in notes[0], err
    assert "2 trial(s) shown" in notes[0]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("results.csv", "number,family\n0," + "x" * 200_000 + "\n", "not a readable CSV"),
        ("search.json", "[" * 100_000 + "]" * 100_000, "nests deeper"),
    ],
)
def test_unreadable_run_files_are_one_line_errors(
    capsys, tmp_path: Path, name: str, text: str, needle: str
) -> None:
    run = _run_dir(tmp_path)
    (run / name).write_text(text)
    code, _, err = cli(capsys, "report", str(run), "--no-breakdown")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


@pytest.mark.parametrize("bandwidth", [0, -1, "fast", None])
def test_search_json_with_a_bad_roof_still_reports(capsys, tmp_path: Path, bandwidth) -> None:
    import json

    run = _run_dir(tmp_path)
    settings = json.loads((run / "search.json").read_text())
    settings["devices"][0]["bandwidth_gb_s"] = bandwidth
    (run / "search.json").write_text(json.dumps(settings))
    code, _, err = cli(capsys, "report", str(run), "--no-breakdown")
    assert code == 0 and "unexpected" not in err, err
    assert (run / "report.html").stat().st_size > 1000


# --- start-up ------------------------------------------------------------------------------


def test_help_and_devices_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from explorer.cli import main\n"
        "for args in (['--help'], ['devices', '--format', 'json']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('torch', 'optuna', 'pandas', 'search_spaces') "
        "if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "HEAVY []" in out.stderr, out.stderr[-500:]


def test_lazy_names_still_resolve() -> None:
    import explorer
    import explorer.search

    assert explorer.profile_model.__module__.startswith("explorer.profiling")
    assert callable(explorer.search.run_search)
    with pytest.raises(AttributeError):
        _ = explorer.no_such_name
