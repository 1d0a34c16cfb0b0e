"""Train and evaluate one audio-visual model on a ``FeatureSet``.

    >>> result = train(model, features, split, settings=TrainSettings(epochs=30))
    >>> result.metrics.macro_f1

Adam or AdamW, cross-entropy, early stopping on validation loss (patience, ``min_delta``)
restoring the best weights, seeded and deterministic on CPU, optional augmentation of the
kinds the papers use, a rich progress bar, and an ``on_epoch`` callback that may raise to
stop training (the search raises ``optuna.TrialPruned``). Runs on CUDA when asked.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.data import FeatureSet, Split
from explorer.errors import ExplorerError, UsageError
from explorer.latency import torch_device
from explorer.metrics import Metrics, compute_metrics

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Metrics",
    "NonFiniteLossError",
    "TrainResult",
    "TrainSettings",
    "compute_metrics",
    "evaluate",
    "train",
    "train_model",
]


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How to train.

    ``device`` is ``cpu``, ``cuda`` or ``auto`` (CUDA when present). ``augment`` turns on the
    papers' augmentations on each training batch: video horizontal flip, rotation up to
    ``rotation_deg``, brightness/contrast and Gaussian noise; audio-feature noise, time stretch
    (sequence features) and pitch shift (a shift along the mel / cepstral axis of sequence
    features). ``normalize_audio`` standardises each audio coefficient with training-set
    statistics (stored in the result and the checkpoint). ``threads`` sets torch's CPU
    thread count for the run (None keeps it); on a busy machine 1 is often fastest.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_delta: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    optimizer: str = "adam"
    augment: bool = False
    rotation_deg: float = 5.0
    normalize_audio: bool = True
    grad_clip_norm: float | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1)):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= low):
                raise UsageError(f"{name}={value!r} is invalid: use an integer >= {low}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"lr={self.lr!r} is invalid: use a positive number such as 1e-3")
        # at most 1: AdamW shrinks each weight by lr x weight_decay per step, and a huge value
        # (1e308) overflows the float32 the optimiser computes in
        if not (0 <= self.weight_decay <= 1):
            raise UsageError(
                f"weight_decay={self.weight_decay!r} is invalid: use a number from 0 to 1, "
                "such as 1e-4"
            )
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
            raise UsageError(f"seed={self.seed!r} is invalid: use an integer from 0 to 2**32 - 1")
        if self.optimizer not in ("adam", "adamw"):
            raise UsageError(f"optimizer={self.optimizer!r} is invalid: use adam or adamw")
        if self.threads is not None and not (isinstance(self.threads, int) and self.threads >= 1):
            raise UsageError(f"threads={self.threads!r} is invalid: use an integer >= 1 or None")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise UsageError(f"device={self.device!r} is invalid: use cpu, cuda or auto")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What ``train`` returns: the best epoch's validation metrics and the run's history."""

    metrics: Metrics
    epochs_run: int
    best_epoch: int
    train_seconds: float
    seconds_per_epoch: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    normalization: dict[str, list[float]] = field(default_factory=dict)
    settings: TrainSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics.to_dict(),
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "train_seconds": self.train_seconds,
            "seconds_per_epoch": self.seconds_per_epoch,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "normalization": self.normalization,
            "settings": self.settings.to_dict() if self.settings else None,
        }


def _resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA where the machine has it, else the CPU) or a device this machine has: the
    same check as ``bench`` and ``calibrate`` make of ``--torch-device`` (a malformed name or a
    CUDA device the machine lacks is one line, not a traceback mid-training)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch_device(name)


