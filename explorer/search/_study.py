"""Create or resume the Optuna study, run trials until the target count, write the outputs."""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

import search_spaces as ss
from explorer.errors import ExplorerError, MissingExtraError, UsageError

from ._keys import StudyKey, TrialKey
from ._objective import Objective, TrialFailure, constraints_of
from ._objectives import SCORE, get_objective, profile_totals
from ._results import SearchResult, count_trials
from ._settings import SearchConfig
from ._settings import redact_url as _redact
from ._space import paper_presets, preset_params, suggest_config
from ._workers import LocalWorkers, orphaned

__all__ = ["SearchResult", "TrialEvent", "open_study", "run_search", "run_worker"]


@dataclass(frozen=True, kw_only=True)
class TrialEvent:
    """What the progress callback gets after each trial this process ran."""

    number: int
    state: str  # a TrialState name, or "START" once before the first trial
    feasible: bool
    macro_f1: float | None
    done: int  # completed trials in the study (all processes)
    total: int  # the target
    best_f1: float | None  # best feasible macro-F1 so far
    elapsed_s: float
    note: str = ""


# --- storage and study ----------------------------------------------------------------------


def _storage(url: str, *, heartbeat_s: int) -> optuna.storages.RDBStorage:
    engine_kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite:///")
    if sqlite:
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["creator"] = _sqlite_connector(path)
    elif url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtraError("psycopg", "postgres", "a PostgreSQL storage") from None
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        engine_kwargs["pool_pre_ping"] = True
    elif "://" not in url:
        raise UsageError(
            f"--storage {_redact(url)!r} is not a storage URL: use sqlite:///path/study.db or "
            "postgresql://user@host/db"
        )
    # two processes opening a new SQLite study at once (a search and a worker or a dashboard
    # started together) both create its tables: one fails on the other's lock or rows, and
    # opened again it finds the tables made (2026-12-05: 8 of 30 such starts failed)
    deadline = time.monotonic() + (_SQLITE_CREATE_WAIT_S if sqlite else 0)
    delay = 0.05
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=3 * heartbeat_s,
                )
        except Exception as exc:  # bad URL, unreachable server, unwritable file
            if _creation_race(exc) and time.monotonic() + delay < deadline:
                time.sleep(delay)
                delay = min(2 * delay, 1.0)
                continue
            raise ExplorerError(
                f"cannot open the study storage {_redact(url)!r}: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}; check the URL, the server and its "
                "permissions"
            ) from None


_SQLITE_CREATE_WAIT_S = 60.0  # as long as a connection waits for a lock (_sqlite_connector)


