"""Fixtures of ``hostile_inputs.py``, made in their own process (the benchmark's own process
forks one child per case and must not have run torch operators, whose thread pools do not
survive a fork).

Writes into the directory given as the only argument:

- ``small.pt``: a valid checkpoint of a small ``lu`` model, and ``ckpt/*.pt`` edited copies
  (metadata, tensors, pickled code) listed in ``ckpt/index.json``;
- ``good.wav``, ``good.mp4``: one short clip with a face-like picture;
- ``float.wav``: a float WAV, for NaN/inf copies made by the generator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch

import search_spaces as ss
from explorer.checkpoints import save_checkpoint


class _Code:
    """Unpickling this would create the file PWNED in the working directory."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def _edits(good: dict) -> dict[str, dict]:
    def with_(**kw):
        return {**good, **kw}

    state = good["state_dict"]
    first = next(iter(state))
    shapes = good["shapes"]
    edits = {
        "format_x": with_(format="x"),
        "version_neg": with_(format_version=-5),
        "version_99": with_(format_version=99),
        "version_str": with_(format_version="2"),
        "version_none": with_(format_version=None),
        "family_unknown": with_(family="nope", config={**good["config"], "family": "nope"}),
        "config_empty": with_(config={}),
        "config_list": with_(config=[1, 2]),
        "config_huge": with_(config={**good["config"], "width_mult": 1e6}),
        "config_nan": with_(config={**good["config"], "width_mult": float("nan")}),
        "config_frames_neg": with_(config={**good["config"], "frames": -3}),
        "spec_empty": with_(input_spec={}),
        "spec_str": with_(input_spec="x"),
        "classes_str": with_(class_names="happy"),
        "classes_int": with_(class_names=[1, 2]),
        "classes_many": with_(class_names=[f"c{i}" for i in range(100_000)]),
        "state_missing": {k: v for k, v in good.items() if k != "state_dict"},
        "state_list": with_(state_dict=[1, 2]),
        "state_nontensor": with_(state_dict={**state, first: [1.0, 2.0]}),
        "state_dropkey": with_(state_dict={k: v for k, v in state.items() if k != first}),
        "state_extrakey": with_(state_dict={**state, "bogus.weight": torch.zeros(3)}),
        "state_wrongshape": with_(state_dict={**state, first: torch.zeros(7, 7)}),
        "state_nan": with_(state_dict={k: v.float().fill_(float("nan")) for k, v in state.items()}),
        "shapes_huge": with_(shapes={**shapes, first: [1_000_000, 350_000]}),
        "shapes_list": with_(shapes=[1, 2]),
        "shapes_text": with_(shapes={**shapes, first: ["x"]}),
        "digest_missing": {k: v for k, v in good.items() if k != "digest"},
        "digest_wrong": with_(digest="sha256:" + "0" * 64),
        "metrics_deep": with_(metrics=_deep(200)),
        "extra_str": with_(extra="x"),
        "not_dict": [1, 2, 3],
        "tensor_only": torch.zeros(3),
    }
    return edits


def _deep(n: int) -> dict:
    d: dict = {}
    for _ in range(n):
        d = {"a": d}
    return d


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = ss.build(ss.config_from_string("lu:frames=2,width_mult=0.25"))
    good_path = save_checkpoint(out / "small.pt", model, class_names=[f"c{i}" for i in range(8)])
    good = torch.load(good_path, weights_only=True)
    variants = out / "ckpt"
    variants.mkdir(exist_ok=True)
    index = []
    for name, payload in _edits(good).items():
        torch.save(payload, variants / f"{name}.pt")
        index.append(name)
    torch.save({**good, "x": _Code()}, variants / "pickled_code.pt")
    index.append("pickled_code")
    (variants / "index.json").write_text(json.dumps(index), encoding="utf-8")

    sr = 16000
    t = np.arange(int(sr * 0.5)) / sr
    y = (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    sf.write(str(out / "good.wav"), y, sr, subtype="PCM_16")
    sf.write(str(out / "float.wav"), y, sr, subtype="FLOAT")
    frame = np.full((96, 96, 3), 90, np.uint8)
    cv2.circle(frame, (48, 48), 30, (200, 180, 160), -1)  # a face-coloured disc
    writer = cv2.VideoWriter(str(out / "good.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (96, 96))
    for i in range(6):
        writer.write(np.roll(frame, i, axis=1))
    writer.release()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
