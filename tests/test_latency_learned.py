"""Learned per-kernel latency: regressors, the calibration file, and prediction dispatch."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import device_profiles
from explorer.errors import UsageError
from explorer.latency import NOISY_SCATTER
from explorer.latency._kernels import KernelNode, describe
from explorer.latency._learned import (
    FEATURES,
    KernelModel,
    Trees,
    features,
    fit_kernel_model,
    fit_kind,
    kernel_file_for,
    load_kernel_model,
)
from explorer.prediction import predict_latency
from explorer.profiling import profile_model


def _conv_nodes(n: int, seed: int) -> list[KernelNode]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cin, cout = (int(v) for v in rng.choice([8, 16, 32, 64, 128], size=2))
        hw, k = int(rng.choice([7, 14, 28, 56])), int(rng.choice([1, 3, 5]))
        flops = 2.0 * cout * hw * hw * cin * k * k
        nbytes = 4.0 * (cin + cout) * hw * hw + 4.0 * cout * cin * k * k
        out.append(
            KernelNode(
                name=f"c{i}",
                op="Conv",
                kind="conv",
                inputs=((1, cin, hw, hw),),
                outputs=((1, cout, hw, hw),),
                channels_in=cin,
                channels_out=cout,
                kernel=(k, k),
                stride=(1, 1),
                flops=flops,
                bytes=nbytes,
            )
        )
    return out


def _law_us(node: KernelNode) -> float:
    """A known kernel law: 3 µs fixed, 50 GFLOP/s of compute, 20 GB/s of traffic."""
    return 3.0 + node.flops / 50e3 + node.bytes / 20e3


def test_the_same_node_in_a_larger_network_is_priced_as_it_ran_there():
    # a known law and a context: the same convolution runs 40 % slower in a network that
    # moves 64 MB (its data evicted from the cache by the other nodes) than in one of 1 MB
    rng = np.random.default_rng(3)
    train = []
    for node in _conv_nodes(400, seed=1):
        network = float(rng.choice([1e6, 64e6]))
        train.append(replace(node, network_bytes=network))
    y = np.log([_law_us(n) * (1.4 if n.network_bytes > 1e7 else 1.0) for n in train])
    model = fit_kind("conv", features(train), y, seed=0)
    test = _conv_nodes(80, seed=2)
    small = np.exp(model.predict_log(features([replace(n, network_bytes=1e6) for n in test])))
    large = np.exp(model.predict_log(features([replace(n, network_bytes=64e6) for n in test])))
    assert np.median(large / small) == pytest.approx(1.4, rel=0.05)
    truth = np.array([_law_us(n) for n in test])
    assert np.median(np.abs(small / truth - 1)) < 0.05


def test_a_regressor_fitted_on_a_known_law_recovers_it():
    train, test = _conv_nodes(300, seed=1), _conv_nodes(80, seed=2)
    y = np.log([_law_us(n) for n in train])
    model = fit_kind("conv", features(train), y, seed=0)
    assert set(model.compared) == {"roofline", "linear", "roofline+trees", "trees"}
    assert model.method in ("roofline", "roofline+trees")
    if model.method == "roofline":  # the law's own form: its constants come back
        c0, c1, c2 = model.coef
        assert c0 == pytest.approx(3.0, rel=0.02)
        assert c1 == pytest.approx(1 / 50e3, rel=0.02) and c2 == pytest.approx(1 / 20e3, rel=0.02)
    predicted = np.exp(model.predict_log(features(test)))
    truth = np.array([_law_us(n) for n in test])
    ape = np.abs(predicted / truth - 1)
    assert np.median(ape) < 0.05, np.median(ape)
    assert np.mean(ape <= 0.10) >= 0.9


def test_the_json_trees_predict_what_lightgbm_predicts():
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = np.sin(x[:, 0]) + x[:, 1] ** 2
    booster = lgb.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 7, "min_data_in_leaf": 3},
        lgb.Dataset(x, y),
        num_boost_round=30,
    )
    trees = Trees.from_lightgbm(booster)
    probe = rng.normal(size=(50, 4))
    assert np.allclose(trees.predict(probe), booster.predict(probe), atol=1e-9)
    assert Trees.from_dict(json.loads(json.dumps(trees.to_dict()))) == trees


def test_a_model_only_scored_prices_as_the_saved_one_would():
    # cross-validation folds and out-of-fold refits keep their trees in LightGBM; the kept
    # model is flattened for its file: the same regressor must price the same
    from explorer.latency._learned import _fit_method

    train, test = _conv_nodes(300, seed=1), _conv_nodes(80, seed=2)
    y = np.log([_law_us(n) * (1.4 if n.kernel == (5, 5) else 1.0) for n in train])
    x = features(train)
    kept = _fit_method("conv", "roofline+trees", x, y, seed=0)
    scored = _fit_method("conv", "roofline+trees", x, y, seed=0, kept=False)
    assert isinstance(kept.trees, Trees) and not isinstance(scored.trees, Trees)
    assert np.allclose(kept.predict_log(features(test)), scored.predict_log(features(test)))
    assert np.ptp(kept.trees.predict(features(test))) > 0.01  # the trees do move the price


def test_out_of_fold_sums_price_each_network_as_its_own_nodes_would():
    # a fold's networks are priced in one pass and split back: each sum must be the one
    # its own nodes give under the same fold's regressors
    from explorer.latency._kernels import KernelGraph
    from explorer.latency._learned import _FOLDS, _fit_kinds, _out_of_fold_sums

    rng = np.random.default_rng(5)
    pool = iter(_conv_nodes(4000, seed=6))
    graphs, profiled, groups = [], [], []
    for i in range(12):
        nodes = tuple(next(pool) for _ in range(int(rng.integers(3, 40))))
        graphs.append(KernelGraph(nodes=nodes, level="all", block=8))
        profiled += [(n, _law_us(n) * rng.uniform(0.9, 1.1)) for n in nodes]
        groups += [i] * len(nodes)
    model = fit_kernel_model(profiled, [(g, 1.0) for g in graphs], level="all", block=8)
    x = features([n for n, _ in profiled])
    sums = _out_of_fold_sums(profiled, groups, graphs, list(range(12)), model, x)
    methods = {k: m.method for k, m in model.kinds.items()} | {"pooled": model.pooled.method}
    fold = np.random.default_rng(0).permutation(len(graphs)) % _FOLDS
    for i in (0, 7, 11):
        train = [nt for nt, g in zip(profiled, groups, strict=True) if fold[g] != fold[i]]
        kinds, pooled = _fit_kinds(train, methods)
        alone = replace(model, kinds=kinds, pooled=pooled).predict_nodes_us(graphs[i]).sum()
        assert sums[i] == pytest.approx(alone, rel=1e-9)
        assert sums[i] != pytest.approx(model.predict_nodes_us(graphs[i]).sum(), rel=1e-6)


def _small_model() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()  # fmt: skip
    return model, (torch.randn(1, 3, 16, 16),)


def _fitted(tmp_path) -> tuple[KernelModel, object]:
    model, inputs = _small_model()
    graph = describe(model, inputs)
    nodes = [(n, 2.0 + n.flops / 1e4) for n in graph.nodes] * 4
    nodes += [(n, _law_us(n)) for n in _conv_nodes(40, seed=3)]
    kernels = fit_kernel_model(nodes, [(graph, 0.05)], level=graph.level, block=graph.block)
    return kernels, graph


def test_a_saved_file_round_trips_and_a_tampered_one_is_refused(tmp_path):
    kernels, graph = _fitted(tmp_path)
    path = kernels.save(tmp_path / "host.kernels.json")
    loaded = load_kernel_model(path)
    assert math.isclose(loaded.predict_ms(graph), kernels.predict_ms(graph), rel_tol=1e-12)
    assert "pickle" not in path.read_text() and json.loads(path.read_text())["digest"]

    data = json.loads(path.read_text())
    data["scale"] = data["scale"] * 2  # an edited number: the digest no longer matches
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="digest") as err:
        load_kernel_model(path)
    assert "\n" not in str(err.value)
    path.write_text(json.dumps({**data, "format": "something-else"}))
    with pytest.raises(UsageError, match="not a kernel latency file"):
        load_kernel_model(path)
    path.write_text("{ not json")
    with pytest.raises(UsageError, match="not a kernel latency file"):
        load_kernel_model(path)
    path.write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(UsageError):
        load_kernel_model(path)


def test_predict_latency_uses_the_kernel_model_beside_the_profile(tmp_path):
    kernels, graph = _fitted(tmp_path)
    toml = tmp_path / "mybox.toml"
    toml.write_text(device_profiles.to_toml(device_profiles.get("rpi4")), encoding="utf-8")
    device = device_profiles.get(str(toml))
    model, inputs = _small_model()
    profile = profile_model(model, inputs)
    roofline = predict_latency(profile, device, model=model, inputs=inputs)
    assert roofline.ops[0].module != graph.nodes[0].name  # no kernel file yet: the roofline
    kernels.save(kernel_file_for(toml))
    learned = predict_latency(profile, device, model=model, inputs=inputs)
    assert math.isclose(learned.ms, kernels.predict_ms(graph), rel_tol=1e-9)
    assert [o.module for o in learned.ops] == [n.name for n in graph.nodes]
    assert learned.low_ms < learned.ms < learned.high_ms
    # without the model itself there is nothing to describe: the roofline as before
    assert predict_latency(profile, device).ms == roofline.ms
    assert len(FEATURES) == features(graph.nodes).shape[1]


def test_a_model_built_again_from_its_config_reuses_the_graph_a_changed_one_does_not(
    monkeypatch,
):
    """The search prices a candidate, then builds it again to train it: the second build is
    not exported again. The same Config with another structure (pruned, say) is."""
    import search_spaces as ss
    from explorer.latency import _kernels, _learned

    described = []
    real = _kernels.describe
    monkeypatch.setattr(_kernels, "describe", lambda *a, **k: described.append(1) or real(*a, **k))
    monkeypatch.setattr(_learned, "_GRAPHS", type(_learned._GRAPHS)())
    config = ss.sample("ding", seed=3)
    first = ss.build(config)
    graph = _learned._graph_of(first, ss.example_inputs(first), "all")
    again = ss.build(config)
    assert _learned._graph_of(again, ss.example_inputs(again), "all") is graph
    assert len(described) == 1
    changed = ss.build(config)
    name, conv = next((n, m) for n, m in changed.named_modules() if isinstance(m, nn.Conv2d))
    parent, _, leaf = name.rpartition(".")
    wider = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, groups=conv.groups, bias=conv.bias is not None)  # fmt: skip
    wider.weight.data = conv.weight.data.clone()
    setattr(changed.get_submodule(parent) if parent else changed, leaf, nn.Sequential(wider))
    other = _learned._graph_of(changed, ss.example_inputs(changed), "all")
    assert len(described) == 2 and other is not graph


def test_a_non_default_target_uses_the_kernel_file_only_where_it_runs_what_was_measured(
    tmp_path,
):
    from explorer.latency.learned import kernel_model_for

    kernels, _ = _fitted(tmp_path)  # ONNX Runtime, one thread, FP32 on a CPU
    toml = tmp_path / "mybox.toml"
    text = device_profiles.to_toml(device_profiles.get("rpi4"))
    text += '\n[targets.cpu1-fp32-ort]\nprocessor = "cpu"\nruntime = "onnxruntime"\n'
    text += 'precision = "fp32"\nthreads = 1\n'
    toml.write_text(text, encoding="utf-8")
    kernels.save(kernel_file_for(toml))
    board = device_profiles.get(str(toml))
    uses = {
        name: kernel_model_for(board.with_target(name)) is not None for name in board.all_targets
    }
    # the default target: the file beside the profile was written for it; another target:
    # only ONNX Runtime at the file's thread count (not ncnn, not XNNPACK, not 4 threads)
    assert uses == {
        "cpu-fp32-ncnn": True,
        "cpu1-fp32-ncnn": False,
        "cpu-fp32-xnnpack": False,
        "cpu-fp32-ort": False,  # ONNX Runtime, but on 4 threads
        "cpu1-fp32-ort": True,
    }, uses
    model, inputs = _small_model()
    profile = profile_model(model, inputs)
    ort1 = predict_latency(profile, board.with_target("cpu1-fp32-ort"), model=model, inputs=inputs)
    ncnn1 = predict_latency(
        profile, board.with_target("cpu1-fp32-ncnn"), model=model, inputs=inputs
    )
    assert ort1.ms == pytest.approx(predict_latency(profile, board, model=model, inputs=inputs).ms)
    assert ort1.ops[0].op != ncnn1.ops[0].op  # ONNX Runtime's nodes vs the roofline's operators


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return int(code or 0), out.out, out.err


def test_calibrate_learned_end_to_end_then_profile_uses_it(tmp_path, capsys):
    """`explorer calibrate --time 20s --out FILE` writes the profile and its kernel model;
    `explorer profile --device FILE` then predicts with the kernel model."""
    out = tmp_path / "box.toml"
    code, stdout, err = _cli(capsys, "calibrate", "--time", "20s", "--out", str(out),
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    d = json.loads(stdout)
    side = kernel_file_for(out)
    assert d["kernels_path"] == str(side) and out.is_file()
    kernels = load_kernel_model(side)
    assert kernels.meta["networks"] >= 3 and kernels.kinds
    low, high = kernels.meta["slowdown_range"]  # the samples' speeds, each run divided out
    assert 0 < low <= 1.0 <= high and kernels.meta["reference_ms"] > 0
    assert kernels.meta["paced_reference_ms"] > 0
    assert d["slowdown_range"] == [low, high]
    assert d["speed_scatter"] == kernels.meta["speed_scatter"] >= 0
    if d["speed_scatter"] > NOISY_SCATTER:  # a noisy machine is told so, in one line
        assert "warning: this machine's speed jumped" in err
    else:
        assert "warning" not in err
    assert d["seconds"] < 60
    code, stdout, err = _cli(capsys, "profile", "ding2025", "--device", str(out), "--format",
                             "json")  # fmt: skip
    assert code == 0, err
    host = json.loads(stdout)["devices"]["host"]  # the key is --name's, not the file's
    assert host["calibrated"] and host["predicted_ms"] > 0
    assert host["low_ms"] < host["predicted_ms"] < host["high_ms"]


def test_calibrate_refuses_a_bad_time_in_one_line(tmp_path, capsys):
    for bad in ("5x", "0s", "-3m", "10s"):
        code, _, err = _cli(capsys, "calibrate", "--time", bad, "--out", str(tmp_path / "h.toml"))
        assert code == 2, (bad, err)
        assert "--time" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "h.toml").exists()


def test_the_profiler_cost_per_node_is_recovered_from_whole_network_times():
    from explorer.latency._kernels import KernelGraph

    # networks of 5-400 small nodes (3-40 µs) whose profiled times each read 1.7 µs too much;
    # their whole times (no profiler) are 6 µs per call plus the true node times, +-0.5 % noise
    rng = np.random.default_rng(0)
    nodes = sorted((n for n in _conv_nodes(3000, seed=4) if _law_us(n) < 40), key=_law_us)
    profiled = [(n, _law_us(n) + 1.7) for n in nodes]
    networks = []
    for _ in range(40):  # runs of neighbours: networks of small nodes and of larger ones
        count = int(rng.integers(5, 400))
        start = int(rng.integers(0, len(nodes) - count))
        chosen = nodes[start : start + count]
        whole_us = (6.0 + sum(_law_us(n) for n in chosen)) * rng.uniform(0.995, 1.005)
        networks.append((KernelGraph(nodes=tuple(chosen), level="all", block=8), whole_us / 1e3))
    kernels = fit_kernel_model(profiled, networks, level="all", block=8)
    assert kernels.per_node_us == pytest.approx(1.7, abs=0.3)
    assert kernels.scale == pytest.approx(1.0, abs=0.02)
    assert kernels.call_us == pytest.approx(6.0, abs=5.0)
    graph, measured_ms = networks[0]
    assert kernels.predict_ms(graph) == pytest.approx(measured_ms, rel=0.02)


def _context_networks(seed: int, small: int, large: int) -> list[tuple[object, float, list]]:
    """Networks of tiny convolutions (5-15, at the law) and large ones (8 large convolutions
    and 30-60 tiny ones that take twice the law there: caches a large network emptied), each
    node in one network only: (graph, whole ms, profiled (node, µs) pairs)."""
    from explorer.latency._kernels import KernelGraph

    rng = np.random.default_rng(seed)
    pool = _conv_nodes(40000, seed=seed)
    tiny = iter([n for n in pool if _law_us(n) < 15])
    big = iter([n for n in pool if 200 < _law_us(n) < 2000])
    out = []
    for i in range(small + large):
        if i < small:
            nodes = [(next(tiny), 1.0) for _ in range(int(rng.integers(5, 16)))]
        else:
            nodes = [(next(big), 1.0) for _ in range(8)]
            nodes += [(next(tiny), 2.0) for _ in range(int(rng.integers(30, 60)))]
        profiled = [(n, _law_us(n) * slower) for n, slower in nodes]
        whole_us = (5.0 + sum(t for _, t in profiled)) * rng.uniform(0.99, 1.01)
        graph = KernelGraph(nodes=tuple(n for n, _ in nodes), level="all", block=8)
        out.append((graph, whole_us / 1e3, profiled))
    return out


def test_the_size_correction_learns_what_a_network_s_size_does_to_its_small_nodes():
    # the same tiny convolution takes twice as long inside a large network: fitted on every
    # node, the regressor prices it in between, too slow for a small network; the correction,
    # fitted on node sums priced out of fold, takes it back
    train, fresh = _context_networks(0, 40, 30), _context_networks(1, 10, 10)
    nodes = [nt for _, _, profiled in train for nt in profiled]
    groups = [i for i, (_, _, profiled) in enumerate(train) for _ in profiled]
    networks = [(graph, ms) for graph, ms, _ in train]
    errors = {}
    for label, g in (("in sample", None), ("out of fold", groups)):
        kernels = fit_kernel_model(nodes, networks, level="all", block=8, groups=g)
        errors[label] = np.array([kernels.predict_ms(graph) / ms - 1 for graph, ms, _ in fresh])
    assert kernels.size_log_factors[0] < -0.3 and kernels.size_log_factors[-1] == 0.0
    assert np.abs(errors["out of fold"]).max() < 0.06, errors["out of fold"]
    assert np.abs(errors["in sample"][:10]).max() > 0.10, errors["in sample"]  # needed


def test_random_operators_cover_the_kinds_networks_run_beside_convolutions():
    from explorer.latency._sampling import random_op

    rng = np.random.default_rng(0)
    names = []
    with torch.inference_mode():
        for _ in range(60):
            name, module, shape = random_op(rng)
            out = module.eval()(torch.randn(shape))
            assert torch.isfinite(out).all(), name
            names.append(name.removeprefix("op_"))
    prefixes = {n.split("_")[0].rstrip("0123456789") for n in names}
    for expected in ("gru", "linear", "mha", "layernorm", "permute", "reduce", "gate", "pool"):
        assert any(expected in p for p in prefixes), (expected, sorted(prefixes))
    others = ("gru", "lstm", "linear", "mha", "layernorm", "permute", "reduce", "gate", "pool")
    activations = {p for p in prefixes if not any(o in p for o in others)}
    assert len(activations) >= 4, activations  # Mish, Softplus, Tanh, GELU, ...


def test_random_recurrent_operators_reach_the_widths_family_grus_read():
    """The hybrid family's GRUs read a MobileNetV2 trunk's features (1,280 at every visual
    width): the random GRUs and LSTMs the calibration samples reach that width."""
    import search_spaces.hybrid as hybrid
    import search_spaces.yang as yang
    from explorer.latency._sampling import _RNN_INPUTS, random_op

    visual = hybrid.SPACE["visual_width_mult"].values
    widths = {yang.MobileNetV2FrameEncoder(3, width_mult=m).out_dim for m in visual}
    assert max(widths) <= max(_RNN_INPUTS), (widths, _RNN_INPUTS)
    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(200):  # recurrent operators as the sampler draws them
        name, module, shape = random_op(rng)
        if isinstance(getattr(module, "rnn", None), torch.nn.RNNBase):
            drawn.add(name)
            assert module.rnn.input_size == shape[-1] in _RNN_INPUTS, name
    assert len(drawn) >= 4, drawn


def test_weight_heavy_stacks_stay_within_their_weight_and_work_bounds():
    from explorer.latency._sampling import random_heavy

    rng = np.random.default_rng(0)
    styles = set()
    for _ in range(40):
        name, module, shape = random_heavy(rng)
        weights = 4 * sum(p.numel() for p in module.parameters() if p.dim() > 1)
        assert 1e6 <= weights <= 1.2e8, (name, weights)
        layers = [m for m in module if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        assert len(layers) >= 2, name  # a stack: each layer's weights evict the last one's
        macs = 0
        for m in layers:
            per_out = m.weight[0].numel()
            out = (
                (math.prod(shape) // shape[1] * m.out_channels)
                if m.weight.dim() == 4
                else (shape[0] * m.out_features)
            )
            macs += out * per_out
        assert macs <= 3e8, (name, macs)
        styles.add(name.split("_")[1][:5])  # conv3x9 -> conv3, linear2x512 -> linea
    assert styles == {"conv1", "conv3", "linea"}, styles


def test_stems_are_small_channel_convolutions_within_their_work_bound():
    from explorer.latency._sampling import random_stem

    rng = np.random.default_rng(0)
    shapes = set()
    for _ in range(60):
        name, module, shape = random_stem(rng)
        conv = module[0]
        assert isinstance(conv, torch.nn.Conv2d) and conv.in_channels == shape[1] <= 4, name
        batch, cin, h, w = shape
        macs = batch * conv.out_channels * cin * conv.weight[0, 0].numel() * h * w
        assert macs / conv.stride[0] ** 2 <= 2e8 or batch == 1, (name, macs)
        shapes.add("square" if h == w else "long")
    assert shapes == {"square", "long"}  # images and spectrogram-like maps


def test_sources_take_turns_and_every_family_gets_its_turn():
    import itertools
    from collections import Counter

    from explorer.latency._calibrate import family_of
    from explorer.latency._sampling import sample_sources

    names = [n for n, _m, _x in itertools.islice(sample_sources(seed=0), 78)]
    assert sum(n.startswith("heavy_") for n in names) == 6  # one turn in thirteen
    assert sum(n.startswith("stem") for n in names) == 6
    assert sum(n.startswith("op_") for n in names) == 12
    assert sum(n.startswith("cnn_") for n in names) == 12
    # the family networks, and only they, are told apart by name; four turns in thirteen,
    # shared out in turn: every family four times in six rounds
    families = [family_of(n) for n in names if family_of(n)]
    assert len(families) == 24 and set(Counter(families).values()) == {4}, families
    assert all(n.split("#")[0] == family_of(n) for n in names if "#" in n)


class _FakeClock:
    """A thread clock whose speed changes at every reading of the reference network."""

    def __init__(self, seed: int) -> None:
        self.ns, self.speed = 0, 1.0
        self.rng = np.random.default_rng(seed)

    def thread_time_ns(self) -> int:
        return self.ns

    def spend(self, ms: float) -> None:
        self.ns += round(ms * self.speed * 1e6)


class _FakeProbe:
    def __init__(self, clock: _FakeClock, ref_ms: float, calls: list) -> None:
        self.clock, self.ref_ms, self.paced = clock, ref_ms, []
        self.calls, self.at = calls, []  # the run each reading came before

    def once(self) -> float:
        self.at.append(len(self.calls))
        self.clock.speed = float(self.clock.rng.choice([1.0, 1.5]))  # a neighbour came or went
        start = self.clock.thread_time_ns()
        self.clock.spend(self.ref_ms)
        self.paced.append((self.clock.thread_time_ns() - start) / 1e6)
        return self.paced[-1]


@pytest.mark.parametrize("cost_ms", [0.4, 7.0])
def test_paced_runs_divide_out_a_speed_that_jumps_between_runs(monkeypatch, cost_ms):
    from explorer.latency import _sampling

    clock = _FakeClock(seed=1)
    monkeypatch.setattr(_sampling, "time", clock)
    calls = []
    probe = _FakeProbe(clock, ref_ms=0.3, calls=calls)

    def run() -> None:
        calls.append(clock.speed)
        clock.spend(cost_ms)

    out = _sampling._paced(run, 100, probe)
    assert len(out) == len(calls) == 100
    timed = [(ms, ref) for ms, ref in out if ref > 0]
    assert {round(ms / ref, 9) for ms, ref in timed} == {round(cost_ms / 0.3, 9)}
    assert len(set(calls)) == 2  # the speed did jump: the raw times alone would scatter
    for a, b in itertools.pairwise(probe.at):  # a reading once 10 ms of runs have passed
        ms = [m for m, _ref in out[a:b]]
        assert sum(ms) >= _sampling._PACE_EVERY_MS > sum(ms[:-1])
    untimed = [i for i, (_ms, ref) in enumerate(out) if ref == 0]
    if cost_ms < _sampling._REWARM_BELOW_MS:  # the two runs after each reading re-warm
        assert len(probe.paced) >= 3 and untimed[:2] == [0, 1]
        assert len(untimed) == 2 * len(probe.paced) and len(timed) == 100 - len(untimed)
    else:  # a large network re-warms in its first run: all timed, a reading every one or two
        assert untimed == [] and len(timed) == 100 and 50 <= len(probe.paced) < 100


def test_the_reference_is_read_after_four_untimed_runs(monkeypatch):
    """After a sample the reference's first runs find its data out of cache: 48, 25, 21 and
    14 % slow after one network measured here, 4-5 % by its fifth. The reading is the fifth."""
    from explorer.latency import _sampling

    clock = _FakeClock(seed=0)
    monkeypatch.setattr(_sampling, "time", clock)
    slow = [1.48, 1.25, 1.21, 1.14, 1.05]  # the k-th run after a sample, over a warm one

    class _Session:
        runs = 0

        def run(self, *_a):
            clock.spend(0.4 * slow[min(self.runs, len(slow) - 1)])
            self.runs += 1

    probe = object.__new__(_sampling._Probe)
    probe._session, probe._feed, probe.paced = _Session(), {}, []
    assert probe.once() == pytest.approx(0.4 * 1.05)
    assert probe._session.runs == _sampling._REFERENCE_REWARM_RUNS + 1 == 5


def test_speed_scatter_is_the_jumps_between_readings_not_the_drift():
    from explorer.latency._sampling import speed_scatter

    times = np.arange(0.0, 80.0, 4.0)
    drift = list(zip(times.tolist(), np.linspace(0.30, 0.40, len(times)).tolist(), strict=True))
    assert speed_scatter(drift) < 0.02  # a slow drift (divided out elsewhere) is not scatter
    # every other reading 20 % slow: the machine's speed jumps from one reading to the next
    jumpy = [(t, ms * (1.2 if i % 2 else 1.0)) for i, (t, ms) in enumerate(drift)]
    assert speed_scatter(jumpy) == pytest.approx(0.2, abs=0.02)
    assert speed_scatter(jumpy[:2]) == 0.0  # too few to tell


def test_collect_gives_every_sample_at_the_median_speed_of_the_readings(monkeypatch):
    from explorer.latency import _sampling
    from explorer.latency._kernels import KernelGraph

    node = _conv_nodes(1, seed=0)[0]
    speeds = iter([0.30, 0.33, 0.27, 0.30, 0.36] * 200)

    def fake_sources(**_):
        for i in range(1000):
            yield f"net{i}", None, ()

    def fake_measure(name, *_a, pace, **_k):
        time.sleep(0.01)
        reference_ms = next(speeds)  # the sample's own readings, already divided out of it
        pace.paced.append(reference_ms)
        graph = KernelGraph(nodes=(node,), level="all", block=8)
        return _sampling.KernelSample(
            name=name,
            graph=graph,
            nodes=((node, 30.0 * reference_ms / 0.3),),
            measured_ms=0.02 * reference_ms / 0.3,
            reference_ms=reference_ms,
        )

    monkeypatch.setattr(_sampling, "sample_sources", fake_sources)
    monkeypatch.setattr(_sampling, "measure_kernels", fake_measure)
    monkeypatch.setattr(_sampling, "_PROBE_EVERY_S", 0.05)
    samples, readings = _sampling.collect(budget_s=2.0)  # the reference's export included
    assert len(samples) >= 5
    assert len(readings) >= 3  # at the start, between samples, at the end
    assert all(ms > 0 for _, ms in readings)
    # the readings' median is 0.30: every sample is back at 0.02 ms and 30 µs
    for s in samples:
        assert s.slowdown == pytest.approx(s.reference_ms / 0.30)
        assert s.measured_ms == pytest.approx(0.02) and s.nodes[0][1] == pytest.approx(30.0)
    assert {round(s.slowdown, 3) for s in samples} == {1.0, 1.1, 0.9, 1.2}


def test_collect_stops_where_the_time_kept_for_the_fits_begins(monkeypatch):
    """No network is started once the nodes sampled so far would need the rest of the budget
    to be fitted: the reserve is asked with the nodes so far and the reference's reading."""
    from explorer.latency import _sampling
    from explorer.latency._kernels import KernelGraph

    node = _conv_nodes(1, seed=0)[0]

    def fake_sources(**_):
        for i in range(1000):
            yield f"net{i}", None, ()

    def fake_measure(name, *_a, pace, **_k):
        pace.paced.append(0.3)
        graph = KernelGraph(nodes=(node, node), level="all", block=8)
        return _sampling.KernelSample(
            name=name, graph=graph, nodes=((node, 30.0), (node, 30.0)), measured_ms=0.02,
            reference_ms=0.3,
        )  # fmt: skip

    asked: list[tuple[int, float]] = []

    def reserve(nodes: int, reference_ms: float) -> float:
        asked.append((nodes, reference_ms))
        return 0.0 if nodes < 14 else 1e9  # 7 networks of 2 nodes, then the fits take it all

    monkeypatch.setattr(_sampling, "sample_sources", fake_sources)
    monkeypatch.setattr(_sampling, "measure_kernels", fake_measure)
    samples, readings = _sampling.collect(budget_s=60.0, reserve=reserve)
    assert len(samples) == 7
    assert [n for n, _ in asked] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert all(ms > 0 for _, ms in asked) and readings


