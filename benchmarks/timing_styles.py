"""Do the calibration and the benchmark time a network alike? Four ways, same networks, same probe.

    taskset -c 1 python benchmarks/timing_styles.py              # 48 networks, two passes, ~6 min
    taskset -c 1 python benchmarks/timing_styles.py --networks 12 --passes 1

The learned host latency model is fitted on whole-network times taken the way ``explorer
calibrate`` takes them, and ``benchmarks/latency_prediction.py`` scores it against times taken
its own way. Seeded family networks (calibration seeds, 1000 and up) are timed here, in turn,
in four ways, every run divided by a reading of the calibration's reference network taken
just before it (``_sampling._paced``, one probe for all four), and also taken raw:

- *calibration*: a fresh session per network, timed as ``_sampling.time_whole`` times the
  calibration's samples (a first run, three more under 5 ms, then 0.1 s of paced runs; its
  steps written out here because ``time_whole`` returns only the paced median, not raw ms);
- *interleaved*: every network's session open at once, four rounds over all of them, each turn
  a re-warming run and a paced burst of a quarter of those runs, as the benchmark's
  ``measure_interleaved`` timed the held-out networks until 3f68f0d;
- *bursts*: a fresh session per network and the same four bursts one after another, with no
  other network between them;
- *fresh rounds*: the four rounds over all networks, each turn in a fresh session opened for
  it (other networks between a network's bursts, but no session kept open), as the benchmark
  has timed them since.

The ways alternate (calibration, interleaved, bursts, fresh rounds, then again), so a drift of the
machine's speed over minutes shows as a difference between passes of one way, not between the
ways. Reports each way's median ratio to the calibration's, per size band and overall, paced
(the median of a network's run-over-reading ratios) and raw (the median of its runs' thread
CPU ms): a gap in both is the network's own speed, a gap only paced the reference's readings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import search_spaces as ss
from explorer.export import export_onnx
from explorer.latency._kernels import _ort_options
from explorer.latency._sampling import _REWARM_BELOW_MS, _feed, _paced, _Probe, _rough_macs
from explorer.latency._timing import runs_to_fill

sys.path.insert(0, str(Path(__file__).parent))

from _results import write_results

BANDS_MS = ((0.0, 0.9), (0.9, 2.0), (2.0, 5.0), (5.0, float("inf")))
BURSTS = 4
FIRST_SEED = 1000  # the calibration's family seeds
MAX_MACS = 4e8  # as the calibration's family networks


def networks(n: int) -> list[tuple[str, object, tuple]]:
    """``n`` seeded family networks (as many of each family), as the calibration draws them."""
    families = ss.list_families()
    out: list[tuple[str, object, tuple]] = []
    for family in families:
        seed, taken = FIRST_SEED, 0
        while taken < -(-n // len(families)):
            model = ss.build(ss.sample(family, seed=seed)).eval()
            inputs = ss.example_inputs(model)
            if _rough_macs(model, inputs) <= MAX_MACS:
                out.append((f"{family}#{seed}", model, inputs))
                taken += 1
            seed += 1
    return out[:n]


class _Session:
    """One network's ONNX Runtime session (as the calibration opens it) and its run count."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            str(path), _ort_options("all", 1), providers=["CPUExecutionProvider"]
        )
        self.feed = _feed(self.session)
        start = time.perf_counter()
        self.run()
        self.once_s = time.perf_counter() - start
        self.runs = runs_to_fill(self.once_s, target_s=0.1, lo=5, hi=200)

    def run(self) -> object:
        return self.session.run(None, self.feed)

    def burst(self, probe: _Probe) -> list[tuple[float, float]]:
        """A re-warming run, then a quarter of the runs, paced: their (ms, reading)."""
        self.run()
        return [
            (ms, ref) for ms, ref in _paced(self.run, max(3, self.runs // BURSTS), probe) if ref
        ]


def _medians(paced: list[tuple[float, float]]) -> tuple[float, float]:
    """(median ratio of run to reading, median ms) of paced runs."""
    return statistics.median(ms / ref for ms, ref in paced), statistics.median(
        ms for ms, _ in paced
    )


def calibration_way(paths: list[Path], probe: _Probe) -> np.ndarray:
    """Each network in a fresh session, timed as ``_sampling.time_whole`` times a sample."""
    out = []
    for p in paths:
        s = _Session(p)
        for _ in range(3 if s.once_s * 1e3 < _REWARM_BELOW_MS else 0):
            s.run()
        out.append(_medians([(ms, ref) for ms, ref in _paced(s.run, s.runs, probe) if ref]))
    return np.array(out)


def interleaved_way(paths: list[Path], probe: _Probe) -> np.ndarray:
    """Every session open at once, rounds over all: as the benchmark timed its held-out
    networks until 3f68f0d."""
    sessions = [_Session(p) for p in paths]
    runs: list[list[tuple[float, float]]] = [[] for _ in paths]
    for _ in range(BURSTS):
        for i, s in enumerate(sessions):
            runs[i] += s.burst(probe)
    return np.array([_medians(r) for r in runs])


def bursts_way(paths: list[Path], probe: _Probe) -> np.ndarray:
    """Each network in a fresh session, its bursts one after another."""
    out = []
    for p in paths:
        s = _Session(p)
        out.append(_medians([run for _ in range(BURSTS) for run in s.burst(probe)]))
    return np.array(out)


def fresh_rounds_way(paths: list[Path], probe: _Probe) -> np.ndarray:
    """Rounds over all networks, a fresh session for every turn (the benchmark's way since)."""
    runs: list[list[tuple[float, float]]] = [[] for _ in paths]
    for _ in range(BURSTS):
        for i, p in enumerate(paths):
            runs[i] += _Session(p).burst(probe)
    return np.array([_medians(r) for r in runs])


WAYS = {
    "calibration": calibration_way,
    "interleaved": interleaved_way,
    "bursts": bursts_way,
    "fresh_rounds": fresh_rounds_way,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=48)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/timing_styles.json")
    args = ap.parse_args()
    nets = networks(args.networks)
    with tempfile.TemporaryDirectory(prefix="explorer-ways-") as tmp:
        probe = _Probe(Path(tmp), level="all", threads=1)
        paths = []
        for i, (_, model, inputs) in enumerate(nets):
            paths.append(Path(tmp) / f"n{i}.onnx")
            export_onnx(model, inputs, paths[-1], check=False)
        ratios: dict[str, list[np.ndarray]] = {w: [] for w in WAYS}
        for k in range(args.passes):
            for way, fn in WAYS.items():
                ratios[way].append(fn(paths, probe))
                print(f"pass {k + 1}/{args.passes}: {way} done", flush=True)
        reference_ms = statistics.median(probe.paced)
    ms = ratios["calibration"][0][:, 1]
    bands = {f"{lo:g}-{hi:g} ms": (ms >= lo) & (ms < hi) for lo, hi in BANDS_MS}
    bands["all"] = np.ones(len(ms), dtype=bool)
    table: dict[str, dict[str, list[float]]] = {}
    print(
        f"median ratio to the calibration's way, per pass ({len(nets)} networks; interleaved,"
        " bursts, fresh rounds, and the calibration's way against its first pass)"
    )
    for band, rows in bands.items():
        if not rows.any():
            continue
        table[band] = {"networks": int(rows.sum())}
        line = f"  {band:12s} n={rows.sum():2d}"
        for col, how in enumerate(("paced", "raw")):
            for way in ("interleaved", "bursts", "fresh_rounds"):
                table[band][f"{way}_{how}"] = [
                    round(float(np.median(r[rows, col] / c[rows, col])), 4)
                    for r, c in zip(ratios[way], ratios["calibration"], strict=True)
                ]
            first = ratios["calibration"][0][rows, col]
            table[band][f"calibration_drift_{how}"] = [
                round(float(np.median(c[rows, col] / first)), 4) for c in ratios["calibration"]
            ]
            line += f" | {how}: " + "  ".join(
                f"{key.rsplit('_', 1)[0][:6]} " + " ".join(f"{v:.3f}" for v in table[band][key])
                for key in (
                    f"interleaved_{how}",
                    f"bursts_{how}",
                    f"fresh_rounds_{how}",
                    f"calibration_drift_{how}",
                )
            )
        print(line)
    write_results(
        Path(args.out),
        {
            "networks": [name for name, _, _ in nets],
            "passes": args.passes,
            "reference_ms": reference_ms,
            "bands": table,
            # per way, per pass, per network: [median paced ratio, median raw ms]
            "medians": {w: [r.round(5).tolist() for r in rs] for w, rs in ratios.items()},
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
