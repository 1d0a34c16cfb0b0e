"""Sizes are checked before anything is built: a one-line refusal over the memory limit."""

from __future__ import annotations

import resource

import pytest

import search_spaces as ss
from explorer.cli import main
from explorer.errors import UsageError
from explorer.memory import DEFAULT_MAX_MEMORY, ENV_VAR, check_model_memory, parse_memory


@pytest.fixture(autouse=True)
def _no_limit_from_outside(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def cli(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "value"), [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("2e9", 2 * 10**9)]
)
def test_parse_memory(text: str, value: int) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "1e999GB", "10B", "nan"])
def test_parse_memory_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--max-memory"):
        parse_memory(text)


def test_estimate_counts_weights_inputs_and_activations() -> None:
    config = ss.get_preset("ding2025")
    total = check_model_memory(config, batch_size=2)
    weights = 4 * 66_584  # float32, no buffers
    inputs = 4 * 2 * (40 + 64 * 64)
    assert weights + inputs < total < weights + inputs + 2 * 10**6  # + one forward's activations


def test_huge_batch_is_refused_before_allocating(capsys) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err = cli(capsys, "profile", "kumar2025", "--batch-size", "1000000000")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "inputs" in err and "--max-memory" in err and "TB" in err
    # the refusal allocated nothing near the size it refused (kilobytes of RSS)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000


def test_max_memory_lowers_and_raises_the_limit(capsys) -> None:
    code, err = cli(capsys, "profile", "kumar2025", "--max-memory", "10MB", "--format", "json")
    assert code == 2 and "10 MB memory limit" in err and "weights 53.4 MB" in err
    code, _ = cli(capsys, "profile", "ding2025", "--max-memory", "10MB", "--format", "json")
    assert code == 0
    assert DEFAULT_MAX_MEMORY == 2 * 10**9


def test_the_environment_sets_the_limit_workers_inherit(monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, "1MB")
    with pytest.raises(UsageError, match="memory limit"):
        check_model_memory(ss.get_preset("kumar2025"), activations=False)


