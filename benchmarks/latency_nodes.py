"""Which nodes of a network does the learned latency model misprice?

    python benchmarks/latency_nodes.py RUN.json.gz kumar#1 kumar#7 [--kind nchwc_conv]

A network whose prediction is off by the same amount run after run (a persistent error, which
no amount of re-measuring removes) is mispriced in its nodes or in the per-inference terms
that turn node times into a whole time. This script refits the
kernel model on a recorded calibration (``latency_prediction.py --record``, as
``latency_refit.py`` does), profiles each named network's nodes on this machine now (the
calibration's own paced profiling), and prints, for each kind of node, the measured and
predicted microseconds and their ratio *relative to the whole network's ratio*: the machine's
speed now against the recording's divides out, and a kind priced too fast or too slow against
the rest of its own network stands out. It also prints the whole time the network's own
measured nodes give through the per-inference terms: off by much, the terms misprice it
whatever the nodes' prices. ``--kind`` also lists that kind's nodes one by one with their
shapes. Networks are named as the benchmark names them: ``family#seed``.

Run it pinned to one otherwise idle core (``taskset -c 1``); each network is profiled for
about three seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def by_kind(rows: Sequence[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """(kind, measured µs, predicted µs) per node -> one row per kind, dearest first: nodes,
    measured and predicted µs, their share of the network, and the kind's ratio over the
    network's (``relative``: 1 where the kind is priced like the rest of its network)."""
    measured = sum(m for _, m, _ in rows)
    predicted = sum(p for _, _, p in rows)
    overall = predicted / measured
    kinds: dict[str, list[float]] = {}
    for kind, m, p in rows:
        entry = kinds.setdefault(kind, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += m
        entry[2] += p
    out = [
        {
            "kind": kind,
            "nodes": int(n),
            "measured_us": m,
            "predicted_us": p,
            "measured_share": m / measured,
            "relative": (p / m) / overall if m > 0 else float("nan"),
        }
        for kind, (n, m, p) in kinds.items()
    ]
    return sorted(out, key=lambda r: -r["measured_us"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recording", type=Path, help="a latency_prediction.py --record file")
    parser.add_argument("networks", nargs="+", help="family#seed, as the benchmark names them")
    parser.add_argument("--kind", help="also list this kind's nodes one by one")
    parser.add_argument("--seconds", type=float, default=3.0, help="profiling per network")
    args = parser.parse_args()

    from latency_refit import own_nodes_ratio, read_data

    import search_spaces as ss
    from explorer.latency._host_learned import fit_samples
    from explorer.latency._sampling import _Probe, measure_kernels

    samples, meta, _ = read_data(args.recording)
    model = fit_samples(samples, threads=int(meta.get("threads", 1)), source="refit", meta={})
    with tempfile.TemporaryDirectory(prefix="explorer-nodes-") as tmp:
        probe = _Probe(Path(tmp), level="all", threads=1)
        for spec in args.networks:
            family, _, seed = spec.partition("#")
            net = ss.build(ss.sample(family, seed=int(seed))).eval()
            sample = measure_kernels(
                spec, net, ss.example_inputs(net), pace=probe, target_s=args.seconds
            )
            measured = {node.name: us for node, us in sample.nodes}
            predicted = model.predict_nodes_us(sample.graph)
            pairs = [
                (node, measured[node.name], float(p))
                for node, p in zip(sample.graph.nodes, predicted, strict=True)
                if node.name in measured
            ]
            rows = [(node.kind, m, p) for node, m, p in pairs]
            overall = sum(p for *_, p in rows) / sum(m for _, m, _ in rows)
            print(f"{spec}: {len(sample.graph.nodes)} nodes, measured {sample.measured_ms:.3f} "
                  f"ms whole, predicted {model.predict_ms(sample.graph):.3f} ms; node times "
                  f"predicted / measured {overall:.2f} (the machine's speed against the "
                  "recording's, and the network's own error)")  # fmt: skip
            # the error split in two: the nodes' prices, and the per-inference terms that turn
            # the measured nodes themselves into a whole time
            own = own_nodes_ratio(model, sample)
            print(f"  from its own measured nodes through the per-inference terms: "
                  f"{own * sample.measured_ms:.3f} ms ({own - 1:+.1%} of the whole it "
                  "measured)")  # fmt: skip
            for r in by_kind(rows):
                print(f"  {r['kind']:28s} {r['nodes']:4d} nodes {r['measured_us']:9.1f} µs "
                      f"({r['measured_share']:5.1%}) predicted {r['predicted_us']:9.1f} µs, "
                      f"relative {r['relative']:.2f}")  # fmt: skip
            for node, m, p in pairs if args.kind else ():
                if node.kind == args.kind:
                    shapes = " ".join("x".join(map(str, s)) for s in (*node.inputs, *node.outputs))
                    print(f"    {m:8.1f} µs, relative {(p / m) / overall:.2f}: {shapes} "
                          f"k={node.kernel} s={node.stride} g={node.groups}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
