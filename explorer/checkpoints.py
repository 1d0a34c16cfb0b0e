"""Safe checkpoints: one ``.pt`` file that ``torch.load(path, weights_only=True)`` reads.

Layout (a plain dict of JSON-like values and tensors, never pickled modules)::

    format          "explorer-checkpoint"
    format_version  2 (1: before ``digest``)
    family          e.g. "ding"
    config          config_to_dict(model.config) (JSON-safe, with "family")
    input_spec      InputSpec.to_dict()
    class_names     list of str
    state_dict      name -> tensor
    shapes          name -> list of int, for every state_dict entry
    metrics         JSON-safe dict (validation metrics), may be empty
    extra           JSON-safe dict (training settings, audio normalisation, pruning notes)
    digest          "sha256:<hex>" of every entry above (``_digest``), from format_version 2

Integrity: on load the zip's CRC-32 of every member is checked, then (format_version >= 2) the
SHA-256 digest is recomputed over the tensors' bytes (in key order, with dtype and shape) and
the metadata; a flipped bit or an edit is refused in one line. Files of format_version 1
predate the digest: they load after the CRC check alone (``Checkpoint.integrity`` says so).

``shapes`` lets a pruned model be rebuilt: ``Checkpoint.build_model`` builds the model from its
config and, where a stored shape differs, replaces that Conv/Linear/BatchNorm/LayerNorm with one
of the stored shape before loading the weights (``_adapt_to_shapes``, the pruning hook).
Files are written to a temporary file and renamed into place, so an interrupted save never
leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import search_spaces as ss
from explorer.errors import CheckpointError
from explorer.files import atomic_write, irregular_reason

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "explorer-checkpoint"
FORMAT_VERSION = 2
_DIGEST_SINCE = 2  # format_version 1 files were written before the digest existed


@dataclass(frozen=True, kw_only=True, eq=False)
class Checkpoint:
    """A loaded checkpoint; ``build_model()`` rebuilds the network with its weights."""

    path: str
    family: str
    config: Any  # the family's Config
    input_spec: ss.InputSpec
    class_names: tuple[str, ...]
    state_dict: Mapping[str, torch.Tensor]
    shapes: Mapping[str, tuple[int, ...]]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    integrity: str = "sha256"  # "sha256": digest verified; "crc32": a version-1 file, CRCs only

    def build_model(self) -> ss.AVModel:
        """The model, with this checkpoint's weights loaded (pruned shapes restored), in eval mode.

        Raises:
            CheckpointError: the weights do not fit the rebuilt model.
        """
        model = ss.build(self.config)
        _adapt_to_shapes(model, self.shapes)
        try:
            model.load_state_dict(dict(self.state_dict), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"checkpoint {self.path!r}: its weights do not fit a {self.family} model built "
                f"from its config ({first}); the file is damaged or was edited"
            ) from None
        model.eval()
        return model


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "to_dict"):
        return _json_safe(value.to_dict())
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _digest(data: Mapping[str, Any]) -> str:
    """SHA-256 over the metadata (canonical JSON) and every tensor's dtype, shape and bytes."""
    h = hashlib.sha256()
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "digest")}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":"), default=str).encode())
    state = data["state_dict"]
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"\n{name}|{tensor.dtype}|{list(state[name].shape)}\n".encode())
        h.update(tensor.view(torch.uint8).numpy())
    return f"sha256:{h.hexdigest()}"


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    metrics: Any = None,
    class_names: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a family model with ``config`` and ``input_spec``) to ``path``.

    ``metrics`` may be a ``Metrics``/dict; ``class_names`` default to numbered classes.
    Returns the path written.

    Raises:
        CheckpointError: the model has no registered family config.
    """
    config = getattr(model, "config", None)
    try:
        config_dict = ss.config_to_dict(config)
    except ss.ConfigError:
        raise CheckpointError(
            f"cannot checkpoint a {type(model).__name__}: only models built by search_spaces "
            "(with a registered family config) can be saved; build it with search_spaces.build"
        ) from None
    spec = model.input_spec
    names = (
        list(class_names)
        if class_names is not None
        else [f"class_{i}" for i in range(spec.num_classes)]
    )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": config_dict["family"],
        "config": config_dict,
        "input_spec": spec.to_dict(),
        "class_names": names,
        "state_dict": state,
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "metrics": _json_safe(metrics) if metrics is not None else {},
        "extra": _json_safe(dict(extra or {})),
    }
    payload["digest"] = _digest(payload)
    path = Path(path)
    with atomic_write(path, what="checkpoint") as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``: nothing in the file is executed.

    Raises:
        CheckpointError: missing, unreadable, corrupt, unsafe (pickled code), another tool's
            file, or a newer format version.
    """
    path = Path(path)
    where = str(path)
    reason = irregular_reason(path)  # a FIFO would block the read forever
    if reason:
        raise CheckpointError(f"checkpoint {where!r} {reason}: check the path")
    _check_crcs(path, where)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the file is refused anyway
            warnings.simplefilter("ignore", UserWarning)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = " ".join(str(exc).split())[:160]
        raise CheckpointError(
            f"checkpoint {where!r} is not safe to load (it contains objects other than tensors "
            f"and plain data: {reason}); only load checkpoints written by explorer"
        ) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        KeyError,
        AttributeError,
        TypeError,
        IndexError,
        UnicodeDecodeError,
    ) as exc:
        raise CheckpointError(
            f"checkpoint {where!r} is unreadable or corrupt ({type(exc).__name__}); "
            "write it again with explorer train/search/prune"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{where!r} is not an explorer checkpoint (no format={FORMAT!r} entry; another "
            "tool's file?): use a .pt written by explorer train, search or prune"
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {where!r} has format_version={version!r}; this explorer reads up to "
            f"{FORMAT_VERSION}: upgrade explorer"
        )
    try:
        config = ss.config_from_dict(data["config"])
        spec = ss.InputSpec.from_dict(data["input_spec"])
        state = data["state_dict"]
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise TypeError("state_dict is not a mapping of tensors")
        shapes = _checked_shapes(data.get("shapes", {}), state)
        class_names = _checked_class_names(data.get("class_names", ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {where!r} is malformed ({' '.join(str(exc).split())[:160]}); "
            "write it again with explorer"
        ) from None
    integrity = _check_digest(data, version, where)
    return Checkpoint(
        path=where,
        family=str(data.get("family", "")),
        config=config,
        input_spec=spec,
        class_names=class_names,
        state_dict=state,
        shapes=shapes or {k: tuple(v.shape) for k, v in state.items()},
        metrics=data.get("metrics", {}) or {},
        extra=data.get("extra", {}) or {},
        format_version=version,
        integrity=integrity,
    )


def _check_crcs(path: Path, where: str) -> None:
    """Refuse a zip whose members fail their CRC-32 (``torch.load`` does not check them)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return  # not a zip (a legacy or foreign file): torch.load refuses it with its reason
    if bad is not None:
        raise CheckpointError(
            f"checkpoint {where!r} is corrupt: member {bad!r} fails its CRC-32 check (a damaged "
            "copy or an edit); copy it again or write it again with explorer"
        )


def _check_digest(data: Mapping[str, Any], version: int, where: str) -> str:
    """``"sha256"`` when the stored digest matches, ``"crc32"`` for version-1 files."""
    stored = data.get("digest")
    if version < _DIGEST_SINCE and stored is None:
        return "crc32"
    if not isinstance(stored, str) or not isinstance(data.get("state_dict"), Mapping):
        raise CheckpointError(
            f"checkpoint {where!r} (format_version {version}) has no valid digest although "
            f"every version >= {_DIGEST_SINCE} is written with one: it was edited; write it "
            "again with explorer"
        )
    try:
        actual = _digest(data)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        actual = None  # not tensors, or tensors that cannot be hashed: refused below
    if actual != stored:
        raise CheckpointError(
            f"checkpoint {where!r} is corrupt: its SHA-256 digest differs from the one stored "
            "when it was written (a flipped bit or an edit); write it again with explorer"
        )
    return "sha256"


def _checked_shapes(raw: Any, state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """The stored ``shapes``, which must repeat the stored tensors' shapes: an edited entry
    would otherwise rebuild a layer of any size (a 1.4 TB Linear) before the weights load."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"shapes is a {type(raw).__name__}, not a mapping of name -> list of int")
    shapes: dict[str, tuple[int, ...]] = {}
    for key, dims in raw.items():
        if not isinstance(dims, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims
        ):
            raise ValueError(f"shapes[{str(key)[:40]!r}] is {str(dims)[:40]}, not a list of int")
        tensor = state.get(key)
        if tensor is None or tuple(tensor.shape) != tuple(dims):
            stored = None if tensor is None else list(tensor.shape)
            raise ValueError(
                f"shapes[{str(key)[:40]!r}] = {list(dims)[:8]} but the stored tensor is {stored}"
            )
        shapes[key] = tuple(dims)
    return shapes


def _checked_class_names(raw: Any) -> tuple[str, ...]:
    """The stored class names: a list of at most 10,000 non-empty strings."""
    if not isinstance(raw, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in raw):
        raise TypeError(f"class_names is {str(raw)[:40]}, not a list of non-empty strings")
    if len(raw) > 10_000:
        raise ValueError(f"class_names holds {len(raw)} names, more than 10,000")
    return tuple(raw)


# --- rebuilding pruned models ------------------------------------------------------------


def _adapt_to_shapes(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Replace each layer whose stored weight shape differs from the built one (pruning hook).

    Structured pruning (Torch-Pruning) only removes channels, so every changed layer keeps
    its type and hyper-parameters except its channel counts: a Conv gets the stored
    ``out_channels`` / ``in_channels`` (``groups`` follows a depthwise layer), a Linear its
    features, a BatchNorm/LayerNorm its size. Parameters held directly by custom modules
    must keep their shapes.
    """
    for name, module in list(model.named_modules()):
        key = f"{name}.weight" if name else "weight"
        if key not in shapes or not hasattr(module, "weight") or module.weight is None:
            continue
        want = tuple(shapes[key])
        if tuple(module.weight.shape) == want:
            continue
        new = _resized(module, want)
        if new is None:
            raise CheckpointError(
                f"cannot rebuild layer {name!r} ({type(module).__name__}) with stored shape "
                f"{want}: only Conv, Linear and normalisation layers can change shape"
            )
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)


def _resized(module: nn.Module, shape: tuple[int, ...]) -> nn.Module | None:
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
        out_ch = shape[0]
        groups = out_ch if depthwise else module.groups
        in_ch = shape[1] * groups
        return type(module)(
            in_ch,
            out_ch,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=groups,
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
        )
    if isinstance(module, nn.Linear):
        return nn.Linear(shape[1], shape[0], bias=module.bias is not None)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return type(module)(
            shape[0],
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
    if isinstance(module, nn.LayerNorm):
        return nn.LayerNorm(shape, eps=module.eps, elementwise_affine=module.elementwise_affine)
    if isinstance(module, nn.PReLU):
        return nn.PReLU(shape[0])
    return None
