"""FP16 and INT8 deployment: converted graphs run in ONNX Runtime and stay close to FP32."""

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
from explorer.latency import BenchSettings, bench
from explorer.quantize import calibration_feeds, convert_onnx

TINY = "synthetic:actors=2,clips_per_class=1"


@pytest.fixture(scope="module")
def ding(tmp_path_factory) -> tuple[torch.nn.Module, Path, list[dict[str, np.ndarray]]]:
    torch.manual_seed(0)
    model = ss.build(ss.get_preset("ding2025")).eval()
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(model, ss.example_inputs(model), path)
    feeds = calibration_feeds(model.input_spec, dataset=TINY, samples=12, cache_dir=path.parent)
    return model, path, feeds


def _ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_int8_is_qdq_runs_in_ort_and_stays_close_to_fp32(ding, tmp_path: Path) -> None:
    model, fp32, feeds = ding
    result = convert_onnx(fp32, tmp_path / "int8.onnx", precision="int8", feeds=feeds)
    ops = _ops(result.path)
    assert ops.count("QuantizeLinear") >= 5 and ops.count("DequantizeLinear") >= 5
    assert result.size_bytes < 0.5 * result.fp32_size_bytes  # 8-bit weights
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, feeds[0])
    with torch.inference_mode():
        ref = model(torch.from_numpy(feeds[0]["audio"]), torch.from_numpy(feeds[0]["video"]))
    # Measured on these 12 synthetic clips: max |diff| 1.9e-3 with logits up to 0.27, top-1
    # always kept (a trained ding2025: 3.7e-2 on 64 clips, 98 % top-1); the bound is 5x.
    assert np.abs(got - ref.numpy()).max() <= 0.01
    assert result.samples == 12 and result.max_abs_diff <= 0.01
    assert result.mean_abs_diff <= result.max_abs_diff
    assert result.top1_agreement >= 0.9


def test_fp16_keeps_float32_io_and_matches_closely(ding, tmp_path: Path) -> None:
    _, fp32, feeds = ding
    result = convert_onnx(fp32, tmp_path / "fp16.onnx", precision="fp16", feeds=feeds)
    graph = onnx.load(str(result.path)).graph
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in graph.input)
    halves = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) >= 5
    # Measured: max |diff| 5.5e-5 (a trained ding2025: 6.1e-4); the bound is 1e-3.
    assert result.max_abs_diff <= 1e-3 and result.top1_agreement == 1.0


def test_calibration_uses_the_checkpoint_normalisation(ding) -> None:
    model, _, feeds = ding
    # Without stored statistics each audio coefficient is standardised over the samples.
    audio = np.concatenate([f["audio"] for f in feeds])
    axes = (0, *range(2, audio.ndim))
    assert np.allclose(audio.mean(axis=axes), 0.0, atol=1e-4)
    size = int(np.prod(audio.shape[1:]))
    shifted = calibration_feeds(
        model.input_spec,
        dataset=TINY,
        samples=12,
        normalization={"mean": [1.0] * size, "std": [1.0] * size},
    )
    raw = np.concatenate([f["audio"] for f in shifted]) + 1.0
    assert not np.allclose(raw, audio)


def test_bench_times_the_int8_graph(ding) -> None:
    model, _, _ = ding
    result = bench(
        model, ss.example_inputs(model), settings=BenchSettings(runs=5, warmup=1, precision="int8")
    )
    assert result.precision == "int8" and result.runs == 5 and result.median_ms > 0


