"""Building blocks the families share: activations by name, channel rounding, Mish, and
the check of per-stage tuples (widths, repeats, strides).

A family adds an activation here (one table for all of them; each family's ``Config`` still
lists the names it allows) rather than writing its own lookup.

Pruning markers. ``explorer prune`` keeps some modules intact: recurrent layers, attention,
fusion cores. A family marks its own such modules with class attributes, which pruning reads
(a user's model may set them too):

- ``prune_protected: ClassVar[str]``: keep the whole module intact; the value is the reason
  pruning reports (``"attention"``, ``"fusion core"``).
- ``prune_passthrough: ClassVar[bool]``: the module's parameters do not depend on how many
  channels it receives and it returns as many as it gets (Triplet Attention's Z-pool gates),
  so channels removed before it are removed after it too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._spec import ConfigError

__all__ = ["ACTIVATIONS", "Mish", "check_int_tuple", "make_activation", "make_divisible"]


class Mish(nn.Module):
    """x·tanh(softplus(x)), written out so ONNX opset 17 needs no Mish operator."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


# name -> module class; "swish" is SiLU under the name Ishtiaq et al. use
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "hardswish": nn.Hardswish,
    "mish": Mish,
    "prelu": nn.PReLU,
}


def make_activation(name: str, channels: int = 1) -> nn.Module:
    """A fresh activation module by name (a key of ``ACTIVATIONS``).

    Args:
        name: the activation; the family's ``Config`` has already checked it is one it allows.
        channels: PReLU's number of slopes (one per channel); ignored by the others.

    Raises:
        KeyError: ``name`` is not in ``ACTIVATIONS`` (a family allowed a name not added here).
    """
    if name == "prelu":
        return nn.PReLU(channels)
    return ACTIVATIONS[name]()


def make_divisible(value: float, divisor: int) -> int:
    """MobileNet/GhostNet channel rounding: the nearest multiple of ``divisor`` (at least
    ``divisor``), moved up one step when rounding lost more than 10 % of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def check_int_tuple(
    owner: str,
    name: str,
    value: object,
    *,
    low: int,
    high: int,
    min_len: int = 1,
    max_len: int = 8,
    length: int | None = None,
    example: str = "",
) -> None:
    """Raise ``ConfigError`` unless ``value`` is a tuple of integers in ``[low, high]`` with
    ``length`` items (or ``min_len`` to ``max_len``); per-stage widths, repeats, strides."""
    lengths = f"exactly {length}" if length is not None else f"{min_len} to {max_len}"
    ok = isinstance(value, tuple) and (
        len(value) == length if length is not None else min_len <= len(value) <= max_len
    )
    ok = ok and all(
        isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value
    )
    if not ok:
        hint = f", e.g. {example}" if example else ""
        raise ConfigError(
            f"{owner}.{name}={value!r} is invalid: must be a tuple of {lengths} integers "
            f"in [{low}, {high}]{hint}"
        )
