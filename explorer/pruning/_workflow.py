"""What ``explorer prune`` does: load, measure, prune to a budget, fine-tune, save, prove.

    >>> report = prune_checkpoint("model.pt", device="rpi4", budget="50%flops", out="small.pt")

The before/after report holds params, MACs, FLOPs, predicted latency on the device, measured
ONNX Runtime latency on this machine (one thread, median) and validation accuracy/macro-F1.
The pruned checkpoint uses the safe format (``explorer.checkpoints``): it is reloaded here and
its outputs must equal the in-memory pruned model's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.budget import Budget, parse_budget
from explorer.errors import ExplorerError, UsageError
from explorer.memory import check_model_memory

from ._core import IMPORTANCES, model_costs, prune_to_budget
from ._report import DeploymentReport, FinetuneStep, PruneCosts, PruneReport

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from explorer.data import FeatureSet, Split
    from explorer.metrics import Metrics
    from search_spaces import InputSpec

__all__ = ["parse_prune_budget", "prune_checkpoint"]

_RELATIVE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*([a-z_ ]+?)\s*$", re.I)
_RELATIVE_METRICS = {
    "flops": "flops",
    "macs": "macs",
    "params": "params",
    "weights": "weight_bytes",
    "latency": "latency_ms",
    "ms": "latency_ms",
}


def parse_prune_budget(text: str, start: Mapping[str, float]) -> Budget:
    """``--budget`` as in ``explorer search``, or relative: ``50%flops``, ``30% params``,
    ``50% latency`` (of the unpruned model's value)."""
    m = _RELATIVE.match(text or "")
    if m is None:
        return parse_budget(text)
    share = float(m.group(1)) / 100.0
    metric = _RELATIVE_METRICS.get(m.group(2).replace(" ", "").lower())
    if metric is None or not 0 < share < 1:
        raise UsageError(
            f"budget {text!r} is not understood: a relative budget is N% of flops, macs, params, "
            "weights or latency with 0 < N < 100, e.g. 50%flops"
        )
    return Budget(metric=metric, limit=share * start[metric], text=text.strip())


def _normalization(features, idx: np.ndarray, stored: Any) -> dict[str, list[float]]:
    """The audio standardisation the model was trained with (stored), or the training set's."""
    shape = features.audio.shape[1:]
    size = int(np.prod(shape))
    if isinstance(stored, dict) and len(stored.get("mean", ())) == size:
        return {"mean": list(stored["mean"]), "std": list(stored["std"])}
    a = features.audio[idx].astype(np.float64)
    axes = (0, *range(2, a.ndim))
    mean = np.broadcast_to(a.mean(axis=axes, keepdims=True)[0], shape)
    std = a.std(axis=axes, keepdims=True)[0]
    std = np.broadcast_to(np.where(std > 1e-6, std, 1.0), shape)
    return {"mean": mean.reshape(-1).tolist(), "std": std.reshape(-1).tolist()}


@dataclass(frozen=True, kw_only=True)
class _Loaded:
    """The model to prune, what its checkpoint carried, and the inputs it is profiled with."""

    model: nn.Module
    config: Any  # the family config (None: not a search_spaces model)
    class_names: list[str]
    extra: dict[str, Any]
    spec: InputSpec | None
    inputs: tuple[torch.Tensor, ...]


def _load(source: str, weights: str | Path | None, *, saving: bool) -> _Loaded:
    """The model from a checkpoint, family spec or callable, with ``weights`` (a plain
    state_dict file) loaded into it when given.

    Raises:
        UsageError: ``saving`` a model that is not a ``search_spaces`` model (the safe
            checkpoint format cannot rebuild it), refused before any work is done.
    """
    import search_spaces as ss
    from explorer.models import resolve_model

    path = Path(source)
    if path.suffix in (".pt", ".pth", ".ckpt") or path.is_file():
        from explorer.checkpoints import load_checkpoint

        ckpt = load_checkpoint(path)
        check_model_memory(ckpt.config, what=f"checkpoint {str(path)!r}", activations=False)
        model = ckpt.build_model()
        if weights is not None:
            from explorer.weights import load_weights

            load_weights(model, weights, model_name=f"MODEL {source!r}")
        names, extra, config, given = list(ckpt.class_names), dict(ckpt.extra), ckpt.config, None
    else:
        resolved = resolve_model(source, weights=weights)
        spec = resolved.input_spec
        names = [f"class_{i}" for i in range(spec.num_classes)] if spec is not None else []
        model, extra, config, given = resolved.model, {}, resolved.config, resolved.example_inputs
    if saving and config is None:
        raise UsageError(
            f"{source!r} is not a search_spaces model, so it cannot be saved in the safe "
            "checkpoint format (no config to rebuild it from): return a model built with "
            "search_spaces.build, or drop --out"
        )
    spec = getattr(model, "input_spec", None)
    inputs = tuple(given) if given is not None else ss.example_inputs(spec, 1)
    return _Loaded(
        model=model, config=config, class_names=names, extra=extra, spec=spec, inputs=inputs
    )


def _ort_ms(model: nn.Module, inputs: tuple[torch.Tensor, ...], runs: int | None) -> float:
    from explorer.latency import BenchSettings, bench

    result = bench(model, inputs, backend="ort", settings=BenchSettings(threads=1, runs=runs))
    return float(result.median_ms)


def prune_checkpoint(
    source: str,
    *,
    device: str,
    budget: str,
    out: str | Path | None = None,
    dataset: str | None = "synthetic",
    finetune_epochs: int = 2,
    importance: str = "magnitude",
    steps: int = 2,
    round_to: int = 1,
    batch_size: int = 32,
    lr: float = 5e-4,
    seed: int = 0,
    bench_runs: int | None = None,
    measure: bool = True,
    onnx: str | Path | None = None,
    precision: str = "fp32",
    weights: str | Path | None = None,
) -> PruneReport:
    """Prune ``source`` (checkpoint, family spec or ``module:function``) to ``budget``.

    ``weights`` names a plain ``state_dict`` file loaded into the model built from ``source``
    first (a researcher's own trained weights; see ``explorer.weights.load_weights``).

    Fine-tunes ``finetune_epochs`` after each of ``steps`` pruning steps (channel counts kept
    a multiple of ``round_to``, see ``prune_to_budget``) on ``dataset``
    (``None``: no data, no fine-tuning, no accuracy), saves the pruned model to ``out`` (safe
    format), reloads it and checks its outputs, optionally exports ``onnx``, and returns the
    ``PruneReport`` with the before/after table (``to_dict()`` is JSON-safe). With
    ``precision`` fp16 or int8 the pruned model's validation macro-F1 at that precision is
    compared with FP32 in ONNX Runtime (``deployment`` in the report and the checkpoint's
    metrics; needs ``dataset``).

    Raises:
        UsageError: bad budget/device/options, or data whose classes differ from the model's.
        CheckpointError: ``source`` is not a readable explorer checkpoint, or ``weights``
            is not a state_dict that fits the model.
        ExplorerError: the budget cannot be met, or the reloaded model differs.
    """
    import device_profiles

    precision = _check_options(
        importance=importance,
        finetune_epochs=finetune_epochs,
        precision=precision,
        dataset=dataset,
    )
    profile = device_profiles.get(device)
    loaded = _load(source, weights, saving=out is not None)
    model, inputs = loaded.model, loaded.inputs
    if loaded.config is not None and dataset and (finetune_epochs > 0 or importance == "taylor"):
        # fine-tuning (and Taylor importance) run backward passes at --batch-size
        check_model_memory(
            loaded.config, batch_size=batch_size, what=f"fine-tuning {source!r}", training=True
        )
    start = model_costs(model, inputs, device=profile)
    target = parse_prune_budget(budget, start)
    data = None
    if dataset and loaded.spec is not None:
        data = _prune_data(model, dataset, spec=loaded.spec, seed=seed, extra=loaded.extra)
    if importance == "taylor" and data is None:
        raise UsageError("--importance taylor needs gradients from data: pass --dataset")
    tuner = None
    if data is not None and finetune_epochs > 0:
        tuner = _Finetuner(data, epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed)
    pruned, result = prune_to_budget(
        model,
        inputs,
        budget=target,
        device=profile,
        importance=importance,
        steps=steps,
        round_to=round_to,
        finetune=tuner,
        loss_fn=_taylor_loss(data, batch_size) if importance == "taylor" and data else None,
    )
    norm = tuner.norm if tuner is not None else (data.norm if data is not None else None)
    after_metrics = _evaluate(pruned, data, norm)
    report = PruneReport(
        source=source,
        device=profile.key,
        pruning=result,
        importance=importance,
        round_to=round_to,
        finetune_epochs=finetune_epochs,
        finetune=tuple(tuner.history) if tuner is not None else (),
        dataset=dataset if data is not None else None,
        before=PruneCosts.of(
            start,
            ort_ms=_ort_ms(model, inputs, bench_runs) if measure else None,
            metrics=data.before_metrics if data is not None else None,
        ),
        after=PruneCosts.of(
            model_costs(pruned, inputs, device=profile),
            ort_ms=_ort_ms(pruned, inputs, bench_runs) if measure else None,
            metrics=after_metrics,
        ),
    )
    if precision != "fp32" and data is not None:
        deployment = _deployment(
            pruned, data, precision=precision, norm=norm, seed=seed, inputs=inputs, board=profile
        )
        report = replace(report, deployment=deployment)
    if out is not None:
        path, diff = _save_and_check(
            pruned,
            out,
            metrics=_checkpoint_metrics(after_metrics, report.deployment),
            class_names=list(data.class_names) if data is not None else loaded.class_names,
            extra={**loaded.extra, "audio_normalization": norm, "pruning": _provenance(report)},
            inputs=inputs,
        )
        report = replace(report, checkpoint=path, reload_max_abs_diff=diff)
    if onnx is not None:
        from explorer.export import export_onnx

        report = replace(report, onnx=export_onnx(pruned, inputs, onnx))
    return report


def _check_options(
    *, importance: str, finetune_epochs: int, precision: str, dataset: str | None
) -> str:
    """Refuse bad options before any work; the precision, normalised."""
    from explorer.quantize import check_precision

    if importance not in IMPORTANCES:
        raise UsageError(f"--importance {importance!r} is unknown: use {' or '.join(IMPORTANCES)}")
    if not (isinstance(finetune_epochs, int) and finetune_epochs >= 0):
        raise UsageError(f"--finetune-epochs {finetune_epochs!r} is invalid: use 0 or more")
    precision = check_precision(precision)
    if precision != "fp32" and not dataset:
        raise UsageError(
            f"--precision {precision} compares validation accuracy, so it needs data: "
            "pass --dataset (not none)"
        )
    return precision


@dataclass(frozen=True, kw_only=True)
class _PruneData:
    """The data set's features, the actor split, the audio standardisation the model was
    trained with, and the unpruned model's validation metrics."""

    features: FeatureSet
    split: Split
    norm: dict[str, list[float]]
    before_metrics: Metrics
    class_names: tuple[str, ...]


def _prune_data(
    model: nn.Module, dataset: str, *, spec: InputSpec, seed: int, extra: Mapping[str, Any]
) -> _PruneData:
    """Load ``dataset`` for the model's input spec and score the unpruned model on it.

    Raises:
        UsageError: the data set has another number of classes than the model predicts.
    """
    from explorer.data import build_features, load_dataset, make_split
    from explorer.training import evaluate

    ds = load_dataset(dataset)
    if len(ds.class_names) != spec.num_classes:
        raise UsageError(
            f"{ds.name} has {len(ds.class_names)} classes but the model predicts "
            f"{spec.num_classes}: prune with the data set it was trained on"
        )
    features = build_features(ds, spec)
    split = make_split(features, kind="actor", seed=seed)
    norm = _normalization(features, split.train_idx, extra.get("audio_normalization"))
    return _PruneData(
        features=features,
        split=split,
        norm=norm,
        before_metrics=evaluate(model, features, split.val_idx, normalization=norm),
        class_names=tuple(ds.class_names),
    )


def _taylor_loss(data: _PruneData, batch_size: int) -> Callable[[nn.Module], torch.Tensor]:
    """The loss whose gradients Taylor importance ranks channels by: cross-entropy on one
    standardised training batch."""
    features, idx = data.features, data.split.train_idx[: max(batch_size, 2)]
    mean = torch.tensor(data.norm["mean"]).reshape(features.audio.shape[1:])
    std = torch.tensor(data.norm["std"]).reshape(features.audio.shape[1:])

    def loss_fn(m: nn.Module) -> torch.Tensor:
        audio, video, labels = features.tensors(idx)
        return F.cross_entropy(m((audio - mean) / std, video), labels)

    return loss_fn


class _Finetuner:
    """Fine-tunes after each pruning step; keeps the standardisation of the last run (the
    pruned model is evaluated and saved with it) and one ``FinetuneStep`` per step."""

    def __init__(self, data: _PruneData, *, epochs: int, batch_size: int, lr: float, seed: int):
        from explorer.training import TrainSettings

        self.data = data
        self.norm = data.norm
        self.history: list[FinetuneStep] = []
        self.settings = TrainSettings(
            epochs=epochs, patience=epochs, batch_size=batch_size, lr=lr, seed=seed
        )

    def __call__(self, model: nn.Module, step: int) -> None:
        from explorer.training import train

        result = train(model, self.data.features, self.data.split, settings=self.settings)
        self.norm = result.normalization
        self.history.append(
            FinetuneStep(
                step=step,
                epochs=result.epochs_run,
                val_macro_f1=result.metrics.macro_f1,
                val_accuracy=result.metrics.accuracy,
            )
        )


def _evaluate(model: nn.Module, data: _PruneData | None, norm: Any) -> Metrics | None:
    from explorer.training import evaluate

    if data is None:
        return None
    return evaluate(model, data.features, data.split.val_idx, normalization=norm)


def _deployment(
    pruned: nn.Module,
    data: _PruneData,
    *,
    precision: str,
    norm: Any,
    seed: int,
    inputs: tuple[torch.Tensor, ...],
    board: DeviceProfile,
) -> DeploymentReport:
    """Validation macro-F1 at ``precision`` against FP32 in ONNX Runtime, and the predicted
    time on the board's target for that precision (none, with the reason, when the board has
    no peak for it: the accuracy comparison still runs)."""
    from explorer.quantize import check_deployment, device_at_precision

    low, note = None, None
    try:
        low = device_at_precision(board, precision)
    except UsageError as exc:
        note = str(exc)
    check = check_deployment(
        pruned, data.features, data.split, precision=precision, normalization=norm, seed=seed
    )
    return DeploymentReport(
        check=check,
        target=f"{low.device}:{low.name}" if low is not None else None,
        predicted_ms=model_costs(pruned, inputs, device=low)["latency_ms"] if low else None,
        prediction_note=note,
    )


def _checkpoint_metrics(
    after: Metrics | None, deployment: DeploymentReport | None
) -> dict[str, Any] | None:
    """The pruned checkpoint's metrics: validation metrics after pruning, and the deployment
    comparison when there is one."""
    metrics = after.to_dict() if after is not None else None
    if deployment is not None:
        metrics = {**(metrics or {}), "deployment": deployment.to_dict()}
    return metrics


def _provenance(report: PruneReport) -> dict[str, Any]:
    """How the checkpoint was pruned, stored in its ``extra``."""
    return {
        "source": report.source,
        "device": report.device,
        "budget": report.pruning.to_dict(),
        "importance": report.importance,
        "round_to": report.round_to,
        "finetune_epochs": report.finetune_epochs,
    }


def _save_and_check(model, out, *, metrics, class_names, extra, inputs):
    from explorer.checkpoints import load_checkpoint, save_checkpoint

    extra = {k: v for k, v in extra.items() if v is not None}
    path = save_checkpoint(
        out, model, metrics=metrics, class_names=class_names or None, extra=extra
    )
    # prove the file alone rebuilds the pruned network
    torch.load(path, map_location="cpu", weights_only=True)
    rebuilt = load_checkpoint(path).build_model()
    with torch.no_grad():
        a, b = model.eval()(*inputs), rebuilt(*inputs)
    diff = float((a - b).abs().max())
    if a.shape != b.shape or not diff <= 1e-5 * max(1.0, float(a.abs().max())):
        raise ExplorerError(
            f"the pruned checkpoint {str(path)!r} rebuilds a model whose outputs differ by "
            f"{diff:.3g}; please report the model"
        )
    return str(path), diff
