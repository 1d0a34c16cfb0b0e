"""The trainer: metrics, determinism, early stopping, callbacks, augmentation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.data import build_features, load_dataset, make_split
from explorer.errors import UsageError
from explorer.training import TrainSettings, _augment, compute_metrics, evaluate, train
from search_spaces import AVModel, InputSpec

SPEC = InputSpec(
    audio_kind="mfcc_mean", audio_shape=(40,), frames=1, channels=1, height=32, width=32
)


class Tiny(AVModel):
    """A small fused model: MLP on the MFCCs, a conv on the frames, concatenated."""

    def __init__(self, classes: int = 8, use_audio: bool = True, use_video: bool = True) -> None:
        super().__init__()
        self.input_spec = SPEC
        self.use_audio, self.use_video = use_audio, use_video
        self.audio = nn.Sequential(nn.Linear(40, 32), nn.ReLU())
        self.video = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 32),
            nn.ReLU(),
        )
        self.head = nn.Linear(32 + 32, classes)

    def forward(self, audio, video, text=None):
        b, f = video.shape[:2]
        v = self.video(video.flatten(0, 1)).view(b, f, -1).mean(1)
        a = self.audio(audio)
        return self.head(torch.cat([a * self.use_audio, v * self.use_video], 1))


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    ds = load_dataset("synthetic", actors=6, clips_per_class=2, clip_seconds=0.6, difficulty=0.0)
    return build_features(ds, SPEC, cache_dir=tmp_path_factory.mktemp("cache"))


def test_metrics_by_hand() -> None:
    m = compute_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), num_classes=4)
    assert m.confusion == ((1, 1, 0, 0), (0, 2, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0))
    assert m.accuracy == pytest.approx(0.6) and m.weighted_accuracy == m.accuracy
    # per class (0,1,2): precision .5, 2/3, 0; recall .5, 1, 0; F1 .5, .8, 0 (class 3 absent)
    assert m.precision == pytest.approx((0.5 + 2 / 3) / 3)
    assert m.recall == pytest.approx(0.5) and m.unweighted_accuracy == pytest.approx(0.5)
    assert m.macro_f1 == pytest.approx(1.3 / 3)


def test_training_learns_and_is_deterministic(feats) -> None:
    split = make_split(feats, kind="actor", seed=0)
    s = TrainSettings(epochs=12, batch_size=8, lr=3e-3, seed=1, patience=12, threads=1)
    results, models = [], []
    for _ in range(2):
        torch.manual_seed(123)  # the model's init; train() seeds the rest
        models.append(Tiny())
        results.append(train(models[-1], feats, split, settings=s))
    r = results[0]
    assert r.metrics.macro_f1 > 0.25  # chance is 0.125 for 8 balanced classes
    assert [h["val_loss"] for h in r.history] == [h["val_loss"] for h in results[1].history]
    torch.testing.assert_close(models[0].head.weight, models[1].head.weight, rtol=0, atol=0)
    assert r.metrics.samples == split.val_idx.size and r.epochs_run == 12
    # the returned model holds the best epoch's weights
    again = evaluate(models[1], feats, split.val_idx, normalization=r.normalization)
    assert again.loss == pytest.approx(r.metrics.loss, rel=1e-5)
    assert again.loss == pytest.approx(min(h["val_loss"] for h in r.history), rel=1e-5)


class _Constant(AVModel):
    def __init__(self) -> None:
        super().__init__()
        self.input_spec = SPEC
        self.bias = nn.Parameter(torch.zeros(8))

    def forward(self, audio, video, text=None):
        return self.bias.expand(audio.shape[0], 8)


def test_early_stopping_and_on_epoch(feats) -> None:
    split = make_split(feats, kind="stratified", seed=0)
    s = TrainSettings(epochs=60, lr=0.05, patience=2, min_delta=1e-3)
    seen = []
    r = train(_Constant(), feats, split, settings=s, on_epoch=lambda e, m: seen.append(e))
    assert r.stopped_early and r.epochs_run < 60 and seen == list(range(1, r.epochs_run + 1))
    assert r.best_epoch == r.epochs_run - 2

    class Prune(Exception):
        pass

    def stop(epoch, metrics):
        if epoch == 2:
            raise Prune

    with pytest.raises(Prune):
        train(Tiny(), feats, split, settings=TrainSettings(epochs=5), on_epoch=stop)


def test_augmentation_changes_batches_within_range() -> None:
    gen = torch.Generator().manual_seed(0)
    video = torch.rand(4, 3, 1, 16, 16)
    audio = torch.randn(4, 20, 30)
    a2, v2 = _augment(audio, video, gen, TrainSettings(augment=True))
    assert v2.shape == video.shape and a2.shape == audio.shape
    assert float(v2.min()) >= 0.0 and float(v2.max()) <= 1.0
    assert not torch.allclose(v2, video) and not torch.allclose(a2, audio)
    a3, v3 = _augment(audio, video, torch.Generator().manual_seed(0), TrainSettings(augment=True))
    torch.testing.assert_close(v3, v2)
    torch.testing.assert_close(a3, a2)  # seeded: the same augmentation again
    # averaged MFCCs have no time axis: only noise is added
    a1, v1 = _augment(torch.zeros(4, 40), video, gen, TrainSettings())
    assert a1.shape == (4, 40) and 0.0 < float(a1.std()) < 0.2 and v1.shape == video.shape


def test_augmented_training_runs(feats) -> None:
    split = make_split(feats)
    r = train(Tiny(), feats, split, settings=TrainSettings(epochs=2, augment=True, threads=1))
    assert r.epochs_run == 2 and np.isfinite(r.history[-1]["train_loss"])


def test_bad_settings_and_splits(feats) -> None:
    with pytest.raises(UsageError, match="optimizer"):
        TrainSettings(optimizer="sgd")
    with pytest.raises(UsageError, match="lr"):
        TrainSettings(lr=0)
    split = make_split(feats)
    empty = type(split)(train_idx=split.train_idx, val_idx=split.val_idx[:0])
    with pytest.raises(UsageError, match="non-empty"):
        train(Tiny(), feats, empty)
    with pytest.raises(UsageError, match="num_classes=8"):
        train(Tiny(classes=6), feats, split, settings=TrainSettings(epochs=1))


def test_cli_train_writes_a_safe_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.cli import main

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ding.pt"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "train",
                "ding2025",
                "--dataset",
                "synthetic:actors=3,clips_per_class=1,clip_seconds=0.5",
                "--epochs",
                "2",
                "--torch-device",
                "cpu",
                "--out",
                str(out),
                "--format",
                "json",
            ]
        )
    captured = capsys.readouterr()
    assert exc.value.code == 0, captured.err
    report = json.loads(captured.out)
    assert report["epochs_run"] == 2 and report["split"]["kind"] == "actor"
    assert 0.0 <= report["metrics"]["macro_f1"] <= 1.0 and len(report["metrics"]["confusion"]) == 8
    raw = torch.load(out, weights_only=True)
    assert raw["metrics"]["macro_f1"] == report["metrics"]["macro_f1"]
    assert len(raw["extra"]["audio_normalization"]["mean"]) == 40
    model = load_checkpoint(out).build_model()
    assert model.input_spec.height == 64


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cuda:abc", "must be cpu or cuda[:i], got 'cuda:abc'"),
        ("mps", "must be cpu or cuda[:i], got 'mps'"),
        ("cuda:7", "needs CUDA" if not torch.cuda.is_available() else "CUDA device(s)"),
    ],
)
def test_a_torch_device_the_machine_lacks_is_one_line_before_training(name, message) -> None:
    from explorer.training import _resolve_device

    with pytest.raises(UsageError) as caught:
        _resolve_device(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert _resolve_device("cpu") == torch.device("cpu")
    assert _resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
