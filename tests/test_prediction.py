"""Per-operator roofline prediction: exact arithmetic on hand-made profiles, and the fitter."""

from __future__ import annotations

from dataclasses import replace

import pytest

import device_profiles
from device_profiles import Calibration, DeviceProfile
from explorer import predict_latency
from explorer.latency._calibrate import fit_calibration
from explorer.prediction import calibration_class
from explorer.profiling import ModelProfile, OpRecord

DEVICE = DeviceProfile(
    key="test-board", name="Test board", kind="cpu", peak_gflops={"fp32": 100.0},
    bandwidth_gb_s=10.0,
)  # fmt: skip


def op(kind: str, *, macs: int = 0, elementwise: int = 0, read: int = 0, written: int = 0,
       shape: tuple[int, ...] = (), module: str = "m", name: str = "", groups: int = 1,
       input_shape: tuple[int, ...] = (), strided: int = 0) -> OpRecord:  # fmt: skip
    return OpRecord(
        module=module, module_type="X", op=f"aten.{name or kind}", kind=kind, macs=macs,
        flops=2 * macs, elementwise_flops=elementwise, bytes_read=read, bytes_written=written,
        weight_bytes=0, output_shape=shape, input_shape=input_shape, groups=groups,
        strided_bytes=strided,
    )  # fmt: skip


def profile(*ops: OpRecord) -> ModelProfile:
    return ModelProfile(
        model="hand-made", params=0, macs=sum(o.macs for o in ops),
        flops=sum(o.flops for o in ops), elementwise_flops=sum(o.elementwise_flops for o in ops),
        weight_bytes=0, traffic_bytes=sum(o.traffic_bytes for o in ops), peak_activation_bytes=0,
        ops=ops,
    )  # fmt: skip


# conv: 1e6 MACs = 2e6 FLOPs -> 20 us at 100 GFLOP/s; 1e4 bytes -> 1 us: compute-bound.
CONV = op("conv", macs=1_000_000, read=6_000, written=4_000, shape=(1, 16, 10, 10))
# relu: 1e4 FLOPs -> 0.1 us; 8e4 bytes -> 8 us: memory-bound.
RELU = op("activation", elementwise=10_000, read=40_000, written=40_000)


def test_uncalibrated_roofline_is_the_sum_of_per_operator_maxima() -> None:
    pred = predict_latency(profile(CONV, RELU), DEVICE)
    assert pred.ops[0].roofline_ms == pytest.approx(0.020)
    assert pred.ops[0].bound == "compute"
    assert pred.ops[1].roofline_ms == pytest.approx(0.008)
    assert pred.ops[1].bound == "memory"
    assert pred.roofline_ms == pytest.approx(0.028)
    assert pred.ms == pred.roofline_ms and not pred.calibrated
    assert pred.bound == "compute"


def test_calibration_scales_roofs_and_adds_overheads() -> None:
    cal = Calibration(compute_fraction=0.5, bandwidth_fraction=0.25, overhead_us=2.0,
                      kind_compute_fraction={"conv": 0.8}, kind_overhead_us={"conv": 5.0},
                      call_overhead_us=10.0)  # fmt: skip
    pred = predict_latency(profile(CONV, RELU), replace(DEVICE, calibration=cal))
    conv_ms = 0.020 / 0.8 + 0.005  # 25 us + 5 us
    relu_ms = max(0.0001 / 0.5, 0.008 / 0.25) + 0.002  # 32 us + 2 us
    assert pred.ops[0].ms == pytest.approx(conv_ms)
    assert pred.ops[1].ms == pytest.approx(relu_ms)
    assert pred.ms == pytest.approx(conv_ms + relu_ms + 0.010)
    assert pred.roofline_ms == pytest.approx(0.028)  # the bound is unchanged
    assert pred.calibrated and pred.ms > pred.roofline_ms