def _creation_race(exc: Exception) -> bool:
    """Whether opening a SQLite storage failed on another process creating the same tables:
    its lock ("database is locked"), a table it made first ("already exists") or the version
    row it wrote first (UNIQUE constraint)."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    return isinstance(exc, sqlalchemy.exc.OperationalError) and (
        "locked" in str(exc) or "already exists" in str(exc)
    )


def _sqlite_connector(path: Path) -> Callable[[], Any]:
    """SQLite connections in WAL mode with synchronous=NORMAL: a trial writes ~100 rows, and
    the default (a full fsync per commit, ~30 ms here) made storage dominate a trial. WAL
    stays safe when a process is killed (only a power cut can lose the last commits) and lets
    workers on this machine read while one writes; the timeout waits for the lock."""
    import sqlite3

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect


class _EachFamilyFirst(optuna.samplers.BaseSampler):
    """Wraps a sampler so that trial ``i < len(families)`` draws family ``i``, starting from
    that family's paper model where it has one.

    With six families and a small population, chance alone leaves some family untried in the
    first generation, and NSGA-II then rarely returns to it. Keyed on the trial number (unique
    in the storage), so concurrent workers never both take the same family slot, which
    ``Study.enqueue_trial`` does not guarantee on SQLite. ``start`` gives a family's trial
    parameters of its paper preset projected onto the capped space (``paper_start``; empty:
    none), asked once per family and process when its slot comes: the slot draws those (a
    warm start: the search then mutates the papers' designs, and the front holds each paper's
    model at the search's input size). Every other draw is the base sampler's.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        families: tuple[str, ...],
        start: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.base, self.families = base, families
        self._start, self._starts = start, {}

    def _forced(self, trial: optuna.trial.FrozenTrial) -> str | None:
        return self.families[trial.number] if trial.number < len(self.families) else None

    def _fixed(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        forced = self._forced(trial)
        if forced is None:
            return {}
        if self._start is not None and forced not in self._starts:
            self._starts[forced] = self._start(forced)
        return {"family": forced, **self._starts.get(forced, {})}

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        values = self.base.sample_relative(study, trial, search_space)
        fixed = self._fixed(trial)
        return {k: fixed.get(k, v) for k, v in values.items()}

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        fixed = self._fixed(trial)
        if param_name in fixed:
            return fixed[param_name]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def paper_start(config: SearchConfig, family: str) -> dict[str, Any]:
    """``family``'s paper preset (``ding2025`` for ding, ...) as trial parameters in the
    capped space: the first trial of that family (``_EachFamilyFirst``). Only the papers'
    models that fit the FLOPs, MACs, parameter and weight budgets at their own size start a
    family (under 1e9flops: ding2025 and ishtiaq2025): those are the ones the front must beat,
    and a paper model shrunk to the caps to fit (lu2025, yang2025) is another network that
    costs a first trial more than a random draw does. Empty otherwise, or when the family has
    no paper (hybrid); the sampler draws that family's first trial."""
    for name in paper_presets((family,)):
        preset = ss.get_preset(name)
        params = preset_params(
            family, preset, max_frames=config.max_frames, max_image_px=config.max_image_px
        )
        return params if _start_fits(config, family, preset, params) else {}
    return {}


def _start_fits(config: SearchConfig, family: str, preset: Any, params: dict[str, Any]) -> bool:
    """Whether ``preset`` fits the budgets that need no latency prediction (a latency budget
    is the trial's to check) and its projection ``params`` builds."""
    from explorer.budget import check_budgets
    from explorer.profiling import profile_model

    budgets = [b for b in config.budgets if b.metric != "latency_ms"]
    try:
        trial = optuna.trial.FixedTrial({"family": family, **params})
        suggest_config(
            trial, (family,), max_frames=config.max_frames, max_image_px=config.max_image_px
        )
        if not budgets:
            return True
        model = ss.build(preset)
        totals = profile_totals(profile_model(model, ss.example_inputs(model, 1)))
    except (ValueError, ss.ConfigError):
        return False
    return check_budgets(budgets, totals=totals, latency_ms={}, device=config.device).feasible


def _sampler(
    config: SearchConfig, seed: int | None, price: Callable[..., Any] | None = None
) -> optuna.samplers.BaseSampler:
    start = functools.partial(paper_start, config) if config.paper_starts else None
    return _EachFamilyFirst(_base_sampler(config, seed, price), tuple(config.families), start)


def _base_sampler(
    config: SearchConfig, seed: int | None, price: Callable[..., Any] | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler ``config.sampler`` names; ``price`` is ``Objective.price`` (the screen
    sampler prices candidates with it; without it, it draws at random)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if config.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if config.sampler == "screen":
            from ._screen import STARTUP, ScreenSampler

            return ScreenSampler(
                draw=functools.partial(
                    suggest_config,
                    families=config.families,
                    max_frames=config.max_frames,
                    max_image_px=config.max_image_px,
                ),
                price=price,
                lower=get_objective(config.objective).minimised,
                screen=config.screen,
                # after the family round (``_EachFamilyFirst``), whose draws it cannot steer
                startup=max(len(config.families), min(config.population, STARTUP)),
                seed=seed,
            )
        # Optuna >= 5 reads constraints the trial sets itself (Trial.set_constraint).
        extra = (
            {} if hasattr(optuna.Trial, "set_constraint") else {"constraints_func": constraints_of}
        )
        if config.sampler == "gp":
            # Gaussian process, multi-objective with constraints (Optuna >= 4.4)
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=config.population, **extra)
        if config.sampler == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=config.population, **extra
            )
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=seed, **extra)


