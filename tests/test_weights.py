"""--weights: a researcher's plain state_dict loaded into the model a MODEL spec builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from explorer.errors import CheckpointError, UsageError
from explorer.models import resolve_model

EXPLORER = (sys.executable, "-c", "from explorer.cli import main; main()")


def _trained_ding(seed: int = 7) -> dict[str, torch.Tensor]:
    """ding2025's tensors, all changed, as a training script would save them."""
    torch.manual_seed(seed)
    model = ss.build(ss.get_preset("ding2025"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return model.state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict key", "DataParallel prefix"])
def test_weights_are_loaded_into_the_model(tmp_path: Path, wrap: str) -> None:
    state = _trained_ding()
    data: object = {
        "plain": state,
        "state_dict key": {"state_dict": state, "epoch": 12, "optimizer": {"lr": 1e-3}},
        "DataParallel prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    torch.save(data, tmp_path / "ding.pth")
    resolved = resolve_model("ding2025", weights=tmp_path / "ding.pth")
    assert not resolved.model.training
    for key, value in resolved.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not torch.equal(
        resolve_model("ding2025").model.state_dict()["head.3.weight"], state["head.3.weight"]
    )


def test_weights_that_do_not_fit_name_the_keys(tmp_path: Path) -> None:
    state = _trained_ding()
    state.pop("head.0.bias")
    state.pop("head.3.bias")
    state["extra.scale"] = torch.ones(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        resolve_model("ding2025", weights=tmp_path / "bad.pth")
    msg = str(err.value)
    assert "\n" not in msg
    assert "2 missing (head.0.bias, head.3.bias)" in msg and "1 unexpected (extra.scale)" in msg
    # Another head size: the shapes differ, and the message says which and how.
    torch.save(_trained_ding(), tmp_path / "ding.pth")
    with pytest.raises(CheckpointError) as err:
        resolve_model("ding2025:dense_units=32", weights=tmp_path / "ding.pth")
    assert (
        "3 mis-shaped (head.0.weight file 16x2528 model 32x2528, head.0.bias file 16 model 32"
        in str(err.value)
    )
    with pytest.raises(UsageError, match="does not exist"):
        resolve_model("ding2025", weights=tmp_path / "missing.pth")


def test_pickled_objects_and_non_state_dicts_are_refused(tmp_path: Path) -> None:
    torch.save(ss.build(ss.get_preset("ding2025")), tmp_path / "module.pt")  # a whole module
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        resolve_model("ding2025", weights=tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        resolve_model("ding2025", weights=tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match="cannot be read as plain tensors"):
        resolve_model("ding2025", weights=tmp_path / "text.pt")


def test_cli_profile_error_is_one_line_exit_2(tmp_path: Path) -> None:
    torch.save(_trained_ding(), tmp_path / "ding.pth")
    out = subprocess.run(
        [*EXPLORER, "profile", "lu2025", "--weights", str(tmp_path / "ding.pth")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing" in lines[0] and "unexpected" in lines[0], out.stderr


# A small ding (the pruning tests' size): ding2025 itself takes minutes on a loaded 2-core box.
_SMALL = "ding:conv_channels=[8,16],image_size_px=48,audio_channels=[8,16],n_mfcc=20"
_PRUNE = ("--device", "rpi4", "--budget", "50%flops", "--dataset", "none", "--no-bench")


def test_prune_a_plain_state_dict_into_a_safe_checkpoint(tmp_path: Path) -> None:
    from explorer.checkpoints import load_checkpoint

    torch.manual_seed(3)
    model = ss.build(ss.config_from_string(_SMALL))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    state = model.state_dict()
    torch.save(state, tmp_path / "mine.pth")
    out_args = ("--steps", "1", "--out", str(tmp_path / "small.pt"), "--format", "json")
    out = subprocess.run(
        [*EXPLORER, "prune", _SMALL, "--weights", str(tmp_path / "mine.pth"), *_PRUNE, *out_args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["budget"]["met"]
    assert report["after"]["flops"] <= 0.5 * report["before"]["flops"]
    ckpt = load_checkpoint(tmp_path / "small.pt")  # the safe format, weights_only=True
    pruned = ckpt.build_model().state_dict()
    # No fine-tuning: the classifier's bias (one per class, never pruned) is the file's.
    last_bias = [k for k in state if k.endswith(".bias")][-1]
    assert torch.equal(pruned[last_bias], state[last_bias])
    assert sum(v.numel() for v in pruned.values()) < sum(v.numel() for v in state.values())


def test_export_runs_the_loaded_weights_in_onnx_runtime(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    state = _trained_ding()
    torch.save({"state_dict": state}, tmp_path / "ding.pth")
    out = subprocess.run(
        [
            *EXPLORER,
            "export",
            "ding2025",
            "--weights",
            str(tmp_path / "ding.pth"),
            "--onnx",
            str(tmp_path / "ding.onnx"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    mine = resolve_model("ding2025", weights=tmp_path / "ding.pth")
    fresh = resolve_model("ding2025")
    session = ort.InferenceSession(str(tmp_path / "ding.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: t.numpy() for i, t in zip(session.get_inputs(), mine.example_inputs, strict=True)
    }
    (logits,) = session.run(None, feeds)
    with torch.no_grad():
        want = mine.model(*mine.example_inputs).numpy()
        other = fresh.model(*mine.example_inputs).numpy()
    assert np.allclose(logits, want, atol=1e-4)
    assert not np.allclose(logits, other, atol=1e-2)  # the file's weights, not a fresh init
