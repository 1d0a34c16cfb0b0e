"""How well do the latency models predict ONNX Runtime (one thread) on this machine?

    python benchmarks/latency_prediction.py              # full: 5 min calibration, 60+5 nets
    python benchmarks/latency_prediction.py --quick      # a smoke run of a few minutes
    taskset -c 1 python benchmarks/latency_prediction.py # pinned to one core (shared machines)

On a shared Linux machine with session autogroups (/proc/sys/kernel/sched_autogroup_enabled
is 1) ``nice`` only ranks processes within one session; to give the timing its core, start it
in a session of its own and raise that session's priority (as root):
``setsid sh -c 'echo -15 > /proc/$$/autogroup; exec taskset -c 1 nice -n -15 python ...'``.
Without it, a one-thread run on a loaded 2-core machine read up to twice its CPU time in wall
time and the profiled node times were too noisy to learn from.

One command: it calibrates this machine the way ``explorer calibrate`` does (learned kernels,
``--calibrate-time``, with one search-space family, ``--leave-out``, kept out of the samples
as a generalisation check) into a temporary profile, fits the previous model (the calibrated
roofline of ``explorer calibrate --method roofline``) beside it, then draws held-out seeded
candidates from every family (seeds 0-199; calibration uses 1000 and up) plus five standard
CNNs at 112-224 px (``benchmarks/standard_cnns.py``), measures each with ONNX Runtime at one
thread (interleaved rounds, a fresh session every turn, thread CPU time, medians) and
predicts it with both models.

Prints, per family and overall, the share within ±10 % and ±20 %, the median absolute
percentage error (MdAPE) and Spearman's rank correlation; the noise floor (each network's
median over the first half of the rounds against the second half: the share within ±10 % of
itself); and the time one prediction takes. Writes everything (raw timings included) as JSON.

The same is printed a second time against *speed-normalised* times: each network's runs paced
as the calibration paces its own (every run over a warm one-run reading of the reference
network taken just before it), the median ratio times the reference's median reading while
calibrating. On a machine whose speed jumps between runs (a shared VM) the raw median of a
network is not within ±10 % of its own next median, and only these can check a ±10 % model.
``--device FILE`` scores an existing calibrated profile instead of calibrating.
``--record FILE.json.gz`` also keeps the calibration's samples and the held-out networks'
graphs and times, for ``benchmarks/latency_refit.py`` to refit and score without measuring.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

import device_profiles
import search_spaces as ss
from explorer import profile_model
from explorer.environment import environment
from explorer.export import export_onnx
from explorer.latency import kernel_model_for
from explorer.latency._backends import ort_feed, ort_session
from explorer.latency._sampling import _paced, _Probe, speed_scatter
from explorer.latency.learned import predict_graph, start_export_helper
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


def measure_interleaved(cands, tmp: Path, *, rounds: int, budget_s: float, log) -> list:
    """Time every candidate in ``rounds`` interleaved rounds; returns the readings (time, ms)
    of the calibration's reference network, timed once a round (the machine's speed now).

    Every turn opens the candidate's session afresh and closes it after, so that one session
    is open at a time, as when the calibration (or ``explorer measure``) times a network.
    With every session held open through the rounds, the same networks ran 1-3.5 % faster
    than timed alone (``benchmarks/timing_styles.py``), a faster truth than the one a user
    deploys and the model is fitted to.
    """
    probe = _Probe(tmp, level="all", threads=1)
    paths = []
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
        del session
        c["runs_per_round"] = max(3, min(60, int(budget_s / max(once, 1e-6))))
        c["timings_ms"], c["cpu_timings_ms"], c["paced_ratios"] = [], [], []
        paths.append(path)
    log(f"  exported {len(cands)} networks; {rounds} interleaved rounds, a fresh session a turn")
    for r in range(rounds):
        for c, path in zip(cands, paths, strict=True):
            session = ort_session(path, threads=1)
            feed = ort_feed(session, c["inputs"])
            for _ in range(2):  # a fresh session's first runs allocate; warm it
                session.run(None, feed)
            for _ in range(c["runs_per_round"]):
                t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                session.run(None, feed)
                c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
                c["timings_ms"].append((t1 - t0) / 1e6)
                c["cpu_timings_ms"].append((c1 - c0) / 1e6)
            # the same runs paced as the calibration paces its own: each over a warm reading
            # of the reference network taken just before it
            paced = _paced(lambda s=session, f=feed: s.run(None, f), c["runs_per_round"], probe)
            c["paced_ratios"].extend(ms / ref for ms, ref in paced if ref > 0)
            del session, feed
        probe.take()
        log(f"  round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.1f}")
    for c in cands:
        c["wall_ms"] = statistics.median(c["timings_ms"])
        c["cpu_ms"] = statistics.median(c["cpu_timings_ms"])
        c["measured_ms"] = c[CLOCK_KEY]
    return probe.readings


class _ExportedHere(logging.Handler):
    """Collects the export helper's debug lines: why a prediction exported in this process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        source = logging.getLogger("explorer.latency._export_helper")
        source.setLevel(logging.DEBUG)
        source.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def take(self) -> str | None:
        """The lines since the last call (None: exported by the helper, or not at all)."""
        lines, self.lines = self.lines, []
        return "; ".join(lines) or None


