"""Checkpoint integrity: a flipped bit, an edited weight or a special file is refused."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.errors import CheckpointError


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = ss.build(ss.config_from_string("lu:frames=2,width_mult=0.25"))
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    return save_checkpoint(path, model, class_names=[f"c{i}" for i in range(8)])


def _refused(path: Path, needle: str) -> str:
    with pytest.raises(CheckpointError, match=needle) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_written_checkpoint_verifies(ckpt: Path) -> None:
    loaded = load_checkpoint(ckpt)
    assert loaded.integrity == "sha256" and loaded.format_version == 2
    assert torch.load(ckpt, weights_only=True)["digest"].startswith("sha256:")


def test_one_flipped_bit_in_a_weight_is_refused(ckpt: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(ckpt) as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size)
        data_start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    raw = bytearray(ckpt.read_bytes())
    raw[data_start + member.file_size // 2] ^= 0x01  # lowest bit of one byte of one weight
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(raw))
    torch.load(bad, weights_only=True)  # torch itself reads it without a word
    _refused(bad, "CRC-32")


def test_an_edited_weight_with_valid_crcs_is_refused_by_the_digest(
    ckpt: Path, tmp_path: Path
) -> None:
    data = torch.load(ckpt, weights_only=True)
    name = next(k for k, v in data["state_dict"].items() if v.is_floating_point() and v.numel())
    flat = data["state_dict"][name].view(-1)
    flat.view(torch.int32)[0] ^= 1  # one bit of the first value
    bad = tmp_path / "edited.pt"
    torch.save(data, bad)  # a well-formed zip: only the digest can tell
    _refused(bad, "SHA-256 digest differs")
    data = torch.load(ckpt, weights_only=True)
    data["metrics"] = {"macro_f1": 0.99}  # metadata is covered too
    torch.save(data, bad)
    _refused(bad, "digest")


def test_version_1_files_predate_the_digest_and_still_load(ckpt: Path, tmp_path: Path) -> None:
    data = torch.load(ckpt, weights_only=True)
    del data["digest"]
    old = tmp_path / "v1.pt"
    torch.save({**data, "format_version": 1}, old)
    assert load_checkpoint(old).integrity == "crc32"
    torch.save({**data, "format_version": 2}, old)  # a version-2 file without its digest
    _refused(old, "no valid digest")


def test_a_fifo_named_like_a_checkpoint_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    _refused(fifo, "FIFO")
