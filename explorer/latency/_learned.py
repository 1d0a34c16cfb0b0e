"""Learned per-kernel latency: one regressor per kind of node ONNX Runtime runs.

A model's predicted time is the sum of its optimised graph's nodes (``_kernels.describe``),
each priced by the regressor of its kind on the logs of its sizes as ONNX Runtime's profiler
reads it, then turned into its time without the profiler (a fitted scale, less the profiler's
own cost per node), plus a fixed per-inference cost (the runtime's own work per ``run``).
Nothing is timed at prediction.

Each kind's regressor is, of the methods that extrapolate safely, the most accurate by
cross-validation on the calibration's own node times: a roofline-shaped base
``c0 + c1 x FLOPs + c2 x bytes`` fitted by non-negative least squares on relative errors
("roofline"), or that base times gradient-boosted trees (LightGBM) fitted to its log residual
("roofline+trees"; the base carries the model to sizes the samples did not reach, the trees
fix what it misses: NCHWc padding, small-channel inefficiency, strided axes). A ridge
regression on log features ("linear") and trees alone ("trees") are scored beside them and
reported, but not chosen: the first explodes and the second stays flat outside the sampled
sizes, and both did on the five standard CNNs.

The file is JSON, never a pickle: the trees are stored as plain arrays and evaluated here with
numpy (LightGBM is needed to fit, not to predict). It names its format and version and carries
a SHA-256 digest of its content; a file that is not JSON, is of another format or version, or
whose content does not match its digest is refused with a one-line error.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from explorer.errors import UsageError
from explorer.files import irregular_reason, write_text_atomic

from ._kernels import KernelGraph, KernelNode

__all__ = [
    "FEATURES",
    "FORMAT",
    "VERSION",
    "KernelModel",
    "KindModel",
    "Trees",
    "fit_kernel_model",
    "fit_kind",
    "kernel_file_for",
    "kernel_model_for",
    "kernels_apply",
    "load_kernel_model",
    "predict_graph",
]

FORMAT = "explorer-kernel-latency"
VERSION = 8  # 2: nodes priced as profiled, the profiler's cost taken off per network; 3: a
# fused activation described by what it costs (``activation``); 4: the size correction; 5: the
# contiguous runs a broadcast or a transpose walks (``spans``); 6: the share of a window's
# output positions its padding reaches (``border``); 7: the bytes its whole network moves
# (``network_bytes``); 8: which of the runtime's routines a transpose takes (``transpose_path``)
FEATURES = (
    "flops",
    "bytes",
    "weight_bytes",
    "in_elems",
    "out_elems",
    "batch",
    "channels_in",
    "channels_out",
    "channels_per_group",
    "groups",
    "spatial_out",
    "kernel_area",
    "stride",
    "n_inputs",
    "rank",
    "last_dim",
    "activation",
    "broadcast",
    "axis_size",
    "axis_inner",
    "spans",
    "border",
    "network_bytes",
    "transpose_path",
)
# The linear model sees the sizes that scale a kernel's time and the fused activation's cost
# (16), not the shape descriptors and flags (channels in, inputs, rank, last dim, broadcast,
# axis, runs).
_LINEAR = (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 16)
_MIN_TREES = 30  # fewer samples of a kind: linear only
_MIN_KIND = 6  # fewer samples of a kind: priced by the pooled model of all kinds


def features(nodes: Sequence[KernelNode]) -> np.ndarray:
    """The feature matrix (log1p of ``FEATURES``) of ``nodes``, one row per node."""
    rows = [[d[f] for f in FEATURES] for d in (n.features() for n in nodes)]
    return np.log1p(np.array(rows, dtype=float).reshape(-1, len(FEATURES)))


@dataclass(frozen=True, kw_only=True)
class Trees:
    """Regression trees as flat arrays (a leaf has feature -1); the sum of their leaves."""

    feature: tuple[tuple[int, ...], ...]
    threshold: tuple[tuple[float, ...], ...]
    left: tuple[tuple[int, ...], ...]
    right: tuple[tuple[int, ...], ...]
    value: tuple[tuple[float, ...], ...]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The sum of the trees' leaves for every row of ``x``: all trees walked at once,
        one level per step (a search prices each candidate with a few hundred trees)."""
        feature, threshold, left, right, value = self._padded
        trees = np.arange(len(feature))[:, None]
        rows = np.arange(len(x))[None, :]
        idx = np.zeros((len(feature), len(x)), dtype=int)  # every tree starts at its root
        while True:
            feat = feature[trees, idx]
            inner = feat >= 0
            if not inner.any():
                break
            go_left = x[rows, np.maximum(feat, 0)] <= threshold[trees, idx]
            idx = np.where(inner, np.where(go_left, left[trees, idx], right[trees, idx]), idx)
        return value[trees, idx].sum(axis=0)

    @functools.cached_property
    def _padded(self) -> tuple[np.ndarray, ...]:
        """The trees as (tree, node) arrays, shorter trees padded with leaves of value 0."""
        width = max((len(f) for f in self.feature), default=1)

        def pad(arrays: tuple[tuple[Any, ...], ...], fill: Any, dtype: Any) -> np.ndarray:
            out = np.full((len(arrays), width), fill, dtype=dtype)
            for i, a in enumerate(arrays):
                out[i, : len(a)] = a
            return out

        return (
            pad(self.feature, -1, int),
            pad(self.threshold, 0.0, float),
            pad(self.left, 0, int),
            pad(self.right, 0, int),
            pad(self.value, 0.0, float),
        )

    @classmethod
    def from_lightgbm(cls, booster: Any) -> Trees:
        """Flatten a fitted LightGBM booster's trees (numerical splits, ``<=`` go left)."""
        feats, thrs, lefts, rights, vals = [], [], [], [], []
        for info in booster.dump_model()["tree_info"]:
            f: list[int] = []
            t: list[float] = []
            lo: list[int] = []
            hi: list[int] = []
            v: list[float] = []

            def add(node: dict[str, Any], f=f, t=t, lo=lo, hi=hi, v=v) -> int:
                i = len(f)
                f.append(-1), t.append(0.0), lo.append(i), hi.append(i), v.append(0.0)
                if "leaf_value" in node:
                    v[i] = float(node["leaf_value"])
                    return i
                if node.get("decision_type", "<=") != "<=":
                    raise ValueError(f"unsupported split {node.get('decision_type')!r}")
                f[i], t[i] = int(node["split_feature"]), float(node["threshold"])
                lo[i] = add(node["left_child"])
                hi[i] = add(node["right_child"])
                return i

            add(info["tree_structure"])
            feats.append(tuple(f)), thrs.append(tuple(t)), lefts.append(tuple(lo))
            rights.append(tuple(hi)), vals.append(tuple(v))
        return cls(
            feature=tuple(feats),
            threshold=tuple(thrs),
            left=tuple(lefts),
            right=tuple(rights),
            value=tuple(vals),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: [list(a) for a in getattr(self, k)] for k in _TREE_KEYS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trees:
        return cls(**{k: tuple(tuple(a) for a in d[k]) for k in _TREE_KEYS})


_TREE_KEYS = ("feature", "threshold", "left", "right", "value")


@dataclass(frozen=True, kw_only=True)
class KindModel:
    """The regressor of one kind of node: log(µs) from the log features."""

    kind: str
    method: str  # "roofline" or "roofline+trees" ("linear", "trees" are only compared)
    samples: int
    cv_mdape: float  # median absolute error of the chosen method in cross-validation (%)
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    coef: tuple[float, ...] = ()
    intercept: float = 0.0
    trees: Trees | _BoosterTrees | None = None  # _BoosterTrees: a model only scored, not saved
    compared: dict[str, float] = field(default_factory=dict)  # method -> CV MdAPE %

    def predict_log(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        if "roofline" in self.method:
            c0, c1, c2 = self.coef
            flops, nbytes = np.expm1(x[:, 0]), np.expm1(x[:, 1])
            out += np.log(np.maximum(c0 + c1 * flops + c2 * nbytes, 1e-3))
        elif "linear" in self.method:
            z = (x[:, _LINEAR] - np.asarray(self.mean)) / np.asarray(self.scale)
            out += z @ np.asarray(self.coef) + self.intercept
        if self.trees is not None:
            out += self.trees.predict(x)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "samples": self.samples,
            "cv_mdape": self.cv_mdape,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "trees": self.trees.to_dict() if self.trees else None,
            "compared": dict(self.compared),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KindModel:
        return cls(
            kind=str(d["kind"]),
            method=str(d["method"]),
            samples=int(d["samples"]),
            cv_mdape=float(d["cv_mdape"]),
            mean=tuple(float(v) for v in d["mean"]),
            scale=tuple(float(v) for v in d["scale"]),
            coef=tuple(float(v) for v in d["coef"]),
            intercept=float(d["intercept"]),
            trees=Trees.from_dict(d["trees"]) if d.get("trees") else None,
            compared={str(k): float(v) for k, v in d.get("compared", {}).items()},
        )


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> dict[str, Any]:
    xs = x[:, _LINEAR]
    mean, scale = xs.mean(0), xs.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (xs - mean) / scale
    intercept = float(y.mean())
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - intercept))
    return {
        "mean": tuple(mean.tolist()),
        "scale": tuple(scale.tolist()),
        "coef": tuple(coef.tolist()),
        "intercept": intercept,
    }


