"""One trial of the search: sample, build, profile, check the budget, then (only if it fits) train.

Everything a report needs is stored on the trial as user attributes (``_keys.TrialKey`` names
them), so the results can be rebuilt from the storage alone, by any process.

Multi-fidelity (successive halving, asynchronous like ASHA). Optuna has no pruning for
multi-objective studies (``Trial.report`` raises), so the objective applies its own rule: a
candidate trains ``epochs`` in full only if it is promoted at every rung (``SearchConfig.rungs``:
after ``min_epochs``, then ``reduction`` times as many, ...). At a rung it is promoted when its
best validation macro-F1 so far is in the top 1/``reduction`` of the completed trials of its
own family at that rung, or when no completed trial of any family that reached the rung beats
it on both best-so-far macro-F1 and cost (it would be on the rung's front); until
``early_stop_startup`` peers of its family have reached the rung, everyone is promoted. So most
candidates get the short training and the promising ones, per family and along the cost axis,
the full one. Best-so-far rather than the epoch's own score: on a few dozen validation clips
one epoch's macro-F1 jumps by 0.1 or more. Its own family because families learn at different
speeds: compared with all trials, ding candidates (0.15 at epoch 4, 0.39 at epoch 15) were
stopped by faster-starting kumar and lu candidates. Per-epoch scores live in the ``f1_curve``
user attribute, which every worker reads from the shared storage. A stopped candidate is kept
(COMPLETE) with the scores it reached: real scores at a lower fidelity, which inform the
sampler, but the front holds fully trained trials only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import torch

import search_spaces as ss
from explorer.budget import check_budgets
from explorer.errors import ExplorerError, UsageError
from explorer.memory import check_feature_memory, check_model_memory

from ._keys import TrialKey
from ._objectives import CostInputs, get_objective, profile_totals
from ._screen import Candidate
from ._settings import SearchConfig
from ._space import suggest_config

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from explorer.data import Dataset, FeatureSet, Split
    from explorer.metrics import Metrics
    from explorer.training import TrainSettings
    from search_spaces import InputSpec

__all__ = ["Objective", "constraints_of"]

INVALID_COST = 1e9  # cost value of a config its family rejects (never on a front)


def constraints_of(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Optuna ``constraints_func``: values <= 0 mean feasible (see ``Objective``)."""
    return list(trial.user_attrs.get(TrialKey.CONSTRAINT, [1.0]))


def _set_constraints(trial: optuna.Trial, values: list[float], budgets: Any) -> None:
    trial.set_user_attr(TrialKey.CONSTRAINT, values)
    if hasattr(trial, "set_constraint"):  # Optuna >= 5; older ones call constraints_of
        for key, value in zip(["valid", *(b.label for b in budgets)], values, strict=True):
            trial.set_constraint(key, value)


class _StopTraining(Exception):
    """Raised from the epoch callback to end training early (median rule or timeout)."""


class _Diverged:
    """Metrics of a confirmation run whose loss became non-finite: it scores nothing."""

    def __init__(self, error: str) -> None:
        self.macro_f1, self.accuracy, self.error = 0.0, 0.0, error[:300]


class TrialFailure(ExplorerError):
    """A candidate crashed while building, profiling or training; the trial is marked FAIL."""