class _Batches:
    """Mini-batches of a FeatureSet as tensors on a device, with optional augmentation."""

    def __init__(self, features: FeatureSet, mean: np.ndarray, std: np.ndarray, device) -> None:
        self.features = features
        self.mean = torch.from_numpy(mean).float()
        self.std = torch.from_numpy(std).float()
        self.device = device

    def get(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        audio, video, labels = self.features.tensors(idx)
        audio = (audio - self.mean) / self.std
        return audio.to(self.device), video.to(self.device), labels.to(self.device)


def _audio_stats(
    features: FeatureSet, idx: np.ndarray, enabled: bool
) -> tuple[np.ndarray, np.ndarray]:
    shape = features.audio.shape[1:]
    if not enabled:
        return np.zeros(shape, np.float32), np.ones(shape, np.float32)
    a = features.audio[idx].astype(np.float64)
    # one mean/std per coefficient (first axis), shared over time for sequence features
    axes = (0, *range(2, a.ndim))
    mean = a.mean(axis=axes, keepdims=True)[0]
    std = a.std(axis=axes, keepdims=True)[0]
    std = np.where(std > 1e-6, std, 1.0)
    return (
        np.broadcast_to(mean, shape).astype(np.float32),
        np.broadcast_to(std, shape).astype(np.float32),
    )


def _augment(audio: torch.Tensor, video: torch.Tensor, gen: torch.Generator, s: TrainSettings):
    b = video.shape[0]
    dev = video.device

    def rand(*shape):
        return torch.rand(shape, generator=gen).to(dev)

    # video: flip, small rotation, brightness/contrast, noise (Lu et al.; Ding et al.)
    flip = rand(b) < 0.5
    video = torch.where(flip.view(b, 1, 1, 1, 1), video.flip(-1), video)
    if s.rotation_deg > 0:
        ang = (rand(b) * 2 - 1) * math.radians(s.rotation_deg)
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
        f, c, h, w = video.shape[1:]
        grid = F.affine_grid(theta.repeat_interleave(f, 0), [b * f, c, h, w], align_corners=False)
        video = F.grid_sample(
            video.reshape(b * f, c, h, w), grid, padding_mode="border", align_corners=False
        ).reshape(b, f, c, h, w)
    bright = (rand(b) * 0.4 - 0.2).view(b, 1, 1, 1, 1)
    contrast = (rand(b) * 0.4 + 0.8).view(b, 1, 1, 1, 1)
    mean = video.mean(dim=(2, 3, 4), keepdim=True)
    video = (video - mean) * contrast + mean + bright
    video = (video + 0.03 * torch.randn(video.shape, generator=gen).to(dev)).clamp(0, 1)
    # audio features (standardised): noise; for sequences, time stretch and pitch shift
    audio = audio + 0.05 * torch.randn(audio.shape, generator=gen).to(dev)
    if audio.dim() == 3:
        steps = audio.shape[-1]
        rate = float(torch.empty(1).uniform_(0.8, 1.2, generator=gen))
        stretched = F.interpolate(
            audio, size=max(2, round(steps * rate)), mode="linear", align_corners=False
        )
        audio = (
            stretched[..., :steps]
            if stretched.shape[-1] >= steps
            else F.pad(stretched, (0, steps - stretched.shape[-1]))
        )
        shift = int(torch.randint(-2, 3, (1,), generator=gen))
        if shift:
            audio = torch.roll(audio, shifts=shift, dims=1)
    return audio, video


def _forward(model: nn.Module, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    return model(audio, video)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    features: FeatureSet,
    idx: np.ndarray,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    normalization: dict[str, list[float]] | None = None,
) -> Metrics:
    """Metrics of ``model`` on the samples ``idx`` (audio normalised as in training)."""
    dev = _resolve_device(device)
    shape = features.audio.shape[1:]
    if normalization:
        mean = np.asarray(normalization["mean"], np.float32).reshape(shape)
        std = np.asarray(normalization["std"], np.float32).reshape(shape)
    else:
        mean, std = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    return _evaluate(
        model.to(dev),
        _Batches(features, mean, std, dev),
        idx,
        batch_size,
        len(features.class_names),
    )


def _evaluate(
    model: nn.Module, batches: _Batches, idx: np.ndarray, batch_size: int, num_classes: int
) -> Metrics:
    model.eval()
    preds, total, labels_all = [], 0.0, []
    with torch.no_grad():
        for start in range(0, idx.size, batch_size):
            audio, video, labels = batches.get(idx[start : start + batch_size])
            logits = _forward(model, audio, video)
            total += float(F.cross_entropy(logits, labels, reduction="sum"))
            preds.append(logits.argmax(dim=1).cpu().numpy())
            labels_all.append(labels.cpu().numpy())
    if not preds:
        return compute_metrics(np.zeros(0), np.zeros(0), num_classes=num_classes)
    return compute_metrics(
        np.concatenate(labels_all),
        np.concatenate(preds),
        num_classes=num_classes,
        loss=total / max(idx.size, 1),
    )


def train(
    model: nn.Module,
    features: FeatureSet,
    split: Split,
    *,
    settings: TrainSettings | None = None,
    on_epoch: Callable[[int, Metrics], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` in place on ``split.train_idx``; early-stop on ``split.val_idx``.

    After training the model holds the weights of the epoch with the lowest validation loss
    and is in eval mode. ``on_epoch(epoch, val_metrics)`` is called after each epoch (1-based);
    an exception it raises stops training and propagates.

    Raises:
        UsageError: empty split, or a model whose output does not match the class count.
    """
    s = settings or TrainSettings()
    if split.train_idx.size == 0 or split.val_idx.size == 0:
        raise UsageError(
            f"the split has {split.train_idx.size} training and {split.val_idx.size} validation "
            "samples: both must be non-empty (use more actors or clips)"
        )
    dev = _resolve_device(s.device)
    old_threads = torch.get_num_threads()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    num_classes = len(features.class_names)
    mean, std = _audio_stats(features, split.train_idx, s.normalize_audio)
    batches = _Batches(features, mean, std, dev)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt_cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(params, lr=s.lr, weight_decay=s.weight_decay)

    best_loss, best_state, best_metrics, best_epoch = math.inf, None, None, 0
    history: list[dict[str, float]] = []
    stale, epochs_run, stopped_early = 0, 0, False
    bar = _Progress(progress, s.epochs)
    start = time.perf_counter()
    try:
        for epoch in range(1, s.epochs + 1):
            order = rng.permutation(split.train_idx)
            train_loss = _train_epoch(
                model, batches, order, optimizer=optimizer, gen=gen, settings=s, epoch=epoch
            )
            val = _evaluate(model, batches, split.val_idx, max(s.batch_size, 64), num_classes)
            if not math.isfinite(val.loss):
                val_audio, val_video, _ = batches.get(split.val_idx)
                raise NonFiniteLossError(
                    _non_finite_cause("validation", epoch, val_audio, val_video, s)
                )
            epochs_run = epoch
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val.loss,
                    "val_accuracy": val.accuracy,
                    "val_macro_f1": val.macro_f1,
                    "seconds": time.perf_counter() - start,
                }
            )
            if val.loss < best_loss - s.min_delta or best_state is None:
                best_loss, best_metrics, best_epoch, stale = val.loss, val, epoch, 0
                best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in model.state_dict().items()}
                )
            else:
                stale += 1
            bar.update(epoch, history[-1])
            if on_epoch is not None:
                on_epoch(epoch, val)
            if stale >= s.patience:
                stopped_early = True
                break
    finally:
        bar.stop()
        torch.set_num_threads(old_threads)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
    seconds = time.perf_counter() - start
    assert best_metrics is not None  # at least one epoch ran
    return TrainResult(
        metrics=best_metrics,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        train_seconds=seconds,
        seconds_per_epoch=seconds / max(epochs_run, 1),
        stopped_early=stopped_early,
        history=history,
        normalization={"mean": mean.reshape(-1).tolist(), "std": std.reshape(-1).tolist()},
        settings=s,
    )


def _train_epoch(
    model: nn.Module,
    batches: _Batches,
    order: np.ndarray,
    *,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    settings: TrainSettings,
    epoch: int,
) -> float:
    """One pass over the training samples in ``order``; the mean training loss.

    Raises:
        UsageError: the model's output size is not the data set's class count.
        NonFiniteLossError: the loss became NaN or infinite.
    """
    s = settings
    num_classes = len(batches.features.class_names)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    seen, total = 0, 0.0
    for b0 in range(0, order.size, s.batch_size):
        idx = order[b0 : b0 + s.batch_size]
        if idx.size < 2 and order.size >= 2:
            continue  # a batch of one breaks BatchNorm; its sample comes next epoch
        audio, video, labels = batches.get(idx)
        if s.augment:
            audio, video = _augment(audio, video, gen, s)
        logits = _forward(model, audio, video)
        if logits.shape[-1] != num_classes:
            raise UsageError(
                f"the model outputs {logits.shape[-1]} classes but the data set has "
                f"{num_classes}: build it with num_classes={num_classes}"
            )
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(_non_finite_cause("training", epoch, audio, video, s))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip_norm:
            nn.utils.clip_grad_norm_(params, s.grad_clip_norm)
        optimizer.step()
        seen += idx.size
        total += float(loss.detach()) * idx.size
    return total / max(seen, 1)


class _Progress:
    """A rich progress bar on stderr, only when asked and stderr is a terminal."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.task = self.bar.add_task("training", total=total)
            self.bar.start()

    def update(self, epoch: int, row: dict[str, float]) -> None:
        if self.bar is not None:
            desc = f"epoch {epoch} val_loss {row['val_loss']:.3f} F1 {row['val_macro_f1']:.3f}"
            self.bar.update(self.task, completed=epoch, description=desc)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class NonFiniteLossError(ExplorerError):
    """Training stopped: the loss became NaN or infinite (the message names the cause)."""


def _non_finite_cause(
    stage: str, epoch: int, audio: torch.Tensor, video: torch.Tensor, s: TrainSettings
) -> str:
    """One line: the loss is NaN/inf, and whether the inputs or the optimisation caused it."""
    head = f"the {stage} loss became NaN or infinite in epoch {epoch}"
    if not (bool(torch.isfinite(audio).all()) and bool(torch.isfinite(video.float()).all())):
        return (
            f"{head}: the input features hold NaN or infinite values (a corrupt clip or "
            "feature cache); check the data set with `explorer data inspect` or rebuild the "
            "features with --no-cache"
        )
    return (
        f"{head} although the inputs are finite: the optimisation diverged (lr={s.lr:g}, "
        f"weight_decay={s.weight_decay:g}); lower --lr"
    )


def train_model(
    model: str,
    *,
    dataset: str = "synthetic",
    split: str = "actor",
    fold: int = 0,
    settings: TrainSettings | None = None,
    samples_per_clip: int = 1,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    precision: str = "fp32",
) -> dict[str, Any]:
    """What ``explorer train`` does: resolve MODEL, load the data set, build (cached) features,
    split, train, and save a checkpoint to ``out`` when given. Returns a JSON-safe report.

    With ``precision`` fp16 or int8 the trained model is also exported at that precision and
    its validation macro-F1 is compared with the FP32 graph's in ONNX Runtime
    (``explorer.quantize.check_deployment``); the report and the checkpoint's metrics hold it
    under ``deployment``.

    A family model whose ``num_classes`` differs from the data set's (e.g. ``ding2025`` on
    CREMA-D's six classes) is rebuilt with the data set's class count. A checkpoint MODEL is
    fine-tuned from its weights.
    """
    import search_spaces as ss
    from explorer.checkpoints import save_checkpoint
    from explorer.data import build_features, load_dataset, make_split
    from explorer.quantize import check_deployment, check_precision

    s = settings or TrainSettings()
    precision = check_precision(precision)
    ds = load_dataset(dataset)
    net = _model_to_train(model, num_classes=len(ds.class_names), dataset=ds.name, settings=s)
    feats = build_features(
        ds,
        net.input_spec,
        cache_dir=cache_dir,
        samples_per_clip=samples_per_clip,
        progress=progress,
    )
    sp = make_split(feats, kind=split, seed=s.seed, fold=fold)
    result = train(net, feats, sp, settings=s, progress=progress)
    report: dict[str, Any] = {
        "model": model,
        "family": ss.config_to_dict(net.config)["family"],
        "dataset": ds.name,
        "samples": len(feats),
        "class_names": list(ds.class_names),
        "feature_seconds": feats.build_seconds,
        "features_from_cache": feats.from_cache,
        "split": sp.to_dict(),
        **result.to_dict(),
        "skipped": [x.to_dict() for x in (*ds.skipped, *feats.skipped)],
        "checkpoint": None,
        "deployment": None,
    }
    metrics: dict[str, Any] = result.metrics.to_dict()
    if precision != "fp32":
        deployment = check_deployment(
            net, feats, sp, precision=precision, normalization=result.normalization, seed=s.seed
        ).to_dict()
        report["deployment"] = metrics["deployment"] = deployment
    if out is not None:
        path = save_checkpoint(
            out,
            net,
            metrics=metrics,
            class_names=ds.class_names,
            extra={
                "dataset": ds.name,
                "fingerprint": ds.fingerprint,
                "split": sp.to_dict(),
                "settings": s.to_dict(),
                "audio_normalization": result.normalization,
                "samples_per_clip": samples_per_clip,
                "epochs_run": result.epochs_run,
            },
        )
        report["checkpoint"] = str(path)
    return report


def _model_to_train(
    model: str, *, num_classes: int, dataset: str, settings: TrainSettings
) -> nn.Module:
    """The network ``train_model`` trains: a preset or family spec built from the seed with
    the data set's class count, or a checkpoint's network with its weights.

    Raises:
        UsageError: MODEL is not a ``search_spaces`` model, a checkpoint predicts another
            class count, or a training step would exceed the memory limit.
    """
    import dataclasses

    import search_spaces as ss
    from explorer.checkpoints import load_checkpoint
    from explorer.memory import check_model_memory
    from explorer.models import resolve_model

    config = resolve_model(model).config
    if config is None:
        raise UsageError(
            f"MODEL {model!r} is not a search_spaces model: train a preset, family:key=value "
            "or an explorer checkpoint"
        )
    name = model.partition(":")[0].strip()
    from_ckpt = not (name in ss.presets() or name in ss.list_families())
    if getattr(config, "num_classes", num_classes) != num_classes:
        if from_ckpt:
            raise UsageError(
                f"checkpoint {model!r} predicts {config.num_classes} classes but {dataset} has "
                f"{num_classes}: train a new model on it instead"
            )
        config = dataclasses.replace(config, num_classes=num_classes)
    # a training step holds gradients, Adam moments and the forward's activations at the batch
    # size: refuse before the data set is featurised if that is over the memory limit
    check_model_memory(
        config, batch_size=settings.batch_size, what=f"training MODEL {model!r}", training=True
    )
    if from_ckpt:
        return load_checkpoint(model).build_model()
    torch.manual_seed(settings.seed)  # initial weights from the seed: the same command trains
    return ss.build(config)  # the same model
