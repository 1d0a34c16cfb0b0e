"""The search's real path on a tiny problem: space mapping, infeasible trials, outputs, resume."""

from __future__ import annotations

import contextlib
import csv
import json
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

import search_spaces as ss
from explorer.budget import parse_budget
from explorer.errors import UsageError
from explorer.search import run_search
from explorer.search._space import suggest_config
from explorer.search._study import open_study
from tests._search_helpers import tiny_config


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


def test_space_mapping_covers_every_family_decodes_tuples_and_caps_inputs() -> None:
    families = tuple(ss.list_families())
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1)
    )
    seen, valid = set(), 0
    for _ in range(60):
        trial = study.ask()
        try:
            family, values, config = suggest_config(trial, families, max_frames=2, max_image_px=48)
        except ss.ConfigError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        valid += 1
        seen.add(family)
        assert ss.config_to_dict(config)["family"] == family
        for name, value in values.items():
            assert getattr(config, name) == value  # decoded, e.g. tuples stay tuples
        spec = ss.build(config).input_spec if family == "ding" else None
        if "frames" in values:
            assert values["frames"] <= 2
        if "image_size_px" in values:
            assert values["image_size_px"] <= 48
        if spec is not None:
            assert spec.frames <= 2 and spec.height <= 48
        # every field of every family is drawn, so NSGA-II sees one fixed search space
        assert len(trial.params) == 1 + sum(len(ss.get_family(f).space) for f in families)
        study.tell(trial, [0.0, 1.0])
    assert valid >= 20
    assert seen == set(families)


def test_bounded_knobs_are_lowered_not_rejected() -> None:
    # kumar's Tucker ranks are bounded by t_common / d_model (at_most): a draw above the bound
    # must become the bound, so no kumar trial is lost to "rank exceeds its mode's size".
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3)
    )
    lowered = 0
    for _ in range(40):
        trial = study.ask()
        _, values, config = suggest_config(trial, ("kumar",), max_frames=2, max_image_px=48)
        assert config.tucker_rank_time <= config.t_common
        assert config.tucker_rank_audio <= config.d_model
        assert config.tucker_rank_visual <= config.d_model
        raw = trial.params["kumar.tucker_rank_time"]
        assert values["tucker_rank_time"] == min(raw, values["t_common"])
        lowered += raw > values["t_common"]
        study.tell(trial, [0.0, 1.0])
    assert lowered >= 5  # the bound really was hit (t_common is often below 30)


