"""What ``explorer prune`` does: load, measure, prune to a budget, fine-tune, save, prove.

    >>> report = prune_checkpoint("model.pt", device="rpi4", budget="50%flops", out="small.pt")

The before/after report holds params, MACs, FLOPs, predicted latency on the device, measured
ONNX Runtime latency on this machine (one thread, median) and validation accuracy/macro-F1.
The pruned checkpoint uses the safe format (``explorer.checkpoints``): it is reloaded here and
its outputs must equal the in-memory pruned model's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.budget import Budget, parse_budget
from explorer.errors import ExplorerError, UsageError
from explorer.memory import check_model_memory

from ._core import IMPORTANCES, model_costs, prune_to_budget

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


def _load(source: str, weights: str | Path | None = None):
    """(model, class_names, extra, config-or-None) from a checkpoint, family spec or callable,
    with ``weights`` (a plain state_dict file) loaded into it when given."""
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
        return model, list(ckpt.class_names), dict(ckpt.extra), ckpt.config, None
    resolved = resolve_model(source, weights=weights)
    spec = resolved.input_spec
    names = [f"class_{i}" for i in range(spec.num_classes)] if spec is not None else []
    return resolved.model, names, {}, resolved.config, resolved.example_inputs


def _ort_ms(model: nn.Module, inputs: tuple[torch.Tensor, ...], runs: int | None) -> float:
    from explorer.latency import BenchSettings, bench

    result = bench(model, inputs, backend="ort", settings=BenchSettings(threads=1, runs=runs))
    return float(result.median_ms)


def _row(costs: dict[str, float], ort_ms: float | None, metrics: Any) -> dict[str, Any]:
    return {
        "params": int(costs["params"]),
        "macs": int(costs["macs"]),
        "flops": int(costs["flops"]),
        "weight_bytes": int(costs["weight_bytes"]),
        "predicted_ms": costs.get("latency_ms"),
        "ort_ms": ort_ms,
        "accuracy": getattr(metrics, "accuracy", None),
        "macro_f1": getattr(metrics, "macro_f1", None),
    }


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
) -> dict[str, Any]:
    """Prune ``source`` (checkpoint, family spec or ``module:function``) to ``budget``.

    ``weights`` names a plain ``state_dict`` file loaded into the model built from ``source``
    first (a researcher's own trained weights; see ``explorer.weights.load_weights``).

    Fine-tunes ``finetune_epochs`` after each of ``steps`` pruning steps (channel counts kept
    a multiple of ``round_to``, see ``prune_to_budget``) on ``dataset``
    (``None``: no data, no fine-tuning, no accuracy), saves the pruned model to ``out`` (safe
    format), reloads it and checks its outputs, optionally exports ``onnx``, and returns a
    JSON-safe report with the before/after table. With ``precision`` fp16 or int8 the pruned
    model's validation macro-F1 at that precision is compared with FP32 in ONNX Runtime
    (``deployment`` in the report and the checkpoint's metrics; needs ``dataset``).

    Raises:
        UsageError: bad budget/device/options, or data whose classes differ from the model's.
        CheckpointError: ``source`` is not a readable explorer checkpoint, or ``weights``
            is not a state_dict that fits the model.
        ExplorerError: the budget cannot be met, or the reloaded model differs.
    """
    import device_profiles
    from explorer.export import export_onnx
    from explorer.training import TrainSettings, evaluate, train

    if importance not in IMPORTANCES:
        raise UsageError(f"--importance {importance!r} is unknown: use {' or '.join(IMPORTANCES)}")
    if not (isinstance(finetune_epochs, int) and finetune_epochs >= 0):
        raise UsageError(f"--finetune-epochs {finetune_epochs!r} is invalid: use 0 or more")
    from explorer.quantize import check_deployment, check_precision, device_at_precision

    precision = check_precision(precision)
    if precision != "fp32" and not dataset:
        raise UsageError(
            f"--precision {precision} compares validation accuracy, so it needs data: "
            "pass --dataset (not none)"
        )
    profile = device_profiles.get(device)
    # the target that prices the converted model (none when the board has no peak for it:
    # the accuracy comparison still runs, the prediction is left out with the reason)
    low, no_low = None, None
    if precision != "fp32":
        try:
            low = device_at_precision(profile, precision)
        except UsageError as exc:
            no_low = str(exc)
    model, class_names, extra, config, given_inputs = _load(source, weights)
    if out is not None and config is None:  # refuse before any work is done
        raise UsageError(
            f"{source!r} is not a search_spaces model, so it cannot be saved in the safe "
            "checkpoint format (no config to rebuild it from): return a model built with "
            "search_spaces.build, or drop --out"
        )
    if config is not None and dataset and (finetune_epochs > 0 or importance == "taylor"):
        # fine-tuning (and Taylor importance) run backward passes at --batch-size
        check_model_memory(
            config, batch_size=batch_size, what=f"fine-tuning {source!r}", training=True
        )
    spec = getattr(model, "input_spec", None)
    import search_spaces as ss

    inputs = tuple(given_inputs) if given_inputs is not None else ss.example_inputs(spec, 1)
    start = model_costs(model, inputs, device=profile)
    target = parse_prune_budget(budget, start)

    features = split = None
    norm: dict[str, list[float]] | None = None
    before_metrics = None
    if dataset and spec is not None:
        from explorer.data import build_features, load_dataset, make_split

        ds = load_dataset(dataset)
        if len(ds.class_names) != spec.num_classes:
            raise UsageError(
                f"{ds.name} has {len(ds.class_names)} classes but the model predicts "
                f"{spec.num_classes}: prune with the data set it was trained on"
            )
        features = build_features(ds, spec)
        split = make_split(features, kind="actor", seed=seed)
        norm = _normalization(features, split.train_idx, extra.get("audio_normalization"))
        before_metrics = evaluate(model, features, split.val_idx, normalization=norm)
        class_names = list(ds.class_names)

    loss_fn = None
    if importance == "taylor":
        if features is None:
            raise UsageError("--importance taylor needs gradients from data: pass --dataset")
        idx = split.train_idx[: max(batch_size, 2)]
        mean = torch.tensor(norm["mean"]).reshape(features.audio.shape[1:])
        std = torch.tensor(norm["std"]).reshape(features.audio.shape[1:])

        def loss_fn(m: nn.Module) -> torch.Tensor:
            audio, video, labels = features.tensors(idx)
            return F.cross_entropy(m((audio - mean) / std, video), labels)

    finetune = None
    history: list[dict[str, Any]] = []
    if features is not None and finetune_epochs > 0:
        settings = TrainSettings(
            epochs=finetune_epochs,
            patience=finetune_epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
        )

        def finetune(m: nn.Module, step: int) -> None:
            nonlocal norm
            result = train(m, features, split, settings=settings)
            norm = result.normalization
            history.append(
                {
                    "step": step,
                    "epochs": result.epochs_run,
                    "val_macro_f1": result.metrics.macro_f1,
                    "val_accuracy": result.metrics.accuracy,
                }
            )

    pruned, result = prune_to_budget(
        model,
        inputs,
        budget=target,
        device=profile,
        importance=importance,
        steps=steps,
        round_to=round_to,
        finetune=finetune,
        loss_fn=loss_fn,
    )
    after_metrics = (
        evaluate(pruned, features, split.val_idx, normalization=norm)
        if features is not None
        else None
    )
    end = model_costs(pruned, inputs, device=profile)
    before_ms = _ort_ms(model, inputs, bench_runs) if measure else None
    after_ms = _ort_ms(pruned, inputs, bench_runs) if measure else None

    report: dict[str, Any] = {
        "source": source,
        "device": profile.key,
        "budget": result.to_dict(),
        "importance": importance,
        "round_to": round_to,
        "finetune_epochs": finetune_epochs,
        "finetune": history,
        "dataset": dataset if features is not None else None,
        "before": _row(start, before_ms, before_metrics),
        "after": _row(end, after_ms, after_metrics),
        "kept_intact": dict(result.kept_intact),
        "checkpoint": None,
        "reload_max_abs_diff": None,
        "onnx": None,
        "deployment": None,
    }
    metrics = after_metrics.to_dict() if after_metrics is not None else None
    if precision != "fp32" and features is not None:
        report["deployment"] = check_deployment(
            pruned, features, split, precision=precision, normalization=norm, seed=seed
        ).to_dict() | {
            "target": f"{low.device}:{low.name}" if low is not None else None,
            "predicted_ms": (
                model_costs(pruned, inputs, device=low)["latency_ms"] if low is not None else None
            ),
            "prediction_note": no_low,
        }
        metrics = {**(metrics or {}), "deployment": report["deployment"]}
    if out is not None:
        report["checkpoint"], report["reload_max_abs_diff"] = _save_and_check(
            pruned,
            out,
            metrics=metrics,
            class_names=class_names,
            extra={
                **extra,
                "audio_normalization": norm,
                "pruning": {
                    "source": source,
                    "device": profile.key,
                    "budget": result.to_dict(),
                    "importance": importance,
                    "round_to": round_to,
                    "finetune_epochs": finetune_epochs,
                },
            },
            inputs=inputs,
        )
    if onnx is not None:
        report["onnx"] = export_onnx(pruned, inputs, onnx).to_dict()
    return report


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
