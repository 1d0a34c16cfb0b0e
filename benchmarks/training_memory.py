"""How close is the training-memory estimate (``explorer.memory``) to what CUDA allocates?

    python benchmarks/training_memory.py [--batch 32] [--out FILE.json]   # needs a CUDA GPU

For each paper's preset (and the two hybrid presets) it builds the model on the GPU, runs two
training steps at ``--batch`` (forward, cross-entropy, backward, Adam), and reads the peak that
PyTorch's allocator held (``torch.cuda.max_memory_allocated``) beside the estimate that
``explorer train`` checks against ``--max-memory`` (``estimate_memory(training=True)``), part by
part. The estimate is meant to be an upper bound: a ratio far above 1 refuses trainings that fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("ding2025", "lu2025", "yang2025", "ishtiaq2025", "kumar2025", "hybrid_ding_lu",
           "hybrid_ghost_tucker")  # fmt: skip


def peak_training_bytes(name: str, batch: int) -> dict:
    import torch

    import search_spaces as ss
    from explorer.memory import estimate_memory

    config = ss.config_from_string(name)
    estimate = estimate_memory(config, batch_size=batch, training=True)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model = ss.build(config).cuda().train()
    inputs = tuple(t.cuda() for t in ss.example_inputs(model, batch))
    labels = torch.randint(0, config.num_classes, (batch,), device="cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = model(*inputs)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() - base
    del model, inputs, optimizer, out, logits
    torch.cuda.empty_cache()
    return {
        "model": name,
        "batch": batch,
        "peak_allocated_bytes": peak,
        "estimate_bytes": sum(estimate.values()),
        "estimate_parts": estimate,
        "ratio": sum(estimate.values()) / peak,
        "second_step_s": times[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for name in PRESETS:
        try:
            row = peak_training_bytes(name, args.batch)
        except Exception as exc:  # one preset too large for this GPU does not stop the rest
            row = {"model": name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        rows.append(row)
        if "error" in row:
            print(f"{name}: {row['error']}", flush=True)
        else:
            print(f"{name}: peak {row['peak_allocated_bytes'] / 1e9:.2f} GB, estimate "
                  f"{row['estimate_bytes'] / 1e9:.2f} GB ({row['ratio']:.2f}x), step "
                  f"{row['second_step_s'] * 1e3:.0f} ms", flush=True)  # fmt: skip
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
