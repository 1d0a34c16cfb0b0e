"""Reading, finding and writing device TOML files.

Profiles come from three layers, later ones replacing earlier profiles of the same key:

1. the built-in files in ``device_profiles/devices/``;
2. the user directory ``$XDG_CONFIG_HOME/explorer/devices`` (``~/.config/explorer/devices``);
3. the directory named by ``EXPLORER_DEVICES`` (several may be joined with ``os.pathsep``).

``explorer calibrate`` writes into ``user_device_dir()``: the first ``EXPLORER_DEVICES``
directory when that is set, else the user directory. Within the surviving profiles every key
and alias must be unique; a clash is an error naming both files.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._profile import _KIND_MAPS, PRECISIONS, Calibration, DeviceError, DeviceProfile
from ._target import TARGET_NAME_RE, CrossValidation, Target

__all__ = [
    "fit_toml",
    "get",
    "list_devices",
    "load_file",
    "normalise_name",
    "resolve",
    "split_address",
    "to_toml",
    "user_device_dir",
]

_BUILTIN_DIR = Path(__file__).with_name("devices")
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TOP_KEYS = {
    "key", "name", "kind", "aliases", "memory_gb", "notes", "peak_gflops", "bandwidth_gb_s",
    "sources", "alternatives", "calibration", "default_target", "targets", "architecture",
}  # fmt: skip
_TARGET_KEYS = {
    "processor", "runtime", "precision", "threads", "peak_gflops", "bandwidth_gb_s", "sources",
    "notes", "calibration", "cross_validation",
}  # fmt: skip
_CV_KEYS = {
    "points", "models", "within_10", "within_25", "within_50", "low_ratio", "high_ratio", "source",
    "fixed_ratio",
}  # fmt: skip
_CAL_KEYS = {
    "compute_fraction", "bandwidth_fraction", "overhead_us", "kind_compute_fraction",
    "kind_bandwidth_fraction", "kind_overhead_us", "kind_half_channels", "kind_half_reduction",
    "fuse_elementwise", "call_overhead_us", "work_exponent", "additive",
    "threads", "source",
}  # fmt: skip
_ALT_NUMBERS = {
    "bandwidth_gb_s", "memory_gb", "ridge_flops_per_byte",
    *(f"peak_gflops_{p}" for p in PRECISIONS),
}  # fmt: skip
_ALT_TEXT = {"source", "notes"}


def normalise_name(text: str) -> str:
    """Lower-case with spaces/underscores as hyphens: ``Raspberry_Pi 4`` -> ``raspberry-pi-4``."""
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def user_device_dir() -> Path:
    """Where ``explorer calibrate`` writes profiles: ``$EXPLORER_DEVICES`` or the user directory."""
    env = os.environ.get("EXPLORER_DEVICES", "").strip()
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return _config_dir()


def _config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".config") / "explorer" / "devices"


def _check_keys(table: Mapping[str, Any], allowed: set[str], *, where: str, what: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DeviceError(
            f"{where}: unknown key {unknown[0]!r} in {what}{hint}; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )


def _string_list(value: Any, what: str, *, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DeviceError(f"{where}: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def _table(value: Any, what: str, *, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DeviceError(f"{where}: {what} must be a table ([{what}]), got {value!r}")
    return value


def _calibration(data: Mapping[str, Any], *, where: str) -> Calibration:
    _check_keys(data, _CAL_KEYS, where=where, what="[calibration]")
    missing = [
        k for k in ("compute_fraction", "bandwidth_fraction", "overhead_us") if k not in data
    ]
    if missing:
        raise DeviceError(f"{where}: [calibration] needs {', '.join(missing)}")
    kwargs = dict(data)
    for name in _KIND_MAPS:
        if name in kwargs:
            kwargs[name] = dict(_table(kwargs[name], f"calibration.{name}", where=where))
    if not isinstance(kwargs.get("additive", False), bool):
        raise DeviceError(f"{where}: calibration.additive must be true or false")
    if not isinstance(kwargs.get("fuse_elementwise", False), bool):
        raise DeviceError(f"{where}: calibration.fuse_elementwise must be true or false")
    if not isinstance(kwargs.get("source", ""), str):
        raise DeviceError(f"{where}: calibration.source must be a string")
    try:
        return Calibration(**kwargs)
    except DeviceError as exc:
        raise DeviceError(f"{where}: {exc}") from None


def _alternatives(data: Mapping[str, Any], *, where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for label, table in data.items():
        table = _table(table, f"alternatives.{label}", where=where)
        _check_keys(table, _ALT_NUMBERS | _ALT_TEXT, where=where, what=f"[alternatives.{label}]")
        for k, v in table.items():
            if k in _ALT_TEXT:
                if not isinstance(v, str):
                    raise DeviceError(f"{where}: alternatives.{label}.{k} must be a string")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise DeviceError(
                    f"{where}: alternatives.{label}.{k} must be a positive number, got {v!r}"
                )
            elif not math.isfinite(v):
                raise DeviceError(f"{where}: alternatives.{label}.{k} must be finite")
        out[label] = dict(table)
    return out


def _targets(
    data: Mapping[str, Any], *, where: str, kind: str, peak: Mapping[str, Any], bandwidth: Any
) -> dict[str, Target]:
    out: dict[str, Target] = {}
    for name, table in data.items():
        table = _table(table, f"targets.{name}", where=where)
        what = f"[targets.{name}]"
        _check_keys(table, _TARGET_KEYS, where=where, what=what)
        if not TARGET_NAME_RE.match(name):
            raise DeviceError(
                f"{where}: target name {name!r} must be lower-case letters, digits, '.', '_', '-'"
            )
        precision = table.get("precision", "fp32")
        if "peak_gflops" not in table and precision not in peak:
            raise DeviceError(
                f"{where}: {what} is {precision} but the board has no peak_gflops.{precision}; "
                f"give the target its own peak_gflops"
            )
        cal = table.get("calibration")
        cv = table.get("cross_validation")
        if cv is not None:
            _check_keys(_table(cv, "cross_validation", where=where), _CV_KEYS, where=where,
                        what=f"{what}.cross_validation")  # fmt: skip
        try:
            out[name] = Target(
                name=name,
                processor=table.get("processor", kind),
                runtime=table.get("runtime", "unspecified"),
                precision=precision,
                threads=table.get("threads"),
                peak_gflops=table.get("peak_gflops", peak.get(precision)),
                bandwidth_gb_s=table.get("bandwidth_gb_s", bandwidth),
                calibration=None
                if cal is None
                else _calibration(_table(cal, "calibration", where=where), where=where),
                cross_validation=None if cv is None else CrossValidation(**cv),
                sources=_string_list(table.get("sources", []), "sources", where=where),
                notes=str(table.get("notes", "")),
            )
        except DeviceError as exc:
            raise DeviceError(f"{where}: {what}: {exc}") from None
    return out


def profile_from_dict(data: Mapping[str, Any], *, origin: str, default_key: str) -> DeviceProfile:
    """Validate one parsed TOML document and build its ``DeviceProfile``."""
    where = origin
    _check_keys(data, _TOP_KEYS, where=where, what="the device file")
    key = data.get("key", default_key)
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise DeviceError(
            f"{where}: key must be lower-case letters, digits, '.', '_' or '-', got {key!r}"
        )
    for required in ("name", "kind", "peak_gflops", "bandwidth_gb_s"):
        if required not in data:
            raise DeviceError(f"{where}: missing required key {required!r}")
    if not isinstance(data["name"], str) or not data["name"].strip():
        raise DeviceError(f"{where}: name must be a non-empty string")
    peak = _table(data["peak_gflops"], "peak_gflops", where=where)
    aliases = tuple(
        normalise_name(a) for a in _string_list(data.get("aliases", []), "aliases", where=where)
    )
    for alias in aliases:
        if not _KEY_RE.match(alias):
            raise DeviceError(f"{where}: alias {alias!r} must be letters, digits, '.', '_' or '-'")
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        raise DeviceError(f"{where}: notes must be a string")
    architecture = data.get("architecture", "")
    if not isinstance(architecture, str) or (architecture and not _KEY_RE.match(architecture)):
        raise DeviceError(
            f'{where}: architecture must be a lower-case name such as "ampere", '
            f"got {architecture!r}"
        )
    cal = data.get("calibration")
    default_target = data.get("default_target", "")
    if not isinstance(default_target, str):
        raise DeviceError(f"{where}: default_target must be the name of a [targets.NAME] table")
    targets = _targets(
        _table(data.get("targets", {}), "targets", where=where),
        where=where,
        kind=data["kind"],
        peak=peak,
        bandwidth=data["bandwidth_gb_s"],
    )
    return DeviceProfile(
        targets=targets,
        default_target=default_target,
        key=key,
        name=data["name"].strip(),
        kind=data["kind"],
        peak_gflops=dict(peak),
        bandwidth_gb_s=data["bandwidth_gb_s"],
        memory_gb=data.get("memory_gb"),
        architecture=architecture,
        aliases=aliases,
        sources=_string_list(data.get("sources", []), "sources", where=where),
        notes=notes,
        alternatives=_alternatives(
            _table(data.get("alternatives", {}), "alternatives", where=where), where=where
        ),
        calibration=None
        if cal is None
        else _calibration(_table(cal, "calibration", where=where), where=where),
        origin=origin,
    )


def load_file(path: str | os.PathLike[str]) -> DeviceProfile:
    """Read and validate one device TOML file.

    Raises:
        DeviceError: the file does not exist, is not valid TOML, or breaks the schema.
    """
    path = Path(path).expanduser()
    if not path.is_file():  # regular files only: reading a FIFO would block forever
        what = (
            "is a directory"
            if path.is_dir()
            else "is not a regular file (a FIFO, device or socket)"
            if path.exists()
            else "does not exist"
        )
        raise DeviceError(f"device file {str(path)!r} {what}: give the path of a .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DeviceError(f"{path}: not valid TOML ({exc}); fix the file") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise DeviceError(
            f"{path}: nested too deeply to be a device file; fix or remove the file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceError(f"{path}: cannot be read ({exc})") from None
    return profile_from_dict(data, origin=str(path), default_key=normalise_name(path.stem))


def _layer_dirs() -> list[Path]:
    dirs = [_BUILTIN_DIR, _config_dir()]
    env = os.environ.get("EXPLORER_DEVICES", "").strip()
    if env:
        for part in env.split(os.pathsep):
            if not part:
                continue
            d = Path(part).expanduser()
            if d.exists() and not d.is_dir():
                raise DeviceError(
                    f"EXPLORER_DEVICES names {part!r}, which is not a directory: "
                    "set it to a directory of device .toml files"
                )
            dirs.append(d)
    return dirs


def _read_layer(directory: Path) -> dict[str, DeviceProfile]:
    found: dict[str, DeviceProfile] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.toml")):
        profile = load_file(path)
        if profile.key in found:
            raise DeviceError(
                f"device key {profile.key!r} is defined twice: {found[profile.key].origin} and "
                f"{path}; rename one"
            )
        found[profile.key] = profile
    return found


def _registry() -> dict[str, DeviceProfile]:
    by_key: dict[str, DeviceProfile] = {}
    seen_dirs: set[Path] = set()
    for directory in _layer_dirs():
        resolved = directory.resolve() if directory.exists() else directory
        if resolved in seen_dirs:
            continue
        seen_dirs.add(resolved)
        by_key.update(_read_layer(directory))  # a later layer replaces the same key
    names: dict[str, DeviceProfile] = {}
    for profile in by_key.values():
        for name in profile.names:
            other = names.get(name)
            if other is not None and other.key != profile.key:
                raise DeviceError(
                    f"device name {name!r} is used by {other.origin} ({other.key!r}) and by "
                    f"{profile.origin} ({profile.key!r}); remove the alias from one file"
                )
            names[name] = profile
    return names


def list_devices() -> list[DeviceProfile]:
    """Every known device (built-in, user directory, ``EXPLORER_DEVICES``), sorted by key."""
    unique = {p.key: p for p in _registry().values()}
    return [unique[k] for k in sorted(unique)]


def looks_like_path(text: str) -> bool:
    """Whether ``get`` reads ``text`` as a file's path (a .toml, a separator or ``~``)."""
    return text.endswith(".toml") or os.sep in text or "/" in text or text.startswith("~")


