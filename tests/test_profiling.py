"""The profiling engine against hand-derived counts."""

from __future__ import annotations

import math
import resource

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from explorer import ModelProfile, profile_model
from explorer.profiling import cross_check
from tests.profiling_models import FrameGRU, ResNet18, TinyConvNet, TuckerFusion

torch.manual_seed(0)


def _dense(p: ModelProfile, kind: str | None = None) -> int:
    return sum(op.macs for op in p.ops if kind is None or op.kind == kind)


class Wrap(nn.Module):
    """Calls ``fn`` in forward, so functional ops get a module of their own."""

    def __init__(self, fn, *modules: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(modules)

    def forward(self, *xs):
        return self.fn(*xs)


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize(
    ("cin", "cout", "k", "groups", "stride", "padding"),
    [(3, 16, 3, 1, 1, 1), (8, 16, 3, 4, 2, 0), (12, 12, 5, 12, 1, 2), (6, 12, (3, 1), 3, 1, 0)],
    ids=["plain", "grouped", "depthwise", "asymmetric"],
)
def test_conv2d_counts_cout_cin_over_groups_kernel_output(cin, cout, k, groups, stride, padding):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups)
    x = torch.randn(2, cin, 17, 19)
    p = profile_model(conv, x)
    out = conv(x)
    kernel = math.prod(k) if isinstance(k, tuple) else k * k
    expected = out.numel() * (cin // groups) * kernel
    assert p.macs == expected
    assert p.flops == 2 * expected
    assert p.elementwise_flops == out.numel()  # the bias add
    (op,) = p.ops
    assert op.kind == "conv" and op.module_type == "Conv2d"
    assert op.weight_bytes == conv.weight.numel() * 4 + cout * 4
    assert op.bytes_read == x.numel() * 4 + op.weight_bytes
    assert op.bytes_written == out.numel() * 4
    assert p.params == sum(t.numel() for t in conv.parameters())


@pytest.mark.parametrize("groups", [1, 2, 8])
def test_conv1d_and_transposed(groups):
    conv = nn.Conv1d(8, 16, 5, groups=groups, bias=False)
    x = torch.randn(3, 8, 40)
    p = profile_model(conv, x)
    assert p.macs == 3 * 16 * 36 * (8 // groups) * 5
    assert p.elementwise_flops == 0
    deconv = nn.ConvTranspose1d(8, 4, 3, stride=2, bias=False)
    # each input element feeds Cout·k outputs
    assert profile_model(deconv, x).macs == 3 * 8 * 40 * 4 * 3


# ----------------------------------------------------------------------------- linear algebra


def test_linear_on_3d_input_counts_tokens_in_out():
    lin = nn.Linear(32, 24)
    p = profile_model(lin, torch.randn(4, 7, 32))
    assert p.macs == 4 * 7 * 32 * 24
    assert [op.op for op in p.ops] == ["aten.addmm.default"]  # linear → addmm, counted once
    assert p.ops[0].kind == "linear"
    assert p.elementwise_flops == 4 * 7 * 24


def test_matmul_bmm_einsum():
    a, b = torch.randn(5, 6, 7), torch.randn(5, 7, 8)
    assert profile_model(Wrap(torch.bmm), (a, b)).macs == 5 * 6 * 7 * 8
    assert profile_model(Wrap(torch.matmul), (a, b)).macs == 5 * 6 * 7 * 8
    m = Wrap(lambda x, y: torch.einsum("bij,bjk->bik", x, y))
    p = profile_model(m, (a, b))
    assert p.macs == 5 * 6 * 7 * 8
    assert {op.kind for op in p.ops if op.macs} == {"matmul"}
    # a broadcasting matmul: (2, 3, 4) @ (4, 9)
    assert profile_model(Wrap(torch.matmul), (torch.randn(2, 3, 4), torch.randn(4, 9))).macs == (
        2 * 3 * 4 * 9
    )


def test_bilinear_counts_in1_in2_out_per_sample():
    bil = nn.Bilinear(5, 6, 3)
    p = profile_model(bil, (torch.randn(4, 5), torch.randn(4, 6)))
    assert p.macs == 4 * 5 * 6 * 3
    assert p.params == 5 * 6 * 3 + 3


def test_parameters_held_directly_by_a_custom_module_tucker_core():
    model = TuckerFusion(d_a=8, d_v=6, d_out=5)
    p = profile_model(model, (torch.randn(3, 8), torch.randn(3, 6)))
    assert p.params == 8 * 6 * 5  # from model.parameters(): the core is counted
    assert p.weight_bytes == 8 * 6 * 5 * 4
    assert p.macs == 3 * 8 * 6 * 5 + 3 * 6 * 5
    first = next(op for op in p.ops if op.macs)
    assert first.kind == "linear" and first.weight_bytes == 8 * 6 * 5 * 4


# ----------------------------------------------------------------------------- RNNs


def _rnn_macs(gates: int, tokens: int, inp: int, hidden: int, layers: int, dirs: int) -> int:
    total = 0
    for layer in range(layers):
        i = inp if layer == 0 else dirs * hidden
        total += dirs * tokens * gates * hidden * (i + hidden)
    return total


@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM, nn.RNN])
@pytest.mark.parametrize(
    ("layers", "bidirectional", "batch_first"),
    [(1, False, True), (2, True, True), (3, True, False)],
)
def test_rnn_counts_gates_h_i_plus_h_per_step_and_direction(
    cls, layers, bidirectional, batch_first
):
    gates = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}[cls]
    m = cls(10, 16, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first).eval()
    b, t = 3, 7
    x = torch.randn(b, t, 10) if batch_first else torch.randn(t, b, 10)
    dirs = 2 if bidirectional else 1
    expected = _rnn_macs(gates, b * t, 10, 16, layers, dirs)
    real = profile_model(m, x, meta=False)
    fake = profile_model(m, x, meta=True)
    assert real.macs == expected
    assert fake == _same_as(real, meta=True)
    assert len(real.ops) == layers * dirs and {op.kind for op in real.ops} == {"rnn"}


