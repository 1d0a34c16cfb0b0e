"""Classification metrics of one evaluation (numpy only): accuracy, macro precision, recall
and F1, weighted and unweighted accuracy, the confusion matrix.

Shared by training (PyTorch evaluation) and the deployment checks of ``explorer.quantize``
(ONNX Runtime evaluation), so neither needs the other to score a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Metrics", "compute_metrics"]


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """Classification metrics of one evaluation.

    ``precision``, ``recall`` and ``macro_f1`` are unweighted means over the classes present in
    the labels or predictions. ``weighted_accuracy`` (WA) is the share of correct samples (the
    same as ``accuracy``, named as the speech-emotion literature does);
    ``unweighted_accuracy`` (UA) is the mean per-class recall over classes present in the
    labels. ``confusion[i][j]`` counts samples of class i predicted as j.
    """

    accuracy: float
    macro_f1: float
    precision: float
    recall: float
    weighted_accuracy: float
    unweighted_accuracy: float
    loss: float
    samples: int
    confusion: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusion"] = [list(row) for row in self.confusion]
        return d


def compute_metrics(
    labels: np.ndarray, predictions: np.ndarray, *, num_classes: int, loss: float = float("nan")
) -> Metrics:
    """Accuracy, macro precision/recall/F1, WA/UA and the confusion matrix (numpy only)."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (labels, predictions), 1)
    tp = np.diag(conf).astype(float)
    support = conf.sum(axis=1).astype(float)
    predicted = conf.sum(axis=0).astype(float)
    present = (support > 0) | (predicted > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(predicted > 0, tp / predicted, 0.0)
        rec = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    n = int(labels.size)
    acc = float(tp.sum() / n) if n else 0.0
    mean = (lambda v: float(v[present].mean())) if present.any() else (lambda v: 0.0)
    ua = float(rec[support > 0].mean()) if (support > 0).any() else 0.0
    return Metrics(
        accuracy=acc,
        macro_f1=mean(f1),
        precision=mean(prec),
        recall=mean(rec),
        weighted_accuracy=acc,
        unweighted_accuracy=ua,
        loss=float(loss),
        samples=n,
        confusion=tuple(tuple(int(v) for v in row) for row in conf),
    )