def metric_names(config: SearchConfig) -> list[str]:
    """Readable names of the study's two objectives, in order (stored on the study)."""
    return [SCORE.title(config.device), get_objective(config.objective).title(config.device)]


def open_study(
    config: SearchConfig, *, seed: int | None = None, price: Callable[..., Any] | None = None
) -> optuna.Study:
    """Create the study named ``config.study`` in its storage, or load it to resume.

    ``price`` is ``Objective.price``, for the screen sampler.

    A new study stores ``config`` as its user attribute ``explorer.search``. An existing one
    must have been created with the same problem (device, budgets, families, objective, data,
    fidelity); otherwise a ``UsageError`` says to pick another ``--study``.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = _storage(config.storage_url, heartbeat_s=config.heartbeat_s)
    study = optuna.create_study(
        storage=storage,
        study_name=config.study,
        directions=[SCORE.direction, get_objective(config.objective).direction],
        sampler=_sampler(config, config.seed if seed is None else seed, price),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(StudyKey.SETTINGS)
    if stored is None:
        study.set_user_attr(StudyKey.SETTINGS, config.to_dict())
    else:
        import device_profiles

        old_config = SearchConfig.from_dict(stored)
        # an older study stored budget devices as typed (an alias, a path): compare addresses
        with contextlib.suppress(device_profiles.DeviceError):
            old_config = _normalise_budget_devices(old_config)
        old = old_config.problem()
        new = config.problem()
        diff = [f"{k} {old[k]!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
        if diff:
            raise UsageError(
                f"study {config.study!r} in {_redact(config.storage_url)} was created with "
                f"other settings ({'; '.join(diff)}): resume it with the same ones, or name a "
                "new study with --study"
            )
    names = metric_names(config)
    if study.metric_names != names:  # optuna-dashboard shows these instead of "Objective 0"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def load_stored_config(storage_url: str, study_name: str, **overrides: Any) -> SearchConfig:
    """The ``SearchConfig`` a study was created with (for ``explorer worker``)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = _storage(storage_url, heartbeat_s=10)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name not in names:
        raise UsageError(
            f"study {study_name!r} does not exist in {_redact(storage_url)}: start it with "
            f"`explorer search ... --storage URL --study NAME` first (studies there: "
            f"{', '.join(names) or 'none'})"
        )
    study = optuna.load_study(study_name=study_name, storage=storage)
    stored = study.user_attrs.get(StudyKey.SETTINGS)
    if stored is None:
        raise UsageError(f"study {study_name!r} was not created by `explorer search`")
    return SearchConfig.from_dict(stored, storage=storage_url, **overrides)


# --- running ----------------------------------------------------------------------------------


class _Stopper:
    """First Ctrl-C (or SIGTERM): finish the running trial, then stop. Second: abort now."""

    def __init__(self, on_request: Callable[[], None] | None = None) -> None:
        self.requested = False
        self._on_request = on_request  # e.g. pass the interrupt on to local workers
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_request is not None:
            self._on_request()

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stopper]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in self._old.items():
                signal.signal(sig, handler)


