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