def split_address(text: str) -> tuple[str, str]:
    """``KEY:TARGET`` -> (``KEY``, ``TARGET``); plain ``KEY`` (or a path) -> (``KEY``, "")."""
    head, sep, tail = text.rpartition(":")
    if sep and head and TARGET_NAME_RE.match(tail.strip().lower()) and not tail.endswith(".toml"):
        return head.strip(), tail.strip()
    return text, ""


def get(key_or_path: str | os.PathLike[str]) -> DeviceProfile:
    """The device named ``KEY`` (its default target) or ``KEY:TARGET`` (that target).

    ``KEY`` is a key or alias (case-insensitive) or the path of a .toml file; the returned
    profile's ``target`` is the execution target asked for, and ``address`` names it back
    (``KEY`` for the default target, so ``rpi4`` and ``rpi4:DEFAULT`` give equal profiles).

    Raises:
        DeviceError: unknown device (the message suggests the closest names), unknown target
            (the message lists the board's targets), or a bad file.
    """
    if isinstance(key_or_path, os.PathLike):
        return load_file(key_or_path)
    text, target = split_address(str(key_or_path).strip())
    profile = _get_board(text)
    return profile.with_target(target) if target else profile


def resolve(address: str) -> Target:
    """The execution target ``KEY`` (the board's default) or ``KEY:TARGET`` names."""
    return get(address).target


