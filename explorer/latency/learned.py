"""Learned kernel latency, the part prediction needs: find a device's kernel model, describe a
model as that machine's runtime runs it.

    >>> from explorer.latency.learned import kernel_model_for, predict_graph
    >>> kernels = kernel_model_for(device)  # None: no kernel file for this target
    >>> kernels.predict_ms(predict_graph(model, inputs, kernels))

A public module of its own, not only names of ``explorer.latency``: the package also exports
the calibrations, which price with ``explorer.prediction``; prediction importing the package
would close that circle, importing this module does not.
"""

from __future__ import annotations

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
]
