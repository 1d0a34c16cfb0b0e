"""explorer prune: each family pruned to half its FLOPs, safe reload, ONNX, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import search_spaces as ss
from explorer.budget import Budget
from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.errors import UsageError
from explorer.export import export_onnx
from explorer.pruning import model_costs, parse_prune_budget, prune_to_budget

# Tiny configs (every family's stages present); untrained weights: pruning, reload and
# export do not depend on training, and the CLI test below fine-tunes for real.
TINY = {
    "ding": "ding:conv_channels=[8,16],image_size_px=48,audio_channels=[8,16],n_mfcc=20",
    "lu": "lu:frames=2,image_size_px=32,width_mult=0.5,depth=5,block_table=[[3,16,16,1,2],"
    "[3,72,24,0,2],[3,96,40,1,2],[5,120,48,1,1],[5,288,96,1,2]],speech_channels=[32,32],"
    "n_mfcc=20,head_channels=128",
    "yang": "yang:frames=2,image_size_px=32,width_mult=0.25,mbv2_expand_ratios=[1,2,2,2,2,2,2],"
    "mbv2_repeats=[1,1,1,1,1,1,1],mbv2_last_channels=256,video_stage_channels=[16,32],"
    "audio_channels=[16,16],fusion_channels=[32,32],attention=true,attention_dim=16",
    "ishtiaq": "ishtiaq:frames=2,image_size_px=32,hop_length=320,n_mels=32,audio_channels=[8,16],"
    "video_channels=[8,16],audio_gru_hidden=16,video_gru_hidden=16,text_enabled=false,"
    "fusion=transformer,d_model=32,num_heads=2,encoder_layers=1,decoder_layers=1,ff_dim=64",
    "kumar": "kumar:frames=5,image_size_px=32,stem=small,resnet_base_width=8,resnet_blocks=[1,1],"
    "n_mels=32,audio_steps=64,audio_channels=[8,16],gru_hidden=16,d_model=32,attn_heads=4,"
    "t_common=12,tucker_rank_time=6,tucker_rank_audio=8,tucker_rank_visual=16,fbp_dim=32,"
    "fbp_factor=2",
    "hybrid": "hybrid_ghost_tucker:frames=3,image_size_px=32,audio_bands=20,"
    "audio_width_mult=0.25,visual_width_mult=0.25,temporal_hidden=16,fusion_dim=16,"
    "fusion_steps=6",
}


@pytest.mark.parametrize("family", sorted(TINY))
def test_family_pruned_to_half_flops_reloads_and_exports(family: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ss.build(ss.config_from_string(TINY[family]))
    inputs = ss.example_inputs(model, 2)
    start = model_costs(model, inputs)
    budget = parse_prune_budget("50%flops", start)
    pruned, result = prune_to_budget(model, inputs, budget=budget, steps=1)
    end = model_costs(pruned, inputs)
    assert result.met and end["flops"] <= 0.5 * start["flops"]
    # no group had to be undone: every dependency was seen (GRU/attention traced as one node,
    # GhostNet's coupled channels removed together, yang's concat on the feature dim mapped)
    broken = [k for k, why in result.kept_intact.items() if why.startswith("outputs kept")]
    assert not broken, broken
    assert end["params"] < start["params"]
    # the original model is untouched
    assert model_costs(model, inputs)["flops"] == start["flops"]

    path = save_checkpoint(tmp_path / "p.pt", pruned, extra={"pruning": result.to_dict()})
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no pickled modules
    assert raw["shapes"] != load_checkpoint_shapes(model)
    rebuilt = load_checkpoint(path).build_model()
    with torch.no_grad():
        want, got = pruned(*inputs), rebuilt(*inputs)
    assert torch.equal(want, got)

    onnx = export_onnx(rebuilt, inputs, tmp_path / "p.onnx", opset=17)
    session = ort.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=False)}
    np.testing.assert_allclose(session.run(None, feed)[0], want.numpy(), atol=1e-4, rtol=1e-4)


def test_round_to_keeps_channel_counts_a_multiple() -> None:
    torch.manual_seed(0)
    model = ss.build(ss.config_from_string(TINY["yang"]))
    inputs = ss.example_inputs(model, 2)
    budget = parse_prune_budget("50%flops", model_costs(model, inputs))
    pruned, result = prune_to_budget(model, inputs, budget=budget, steps=1, round_to=4)
    assert result.met
    before, after = model.state_dict(), pruned.state_dict()
    changed = {
        k: after[k].shape[0]
        for k in before
        if k.endswith("weight") and before[k].dim() >= 2 and after[k].shape != before[k].shape
    }
    assert changed and all(n % 4 == 0 for n in changed.values()), changed
    with pytest.raises(UsageError, match="--round-to"):
        prune_to_budget(model, inputs, budget=budget, round_to=0)


def load_checkpoint_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_recurrent_attention_and_fusion_parts_are_kept_intact() -> None:
    model = ss.build(ss.config_from_string(TINY["kumar"]))
    inputs = ss.example_inputs(model, 2)
    before = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    budget = parse_prune_budget("50%flops", model_costs(model, inputs))
    pruned, result = prune_to_budget(model, inputs, budget=budget, steps=1)
    kept = result.kept_intact
    assert kept["temporal.gru"] == "recurrent" and kept["fusion"] == "fusion core"
    assert kept["audio_attends_video"] == "attention"
    after = {k: tuple(v.shape) for k, v in pruned.state_dict().items()}
    for name in ("temporal.", "fusion.", "audio_attends_video.", "video_attends_audio."):
        touched = [k for k in before if k.startswith(name) and before[k] != after[k]]
        assert not touched, touched
    assert after["classifier.weight"][0] == before["classifier.weight"][0]  # classes kept
    assert any(before[k] != after[k] for k in before)  # something was pruned


_USER_MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(8, 32, 3, padding=1), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(),
        )
        self.gru = nn.GRU(32, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, audio):
        y, _ = self.gru(self.convs(audio).transpose(1, 2))
        return self.head(y[:, -1])


def make():
    torch.manual_seed(0)
    return Net(), (torch.randn(2, 8, 50),)
"""


