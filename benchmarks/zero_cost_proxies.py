"""Zero-cost proxies against trained macro-F1: do they rank this space's candidates better than
FLOPs and parameters?

Reads the fully trained trials of a search run (a random-sampled one, so the candidates are a
plain sample of the space), rebuilds each candidate from its stored config with fresh seeded
weights, scores it with five proxies on one batch of its own training data, and reports each
score's Kendall tau with the trial's validation macro-F1, beside those of FLOPs, parameters and
the predicted latency: over all candidates, and within families (the screen sampler already
knows a candidate's family and cost, so a proxy helps it only if it ranks candidates *within*
a family better than cost does).

Proxies (each at initialisation, no training):
- synflow (Tanaka et al. 2020; as a proxy, Abdelfattah et al. 2021): sum of |w * dR/dw| for
  R the sum of the outputs of the network with |weights| on an all-ones input (eval mode,
  float64);
- naswot (Mellor et al. 2021): log-determinant of the kernel of binary activation codes (the
  sign of every convolution's and linear layer's output, where a ReLU would cut) over a batch;
- jacob_cov (Mellor et al. 2021, first version): the eigenvalues of the correlation of the
  input gradients over a batch, -sum(log(v + k) + 1 / (v + k));
- grad_norm: the norm of the loss gradient on a batch;
- snip (Lee et al. 2019): sum of |w * dL/dw| on a batch.

    explorer search --device orin-nano --budget 1e9flops --sampler random --trials 110 \
        --min-epochs 15 --confirm-seeds 0 --no-references --no-paper-starts --timeout none \
        --seed 7 --out runs/zc                       # ~110 fully trained random candidates
    .venv/bin/python benchmarks/zero_cost_proxies.py runs/zc

Prints a table and writes JSON (``--out``, default benchmarks/results/zero_cost_proxies.json).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from scipy.stats import kendalltau
from torch import nn

import search_spaces as ss
from explorer.search import StudyKey, TrialKey

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results  # a script beside this one

# NASWOT's codes are taken where a ReLU would cut: the sign of every convolution's and linear
# layer's output (several families call their activations as functions, not modules).
_CODED = (nn.Conv1d, nn.Conv2d, nn.Linear)


def synflow(model: nn.Module, audio: torch.Tensor, video: torch.Tensor) -> float:
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad()
    ones_a = torch.ones((1, *audio.shape[1:]), dtype=torch.float64)
    ones_v = torch.ones((1, *video.shape[1:]), dtype=torch.float64)
    model(ones_a, ones_v).sum().backward()
    with torch.no_grad():
        total = sum(
            float((p * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None
        )
    return math.log(total) if total > 0 and math.isfinite(total) else float("nan")


def naswot(model: nn.Module, audio: torch.Tensor, video: torch.Tensor) -> float:
    n = audio.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        # frame encoders fold the frames into the batch: (clips x frames, ...), clip-major
        if isinstance(out, torch.Tensor) and out.ndim and out.shape[0] % n == 0:
            codes = (out.detach().reshape(n, -1) > 0).double()
            kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _CODED)]
    try:
        with torch.no_grad():
            model.eval()(audio, video)
    finally:
        for h in handles:
            h.remove()
    if not handles:
        return float("nan")
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 else float("nan")


def jacob_cov(model: nn.Module, audio: torch.Tensor, video: torch.Tensor) -> float:
    audio, video = audio.clone().requires_grad_(True), video.clone().requires_grad_(True)
    model.eval()(audio, video).sum().backward()
    grads = [g.reshape(len(audio), -1) for g in (audio.grad, video.grad) if g is not None]
    jac = torch.cat(grads, dim=1).double().numpy()
    jac = jac[:, jac.std(axis=0) > 0]
    if jac.shape[1] == 0:
        return float("nan")
    corr = np.corrcoef(jac)
    v = np.linalg.eigvalsh(np.nan_to_num(corr))
    k = 1e-5
    return float(-np.sum(np.log(np.maximum(v, 0) + k) + 1.0 / (np.maximum(v, 0) + k)))


def _loss_grads(
    model: nn.Module, audio: torch.Tensor, video: torch.Tensor, labels: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)  # dropout
    model.train().zero_grad()
    nn.functional.cross_entropy(model(audio, video), labels).backward()
    return [(p, p.grad) for p in model.parameters() if p.grad is not None]


@torch.no_grad()
def _norm(grads: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return math.log(math.sqrt(sum(float(g.pow(2).sum()) for _, g in grads)) + 1e-12)


@torch.no_grad()
def _saliency(grads: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return math.log(sum(float((p * g).abs().sum()) for p, g in grads) + 1e-12)


def grad_norm(model: nn.Module, audio, video, labels) -> float:  # type: ignore[no-untyped-def]
    return _norm(_loss_grads(model, audio, video, labels))


def snip(model: nn.Module, audio, video, labels) -> float:  # type: ignore[no-untyped-def]
    return _saliency(_loss_grads(model, audio, video, labels))


PROXIES: dict[str, Callable[..., float]] = {
    "synflow": lambda m, a, v, y: synflow(m, a, v),
    "naswot": lambda m, a, v, y: naswot(m, a, v),
    "jacob_cov": lambda m, a, v, y: jacob_cov(m, a, v),
    "grad_norm": grad_norm,
    "snip": snip,
}


def _batch(settings: dict[str, Any], spec: Any, size: int, cache: dict[Any, Any]):  # type: ignore[no-untyped-def]
    """``size`` training clips for ``spec`` as the search trains on them (audio normalised)."""
    if spec not in cache:
        from explorer.data import build_features, load_dataset, make_split
        from explorer.training import _audio_stats

        if "data" not in cache:
            cache["data"] = load_dataset(settings["dataset"])
        features = build_features(cache["data"], spec)
        split = make_split(
            features,
            kind=settings["split"],
            seed=settings["data_seed"],
            val_fraction=settings["val_fraction"],
        )
        idx = np.random.default_rng(0).permutation(split.train_idx)[:size]
        mean, std = _audio_stats(features, split.train_idx, True)
        audio, video, labels = features.tensors(idx)
        audio = (audio - torch.from_numpy(mean)) / torch.from_numpy(std)
        cache[spec] = (audio.float(), video.float(), labels.long())
    return cache[spec]


def _tau(x: list[float], y: list[float]) -> float | None:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 5:
        return None
    return float(kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic)


def _within(rows: list[dict[str, Any]], key: str, min_n: int = 6) -> float | None:
    """Per-family Kendall tau with macro-F1, averaged with the family sizes as weights."""
    taus = []
    for fam in sorted({r["family"] for r in rows}):
        sub = [r for r in rows if r["family"] == fam]
        if len(sub) >= min_n:
            tau = _tau([r[key] for r in sub], [r["macro_f1"] for r in sub])
            if tau is not None and math.isfinite(tau):
                taus.append((tau, len(sub)))
    if not taus:
        return None
    return sum(t * n for t, n in taus) / sum(n for _, n in taus)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="search run directory (its study.db)")
    p.add_argument("--study", default=None, help="study name (default: the only one)")
    p.add_argument("--batch", type=int, default=32, help="training clips the proxies see")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_cost_proxies.json"))
    args = p.parse_args(argv)

    storage = f"sqlite:///{args.run / 'study.db'}"
    study = optuna.load_study(study_name=args.study, storage=storage)
    settings = study.user_attrs[StudyKey.SETTINGS]
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get(TrialKey.MACRO_F1) is not None
        and not t.user_attrs.get(TrialKey.STOPPED_EARLY)
    ]
    print(f"{len(trials)} fully trained candidates in {args.run}", file=sys.stderr)
    torch.set_num_threads(1)
    rows, cache = [], {}
    for t in sorted(trials, key=lambda t: t.number):
        a = t.user_attrs
        row = {
            "trial": t.number,
            "family": a[TrialKey.FAMILY],
            "macro_f1": float(a[TrialKey.MACRO_F1]),
            "flops": float(a["flops"]),
            "params": float(a["params"]),
            "latency_ms": float(t.values[1]),
        }
        config = ss.config_from_dict(dict(a[TrialKey.CONFIG]))
        audio, video, labels = _batch(settings, ss.build(config).input_spec, args.batch, cache)
        start = time.perf_counter()
        for name, proxy in PROXIES.items():
            torch.manual_seed(0)
            model = ss.build(config)  # fresh weights for each proxy (synflow rewrites them)
            try:
                row[name] = proxy(model, audio, video, labels)
            except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
                print(f"  trial {t.number}: {name} failed: {exc}", file=sys.stderr)
                row[name] = float("nan")
        row["proxy_seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"  #{t.number} {row['family']:8s} F1 {row['macro_f1']:.3f} "
            + " ".join(f"{k} {row[k]:.3g}" for k in PROXIES)
            + f" ({row['proxy_seconds']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    f1 = [r["macro_f1"] for r in rows]
    scores = ("flops", "params", "latency_ms", *PROXIES)
    table = {
        k: {
            "tau_all": _tau([r[k] for r in rows], f1),
            "tau_within_family": _within(rows, k),
            "nan": sum(not math.isfinite(r[k]) for r in rows),
        }
        for k in scores
    }
    print(f"\nKendall tau with trained macro-F1, {len(rows)} candidates")
    print(f"{'score':>11} {'all':>7} {'within family':>14} {'NaN':>4}")
    for k, v in table.items():
        cells = [
            f"{v[c]:+.3f}" if v[c] is not None else "-" for c in ("tau_all", "tau_within_family")
        ]
        print(f"{k:>11} {cells[0]:>7} {cells[1]:>14} {v['nan']:>4}")
    counts = {f: sum(r["family"] == f for r in rows) for f in sorted({r["family"] for r in rows})}
    print(
        f"families: {counts}; proxy time per candidate median "
        f"{statistics.median(r['proxy_seconds'] for r in rows):.2f} s"
    )
    write_results(
        args.out,
        {
            "benchmark": "zero_cost_proxies",
            "run": str(args.run),
            "settings": settings,
            "batch": args.batch,
            "families": counts,
            "kendall_tau": table,
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