def _roofline(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """``c0 + c1 FLOPs + c2 bytes`` (µs, all >= 0) minimising the relative squared error."""
    from scipy.optimize import nnls

    t = np.exp(y)
    a = np.stack([np.ones(len(t)), np.expm1(x[:, 0]), np.expm1(x[:, 1])], 1) / t[:, None]
    norm = np.maximum(a.max(0), 1e-30)  # columns of very different scale: solve normalised
    coef, _ = nnls(a / norm, np.ones(len(t)))
    coef = coef / norm
    if coef.sum() <= 0:
        coef = np.array([float(np.median(t)), 0.0, 0.0])
    return {"mean": (), "scale": (), "coef": tuple(coef.tolist()), "intercept": 0.0}


class _BoosterTrees:
    """A fitted LightGBM booster predicting for itself: the trees of a model that is only
    scored (a cross-validation fold, an out-of-fold refit), never saved. Flattening them
    (``Trees.from_lightgbm``) and walking them in numpy gives the same sums and took about a
    third of a calibration's fit."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(x), dtype=float)


def _trees(x: np.ndarray, y: np.ndarray, seed: int, *, kept: bool = True) -> Trees | _BoosterTrees:
    """Gradient-boosted trees fitted to ``y``: flattened (``Trees``) when ``kept``, else left
    in LightGBM (``_BoosterTrees``)."""
    import lightgbm as lgb

    params = {
        "objective": "regression",
        "learning_rate": 0.1,
        "num_leaves": 15,
        # 10, not 3: leaves of 3 nodes fit single networks (held-out share within ±10 %, one
        # calibration of a 2-core VM: 79 % with 3, 83 % with 10; 25 no better)
        "min_data_in_leaf": 10,
        "min_data_in_bin": 1,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "seed": seed,
        "num_threads": 1,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(x, y, params={"verbose": -1}), num_boost_round=120)
    return Trees.from_lightgbm(booster) if kept else _BoosterTrees(booster)


def _fit_method(
    kind: str, method: str, x: np.ndarray, y: np.ndarray, seed: int, *, kept: bool = True
) -> KindModel:
    """``kind``'s regressor by ``method``; one not ``kept`` (only scored) is not saveable."""
    base: dict[str, Any] = {"mean": (), "scale": (), "coef": (), "intercept": 0.0}
    residual = y
    if method.startswith(("linear", "roofline")):
        base = _ridge(x, y, alpha=1.0) if method.startswith("linear") else _roofline(x, y)
        probe = KindModel(
            kind=kind, method=method.split("+")[0], samples=len(y), cv_mdape=0.0, **base
        )
        residual = y - probe.predict_log(x)
    trees = _trees(x, residual, seed, kept=kept) if "trees" in method else None
    return KindModel(kind=kind, method=method, samples=len(y), cv_mdape=0.0, trees=trees, **base)


# Scored and reported; only the extrapolation-safe ones are chosen (see the module docstring).
_SAFE = ("roofline", "roofline+trees")


def fit_kind(kind: str, x: np.ndarray, y_log: np.ndarray, *, seed: int = 0) -> KindModel:
    """Fit the regressor of one kind: log µs ``y_log`` from feature rows ``x``.

    With enough samples every method is scored by 3-fold cross-validation (median absolute
    percentage error of the time) and the best safe one is refitted on all samples.
    """
    many = len(y_log) >= _MIN_TREES
    methods = ["roofline", "linear"] + (["roofline+trees", "trees"] if many else [])
    compared: dict[str, float] = {}
    folds = np.random.default_rng(seed).permutation(len(y_log)) % 3
    if len(y_log) >= 6:
        for method in methods:
            errors = []
            for k in range(3):
                train, test = folds != k, folds == k
                model = _fit_method(kind, method, x[train], y_log[train], seed, kept=False)
                errors.append(np.abs(np.expm1(model.predict_log(x[test]) - y_log[test])))
            compared[method] = float(np.median(np.concatenate(errors)) * 100)
    safe = {m: v for m, v in compared.items() if m in _SAFE}
    best = min(safe, key=safe.get) if safe else "roofline"
    model = _fit_method(kind, best, x, y_log, seed)
    if best in compared:
        cv_mdape = compared[best]
    else:  # too few samples to cross-validate: the in-sample error
        cv_mdape = float(np.median(np.abs(np.expm1(model.predict_log(x) - y_log))) * 100)
    return KindModel(
        **{
            **model.__dict__,
            "cv_mdape": cv_mdape,
            "compared": compared,
        }
    )


@dataclass(frozen=True, kw_only=True)
class KernelModel:
    """A machine's learned latency: regressors per node kind and the per-inference terms.

    The regressors predict each node's time as ONNX Runtime's profiler reads it, p. Without
    the profiler a network of n nodes takes ``call_us`` + ``scale`` x sum(p) - ``per_node_us``
    x n (the profiler's own clock reads and event records, ~2-3 µs a node: a third of a
    400-node network of small nodes). The three are fitted on whole-network times measured
    without the profiler, so node times need not be corrected one by one (a 2-µs node less a
    2-µs overhead is a ratio the log-scale regressors cannot learn).
    """

    kinds: dict[str, KindModel]
    pooled: KindModel  # for kinds the calibration did not see (or saw too rarely)
    call_us: float
    scale: float
    level: str  # graph optimisation level the nodes were described at
    block: int  # the NCHWc block of the calibrating machine (0: none)
    threads: int = 1
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    per_node_us: float = 0.0
    # log factors on the summed node times at ``_SIZE_KNOTS_US`` (empty: none)
    size_log_factors: tuple[float, ...] = ()

    def network_us(self, profiled_us: np.ndarray) -> float:
        """One inference's µs from its nodes' predicted profiled µs."""
        return self.whole_us(float(np.sum(profiled_us)), len(profiled_us))

    def whole_us(self, total_us: float, nodes: int) -> float:
        """One inference's µs from the sum of its ``nodes`` nodes' profiled µs: the sum
        scaled and size-corrected, less the profiler's cost per node, at least a tenth of the
        scaled sum (a guard: the per-node cost is an average, and a network of nodes the
        profiler reads at its 2-µs floor could otherwise come out negative), plus the call."""
        terms = (self.call_us, self.scale, self.per_node_us, self.size_log_factors)
        return float(_whole_us(np.float64(total_us), np.float64(nodes), *terms))

    def predict_nodes_us(self, graph: KernelGraph) -> np.ndarray:
        """Predicted µs of every node of ``graph`` as the profiler reads it (``network_us``
        turns them into one inference's time)."""
        if not graph.nodes:
            return np.zeros(0)
        x = features(graph.nodes)
        out = np.zeros(len(graph.nodes))
        kinds = np.array([n.kind for n in graph.nodes])
        for kind in set(kinds.tolist()):
            rows = kinds == kind
            model = self.kinds.get(kind) or self.kinds.get(kind.split(":")[0], self.pooled)
            out[rows] = np.exp(model.predict_log(x[rows]))
        return out

    def predict_ms(self, graph: KernelGraph) -> float:
        """Predicted milliseconds of one inference of the model ``graph`` describes."""
        return self.network_us(self.predict_nodes_us(graph)) / 1e3

    def stated_range(self, ms: float) -> tuple[float, float]:
        """The (low, high) ms a prediction of ``ms`` states: ``meta["range_pct"]`` either side
        (the calibration's 90th-percentile out-of-fold error; 20 % in a file without one)."""
        spread = float(self.meta.get("range_pct", 20.0)) / 100
        return ms * (1 - spread), ms * (1 + spread)

    def payload(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "call_us": self.call_us,
            "scale": self.scale,
            "per_node_us": self.per_node_us,
            "size_knots_us": list(_SIZE_KNOTS_US),
            "size_log_factors": list(self.size_log_factors),
            "level": self.level,
            "block": self.block,
            "threads": self.threads,
            "source": self.source,
            "features": list(FEATURES),
            "kinds": {k: m.to_dict() for k, m in sorted(self.kinds.items())},
            "pooled": self.pooled.to_dict(),
            "meta": self.meta,
        }

    def to_json(self) -> str:
        """The file's text: the model as JSON with its format, version and digest."""
        payload = self.payload()
        payload["digest"] = _digest(payload)
        return json.dumps(payload, separators=(",", ":"))

    def save(self, path: str | Path) -> Path:
        """Write ``to_json()`` to ``path`` atomically; returns the path."""
        return write_text_atomic(Path(path), self.to_json(), what="kernel latency file")


def _digest(payload: dict[str, Any]) -> str:
    body = {k: v for k, v in payload.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_kernel_model(path: str | Path) -> KernelModel:
    """Read a kernel-latency file written by ``KernelModel.save``.

    Raises:
        UsageError: the file is missing, not JSON, of another format or version, or its
            content does not match its digest (corrupt or edited).
    """
    path = Path(path)
    fix = "run `explorer calibrate` again to rewrite it"
    reason = irregular_reason(path)  # a FIFO would block the read forever
    if reason and reason != "does not exist":
        raise UsageError(f"kernel latency file {str(path)!r} {reason}; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"kernel latency file {str(path)!r} does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not a kernel latency file ({exc}); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a kernel latency file (format {FORMAT!r}); {fix}")
    if data.get("version") != VERSION:
        raise UsageError(
            f"{path} is kernel latency version {data.get('version')!r}, this explorer reads "
            f"version {VERSION}; {fix}"
        )
    if data.get("digest") != _digest(data):
        raise UsageError(f"{path}: content does not match its digest (corrupt or edited); {fix}")
    if data.get("features") != list(FEATURES):
        raise UsageError(f"{path} uses other kernel features than this explorer; {fix}")
    if data.get("size_knots_us") != list(_SIZE_KNOTS_US):
        raise UsageError(f"{path} corrects for size at other knots than this explorer; {fix}")
    try:
        return KernelModel(
            kinds={k: KindModel.from_dict(v) for k, v in data["kinds"].items()},
            pooled=KindModel.from_dict(data["pooled"]),
            call_us=float(data["call_us"]),
            scale=float(data["scale"]),
            per_node_us=float(data["per_node_us"]),
            size_log_factors=tuple(float(v) for v in data["size_log_factors"]),
            level=str(data["level"]),
            block=int(data["block"]),
            threads=int(data.get("threads", 1)),
            source=str(data.get("source", "")),
            meta=dict(data.get("meta", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: malformed kernel latency file ({exc!r}); {fix}") from None


def kernel_file_for(profile_path: str | Path) -> Path:
    """The kernel-latency file beside a device TOML: ``host.toml`` -> ``host.kernels.json``."""
    p = Path(profile_path)
    return p.with_name(p.stem + ".kernels.json")


@functools.lru_cache(maxsize=16)
def _cached(path: str, mtime: float) -> KernelModel:
    return load_kernel_model(path)


def kernel_model_for(device: Any) -> KernelModel | None:
    """The learned kernel model of ``device`` (a ``DeviceProfile``), or None.

    The model is the ``.kernels.json`` beside the TOML the profile was read from (None for a
    built-in profile or when there is no such file). It prices the board's default target
    (``KEY``: the file was calibrated for it) and any other target ``KEY:TARGET`` that runs
    what the file measured: a CPU target at FP32 whose runtime is ONNX Runtime (or not named)
    and whose thread count is the file's (or not named). Other targets (a GPU, TensorRT,
    ncnn, INT8, another thread count) keep the roofline.
    """
    origin = getattr(device, "origin", "") or ""
    if not origin or not origin.endswith(".toml"):
        return None
    path = kernel_file_for(origin)
    if not path.is_file():
        return None
    kernels = _cached(str(path), path.stat().st_mtime)
    if getattr(device, "selected_target", "") and not kernels_apply(device.target, kernels):
        return None
    return kernels


_ORT_NAMES = ("onnxruntime", "onnx runtime", "ort", "unspecified", "")


def kernels_apply(target: Any, kernels: KernelModel) -> bool:
    """Whether ``kernels`` (ONNX Runtime on a CPU at FP32) describes how ``target`` runs."""
    runtime = str(getattr(target, "runtime", "") or "").strip().lower()
    threads = getattr(target, "threads", None)
    return (
        getattr(target, "processor", "cpu") == "cpu"
        and getattr(target, "precision", "fp32") == "fp32"
        and (runtime in _ORT_NAMES or runtime.startswith("onnxruntime"))
        and (threads is None or threads == kernels.threads)
    )


_MIN_NETWORK_NODES = 5  # the per-inference terms are fitted on networks of at least this many
_FOLDS = 5  # out-of-fold node sums for the per-inference terms (``fit_kernel_model``)
_MIN_SIZE_FIT = 30  # networks needed to fit the size correction
# The size correction: a log factor on a network's summed node times, linear in log10 of the
# sum between these knots (µs), constant beyond them, zero at the last knot
_SIZE_KNOTS_US = (100.0, 300.0, 1000.0, 3000.0, 10000.0)
_SIZE_SMOOTHING = 0.3  # weight of the knots' second differences in the fit


def _fit_kinds(
    nodes: Sequence[tuple[KernelNode, float]],
    methods: dict[str, str] | None = None,
    *,
    x: np.ndarray | None = None,
) -> tuple[dict[str, KindModel], KindModel]:
    """One regressor per kind seen at least ``_MIN_KIND`` times (``math`` over all its
    operators, then ``math:Softplus`` on its own) and the pooled one; each kind's method chosen
    by cross-validation (``fit_kind``), or the one ``methods`` names (roofline where the
    kind has too few samples here for trees; such models are only scored, not kept). ``x``:
    the nodes' ``features`` when the caller has them."""
    x = features([n for n, _ in nodes]) if x is None else x
    y = np.log(np.array([max(t, 0.1) for _, t in nodes]))
    specific = np.array([n.kind for n, _ in nodes])
    generic = np.array([k.split(":")[0] for k in specific])

    def fit(kind: str, rows: np.ndarray) -> KindModel:
        if methods is None:
            return fit_kind(kind, x[rows], y[rows])
        method = methods.get(kind, "roofline")
        if "trees" in method and rows.sum() < _MIN_TREES:
            method = "roofline"
        return _fit_method(kind, method, x[rows], y[rows], seed=0, kept=False)

    kinds: dict[str, KindModel] = {}
    for kinds_of in (generic, specific):
        for kind in sorted(set(kinds_of.tolist())):
            rows = kinds_of == kind
            if kind not in kinds and rows.sum() >= _MIN_KIND:
                kinds[kind] = fit(kind, rows)
    return kinds, fit("pooled", np.ones(len(y), dtype=bool))


def _out_of_fold_sums(
    nodes: Sequence[tuple[KernelNode, float]],
    groups: Sequence[int],
    graphs: Sequence[KernelGraph],
    priced: Sequence[int],
    model: KernelModel,
    x: np.ndarray,
) -> np.ndarray:
    """The summed node times of the networks ``priced`` (indices into ``graphs``), each as
    predicted by regressors fitted without it.

    The networks are split into ``_FOLDS`` folds; for each, the kinds are refitted (with the
    methods ``model`` chose) on the nodes of the other folds' networks and price this fold's
    (a lone network, with no other to learn from, keeps ``model``'s). Fitted on all nodes, the
    regressors have seen every calibration network's own nodes and price them nearly exactly;
    a new network's small nodes they price from other networks'. ``x``: the nodes' ``features``.
    """
    methods = {k: m.method for k, m in model.kinds.items()} | {"pooled": model.pooled.method}
    fold = np.random.default_rng(0).permutation(len(graphs)) % _FOLDS
    node_fold = fold[np.asarray(groups)]
    sums = np.zeros(len(priced))
    for f in range(_FOLDS):
        here = [j for j, i in enumerate(priced) if fold[i] == f]
        if not here:
            continue
        train = node_fold != f
        part = model
        if train.any():
            rest = [nt for nt, t in zip(nodes, train, strict=True) if t]
            kinds, pooled = _fit_kinds(rest, methods, x=x[train])
            part = replace(model, kinds=kinds, pooled=pooled)
        # the fold's networks priced in one pass, then summed network by network
        fold_nodes = [graphs[priced[j]].nodes for j in here]
        joined = replace(graphs[priced[here[0]]], nodes=tuple(n for ns in fold_nodes for n in ns))
        priced_us = part.predict_nodes_us(joined)
        ends = np.cumsum([len(ns) for ns in fold_nodes])
        for j, chunk in zip(here, np.split(priced_us, ends[:-1]), strict=True):
            sums[j] = chunk.sum()
    return sums


def _fit_network_terms(
    sums: np.ndarray, counts: np.ndarray, measured_us: np.ndarray, *, size: bool
) -> tuple[float, float, float, tuple[float, ...]]:
    """``call_us``, ``scale``, ``per_node_us`` and (with ``size``) the size correction's log
    factors at ``_SIZE_KNOTS_US`` that best turn summed node times into whole-network times
    (relative error, robust loss)."""
    from scipy.optimize import least_squares

    free = len(_SIZE_KNOTS_US) - 1 if size else 0

    def residuals(theta: np.ndarray) -> np.ndarray:
        size = (*theta[3:], 0.0) if free else ()
        smooth = _SIZE_SMOOTHING * np.diff(size, 2) if free else []
        whole = _whole_us(sums, counts, theta[0], theta[1], theta[2], size)
        return np.r_[whole / measured_us - 1, smooth]

    fit = least_squares(
        residuals,
        np.r_[3.0, 1.0, 2.0, np.zeros(free)],
        bounds=(np.r_[0.0, 0.05, 0.0, -np.ones(free)], np.r_[1e4, 20.0, 20.0, np.ones(free)]),
        loss="soft_l1",
        f_scale=0.05,
    )
    theta = [float(v) for v in fit.x]
    return theta[0], theta[1], theta[2], ((*theta[3:], 0.0) if free else ())


def _whole_us(
    sums: np.ndarray,
    counts: np.ndarray,
    call_us: float,
    scale: float,
    per_node_us: float,
    size_log_factors: Sequence[float],
) -> np.ndarray:
    """``KernelModel.whole_us`` over arrays of node sums and node counts (the fit prices its
    trial terms with it)."""
    scaled = scale * sums
    if len(size_log_factors):
        z = np.log10(np.maximum(sums, 1e-3))
        scaled = scaled * np.exp(np.interp(z, np.log10(_SIZE_KNOTS_US), size_log_factors))
    return call_us + np.maximum(scaled - per_node_us * counts, 0.1 * scaled)


def fit_kernel_model(
    nodes: Sequence[tuple[KernelNode, float]],
    networks: Sequence[tuple[KernelGraph, float]],
    *,
    level: str,
    block: int,
    groups: Sequence[int] | None = None,
    threads: int = 1,
    source: str = "",
    meta: dict[str, Any] | None = None,
) -> KernelModel:
    """Fit the per-kind regressors on profiled node times and the per-inference terms on
    whole-network times.

    Args:
        nodes: (node, profiled µs) pairs from ONNX Runtime's profiler.
        networks: (graph, measured ms of one inference) pairs, timed without the profiler.
            The per-inference terms (``call_us``, ``scale``, ``per_node_us``) are fitted on
            those of at least five nodes (all when fewer than ten are): a network of one or
            two operators says little about the cost per node and its sub-10-µs time is
            mostly the call. Refitting four saved calibrations of this VM, fitted on all
            networks 0.79 of the benchmark's 65 held-out networks were within ±10 %, on
            those of five or more nodes 0.83.
        groups: for every node, the index in ``networks`` of the network it was profiled
            in. Given, the per-inference terms are fitted on out-of-fold node sums
            (``_out_of_fold_sums``) and with them a size correction: the regressors price the
            small nodes of small networks too slow and of large ones too fast (the same tiny
            Gemm profiled 5 µs in one network, 12 µs after a large one), which only shows on
            networks they were not fitted on. Without it, on in-sample sums, no correction.
    """
    if not nodes:
        raise UsageError("the kernel latency fit needs profiled nodes; none were measured")
    x = features([n for n, _ in nodes])  # once: the out-of-fold refits take their rows
    kinds, pooled = _fit_kinds(nodes, x=x)
    model = KernelModel(
        kinds=kinds,
        pooled=pooled,
        call_us=0.0,
        scale=1.0,
        level=level,
        block=block,
        threads=threads,
        source=source,
        meta=dict(meta or {}),
    )
    multi = [i for i, (g, _) in enumerate(networks) if len(g.nodes) >= _MIN_NETWORK_NODES]
    fitted = multi if len(multi) >= 10 else list(range(len(networks)))
    if not fitted:
        return model
    graphs = [networks[i][0] for i in fitted]
    if groups is not None:
        if len(groups) != len(nodes):
            raise ValueError(f"{len(groups)} groups for {len(nodes)} nodes")
        sums = _out_of_fold_sums(nodes, groups, [g for g, _ in networks], fitted, model, x)
    else:
        sums = np.array([model.predict_nodes_us(g).sum() for g in graphs])
    counts = np.array([len(g.nodes) for g in graphs], dtype=float)
    measured_us = np.array([networks[i][1] * 1e3 for i in fitted])
    terms = _fit_network_terms(
        sums, counts, measured_us, size=groups is not None and len(fitted) >= _MIN_SIZE_FIT
    )
    call, scale, per_node, size = terms
    model = replace(model, call_us=call, scale=scale, per_node_us=per_node, size_log_factors=size)
    # the range a prediction carries: 90th percentile of the fitted networks' errors (out of
    # fold where it can: as a new network's), at least the 5 % two timings of one network
    # differ by on a quiet machine
    errors = np.abs(_whole_us(sums, counts, *terms) / measured_us - 1)
    model.meta["range_pct"] = round(max(5.0, float(np.percentile(errors, 90)) * 100), 1)
    model.meta["within_10pct"] = round(float(np.mean(errors <= 0.10)), 3)
    return model


# Described graphs, most recent last. A model built from a family Config is found by that
# Config and its structure, so a model built again from the same Config reuses its graph: the
# search's screen prices a candidate, then its trial builds it again to train (describing one
# took 0.05-1.8 s in a search, most of it torch's ONNX export). Any other model is found by its
# identity while it lives.
_GRAPHS: OrderedDict[tuple[Any, ...], tuple[Any, KernelGraph]] = OrderedDict()
_GRAPHS_KEPT = 64  # more than one trial's screen prices (8 by default, at most 32 draws)


def _graph_key(model: Any, inputs: tuple[Any, ...], level: str) -> tuple[Any, ...]:
    from ._export_helper import family_config, structure

    shapes = tuple(tuple(getattr(t, "shape", ())) for t in inputs)
    config = family_config(model)
    if config is not None:
        return ("config", config, structure(model), shapes, level)
    return ("id", id(model), shapes, level)


def _graph_of(model: Any, inputs: tuple[Any, ...], level: str) -> KernelGraph:
    """The model's optimised graph, described once per Config and structure (or per model
    object: ``_GRAPHS``); a search prices one candidate on several devices, and twice."""
    import weakref

    from ._kernels import describe

    key = _graph_key(model, inputs, level)
    hit = _GRAPHS.get(key)
    if hit is not None and (key[0] == "config" or hit[0]() is model):
        _GRAPHS.move_to_end(key)
        return hit[1]
    graph = describe(model, tuple(inputs), level=level)
    ref = None  # a Config's entry is found by its key alone
    if key[0] == "id":
        try:
            ref = weakref.ref(model)
        except TypeError:  # not weak-referenceable: not cached
            return graph
    _GRAPHS[key] = (ref, graph)
    while len(_GRAPHS) > _GRAPHS_KEPT:
        _GRAPHS.popitem(last=False)
    return graph


def predict_graph(model: Any, inputs: tuple[Any, ...], kernels: KernelModel) -> KernelGraph:
    """``model``'s optimised graph as the calibrated machine's runtime would run it.

    A file calibrated where the runtime has no NCHWc kernels (``block`` 0, e.g. an aarch64
    board) is matched by describing the graph without layout changes (``extended``).
    """
    from ._kernels import nchwc_block

    level = kernels.level
    if kernels.block == 0 and nchwc_block() != 0:
        level = "extended"
    return _graph_of(model, inputs, level)
