"""The screen sampler: random candidates priced before training, the most promising trained."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

import search_spaces as ss
from explorer.budget import parse_budget
from explorer.search import run_search
from explorer.search._keys import TrialKey
from explorer.search._screen import (
    F1_NOISE,
    Candidate,
    Observation,
    ScreenSampler,
    _Draw,
    expected_improvement,
    f1_estimate,
    hypervolume_improvement,
)
from tests._search_helpers import tiny_config

E = math.e


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


def test_hypervolume_improvement_is_the_area_a_point_adds_on_a_log_cost_axis() -> None:
    # one front point at cost 1 (log 0) with macro-F1 0.5, reference cost e^2 (log 2)
    front = [(1.0, 0.5)]
    assert hypervolume_improvement(front, E, 0.7, cost_ref=E**2) == pytest.approx(0.2 * 1)
    # cheaper and worse: adds only the strip left of the front point
    assert hypervolume_improvement(front, 1 / E, 0.3, cost_ref=E**2) == pytest.approx(0.3 * 1)
    # cheaper and better: the strip left of it, and 0.1 above it up to the reference
    assert hypervolume_improvement(front, 1 / E, 0.6, cost_ref=E**2) == pytest.approx(0.6 + 0.2)
    assert hypervolume_improvement(front, E, 0.4, cost_ref=E**2) == 0.0  # dominated
    assert hypervolume_improvement([], E, 0.4, cost_ref=E**2) == pytest.approx(0.4)
    # two steps: (1, 0.5) and (e, 0.8); a point (1/e, 0.9) adds 0.9 + 0.4 + 0.1
    two = [(1.0, 0.5), (E, 0.8)]
    assert hypervolume_improvement(two, 1 / E, 0.9, cost_ref=E**2) == pytest.approx(1.4)
    # the expectation of a sure score is the improvement itself; uncertainty adds upside
    sure = expected_improvement(front, E, 0.5, 1e-9, cost_ref=E**2)
    assert sure == pytest.approx(0.0, abs=1e-6)
    assert expected_improvement(front, E, 0.5, 0.1, cost_ref=E**2) > 0.02


def test_f1_estimate_follows_its_family_near_the_size_and_shrinks_to_the_mean() -> None:
    # ding at 1e7 FLOPs scores 0.6, at 1e8 FLOPs 0.2; their costs (0.5 ms) are alike
    observed = [Observation("ding", 0.5, 0.6, True, 1e7)] * 3
    observed += [Observation("ding", 0.5, 0.2, True, 1e8)] * 3
    observed += [Observation("lu", 0.1, 0.1, True, 1e7)] * 3
    near, _ = f1_estimate("ding", 1e7, observed)
    far, _ = f1_estimate("ding", 1e8, observed)
    overall = np.mean([o.f1 for o in observed])
    assert 0.5 < near < 0.6 and 0.2 < far < 0.3  # its family's scores, shrunk to the mean
    new_mean, new_sd = f1_estimate("yang", 1e7, observed)  # no yang trained yet
    assert new_mean == pytest.approx(overall)
    _, known_sd = f1_estimate("ding", 1e7, observed)
    assert new_sd > known_sd >= F1_NOISE


def _toy_draw(trial) -> None:  # type: ignore[no-untyped-def]
    trial.suggest_categorical("family", ["a", "b"])
    trial.suggest_float("cost", 0.05, 5.0, log=True)


def _toy_price(params):  # type: ignore[no-untyped-def]
    if params["cost"] > 2.0:  # budget 2
        return None
    return Candidate(params["family"], params["cost"], flops=1e6 * params["cost"])


def _run_toy(seed: int, trials: int = 14) -> tuple[list[dict], list[list[dict]]]:
    sampler = ScreenSampler(draw=_toy_draw, price=_toy_price, screen=6, startup=4, seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    drawn, screens = [], []
    for _ in range(trials):
        trial = study.ask()
        family = trial.suggest_categorical("family", ["a", "b"])
        cost = trial.suggest_float("cost", 0.05, 5.0, log=True)
        f1 = 0.3 + 0.1 * math.log10(cost) + (0.2 if family == "b" else 0.0)
        feasible = cost <= 2.0
        trial.set_user_attr(TrialKey.FAMILY, family)
        trial.set_user_attr(TrialKey.FEASIBLE, feasible)
        trial.set_user_attr(TrialKey.MACRO_F1, f1 if feasible else None)
        trial.set_user_attr("flops", 1e6 * cost)  # as a search stores its profile's FLOPs
        study.tell(trial, [f1 if feasible else 0.0, cost])
        drawn.append(dict(trial.params))
        screens.append(list(sampler.last_screen))
    return drawn, screens


def test_screen_trains_the_admitted_candidate_with_the_largest_expected_gain() -> None:
    drawn, screens = _run_toy(seed=3)
    for number, (params, screen) in enumerate(zip(drawn, screens, strict=True)):
        if number < 4:  # the random start
            assert screen == []
            continue
        assert screen, "every screened trial priced some admitted candidates"
        assert all(s["cost"] <= 2.0 for s in screen)  # the budget refused the others
        best = max(screen, key=lambda s: s["gain"])
        assert params == best["params"]
        assert params["cost"] <= 2.0  # never a candidate the budget refuses
    # family b scores 0.2 higher at every cost: once known, the screen prefers it
    later = [p["family"] for p in drawn[8:]]
    assert later.count("b") > later.count("a")
    # reproducible from the seed; another seed draws other candidates
    assert _run_toy(seed=3)[0] == drawn
    assert _run_toy(seed=4)[0] != drawn


def test_the_screen_prices_a_candidate_as_its_trial_would(tmp_path: Path) -> None:
    # Objective.price: the candidate's latency on the target, None over the budget (5 MFLOPs
    # refuses about half of the ding draws at these caps) or for a config ding rejects
    from explorer.prediction import predict_latency
    from explorer.profiling import profile_model
    from explorer.search._objective import Objective
    from explorer.search._space import suggest_config
    from explorer.search._study import _devices

    config = tiny_config(tmp_path, budgets=(parse_budget("5e6flops"),))
    target, devices = _devices(config)
    objective = Objective(config, device=target, devices=devices)
    rng = np.random.RandomState(0)
    admitted = refused = 0
    for _ in range(12):
        draw = _Draw(rng)
        try:
            _, _, cfg = suggest_config(
                draw, config.families, max_frames=1, max_image_px=32, fixed={"num_classes": 8}
            )
        except ss.ConfigError:
            assert objective.price(draw.params) is None
            continue
        model = ss.build(cfg)
        inputs = ss.example_inputs(model, 1)
        profile = profile_model(model, inputs)
        priced = objective.price(draw.params)
        if profile.flops > 5e6:
            assert priced is None
            refused += 1
        else:
            expected = predict_latency(profile, target, model=model, inputs=inputs).ms
            assert priced == ("ding", pytest.approx(expected), profile.flops)
            admitted += 1
    assert admitted >= 2 and refused >= 2


def test_a_screened_search_trains_only_candidates_within_the_budget(tmp_path: Path) -> None:
    # the same tight budget: after the random start every trial fits it, where random draws
    # miss it about half the time
    config = tiny_config(
        tmp_path / "run", budgets=(parse_budget("5e6flops"),), sampler="screen", trials=5
    )
    run_search(config, write_report=False)
    study = optuna.load_study(study_name="tiny", storage=config.storage_url)
    done = sorted(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.number,
    )
    screened = [t for t in done if t.number >= config.population]
    assert len(screened) >= 3
    for t in screened:
        assert t.user_attrs["feasible"], t.user_attrs.get("reason")
        assert t.user_attrs["flops"] <= 5e6
        assert t.user_attrs.get(TrialKey.MACRO_F1) is not None  # trained


def test_the_screen_draws_on_until_enough_candidates_fit_the_budget() -> None:
    # a budget that admits one draw in four: the screen keeps drawing (up to 4x --screen)
    # until --screen candidates fit, rather than stopping after --screen draws with one
    priced = []

    def one_in_four(params):  # type: ignore[no-untyped-def]
        priced.append(params)
        if len(priced) % 4:
            return None
        return Candidate(params["family"], params["cost"], flops=1e6 * params["cost"])

    sampler = ScreenSampler(draw=_toy_draw, price=one_in_four, screen=3, startup=0, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    trial = study.ask()
    trial.suggest_categorical("family", ["a", "b"])
    assert len(sampler.last_screen) == 3 and len(priced) == 12
    # a budget nothing fits: 4x --screen draws, then a plain random draw
    priced.clear()
    sampler = ScreenSampler(draw=_toy_draw, price=lambda p: priced.append(p), screen=3, seed=0)
    sampler.startup = 0
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.ask().suggest_categorical("family", ["a", "b"])
    assert len(priced) == 12 and sampler.last_screen == []