def test_gru_matches_pytorch_counter_and_lstm_fused_kernel_matches_unfused():
    """GRU on CPU runs unfused: FlopCounterMode sees its addmm's and must agree with us.
    LSTM on CPU runs mkldnn_rnn_layer (0 for FlopCounterMode); with oneDNN off it runs unfused."""
    from torch.utils.flop_counter import FlopCounterMode

    gru = nn.GRU(12, 20, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(2, 9, 12)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        gru(x)
    assert profile_model(gru, x).flops == counter.get_total_flops()

    lstm = nn.LSTM(12, 20, num_layers=2, bidirectional=True, batch_first=True).eval()
    fused = profile_model(lstm, x, meta=False)
    with torch.backends.mkldnn.flags(enabled=False):
        unfused = profile_model(lstm, x, meta=False)
    assert fused.macs == unfused.macs == _rnn_macs(4, 18, 12, 20, 2, 2)
    assert fused.elementwise_flops == unfused.elementwise_flops


def test_fused_rnn_kernels_seen_outside_modules_have_rules():
    """A custom module calling the LSTM kernel directly still counts (mkldnn_rnn_layer rule)."""
    lstm = nn.LSTM(6, 8, batch_first=True).eval()

    class Direct(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.ParameterList(lstm.parameters())

        def forward(self, x):
            h = x.new_zeros(1, x.shape[0], 8)
            return torch.lstm(x, (h, h), list(self.w), True, 1, 0.0, False, False, True)[0]

    x = torch.randn(2, 5, 6)
    p = profile_model(Direct().eval(), x, meta=False)
    assert p.macs == 2 * 5 * 4 * 8 * (6 + 8)
    assert any("mkldnn_rnn_layer" in op.op for op in p.ops)


# ----------------------------------------------------------------------------- attention


def _mha_macs(b: int, lq: int, lk: int, e: int) -> int:
    return b * lq * e * e + 2 * b * lk * e * e + 2 * b * lq * lk * e + b * lq * e * e


def test_mha_fast_path_in_eval_equals_train_mode():
    mha = nn.MultiheadAttention(64, 4, batch_first=True, dropout=0.0)
    x = torch.randn(2, 24, 64)
    mha.eval()
    with torch.no_grad():
        fast = profile_model(mha, (x, x, x), meta=False)
    assert any(op.op == "aten._native_multi_head_attention.default" for op in fast.ops)
    mha.train()
    slow = profile_model(mha, (x, x, x), meta=False)
    assert not any("_native_multi_head" in op.op for op in slow.ops)
    assert fast.macs == slow.macs == _mha_macs(2, 24, 24, 64)
    # elementwise terms are approximated for the fused kernel: totals within 1 %
    assert fast.total_flops == pytest.approx(slow.total_flops, rel=0.01)
    assert fast.params == slow.params == 4 * 64 * 64 + 4 * 64


def test_cross_attention_and_fast_path_disabled_agree():
    mha = nn.MultiheadAttention(32, 2, batch_first=True).eval()
    q, kv = torch.randn(3, 5, 32), torch.randn(3, 11, 32)
    p = profile_model(mha, (q, kv, kv))
    assert p.macs == _mha_macs(3, 5, 11, 32)
    x = torch.randn(3, 5, 32)
    fast = profile_model(mha, (x, x, x))
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        slow = profile_model(mha, (x, x, x))
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    assert fast.macs == slow.macs
    assert fast.elementwise_flops == slow.elementwise_flops


def test_sdpa_cpu_kernel_equals_math_path():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 9, 8), torch.randn(2, 4, 9, 8)
    m = Wrap(F.scaled_dot_product_attention)
    fused = profile_model(m, (q, k, v), meta=False)
    assert [op.op for op in fused.ops] == [
        "aten._scaled_dot_product_flash_attention_for_cpu.default"
    ]
    assert fused.macs == 2 * 4 * 6 * 9 * (8 + 8)
    with sdpa_kernel(SDPBackend.MATH):
        math_path = profile_model(m, (q, k, v), meta=False)
    assert math_path.macs == fused.macs
    assert math_path.total_flops == pytest.approx(fused.total_flops, rel=0.01)


def test_transformer_encoder_fast_path_equals_slow_path():
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True).eval()
    x = torch.randn(2, 10, 32)
    fast = profile_model(layer, x)
    assert any("_transformer_encoder_layer_fwd" in op.op for op in fast.ops)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        slow = profile_model(layer, x)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    assert fast.macs == slow.macs == _mha_macs(2, 10, 10, 32) + 2 * 2 * 10 * 32 * 64
    assert fast.total_flops == pytest.approx(slow.total_flops, rel=0.01)


