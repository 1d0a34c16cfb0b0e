"""Integrated-Gradients explanations: completeness, modality shares, the HTML page, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces as ss
from explorer.checkpoints import save_checkpoint
from explorer.data import build_features, load_dataset
from explorer.errors import UsageError
from explorer.explain import explain_model, integrated_gradients
from reports.explain import explain_data, explain_page
from tests.test_report_browser import _browser, _dump_dom

TINY = "synthetic:actors=2,clips_per_class=1"


@pytest.fixture(scope="module")
def ding() -> nn.Module:
    torch.manual_seed(0)
    return ss.build(ss.get_preset("ding2025")).eval()


@pytest.fixture(scope="module")
def features(ding, tmp_path_factory):
    return build_features(load_dataset(TINY), ding.input_spec,
                          cache_dir=tmp_path_factory.mktemp("cache"))  # fmt: skip


def test_attributions_are_complete(ding) -> None:
    """Sum of attributions = f(x) - f(baseline) for the target logit (completeness axiom)."""
    audio, video = ss.example_inputs(ding, 3, seed=4)
    target = torch.tensor([0, 3, 7])
    attrs = integrated_gradients(ding, audio, video, target, steps=64)
    assert attrs.audio.shape == audio.shape and attrs.video.shape == video.shape
    total = attrs.audio.reshape(3, -1).sum(1) + attrs.video.reshape(3, -1).sum(1)
    with torch.no_grad():
        rows = torch.arange(3)
        change = (
            ding(audio, video)[rows, target]
            - ding(torch.zeros_like(audio), torch.zeros_like(video))[rows, target]
        )
    assert torch.allclose(attrs.logit_change, change, atol=1e-6)
    # Measured with 64 steps: |delta| 2.4e-4 for logit changes up to 0.035 (0.7 %; 8 steps:
    # 3.8 %); the bound is 2 % of the largest change.
    scale = float(change.abs().max())
    assert scale > 1e-3  # a real change to explain
    assert torch.allclose(total.double(), change.double(), atol=0.02 * scale)
    assert float(attrs.delta.abs().max()) <= 0.02 * scale


def test_too_few_steps_is_refused(ding) -> None:
    audio, video = ss.example_inputs(ding, 1)
    with pytest.raises(UsageError, match="at least 2"):
        integrated_gradients(ding, audio, video, torch.tensor([0]), steps=1)


class AudioOnly(nn.Module):
    """ding2025 fed black frames: its prediction cannot depend on the video input."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.input_spec = inner.input_spec

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.inner(audio, video * 0.0)


def test_shares_sum_to_one_and_follow_what_the_model_uses(ding, features) -> None:
    idx = np.arange(len(features))
    names = features.class_names
    fused = explain_model(ding, features, idx, class_names=names, steps=8)
    assert sum(c.samples for c in fused.classes) == len(features) == fused.samples
    for c in fused.classes:
        assert c.audio_share + c.video_share == pytest.approx(1.0)
        assert 0.0 < c.audio_share < 1.0  # a fused model: both modalities carry attribution
        assert len(c.audio_map) == ding.input_spec.audio_shape[0]
        assert len(c.video_frames) == ding.input_spec.frames
        assert len(c.video_map) == ding.input_spec.height
    audio_only = explain_model(AudioOnly(ding), features, idx, class_names=names, steps=8)
    assert all(c.audio_share == pytest.approx(1.0) for c in audio_only.classes)
    assert all(c.video_share == pytest.approx(0.0, abs=1e-9) for c in audio_only.classes)


def test_chart_data_and_page(ding, features, tmp_path: Path) -> None:
    e = explain_model(ding, features, np.arange(len(features)), class_names=features.class_names,
                      steps=8, name="ding-test")  # fmt: skip
    data = explain_data(e)
    assert [r.class_name for r in data.rows] == [c.class_name for c in e.classes]
    assert max(max(map(max, m)) for m in data.audio_maps) == pytest.approx(1.0)
    assert max(max(map(max, m)) for m in data.video_maps) == pytest.approx(1.0)
    assert all(sum(f) == pytest.approx(1.0) for f in data.video_frames)
    text = explain_page(e)
    assert text.count("Plotly.newPlot(") == 2 and text.count("plotly.js v") == 1
    assert "<script src=" not in text and "ding-test" in text

    _browser()  # skips without Chromium
    page = tmp_path / "explain.html"
    page.write_text(text, encoding="utf-8")
    dom = _dump_dom(page, tmp_path)
    root = re.search(r"<html[^>]*>", dom).group(0)
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', root))
    assert attrs.get("data-report-status") == "ok", attrs
    assert attrs.get("data-plots") == attrs.get("data-plots-rendered") == "2"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_explain_writes_the_page(ding, tmp_path: Path, capsys) -> None:
    ckpt = save_checkpoint(tmp_path / "d.pt", ding, class_names=load_dataset(TINY).class_names)
    page = tmp_path / "explain.html"
    code, out, err = run_cli(capsys, "explain", str(ckpt), "--dataset", TINY, "--steps", "4",
                             "--samples-per-class", "1", "--out", str(page),
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["html"] == str(page) and page.read_text().count("Plotly.newPlot(") == 2
    assert d["family"] == "ding" and d["audio_kind"] == ding.input_spec.audio_kind
    assert all(c["audio_share"] + c["video_share"] == pytest.approx(1.0) for c in d["classes"])
    code, out, err = run_cli(capsys, "explain", str(ckpt), "--steps", "1")
    assert code == 2 and "at least 2" in err and err.count("\n") == 1 and out == ""
    code, _, err = run_cli(capsys, "explain", str(tmp_path / "missing.pt"))
    assert code == 2 and "does not exist" in err
