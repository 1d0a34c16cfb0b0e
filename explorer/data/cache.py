"""On-disk feature cache, keyed by (data set fingerprint, InputSpec, feature-code version).

One uncompressed ``.npz`` per entry under ``$EXPLORER_CACHE`` or ``~/.cache/explorer/features``.
Entries are written to a temporary file in the same directory and renamed into place
(``os.replace`` is atomic), so an interrupted build never leaves an entry under its final
name. On read, the zip's CRC-32 of every array is verified and the stored key and shapes are
checked; an unreadable, truncated or mismatching entry is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from explorer.files import atomic_write

__all__ = [
    "FEATURE_VERSION",
    "cache_key",
    "default_cache_dir",
    "drop_entry",
    "load_entry",
    "save_entry",
]

FEATURE_VERSION = 1  # bump whenever feature code changes what it computes


def default_cache_dir() -> Path:
    """``$EXPLORER_CACHE`` if set, else ``~/.cache/explorer/features``."""
    env = os.environ.get("EXPLORER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "explorer" / "features"


def cache_key(fingerprint: str, spec_dict: dict[str, Any], **options: Any) -> str:
    """A hex digest naming one cache entry."""
    blob = json.dumps(
        {"v": FEATURE_VERSION, "data": fingerprint, "spec": spec_dict, "options": options},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"{key}.npz"


def load_entry(cache_dir: Path, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata of entry ``key``, or None when absent or unusable."""
    path = _path(cache_dir, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}  # reading verifies the CRCs
        meta = json.loads(bytes(arrays.pop("__meta__")).decode())
        if meta.get("key") != key:
            raise ValueError("key mismatch")
        for name, shape in meta["shapes"].items():
            if list(arrays[name].shape) != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}, expected {shape}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        # a corrupt or foreign entry: drop it so the caller rebuilds it
        path.unlink(missing_ok=True)
        return None
    return arrays, meta


def drop_entry(cache_dir: Path, key: str) -> None:
    """Delete entry ``key`` (absent is fine): its content was found unusable."""
    _path(cache_dir, key).unlink(missing_ok=True)


def save_entry(
    cache_dir: Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> Path:
    """Write entry ``key`` atomically and return its path."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "key": key, "shapes": {k: list(v.shape) for k, v in arrays.items()}}
    payload = dict(arrays)
    payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    final = _path(cache_dir, key)
    with atomic_write(final, what="feature cache entry") as fh:
        np.savez(fh, **payload)
    return final
