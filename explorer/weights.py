"""Load a plain PyTorch ``state_dict`` (a researcher's own trained weights) into a model.

    >>> model = resolve_model("ding2025").model
    >>> load_weights(model, "my_ding.pth")

The file is read with ``torch.load(..., weights_only=True)``: tensors and plain containers only,
never pickled code. It may hold the ``state_dict`` itself or a dict with a ``"state_dict"``
key (what training scripts and ``explorer`` checkpoints save); keys saved from
``nn.DataParallel`` (``module.`` prefix) are accepted too.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.errors import CheckpointError, UsageError

__all__ = ["load_weights"]

_SHOWN = 3  # keys named per kind in the one-line error


def load_weights(model: nn.Module, path: str | Path, *, model_name: str = "MODEL") -> None:
    """Copy the tensors of the state_dict in ``path`` into ``model`` (all keys, exact shapes).

    Args:
        model: the model built from the MODEL spec the weights were trained with.
        path: a ``.pt``/``.pth`` file holding a ``state_dict`` or ``{"state_dict": ...}``.
        model_name: how the user named the model, for the error message.

    Raises:
        UsageError: ``path`` does not exist.
        CheckpointError: the file is not readable with ``weights_only=True``, holds no
            state_dict, or its keys or shapes differ from the model's (the one-line message
            names the first few missing, unexpected and mis-shaped keys and their counts).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--weights file {str(path)!r} does not exist: check the path")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"--weights {str(path)!r} cannot be read as plain tensors (torch.load with "
            f"weights_only=True: {first[:160]}): save it with torch.save(model.state_dict(), "
            "path)"
        ) from None
    state = _state_dict_of(data, path)
    ours = model.state_dict()
    if all(k.startswith("module.") for k in state) and not any(
        k.startswith("module.") for k in ours
    ):
        state = {k.removeprefix("module."): v for k, v in state.items()}  # nn.DataParallel
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    misshaped = [
        f"{k} file {_shape(state[k])} model {_shape(ours[k])}"
        for k in ours
        if k in state and tuple(state[k].shape) != tuple(ours[k].shape)
    ]
    if missing or unexpected or misshaped:
        parts = [
            _listed(what, keys)
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mis-shaped", misshaped),
            )
            if keys
        ]
        raise CheckpointError(
            f"--weights {str(path)!r} does not fit {model_name} ({len(ours)} tensors): "
            f"{'; '.join(parts)}: build MODEL with the settings the weights were trained with "
            "(preset, family:key=value or module:function)"
        )
    model.load_state_dict(state, strict=True)


def _state_dict_of(data: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if (
        not isinstance(data, Mapping)
        or not data
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())
    ):
        raise CheckpointError(
            f"--weights {str(path)!r} holds no state_dict (a dict of name -> tensor, or a dict "
            f"with a 'state_dict' key; got {type(data).__name__}): save it with "
            "torch.save(model.state_dict(), path)"
        )
    return dict(data)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"


def _listed(what: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
    return f"{len(keys)} {what} ({shown})"
