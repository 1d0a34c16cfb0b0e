"""How fast ``profile_model`` is beside fvcore's FlopCountAnalysis, thop, FlopCounterMode, NNI.

For models of rising size, in one process: our profiling time (fake tensors, no arithmetic),
each external counter's time on the same model (they run the real forward), the speed ratios,
and how many MACs each counter misses relative to ours. Every tool is warm: each runs once
untimed on the model first (imports, lazy initialisation, first-call allocations), then the
tools take turns for ``--repeat`` rounds and each figure is the median of its rounds, so no
tool pays a one-off cost the others have already paid. Prints a table and writes JSON.

    .venv/bin/python benchmarks/profile_speed.py [--out benchmarks/results/profile_speed.json]
                                                 [--quick] [--repeat 5] [--counters ...]

NNI (extra ``nni``) lives in its own venv: ``.venv-nni/bin/python benchmarks/profile_speed.py
--counters nni --out benchmarks/results/profile_speed_nni.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.profiling import profile_model  # noqa: E402
from explorer.profiling._counters import run_counter  # noqa: E402
from tests.profiling_models import FrameGRU, ResNet18, TinyConvNet  # noqa: E402

DEFAULT_COUNTERS = "torch,fvcore,thop"


class GRUEncoder(nn.Module):
    """Kumar's Bi-GRU over 90 ResNet-18 frame features."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(512, 256, batch_first=True, bidirectional=True)
        self.head = nn.Linear(512, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x)[0].mean(1))


class CrossAttention(nn.Module):
    """Kumar's bidirectional cross-attention (4 heads, d = 256, 60 steps) + an encoder layer."""

    def __init__(self) -> None:
        super().__init__()
        self.a2v = nn.MultiheadAttention(256, 4, batch_first=True)
        self.v2a = nn.MultiheadAttention(256, 4, batch_first=True)
        self.enc = nn.TransformerEncoderLayer(256, 4, 512, batch_first=True)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x, _ = self.a2v(a, v, v)
        y, _ = self.v2a(v, a, a)
        return self.enc(x + y)


def _models(quick: bool) -> list[tuple[str, Callable[[], tuple[nn.Module, tuple[Any, ...]]]]]:
    models: list[tuple[str, Callable[[], tuple[nn.Module, tuple[Any, ...]]]]] = [
        ("tiny-conv 32²", lambda: (TinyConvNet(), (torch.randn(1, 1, 32, 32),))),
    ]
    try:
        import search_spaces as ss

        if "ding2025" in ss.presets():

            def ding() -> tuple[nn.Module, tuple[Any, ...]]:
                m = ss.build(ss.get_preset("ding2025"))
                return m, ss.example_inputs(m, 1)

            models.append(("ding2025", ding))
    except ImportError:  # pragma: no cover
        pass
    models += [
        ("bi-gru 90×512", lambda: (GRUEncoder(), (torch.randn(1, 90, 512),))),
        (
            "cross-attention 60×256",
            lambda: (CrossAttention(), (torch.randn(1, 60, 256), torch.randn(1, 60, 256))),
        ),
        ("resnet18 1×224²", lambda: (ResNet18(), (torch.randn(1, 3, 224, 224),))),
    ]
    if not quick:
        models += [
            ("resnet18 16×224²", lambda: (ResNet18(), (torch.randn(16, 3, 224, 224),))),
            (
                "resnet18+bi-gru 90×224²",
                lambda: (FrameGRU(), (torch.randn(1, 90, 3, 224, 224),)),
            ),
        ]
    return models


def _time_all(
    model: nn.Module, inputs: tuple[Any, ...], repeat: int, counters: tuple[str, ...]
) -> tuple[float, Any, dict[str, list[Any]]]:
    """Median seconds of ours, our profile, and each counter's results over interleaved rounds.

    One untimed warm-up run of every tool first; then ``repeat`` rounds in which ours and each
    counter run once, in turn, so a burst of load on the machine hits all of them alike.
    """
    profile = profile_model(model, inputs)
    for counter in counters:
        run_counter(counter, model, inputs, profile=profile)
    ours: list[float] = []
    theirs: dict[str, list[Any]] = {c: [] for c in counters}
    for _ in range(repeat):
        start = time.perf_counter()
        profile = profile_model(model, inputs)
        ours.append(time.perf_counter() - start)
        for counter in counters:
            theirs[counter].append(run_counter(counter, model, inputs, profile=profile))
    return statistics.median(ours), profile, theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/profile_speed.json")
    parser.add_argument("--quick", action="store_true", help="skip the two largest models")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per tool (median)")
    parser.add_argument("--counters", default=DEFAULT_COUNTERS, help="comma-separated counters")
    args = parser.parse_args(argv)
    counters = tuple(c.strip() for c in args.counters.split(",") if c.strip())

    torch.manual_seed(0)
    # the first fake-tensor profile imports torch's fake-tensor stack: time it apart
    start = time.perf_counter()
    profile_model(TinyConvNet(), torch.randn(1, 1, 32, 32))
    first_call_s = time.perf_counter() - start

    rows: list[dict[str, Any]] = []
    for name, make in _models(args.quick):
        model, inputs = make()
        model.eval()
        ours_s, profile, theirs = _time_all(model, inputs, args.repeat, counters)
        row: dict[str, Any] = {
            "model": name,
            "params": profile.params,
            "macs": profile.macs,
            "ours_s": ours_s,
            "peak_activation_bytes": profile.peak_activation_bytes,
        }
        for counter in counters:
            result = theirs[counter][-1]
            seconds = statistics.median(r.seconds for r in theirs[counter])
            row[f"{counter}_s"] = seconds
            row[f"{counter}_ratio"] = seconds / ours_s if ours_s else float("nan")
            row[f"{counter}_macs"] = result.macs
            row[f"{counter}_missed_macs"] = result.missed_macs
            row[f"{counter}_skipped"] = list(result.skipped)
        rows.append(row)
        _print_row(row, counters)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "counters": list(counters),
        "first_call_s": first_call_s,
        "repeat": args.repeat,
        "method": "one process; every tool warmed up once, then interleaved rounds, medians",
        "rows": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nfirst profile in a process (imports the fake-tensor stack): {first_call_s:.2f} s")
    print(f"wrote {args.out}")
    return 0


_HEADER_DONE = False


def _print_row(row: dict[str, Any], counters: tuple[str, ...]) -> None:
    global _HEADER_DONE
    if not _HEADER_DONE:
        print(
            f"{'model':26} {'GMACs':>8} {'ours s':>7} "
            + " ".join(f"{c + ' s':>9} {'×ours':>6} {'missed MACs':>13}" for c in counters)
        )
        _HEADER_DONE = True
    cells = " ".join(
        f"{row[f'{c}_s']:9.3f} {row[f'{c}_ratio']:6.1f} {row[f'{c}_missed_macs']:13,}"
        for c in counters
    )
    print(f"{row['model']:26} {row['macs'] / 1e9:8.3f} {row['ours_s']:7.3f} {cells}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