def test_fused_activation_pays_only_its_arithmetic() -> None:
    cal = Calibration(compute_fraction=0.5, bandwidth_fraction=0.25, overhead_us=2.0,
                      fuse_elementwise=True)  # fmt: skip
    pred = predict_latency(profile(CONV, RELU, RELU), replace(DEVICE, calibration=cal))
    assert [o.fused for o in pred.ops] == [False, True, True]
    assert pred.ops[1].ms == pytest.approx(0.0001 / 0.5)
    # An activation that does not follow a dense op is not fused.
    alone = predict_latency(profile(RELU, CONV), replace(DEVICE, calibration=cal))
    assert [o.fused for o in alone.ops] == [False, False]


def test_operator_classes_follow_the_runtime_kernels() -> None:
    x = (1, 16, 10, 10)
    dw = op("conv", macs=9 * 16 * 100, shape=x, input_shape=x, groups=16)
    ghost = op("conv", macs=9 * 32 * 100, shape=(1, 32, 10, 10), input_shape=x, groups=16)
    dense = op("conv", macs=9 * 16 * 16 * 100, shape=x, input_shape=x)
    assert calibration_class(dw) == "dwconv"
    assert calibration_class(ghost) == "gconv"  # several outputs per group
    assert calibration_class(dense) == "conv3x3"  # Winograd's case: 3x3 at stride 1
    pointwise = op("conv", macs=16 * 16 * 100, shape=x, input_shape=x)
    strided = op("conv", macs=9 * 16 * 16 * 25, shape=(1, 16, 5, 5), input_shape=x)
    assert calibration_class(pointwise) == calibration_class(strided) == "conv"
    assert calibration_class(RELU) == "activation"
    mish = op("activation", name="mish.default", elementwise=100)
    gelu = op("activation", name="gelu.default", elementwise=100)
    sigmoid = op("activation", name="sigmoid.default", elementwise=100)
    assert calibration_class(mish) == "activation_slow"
    assert calibration_class(gelu) == "activation_gelu"
    assert calibration_class(sigmoid) == "activation_math"


def test_size_efficiency_grouped_calls_and_strided_copies() -> None:
    """Half-performance sizes, per-call overheads and view copies, by hand."""
    cal = Calibration(compute_fraction=1.0, bandwidth_fraction=1.0, overhead_us=1.0,
                      kind_half_channels={"conv": 16.0}, kind_half_reduction={"conv": 8.0},
                      kind_overhead_us={"gconv": 0.5, "memory": 3.0})  # fmt: skip
    dev = replace(DEVICE, calibration=cal)
    # 16 output channels (n/(n+16) = 1/2), 24 MACs per output (k/(k+8) = 3/4): 3/8 of peak.
    conv = op("conv", macs=24 * 16 * 100, shape=(1, 16, 10, 10), input_shape=(1, 8, 10, 10))
    assert predict_latency(profile(conv), dev).ops[0].ms == pytest.approx(
        2 * 24 * 16 * 100 / 100e9 / (1 / 2 * 3 / 4) * 1e3 + 1e-3
    )
    # A grouped conv pays its overhead once per image and group: 4 images x 8 groups.
    ghost = op("conv", macs=9 * 32 * 4 * 100, shape=(4, 32, 10, 10),
               input_shape=(4, 8, 10, 10), groups=8)  # fmt: skip
    compute_ms = 2 * ghost.macs / 100e9 * 1e3
    assert predict_latency(profile(ghost), dev).ops[0].ms == pytest.approx(
        compute_ms + 4 * 8 * 0.5e-3
    )
    # A reduction over a permuted view pays a copy of it first (read + write at 10 GB/s).
    red = op("reduction", elementwise=1000, read=4000, written=40, strided=4000)
    plain = replace(red, strided_bytes=0)
    extra = predict_latency(profile(red), dev).ms - predict_latency(profile(plain), dev).ms
    assert extra == pytest.approx(2 * 4000 / 10e9 * 1e3 + 3e-3)