def test_user_model_from_module_function_is_pruned_with_its_gru_intact(tmp_path: Path) -> None:
    from explorer.pruning import prune_checkpoint

    (tmp_path / "user_net.py").write_text(_USER_MODEL)
    source = f"{tmp_path / 'user_net.py'}:make"
    report = prune_checkpoint(
        source,
        device="rpi4",
        budget="50%flops",
        dataset=None,
        measure=False,
        onnx=tmp_path / "u.onnx",
        steps=1,
    )
    assert report.pruning.met
    assert report.after.flops <= 0.5 * report.before.flops
    assert report.kept_intact["gru"] == "recurrent"
    assert report.kept_intact["head"].startswith("classifier head")
    assert report.onnx is not None and report.onnx.max_abs_diff <= report.onnx.tolerance
    assert (report.dataset, report.finetune, report.checkpoint) == (None, (), None)
    doc = report.to_dict()  # what --format json prints
    assert doc["budget"]["met"] and doc["kept_intact"]["gru"] == "recurrent"
    assert doc["after"]["flops"] == report.after.flops and doc["onnx"]["path"] == str(
        tmp_path / "u.onnx"
    )
    # no family config: the safe format cannot rebuild it, so --out is refused in one line
    with pytest.raises(UsageError, match="safe checkpoint format"):
        prune_checkpoint(
            source,
            device="rpi4",
            budget="50%flops",
            dataset=None,
            measure=False,
            out=tmp_path / "u.pt",
            steps=1,
        )


def test_relative_and_absolute_budgets() -> None:
    start = {"flops": 1000.0, "params": 10.0, "latency_ms": 4.0}
    assert parse_prune_budget("50%flops", start).limit == 500.0
    assert parse_prune_budget("25 % latency", start).limit == 1.0
    assert parse_prune_budget("1e6flops", start).limit == 1e6
    with pytest.raises(UsageError, match="relative budget"):
        parse_prune_budget("150%flops", start)
    model = ss.build(ss.config_from_string(TINY["ding"]))
    with pytest.raises(UsageError, match="--device"):
        prune_to_budget(
            model,
            ss.example_inputs(model),
            budget=Budget(metric="latency_ms", limit=1.0, text="1ms"),
        )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "explorer"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
    )


def test_cli_prunes_finetunes_and_reports(tmp_path: Path) -> None:
    model = ss.build(ss.config_from_string(TINY["ding"]))
    save_checkpoint(tmp_path / "in.pt", model)
    res = _cli(
        "prune",
        str(tmp_path / "in.pt"),
        "--device",
        "rpi4",
        "--budget",
        "50%flops",
        "--dataset",
        "synthetic:actors=4,clips_per_class=1",
        "--finetune-epochs",
        "1",
        "--runs",
        "5",
        "--steps",
        "1",
        "--out",
        str(tmp_path / "out.pt"),
        "--onnx",
        str(tmp_path / "out.onnx"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    import json

    report = json.loads(res.stdout)
    assert report["budget"]["met"]
    assert report["after"]["flops"] <= 0.5 * report["before"]["flops"]
    assert report["after"]["predicted_ms"] < report["before"]["predicted_ms"]
    assert report["before"]["ort_ms"] > 0 and report["after"]["ort_ms"] > 0
    assert 0 <= report["after"]["macro_f1"] <= 1 and report["finetune"][0]["epochs"] == 1
    assert report["reload_max_abs_diff"] == 0.0
    assert report["onnx"]["max_abs_diff"] <= report["onnx"]["tolerance"]
    ckpt = load_checkpoint(tmp_path / "out.pt")
    assert ckpt.extra["pruning"]["budget"]["met"] is True
    assert "audio_normalization" in ckpt.extra


class _Payload:
    """A pickle that would create a marker file if anything unpickled it unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["corrupt", "other_tool", "malicious"])
def test_cli_refuses_bad_checkpoints_in_one_line(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    marker = tmp_path / "pwned"
    if kind == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    elif kind == "other_tool":
        torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, path)
    else:
        torch.save({"format": "explorer-checkpoint", "x": _Payload(marker)}, path)
    res = _cli("prune", str(path), "--device", "rpi4", "--budget", "50%flops", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert not marker.exists()
