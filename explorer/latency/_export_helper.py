"""ONNX export of a family model in a helper process that never imports ONNX Runtime.

Why: ``torch.onnx.export`` ends every Python loop over a graph's nodes or values with a C++
exception (pybind11's ``stop_iteration``), and pybind11 passes each one through every
exception translator any loaded pybind11 module registered. ONNX Runtime's module registers
several, so once it is imported (as it is wherever a learned prediction describes a graph)
such an exception cost about 40 µs instead of 9.5 µs, and exporting a 500-node lu network
took 0.69 s instead of 0.55 s (this VM, `import onnxruntime` alone; numpy, scipy, sklearn,
lightgbm, onnx, optuna and plotly changed nothing). A long-lived process that has calibrated or
trained is slower again (0.86-0.96 s against 0.70-0.74 s for the helper, export included).

How: a model built from a family ``Config`` is built again from that Config in the helper,
which exports it on the same inputs to the path asked for and returns the model's structure
(``structure``); the caller uses the file only if that structure is its model's. A model
without a Config, or one changed after it was built (pruned, say), is exported where it is.
The helper is ``python -m explorer.latency._export_helper``, a child that reads requests on
its stdin and answers on its stdout (pickles, each after its length; stdout itself is sent to
stderr there, so a library's print cannot break a message) and exits when its stdin closes. It
starts at the second export a process asks for (one ``explorer profile`` exports once and pays
nothing), or at ``start()`` where a caller knows many will follow (a search pricing candidates
on a learned target: its start-up, about 1.7 s of CPU on this VM, is then paid before the first
price, not inside it). It is used once it has said it is ready; until then, and if it ever
fails, exports stay in the process, and why is logged at debug level.
``EXPLORER_EXPORT_HELPER=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["export_elsewhere", "family_config", "start", "structure"]

_READY = "ready"
_log = logging.getLogger(__name__)  # why a model was exported here after all
_lock = threading.Lock()  # the helper's state
_pipe = threading.Lock()  # its pipes
_state: dict[str, Any] = {"asked": 0, "child": None, "ready": None, "broken": False}


def structure(model: Any) -> tuple[Any, ...]:
    """Every submodule's class and every parameter's and buffer's shape: a model pruned or
    changed after it was built from its Config differs here."""
    modules = tuple((name, type(m).__qualname__) for name, m in model.named_modules())
    tensors = tuple(
        (name, tuple(t.shape)) for name, t in (*model.named_parameters(), *model.named_buffers())
    )
    return modules + tensors


def family_config(model: Any) -> Any:
    """The frozen family Config ``model`` was built from, or None (no Config, or one that is
    not hashable)."""
    config = getattr(model, "config", None)
    try:
        hash(config)
    except TypeError:
        return None
    return config


def _message(obj: Any) -> bytes:
    """``obj`` pickled, after its length."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("<Q", len(data)) + data


def _send(stream: BinaryIO, obj: Any) -> None:
    stream.write(_message(obj))
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the export helper closed its pipe")
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the export helper closed its pipe")
    return pickle.loads(data)  # the helper is this package run as a child of this process


def serve() -> None:
    """The helper's loop: ``(config, arrays, path, threads)`` in, the built model's
    ``structure`` (or the exception's one-line text) out, until stdin closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's; its exit ends us
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into a message
    import torch

    import search_spaces as ss
    from explorer.export import export_onnx

    requests = sys.stdin.buffer
    with tempfile.TemporaryDirectory(prefix="explorer-export-helper-") as tmp:
        # the exporter's first use costs about 1 s more: paid before the helper is used
        warm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
        export_onnx(warm, (torch.zeros(1, 3, 8, 8),), Path(tmp) / "warm.onnx", check=False)
    _send(answers, _READY)
    while True:
        try:
            config, arrays, path, threads = _receive(requests)
        except EOFError:
            return
        try:
            torch.set_num_threads(threads)
            model = ss.build(config).eval()
            inputs = tuple(torch.from_numpy(a) for a in arrays)
            export_onnx(model, inputs, path, check=False)
            _send(answers, structure(model))
        except Exception as exc:  # this model: the caller exports it itself, which says why
            _send(answers, f"{type(exc).__name__}: {exc}".splitlines()[0])


def _start() -> None:
    """Start the helper and a thread that waits for its first message (``_READY``); where
    this interpreter cannot be started again (none at ``sys.executable``), mark it failed."""
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "explorer.latency._export_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:  # exports stay in this process
        _log.debug("export helper not started: %s", exc)
        _state["broken"] = True
        return
    ready = threading.Event()

    def wait() -> None:
        try:
            if _receive(child.stdout) == _READY:
                ready.set()
                return
        except (EOFError, pickle.UnpicklingError):
            pass
        with _lock:
            _state["broken"] = True

    threading.Thread(target=wait, name="export-helper-start", daemon=True).start()
    _state["child"], _state["ready"] = child, ready


def _off() -> bool:
    return _state["broken"] or os.environ.get("EXPLORER_EXPORT_HELPER", "1") == "0"


def start(wait_s: float = 0.0) -> bool:
    """Start the helper now, if it is not running (and not turned off or failed), for a
    caller about to export many family models; wait up to ``wait_s`` for it to be ready.
    Whether it is ready."""
    with _lock:
        if not _off() and _state["child"] is None:
            _start()
        ready = _state["ready"]
    return ready is not None and ready.wait(wait_s) and not _state["broken"]


def _helper() -> subprocess.Popen[bytes] | str:
    """The helper once it is ready, starting it at the second call; else why not."""
    with _lock:
        if _off():
            return "turned off" if not _state["broken"] else "it failed"
        _state["asked"] += 1
        if _state["child"] is None:
            if _state["asked"] >= 2:
                _start()
            return "not started"
        return _state["child"] if _state["ready"].is_set() else "still starting"


def _here(model: Any, why: object) -> bool:
    """False (export ``model`` in this process), logging why."""
    _log.debug("export helper not used for %s: %s", type(model).__name__, why)
    return False


def export_elsewhere(model: Any, inputs: tuple[Any, ...], path: Path) -> bool:
    """Export ``model`` on ``inputs`` to ``path`` in the helper; False where it cannot (no
    Config, the helper not ready or failed, another structure): then export here."""
    import torch

    config = family_config(model)
    if config is None or not all(isinstance(t, torch.Tensor) for t in inputs):
        return _here(model, "not a family model on tensors")
    child = _helper()
    if isinstance(child, str):
        return _here(model, child)
    arrays = [t.detach().cpu().numpy() for t in inputs]
    try:
        request = _message((config, arrays, str(path), torch.get_num_threads()))
    except Exception as exc:  # a Config that does not pickle: this model is exported here
        return _here(model, exc)
    with _pipe:  # one request at a time
        try:
            child.stdin.write(request)
            child.stdin.flush()
            built = _receive(child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:  # it died: export here
            with _lock:
                _state["broken"] = True
            child.kill()
            return _here(model, exc)
    if isinstance(built, str):  # the helper's exception
        return _here(model, built)
    if built != structure(model):
        return _here(model, "another structure")
    return True


if __name__ == "__main__":
    serve()
