"""``explorer profile``: JSON keys, per-device roofline, CSV rows, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from explorer.cli import main

MODELS = Path(__file__).with_name("profiling_models.py")
CONV_NET = f"{MODELS}:conv_net"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:  # pragma: no cover - main always exits
        code = 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_the_design_keys_and_the_roofline_per_device(capsys):
    import device_profiles

    code, out, err = run(
        capsys, "profile", CONV_NET, "--device", "rpi4", "--device", "orin-nano", "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)  # one JSON document, nothing else on stdout
    for key in (
        "model",
        "params",
        "macs",
        "flops",
        "weight_bytes",
        "peak_activation_bytes",
        "traffic_bytes",
        "ai_weights",
        "ai_traffic",
        "layers",
        "devices",
    ):
        assert key in doc, key
    # TinyConvNet: conv 1→8 k3 on 32² (30²), pool, conv 8→16 k3 (13²), fc 2704→4
    assert doc["macs"] == 8 * 9 * 900 + 16 * 8 * 9 * 169 + 16 * 169 * 4
    assert doc["flops"] == 2 * doc["macs"]
    assert doc["params"] == 8 * 9 + 8 + 16 * 8 * 9 + 16 + 2704 * 4 + 4
    assert set(doc["devices"]) == {"rpi4", "orin-nano"}
    for key, pred in doc["devices"].items():
        dev = device_profiles.get(key)
        expected_ms = 0.0
        compute_ms = memory_ms = 0.0
        for layer in doc["layers"]:
            c = (layer["flops"] + layer["elementwise_flops"]) / (dev.peak_gflops_fp32 * 1e9)
            m = (layer["bytes_read"] + layer["bytes_written"]) / (dev.bandwidth_gb_s * 1e9)
            expected_ms += max(c, m) * 1e3
            if c >= m:
                compute_ms += max(c, m) * 1e3
            else:
                memory_ms += max(c, m) * 1e3
        assert pred["roofline_ms"] == pytest.approx(expected_ms)
        assert pred["bound"] == ("compute" if compute_ms >= memory_ms else "memory")
        assert {"predicted_ms", "roofline_ms", "bound"} <= set(pred)


def test_csv_is_the_per_layer_rows(capsys):
    code, out, err = run(capsys, "profile", CONV_NET, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["op"] == "aten.convolution.default"
    assert rows[-1]["module"] == "fc" and rows[-1]["kind"] == "linear"
    assert sum(int(r["macs"]) for r in rows) == 8 * 9 * 900 + 16 * 8 * 9 * 169 + 16 * 169 * 4


def test_table_labels_macs_and_flops_and_counters(capsys):
    code, out, err = run(
        capsys, "profile", CONV_NET, "--per-layer", "--counters", "torch,thop", "--device", "rpi5"
    )
    assert code == 0, err
    assert "MACs" in out and "FLOPs (dense, 2 per MAC)" in out
    assert "rpi5" in out and "external counters" in out and "per layer" in out
    assert "thop" in out and "features.0" in out


def _bad_toml(tmp_path: Path) -> str:
    path = tmp_path / "broken.toml"
    path.write_text("key = 'x'\npeak_gflops = [unclosed\n")
    return str(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["profile", CONV_NET, "--device", "no-such-board"], "no-such-board"),
        (["profile", "missing/model.pt"], "does not exist"),
        (["profile", f"{MODELS}:not_a_model"], "returned int"),
        (["profile", f"{MODELS}:no_such_function"], "no_such_function"),
        (["profile", "no_such_module_xyz:fn"], "no_such_module_xyz"),
        (["profile", CONV_NET, "--counters", "torch,ptflops"], "ptflops"),
        (["profile", CONV_NET, "--device", "BAD_TOML"], "broken.toml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, needle):
    args = [_bad_toml(tmp_path) if a == "BAD_TOML" else a for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err
