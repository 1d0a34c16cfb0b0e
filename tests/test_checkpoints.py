"""Safe checkpoints: round trip, pruned shapes, and refusal of anything unsafe or foreign."""

from __future__ import annotations

import os
import pathlib
import pickle

import pytest
import torch
from torch import nn

import search_spaces as ss
from explorer.checkpoints import FORMAT, load_checkpoint, save_checkpoint
from explorer.errors import CheckpointError


@pytest.fixture()
def ding() -> ss.AVModel:
    torch.manual_seed(0)
    return ss.build("ding2025")


def test_round_trip_is_plain_data_and_rebuilds_the_same_model(ding, tmp_path) -> None:
    path = save_checkpoint(
        tmp_path / "m.pt",
        ding,
        metrics={"macro_f1": 0.5},
        class_names=[f"c{i}" for i in range(8)],
        extra={"note": "x"},
    )
    raw = torch.load(path, weights_only=True)  # what any user can do safely
    assert raw["format"] == FORMAT and raw["family"] == "ding"
    assert raw["config"]["family"] == "ding" and raw["input_spec"]["audio_kind"] == "mfcc_mean"
    assert raw["shapes"]["head.0.weight"] == [16, 2528]
    ckpt = load_checkpoint(path)
    assert ckpt.class_names[3] == "c3" and ckpt.metrics["macro_f1"] == 0.5
    assert ckpt.config == ss.get_preset("ding2025") and ckpt.input_spec == ding.input_spec
    rebuilt = ckpt.build_model()
    inputs = ss.example_inputs(ding, 3)
    ding.eval()
    torch.testing.assert_close(rebuilt(*inputs), ding(*inputs))


def test_pruned_shapes_are_restored(ding, tmp_path) -> None:
    """A model whose layers were narrowed after building (as structured pruning does)."""
    feats = ding.visual.features
    feats[0] = nn.Conv2d(1, 10, 3)
    feats[3] = nn.Conv2d(10, 32, 3)
    ding.audio.features[3] = nn.Conv1d(16, 20, 5)
    ding.head[0] = nn.Linear(2304 + 7 * 20, 16)
    path = save_checkpoint(tmp_path / "pruned.pt", ding)
    rebuilt = load_checkpoint(path).build_model()
    assert rebuilt.visual.features[0].out_channels == 10
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in ding.parameters())
    inputs = ss.example_inputs(ding, 2)
    ding.eval()
    torch.testing.assert_close(rebuilt(*inputs), ding(*inputs))


class _Evil:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("container", ["torch", "pickle"])
def test_a_pickle_with_code_is_refused_and_nothing_runs(tmp_path, container: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": FORMAT, "format_version": 1, "state_dict": {}, "x": _Evil(marker)}
    if container == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert not marker.exists()
    assert "\n" not in str(exc.value)
    # sanity: the file really does run code when unpickled unsafely
    if container == "pickle":
        pickle.loads(path.read_bytes())
        assert marker.exists()


def test_corrupt_foreign_and_missing_files(ding, tmp_path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", ding)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(2000))
    foreign = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(3)}, foreign)
    newer = tmp_path / "newer.pt"
    raw = torch.load(good, weights_only=True)
    torch.save({**raw, "format_version": 99}, newer)
    for path, needle in [
        (cut, "corrupt"),
        (junk, "corrupt"),
        (foreign, "not an explorer"),
        (newer, "upgrade"),
        (tmp_path / "none.pt", "does not exist"),
    ]:
        with pytest.raises(CheckpointError, match=needle):
            load_checkpoint(path)


def test_interrupted_save_leaves_the_old_file_and_no_temporary(ding, tmp_path, monkeypatch) -> None:
    path = save_checkpoint(tmp_path / "m.pt", ding, metrics={"v": 1})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, ding, metrics={"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_models_without_a_family_config_cannot_be_saved(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="search_spaces"):
        save_checkpoint(tmp_path / "x.pt", nn.Linear(2, 2))