def test_over_budget_candidates_are_infeasible_and_never_touch_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import explorer.data
    import explorer.training

    def forbidden(*args, **kwargs):
        raise AssertionError("an infeasible candidate built features or trained")

    monkeypatch.setattr(explorer.data, "build_features", forbidden)
    monkeypatch.setattr(explorer.training, "train", forbidden)
    config = tiny_config(
        tmp_path / "run", budgets=(parse_budget("1k flops"),), trials=4, reference_presets=True
    )
    result = run_search(config, write_report=False)
    assert result.counts["complete"] == 4 and result.counts["feasible"] == 0
    assert result.counts["failed"] == 0
    study = optuna.load_study(study_name="tiny", storage=config.storage_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 4
    for t in done:
        assert t.values[0] == 0.0
        assert not t.user_attrs["feasible"]
        assert "f1_curve" not in t.user_attrs and "checkpoint" not in t.user_attrs
        assert max(t.constraints.values()) > 0  # the samplers rank it below feasible ones
        if "flops" in t.user_attrs:  # over budget (not an invalid config): real cost kept
            assert t.user_attrs["flops"] > 1000
            assert t.values[1] == pytest.approx(t.user_attrs["predicted_ms"]["orin-nano"])
    assert not (tmp_path / "run" / "checkpoints").exists()
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    assert {r["feasible"] for r in rows} == {"False"}
    refs = json.loads((tmp_path / "run" / "search.json").read_text())["references"]
    assert refs and all(not r["trained"] and not r["feasible"] for r in refs)


def test_search_trains_writes_outputs_and_resumes(tmp_path: Path) -> None:
    from explorer.checkpoints import load_checkpoint

    config = tiny_config(tmp_path / "run", trials=3)
    first = run_search(config)
    assert first.stopped == "trials" and first.counts["complete"] == 3
    assert first.counts["trained"] >= 1
    out = tmp_path / "run"
    rows = list(csv.DictReader((out / "results.csv").open()))
    for col in (
        "number",
        "state",
        "family",
        "feasible",
        "pareto",
        "macro_f1",
        "accuracy",
        "params",
        "macs",
        "flops",
        "weight_bytes",
        "peak_activation_bytes",
        "predicted_ms_orin-nano",
        "predicted_ms_rpi4",
        "train_seconds",
        "epochs",
        "config_json",
        "checkpoint",
        "objective",
        "cost",
    ):
        assert col in rows[0], col
    assert {r["objective"] for r in rows} == {"predicted_ms_orin-nano"}
    pareto = [r for r in rows if r["pareto"] == "True"]
    assert pareto and sorted(int(r["number"]) for r in pareto) == sorted(first.pareto)
    for r in rows:  # checkpoints: kept for the front only, and they rebuild the model
        if r["pareto"] == "True":
            ckpt = load_checkpoint(out / r["checkpoint"])
            assert ss.config_to_dict(ckpt.config) == json.loads(r["config_json"])
            ckpt.build_model()
        else:
            assert r["checkpoint"] == ""
    assert len(list((out / "checkpoints").glob("*.pt"))) == len(pareto)
    summary = json.loads((out / "search.json").read_text())
    assert summary["objectives"][1]["name"] == "predicted_ms_orin-nano"
    assert summary["settings"]["budgets"] == ["1e8flops"] and "environment" in summary
    assert first.report_html is None or first.report_html.is_file()

    before = {
        t.number: (t.params, t.values, t.state)
        for t in optuna.load_study(study_name="tiny", storage=config.storage_url).trials
    }
    second = run_search(tiny_config(tmp_path / "run", trials=4), write_report=False)
    assert second.counts["complete"] == 4
    after = optuna.load_study(study_name="tiny", storage=config.storage_url).trials
    for t in after:
        if t.number in before:
            assert (t.params, t.values, t.state) == before[t.number]
    assert len(after) > len(before)


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    open_study(tiny_config(tmp_path / "run"))
    with pytest.raises(UsageError, match=r"other settings.*budgets"):
        open_study(tiny_config(tmp_path / "run", budgets=(parse_budget("2e8flops"),)))
    # the same budget written differently is the same problem
    open_study(tiny_config(tmp_path / "run", budgets=(parse_budget("100 MFLOPs"),)))


def test_first_trials_try_every_family_once(tmp_path: Path) -> None:
    families = tuple(ss.list_families())
    for sampler in ("nsga2", "tpe", "random"):
        config = tiny_config(tmp_path / sampler, families=families, sampler=sampler)
        study = open_study(config)
        drawn = []
        for _ in range(len(families) + 2):
            trial = study.ask()
            with contextlib.suppress(ss.ConfigError):  # some drawn combinations are invalid
                suggest_config(trial, families, max_frames=1, max_image_px=32)
            drawn.append(trial.params["family"])
            study.tell(trial, [0.1, 1.0])
        assert drawn[: len(families)] == list(families), sampler
        # A study opened again (resume, or a worker joining) continues past the forced slots.
        study = open_study(config)
        assert study.ask().number == len(families) + 2


def test_successive_halving_promotes_the_top_third_of_a_family_and_the_rung_front(
    tmp_path: Path,
) -> None:
    from explorer.search._objective import Objective

    config = tiny_config(
        tmp_path / "run", epochs=9, min_epochs=1, reduction=3, early_stop_startup=3
    )
    assert config.rungs == (1, 3)
    study = optuna.create_study(directions=["maximize", "minimize"])
    # peers at a rung are compared by their best score so far (the dips do not count)
    curves = ([0.2, 0.5, 0.3], [0.2, 0.4, 0.1], [0.1, 0.3, 0.2], [0.3, 0.2, 0.6], [0.1, 0.1, 0.1])
    for i, f1s in enumerate(curves):
        attrs = {"f1_curve": f1s, "family": "ding"}
        study.add_trial(optuna.trial.create_trial(values=[f1s[-1], 1.0 + i], user_attrs=attrs))
    # a faster-learning family does not set the bar for ding
    for _ in range(3):
        attrs = {"f1_curve": [0.9, 0.9, 0.9], "family": "kumar"}
        study.add_trial(optuna.trial.create_trial(values=[0.9, 9.0], user_attrs=attrs))
    objective = Objective(config, device=None, devices={})
    trial = study.ask()
    trial.set_user_attr("family", "ding")
    # rung 3 (epoch index 2): ding bests 0.5, 0.4, 0.3, 0.6, 0.1; top ceil(6/3) = 2 promoted
    assert objective._stop_reason(trial, 2, 0.45).startswith("successive halving")
    assert objective._stop_reason(trial, 2, 0.55) == ""  # second best
    assert objective._stop_reason(trial, 1, 0.0) == ""  # not a rung
    assert objective._stop_reason(trial, 8, 0.0) == ""  # the last epoch: nothing to save
    # cheaper than every better candidate: on the rung's front, so promoted anyway
    assert objective._stop_reason(trial, 2, 0.45, cost=0.5) == ""
    assert objective._stop_reason(trial, 2, 0.45, cost=2.5).startswith("successive halving")
    other = study.ask()
    other.set_user_attr("family", "lu")  # no lu peers yet: never stopped
    assert objective._stop_reason(other, 2, 0.0) == ""


def test_trials_stopped_early_are_kept_but_not_on_the_front() -> None:
    from explorer.search._results import pareto_numbers

    def trial(f1: float, cost: float, stopped: str = "") -> optuna.trial.FrozenTrial:
        attrs = {"feasible": True, "stopped_early": stopped}
        return optuna.trial.create_trial(values=[f1, cost], user_attrs=attrs)

    study = optuna.create_study(directions=["maximize", "minimize"])
    for t in (
        trial(0.6, 2.0),
        trial(0.4, 1.0),
        trial(0.1, 0.5, "median rule: macro-F1 0.1 < 0.3 at epoch 3"),  # cheapest, stopped
        trial(0.3, 1.5),  # dominated by trial 1
    ):
        study.add_trial(t)
    assert pareto_numbers(study.trials) == [1, 0]


def test_best_fully_trained_candidate_of_each_family(tmp_path: Path) -> None:
    from explorer.search import SearchResult

    def row(number: int, family: str, f1: float | None, cost: float, **extra) -> dict:
        return {"number": number, "family": family, "macro_f1": f1, "cost": cost,
                "feasible": True, "stopped_early": "", **extra}  # fmt: skip

    rows = (
        row(0, "ding", 0.40, 0.005),
        row(1, "ding", 0.45, 0.006),
        row(2, "lu", 0.50, 0.04, stopped_early="median rule"),  # not fully trained
        row(3, "lu", 0.30, 0.05),
        row(4, "yang", None, 9.0, feasible=False),  # over budget, never trained
    )
    result = SearchResult(
        config=tiny_config(tmp_path), out_dir=tmp_path, results_csv=tmp_path / "r.csv",
        search_json=tmp_path / "s.json", report_html=None, rows=rows, pareto=(1,),
        counts={}, wall_seconds=1.0, stopped="trials",
    )  # fmt: skip
    assert [(r["family"], r["number"]) for r in result.best_per_family] == [("ding", 1), ("lu", 3)]


def test_same_seed_same_trials_same_scores(tmp_path: Path) -> None:
    """Weights are seeded per trial: two fresh studies with one seed train identical networks."""
    scores = []
    for run in ("a", "b"):
        # random draws: both of its first two fit the budget (the screen's start draws others)
        config = tiny_config(tmp_path / run, trials=2, confirm_seeds=1, sampler="random")
        result = run_search(config)
        scores.append(
            [(r["config_json"], r["macro_f1"], r["macro_f1_mean"], r["evaluations"], r["pareto"])
             for r in result.rows]
        )  # fmt: skip
    assert scores[0] == scores[1]
    assert all(f1 is not None for _, f1, _, _, _ in scores[0])
    # the confirmation stage ran (a second evaluation of each front member), reproducibly
    assert {n for *_, n, on_front in scores[0] if on_front} == {2}


def test_each_family_starts_from_its_paper_model_at_the_search_caps(tmp_path: Path) -> None:
    # the family slots draw the papers' presets projected onto the capped space: ding2025's
    # 64-px face becomes the 48-px cap, every other field is the paper's; a family without a
    # paper (hybrid) is drawn by the sampler; --no-paper-starts gives a random first ding
    from explorer.search._study import _sampler

    for starts in (True, False):
        config = tiny_config(
            tmp_path,
            families=("ding", "hybrid"),
            paper_starts=starts,
            max_frames=2,
            max_image_px=48,
        )
        study = optuna.create_study(
            directions=["maximize", "minimize"], sampler=_sampler(config, 0)
        )
        drawn = []
        for _ in range(2):
            trial = study.ask()
            drawn.append(suggest_config(trial, config.families, max_frames=2, max_image_px=48))
            study.tell(trial, [0.5, 1.0])
        assert [family for family, _, _ in drawn] == ["ding", "hybrid"]
        ding = ss.config_to_dict(drawn[0][2])
        paper = {**ss.config_to_dict(ss.get_preset("ding2025")), "image_size_px": 48}
        assert (ding == paper) is starts, ding


def test_only_paper_models_within_the_budget_start_a_family(tmp_path: Path) -> None:
    # under 1e9flops ding2025 (14 MFLOPs) and ishtiaq2025 (240 MFLOPs) fit and start their
    # families; lu2025 (1.29 GFLOPs) does not, so lu's first trial is the sampler's, as is
    # hybrid's (no paper); with a looser budget lu2025 starts too, shrunk to the caps
    from explorer.search._study import paper_start

    caps = {"max_frames": 2, "max_image_px": 48}
    tight = tiny_config(tmp_path, budgets=(parse_budget("1e9flops"),), **caps)
    loose = tiny_config(tmp_path, budgets=(parse_budget("2e9flops"),), **caps)
    assert paper_start(tight, "ding")["ding.image_size_px"] == 48
    assert paper_start(tight, "ishtiaq")["ishtiaq.frames"] == 2
    assert paper_start(tight, "lu") == {}
    assert paper_start(loose, "lu")["lu.frames"] == 2
    assert paper_start(tight, "hybrid") == {}


def test_cli_workers_1_with_a_seed_repeats_a_run_exactly(tmp_path: Path) -> None:
    # `explorer search --workers 1 --seed S` twice, each in its own directory: the same trials,
    # configs and scores in results.csv (only the measured times may differ); another seed
    # draws other candidates
    import subprocess

    from tests._search_helpers import cli_args, subprocess_env

    env = subprocess_env(tmp_path / "features")
    timing = ("seconds", "_s", "host_ms")  # wall times, and the host latency measured

    def rows(run: str, seed: str) -> list[dict[str, str]]:
        args = cli_args(tmp_path / run, trials=3, extra=("--seed", seed, "--confirm-seeds", "1"))
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        with (tmp_path / run / "results.csv").open(encoding="utf-8") as f:
            table = list(csv.DictReader(f))
        return [{k: v for k, v in r.items() if not k.endswith(timing)} for r in table]

    first, again, other = rows("a", "7"), rows("b", "7"), rows("c", "8")
    assert len(first) >= 3 and first == again
    assert [r["macro_f1"] for r in first if r["macro_f1"]]  # trained, so scores were compared
    assert [r["config_json"] for r in first] != [r["config_json"] for r in other]


def test_a_preset_over_the_caps_is_compared_through_its_start_at_the_caps(tmp_path: Path) -> None:
    # ding2025's 64-px face is over 4x the 24-px cap, so the preset is profiled, not trained;
    # the search started ding from it at the caps (trial 0), and the preset's row points there
    config = tiny_config(
        tmp_path / "run", trials=2, max_image_px=24, reference_presets=True, population=2
    )
    result = run_search(config, write_report=False)
    (ref,) = [r for r in result.references if r["name"] == "ding2025"]
    assert ref["feasible"] and not ref["trained"]
    assert ref["at_caps"] == 0
    row = next(r for r in result.rows if r["number"] == 0)
    assert json.loads(row["config_json"])["image_size_px"] < 64  # the smallest ding face
    assert (
        f"at the search's input caps it is trial #0: macro-F1 {row['macro_f1']:.3f}"
        in (ref["note"])
    )
    assert ref["note"].startswith("not trained: its video input is over 4x")
    stored = json.loads((tmp_path / "run" / "search.json").read_text())["references"]
    assert [r.get("at_caps") for r in stored if r["name"] == "ding2025"] == [0]


def test_the_search_limits_numpy_blas_threads_as_it_does_torch_threads(tmp_path: Path) -> None:
    """numpy's BLAS threads (feature extraction) follow ``threads`` while trials run, and
    are restored after: at two BLAS threads per worker they spin-wait against each other."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from explorer.training import train as real_train

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    seen: list[set[int]] = []

    def recording(model, features, split, *, settings, on_epoch=None):
        seen.append(blas_threads())
        return real_train(model, features, split, settings=settings, on_epoch=on_epoch)

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        assert before == {2}
        run_search(tiny_config(tmp_path, trials=2, threads=1), train_fn=recording)
        assert blas_threads() == before
    assert seen and all(s == {1} for s in seen)


def test_a_profile_file_outside_the_registry_is_a_search_target_workers_read_again(
    tmp_path: Path,
) -> None:
    """``--device FILE`` (say ``explorer calibrate --out FILE``'s profile): the study labels
    the file's key and stores the file's absolute path, which a worker (``load_stored_config``)
    reads again; the key alone names no known device here."""
    import device_profiles
    from explorer.search._study import load_stored_config

    text = device_profiles.to_toml(device_profiles.get("orin-nano"))
    board = tmp_path / "boards" / "my-board.toml"
    board.parent.mkdir()
    board.write_text(text.replace('key = "orin-nano"', 'key = "my-board"', 1), encoding="utf-8")
    with pytest.raises(device_profiles.DeviceError):
        device_profiles.get("my-board")
    budgets = (parse_budget("1e8flops"), parse_budget(f"50ms@{board}"))
    config = tiny_config(tmp_path / "run", device=str(board), budgets=budgets, trials=1)
    assert run_search(config, write_report=False).counts["complete"] == 1
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    assert rows[0]["objective"] == "predicted_ms_my-board" and float(rows[0]["cost"]) > 0
    stored = load_stored_config(config.storage_url, "tiny")
    assert stored.device == "my-board"
    assert stored.device_files == {"my-board": str(board.resolve())}
    assert run_search(replace(stored, trials=2), write_report=False).counts["complete"] == 2