class Objective:
    """The callable handed to ``study.optimize``: returns ``(macro_f1, cost)``.

    Constraint values (stored as the ``constraint`` user attribute, read by the samplers'
    ``constraints_func``): ``[0 or 1 for an invalid config] + [used/limit - 1 per budget]``.
    Infeasible candidates return macro-F1 0 and their real cost, and never touch the data.
    """

    def __init__(
        self,
        config: SearchConfig,
        *,
        device: DeviceProfile,
        devices: Mapping[str, DeviceProfile],
        deadline: float | None = None,
        train_fn: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.device = device
        self.devices = dict(devices)  # key -> DeviceProfile, the target included
        self.deadline = deadline  # time.monotonic() after which training stops early
        self._train_fn = train_fn
        self.references_note = ""
        self.confirm_note = ""
        self._data: Dataset | None = None
        self._features: dict[InputSpec, tuple[FeatureSet, Split]] = {}
        from explorer.latency.learned import kernel_model_for, start_export_helper

        # the devices priced by a learned kernel model: their candidates are exported
        self._learned = {k for k, dev in self.devices.items() if kernel_model_for(dev) is not None}
        if self._learned:
            start_export_helper()  # before the first price, not inside it

    # --- the trial ----------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        try:
            return self._evaluate(trial)
        except TrialFailure as exc:
            trial.set_user_attr(TrialKey.ERROR, str(exc)[:500])
            raise

    def _evaluate(self, trial: optuna.Trial) -> tuple[float, float]:
        cfg = self.config
        n_budgets = len(cfg.budgets)
        try:
            family, config = self._draw(trial)
        except ss.ConfigError as exc:
            return self._invalid(trial, str(exc), n_budgets)
        trial.set_user_attr(TrialKey.FAMILY, family)
        trial.set_user_attr(TrialKey.CONFIG, ss.config_to_dict(config))
        try:
            # Seed the initial weights too (training seeds only what follows), so that a trial
            # re-run with the same number, seed and config trains the same network.
            torch.manual_seed(cfg.seed + trial.number)
            check_model_memory(config, batch_size=cfg.batch_size, activations=False)
            model = ss.build(config)
        except (ss.ConfigError, UsageError) as exc:  # UsageError: over the memory limit
            return self._invalid(trial, str(exc), n_budgets)
        except Exception as exc:  # a bug in a family: record it, keep searching
            raise TrialFailure(f"building {family} failed: {type(exc).__name__}: {exc}") from exc
        try:
            totals, latency = self._profile(trial, model)
        except Exception as exc:
            raise TrialFailure(f"profiling {family} failed: {type(exc).__name__}: {exc}") from exc
        check = check_budgets(
            cfg.budgets, totals=totals, latency_ms=latency, device=self.device.address
        )
        trial.set_user_attr(TrialKey.BUDGET_USAGE, check.by_label)
        if check.feasible:  # it will be trained: its gradients, Adam moments and activations too
            try:
                check_model_memory(config, batch_size=cfg.batch_size, training=True)
                self.load_data()  # and its features, in its input shapes
                check_feature_memory(len(self._data), model.input_spec, dataset=self._data.name)
            except UsageError as exc:
                return self._invalid(trial, str(exc), n_budgets)
        _set_constraints(trial, [0.0] + [u - 1.0 for u in check.usage], cfg.budgets)
        trial.set_user_attr(TrialKey.FEASIBLE, check.feasible)
        cost = self._cost(trial, model, totals, latency)
        if not check.feasible:
            trial.set_user_attr(TrialKey.REASON, check.reason)
            return 0.0, cost
        from explorer.training import NonFiniteLossError

        try:
            f1 = self._train(trial, model, config, cost)
        except NonFiniteLossError as exc:  # this candidate diverged; the others may not
            raise TrialFailure(f"training {family} failed: {exc}") from exc
        except (_StopTraining, KeyboardInterrupt, ExplorerError):
            raise
        except Exception as exc:
            raise TrialFailure(f"training {family} failed: {type(exc).__name__}: {exc}") from exc
        return f1, cost

    def _invalid(self, trial: optuna.Trial, why: str, n_budgets: int) -> tuple[float, float]:
        trial.set_user_attr(TrialKey.FEASIBLE, False)
        trial.set_user_attr(TrialKey.REASON, f"invalid config: {why}")
        _set_constraints(trial, [1.0] + [0.0] * n_budgets, self.config.budgets)
        # the worst cost there is, so the config is never on a front whatever the direction
        worst = get_objective(self.config.objective).minimised(INVALID_COST)
        return 0.0, worst

    def _draw(self, trial: Any) -> tuple[str, Any]:
        """The family and Config ``trial`` (an ``optuna.Trial`` or ``FixedTrial``) draws, with
        the data set's class count; raises ``ConfigError`` for a combination it rejects."""
        cfg = self.config
        family, _, config = suggest_config(
            trial,
            cfg.families,
            max_frames=cfg.max_frames,
            max_image_px=cfg.max_image_px,
            fixed={"num_classes": self.num_classes},
        )
        return family, config

    # --- cost ---------------------------------------------------------------------------
    def price(self, params: Mapping[str, Any]) -> Candidate | None:
        """Family, cost (lower-is-better) and FLOPs of the candidate the trial parameters
        ``params`` describe, without training it: built, profiled and predicted as a trial
        is, on the target and the budgets' devices only (the screen sampler's ``price``).
        None when its family rejects it, it is over the memory limit or a budget, it fails to
        build, or its cost is not positive."""
        cfg = self.config
        keys = {self.device.address} | {b.device for b in cfg.budgets if b.device}
        devices = {key: dev for key, dev in self.devices.items() if key in keys}
        try:
            family, config = self._draw(optuna.trial.FixedTrial(dict(params)))
            check_model_memory(config, batch_size=cfg.batch_size, activations=False)
            model = ss.build(config)
            totals, predictions = self._predict(model, family, devices)
        except Exception:  # rejected, too large, or broken: the screen passes it over
            return None
        latency = {key: p.ms for key, p in predictions.items()}
        check = check_budgets(
            cfg.budgets, totals=totals, latency_ms=latency, device=self.device.address
        )
        if not check.feasible:
            return None
        cost = get_objective(cfg.objective).minimised(self._cost_value(model, totals, latency))
        return Candidate(family, cost, max(float(totals["flops"]), 1.0)) if cost > 0 else None

    def _predict(
        self, model: torch.nn.Module, family: str, devices: Mapping[str, DeviceProfile]
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """``model``'s profile totals and its latency prediction on each of ``devices``."""
        from explorer.prediction import predict_latency
        from explorer.profiling import profile_model

        inputs = ss.example_inputs(model, 1)
        # A learned target exports the model, which runs it once anyway: then the profile
        # runs it too (real tensors), which cost 0.02-0.09 s for lu candidates where fake
        # tensors took 0.15-0.8 s (every operator's shapes new to FakeTensorMode's cache),
        # with the same totals. For roofline targets nothing runs: a large candidate stays free.
        real = not self._learned.isdisjoint(devices)
        profile = profile_model(model, inputs, name=family, meta=False if real else None)
        predictions = {
            key: predict_latency(profile, dev, model=model, inputs=inputs)
            for key, dev in devices.items()
        }
        return profile_totals(profile), predictions

    def _profile(
        self, trial: optuna.Trial, model: torch.nn.Module
    ) -> tuple[dict[str, float], dict[str, float]]:
        start = time.perf_counter()
        totals, predictions = self._predict(model, trial.user_attrs[TrialKey.FAMILY], self.devices)
        latency = {key: p.ms for key, p in predictions.items()}
        # the range the target's cross-validated error gives (high None: no upper bound)
        trial.set_user_attr(
            "predicted_range_ms", {k: [p.low_ms, p.high_ms] for k, p in predictions.items()}
        )
        for key, value in totals.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr(TrialKey.PREDICTED_MS, latency)
        trial.set_user_attr(TrialKey.PROFILE_SECONDS, time.perf_counter() - start)
        return totals, latency

    def _cost(
        self,
        trial: optuna.Trial,
        model: torch.nn.Module,
        totals: Mapping[str, float],
        latency: Mapping[str, float],
    ) -> float:
        objective = get_objective(self.config.objective)
        value = self._cost_value(model, totals, latency)
        if objective.own_column:  # results.csv reads it from the trial
            trial.set_user_attr(objective.column_for(self.device.address), value)
        return value

    def _cost_value(
        self, model: torch.nn.Module, totals: Mapping[str, float], latency: Mapping[str, float]
    ) -> float:
        """The search's cost of ``model`` from its totals and predicted latencies."""
        objective = get_objective(self.config.objective)
        device = self.device.address
        inputs = CostInputs(model=model, totals=totals, latency_ms=latency, device=device)
        return float(objective.compute(inputs))  # type: ignore[misc]

    # --- training -----------------------------------------------------------------------
    def _settings(self, seed: int) -> TrainSettings:
        from explorer.training import TrainSettings

        cfg = self.config
        # The fidelity is the epoch count; successive halving, not patience, stops early.
        return TrainSettings(
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.epochs, seed=seed
        )

    def train_reference(self, model: torch.nn.Module) -> Metrics:
        """Train a preset exactly like a trial (same data, split, fidelity); its metrics."""
        features, split = self.features_for(model.input_spec)
        train = self._train_fn or _default_train()
        return train(model, features, split, settings=self._settings(self.config.seed)).metrics

    def retrain(
        self, config: Mapping[str, Any], *, seed: int, deadline: float | None
    ) -> Metrics | None:
        """Train the config ``config`` (a ``config_to_dict``) again from weights and batches
        seeded with ``seed``, at full fidelity on the same data and split; its metrics, or
        None when ``deadline`` (``time.monotonic()``) passed first. For the confirmation stage.
        """
        torch.manual_seed(seed)
        model = ss.build(ss.config_from_dict(dict(config)))
        features, split = self.features_for(model.input_spec)
        train = self._train_fn or _default_train()

        def on_epoch(epoch: int, metrics: Any) -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise _StopTraining("timeout")

        from explorer.training import NonFiniteLossError

        try:
            return train(
                model, features, split, settings=self._settings(seed), on_epoch=on_epoch
            ).metrics
        except _StopTraining:
            return None
        except NonFiniteLossError as exc:  # this seed diverged: a real, bad outcome
            return _Diverged(str(exc))

    def _train(
        self, trial: optuna.Trial, model: Any, config: Any, cost: float | None = None
    ) -> float:
        start = time.perf_counter()
        features, split = self.features_for(model.input_spec)
        # a new input shape on a cold cache can cost more than the training itself
        trial.set_user_attr(TrialKey.FEATURES_SECONDS, time.perf_counter() - start)
        train = self._train_fn or _default_train()
        settings = self._settings(self.config.seed + trial.number)
        curve: list[float] = []
        last: dict[str, Any] = {}

        min_delta = float(getattr(settings, "min_delta", 0.0))

        def on_epoch(epoch: int, metrics: Any) -> None:
            curve.append(float(metrics.macro_f1))
            # train() restores the weights of the lowest validation loss even when stopped,
            # so keep the metrics of that epoch (the same rule), not of the last one.
            loss = float(getattr(metrics, "loss", -len(curve)))
            if "metrics" not in last or loss < last["loss"] - min_delta:
                last["metrics"], last["loss"] = metrics, loss
            trial.set_user_attr(TrialKey.F1_CURVE, curve)
            reason = self._stop_reason(trial, len(curve) - 1, max(curve), cost)
            if reason:
                last["stopped"] = reason
                raise _StopTraining(reason)

        start = time.perf_counter()
        try:
            result = train(model, features, split, settings=settings, on_epoch=on_epoch)
            metrics, epochs = result.metrics, int(result.epochs_run)
            stopped = ""
        except _StopTraining:
            metrics, epochs, stopped = last["metrics"], len(curve), last["stopped"]
        seconds = time.perf_counter() - start
        f1 = float(metrics.macro_f1)
        trial.set_user_attr(TrialKey.MACRO_F1, f1)
        trial.set_user_attr(TrialKey.ACCURACY, float(metrics.accuracy))
        trial.set_user_attr(TrialKey.EPOCHS, epochs)
        trial.set_user_attr(TrialKey.STOPPED_EARLY, stopped)
        trial.set_user_attr(TrialKey.TRAIN_SECONDS, seconds)
        trial.set_user_attr(TrialKey.CHECKPOINT, self._save(trial, model, metrics, features))
        return f1

    def _stop_reason(
        self, trial: optuna.Trial, epoch: int, f1: float, cost: float | None = None
    ) -> str:
        """Why to stop after ``epoch`` (0-based) with best-so-far macro-F1 ``f1`` and cost
        ``cost``; '' to go on (see the module docstring: successive halving)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "timeout"
        cfg = self.config
        rung = epoch + 1  # epochs done
        if rung not in cfg.rungs:
            return ""
        family = trial.user_attrs.get(TrialKey.FAMILY)
        lower = get_objective(cfg.objective).minimised  # costs compared lower-is-better
        peers = [
            (
                max(t.user_attrs[TrialKey.F1_CURVE][:rung]),
                lower(t.values[1]),
                t.user_attrs.get(TrialKey.FAMILY),
            )
            for t in trial.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            if len(t.user_attrs.get(TrialKey.F1_CURVE, ())) >= rung and t.values
        ]
        kin = sorted((p[0] for p in peers if p[2] == family), reverse=True)
        if len(kin) < cfg.early_stop_startup:
            return ""
        promoted = math.ceil((len(kin) + 1) / cfg.reduction)  # the top 1/reduction, self included
        if sum(1 for v in kin if v > f1) < promoted:
            return ""
        if cost is not None and not any(p[0] > f1 and p[1] <= lower(cost) for p in peers):
            return ""  # on the rung's front: cheaper than every better candidate
        return (
            f"successive halving: best macro-F1 {f1:.3f} after {rung} epochs is below the top "
            f"1/{cfg.reduction} of {len(kin)} {family} peers ({kin[promoted - 1]:.3f})"
        )

    def _save(
        self, trial: optuna.Trial, model: torch.nn.Module, metrics: Metrics, features: FeatureSet
    ) -> str:
        from explorer.checkpoints import save_checkpoint

        rel = Path("checkpoints") / f"trial_{trial.number:05d}.pt"
        path = self.config.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            path,
            model,
            metrics=metrics,
            class_names=tuple(features.class_names),
            extra={"study": self.config.study, "trial": trial.number},
        )
        return rel.as_posix()

    # --- data ---------------------------------------------------------------------------
    def load_data(self) -> None:
        """Open the data set (metadata only: clips are decoded when features are built), so a
        wrong ``--dataset`` fails before the first trial and the class count is known."""
        if self._data is None:
            from explorer.data import load_dataset

            self._data = load_dataset(self.config.dataset)

    @property
    def num_classes(self) -> int:
        """Classes of the data set (every candidate's output size)."""
        self.load_data()
        return len(self._data.class_names)

    def features_for(self, spec: InputSpec) -> tuple[FeatureSet, Split]:
        """Features and split for ``spec``, built once per process (and cached on disk)."""
        if spec not in self._features:
            from explorer.data import build_features, make_split

            self.load_data()
            features = build_features(self._data, spec)  # cached in $EXPLORER_CACHE
            split = make_split(
                features,
                kind=self.config.split,
                seed=self.config.data_seed,
                val_fraction=self.config.val_fraction,
            )
            self._features[spec] = (features, split)
        return self._features[spec]


def _default_train() -> Callable[..., Any]:
    from explorer.training import train

    return train
