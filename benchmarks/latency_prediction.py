"""How well does the calibrated roofline predict ONNX Runtime latency on this machine?

    explorer calibrate                     # once: writes the `host` profile
    python benchmarks/latency_prediction.py [--candidates 60] [--device host] [--out FILE.json]

Draws seeded candidates from every family (``search_spaces.sample(family, seed=...)``; models
above ``--max-macs`` are skipped so that the run stays in minutes), exports each to ONNX,
measures it with ONNX Runtime at one thread, profiles it, and predicts its latency with the
device profile. The timing is interleaved: every round times every candidate a few runs, so a
burst of load on this shared machine spreads over all candidates instead of skewing one; the
median over all rounds is reported. A few candidates are measured again at the end with
``explorer.latency.bench`` (two separate calls) to show how stable one measurement is.

Prints, for the calibrated prediction and for the uncalibrated roofline: the share of
candidates within ±10 % and ±20 %, the median absolute percentage error (MdAPE) and Spearman's
rank correlation; with ``--ablation`` also for calibrations fitted with fewer of the model's
refinements. Writes everything (raw timings included) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

import device_profiles
import search_spaces as ss
from explorer import profile_model
from explorer.environment import environment
from explorer.export import export_onnx
from explorer.latency import BenchSettings, bench
from explorer.latency._backends import ort_feed, ort_session
from explorer.prediction import predict_latency

CLOCK_KEY = "cpu_ms"  # set from --clock in main()


def candidates(n: int, max_macs: float, log) -> list[dict[str, Any]]:
    families = ss.list_families()
    per_family = -(-n // len(families))
    out = []
    for family in families:
        seed, taken = 0, 0
        while taken < per_family and seed < 200:
            config = ss.sample(family, seed=seed)
            seed += 1
            model = ss.build(config)
            inputs = ss.example_inputs(model)
            profile = profile_model(model, inputs, name=f"{family}#{seed - 1}")
            if profile.macs > max_macs:
                continue
            out.append(
                {
                    "family": family,
                    "seed": seed - 1,
                    "config": ss.config_to_dict(config),
                    "model": model,
                    "inputs": inputs,
                    "profile": profile,
                }
            )
            taken += 1
        log(f"  {family}: {taken} candidates (seeds 0..{seed - 1})")
    return out[:n] if len(out) > n else out


def metrics(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    ape = np.abs(predicted / measured - 1)
    return {
        "within_10pct": float(np.mean(ape <= 0.10)),
        "within_20pct": float(np.mean(ape <= 0.20)),
        "mdape_pct": float(np.median(ape) * 100),
        "spearman": float(spearmanr(measured, predicted).statistic),
    }


def measure_interleaved(cands, tmp: Path, *, rounds: int, budget_s: float, log) -> None:
    sessions = []
    for i, c in enumerate(cands):
        path = tmp / f"c{i}.onnx"
        export_onnx(c["model"], c["inputs"], path, check=False)  # checked in tests
        session = ort_session(path, threads=1)
        feed = ort_feed(session, c["inputs"])
        for _ in range(3):  # warm-up
            session.run(None, feed)
        start = time.perf_counter()
        session.run(None, feed)
        once = time.perf_counter() - start
        c["runs_per_round"] = max(3, min(60, int(budget_s / max(once, 1e-6))))
        c["timings_ms"], c["cpu_timings_ms"] = [], []
        sessions.append((session, feed))
    log(f"  exported and warmed {len(cands)} sessions; {rounds} interleaved rounds")
    for r in range(rounds):
        for c, (session, feed) in zip(cands, sessions, strict=True):
            session.run(None, feed)  # re-warm caches after the previous candidate
            for _ in range(c["runs_per_round"]):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                session.run(None, feed)
                c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
                c["timings_ms"].append((t1 - t0) / 1e6)
                c["cpu_timings_ms"].append((c1 - c0) / 1e6)
        log(f"  round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.1f}")
    for c in cands:
        c["wall_ms"] = statistics.median(c["timings_ms"])
        c["cpu_ms"] = statistics.median(c["cpu_timings_ms"])
        c["measured_ms"] = c[CLOCK_KEY]


def ablation(device, cands, measured, variants, clock, log) -> dict[str, list[float]]:
    """Re-measure the calibration suite and fit calibrations with fewer refinements."""
    from explorer.latency._calibrate import _measure_suite
    from explorer.latency._fit import fit_calibration

    log("ablation: re-measuring the calibration suite")
    threads = device.calibration.threads or 1
    timed = _measure_suite(threads, runs_target_s=0.25, log=lambda _: None, clock=clock, networks=3)
    everything = [(t.profile, t.measured_ms) for t in timed]
    operators = [(t.profile, t.measured_ms) for t in timed if "#" not in t.name]
    base = replace(device, calibration=None)
    preds = {}
    for label, samples, kwargs in [
        (
            "operators: global fractions + overhead",
            operators,
            {"per_kind": False, "fuse_elementwise": False, "size_efficiency": False},
        ),
        (
            "+ per-class fractions",
            operators,
            {"per_kind": True, "fuse_elementwise": False, "size_efficiency": False},
        ),
        ("+ elementwise fusion", operators, {"per_kind": True, "size_efficiency": False}),
        ("+ half-performance sizes", operators, {"per_kind": True}),
        ("+ family networks in the suite", everything, {"per_kind": True}),
    ]:
        cal = fit_calibration(base, samples, threads=threads, source="ablation", **kwargs)
        dev = replace(base, calibration=cal)
        pred = np.array([predict_latency(c["profile"], dev).ms for c in cands])
        variants[label] = metrics(measured, pred)
        preds[label] = pred.tolist()
        log(f"  {label}: {variants[label]}")
    return preds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", type=int, default=60)
    ap.add_argument("--device", default="host", help="calibrated profile (key or .toml)")
    ap.add_argument("--max-macs", type=float, default=4e8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--round-budget-s", type=float, default=0.08)
    ap.add_argument("--stability", type=int, default=6, help="candidates benched twice")
    ap.add_argument(
        "--ablation",
        action="store_true",
        help="also re-measure the calibration suite and fit simpler calibrations",
    )
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="score against thread CPU time (default; robust on a shared machine) "
        "or wall time; both are recorded",
    )
    ap.add_argument("--out", default="benchmarks/results/latency_prediction.json")
    args = ap.parse_args()
    global CLOCK_KEY
    CLOCK_KEY = f"{args.clock}_ms"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    device = device_profiles.get(args.device)
    if device.calibration is None:
        log(f"warning: {device.key} is not calibrated; run `explorer calibrate` first")
    log(f"device {device.key}: {device.peak_gflops_fp32} GFLOP/s, {device.bandwidth_gb_s} GB/s")
    load_before = os.getloadavg()
    log("sampling candidates")
    cands = candidates(args.candidates, args.max_macs, log)
    with tempfile.TemporaryDirectory(prefix="explorer-latbench-") as tmp:
        log("measuring (ONNX Runtime, 1 thread)")
        measure_interleaved(
            cands, Path(tmp), rounds=args.rounds, budget_s=args.round_budget_s, log=log
        )
    stability = []
    for c in cands[: args.stability]:
        settings = BenchSettings(threads=1, warmup=10, clock=args.clock)
        a = bench(c["model"], c["inputs"], settings=settings).median_ms
        b = bench(c["model"], c["inputs"], settings=settings).median_ms
        stability.append(
            {
                "model": c["profile"].model,
                "first_ms": a,
                "second_ms": b,
                "diff_pct": abs(a / b - 1) * 100,
            }
        )
    measured = np.array([c["measured_ms"] for c in cands])
    calibrated = np.array([predict_latency(c["profile"], device).ms for c in cands])
    roofline = np.array([predict_latency(c["profile"], device).roofline_ms for c in cands])
    other = np.array([c["wall_ms" if args.clock == "cpu" else "cpu_ms"] for c in cands])
    variants: dict[str, dict[str, float]] = {
        "uncalibrated roofline": metrics(measured, roofline),
        "calibrated (as installed)": metrics(measured, calibrated),
        f"calibrated vs {'wall' if args.clock == 'cpu' else 'cpu'} clock": metrics(
            other, calibrated
        ),
    }
    variant_preds: dict[str, list[float]] = {}
    if args.ablation and device.calibration is not None:
        try:
            variant_preds = ablation(device, cands, measured, variants, args.clock, log)
        except Exception as exc:  # report the main figures even if the ablation fails
            log(f"ablation failed: {type(exc).__name__}: {exc}")
    load_after = os.getloadavg()

    print(
        f"\n{len(cands)} candidates, device {device.key}, ONNX Runtime 1 thread, "
        f"{args.clock} clock; "
        f"load {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    print(f"{'model':34s} {'within10':>9s} {'within20':>9s} {'MdAPE%':>8s} {'Spearman':>9s}")
    for label, m in variants.items():
        print(
            f"{label:34s} {m['within_10pct']:9.1%} {m['within_20pct']:9.1%} "
            f"{m['mdape_pct']:8.1f} {m['spearman']:9.3f}"
        )
    if stability:
        worst = max(s["diff_pct"] for s in stability)
        print(
            f"stability: {len(stability)} models benched twice, worst median difference "
            f"{worst:.1f} %"
        )
    rows = []
    for i, c in enumerate(cands):
        rows.append(
            {
                "model": c["profile"].model,
                "family": c["family"],
                "seed": c["seed"],
                "config": c["config"],
                "macs": c["profile"].macs,
                "ops": len(c["profile"].ops),
                "measured_ms": c["measured_ms"],
                "wall_ms": c["wall_ms"],
                "cpu_ms": c["cpu_ms"],
                "predicted_ms": float(calibrated[i]),
                "roofline_ms": float(roofline[i]),
                "timings_ms": c["timings_ms"],
                "cpu_timings_ms": c["cpu_timings_ms"],
                **{f"pred[{k}]": v[i] for k, v in variant_preds.items()},
            }
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "device": device.to_dict(),
                "metrics": variants,
                "stability": stability,
                "load_before": load_before,
                "load_after": load_after,
                "seconds": time.perf_counter() - t_start,
                "environment": environment(),
                "candidates": rows,
            },
            indent=1,
            default=str,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