class _FullCollections:
    """Seconds the garbage collector spent in full (generation 2) passes, which a process
    holding a calibration's samples pays now and then inside a prediction."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def split_noise(cands, key: str | None = None) -> list[float]:
    """Each candidate's first-half median over its second-half median, minus one."""
    out = []
    for c in cands:
        t = c[key] if key else c["cpu_timings_ms"] if CLOCK_KEY == "cpu_ms" else c["timings_ms"]
        half = len(t) // 2
        out.append(statistics.median(t[:half]) / statistics.median(t[half:]) - 1)
    return out


def calibrate_into(tmp: Path, *, seconds: float, leave_out: list[str], old: str, log):
    """Calibrate this machine (learned + roofline) into ``tmp``; (learned device, old device)."""
    from explorer.latency import calibrate_host, calibrate_host_learned, kernel_file_for

    log(f"calibrating (learned kernels, {seconds:.0f} s, leaving out {leave_out or 'none'})")
    run = calibrate_host_learned(
        time_s=seconds, exclude_families=tuple(leave_out), log=log, name="bench-host"
    )
    path = tmp / "bench-host.toml"
    path.write_text(device_profiles.to_toml(run.roofline.profile), encoding="utf-8")
    run.kernels.save(kernel_file_for(path))
    log(f"  {len(run.samples)} networks, {run.kernels.meta['nodes']} nodes, {run.seconds:.0f} s")
    learned = device_profiles.get(str(path))
    if old == "fit":
        log("calibrating the previous model (explorer calibrate --method roofline)")
        old_profile = calibrate_host(name="bench-old", networks=3).profile
        old_path = tmp / "bench-old.toml"
        old_path.write_text(device_profiles.to_toml(old_profile), encoding="utf-8")
        return learned, device_profiles.get(str(old_path)), run
    return learned, learned, run


