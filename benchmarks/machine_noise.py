"""How steady is this machine's speed, run to run, and how much does pacing take out?

    taskset -c 1 python benchmarks/machine_noise.py              # 150 s, results JSON
    taskset -c 1 python benchmarks/machine_noise.py --seconds 30

Round after round, each of eight seeded family networks (ONNX Runtime, one thread, thread CPU
time) is timed in one run right after warm one-run readings of three reference models: the
calibration's reference network (``_sampling.reference_network``), an elementwise Add of two
16-MB tensors (memory-bound) and a 160 x 160 matrix product (cache-resident compute). Per
network it reports the spread (sd of the log time) of:

- its single runs, raw;
- its runs divided by each reference's reading just before them (what the calibration's pacing
  does with the first), and by the best least-squares mix of all three;
- the medians of windows of 100 rounds, raw and divided by the reference's window median
  (the drift over tens of seconds that a long median inherits).

Then it times 24 seeded family networks the way ``explorer calibrate`` samples them
(``_sampling.measure_kernels``: export, profiled runs, paced whole runs, 0.2 s), three rounds,
and reports how far one such timing repeats (sd of the log, each round's median divided out).

On a machine whose speed jumps at the scale of single runs, dividing by a reading taken a few
milliseconds earlier takes little out; only medians over many runs converge. The learned
latency calibration times a network for 0.1-0.2 s: on such a machine its samples carry that
noise (``benchmarks/latency_refit.py`` shows what it leaves in a fit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explorer.latency._timing import time_runs

sys.path.insert(0, str(Path(__file__).parent))

from _results import write_results

NETWORKS = (
    ("ding", 303),
    ("ding", 304),
    ("lu", 303),
    ("lu", 305),
    ("yang", 304),
    ("kumar", 305),
    ("ishtiaq", 303),
    ("hybrid", 303),
)
WINDOW = 100  # rounds per window of the drift columns
SAMPLED_FAMILIES = ("ding", "hybrid", "ishtiaq", "lu", "yang", "kumar")
SAMPLED_SEEDS = 4


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _MatMul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def _session(module: nn.Module, inputs: tuple, path: Path) -> Callable[[], object]:
    """One warmed ONNX Runtime session (one thread, every optimisation) of ``module``."""
    import onnxruntime as ort

    from explorer.export import export_onnx
    from explorer.latency._kernels import _ort_options
    from explorer.latency._sampling import _feed

    export_onnx(module.eval(), tuple(inputs), path, check=False)
    session = ort.InferenceSession(
        str(path), _ort_options("all", 1), providers=["CPUExecutionProvider"]
    )
    feed = _feed(session)
    for _ in range(3):
        session.run(None, feed)
    return lambda: session.run(None, feed)


def _once_ms(run: Callable[[], object], rewarm: int) -> float:
    """Thread-CPU ms of one run after ``rewarm`` untimed ones."""
    return time_runs(run, runs=1, warmup=rewarm, clock="cpu")[0]


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1))


def spreads(times: dict[str, list[float]], refs: list[str]) -> dict[str, float]:
    """The spreads (sd of the log) of one network's runs, raw and divided as described above."""
    t = np.log(times["network"])
    x = {r: np.log(times[r]) for r in refs}
    out = {"runs": len(t), "raw": _sd(t)}
    for r in refs:
        out[f"over_{r}"] = _sd(t - x[r])
    design = np.c_[np.ones(len(t)), *(x[r] for r in refs)]
    beta, *_ = np.linalg.lstsq(design, t, rcond=None)
    out["over_mix"] = _sd(t - design @ beta)
    out["mix_weights"] = [round(float(b), 3) for b in beta[1:]]
    starts = range(0, len(t) - WINDOW + 1, WINDOW)
    if len(starts) >= 2:
        net = np.array([np.median(times["network"][i : i + WINDOW]) for i in starts])
        ref = np.array([np.median(times[refs[0]][i : i + WINDOW]) for i in starts])
        out["window_medians"] = len(net)
        out["window_raw"] = _sd(np.log(net))
        out["window_over_reference"] = _sd(np.log(net / ref))
    return out