def test_commands_that_run_the_forward_count_its_activations(monkeypatch) -> None:
    from explorer.models import resolve_model

    need = check_model_memory(ss.get_preset("ding2025"), batch_size=16)
    sized = check_model_memory(ss.get_preset("ding2025"), batch_size=16, activations=False)
    monkeypatch.setenv(ENV_VAR, str((need + sized) // 2))  # between the two estimates
    assert resolve_model("ding2025", batch_size=16).model is not None  # profile: fake forward
    with pytest.raises(UsageError, match="activations"):
        resolve_model("ding2025", batch_size=16, activations=True)  # bench, export


def _saved_for_backward_bytes(model, inputs) -> int:
    """What autograd really keeps for the backward of one forward (unique storages)."""
    import torch

    storages: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs)
    return sum(storages.values())


@pytest.mark.parametrize(
    ("spec", "batch"), [("ding2025", 8), ("lu:frames=2,width_mult=0.25,image_size_px=64", 4)]
)
def test_training_estimate_counts_gradients_optimizer_and_saved_activations(spec, batch) -> None:
    import torch

    from explorer.memory import estimate_memory

    config = ss.config_from_string(spec)
    infer = estimate_memory(config, batch_size=batch)
    parts = estimate_memory(config, batch_size=batch, training=True)
    torch.manual_seed(0)
    model = ss.build(config).train()
    inputs = ss.example_inputs(model, batch)
    # a real Adam step: its gradients and state are what the estimate says
    opt = torch.optim.Adam(model.parameters())
    model(*inputs).sum().backward()
    opt.step()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    moments = sum(
        t.numel() * t.element_size()
        for state in opt.state.values()
        for k, t in state.items()
        if k in ("exp_avg", "exp_avg_sq")
    )
    assert parts["gradients"] == grads and parts["optimizer"] == moments
    assert parts["weights"] == infer["weights"] and parts["inputs"] == infer["inputs"]
    # activations: at least what autograd keeps, and far more than one inference's peak
    saved = _saved_for_backward_bytes(model, inputs)
    assert saved <= parts["activations"] <= 3 * saved
    assert parts["activations"] > infer["activations"]


def test_train_refuses_a_batch_whose_training_step_is_over_the_limit(capsys) -> None:
    config = ss.get_preset("ding2025")
    need = check_model_memory(config, batch_size=32, training=True)
    infer = check_model_memory(config, batch_size=32)
    assert need > 2 * infer
    limit = str((need + infer) // 2)  # the inference fits, the training step does not
    code, err = cli(
        capsys,
        "train",
        "ding2025",
        "--dataset",
        "synthetic:actors=2,clips_per_class=1,clip_seconds=0.5",
        "--epochs",
        "1",
        "--max-memory",
        limit,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "training MODEL 'ding2025'" in err and "gradients" in err and "optimizer" in err


def test_prune_refuses_fine_tuning_over_the_limit(capsys) -> None:
    config = ss.get_preset("ding2025")
    need = check_model_memory(config, batch_size=32, training=True)
    infer = check_model_memory(config, batch_size=32)
    code, err = cli(
        capsys,
        "prune",
        "ding2025",
        "--device",
        "rpi4",
        "--budget",
        "1e6flops",
        "--dataset",
        "synthetic:actors=2,clips_per_class=1,clip_seconds=0.5",
        "--finetune-epochs",
        "1",
        "--max-memory",
        str((need + infer) // 2),
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "fine-tuning 'ding2025'" in err and "optimizer" in err


def test_search_trains_only_candidates_whose_training_step_fits(tmp_path, monkeypatch) -> None:
    import optuna

    from explorer.memory import estimate_memory
    from explorer.search import run_search
    from tests._search_helpers import tiny_config

    limit = 3 * 10**6  # ding at 32 px: most networks fit, some training steps do not
    monkeypatch.setenv(ENV_VAR, str(limit))
    config = tiny_config(tmp_path / "run", trials=6, sampler="random", batch_size=8)
    run_search(config, write_report=False)
    study = optuna.load_study(study_name="tiny", storage=config.storage_url)
    trained = refused = 0
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE or "config" not in t.user_attrs:
            continue
        cfg = ss.config_from_dict(t.user_attrs["config"])
        fits = sum(estimate_memory(cfg, batch_size=8, activations=False).values()) <= limit
        step = sum(estimate_memory(cfg, batch_size=8, training=True).values())
        if "f1_curve" in t.user_attrs:  # trained: its training step was within the limit
            trained += 1
            assert step <= limit
        elif fits and step > limit:  # a network that fits, a training step that does not
            refused += 1
            assert "optimizer" in t.user_attrs["reason"] and not t.user_attrs["feasible"]
    assert trained >= 1 and refused >= 1


def test_train_refuses_features_over_the_limit_before_decoding_a_clip(capsys, monkeypatch) -> None:
    """640 clips of 16 frames at 128 px make more features than the 250 MB in which the
    training step fits: refused in one line, before a clip is decoded."""
    import explorer.data._build as build

    monkeypatch.setattr(build, "_decode_all", lambda *a, **k: pytest.fail("a clip was decoded"))
    code, err = cli(
        capsys,
        "train",
        "ding2025:image_size_px=128,frames=16",
        "--dataset",
        "synthetic:actors=2,clips_per_class=40,clip_seconds=0.5",
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--max-memory",
        "250MB",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "features of data set" in err and "640 samples of 16x1x128x128" in err
    assert "250 MB memory limit" in err and "--max-memory" in err


def test_a_search_whose_features_never_fit_stops_naming_the_limit(tmp_path, monkeypatch) -> None:
    """Each trial whose features are over the limit is recorded as invalid (nothing decoded,
    nothing trained); when every one is, the search stops saying why and what to raise."""
    import optuna

    from explorer.errors import ExplorerError
    from explorer.search import run_search
    from tests._search_helpers import tiny_config

    monkeypatch.setenv(ENV_VAR, str(10**7))  # ding at 32 px trains in 3 MB; 16,000 clips do not
    config = tiny_config(
        tmp_path / "run", trials=3, dataset="synthetic:actors=2,clips_per_class=1000"
    )
    with pytest.raises(ExplorerError, match=r"features of data set .*--max-memory") as info:
        run_search(config, write_report=False)
    assert len(str(info.value).splitlines()) == 1
    study = optuna.load_study(study_name="tiny", storage=config.storage_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and not any("f1_curve" in t.user_attrs for t in done)  # nothing trained
    reasons = [t.user_attrs.get("reason", "") for t in done]
    assert all("16000 samples" in r for r in reasons if "features" in r)
    assert sum("features of data set" in r for r in reasons) > 3 * 3  # most of the draws
