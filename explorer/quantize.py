"""Deployment precisions: FP16 and INT8 ONNX graphs, their output drift and their accuracy.

    >>> feeds = calibration_feeds(model.input_spec, dataset="synthetic", samples=32)
    >>> result = convert_onnx("model.onnx", "model-int8.onnx", precision="int8", feeds=feeds)
    >>> result.max_abs_diff, result.top1_agreement

INT8 is ONNX Runtime static quantisation in the QDQ format (8-bit weights per output channel,
8-bit activations with ranges calibrated on real samples of the chosen data set); FP16 is ONNX
Runtime's float16 converter with float32 inputs and outputs kept, so the same feeds work for
every precision. Each conversion runs the new graph in ONNX Runtime on the calibration samples
and reports how far its logits move from the FP32 graph's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explorer.errors import ExplorerError, UsageError
from explorer.files import atomic_output

if TYPE_CHECKING:
    from torch import nn

    from device_profiles import DeviceProfile, Target
    from explorer.data import FeatureSet, Split
    from explorer.metrics import Metrics
    from search_spaces import InputSpec

__all__ = [
    "PRECISIONS",
    "DeploymentCheck",
    "PrecisionResult",
    "calibration_feeds",
    "check_deployment",
    "check_precision",
    "convert_onnx",
    "device_at_precision",
    "evaluate_onnx",
    "export_at_precision",
    "random_feeds",
]

PRECISIONS = ("fp32", "fp16", "int8")

Feed = Mapping[str, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class PrecisionResult:
    """An ONNX graph converted to a lower precision, compared with its FP32 source.

    ``max_abs_diff`` and ``mean_abs_diff`` are over all logits of the calibration samples;
    ``top1_agreement`` is the share of samples whose top class is unchanged.
    """

    path: Path
    precision: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    max_abs_logit: float  # the FP32 graph's largest |logit|, to read the differences against
    top1_agreement: float
    size_bytes: int
    fp32_size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "precision": self.precision,
            "samples": self.samples,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "max_abs_logit": self.max_abs_logit,
            "top1_agreement": self.top1_agreement,
            "size_bytes": self.size_bytes,
            "fp32_size_bytes": self.fp32_size_bytes,
        }


def check_precision(precision: str) -> str:
    """``precision`` lower-cased if it is fp32, fp16 or int8.

    Raises:
        UsageError: any other value.
    """
    value = str(precision).strip().lower()
    if value not in PRECISIONS:
        raise UsageError(f"precision must be fp32, fp16 or int8, got {precision!r}")
    return value


def _session(path: str | Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run_all(session: Any, feeds: Sequence[Feed]) -> np.ndarray:
    wanted = {i.name for i in session.get_inputs()}
    outs = [session.run(None, {k: v for k, v in f.items() if k in wanted})[0] for f in feeds]
    return np.concatenate(outs, axis=0).astype(np.float32)


def _normalisation(audio: np.ndarray, normalization: Mapping[str, Any] | None) -> np.ndarray:
    """Audio standardised as training does: the stored mean/std, else per-coefficient stats."""
    shape = audio.shape[1:]
    if normalization:
        mean = np.asarray(normalization["mean"], np.float32).reshape(shape)
        std = np.asarray(normalization["std"], np.float32).reshape(shape)
    else:
        axes = (0, *range(2, audio.ndim))
        mean = audio.mean(axis=axes, keepdims=True)[0]
        std = audio.std(axis=axes, keepdims=True)[0]
        std = np.where(std > 1e-6, std, 1.0)
    return ((audio - mean) / std).astype(np.float32)


def calibration_feeds(
    input_spec: InputSpec,
    *,
    dataset: str = "synthetic",
    samples: int = 32,
    batch_size: int = 1,
    normalization: Mapping[str, Any] | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> list[dict[str, np.ndarray]]:
    """ONNX feeds (``audio``, ``video``) of ``samples`` clips of ``dataset``, as the model sees
    them: features for ``input_spec``, audio standardised with ``normalization`` (a checkpoint's
    ``audio_normalization``; the samples' own statistics when None).

    Args:
        input_spec: the model's ``InputSpec``.
        dataset: as ``explorer train --dataset`` (synthetic, ravdess:DIR, cremad:DIR).
        samples: clips drawn at random (all clips when the set is smaller).
        batch_size: samples per feed (the exported graph's fixed batch).

    Raises:
        UsageError: ``samples`` below 1, or a bad data set name.
    """
    from explorer.data import build_features, load_dataset

    if samples < 1:
        raise UsageError(f"--calibration-samples must be at least 1, got {samples}")
    features = build_features(load_dataset(dataset), input_spec, cache_dir=cache_dir)
    rng = np.random.default_rng(seed)
    n = min(samples, len(features))
    idx = np.sort(rng.choice(len(features), size=n, replace=False))
    n -= n % batch_size
    if n == 0:
        raise UsageError(
            f"{dataset} gives {len(features)} samples, fewer than one batch of {batch_size}"
        )
    audio, video, _ = features.tensors(idx[:n])
    audio = _normalisation(audio.numpy(), normalization)
    video = video.numpy()
    return [
        {"audio": audio[i : i + batch_size], "video": video[i : i + batch_size]}
        for i in range(0, n, batch_size)
    ]


def random_feeds(example_inputs: Sequence[Any], *, count: int = 8) -> list[dict[str, np.ndarray]]:
    """Feeds of random inputs shaped like ``example_inputs`` (enough to time a graph; use
    ``calibration_feeds`` when the INT8 ranges must fit real data)."""
    from explorer.export import onnx_input_names

    names = onnx_input_names(len(example_inputs))
    rng = np.random.default_rng(0)
    feeds = []
    for _ in range(count):
        feed = {}
        for name, t in zip(names, example_inputs, strict=True):
            shape = tuple(t.shape)
            feed[name] = (
                rng.random(shape, dtype=np.float32)
                if name == "video"
                else rng.standard_normal(shape, dtype=np.float32)
            )
        feeds.append(feed)
    return feeds


class _Reader:
    """The CalibrationDataReader ONNX Runtime's quantiser pulls feeds from, one at a time."""

    def __init__(self, feeds: Sequence[Feed], names: set[str]) -> None:
        self._feeds = [{k: v for k, v in f.items() if k in names} for f in feeds]
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


@contextlib.contextmanager
def _quiet():
    """The quantiser logs and warns per tensor; keep stdout clean for --format json."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger().setLevel(level)


def _to_int8(src: Path, dst: Path, feeds: Sequence[Feed], tmp: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Reader, CalibrationDataReader):
        pass

    prepared = tmp / "prepared.onnx"
    try:  # shape inference + graph cleanup lets the quantiser see every tensor's type
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=False)
    except Exception:  # some graphs defeat symbolic inference; quantise the export as is
        shutil.copy(src, prepared)
    names = {i.name for i in _session(prepared).get_inputs()}
    quantize_static(
        str(prepared),
        str(dst),
        Reader(feeds, names),
        quant_format=QuantFormat.QDQ,
        per_channel=True,  # conv filters differ in range by orders of magnitude
        activation_type=QuantType.QUInt8,  # U8S8: the x86 VNNI and ARM dot-product kernels
        weight_type=QuantType.QInt8,
        # 7-bit weights: x86 without VNNI (AVX2) sums U8 x S8 pairs in int16, which saturates
        # at 8 bits (ding2025's max logit drift there 0.020 with 8 bits, 0.0027 with 7)
        reduce_range=True,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )


def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(dst))


def convert_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    *,
    precision: str,
    feeds: Sequence[Feed],
) -> PrecisionResult:
    """Write ``fp32_path`` at ``precision`` to ``out_path`` and compare both in ONNX Runtime.

    Args:
        fp32_path: an FP32 ONNX file (from ``export_onnx``).
        out_path: where to write; may equal ``fp32_path`` (replaced once converted).
        precision: ``fp16`` or ``int8`` (``fp32`` copies the file).
        feeds: input dicts (``audio``, ``video``); INT8 calibrates its activation ranges on
            them and every precision is compared with FP32 on them.

    Raises:
        UsageError: unknown precision or no feeds.
        ExplorerError: the converter fails or the converted graph does not run.
    """
    precision = check_precision(precision)
    if not feeds:
        raise UsageError("converting a graph needs at least one calibration sample")
    src, dst = Path(fp32_path), Path(out_path)
    with tempfile.TemporaryDirectory(prefix="explorer-precision-") as tmp_dir:
        tmp = Path(tmp_dir)
        fp32 = tmp / "fp32.onnx"
        shutil.copy(src, fp32)
        converted = tmp / f"{precision}.onnx"
        try:
            with _quiet():
                if precision == "int8":
                    _to_int8(fp32, converted, feeds, tmp)
                elif precision == "fp16":
                    _to_fp16(fp32, converted)
                else:
                    shutil.copy(fp32, converted)
            reference = _run_all(_session(fp32), feeds)
            got = _run_all(_session(converted), feeds)
        except Exception as exc:  # converter and runtime internals raise many types
            raise ExplorerError(
                f"{precision} conversion of {src} failed ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}); export at fp32 or report the model"
            ) from None
        with atomic_output(dst, what="ONNX file") as staged:
            shutil.copy(converted, staged)
        fp32_size = fp32.stat().st_size
    diff = np.abs(got - reference)
    return PrecisionResult(
        path=dst,
        precision=precision,
        samples=int(reference.shape[0]),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        max_abs_logit=float(np.abs(reference).max()),
        top1_agreement=float(np.mean(got.argmax(axis=1) == reference.argmax(axis=1))),
        size_bytes=dst.stat().st_size,
        fp32_size_bytes=fp32_size,
    )


def evaluate_onnx(
    path: str | Path,
    features: FeatureSet,
    idx: np.ndarray,
    *,
    normalization: Mapping[str, Any] | None = None,
    batch_size: int = 1,
) -> Metrics:
    """``explorer.metrics.Metrics`` of the ONNX graph at ``path`` on samples ``idx`` of a
    ``FeatureSet``, audio normalised as in training (ONNX Runtime, one thread).

    ``batch_size`` must be the graph's fixed batch (1 unless exported with another).
    """
    from explorer.metrics import compute_metrics

    session = _session(path)
    audio, video, labels = features.tensors(idx)
    audio = _normalisation(audio.numpy(), normalization or _identity(audio.shape[1:]))
    video = video.numpy()
    feeds = [
        {"audio": audio[i : i + batch_size], "video": video[i : i + batch_size]}
        for i in range(0, len(idx) - len(idx) % batch_size, batch_size)
    ]
    if not feeds:
        return compute_metrics(np.zeros(0), np.zeros(0), num_classes=len(features.class_names))
    logits = _run_all(session, feeds)
    truth = labels.numpy()[: logits.shape[0]]
    return compute_metrics(truth, logits.argmax(axis=1), num_classes=len(features.class_names))


def _identity(shape: tuple[int, ...]) -> dict[str, list[float]]:
    size = int(np.prod(shape))
    return {"mean": [0.0] * size, "std": [1.0] * size}


def export_at_precision(
    model: nn.Module,
    example_inputs: Sequence[Any],
    path: str | Path,
    *,
    precision: str,
    feeds: Sequence[Feed] | None = None,
    **export_options: Any,
) -> tuple[Any, PrecisionResult | None]:
    """Export ``model`` to ONNX (checked against PyTorch at FP32), then convert it to
    ``precision`` in place.

    Args:
        model, example_inputs: as ``explorer.export.export_onnx``.
        path: the ONNX file to write (at ``precision``).
        precision: fp32, fp16 or int8.
        feeds: calibration/comparison samples (``calibration_feeds``); random inputs shaped
            like ``example_inputs`` when None.
        export_options: passed to ``export_onnx`` (opset, dynamic_batch, check, exporter).

    Returns:
        The FP32 ``ExportResult`` and the ``PrecisionResult`` (None at fp32).
    """
    from explorer.export import export_onnx

    precision = check_precision(precision)
    exported = export_onnx(model, tuple(example_inputs), path, **export_options)
    if precision == "fp32":
        return exported, None
    feeds = list(feeds) if feeds is not None else random_feeds(example_inputs)
    return exported, convert_onnx(path, path, precision=precision, feeds=feeds)


@dataclass(frozen=True, kw_only=True)
class DeploymentCheck:
    """Validation metrics of a trained model's ONNX graph at FP32 and at a lower precision,
    both run in ONNX Runtime on the same samples (so the change is the conversion's alone)."""

    precision: str
    samples: int
    calibration_samples: int
    fp32_macro_f1: float
    macro_f1: float
    fp32_accuracy: float
    accuracy: float
    max_abs_diff: float  # logits, on the calibration samples
    top1_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "samples": self.samples,
            "calibration_samples": self.calibration_samples,
            "fp32_macro_f1": self.fp32_macro_f1,
            "macro_f1": self.macro_f1,
            "macro_f1_change": self.macro_f1 - self.fp32_macro_f1,
            "fp32_accuracy": self.fp32_accuracy,
            "accuracy": self.accuracy,
            "max_abs_diff": self.max_abs_diff,
            "top1_agreement": self.top1_agreement,
        }


def check_deployment(
    model: nn.Module,
    features: FeatureSet,
    split: Split,
    *,
    precision: str,
    normalization: Mapping[str, Any] | None = None,
    calibration_samples: int = 64,
    seed: int = 0,
) -> DeploymentCheck:
    """Export a trained ``model`` at FP32 and at ``precision`` (INT8 calibrated on up to
    ``calibration_samples`` training samples) and evaluate both graphs on the validation split.

    Args:
        model: a trained family model (eval mode; moved to the CPU).
        features, split: the ``FeatureSet`` and ``Split`` it was trained on.
        precision: fp16 or int8.
        normalization: the training run's audio statistics (``TrainResult.normalization``).

    Raises:
        UsageError: precision fp32 or unknown.
    """
    import search_spaces as ss

    precision = check_precision(precision)
    if precision == "fp32":
        raise UsageError("check_deployment compares fp32 with fp16 or int8: pass one of those")
    model = model.cpu().eval()
    rng = np.random.default_rng(seed)
    train_idx = np.asarray(split.train_idx)
    calib_idx = np.sort(rng.choice(train_idx, size=min(calibration_samples, len(train_idx)),
                                   replace=False))  # fmt: skip
    audio, video, _ = features.tensors(calib_idx)
    audio = _normalisation(audio.numpy(), normalization or _identity(audio.shape[1:]))
    video = video.numpy()
    feeds = [{"audio": audio[i : i + 1], "video": video[i : i + 1]} for i in range(len(audio))]
    with tempfile.TemporaryDirectory(prefix="explorer-deploy-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        low = Path(tmp) / f"{precision}.onnx"
        export_at_precision(model, ss.example_inputs(model), fp32, precision="fp32")
        converted = convert_onnx(fp32, low, precision=precision, feeds=feeds)
        val_idx = np.asarray(split.val_idx)
        ref = evaluate_onnx(fp32, features, val_idx, normalization=normalization)
        got = evaluate_onnx(low, features, val_idx, normalization=normalization)
    return DeploymentCheck(
        precision=precision,
        samples=int(val_idx.size),
        calibration_samples=len(feeds),
        fp32_macro_f1=ref.macro_f1,
        macro_f1=got.macro_f1,
        fp32_accuracy=ref.accuracy,
        accuracy=got.accuracy,
        max_abs_diff=converted.max_abs_diff,
        top1_agreement=converted.top1_agreement,
    )


_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def device_at_precision(device: DeviceProfile, precision: str) -> Target:
    """The ``device_profiles.Target`` to predict ``precision`` latency on: the selected target of
    ``device`` (a ``DeviceProfile``) when it runs that precision, else the board's target of it
    (the same processor first), else a target built from the board's ``peak_gflops`` entry for
    it (uncalibrated: the FP32 fit does not carry over).

    The predictor counts FP32 bytes, so a lower-precision target's bandwidth is scaled by
    4 / bytes per element (an INT8 tensor moves a quarter of the bytes).

    Raises:
        UsageError: the board has neither a target nor a peak for ``precision``.
    """
    from dataclasses import replace

    from device_profiles import Target

    precision = check_precision(precision)
    current = device.target
    same = [
        name
        for name, t in device.all_targets.items()
        if t.precision == precision and t.processor == current.processor
    ]
    other = [n for n, t in device.all_targets.items() if t.precision == precision]
    if current.precision == precision:
        target = current
    elif same or other:
        target = device.with_target((same or other)[0]).target
    elif precision in device.peak_gflops:
        target = Target(
            name=precision,
            processor=current.processor,
            runtime=current.runtime,
            precision=precision,
            peak_gflops=device.peak_gflops[precision],
            bandwidth_gb_s=current.bandwidth_gb_s,
            threads=current.threads,
            sources=device.sources,
            notes=f"built from peak_gflops.{precision}; uncalibrated",
            device=device.key,
        )
    else:
        raise UsageError(
            f"device {device.key!r} has no {precision} target and no peak_gflops.{precision}: "
            f"add one to its TOML file, or predict at fp32"
        )
    scale = 4 / _BYTES[precision]
    return replace(target, bandwidth_gb_s=target.bandwidth_gb_s * scale)
