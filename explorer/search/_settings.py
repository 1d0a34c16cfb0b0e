"""``SearchConfig``: every setting of a search, stored on the study so workers can join it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.budget import Budget, budgets_to_texts, parse_budget
from explorer.errors import UsageError

from ._objectives import get_objective

__all__ = [
    "SAMPLERS",
    "SEARCH_DATASET",
    "SEARCH_EPOCHS",
    "SEARCH_MIN_EPOCHS",
    "SEARCH_SCREEN",
    "SEARCH_VAL_FRACTION",
    "SearchConfig",
    "default_families",
    "parse_duration",
]

SAMPLERS = ("screen", "random", "nsga2", "tpe", "gp")
# The default data of a search: 10 synthetic actors x 8 classes x 3 clips = 240 clips, of which
# SEARCH_VAL_FRACTION's actors (4) are held out: 144 training clips as before (8 actors with 2
# held out), and 96 validation clips from 4 actors instead of 48 from 2, so one candidate's
# score moves less with the held-out actors' quirks (inference is cheap; training time is
# unchanged; only feature extraction grows by a quarter).
SEARCH_DATASET = "synthetic:actors=10,clips_per_class=3"
SEARCH_VAL_FRACTION = 0.4
# Training epochs per trial (the low fidelity): few enough for 32 trials in 10 minutes on two
# cores. With the search's batch of 8 and lr 1e-3 (SearchConfig) a 144-clip training split
# gives 270 Adam steps: 3 random candidates of each family reached mean macro-F1 0.30-0.46
# (lu 0.36, yang 0.30, ishtiaq 0.35), against 0.16-0.38 with batches of 32 at lr 3e-3 (too
# few steps) and ishtiaq collapsing to one class at batch 8, lr 3e-3 (wide layers die).
SEARCH_EPOCHS = 15
# Successive halving: every feasible candidate trains SEARCH_MIN_EPOCHS epochs, the top third
# (of its family, or on the rung's front) goes on to 9, and the top third of those to 15. Most
# of a search's time is training (features are memoised), so the first rung sets how many
# trials fit in the default 4.5 minutes: at 3 epochs (was 5), with a family compared from its
# third candidate on (was its fifth; with ~6 candidates per family in 40 trials the rule
# rarely applied), a trial averages about 6 epochs instead of about 13.
SEARCH_MIN_EPOCHS = 3
# Candidates the screen sampler prices per trial (about 0.3 s each on this 2-core machine,
# none trains): replayed 1000 times on 108 trained candidates (benchmarks/screen_replay.py),
# 16 rather than 8 raised the hypervolume at 20 trials from 0.537 to 0.550 (standard error
# 0.001; random reaches 0.536 at 40), for ~2.5 s more per trial.
SEARCH_SCREEN = 16
SEARCH_EARLY_STOP_STARTUP = 2

# Settings that define the problem: a resumed study or a worker must agree on them, or the
# trials already stored would not be comparable with new ones.
_PROBLEM_FIELDS = (
    "device",
    "budgets",
    "families",
    "objective",
    "dataset",
    "split",
    "val_fraction",
    "epochs",
    "batch_size",
    "lr",
    "max_frames",
    "max_image_px",
    "data_seed",
)


def default_families() -> tuple[str, ...]:
    """Every registered family (``hybrid`` included)."""
    import search_spaces as ss

    return tuple(ss.list_families())


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (``postgresql://u:***@host/db``)."""
    head, sep, tail = url.partition("://")
    if "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"
    return url


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """The settings of one ``explorer search`` (see ``explorer search --help`` for each).

    ``budgets`` are parsed ``Budget``s; ``storage`` is an Optuna storage URL (``None``: a
    SQLite file ``study.db`` in ``out_dir``). ``epochs`` is the full training fidelity of a
    trial; ``min_epochs`` the first rung of successive halving, ``reduction`` the share
    (1/reduction) of a rung promoted to the next, ``early_stop_startup`` the peers a rung
    needs before it stops anyone (see ``explorer.search._objective``). ``confirm_seeds``
    extra seeds retrain each front member and trained paper preset after the search
    (``explorer.search._confirm``); ``confirm_share`` is the part of ``timeout_s`` kept for
    that stage.
    ``paper_starts``: a family whose paper model fits the budget starts from it, projected
    onto the capped space (``ding2025`` with a 48-px face), so the front holds the papers.
    ``max_frames`` / ``max_image_px`` cap the video inputs the space may draw, which bounds
    feature-extraction and training time on a laptop (``None``: no cap). ``threads`` is
    torch's intra-op thread count while the search runs: the candidates are small, and on two
    busy cores one thread trained a lu candidate 9x faster than two (OpenMP spin-waits); use
    one worker per core to use more cores: ``workers`` > 1 starts ``workers - 1`` extra local
    worker processes on the same storage (see ``explorer.search._workers``).
    """

    device: str
    budgets: tuple[Budget, ...] = ()
    families: tuple[str, ...] = ()
    trials: int = 40
    timeout_s: float | None = None
    # screen (benchmarks/search_efficiency.py, 3 seeds): under 1e9flops its log-axis
    # hypervolume at 20 trials passes random's at 40 (0.567 against 0.560, within one sd; no
    # other sampler beat random there), under a 0.2-ms budget 2.2x random's at 20 trials
    # (random spent 49 of 60 trials on candidates over the budget, the screen 19, all in its
    # random start)
    sampler: str = "screen"
    population: int = 8
    screen: int = SEARCH_SCREEN
    seed: int = 0
    objective: str = "latency"
    dataset: str = SEARCH_DATASET
    split: str = "actor"
    val_fraction: float = SEARCH_VAL_FRACTION
    data_seed: int = 0
    study: str = ""
    storage: str | None = None
    out_dir: Path = field(default_factory=lambda: Path("runs"))
    epochs: int = SEARCH_EPOCHS
    batch_size: int = 8
    lr: float = 1e-3
    max_frames: int | None = 2
    max_image_px: int | None = 48
    min_epochs: int = SEARCH_MIN_EPOCHS
    reduction: int = 3
    early_stop_startup: int = SEARCH_EARLY_STOP_STARTUP
    confirm_seeds: int = 2
    confirm_share: float = 0.3
    heartbeat_s: int = 10
    reference_presets: bool = True
    paper_starts: bool = True
    threads: int = 1
    workers: int = 1
    # profile files outside the registry, by key: their absolute paths (``--device FILE``)
    device_files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise UsageError(f"--sampler {self.sampler!r} is unknown: use one of {SAMPLERS}")
        get_objective(self.objective)  # an unknown name: UsageError listing the registered
        for name, low in (
            ("trials", 1),
            ("epochs", 1),
            ("batch_size", 1),
            ("population", 2),
            ("screen", 1),
            ("workers", 1),
            ("heartbeat_s", 1),
            ("min_epochs", 1),
            ("reduction", 2),
            ("early_stop_startup", 1),
            ("confirm_seeds", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise UsageError(
                    f"--{name.replace('_', '-')}={value!r} must be an integer >= {low}"
                )
        if self.heartbeat_s > 86_400:  # a trial is failed after 3 silent heartbeats
            raise UsageError(
                f"--heartbeat={str(self.heartbeat_s)[:20]} must be at most 86,400 s (a day)"
            )
        for name in ("max_frames", "max_image_px"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')}={value!r} must be >= 1 (or omitted)")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise UsageError(f"--timeout={self.timeout_s!r} must be positive")
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise UsageError(f"--val-fraction={self.val_fraction!r} must be in (0, 1)")
        if not 0.0 <= float(self.confirm_share) < 1.0:
            raise UsageError(f"confirm_share={self.confirm_share!r} must be in [0, 1)")
        if self.split not in ("actor", "stratified"):
            raise UsageError(f"--split {self.split!r} is unknown: use actor or stratified")
        object.__setattr__(self, "budgets", tuple(self.budgets))
        object.__setattr__(self, "families", tuple(self.families) or default_families())
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if not self.study:
            object.__setattr__(self, "study", default_study_name(self.device, self.budgets))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]*", self.study):
            raise UsageError(
                f"--study {self.study!r} must be letters, digits, '.', '_', '-' or '@' "
                "(it names a folder under runs/)"
            )

    @property
    def rungs(self) -> tuple[int, ...]:
        """Epoch counts after which successive halving may stop a candidate: ``min_epochs``
        times powers of ``reduction``, below ``epochs`` (15 epochs, 3, 3: after epochs 3 and 9)."""
        rungs, r = [], self.min_epochs
        while r < self.epochs:
            rungs.append(r)
            r *= self.reduction
        return tuple(rungs)

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL (a SQLite file in ``out_dir`` unless ``storage`` is set)."""
        return self.storage or f"sqlite:///{(self.out_dir / 'study.db').resolve()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (budgets as the text the user gave); inverse of ``from_dict``."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["budgets"] = budgets_to_texts(self.budgets)
        d["families"] = list(self.families)
        d["out_dir"] = str(self.out_dir.resolve())
        # search.json and the study's attributes are read by others: never store a password
        d["storage"] = redact_url(self.storage) if self.storage else None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> SearchConfig:
        """Rebuild from ``to_dict`` output; ``overrides`` replace stored fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}  # newer fields stay default
        kwargs.update(overrides)
        kwargs["budgets"] = tuple(
            b if isinstance(b, Budget) else parse_budget(b) for b in kwargs.get("budgets", ())
        )
        kwargs["families"] = tuple(kwargs.get("families", ()))
        return cls(**kwargs)

    def problem(self) -> dict[str, Any]:
        """The settings a resumed run or a worker must share with the stored study."""
        d = self.to_dict()
        d["budgets"] = sorted(b.describe() for b in self.budgets)  # "1e9flops" == "1 GFLOPs"
        return {k: d[k] for k in _PROBLEM_FIELDS}


def default_study_name(device: str, budgets: tuple[Budget, ...]) -> str:
    """``orin-nano_1e9flops``: the same command names the same study, so it resumes. A
    profile given as a path (``--device /abs/host.toml``) names it without the leading
    separators a study name may not start with (``abs-host.toml_20ms``)."""
    name = re.sub(r"[^A-Za-z0-9._@-]+", "", device.replace("/", "-")).lstrip("._@-")
    parts = [name or "device"]
    parts += [re.sub(r"[^A-Za-z0-9._@-]+", "", t) for t in budgets_to_texts(budgets)]
    return "_".join(p for p in parts if p)


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(s|sec|secs|m|min|mins|h|hr|hours?)?\s*$", re.I)


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``10m`` / ``1.5h`` -> seconds; raises ``UsageError`` otherwise."""
    match = _DURATION.match(text or "")
    if match is None or not float(match.group(1)) > 0:
        raise UsageError(
            f"--timeout {text!r} is not a duration: write e.g. 90s, 10m or 1.5h (positive)"
        )
    unit = (match.group(2) or "s").lower()
    factor = 3600.0 if unit.startswith("h") else 60.0 if unit.startswith("m") else 1.0
    return float(match.group(1)) * factor