def _fail_stale(study: optuna.Study, *, heartbeat_s: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    _fail_heartless(study, grace_s=max(30.0, 10.0 * heartbeat_s))


def _fail_heartless(study: optuna.Study, *, grace_s: float) -> None:
    """Fail RUNNING trials older than ``grace_s`` that never recorded a heartbeat.

    A process killed between creating its trial and the first heartbeat (while the sampler
    draws it) leaves a RUNNING trial that Optuna's ``fail_stale_trials`` never fails (it only
    looks at recorded heartbeats): a resumed search then waited for it forever.
    """
    states = (optuna.trial.TrialState.RUNNING,)
    now = datetime.datetime.now()  # Optuna stores naive local times
    old = [
        t
        for t in study.get_trials(deepcopy=False, states=states)
        if t.datetime_start is not None and (now - t.datetime_start).total_seconds() > grace_s
    ]
    # optuna wraps the RDBStorage in a cache; the heartbeats are only in its tables
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if not old or engine is None:
        return
    import sqlalchemy as sa

    query = sa.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    with engine.connect() as conn:
        beating = {row[0] for row in conn.execute(query, {"ids": [t._trial_id for t in old]})}
    for t in old:
        if t._trial_id not in beating:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                study._storage.set_trial_state_values(
                    t._trial_id, state=optuna.trial.TrialState.FAIL
                )


def _best_f1(trials: list[optuna.trial.FrozenTrial]) -> float | None:
    scores = [
        t.user_attrs[TrialKey.MACRO_F1]
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.user_attrs.get(TrialKey.FEASIBLE)
        and t.user_attrs.get(TrialKey.MACRO_F1) is not None
    ]
    return max(scores) if scores else None


def _run_loop(
    study: optuna.Study,
    objective: Objective,
    config: SearchConfig,
    *,
    start: float,
    progress: Callable[[TrialEvent], None] | None,
    on_stop: Callable[[], None] | None = None,
) -> str:
    """Run trials until the study holds ``config.trials`` completed ones; return why it ended.

    ``on_stop`` is called once when the first Ctrl-C / SIGTERM arrives."""
    stopper = _Stopper(on_stop)
    failures_in_a_row = 0
    if progress is not None:
        trials = study.get_trials(deepcopy=False)
        progress(
            TrialEvent(
                number=-1,
                state="START",
                feasible=False,
                macro_f1=None,
                done=count_trials(trials)["complete"],
                total=config.trials,
                best_f1=_best_f1(trials),
                elapsed_s=time.monotonic() - start,
            )
        )
    with stopper.installed():
        while True:
            _fail_stale(study, heartbeat_s=config.heartbeat_s)  # killed processes' trials
            trials = study.get_trials(deepcopy=False)
            counts = count_trials(trials)
            if counts["complete"] >= config.trials:
                return "trials"
            if counts["invalid"] > 10 * config.trials:
                raise ExplorerError(
                    f"{counts['invalid']} drawn configs were invalid (the last: "
                    f"{_last_invalid_reason(trials)}): narrow --families, or raise "
                    "--max-memory if that is what they were over"
                )
            if stopper.requested or orphaned():
                return "interrupted"
            if objective.deadline is not None and time.monotonic() >= objective.deadline:
                return "timeout"
            if counts["complete"] + counts["running"] >= config.trials:
                # Other processes run the last trials (or a killed one's heartbeat has not
                # gone stale yet): wait for them rather than overshoot the target.
                time.sleep(min(2.0, config.heartbeat_s))
                continue
            before = {t.number for t in trials}
            study.optimize(objective, n_trials=1, catch=(TrialFailure,), gc_after_trial=True)
            trials = study.get_trials(deepcopy=False)
            mine = [t for t in trials if t.number not in before]
            for t in mine:
                if t.state == optuna.trial.TrialState.FAIL:
                    failures_in_a_row += 1
                    if failures_in_a_row >= 3:
                        last = t.user_attrs.get(TrialKey.ERROR)
                        raise ExplorerError(
                            f"3 trials in a row failed; the last: {last} "
                            "(run with --debug, or narrow --families)"
                        )
                else:
                    failures_in_a_row = 0
                if progress is not None:
                    c = count_trials(trials)
                    progress(
                        TrialEvent(
                            number=t.number,
                            state=t.state.name,
                            feasible=bool(t.user_attrs.get(TrialKey.FEASIBLE)),
                            macro_f1=t.user_attrs.get(TrialKey.MACRO_F1),
                            done=c["complete"],
                            total=config.trials,
                            best_f1=_best_f1(trials),
                            elapsed_s=time.monotonic() - start,
                            note=t.user_attrs.get(TrialKey.ERROR)
                            or t.user_attrs.get(TrialKey.REASON, ""),
                        )
                    )


def _devices(config: SearchConfig) -> tuple[Any, dict[str, Any]]:
    import device_profiles

    target = _device(config.device, config.device_files)
    devices = {d.key: d for d in device_profiles.list_devices()}
    for budget in config.budgets:
        if budget.device is not None:
            dev = _device(budget.device, config.device_files)
            devices.setdefault(dev.address, dev)  # KEY:TARGET budgets price that target
    devices.pop(target.address, None)
    return target, {target.address: target, **dict(sorted(devices.items()))}


def _device(address: str, files: Mapping[str, str]) -> Any:
    """The profile ``address`` (or alias, or path) names; a key in ``files`` (profile files
    outside the registry) is read from its file again."""
    import device_profiles

    key, target = device_profiles.split_address(address)
    path = files.get(key)
    return device_profiles.get(f"{path}:{target}" if path and target else path or address)


def _normalise_budget_devices(config: SearchConfig) -> SearchConfig:
    """Budgets name devices by alias or path; store their addresses so labels are stable,
    and in ``device_files`` the absolute path of each profile file whose key names no
    profile read from that file (``explorer calibrate --out FILE``'s, say), so ``_devices``,
    workers and a resumed run read the same file again."""
    import device_profiles

    files = dict(config.device_files)

    def address(text: str) -> str:
        profile = _device(text, files)
        if device_profiles.looks_like_path(text):
            try:
                registered = device_profiles.get(profile.key).origin
            except device_profiles.DeviceError:
                registered = ""
            if not registered or Path(registered).resolve() != Path(profile.origin).resolve():
                files[profile.key] = str(Path(profile.origin).resolve())
        return profile.address

    budgets = tuple(  # stored as ``20ms@ADDRESS``: workers parse the address back
        replace(b, device=address(b.device), text="") if b.device else b for b in config.budgets
    )
    device = address(config.device)
    return replace(config, device=device, budgets=budgets, device_files=files)


def _confirm_stage(
    study: optuna.Study, objective: Objective, deadline: float | None, *, force: bool
) -> str:
    """Run ``_confirm.confirm``; ``"interrupted"`` after a Ctrl-C (each finished evaluation is
    stored, so a re-run resumes the stage), else ''."""
    from ._confirm import confirm

    try:
        objective.confirm_note = confirm(study, objective, deadline=deadline, force=force)
    except KeyboardInterrupt:
        objective.confirm_note = "confirmation interrupted (re-run to finish it)"
        return "interrupted"
    return ""


def run_search(
    config: SearchConfig,
    *,
    progress: Callable[[TrialEvent], None] | None = None,
    train_fn: Callable[..., Any] | None = None,
    worker_seed: int | None = None,
    write_report: bool = True,
    main: bool = True,
) -> SearchResult:
    """Run (or resume) the search ``config`` describes and write its outputs.

    Trials already in the study count toward ``config.trials``. Returns after the target
    count, ``timeout_s``, or a Ctrl-C (which lets the running trial finish); the outputs are
    written in every case. Unless the search was interrupted, the confirmation stage then
    retrains the front with further seeds (``_confirm``) within the last ``confirm_share`` of
    ``timeout_s``, shared with the workers. ``main`` marks the main process (workers pass
    False): it trains the papers' presets as references (while its local workers already run
    trials) and finishes evaluations a killed worker left. ``train_fn`` replaces
    ``explorer.training.train`` (tests).
    """
    from ._outputs import ensure_references, finalize

    start = time.monotonic()
    config = _normalise_budget_devices(config)
    target, devices = _devices(config)
    deadline = start + config.timeout_s if config.timeout_s else None
    share = config.confirm_share if config.confirm_seeds else 0.0
    search_deadline = start + config.timeout_s * (1 - share) if config.timeout_s else None
    objective = Objective(
        config, device=target, devices=devices, deadline=search_deadline, train_fn=train_fn
    )
    # a wrong --dataset fails here, before the run directory and the study exist: a study
    # created by a failed start would hold settings that refuse the corrected command
    objective.load_data()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(config, seed=worker_seed, price=objective.price)
    stopped = "interrupted"
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    # numpy's BLAS as well (the features' matrix products): its threads spin-wait against the
    # other worker's on two cores (a yang spec's FrFT features, 240 clips: 10 s on an idle
    # machine, 26 s with the other core busy at 2 BLAS threads, 13 s at 1)
    blas = threadpool_limits(config.threads, user_api="blas")
    workers: LocalWorkers | None = None
    try:
        if config.workers > 1:  # workers run trials while this process trains the references
            workers = LocalWorkers(
                count=config.workers - 1,
                storage_url=config.storage_url,
                study=config.study,
                out_dir=config.out_dir,
                seed=config.seed,
                # the whole run's deadline: a worker keeps the same last share of it for the
                # confirmation stage, so it stops drawing trials when this process does (given
                # only the search's part, it kept a share of that too and stopped searching
                # a third of the way before this process, to confirm a front still moving)
                deadline=deadline,
            )
        if main:  # the main process's job (workers leave the references to it)
            objective.references_note = ensure_references(study, objective)
        stopped = _run_loop(
            study,
            objective,
            config,
            start=start,
            progress=progress,
            on_stop=workers.interrupt if workers else None,
        )
        confirming = config.confirm_seeds > 0 and stopped != "interrupted"
        if confirming:  # workers confirm too, sharing the evaluations through claims
            stopped = _confirm_stage(study, objective, deadline, force=False) or stopped
        if workers is not None:
            # the outputs must include the workers' last trials and evaluations
            try:
                workers.wait()
            except KeyboardInterrupt:  # Ctrl-C while waiting: their trials are redrawn later
                workers.kill()
                raise
            workers = None
        if confirming and main and stopped != "interrupted":
            # what a worker claimed but did not finish (it was killed), if anything
            stopped = _confirm_stage(study, objective, deadline, force=True) or stopped
    finally:
        torch.set_num_threads(threads)
        blas.restore_original_limits()
        if workers is not None:  # this process is being aborted (second Ctrl-C, an error)
            workers.kill()
        result = finalize(
            study,
            config,
            objective=objective,
            wall_seconds=time.monotonic() - start,
            stopped=stopped,
            write_report=write_report,
        )
    return result


def run_worker(
    storage: str,
    study: str,
    *,
    trials: int | None = None,
    timeout_s: float | None = None,
    out_dir: Path | None = None,
    seed: int | None = None,
    progress: Callable[[TrialEvent], None] | None = None,
    train_fn: Callable[..., Any] | None = None,
) -> SearchResult:
    """Join the study ``study`` in ``storage`` with the settings it was created with, and run
    trials until it holds its target count (``trials`` overrides the stored target).

    Each worker gets its own sampler seed (``seed``, else one from the process id), so that
    workers started together do not draw the same candidates.
    """
    overrides: dict[str, Any] = {"timeout_s": timeout_s, "workers": 1}
    if trials is not None:
        overrides["trials"] = trials
    if out_dir is not None:
        overrides["out_dir"] = Path(out_dir)
    config = load_stored_config(storage, study, **overrides)
    worker_seed = seed if seed is not None else (config.seed * 1_000_003 + os.getpid()) % 2**31
    return run_search(
        config, progress=progress, train_fn=train_fn, worker_seed=worker_seed, main=False
    )


def _last_invalid_reason(trials: list[optuna.trial.FrozenTrial]) -> str:
    """Why the most recent invalid trial was (a family's rejection, a memory limit)."""
    reasons = [
        t.user_attrs.get(TrialKey.REASON, "")
        for t in trials
        if t.user_attrs.get(TrialKey.REASON, "").startswith("invalid")
    ]
    return reasons[-1].removeprefix("invalid config: ")[:300] if reasons else "no reason recorded"
