"""What the reports need from ``explorer``: models profiled and timed on devices, as the plain
records ``reports`` charts (``ModelCost``, ``Timing``, ``DeviceRoof``).

``reports`` assembles every page and never imports ``explorer``; the CLI calls these to gather
the data, hands it to ``reports.roofline_report`` / ``reports.search_report`` and writes the
file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import reports

if TYPE_CHECKING:
    from device_profiles import DeviceProfile

__all__ = ["CostedModels", "best_trial_breakdown", "cost_models"]


@dataclass(frozen=True, kw_only=True)
class CostedModels:
    """Models profiled for a report, with their predicted timing on each device."""

    costs: tuple[reports.ModelCost, ...]
    timings: Mapping[tuple[str, str], reports.Timing] = field(default_factory=dict)


def cost_models(model_names: Sequence[str], devices: Sequence[DeviceProfile]) -> CostedModels:
    """Resolve, profile and predict each MODEL (preset, ``family:k=v``, checkpoint, ...) on
    every device; timings are keyed by (model name as given, device address).

    Raises:
        UsageError, CheckpointError, ...: as ``explorer.models.resolve_model``.
    """
    from explorer.models import resolve_model
    from explorer.profiling import profile_report

    costs, timings = [], {}
    for name in model_names:
        resolved = resolve_model(name)
        rep = profile_report(
            resolved.model, resolved.example_inputs, name=resolved.name, devices=devices
        )
        family = _family(resolved.config)
        costs.append(reports.ModelCost.from_profile(rep.profile, name=name, family=family))
        for device, pred in zip(devices, rep.predictions, strict=True):
            timings[(name, device.address)] = reports.Timing.from_prediction(pred)
    return CostedModels(costs=tuple(costs), timings=timings)


def best_trial_breakdown(run: reports.RunData) -> tuple[reports.TrialBreakdown | None, str]:
    """Rebuild and profile the run's best trial (``reports.best_trial``) and predict it on the
    search's first device: (the breakdown, "") or (None, a one-line note why there is none).
    An old or foreign run that cannot be rebuilt is a note, not an error: the rest of the
    report still stands."""
    import device_profiles
    import search_spaces
    from explorer.prediction import predict_latency
    from explorer.profiling import profile_model

    best = reports.best_trial(run)
    if best is None:
        return None, reports.NO_TRAINED_TRIAL
    try:
        config = search_spaces.config_from_dict(json.loads(best.config_json))
        model = search_spaces.build(config)
        profile = profile_model(model, search_spaces.example_inputs(model), name="best")
    except Exception as exc:  # an old or foreign run: the rest of the report still stands
        reason = str(exc).split(";")[0][:160]
        return None, f"trial {best.number} could not be rebuilt for a breakdown ({reason})"
    device, timing = None, None
    if best.device_key:
        try:
            dev = device_profiles.get(best.device_key)
            device = reports.DeviceRoof.from_profile(dev)
            timing = reports.Timing.from_prediction(predict_latency(profile, dev))
        except device_profiles.DeviceError:
            pass
    cost = reports.ModelCost.from_profile(profile, name=best.name)
    return reports.TrialBreakdown(trial=best, cost=cost, timing=timing, device=device), ""


def _family(config: object) -> str:
    """The registered family of a config; "" for none or a config from elsewhere (no family
    colour in the charts, nothing else lost)."""
    if config is None:
        return ""
    import search_spaces

    try:
        return search_spaces.family_of(config).name
    except Exception:
        return ""
