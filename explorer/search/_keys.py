"""The names a search stores its records under, on the Optuna study and on its trials.

Everything a report needs is a trial user attribute (``trial.user_attrs[TrialKey.FEASIBLE]``),
so the results can be rebuilt from the storage alone, by any process; the study's user
attributes hold the settings, the papers' presets and the confirmation stage's evaluations
and claims. Two kinds of names are not listed here: the profile totals are stored under their
own names (``_objectives.PROFILE_TOTALS``), and an objective with a column of its own under
that column (``SearchObjective.own_column``, e.g. ``host_ms``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["StudyKey", "TrialKey"]


class TrialKey:
    """Keys of a trial's user attributes (some only once it is trained)."""

    FAMILY: Final = "family"
    CONFIG: Final = "config"  # search_spaces.config_to_dict of the drawn config
    FEASIBLE: Final = "feasible"  # within every budget (False for an invalid config too)
    REASON: Final = "reason"  # why not feasible: "over budget: ..." or "invalid config: ..."
    PREDICTED_MS: Final = "predicted_ms"  # device key -> predicted ms
    PREDICTED_RANGE_MS: Final = "predicted_range_ms"  # device key -> [low, high or None]
    BUDGET_USAGE: Final = "budget_usage"  # budget label -> used / limit
    CONSTRAINT: Final = "constraint"  # the samplers' constraint values (<= 0: feasible)
    PROFILE_SECONDS: Final = "profile_seconds"
    FEATURES_SECONDS: Final = "features_seconds"  # building (or reading) its input features
    MACRO_F1: Final = "macro_f1"
    ACCURACY: Final = "accuracy"
    F1_CURVE: Final = "f1_curve"  # validation macro-F1 after each epoch
    EPOCHS: Final = "epochs"
    STOPPED_EARLY: Final = "stopped_early"  # why training stopped before the full fidelity
    TRAIN_SECONDS: Final = "train_seconds"
    CHECKPOINT: Final = "checkpoint"  # path relative to the run directory
    ERROR: Final = "error"  # what a failed trial raised


class StudyKey:
    """Keys of the study's user attributes."""

    SETTINGS: Final = "explorer.search"  # SearchConfig.to_dict()
    REFERENCES: Final = "explorer.references"  # the papers' presets as rows
    CONFIRM_PREFIX: Final = "explorer.confirm:"  # + "<kind>:<id>:<k>": one evaluation
    CLAIM_PREFIX: Final = "explorer.claim:"  # + an evaluation's key: a process trains it
