"""Budget-constrained, multi-objective, resumable architecture search on Optuna.

    >>> from explorer.budget import parse_budget
    >>> from explorer.search import SearchConfig, run_search
    >>> result = run_search(SearchConfig(device="orin-nano", budgets=(parse_budget("1e9flops"),)))
    >>> result.pareto_rows  # doctest: +SKIP

Flow of one trial (``_objective.Objective``): draw a family and its fields (``_space``), build,
profile, predict the latency on every known device, check the budgets; a candidate over
budget is recorded as infeasible without touching the data (macro-F1 0, its real cost, and a
positive constraint value the NSGA-II/TPE samplers use to rank it below every feasible one);
a feasible one trains under successive halving (``SearchConfig.rungs``: most candidates get
``min_epochs``, the top third of their family or the rung's front go on to ``epochs``), since
Optuna has no pruning for multi-objective studies. Objectives: maximise validation macro-F1,
minimise the cost (predicted latency on the device by default; the objectives are registered
in ``_objectives``). After the trials, the
confirmation stage (``_confirm``) retrains the front and the fitting paper presets with further
seeds; the front is decided on mean macro-F1 and reported with 95 % intervals.

The study lives in an Optuna RDB storage (``runs/<study>/study.db`` unless ``storage`` names
one, e.g. PostgreSQL); its settings are stored on it, so re-running resumes it and
``run_worker`` joins it from any machine; ``SearchConfig.workers`` > 1 starts such workers as
local processes (``_workers``), one core each. Trials left running by a killed process are marked
FAIL once their heartbeat is stale. Outputs (``_outputs.finalize``): results.csv, search.json,
checkpoints of the Pareto-optimal models, report.html.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._keys import StudyKey, TrialKey
from ._objectives import (
    SCORE,
    CostInputs,
    SearchObjective,
    get_objective,
    objective_names,
    profile_totals,
    register_objective,
)
from ._settings import (
    SAMPLERS,
    SEARCH_DATASET,
    SEARCH_EPOCHS,
    SEARCH_MIN_EPOCHS,
    SEARCH_SCREEN,
    SearchConfig,
    parse_duration,
)
from ._workers import default_workers

if TYPE_CHECKING:
    from ._frames import load_results
    from ._study import SearchResult, TrialEvent, open_study, run_search, run_worker

# Imported on first use: they import Optuna and torch (seconds), which the command line's
# --help does not need.
_LAZY = {
    "load_results": "._frames",
    "SearchResult": "._study",
    "TrialEvent": "._study",
    "open_study": "._study",
    "run_search": "._study",
    "run_worker": "._study",
}

__all__ = [
    "SAMPLERS",
    "SCORE",
    "SEARCH_DATASET",
    "SEARCH_EPOCHS",
    "SEARCH_MIN_EPOCHS",
    "SEARCH_SCREEN",
    "CostInputs",
    "SearchConfig",
    "SearchObjective",
    "SearchResult",
    "StudyKey",
    "TrialEvent",
    "TrialKey",
    "default_workers",
    "get_objective",
    "load_results",
    "objective_names",
    "open_study",
    "parse_duration",
    "profile_totals",
    "register_objective",
    "run_search",
    "run_worker",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
