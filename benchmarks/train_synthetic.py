"""Measure training on the synthetic default set: feature build time, time per epoch, and
macro-F1 on an actor-independent split, for a model and its face-only / voice-only variants.

    python benchmarks/train_synthetic.py ding2025 --variants fused,face,voice --epochs 60
    python benchmarks/train_synthetic.py hybrid --epochs 40

Face-only and voice-only variants wrap the model and feed it a constant for the other
modality (zeros: the training-set mean for the standardised audio, black frames for video),
so the architecture and parameter count stay the same and only the information differs.
Prints one JSON line per run and appends it to --out (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from torch import nn

import search_spaces as ss
from explorer.data import build_features, load_dataset, make_split
from explorer.training import TrainSettings, train


class _OneModality(nn.Module):
    def __init__(self, model: nn.Module, keep: str) -> None:
        super().__init__()
        self.model, self.keep = model, keep
        self.input_spec = model.input_spec

    def forward(self, audio, video, text=None):
        if self.keep == "face":
            audio = torch.zeros_like(audio)
        elif self.keep == "voice":
            video = torch.zeros_like(video)
        return self.model(audio, video)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--variants", default="fused")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    for variant in args.variants.split(","):
        torch.manual_seed(args.seed)
        base = ss.build(args.model)
        params = sum(p.numel() for p in base.parameters())
        model = base if variant == "fused" else _OneModality(base, variant)
        t0 = time.perf_counter()
        feats = build_features(ds, base.input_spec, cache_dir=args.cache_dir)
        feature_s = time.perf_counter() - t0
        split = make_split(feats, kind="actor", seed=args.seed)
        settings = TrainSettings(
            epochs=args.epochs,
            patience=args.patience,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            threads=args.threads,
        )
        r = train(model, feats, split, settings=settings)
        row = {
            "model": args.model,
            "variant": variant,
            "params": params,
            "dataset": ds.description,
            "samples": len(feats),
            "split": split.description,
            "feature_seconds": round(feature_s, 2),
            "features_from_cache": feats.from_cache,
            "seconds_per_epoch": round(r.seconds_per_epoch, 2),
            "epochs_run": r.epochs_run,
            "best_epoch": r.best_epoch,
            "macro_f1": round(r.metrics.macro_f1, 4),
            "accuracy": round(r.metrics.accuracy, 4),
            "unweighted_accuracy": round(r.metrics.unweighted_accuracy, 4),
            "confusion": r.metrics.to_dict()["confusion"],
            "settings": settings.to_dict(),
            "machine": f"{platform.machine()}, {args.threads} torch thread(s), "
            f"torch {torch.__version__}",
        }
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