def calibration_repeats(tmp: Path, *, rounds: int) -> dict[str, object]:
    """Time ``SAMPLED_SEEDS`` networks of each of ``SAMPLED_FAMILIES`` as a calibration
    samples them, ``rounds`` times each (round after round): how far one timing repeats,
    paced (as the calibration uses it) and raw."""
    import search_spaces as ss
    from explorer.latency._sampling import _Probe, measure_kernels

    models = []
    for family in SAMPLED_FAMILIES:
        for seed in range(300, 300 + SAMPLED_SEEDS):
            model = ss.build(ss.sample(family, seed=seed)).eval()
            models.append((f"{family}#{seed}", model, tuple(ss.example_inputs(model))))
    probe = _Probe(tmp, level="all", threads=1)
    probe.take()
    paced = np.zeros((len(models), rounds))
    raw = np.zeros((len(models), rounds))
    for r in range(rounds):
        for i, (name, model, inputs) in enumerate(models):
            sample = measure_kernels(name, model, inputs, pace=probe)
            raw[i, r] = np.log(sample.measured_ms)
            # measured_ms is its median paced ratio times its own median reading: the ratio
            # alone (in reference runs) is what the calibration learns from, up to one scale
            paced[i, r] = np.log(sample.measured_ms / sample.reference_ms)

    def repeat_sd(m: np.ndarray) -> float:
        m = m - np.median(m, axis=0)  # each round's overall speed divided out
        return float(np.mean(np.std(m, axis=1, ddof=1)))

    return {
        "networks": len(models),
        "rounds": rounds,
        "sd_paced": repeat_sd(paced),
        "sd_raw": repeat_sd(raw),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=150.0, help="how long to take rounds")
    ap.add_argument(
        "--sample-rounds", type=int, default=3, help="rounds of calibration-style timings"
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "machine_noise.json"))
    args = ap.parse_args()
    import search_spaces as ss
    from explorer.latency._sampling import reference_network

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="explorer-noise-") as tmp:
        tmp_path = Path(tmp)
        refs = {
            "reference": (_session(*reference_network(), tmp_path / "ref.onnx"), 4),
            "stream": (
                _session(
                    _Add(),
                    tuple(torch.randn(1, 64, 256, 256, generator=gen) for _ in range(2)),
                    tmp_path / "add.onnx",
                ),
                2,
            ),
            "gemm": (
                _session(
                    _MatMul(),
                    tuple(torch.randn(160, 160, generator=gen) for _ in range(2)),
                    tmp_path / "mm.onnx",
                ),
                2,
            ),
        }
        nets = {}
        for family, seed in NETWORKS:
            model = ss.build(ss.sample(family, seed=seed))
            nets[f"{family}#{seed}"] = _session(
                model, tuple(ss.example_inputs(model)), tmp_path / f"{family}{seed}.onnx"
            )
        times = {n: {"network": [], **{r: [] for r in refs}} for n in nets}
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for name, run in nets.items():
                for r, (ref_run, rewarm) in refs.items():
                    times[name][r].append(_once_ms(ref_run, rewarm))
                run()  # re-warm the network's own data after the references
                times[name]["network"].append(_once_ms(run, 0))
        samples = calibration_repeats(tmp_path, rounds=args.sample_rounds)
    results = {n: spreads(t, list(refs)) for n, t in times.items()}
    results = {
        n: r | {"median_ms": statistics.median(times[n]["network"])} for n, r in results.items()
    }
    print(
        f"{'network':12s} {'ms':>7s} {'runs':>5s} | sd of log: raw  /ref  /stream /gemm  /mix"
        " | windows of 100: raw  /ref"
    )
    for name, r in results.items():
        print(
            f"{name:12s} {r['median_ms']:7.3f} {r['runs']:5d} |"
            f"  {r['raw']:.3f} {r['over_reference']:.3f} {r['over_stream']:.3f}"
            f"   {r['over_gemm']:.3f} {r['over_mix']:.3f} |"
            f"  {r.get('window_raw', float('nan')):.3f} "
            f"{r.get('window_over_reference', float('nan')):.3f}"
        )
    print(
        f"calibration-style timings of {samples['networks']} networks, {samples['rounds']} rounds:"
        f" sd of the log {samples['sd_paced']:.3f} paced, {samples['sd_raw']:.3f} raw"
    )
    write_results(
        Path(args.out),
        {"seconds": args.seconds, "window": WINDOW, "networks": results, "samples": samples},
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
