"""`explorer search` / `explorer worker` argument errors: one line, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--budget", "1e9 furlongs"], "1e9flops, 500Mflops"),
        (["--budget", "1e9flops", "--timeout", "10x"], "--timeout"),
        (["--budget", "1e9flops", "--families", "dingg"], "did you mean 'ding'"),
        (["--budget", "1e9flops", "--sampler", "grid"], "nsga2"),
        (["--budget", "20ms@nowhere"], "nowhere"),
        (["--budget", "1e9flops", "--objective", "energy"], "host_latency"),
        (["--budget", "1e9flops", "--workers", "0"], "use auto or an integer from 1 to"),
        (["--budget", "1e9flops", "--workers", "many"], "use auto or an integer from 1 to"),
    ],
)
def test_bad_search_arguments_give_one_line_and_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["search", "--device", "orin-nano", *args, "--out", str(tmp_path)], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert not (tmp_path / "study.db").exists()


def test_unknown_device_is_refused_before_any_study_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(
        ["search", "--device", "orin-nanoo", "--budget", "1e9flops", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and "did you mean 'orin-nano'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "study.db").exists()


def test_worker_on_a_missing_study_says_how_to_start_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'none.db'}"
    code, err = run_cli(["worker", "--storage", storage, "--study", "nope"], capsys)
    assert code == 2
    assert "does not exist" in err and "explorer search" in err
    assert len(err.strip().splitlines()) == 1


def test_a_trained_preset_the_front_does_not_dominate_is_named_so() -> None:
    # the preset table must not leave the user guessing: "dominated by #N (...)" or, for a
    # trained preset no front member dominates, "not dominated by the front"; an untrained one
    # (over budget, input too big) has nothing to compare
    from explorer.cli.search import _dominance_text

    assert _dominance_text({"dominated_by": 4, "dominance": "significant"}) == (
        "dominated by #4 (significant)"
    )
    assert _dominance_text({"dominated_by": None, "trained": True}) == "not dominated by the front"
    assert _dominance_text({"dominated_by": None, "trained": False}) == ""


@pytest.mark.parametrize(
    ("device", "name"),
    [
        ("orin-nano", "orin-nano_20ms"),
        ("/tmp/calib/host.toml", "tmp-calib-host.toml_20ms"),
        ("./host.toml", "host.toml_20ms"),
    ],
)
def test_the_default_study_name_is_valid_for_a_profile_given_as_a_path(
    device: str, name: str
) -> None:
    from explorer.budget import parse_budget
    from explorer.search._settings import default_study_name

    assert default_study_name(device, (parse_budget("20ms"),)) == name
