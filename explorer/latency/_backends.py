"""Measurement backends behind one protocol: ONNX Runtime, PyTorch (CPU/CUDA), TensorRT.

Each backend's ``measure(model, inputs, settings=...)`` returns a ``LatencyResult``. ORT and
TensorRT run an ONNX file exported (and checked against PyTorch) on the fly, or the one given.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from explorer.environment import environment
from explorer.errors import MissingExtraError, UsageError

from ._result import LatencyResult, summarise
from ._timing import CLOCKS, auto_runs, time_runs, torch_threads, warm_up

__all__ = [
    "BACKENDS",
    "Backend",
    "BenchSettings",
    "OrtBackend",
    "TensorRTBackend",
    "TorchBackend",
    "get_backend",
]


MAX_RUNS = 100_000  # timed or warm-up runs of one bench


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """How to measure: runs (None = enough for about a second, 15..300), warm-up, threads."""

    runs: int | None = None
    warmup: int = 10
    threads: int = 1
    device: str = "cpu"  # torch backend: "cpu" or "cuda[:i]"
    # ort: the exported graph is converted (fp16, or int8 QDQ calibrated on random inputs);
    # tensorrt: builder flags (int8 builds from the QDQ graph). Not for the torch backend.
    precision: str = "fp32"
    onnx_path: Path | None = None  # ort/tensorrt: time this file as given instead of exporting
    clock: str = "wall"  # "wall", or "cpu" (thread CPU time; one thread only, CPU backends)

    def __post_init__(self) -> None:
        # a bound keeps a typo (an extra digit or ten) from timing a model for days
        if self.runs is not None and not 1 <= self.runs <= MAX_RUNS:
            raise UsageError(
                f"--runs must be from 1 to {MAX_RUNS:,}, got {self.runs}: 0 (the default) "
                "picks enough runs for about a second"
            )
        if not 0 <= self.warmup <= MAX_RUNS:
            raise UsageError(f"--warmup must be from 0 to {MAX_RUNS:,}, got {self.warmup}")
        if self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        if self.clock not in CLOCKS:
            raise UsageError(f"clock must be wall or cpu, got {self.clock!r}")
        if self.clock == "cpu" and self.threads != 1:
            raise UsageError(
                f"--clock cpu times the calling thread, so it needs --threads 1, got {self.threads}"
            )
        if self.precision not in ("fp32", "fp16", "int8"):
            raise UsageError(f"precision must be fp32, fp16 or int8, got {self.precision!r}")


class Backend(Protocol):
    """A runtime that can time a model."""

    name: str

    def measure(
        self,
        model: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        *,
        settings: BenchSettings,
        name: str = "model",
    ) -> LatencyResult: ...


def _env(extra: dict[str, Any]) -> dict[str, Any]:
    env = environment()
    env.update(extra)
    return env


def _onnx_file(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], settings: BenchSettings, tmp: str
) -> Path:
    """The file to time: the one given, else an export at ``settings.precision``. Latency does
    not depend on the calibration data, so INT8 ranges come from random inputs here."""
    if settings.onnx_path is not None:
        return Path(settings.onnx_path)
    from explorer.quantize import export_at_precision

    path = Path(tmp) / "model.onnx"
    export_at_precision(model, inputs, path, precision=settings.precision)
    return path


def ort_session(path: str | Path, *, threads: int) -> Any:
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_feed(session: Any, inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    """Map example tensors to the session's inputs, in order (unused inputs are dropped)."""
    from explorer.export import onnx_input_names

    wanted = {i.name for i in session.get_inputs()}
    names = onnx_input_names(len(inputs))
    return {n: t.detach().cpu().numpy() for n, t in zip(names, inputs, strict=True) if n in wanted}


class OrtBackend:
    """ONNX Runtime on the CPU (one intra-op thread by default, graph optimisation on)."""

    name = "ort"

    def measure_session(
        self,
        session: Any,
        feed: dict[str, Any],
        *,
        settings: BenchSettings,
        name: str,
        batch_size: int,
    ) -> LatencyResult:
        """Time an existing session (used by calibration, which builds many small graphs)."""
        import onnxruntime as ort

        timings, warmed = _time_cpu(lambda: session.run(None, feed), settings)
        return summarise(
            timings,
            model=name,
            backend=self.name,
            device="cpu",
            precision=settings.precision,
            clock=settings.clock,
            warmup=warmed,
            batch_size=batch_size,
            threads=settings.threads,
            environment=_env({"onnxruntime": ort.__version__, "graph_optimization": "all"}),
        )

    def measure(
        self,
        model: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        *,
        settings: BenchSettings,
        name: str = "model",
    ) -> LatencyResult:
        with tempfile.TemporaryDirectory(prefix="explorer-ort-") as tmp:
            path = _onnx_file(model, inputs, settings, tmp)
            session = ort_session(path, threads=settings.threads)
            return self.measure_session(
                session,
                ort_feed(session, inputs),
                settings=settings,
                name=name,
                batch_size=int(inputs[0].shape[0]),
            )


def torch_device(name: str) -> torch.device:
    """``cpu`` or ``cuda[:i]`` as a device this machine has (``--torch-device``).

    Raises:
        UsageError: another kind of device, CUDA on a machine without it, or a CUDA device
            number the machine lacks.
    """
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise UsageError(f"--torch-device must be cpu or cuda[:i], got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--torch-device {name} needs CUDA, which this machine lacks (torch "
            f"{torch.__version__}); run it on the GPU machine, or use --torch-device cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(
            f"--torch-device {name}: this machine has {torch.cuda.device_count()} CUDA "
            "device(s), numbered from 0"
        )
    return device