def test_the_time_kept_for_the_fits_grows_with_the_nodes_and_a_slower_machine():
    from explorer.latency._host_learned import _FIT_AT_MS, _FIT_TAIL_S, fit_reserve

    assert fit_reserve(0, _FIT_AT_MS) > _FIT_TAIL_S  # the boosters' fixed cost
    assert fit_reserve(20_000, _FIT_AT_MS) > fit_reserve(5_000, _FIT_AT_MS)
    slow = fit_reserve(20_000, 3 * _FIT_AT_MS) - _FIT_TAIL_S
    assert slow == pytest.approx(3 * (fit_reserve(20_000, _FIT_AT_MS) - _FIT_TAIL_S))
    # a machine far faster than the one measured is credited at most twice the speed
    assert fit_reserve(20_000, _FIT_AT_MS / 10) == fit_reserve(20_000, _FIT_AT_MS / 2)


def test_a_sample_is_described_from_its_own_profile_as_describe_describes_it(tmp_path):
    from explorer.latency import _sampling

    torch.manual_seed(0)
    model = nn.Sequential(  # NCHWc convolutions (reorders around them), a pool, a dense layer
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 24, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(24, 5),
    ).eval()
    inputs = (torch.randn(2, 3, 32, 32),)
    probe = _sampling._Probe(tmp_path, level="all", threads=1)
    sample = _sampling.measure_kernels("net", model, inputs, target_s=0.02, pace=probe)
    assert sample.graph == describe(model, inputs)  # one profiled session, the same graph
    profiled = [n for n, _ in sample.nodes]
    assert {n.name for n in profiled if n.kind != "reorder"} == {
        n.name for n in sample.graph.nodes if n.kind != "reorder"
    }
    assert sum(n.kind == "reorder" for n in profiled) >= 1
    assert {n.network_bytes for n in profiled} == {sample.graph.network_bytes}  # reorders too
    assert all(t > 0 for _, t in sample.nodes) and sample.measured_ms > 0


