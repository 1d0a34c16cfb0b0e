"""The export helper: a family model exported in a process without ONNX Runtime gives the
graph the model's own export gives; a changed model is exported where it is."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from torch import nn

import search_spaces as ss
from explorer.export import export_onnx
from explorer.latency import _export_helper
from explorer.latency._kernels import describe_onnx


def _own_state(monkeypatch) -> dict:
    """A helper state of the test's own, nothing started, the helper not turned off."""
    monkeypatch.delenv("EXPLORER_EXPORT_HELPER", raising=False)
    state = {"asked": 0, "child": None, "ready": None, "broken": False}
    monkeypatch.setattr(_export_helper, "_state", state)
    return state


@pytest.fixture
def helper(monkeypatch):
    """A helper of this test's own, started and ready (the second export starts it)."""
    state = _own_state(monkeypatch)
    assert _export_helper._helper() == "not started" and state["child"] is None  # one export
    assert _export_helper._helper() == "not started" and state["child"] is not None
    assert state["ready"].wait(timeout=120) and not state["broken"]
    yield state
    _stop(state)


def _stop(state: dict) -> None:
    state["child"].stdin.close()  # the helper exits when its stdin closes
    assert state["child"].wait(timeout=30) == 0


def test_a_caller_that_expects_many_exports_starts_the_helper_before_the_first(monkeypatch):
    state = _own_state(monkeypatch)
    assert _export_helper.start(wait_s=120)
    child = state["child"]
    assert child is not None and _export_helper.start()  # once
    assert state["child"] is child
    assert _export_helper._helper() is child  # the first export uses it
    _stop(state)
    monkeypatch.setenv("EXPLORER_EXPORT_HELPER", "0")
    state.update(child=None, ready=None)
    assert not _export_helper.start(wait_s=1)
    assert state["child"] is None and _export_helper._helper() == "turned off"


def _kernels(path: Path) -> list[tuple]:
    # the runtime numbers the reorders it inserts (ReorderOutput_token_364): names aside
    nodes = describe_onnx(path).nodes
    return [(n.op, n.kind, n.inputs, n.outputs, n.flops, n.bytes) for n in nodes]


def test_a_family_model_exported_by_the_helper_is_described_as_its_own_export(helper, tmp_path):
    model = ss.build(ss.sample("lu", seed=2))
    inputs = ss.example_inputs(model)
    assert _export_helper.export_elsewhere(model, inputs, tmp_path / "helper.onnx")
    export_onnx(model, inputs, tmp_path / "here.onnx", check=False)
    assert _kernels(tmp_path / "helper.onnx") == _kernels(tmp_path / "here.onnx")
    pid = helper["child"].pid  # the helper never loaded ONNX Runtime
    maps = Path(f"/proc/{pid}/maps")
    if maps.exists():
        assert "onnxruntime" not in maps.read_text()
    assert pid != os.getpid()


def test_a_model_changed_after_it_was_built_is_exported_where_it_is(helper, tmp_path):
    model = ss.build(ss.sample("ding", seed=3))
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, nn.Sequential(conv))
    assert not _export_helper.export_elsewhere(model, ss.example_inputs(model), tmp_path / "x")
    plain = nn.Sequential(nn.Linear(4, 2))  # no Config: never sent
    assert not _export_helper.export_elsewhere(plain, (ss.example_inputs(model)[0],), tmp_path)


def test_an_interpreter_that_cannot_be_started_again_keeps_exports_here(monkeypatch, tmp_path):
    state = _own_state(monkeypatch)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))  # embedded, say
    assert not _export_helper.start(wait_s=1)
    assert state["broken"] and state["child"] is None
    model = ss.build(ss.sample("ding", seed=3))
    assert not _export_helper.export_elsewhere(model, ss.example_inputs(model), tmp_path / "x")
    assert _export_helper._helper() == "it failed"  # and it is not tried again


def test_a_search_on_a_learned_target_starts_the_helper_before_its_first_price(
    monkeypatch, tmp_path
):
    import explorer.latency.learned as learned
    from explorer.search._objective import Objective
    from explorer.search._study import _devices
    from tests._search_helpers import tiny_config

    state = _own_state(monkeypatch)
    config = tiny_config(tmp_path)
    target, devices = _devices(config)
    Objective(config, device=target, devices=devices)  # roofline targets: nothing exported
    assert state["child"] is None
    # the same search with a kernel file for its target (whether there is one is all it asks)
    monkeypatch.setattr(learned, "kernel_model_for", lambda dev: dev is target or None)
    Objective(config, device=target, devices=devices)
    assert state["child"] is not None and state["ready"].wait(timeout=120)
    _stop(state)
