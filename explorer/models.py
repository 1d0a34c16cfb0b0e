"""Turn what a user names on the command line into a model and its example inputs.

MODEL may be:
- a preset name: ``ding2025``;
- a family, optionally with overrides: ``lu``, ``lu:frames=8,width_mult=0.5``,
  ``lu2025_f1:frames=8``;
- a checkpoint written by ``explorer train`` / ``search`` / ``prune`` (a ``.pt`` path);
- ``module:function`` (or ``path/to/file.py:function``) returning a model, or a
  ``(model, example_inputs)`` pair; a model without ``input_spec`` then needs the pair or an
  ``input_shape`` (e.g. ``explorer.zoo:resnet18`` at ``1x3x224x224``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import search_spaces as ss
from explorer.errors import UsageError
from explorer.memory import check_model_memory

__all__ = ["ResolvedModel", "resolve_model"]


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    """A model ready to profile, bench or export."""

    name: str
    model: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    config: Any = None  # the family Config, when the model comes from search_spaces
    input_spec: ss.InputSpec | None = None


def _is_family_spec(text: str) -> bool:
    head = text.partition(":")[0].strip()
    return head in ss.presets() or head in ss.list_families()


def resolve_model(
    text: str,
    *,
    batch_size: int = 1,
    weights: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    activations: bool = False,
) -> ResolvedModel:
    """Resolve ``text`` (see the module docstring) into a ``ResolvedModel`` in eval mode.

    A preset, family spec or checkpoint is sized before it is built (``explorer.memory``):
    weights and example inputs at ``batch_size``, and with ``activations`` one forward's
    activations too (for callers that run the real forward, such as bench and export).

    ``weights`` names a plain ``state_dict`` file (``--weights``) loaded into the model built
    from ``text`` (see ``explorer.weights.load_weights`` for what it accepts and raises).
    ``input_shape`` is the one input of a ``module:function`` model that has no
    ``input_spec`` (a standard network such as ``explorer.zoo:mobilenet_v2``).
    """
    resolved = _resolve(
        text.strip(), batch_size=batch_size, input_shape=input_shape, activations=activations
    )
    if weights is not None:
        from explorer.weights import load_weights

        load_weights(resolved.model, weights, model_name=f"MODEL {text.strip()!r}")
        resolved.model.eval()
    return resolved


def _resolve(
    text: str,
    *,
    batch_size: int,
    input_shape: tuple[int, ...] | None = None,
    activations: bool = False,
) -> ResolvedModel:
    if not text:
        raise UsageError(
            "MODEL is empty: name a preset (e.g. ding2025), family:key=value, "
            "a checkpoint .pt file, or module:function"
        )
    if _is_family_spec(text):
        config = ss.config_from_string(text)
        check_model_memory(
            config, batch_size=batch_size, what=f"MODEL {text!r}", activations=activations
        )
        model = ss.build(config)
        return ResolvedModel(
            name=text,
            model=model,
            example_inputs=ss.example_inputs(model, batch_size),
            config=config,
            input_spec=model.input_spec,
        )
    path = Path(text)
    if path.suffix in (".pt", ".pth", ".ckpt") or path.is_file():
        return _from_checkpoint(path, batch_size=batch_size, activations=activations)
    if ":" in text:
        return _from_callable(text, batch_size=batch_size, input_shape=input_shape)
    hint = ""
    import difflib

    close = difflib.get_close_matches(text, [*ss.presets(), *ss.list_families()], n=1)
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    raise UsageError(
        f"unknown MODEL {text!r}{hint}: name a preset ({', '.join(sorted(ss.presets())[:6])}, "
        "...), family:key=value, a checkpoint .pt file, or module:function; "
        "see `explorer spaces`"
    )


def _from_checkpoint(path: Path, *, batch_size: int, activations: bool = False) -> ResolvedModel:
    if not path.exists():
        raise UsageError(f"checkpoint {str(path)!r} does not exist: check the path")
    from explorer.checkpoints import load_checkpoint

    ckpt = load_checkpoint(path)
    check_model_memory(
        ckpt.config,
        batch_size=batch_size,
        what=f"checkpoint {str(path)!r}",
        activations=activations,
    )
    model = ckpt.build_model()
    model.eval()
    spec = getattr(model, "input_spec", None)
    return ResolvedModel(
        name=path.stem,
        model=model,
        example_inputs=ss.example_inputs(spec, batch_size),
        config=ckpt.config,
        input_spec=spec,
    )


def _from_callable(
    text: str, *, batch_size: int, input_shape: tuple[int, ...] | None = None
) -> ResolvedModel:
    target, _, func_name = text.rpartition(":")
    try:
        if target.endswith(".py"):
            file = Path(target)
            if not file.is_file():
                raise UsageError(f"file {target!r} in MODEL {text!r} does not exist")
            spec = importlib.util.spec_from_file_location(file.stem, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[file.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        hint = (
            " (or explorer.zoo:NAME: the same networks)" if target.startswith("torchvision") else ""
        )
        raise UsageError(
            f"cannot import {target!r} from MODEL {text!r} ({exc}); use module:function with the "
            f"module on PYTHONPATH, or path/to/file.py:function{hint}"
        ) from None
    except Exception as exc:  # e.g. torchvision built for another torch: its C ops fail
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"importing {target!r} from MODEL {text!r} failed ({first}); for torchvision "
            "install the build matching your torch, or use explorer.zoo:NAME (same networks)"
        ) from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise UsageError(f"{target!r} has no callable {func_name!r} (from MODEL {text!r})")
    out = fn()
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], nn.Module):
        model, inputs = out
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    elif isinstance(out, nn.Module):
        model = out
        spec = getattr(model, "input_spec", None)
        if spec is None and input_shape is not None:
            inputs = (torch.zeros(input_shape),)
        elif spec is None:
            raise UsageError(
                f"{text} returned a model without input_spec: return (model, example_inputs) "
                "instead, or give its input shape (--input-shape 1x3x224x224)"
            )
        else:
            inputs = ss.example_inputs(spec, batch_size)
    else:
        raise UsageError(
            f"{text} returned {type(out).__name__}: it must return an nn.Module or "
            "(model, example_inputs)"
        )
    model.eval()
    return ResolvedModel(
        name=text,
        model=model,
        example_inputs=inputs,
        input_spec=getattr(model, "input_spec", None),
    )