# ----------------------------------------------------------------------------- whole models


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.gru = nn.GRU(8, 16, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(32, 16, batch_first=True)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.bil = nn.Bilinear(16, 16, 4)

    def forward(self, x):
        f = self.conv(x).mean(dim=(2, 3))  # (B, 8)
        seq = f.unsqueeze(1).expand(-1, 5, -1)
        s, _ = self.gru(seq)
        s, _ = self.lstm(s)
        a, _ = self.attn(s, s, s)
        return self.bil(a[:, -1], s[:, 0]).softmax(-1)


def _same_as(p: ModelProfile, *, meta: bool) -> ModelProfile:
    import dataclasses

    return dataclasses.replace(p, meta=meta)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fake_tensor_profile_is_identical_to_real_run(mode):
    model = getattr(Mixed(), mode)()
    x = torch.randn(2, 3, 12, 12)
    real = profile_model(model, x, meta=False)
    fake = profile_model(model, x, meta=True)
    assert not real.meta and fake.meta
    assert fake == _same_as(real, meta=True)  # every row, every total
    assert not real.uncounted_ops


@pytest.mark.parametrize("family", ["ding", "yang", "ishtiaq", "kumar", "lu", "hybrid"])
def test_a_search_candidate_profiles_the_same_on_real_and_fake_tensors(family):
    """The search profiles on real tensors when its target is learned (the export runs the
    model anyway; a new candidate took 0.02-0.09 s so, 0.15-0.8 s on fake tensors): every
    row and total must be the ones fake tensors give."""
    import numpy as np

    import search_spaces as ss
    from explorer.search._screen import _Draw
    from explorer.search._space import suggest_config

    _, _, config = suggest_config(
        _Draw(np.random.RandomState(7)),
        (family,),
        max_frames=2,
        max_image_px=48,
        fixed={"num_classes": 8},
    )
    model = ss.build(config)
    inputs = ss.example_inputs(model, 1)
    real = profile_model(model, inputs, meta=False)
    assert profile_model(model, inputs, meta=True) == _same_as(real, meta=True)


@pytest.mark.parametrize("meta", [True, False])
def test_profile_inside_inference_mode_counts_the_same(meta):
    """Under torch.inference_mode() PyTorch dispatches conv2d, linear and batch norm whole;
    a profile taken there (as a benchmark script would) once counted them as zero MACs."""
    model = Mixed().eval()
    x = torch.randn(2, 3, 12, 12)
    outside = profile_model(model, x, meta=meta)
    with torch.inference_mode():
        inside = profile_model(model, x, meta=meta)
        made_inside = profile_model(model, torch.randn(2, 3, 12, 12), meta=meta)
    assert outside.macs > 0 and not outside.uncounted_ops
    assert inside == outside and made_inside == outside


def test_peak_activation_follows_lifetimes_not_sum_of_outputs():
    model = nn.Sequential(*(nn.Linear(1000, 1000) for _ in range(5)))
    x = torch.randn(1, 1000)
    for meta in (False, True):
        p = profile_model(model, x, meta=meta)
        # input + the layer's input + its output are alive together (4 kB each)
        assert p.peak_activation_bytes == 3 * 4000
        assert sum(op.bytes_written for op in p.ops) == 5 * 4000
    assert p.weight_bytes == 5 * (1000 * 1000 + 1000) * 4
    assert p.ai_weights == pytest.approx(p.flops / p.weight_bytes)
    assert p.ai_traffic == pytest.approx(p.total_flops / p.traffic_bytes)
    assert p.traffic_bytes == sum(op.bytes_read + op.bytes_written for op in p.ops)


def test_views_cost_nothing_and_module_paths_are_dotted():
    model = TinyConvNet()
    p = profile_model(model, torch.randn(1, 1, 32, 32))
    assert not any(op.op.startswith(("aten.view", "aten.t.", "aten._unsafe_view")) for op in p.ops)
    paths = [op.module for op in p.ops]
    assert paths[:5] == [f"features.{i}" for i in range(5)] and paths[-1] == "fc"
    assert p.ops[0].module_type == "Conv2d"


def test_resnet18_over_90_frames_profiles_without_running_it():
    """ResNet-18 over 90 frames of 224² (≈ 163 G MACs, > 0.6 GB of live activations) counts on
    fake tensors: no arithmetic, and the process does not grow by the activations."""
    model = FrameGRU().eval()
    x = torch.randn(1, 90, 3, 224, 224)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    p = profile_model(model, x)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert p.meta
    assert p.peak_activation_bytes > 600e6
    assert grown_mb < 300, grown_mb
    one = profile_model(ResNet18(num_classes=None).eval(), torch.randn(1, 3, 224, 224))
    # torchvision's ResNet-18 without its FC: 1,813,561,344 MACs per 224² frame
    assert one.macs == 1_813_561_344
    gru = sum(op.macs for op in p.ops if op.module == "gru")
    assert gru == 90 * 2 * 3 * 256 * (512 + 256)
    assert p.macs == 90 * one.macs + gru + 512 * 7


def test_counters_convert_macs_and_flag_what_they_miss():
    model = TinyConvNet().eval()
    x = torch.randn(1, 1, 32, 32)
    p = profile_model(model, x)
    results = {c.name: c for c in cross_check(model, x, p)}
    assert set(results) == {"torch", "fvcore", "thop"}
    for c in results.values():  # conv + linear only: every counter agrees once in FLOPs
        assert c.flops == p.flops and not c.differs, c

    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    seq = torch.randn(2, 6, 32)
    p = profile_model(mha, (seq, seq, seq))
    (torch_counter,) = cross_check(mha, (seq, seq, seq), p, counters=["torch"])
    # FlopCounterMode counts 0 for the fused fast path
    assert torch_counter.missed_macs == p.macs and torch_counter.differs
    assert any("_native_multi_head_attention" in s for s in torch_counter.skipped)

    gru = nn.GRU(8, 16, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    p = profile_model(gru, x)
    (fvcore,) = cross_check(gru, x, p, counters="fvcore")
    assert fvcore.flops == 0 and fvcore.missed_macs == p.macs == 10 * 3 * 16 * (8 + 16)
    assert any("aten::gru" in s for s in fvcore.skipped)


def test_thop_misses_directly_held_parameters():
    model = TuckerFusion()
    inputs = (torch.randn(2, 8), torch.randn(2, 6))
    p = profile_model(model, inputs)
    (thop,) = cross_check(model, inputs, p, counters="thop")
    assert thop.params == 0 and p.params == 8 * 6 * 5
    assert thop.missed_macs == p.macs
    assert any("TuckerFusion" in s for s in thop.skipped)
    assert not hasattr(model, "total_ops")  # thop ran on a copy


def test_unknown_counter_is_a_usage_error():
    from explorer.errors import UsageError

    with pytest.raises(UsageError, match="unknown counter 'ptflops'"):
        cross_check(TinyConvNet(), torch.randn(1, 1, 32, 32), None, counters="ptflops")  # type: ignore[arg-type]


def test_ding2025_end_to_end():
    import search_spaces as ss

    model = ss.build(ss.get_preset("ding2025")).eval()
    p = profile_model(model, ss.example_inputs(model, 1), name="ding2025")
    assert p.params == 66_584
    assert p.macs == 7_162_368
    assert p.flops == 14_324_736


class DataDependent(nn.Module):
    """Its forward needs a value, which fake tensors do not have."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        steps = 1 + int(x.abs().sum().item() > 0)
        for _ in range(steps):
            x = self.lin(x)
        return x


def test_data_dependent_forward_falls_back_to_a_real_run():
    from explorer.errors import ExplorerError, UsageError

    x = torch.randn(3, 4)
    with pytest.warns(RuntimeWarning, match="fake tensors failed"):
        p = profile_model(DataDependent(), x)
    assert not p.meta and p.macs == 2 * 3 * 4 * 4
    with pytest.raises(ExplorerError, match="meta=False"):
        profile_model(DataDependent(), x, meta=True)
    with pytest.raises(UsageError, match=r"nn\.Module"):
        profile_model(lambda t: t, x)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "mode"), [(nn.GRU, 3), (nn.LSTM, 2)])
def test_cudnn_rnn_rule_counts_what_the_cpu_run_counts(cls, mode):
    """No GPU here: feed the _cudnn_rnn rule the arguments PyTorch passes it on CUDA and check
    it equals the CPU profile, so a count does not depend on the kernel."""
    from explorer.profiling._rules import cost_of

    m = cls(10, 12, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(3, 7, 10)
    cpu = profile_model(m, x)
    h = torch.zeros(4, 3, 12)
    args = (x, list(m._flat_weights), 4, None, h, h if mode == 2 else None, mode, 12, 0, 2,
            True, 0.0, False, True, [], None)  # fmt: skip
    cost = cost_of(torch.ops.aten._cudnn_rnn.default, args, {}, None)
    assert cost.kind == "rnn"
    assert cost.macs == cpu.macs
    assert cost.elementwise == cpu.elementwise_flops


def test_missing_counter_package_names_the_extra(monkeypatch):
    import sys

    from explorer.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "fvcore", None)
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)
    model, x = TinyConvNet(), torch.randn(1, 1, 32, 32)
    with pytest.raises(MissingExtraError, match=r"\[counters\]"):
        cross_check(model, x, profile_model(model, x), counters="fvcore")


def test_records_conv_groups_input_shapes_and_strided_inputs() -> None:
    """What the latency model needs to tell kernels apart: groups, input shapes, views."""
    import torch
    from torch import nn

    from explorer import profile_model

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.ghost = nn.Conv2d(8, 16, 3, padding=1, groups=8)
            self.up = nn.ConvTranspose2d(16, 4, 2, stride=2, groups=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.up(self.ghost(self.dw(x)))
            return y.permute(0, 2, 1, 3).amax(2) + y.amax(1)

    p = profile_model(Net(), (torch.randn(2, 8, 6, 6),))
    convs = [o for o in p.ops if o.kind == "conv"]
    assert [o.groups for o in convs] == [8, 8, 2]
    assert [o.input_shape for o in convs] == [(2, 8, 6, 6), (2, 8, 6, 6), (2, 16, 6, 6)]
    amax = [o for o in p.ops if o.op.startswith("aten.amax")]
    assert [o.strided_bytes for o in amax] == [2 * 4 * 12 * 12 * 4, 0]  # permuted, plain
