"""ONNX export of every family, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import search_spaces as ss
from explorer.errors import UsageError
from explorer.export import export_onnx


def cheap_config(family: str):
    """The sampled config of ``family`` with the fewest parameters among the first seeds."""
    configs = [ss.sample(family, seed=s) for s in range(8)]
    return min(configs, key=lambda c: sum(p.numel() for p in ss.build(c).parameters()))


@pytest.mark.parametrize("family", ss.list_families())
def test_every_family_exports_and_matches_pytorch(family: str, tmp_path: Path) -> None:
    model = ss.build(cheap_config(family))
    inputs = ss.example_inputs(model, seed=1)
    result = export_onnx(model, inputs, tmp_path / f"{family}.onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff <= result.tolerance
    graph = onnx.load(str(result.path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    # Fixed batch 1 by default.
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 1


def test_dynamic_batch_runs_at_other_batch_sizes(tmp_path: Path) -> None:
    model = ss.build(ss.get_preset("ding2025"))
    result = export_onnx(model, ss.example_inputs(model), tmp_path / "d.onnx", dynamic_batch=True)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    audio, video = ss.example_inputs(model, 3, seed=2)
    (got,) = session.run(None, {"audio": audio.numpy(), "video": video.numpy()})
    with torch.inference_mode():
        ref = model(audio, video).numpy()
    assert got.shape == (3, ref.shape[1])
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_opset_below_17_is_refused(tmp_path: Path) -> None:
    model = ss.build(ss.get_preset("ding2025"))
    with pytest.raises(UsageError, match="opset must be >= 17"):
        export_onnx(model, ss.example_inputs(model), tmp_path / "x.onnx", opset=16)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_export_json_and_int8(tmp_path: Path, capsys) -> None:
    fp32 = tmp_path / "ding.onnx"
    code, out, err = run_cli(capsys, "export", "ding2025", "--onnx", str(fp32), "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["opset"] >= 17 and d["max_abs_diff"] <= d["tolerance"] and fp32.is_file()
    int8 = tmp_path / "ding-int8.onnx"
    code, out, err = run_cli(capsys, "export", "ding2025", "--onnx", str(int8), "--int8",
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size  # 8-bit weights
    assert json.loads(out)["int8"]["max_abs_diff"] < 0.5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--opset", "13"], "opset must be >= 17"),
        (["--batch", "0"], "--batch must be at least 1"),
    ],
)
def test_cli_export_bad_input_is_one_line(tmp_path: Path, capsys, args, needle) -> None:
    code, out, err = run_cli(capsys, "export", "ding2025", "--onnx", str(tmp_path / "x.onnx"),
                             *args)  # fmt: skip
    assert code == 2 and needle in err and err.count("\n") == 1 and out == ""
    code, _, err = run_cli(capsys, "export", "ding2025", "--onnx", "/no/such/dir/x.onnx")
    assert code == 2 and "does not exist" in err