def test_unknown_precision_is_refused(ding, tmp_path: Path) -> None:
    _, fp32, feeds = ding
    with pytest.raises(UsageError, match="fp32, fp16 or int8"):
        convert_onnx(fp32, tmp_path / "x.onnx", precision="int4", feeds=feeds)
    with pytest.raises(UsageError, match="fp32, fp16 or int8"):
        BenchSettings(precision="int4")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_export_int8_reports_drift(tmp_path: Path, capsys) -> None:
    path = tmp_path / "d.onnx"
    code, out, err = run_cli(capsys, "export", "ding2025", "--onnx", str(path), "--precision",
                             "int8", "--dataset", TINY, "--calibration-samples", "8",
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["precision"] == "int8" and d["int8"]["samples"] == 8
    assert 0 < d["int8"]["max_abs_diff"] <= 0.01 and "QuantizeLinear" in _ops(path)


def test_cli_bad_precision_is_one_line(tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "export", "ding2025", "--onnx", str(tmp_path / "x.onnx"),
                             "--precision", "int4")  # fmt: skip
    assert code == 2 and "fp32, fp16 or int8" in err and err.count("\n") == 1 and out == ""
    assert not (tmp_path / "x.onnx").exists()
    code, _, err = run_cli(capsys, "bench", "ding2025", "--backend", "torch", "--precision",
                           "int8")  # fmt: skip
    assert code == 2 and "torch backend times fp32 only" in err


def test_train_int8_stores_fp32_and_int8_macro_f1(tmp_path: Path) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.training import TrainSettings, train_model

    out = tmp_path / "d.pt"
    report = train_model(
        "ding2025",
        dataset=TINY,
        settings=TrainSettings(epochs=1, batch_size=8),
        out=out,
        cache_dir=tmp_path,
        precision="int8",
    )
    dep = report["deployment"]
    assert dep["precision"] == "int8" and dep["samples"] == report["split"]["val"]
    # The FP32 graph in ONNX Runtime reproduces PyTorch's validation macro-F1.
    assert dep["fp32_macro_f1"] == pytest.approx(report["metrics"]["macro_f1"], abs=1e-6)
    assert 0.0 <= dep["macro_f1"] <= 1.0
    assert dep["macro_f1_change"] == pytest.approx(dep["macro_f1"] - dep["fp32_macro_f1"])
    assert load_checkpoint(out).metrics["deployment"] == dep


def test_predictions_use_the_boards_peak_for_the_precision() -> None:
    import device_profiles
    from explorer.quantize import device_at_precision

    orin = device_profiles.get("orin-nano")
    fp32 = device_at_precision(orin, "fp32")
    int8 = device_at_precision(orin, "int8")
    assert fp32.peak_gflops == orin.peak_gflops["fp32"]
    assert int8.precision == "int8" and int8.peak_gflops == orin.peak_gflops["int8"]
    assert int8.bandwidth_gb_s == pytest.approx(4 * orin.bandwidth_gb_s)  # a quarter the bytes
    assert int8.calibration is None
    with pytest.raises(UsageError, match=r"no int8 target and no peak_gflops\.int8"):
        device_at_precision(device_profiles.get("rpi4"), "int8")


def test_prune_int8_compares_macro_f1_and_predicts_at_int8(tmp_path: Path) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.pruning import prune_checkpoint

    report = prune_checkpoint("ding2025", device="orin-nano", budget="70%flops", dataset=TINY,
                              finetune_epochs=0, steps=1, measure=False, precision="int8",
                              out=tmp_path / "p.pt")  # fmt: skip
    dep = report.deployment
    assert dep is not None
    assert dep.check.precision == "int8" and dep.target == "orin-nano:int8"
    assert 0 < dep.predicted_ms < report.after.predicted_ms  # 16x the FP32 peak
    assert dep.check.fp32_macro_f1 == pytest.approx(report.after.macro_f1, abs=1e-6)
    assert load_checkpoint(tmp_path / "p.pt").metrics["deployment"] == dep.to_dict()


def test_cli_profile_predicts_at_the_precision(capsys) -> None:
    runs = {}
    for precision in ("fp32", "int8"):
        code, out, err = run_cli(capsys, "profile", "ding2025", "--device", "orin-nano",
                                 "--precision", precision, "--format", "json")  # fmt: skip
        assert code == 0, err
        runs[precision] = json.loads(out)["devices"]
    assert list(runs["int8"]) == ["orin-nano:int8"]
    fp32, int8 = runs["fp32"]["orin-nano"], runs["int8"]["orin-nano:int8"]
    assert 0 < int8["roofline_ms"] < fp32["roofline_ms"]
    code, _, err = run_cli(capsys, "profile", "ding2025", "--device", "rpi4", "--precision", "int8")
    assert code == 2 and "no int8 target and no peak_gflops.int8" in err


def test_train_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    """The initial weights come from --seed (two runs of ding2025 differed: 0.167 vs 0.261)."""
    from explorer.training import TrainSettings, train_model

    settings = TrainSettings(epochs=1, batch_size=8)
    reports = [
        train_model("ding2025", dataset=TINY, settings=settings, cache_dir=tmp_path)
        for _ in range(2)
    ]
    assert reports[0]["history"][0]["train_loss"] == reports[1]["history"][0]["train_loss"]
    assert reports[0]["metrics"] == reports[1]["metrics"]
