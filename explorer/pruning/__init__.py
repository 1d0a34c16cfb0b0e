"""Structural pruning of trained networks to a device budget (``explorer prune``).

    >>> from explorer.pruning import prune_checkpoint
    >>> report = prune_checkpoint("model.pt", device="rpi4", budget="50%flops", out="small.pt")

``prune_to_budget`` is the library core (Torch-Pruning with the unsafe parts kept intact);
``prune_checkpoint`` adds loading, fine-tuning, evaluation, the safe checkpoint and timings,
and returns a ``PruneReport`` (the before/after table; ``to_dict()`` is JSON-safe).
"""

from __future__ import annotations

from ._core import (
    IMPORTANCES,
    PruneResult,
    PruneStep,
    model_costs,
    protected_layers,
    prune_to_budget,
)
from ._report import DeploymentReport, FinetuneStep, PruneCosts, PruneReport
from ._workflow import parse_prune_budget, prune_checkpoint

__all__ = [
    "IMPORTANCES",
    "DeploymentReport",
    "FinetuneStep",
    "PruneCosts",
    "PruneReport",
    "PruneResult",
    "PruneStep",
    "model_costs",
    "parse_prune_budget",
    "protected_layers",
    "prune_checkpoint",
    "prune_to_budget",
]