def _get_board(text: str) -> DeviceProfile:
    if not text:
        raise DeviceError("device is empty: give a key such as rpi4 (see `explorer devices`)")
    if looks_like_path(text):
        return load_file(text)
    names = _registry()
    profile = names.get(normalise_name(text))
    if profile is not None:
        return profile
    close = difflib.get_close_matches(normalise_name(text), sorted(names), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    keys = sorted({p.key for p in names.values()})
    raise DeviceError(
        f"unknown device {text!r}{hint}; known devices: {', '.join(keys)}; "
        "or give the path of a .toml file"
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr of a finite float is valid TOML and round-trips exactly
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(profile: DeviceProfile) -> str:
    """The profile as a device TOML document that ``load_file`` reads back to an equal profile."""
    lines = [f"key = {_toml_value(profile.key)}", f"name = {_toml_value(profile.name)}"]
    lines.append(f"kind = {_toml_value(profile.kind)}")
    if profile.aliases:
        lines.append(f"aliases = {_toml_value(profile.aliases)}")
    if profile.memory_gb is not None:
        lines.append(f"memory_gb = {_toml_value(profile.memory_gb)}")
    lines.append(f"bandwidth_gb_s = {_toml_value(profile.bandwidth_gb_s)}")
    if profile.architecture:
        lines.append(f"architecture = {_toml_value(profile.architecture)}")
    if profile.notes:
        lines.append(f"notes = {_toml_value(profile.notes)}")
    lines.append(f"sources = {_toml_value(profile.sources)}")
    lines += ["", "[peak_gflops]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in profile.peak_gflops.items()]
    for label, table in profile.alternatives.items():
        lines += ["", f"[alternatives.{label}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    cal = profile.calibration
    if cal is not None:
        d = cal.to_dict()
        maps = {k: d.pop(k) for k in list(d) if isinstance(d[k], dict)}
        lines += ["", "[calibration]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in d.items()]
        for name, table in maps.items():
            lines += ["", f"[calibration.{name}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    if profile.targets:
        lines.insert(3, f"default_target = {_toml_value(profile.default_target_name)}")
    for name, target in profile.targets.items():
        lines += _target_lines(name, target)
    return "\n".join(lines) + "\n"


def _calibration_lines(cal: Calibration, prefix: str) -> list[str]:
    d = cal.to_dict()
    maps = {k: d.pop(k) for k in list(d) if isinstance(d[k], dict)}
    lines = ["", f"[{prefix}]"] + [f"{k} = {_toml_value(v)}" for k, v in d.items()]
    for name, table in maps.items():
        lines += ["", f"[{prefix}.{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return lines


def fit_toml(target: Target) -> str:
    """A target's fit as TOML tables: ``[targets.NAME.calibration]`` (and its maps) and
    ``[targets.NAME.cross_validation]``; what ``explorer calibrate`` adds to a device file."""
    lines: list[str] = []
    if target.calibration is not None:
        lines += _calibration_lines(target.calibration, f"targets.{target.name}.calibration")
    if target.cross_validation is not None:
        lines += ["", f"[targets.{target.name}.cross_validation]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in target.cross_validation.to_dict().items()]
    return "\n".join(lines).strip("\n") + "\n"


def _target_lines(name: str, t: Target) -> list[str]:
    lines = ["", f"[targets.{name}]"]
    fields = {
        "processor": t.processor, "runtime": t.runtime, "precision": t.precision,
        "threads": t.threads, "peak_gflops": t.peak_gflops, "bandwidth_gb_s": t.bandwidth_gb_s,
        "sources": t.sources, "notes": t.notes,
    }  # fmt: skip
    lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items() if v not in (None, "")]
    if t.calibration is not None:
        lines += _calibration_lines(t.calibration, f"targets.{name}.calibration")
    if t.cross_validation is not None:
        lines += ["", f"[targets.{name}.cross_validation]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in t.cross_validation.to_dict().items()]
    return lines
