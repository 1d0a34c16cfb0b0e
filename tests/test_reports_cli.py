"""``explorer roofline`` and ``explorer report``: real models, real files, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import device_profiles
import search_spaces as ss
from explorer.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_roofline_json_places_ding2025_and_writes_html(tmp_path: Path, capsys) -> None:
    page = tmp_path / "roof.html"
    code, out, err = run(
        capsys,
        "roofline",
        "ding2025",
        "--device",
        "rpi4",
        "--device",
        "zenbo-junior-2",
        "--per-layer",
        "--format",
        "json",
        "--out",
        str(page),
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["out"] == str(page) and doc["intensity"] == "traffic"
    assert [d["key"] for d in doc["devices"]] == ["rpi4", "zenbo-junior-2"]
    assert doc["devices"][0]["ridge_flops_per_byte"] == pytest.approx(30 / 12.8)
    placed = {p["device"]: p for p in doc["models"]}
    assert set(placed) == {"rpi4", "zenbo-junior-2"}
    rpi4 = placed["rpi4"]
    assert rpi4["model"] == "ding2025" and rpi4["family"] == "ding"
    assert rpi4["intensity"] == pytest.approx(rpi4["flops"] / rpi4["bytes"])
    assert rpi4["attained_gflop_s"] == pytest.approx(rpi4["flops"] / rpi4["latency_ms"] / 1e6)
    cells = {c["device"]: c for c in doc["feasibility"]}
    assert cells["rpi4"]["ai_weights"] == pytest.approx(14_324_736 / 266_336)
    assert cells["rpi4"]["mark_weights"] == "/"
    text = page.read_text()
    assert text.count("Plotly.newPlot(") == 5  # 2 rooflines, operators, breakdown, table
    assert "Operators of ding2025" in text and "Table IX" in text


def test_roofline_weights_intensity_with_the_papers_models(tmp_path: Path, capsys) -> None:
    code, out, err = run(
        capsys,
        "roofline",
        "--device",
        "rpi5",
        "--paper-models",
        "--intensity",
        "weights",
        "--format",
        "json",
        "--out",
        str(tmp_path / "r.html"),
    )
    assert code == 0, err
    doc = json.loads(out)
    marks = {c["model"]: (c["mark_weights"], c["paper_mark"]) for c in doc["feasibility"]}
    assert marks["Hu [29]"] == ("✗", "✗")
    assert marks["Mocanu [30]"] == ("✗", "✗")
    assert {p["source"] for p in doc["models"]} == {"roof"}  # no latency: on the roof


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["roofline", "ding2025", "--device", "nosuchboard"], "nosuchboard"),
        (["roofline", "ding2025"], "--device"),
        (["report", "/nonexistent/run"], "does not exist"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(capsys, args: list[str], needle: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_image_export_without_kaleido_names_the_extra(tmp_path: Path, capsys) -> None:
    try:
        import kaleido  # noqa: F401

        pytest.skip("kaleido is installed: the export works instead of failing")
    except ImportError:
        pass
    code, _, err = run(
        capsys,
        "roofline",
        "--device",
        "rpi4",
        "--out",
        str(tmp_path / "r.html"),
        "--image",
        str(tmp_path / "r.png"),
    )
    assert code == 1
    assert "kaleido" in err and ".[export]" in err


def test_report_of_a_run_directory(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    cfg = json.dumps(ss.config_to_dict(ss.get_preset("ding2025")))
    cols = [
        "number",
        "state",
        "family",
        "feasible",
        "pareto",
        "macro_f1",
        "accuracy",
        "params",
        "flops",
        "weight_bytes",
        "traffic_bytes",
        "predicted_ms_rpi4",
        "config_json",
        "something_new",
    ]
    # fmt: off
    rows = [
        [0, "COMPLETE", "ding", "true", "true", 0.61, 0.64, 66584, 14324736, 266336, 2273312,
         0.61, cfg, "x"],
        [1, "COMPLETE", "ding", "true", "false", 0.55, 0.60, 70000, 20000000, 280000, 3000000,
         0.9, cfg, "y"],
        [2, "COMPLETE", "lu", "false", "false", "", "", 900000, 1.3e9, 3.6e6, 1.1e9, 115, "", ""],
        [3, "FAIL", "yang", "true", "false", "", "", "", "", "", "", "", "", "boom"],
    ]
    # fmt: on
    with (run_dir / "results.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        writer.writerows(rows)
    (run_dir / "search.json").write_text(
        json.dumps(
            {
                "study": "demo",
                "device": device_profiles.get("rpi4").to_dict(),
                "objectives": [
                    {"name": "macro_f1", "direction": "maximize"},
                    {"name": "predicted_ms_rpi4", "direction": "minimize"},
                ],
                "budgets": ["1e9flops"],
                "environment": {"torch": "2.13"},
            }
        )
    )
    code, out, err = run(capsys, "report", str(run_dir), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["out"] == str(run_dir / "report.html") and doc["trials"] == 4
    assert doc["notes"] == []
    text = (run_dir / "report.html").read_text()
    assert "Breakdown of the best trial: trial 0 (ding)" in text
    assert "Pareto: macro_f1 vs predicted_ms_rpi4 (the search&#x27;s objectives)" in text
    assert "Pareto: macro_f1 vs flops" in text and "Pareto: macro_f1 vs params" in text
    assert "Roofline of the Pareto-optimal trials" in text
    assert "something_new" in text  # extra columns are kept in the trials table
    assert "1e9flops" in text  # the settings are shown