def report(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    measured = np.array([r["measured_ms"] for r in rows])
    out = {}
    for model in ("learned", "previous"):
        pred = np.array([r[f"{model}_ms"] for r in rows])
        m = metrics(measured, pred) if len(rows) > 2 else {}
        out[model] = m
    out["n"] = len(rows)
    out["noise_within_10pct"] = float(np.mean([abs(r["noise"]) <= 0.10 for r in rows]))
    paced = np.array([r["paced_ms"] for r in rows])
    for model in ("learned", "previous"):
        pred = np.array([r[f"{model}_ms"] for r in rows])
        out[f"{model}_paced"] = metrics(paced, pred) if len(rows) > 2 else {}
    out["noise_paced_within_10pct"] = float(np.mean([abs(r["noise_paced"]) <= 0.10 for r in rows]))
    # the range every learned prediction states (its low and high ms): how often it holds.
    # None where no prediction states one (a roofline profile given with --device: no high)
    bounded = [r for r in rows if r["high_ms"] is not None]
    for suffix, key in (("", "measured_ms"), ("_paced", "paced_ms")):
        inside = [r["low_ms"] <= r[key] <= r["high_ms"] for r in bounded]
        out[f"in_range{suffix}"] = float(np.mean(inside)) if inside else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 s calibration, 18+5 networks")
    ap.add_argument("--candidates", type=int, default=None, help="family networks (default 60)")
    ap.add_argument("--calibrate-time", default=None, help="e.g. 5m (default; --quick: 60s)")
    ap.add_argument("--leave-out", default="kumar", help="family kept out of the calibration")
    ap.add_argument("--device", default=None, help="score this calibrated profile instead")
    ap.add_argument(
        "--keep",
        default=None,
        help="copy the fresh calibration (bench-host.toml and its kernel file) into this folder, "
        "to score it again later with --device (drift between calibrating and measuring)",
    )
    ap.add_argument(
        "--old",
        choices=("fit", "same"),
        default=None,
        help="previous model: fit it (explorer calibrate --method roofline; default) or use "
        "the roofline fitted in the same calibration run (--quick)",
    )
    ap.add_argument(
        "--record",
        default=None,
        help="also write the calibration samples and held-out measurements here (.json.gz) "
        "for benchmarks/latency_refit.py",
    )
    ap.add_argument("--no-standard", action="store_true", help="skip the five standard CNNs")
    ap.add_argument("--max-macs", type=float, default=4e8)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--round-budget-s", type=float, default=0.08)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--out", default="benchmarks/results/latency_prediction.json")
    args = ap.parse_args()
    global CLOCK_KEY
    CLOCK_KEY = f"{args.clock}_ms"
    if args.record and args.device:
        ap.error("--record keeps a fresh calibration's samples: leave out --device")
    n_cands = args.candidates or (18 if args.quick else 60)
    rounds = args.rounds or (6 if args.quick else 8)
    old_mode = args.old or ("same" if args.quick else "fit")
    from explorer.cli.calibrate import parse_duration

    seconds = parse_duration(args.calibrate_time or ("60s" if args.quick else "5m"))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    load_before = os.getloadavg()
    leave_out = [f for f in args.leave_out.split(",") if f] if args.leave_out else []
    with tempfile.TemporaryDirectory(prefix="explorer-latbench-") as tmp_dir:
        tmp = Path(tmp_dir)
        calibration: dict[str, Any] = {}
        if args.device:
            learned_dev = old_dev = device_profiles.get(args.device)
            leave_out = []
        else:
            learned_dev, old_dev, run = calibrate_into(
                tmp, seconds=seconds, leave_out=leave_out, old=old_mode, log=log
            )
            calibration = {
                "seconds": run.seconds,
                "networks": len(run.samples),
                "kernels": {k: m.to_dict() | {"trees": None} for k, m in run.kernels.kinds.items()},
                "call_us": run.kernels.call_us,
                "scale": run.kernels.scale,
                "per_node_us": run.kernels.per_node_us,
            }
            if args.keep:
                keep = Path(args.keep)
                keep.mkdir(parents=True, exist_ok=True)
                for f in tmp.glob("bench-host*"):
                    shutil.copy2(f, keep / f.name)
                log(f"kept the calibration: --device {keep / 'bench-host.toml'}")
        kernels = kernel_model_for(learned_dev)  # read before the temporary folder goes
        reference_then = kernels.meta.get("reference_ms") if kernels else None
        scatter_then = kernels.meta.get("speed_scatter") if kernels else None
        # what the paced times are scaled by: the reference's median paced reading while
        # calibrating (a calibration from before pacing: its readings every few seconds)
        paced_then = (kernels.meta.get("paced_reference_ms") or reference_then) if kernels else 0
        log("sampling held-out candidates")
        cands = candidates(n_cands, args.max_macs, log)
        if not args.no_standard:
            sys.path.insert(0, str(Path(__file__).parent))
            from standard_cnns import standard_cnns

            for name, model, inputs in standard_cnns():
                cands.append(
                    {
                        "family": "standard",
                        "seed": -1,
                        "config": {"name": name},
                        "model": model,
                        "inputs": inputs,
                        "profile": profile_model(model, inputs, name=name),
                    }
                )
        # as a search does: the export helper is started before the first price (and before
        # measuring, so its start-up does not land in a measurement on this core)
        helper_ready = start_export_helper(wait_s=120)
        log(f"measuring {len(cands)} networks (ONNX Runtime, 1 thread, {rounds} rounds)")
        readings_now = measure_interleaved(
            cands, tmp, rounds=rounds, budget_s=args.round_budget_s, log=log
        )
        reference_now = statistics.median(ms for _, ms in readings_now)
        noise = split_noise(cands)
        noise_paced = split_noise(cands, "paced_ratios")
        log("predicting")
        rows, held_out = [], []
        # wall and process CPU time (a shared machine; the export helper's CPU is not this
        # process's: explorer/latency/_export_helper.py)
        predict_s, predict_cpu_s = [], []
        exported_here = _ExportedHere()  # why a family model was exported in this process
        collections = _FullCollections()  # the garbage collector's full passes, timed
        for c, nz, nz_paced in zip(cands, noise, noise_paced, strict=True):
            start, cpu_start = time.perf_counter(), time.process_time()
            learned = predict_latency(
                c["profile"], learned_dev, model=c["model"], inputs=c["inputs"]
            )
            predict_s.append(time.perf_counter() - start)
            predict_cpu_s.append(time.process_time() - cpu_start)
            why_here, gc_s = exported_here.take(), collections.take()
            previous = predict_latency(c["profile"], old_dev)
            paced_ms = statistics.median(c["paced_ratios"]) * (paced_then or 1.0)
            if args.record:  # the graph the prediction described (cached: no second export)
                graph = predict_graph(c["model"], c["inputs"], kernels)
                held_out.append(
                    {
                        "name": c["profile"].model,
                        "family": c["family"],
                        "graph": graph,
                        "paced_ms": paced_ms,
                        "learned_ms": learned.ms,
                    }
                )
            rows.append(
                {
                    "model": c["profile"].model,
                    "family": c["family"],
                    "seed": c["seed"],
                    "config": c["config"],
                    "macs": c["profile"].macs,
                    "measured_ms": c["measured_ms"],
                    "wall_ms": c["wall_ms"],
                    "cpu_ms": c["cpu_ms"],
                    "paced_ms": paced_ms,
                    "noise_paced": nz_paced,
                    "learned_ms": learned.ms,
                    "low_ms": learned.low_ms,
                    "high_ms": learned.high_ms,
                    "previous_ms": previous.ms,
                    "roofline_ms": previous.roofline_ms,
                    "noise": nz,
                    "predict_s": predict_s[-1],
                    "predict_cpu_s": predict_cpu_s[-1],
                    "exported_here": why_here,
                    "full_gc_s": gc_s,
                    "timings_ms": c["timings_ms"],
                    "cpu_timings_ms": c["cpu_timings_ms"],
                    "paced_ratios": c["paced_ratios"],
                }
            )
    load_after = os.getloadavg()
    groups = {"all": rows}
    groups["held-out families"] = [r for r in rows if r["family"] not in ("standard", *leave_out)]
    for family in sorted({r["family"] for r in rows}):
        tag = " (left out)" if family in leave_out else ""
        groups[f"{family}{tag}"] = [r for r in rows if r["family"] == family]
    results = {k: report(v, k) for k, v in groups.items() if v}
    drift = {
        "reference_ms_calibrating": reference_then,
        "reference_ms_measuring": reference_now,
        "speed_scatter_calibrating": scatter_then,  # readings seconds apart
        "speed_scatter_measuring": speed_scatter(readings_now),  # one reading a round
    }
    print(
        f"\n{len(rows)} networks, ONNX Runtime 1 thread, {args.clock} clock; load "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f}; calibration "
        f"{calibration.get('seconds', 0):.0f} s on {calibration.get('networks', '?')} networks"
    )
    print(
        f"{'group':26s} {'n':>3s} | {'learned: ±10%':>13s} {'±20%':>6s} {'MdAPE':>6s} "
        f"{'rho':>6s} | {'previous: ±10%':>14s} {'MdAPE':>6s} {'rho':>6s} | noise ±10%"
    )
    for suffix, title in (("", "measured"), ("_paced", "speed-normalised")):
        print(f"-- against the {title} times")
        for label, r in results.items():
            a, b = r["learned" + suffix], r["previous" + suffix]
            if not a:
                continue
            print(
                f"{label:26s} {r['n']:3d} | {a['within_10pct']:13.0%} {a['within_20pct']:6.0%} "
                f"{a['mdape_pct']:5.1f}% {a['spearman']:6.3f} | {b['within_10pct']:14.0%} "
                f"{b['mdape_pct']:5.1f}% {b['spearman']:6.3f} | "
                f"{r[f'noise{suffix}_within_10pct']:.0%}"
            )
    bias = np.median([r["learned_ms"] / r["paced_ms"] - 1 for r in rows])
    every = results["all"]
    if every["in_range"] is not None:
        stated = next(r for r in rows if r["high_ms"] is not None)
        spread = stated["high_ms"] / stated["learned_ms"] - 1
        print(
            f"the learned predictions' stated range (±{spread:.0%}) "
            f"holds for {every['in_range']:.0%} of the measured times, "
            f"{every['in_range_paced']:.0%} of the speed-normalised ones"
        )
    print(
        f"speed-normalised: each run over a warm reading of the reference just before it, "
        f"times {paced_then:.4f} ms (its median while calibrating); learned bias {bias:+.1%}"
    )
    if reference_then:
        print(
            f"the reference network: {reference_then:.4f} ms while calibrating, "
            f"{reference_now:.4f} ms while measuring ({reference_now / reference_then - 1:+.1%})"
        )
    if scatter_then is not None:
        print(
            f"its readings scattered ±{scatter_then:.1%} (90th percentile) around their running "
            f"median while calibrating, ±{drift['speed_scatter_measuring']:.1%} between rounds "
            "while measuring (above ±5 %: a machine too noisy to check ±10 % on)"
        )
    print(
        f"prediction time per network (export + ORT optimise + regressors): median "
        f"{statistics.median(predict_s):.2f} s, max {max(predict_s):.2f} s wall; median "
        f"{statistics.median(predict_cpu_s):.2f} s, max {max(predict_cpu_s):.2f} s CPU of this "
        "process (a family model's export runs in the export helper, not counted)"
    )
    slow = [r for r in rows if r["predict_s"] > 1.0]
    print(
        f"predictions over 1 s: {len(slow)}"
        + "".join(
            f"\n  {r['model']}: {r['predict_s']:.2f} s wall, {r['predict_cpu_s']:.2f} s CPU here, "
            f"{r['full_gc_s']:.2f} s in full garbage collections"
            for r in slow
        )
    )
    here = [r for r in rows if r["exported_here"] and r["family"] != "standard"]
    print(
        f"export helper ready before measuring: {helper_ready}; family networks exported in "
        f"this process: {len(here)}"
        + "".join(f"\n  {r['model']}: {r['exported_here']}" for r in here)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "results": results,
                "calibration": calibration,
                "drift": drift,
                "leave_out": leave_out,
                "load_before": load_before,
                "load_after": load_after,
                "seconds": time.perf_counter() - t_start,
                # how the held-out networks were timed: "fresh" (a session a turn) or, in
                # files from before 2026-12-05, "open" (every session open through the rounds)
                "held_out_sessions": "fresh",
                "export_helper_ready": helper_ready,
                "environment": environment(),
                "candidates": rows,
            },
            indent=1,
            default=str,
        )
    )
    print(f"wrote {out}")
    if args.record:
        from latency_refit import write_data

        write_data(
            args.record,
            samples=run.samples,
            meta=dict(kernels.meta) | {"threads": kernels.threads},
            held_out=held_out,
            environment=environment(),
        )
        print(f"recorded the samples and held-out measurements in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