def test_shape_inference_of_a_weight_heavy_network_runs_without_its_weights(tmp_path):
    import onnx

    from explorer.export import export_onnx
    from explorer.latency import _kernels

    class Net(nn.Module):  # 0.45 M weights in a conv and a dense layer, reshapes between
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(64, 512, 3, padding=1)
            self.fc = nn.Linear(512, 300)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x).mean((2, 3)).reshape(x.shape[0], 128, 4)
            return self.fc(y.reshape(x.shape[0], -1))

    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    export_onnx(Net().eval(), (torch.randn(2, 64, 8, 8),), path, check=False)
    model = onnx.load(str(path))
    light = _kernels._shape_only(model)
    big = {i.name for i in model.graph.initializer if math.prod(i.dims) > 16}
    assert big and not big & {i.name for i in light.graph.initializer}  # the weights are gone
    assert big <= {i.name for i in light.graph.input}  # as inputs of the same shape
    assert light.ByteSize() < model.ByteSize() / 50
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    expected = {v.name: _kernels._dims(v) for v in inferred.graph.value_info}
    shapes = _kernels._known_shapes(model)
    assert expected and all(shapes[name] == dims for name, dims in expected.items() if dims)
    assert shapes[model.graph.output[0].name] == (2, 300)
    # a network of few weights is inferred as it is: copying its graph would cost more
    export_onnx(nn.Conv2d(3, 4, 3).eval(), (torch.randn(1, 3, 8, 8),), path, check=False)
    small = onnx.load(str(path))
    assert _kernels._shape_only(small) is small


def test_a_machine_too_slow_to_sample_in_the_time_is_told_how_long_to_give(
    tmp_path, capsys, monkeypatch
):
    """A board many times slower than the machine 5 minutes is sized for (or an emulator)
    samples nothing before the time kept for the fits: one line that says how much --time
    would sample as much, nothing written."""
    import explorer.latency._host_learned as host_learned

    monkeypatch.setattr(host_learned, "measure_bandwidths", lambda log: {0.5: 20.0, 128.0: 10.0})
    monkeypatch.setattr(host_learned, "measure_peak_gflops", lambda *a, **k: 0.4)
    slow_ms = 100 * host_learned._FIT_AT_MS  # the reference runs 100x slower
    monkeypatch.setattr(host_learned, "collect", lambda **_: ([], [(0.0, slow_ms)]))
    out = tmp_path / "board.toml"
    code, _, err = _cli(capsys, "calibrate", "--time", "5m", "--out", str(out))
    assert code == 2, err
    error = err.strip().splitlines()[-1]  # after the progress lines, one line
    assert error.startswith("error: --time 300 s sampled no network"), err
    assert "100x" in error and error.endswith("run again with --time 500m")
    assert not out.exists() and not kernel_file_for(out).exists()