class TorchBackend:
    """PyTorch eager: CPU (``threads`` intra-op threads) or CUDA (events + synchronisation)."""

    name = "torch"

    def measure(
        self,
        model: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        *,
        settings: BenchSettings,
        name: str = "model",
    ) -> LatencyResult:
        device = torch_device(settings.device)
        if settings.precision != "fp32":
            raise UsageError(
                f"the torch backend times fp32 only, got --precision {settings.precision}; "
                "use --backend ort (or tensorrt) for fp16/int8"
            )
        model = model.eval().to(device)
        inputs = tuple(t.to(device) for t in inputs)
        extra: dict[str, Any] = {"torch": torch.__version__}
        warmed = max(settings.warmup, 1)  # what _time_cuda runs
        with torch_threads(settings.threads), torch.inference_mode():
            if device.type == "cuda":
                timings = _time_cuda(lambda: model(*inputs), settings)
                extra["gpu"] = torch.cuda.get_device_name(device)
            else:
                timings, warmed = _time_cpu(lambda: model(*inputs), settings)
        return summarise(
            timings,
            model=name,
            backend=self.name,
            device=str(device),
            clock=settings.clock if device.type == "cpu" else "cuda-events",
            warmup=warmed,
            batch_size=int(inputs[0].shape[0]),
            threads=settings.threads if device.type == "cpu" else None,
            environment=_env(extra),
        )


def _time_cpu(run: Callable[[], object], settings: BenchSettings) -> tuple[list[float], int]:
    """Timings of ``run`` on the CPU: ``settings.runs`` runs (or as many as fit the default
    budget) by ``settings.clock``, after up to ``settings.warmup`` warm-up runs (fewer once
    they have taken ``WARMUP_BUDGET_S``); returns the timings and the warm-up runs made."""
    warmed = warm_up(run, runs=settings.warmup)
    runs = settings.runs or auto_runs(run)
    return time_runs(run, runs=runs, warmup=0, clock=settings.clock), warmed


def _time_cuda(
    run: Callable[[], object], settings: BenchSettings, *, stream: Any = None
) -> list[float]:
    """Milliseconds of ``settings.runs`` (default 100) calls of ``run`` measured with CUDA
    events on ``stream`` (the current stream when ``None``), after ``settings.warmup`` (at
    least one) untimed calls."""
    for _ in range(max(settings.warmup, 1)):
        run()
    if stream is None:
        torch.cuda.synchronize()
    else:
        stream.synchronize()
    timings = []
    for _ in range(settings.runs or 100):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record(stream)
        run()
        end.record(stream)
        end.synchronize()
        timings.append(start.elapsed_time(end))
    return timings


class TensorRTBackend:
    """TensorRT: an engine built from the ONNX file (FP32, FP16, or INT8 from the QDQ graph's
    explicit scales), timed with CUDA events. Not runnable on a machine without CUDA."""

    name = "tensorrt"

    @staticmethod
    def available() -> bool:
        """True when the ``tensorrt`` package imports and a CUDA device is present."""
        try:
            import tensorrt  # noqa: F401
        except ImportError:
            return False
        return torch.cuda.is_available()

    def measure(
        self,
        model: nn.Module,
        inputs: tuple[torch.Tensor, ...],
        *,
        settings: BenchSettings,
        name: str = "model",
    ) -> LatencyResult:
        try:
            import tensorrt as trt
        except ImportError:
            raise MissingExtraError("tensorrt", "tensorrt", "the TensorRT backend") from None
        if not torch.cuda.is_available():
            raise UsageError("the TensorRT backend needs a CUDA GPU; use --backend ort or torch")
        with tempfile.TemporaryDirectory(prefix="explorer-trt-") as tmp:
            path = _onnx_file(model, inputs, settings, tmp)
            engine = _build_engine(trt, path, precision=settings.precision)
        context = engine.create_execution_context()
        from explorer.export import onnx_input_names

        names = onnx_input_names(len(inputs))
        buffers = {}
        for i in range(engine.num_io_tensors):
            tname = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(tname))
            if engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                src = inputs[names.index(tname)]
                buffers[tname] = src.to("cuda").contiguous()
            else:
                dtype = (
                    torch.float16
                    if engine.get_tensor_dtype(tname) == trt.DataType.HALF
                    else torch.float32
                )
                buffers[tname] = torch.empty(shape, dtype=dtype, device="cuda")
            context.set_tensor_address(tname, buffers[tname].data_ptr())
        stream = torch.cuda.Stream()

        timings = _time_cuda(
            lambda: context.execute_async_v3(stream.cuda_stream), settings, stream=stream
        )
        return summarise(
            timings,
            model=name,
            backend=self.name,
            device="cuda:0",
            warmup=settings.warmup,
            batch_size=int(inputs[0].shape[0]),
            threads=None,
            precision=settings.precision,
            clock="cuda-events",
            environment=_env({"tensorrt": trt.__version__, "gpu": torch.cuda.get_device_name(0)}),
        )


def _build_engine(trt: Any, path: Path, *, precision: str) -> Any:
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        from explorer.errors import ExplorerError

        raise ExplorerError(f"TensorRT cannot parse {path}: {errors}")
    config = builder.create_builder_config()
    if precision in ("fp16", "int8"):  # int8: layers without Q/DQ scales may fall back to fp16
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    serialized = builder.build_serialized_network(network, config)
    runtime = trt.Runtime(logger)
    return runtime.deserialize_cuda_engine(serialized)


BACKENDS: dict[str, type] = {"ort": OrtBackend, "torch": TorchBackend, "tensorrt": TensorRTBackend}


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (ort, torch, tensorrt)."""
    try:
        return BACKENDS[name]()
    except KeyError:
        raise UsageError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}") from None