@pytest.mark.parametrize("processor", ["cpu", "gpu"])
def test_vectorised_fit_prices_like_predict_latency(processor: str) -> None:
    """The fitter's array pricing equals predict_latency on real family profiles, on a CPU and
    on a GPU (where a grouped convolution is one launch, not one per group)."""
    import search_spaces as ss
    from explorer import profile_model
    from explorer.latency._fit import _design, _price_ms

    profiles = []
    for family in ("lu", "hybrid", "kumar", "ishtiaq"):
        model = ss.build(ss.sample(family, seed=3))
        profiles.append(profile_model(model, ss.example_inputs(model)))
    cal = Calibration(
        compute_fraction=0.4, bandwidth_fraction=0.3, overhead_us=0.7, call_overhead_us=9.0,
        kind_compute_fraction={"conv": 0.9, "dwconv": 0.2, "activation_gelu": 0.3},
        kind_bandwidth_fraction={"memory": 0.8, "reduction": 0.1},
        kind_overhead_us={"gconv": 0.2, "memory": 2.0},
        kind_half_channels={"conv": 10.0, "linear": 3.0},
        kind_half_reduction={"conv": 5.0, "matmul": 20.0}, fuse_elementwise=True,
    )  # fmt: skip
    device = replace(DEVICE, kind=processor)
    dev = replace(device, calibration=cal)
    priced = _price_ms(_design(device, profiles, fuse_elementwise=True), cal)
    for p, ms in zip(profiles, priced, strict=True):
        assert ms == pytest.approx(predict_latency(p, dev).ms, rel=1e-12)


def test_prediction_on_real_profile_and_builtin_device() -> None:
    import search_spaces as ss
    from explorer import profile_model

    model = ss.build(ss.get_preset("ding2025"))
    prof = profile_model(model, ss.example_inputs(model))
    rpi4 = device_profiles.get("rpi4")
    pred = predict_latency(prof, rpi4)
    assert len(pred.ops) == len(prof.ops)
    expected = sum(
        max(o.total_flops / 30e9, o.traffic_bytes / 12.8e9) for o in prof.ops
    ) * 1e3  # fmt: skip
    assert pred.roofline_ms == pytest.approx(expected)
    assert pred.to_dict()["predicted_ms"] == pred.ms


def test_fit_recovers_a_known_calibration() -> None:
    """Times generated by a known calibration are reproduced by the fitted one."""
    truth = Calibration(compute_fraction=0.5, bandwidth_fraction=0.5, overhead_us=1.0,
                        kind_compute_fraction={"conv": 0.6, "linear": 0.3},
                        kind_overhead_us={"conv": 4.0, "activation": 0.5},
                        call_overhead_us=8.0, fuse_elementwise=True)  # fmt: skip
    samples = []
    for scale in (1, 3, 10, 30, 100, 300):
        for ops in (
            (op("conv", macs=20_000 * scale, read=500 * scale, written=400 * scale,
                shape=(1, 8, scale, 10), input_shape=(1, 8, scale, 10)),),
            (op("linear", macs=5_000 * scale, read=20_000 * scale, written=40 * scale),),
            (op("activation", elementwise=1_000 * scale, read=4_000 * scale,
                written=4_000 * scale),),
            tuple(op("activation", elementwise=16, read=64, written=64) for _ in range(scale)),
        ):  # fmt: skip
            p = profile(*ops)
            samples.append((p, predict_latency(p, replace(DEVICE, calibration=truth)).ms))
    # Each class has one size here, so half-performance sizes would be confounded with the
    # fractions: fit without them (the truth has none).
    cal = fit_calibration(DEVICE, samples, threads=1, source="test", per_kind_overhead=True,
                          size_efficiency=False)  # fmt: skip
    fitted = replace(DEVICE, calibration=cal)
    for p, ms in samples:
        assert predict_latency(p, fitted).ms == pytest.approx(ms, rel=0.03)
    assert cal.compute_fraction_for("conv") == pytest.approx(0.6, rel=0.05)
