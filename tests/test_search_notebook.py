"""A finished search read from a notebook (pandas) and from optuna-dashboard (its HTTP API)."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from explorer.errors import UsageError
from explorer.search import load_results, run_search
from explorer.search._study import metric_names
from tests._search_helpers import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_CACHE", str(out.parent / "features"))
        run_search(tiny_config(out, trials=3), write_report=False)
    return out


def test_load_results_matches_results_csv(run_dir: Path) -> None:
    frame = load_results(run_dir)
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    assert list(frame.columns) == list(rows[0])  # every column, in the file's order
    assert frame["number"].tolist() == sorted(int(r["number"]) for r in rows)
    assert frame["pareto"].dtype == bool and frame["feasible"].dtype == bool
    assert sorted(frame.loc[frame.pareto, "number"]) == sorted(
        int(r["number"]) for r in rows if r["pareto"] == "True"
    )
    by_number = {int(r["number"]): r for r in rows}
    for _, row in frame.iterrows():
        want = by_number[int(row["number"])]
        assert row["macs"] == int(want["macs"]) and row["params"] == int(want["params"])
        assert row["predicted_ms_orin-nano"] == pytest.approx(float(want["predicted_ms_orin-nano"]))
    # Same frame from the file path; a directory without results is refused in one line.
    assert load_results(run_dir / "results.csv").equals(frame)
    with pytest.raises(UsageError, match=r"no results\.csv"):
        load_results(run_dir / "checkpoints")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_optuna_dashboard_serves_the_study(run_dir: Path) -> None:
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    if not dashboard.exists():
        pytest.skip("optuna-dashboard is not installed (extra 'dev')")
    port = _free_port()
    storage = f"sqlite:///{run_dir / 'study.db'}"
    proc = subprocess.Popen(
        [str(dashboard), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = _get(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    why = proc.stderr.read() if proc.poll() is not None else b"timeout"
                    raise AssertionError(f"optuna-dashboard did not start: {why!r}") from None
                time.sleep(0.3)
        assert [s["study_name"] for s in studies] == ["tiny"]
        detail = _get(f"{base}/api/studies/{studies[0]['study_id']}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert detail["objective_names"] == metric_names(tiny_config(run_dir))
    assert detail["objective_names"][1] == "Predicted latency on orin-nano (ms)"
    frame = load_results(run_dir)
    trials = {t["number"]: t for t in detail["trials"]}
    assert sorted(trials) == frame["number"].tolist()
    for _, row in frame.iterrows():
        trial = trials[int(row["number"])]
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attrs["family"] == row["family"] == "ding"
        assert int(attrs["macs"]) == row["macs"]
        if row["state"] == "COMPLETE":
            assert trial["values"][1] == pytest.approx(row["cost"])
