"""NNI 3.0's ``count_flops_params`` as a cross-check counter, and where it disagrees with ours.

The tests marked ``nni`` need the ``nni`` extra, which pins old packages, so they run in a
virtual environment of their own (``.ci/run``: ``.venv-nni``, ``pytest -m nni``); the default
run deselects them. The last test runs everywhere: without NNI the error names the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from explorer.errors import MissingExtraError
from explorer.profiling import cross_check, profile_model


def _nni(model: nn.Module, inputs: tuple[torch.Tensor, ...]):
    pytest.importorskip("nni", reason="NNI is the 'nni' extra (its own venv: pytest -m nni)")
    model.eval()
    profile = profile_model(model, inputs)
    (result,) = cross_check(model, inputs, profile, counters=["nni"])
    return profile, result


@pytest.mark.nni
@pytest.mark.parametrize("batch", [1, 3])
def test_nni_counts_ding2025_as_we_do(batch: int) -> None:
    import search_spaces as ss

    model = ss.build(ss.get_preset("ding2025"))
    profile, nni = _nni(model, ss.example_inputs(model, batch))
    assert profile.macs == batch * 7_162_368
    # NNI counts one sample; multiplied by the batch its total is ours, module by module.
    assert nni.macs == profile.macs and nni.missed_macs == 0 and not nni.differs
    assert nni.params == profile.params == 66_584


@pytest.mark.nni
def test_nni_counts_one_direction_of_a_bidirectional_gru() -> None:
    steps, i, h = 5, 8, 16
    profile, nni = _nni(
        nn.GRU(i, h, batch_first=True, bidirectional=True), (torch.randn(1, steps, i),)
    )
    one_direction = steps * 3 * h * (i + h)
    assert profile.macs == 2 * one_direction
    # One direction, plus the biases and gate products it adds: h per gate, 4h per step.
    assert nni.macs == one_direction + steps * (3 * h + 4 * h)
    assert nni.missed_macs == profile.macs - nni.macs and nni.relative_diff < -0.4


@pytest.mark.nni
def test_nni_misses_multihead_attention_and_tokens_of_a_linear() -> None:
    x = torch.randn(1, 6, 32)
    profile, nni = _nni(nn.MultiheadAttention(32, 4, batch_first=True), (x, x, x))
    assert profile.macs > 0 and nni.macs == 0 and nni.missed_macs == profile.macs
    assert any(s.startswith("MultiheadAttention") for s in nni.skipped)
    # A linear layer over a sequence: NNI counts one token.
    profile, nni = _nni(nn.Linear(32, 8), (x,))
    assert profile.macs == 6 * 32 * 8 and nni.macs == 32 * 8


class FoldedFrames(nn.Module):
    """Frames folded into the batch for a 2-D conv, as the video branches do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 7)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        feats = self.conv(video.flatten(0, 1)).mean((2, 3)).view(b, t, -1)
        return self.fc(feats.mean(1))


@pytest.mark.nni
def test_nni_counts_one_frame_of_frames_folded_into_the_batch() -> None:
    frames = 6
    profile, nni = _nni(FoldedFrames(), (torch.randn(1, frames, 3, 8, 8),))
    conv = 4 * 3 * 9 * 8 * 8
    assert profile.macs == frames * conv + 4 * 7
    assert nni.macs == conv + 4 * 7
    assert nni.missed_macs == (frames - 1) * conv


_JSON = ("--format", "json")


@pytest.mark.nni
def test_profile_command_reports_the_nni_counter() -> None:
    pytest.importorskip("nni", reason="NNI is the 'nni' extra (its own venv: pytest -m nni)")
    out = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "profile", "ding2025", "--counters", "nni", *_JSON],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    nni = json.loads(out.stdout)["counters"]["nni"]
    assert nni["macs"] == 7_162_368 and nni["relative_diff"] == 0 and not nni["differs"]


def test_nni_counter_without_nni_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nni", None)
    monkeypatch.setitem(sys.modules, "nni.compression.utils.counter", None)
    model, x = nn.Linear(4, 2), torch.randn(1, 4)
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[nni\]'"):
        cross_check(model, x, profile_model(model, x), counters="nni")
