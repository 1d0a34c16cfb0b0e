"""Learned kernel latency, the part prediction needs: find a device's kernel model, describe a
model as that machine's runtime runs it.

    >>> from explorer.latency.learned import kernel_model_for, predict_graph
    >>> kernels = kernel_model_for(device)  # None: no kernel file for this target
    >>> kernels.predict_ms(predict_graph(model, inputs, kernels))

A caller about to price many family models calls ``start_export_helper()`` first, so the
process that exports them (``_export_helper``) starts before the first price, not inside it.

A public module of its own, not only names of ``explorer.latency``: the package also exports
the calibrations, which price with ``explorer.prediction``; prediction importing the package
would close that circle, importing this module does not.
"""

from __future__ import annotations

from ._export_helper import start as start_export_helper
from ._kernels import KernelGraph, KernelNode, describe, describe_onnx
from ._learned import (
    KernelModel,
    kernel_file_for,
    kernel_model_for,
    kernels_apply,
    load_kernel_model,
    predict_graph,
)

__all__ = [
    "KernelGraph",
    "KernelModel",
    "KernelNode",
    "describe",
    "describe_onnx",
    "kernel_file_for",
    "kernel_model_for",
    "kernels_apply",
    "load_kernel_model",
    "predict_graph",
    "start_export_helper",
]
