"""Hostile inputs: over a thousand bad inputs across every command, each run with a time and
memory cap, and a table per group of how the tool answered.

Groups: ``crashes`` (bad options of every command, ordinary use of every preset),
``destroyed`` (outputs aimed at FIFOs, devices, directories, links), ``hangs`` (special files
as inputs, huge batch sizes and layers), ``numbers`` (nonsense in every numeric option,
budget and model override), ``paths``, ``checkpoints`` (truncated, bit-flipped, edited,
pickled code), ``device_toml``, ``datasets`` and ``results`` (results.csv / search.json).

A case passes when the command either refuses with exit code 1 or 2 and exactly one line
``error: ...`` on stderr (no traceback, no "unexpected"), or, for cases marked ``either``
(input that is odd but legal), succeeds. Also counted: hangs (past ``--timeout``), files
destroyed (every file of the case directory is fingerprinted before and after; an output
path that is a FIFO/device/directory must keep its type), files left behind (temporary
files, or a declared output after a failure) and code run from a checkpoint (a PWNED file).

Each case runs in a fresh directory (HOME and the feature cache inside it). To afford a
thousand cases, the runner imports the CLI once and forks a child per case (``--mode fork``,
the default); ``--mode subprocess`` starts a new interpreter per case instead. Each child
gets ``RLIMIT_AS`` = its starting size + ``--memory-gb`` and its own process group, killed
at the time cap.

Usage::

    python benchmarks/hostile_inputs.py --limit 300 --jobs 2    # a stratified subset
    python benchmarks/hostile_inputs.py                          # all cases

Prints one table per group and writes benchmarks/results/hostile_inputs.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TINY = "synthetic:actors=2,clips_per_class=1,clip_seconds=0.5"
SMALL = "lu:frames=2,width_mult=0.25"
GROUPS = (
    "crashes",
    "destroyed",
    "hangs",
    "numbers",
    "paths",
    "checkpoints",
    "device_toml",
    "datasets",
    "results",
)


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    argv: tuple[str, ...]
    # (relative path, kind, data): kind is bytes, text, fifo, dir, chardev (data "1,3"),
    # symlink (data: target), copy (data: fixture path relative to the fixtures dir)
    files: tuple[tuple[str, str, object], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    expect: str = "refuse"  # or "either"
    outputs: tuple[str, ...] = ()  # paths a successful run may replace
    # a command that is long by design (calibrate's default 5-minute budget) gets this cap
    # instead of --timeout when it is larger
    timeout_s: float = 0.0


# --- generation -----------------------------------------------------------------------------

NASTY_INTS = (
    "-1",
    "0",
    "1.5",
    "1e999",
    "nan",
    "9" * 400,
    "0x10",
    "",
    "abc",
    "-9223372036854775809",
)
NASTY_FLOATS = ("-1", "nan", "inf", "-inf", "1e999", "1e-320", "9" * 400, "", "abc", "1e308")
NASTY_BUDGETS = (
    *(
        f"{v}{u}"
        for v in ("1e999", "-1", "nan", "inf", "1e-320", "9" * 400, "0", "", "1e308")
        for u in ("flops", "ms", "params", "MB", "macs", "")
    ),
    *("20ms@nosuch", "abc", "1e9 flops flops", "@rpi4", "20ms@"),
)
BAD_TARGETS = (  # (name, files, path given)
    ("fifo", (("t.pt", "fifo", None),), "t.pt"),
    ("chardev", (("t.pt", "chardev", "1,3"),), "t.pt"),
    ("directory", (("t.pt", "dir", None),), "t.pt"),
    ("link_to_fifo", (("f", "fifo", None), ("t.pt", "symlink", "f")), "t.pt"),
    ("link_to_device", (("n", "chardev", "1,3"), ("t.pt", "symlink", "n")), "t.pt"),
    ("under_a_file", (("file", "text", "x"),), "file/t.pt"),
    ("dot", (), "."),
    ("empty", (), ""),
    ("long_name", (), "n" * 300 + ".pt"),
    ("dangling_dir", (), "nosuchdir/deeper/t.pt"),
)
BAD_INPUTS = (  # (name, files, path given): paths a command reads
    ("fifo", (("in.pt", "fifo", None),), "in.pt"),
    ("zero_device", (("in.pt", "chardev", "1,5"),), "in.pt"),
    ("null_device", (("in.pt", "chardev", "1,3"),), "in.pt"),
    ("directory", (("in.pt", "dir", None),), "in.pt"),
    ("link_to_fifo", (("f", "fifo", None), ("in.pt", "symlink", "f")), "in.pt"),
    ("link_loop", (("a", "symlink", "b"), ("b", "symlink", "a")), "a"),
    ("missing", (), "missing.pt"),
    ("empty_name", (), ""),
    ("long_name", (), "n" * 300 + ".pt"),
    ("under_a_file", (("file", "text", "x"),), "file/in.pt"),
    ("unicode_missing", (), "ümlaut-ß.pt"),
)


def _crashes(rng: random.Random, presets: list[str], families: list[str]) -> list[Case]:
    import device_profiles

    cmds = {
        "profile": ("profile", SMALL),
        "bench": ("bench", SMALL, "--runs", "1", "--warmup", "0"),
        "export": ("export", SMALL, "--onnx", "o.onnx"),
        "calibrate": ("calibrate", "--out", "c.toml"),
        "train": ("train", SMALL, "--epochs", "1", "--dataset", TINY),
        "search": ("search", "--device", "rpi4", "--budget", "1e8flops", "--trials", "1"),
        "worker": ("worker", "--study", "x"),
        "report": ("report", "."),
        "roofline": ("roofline", SMALL, "--device", "rpi4", "--out", "r.html"),
        "prune": ("prune", "m.pt", "--device", "rpi4", "--budget", "1e6flops"),
        "devices_show": ("devices", "show", "rpi4"),
        "spaces_show": ("spaces", "show", "lu"),
        "data_inspect": ("data", "inspect", TINY),
        "data_features": ("data", "features", SMALL, "--dataset", TINY),
        "env": ("env",),
    }
    mutations = {
        "unknown_option": lambda a: (*a, "--nosuch-option"),
        "bad_format": lambda a: (*a, "--format", "xml"),
        "option_without_value": lambda a: (*a, "--format"),
        "extra_positional": lambda a: (*a, "surplus", "args"),
        "first_arg_only": lambda a: a[:1],
        "empty_arg": lambda a: (a[0], "", *a[1:]),
        "dash_arg": lambda a: (a[0], "-", *a[1:]),
        "binary_junk": lambda a: (a[0], "\x7f\x1b[31m", *a[1:]),
    }
    cases = []
    for cname, argv in cmds.items():
        for mname, mutate in mutations.items():
            # `explorer devices` alone is a valid command
            expect = "either" if mname == "first_arg_only" else "refuse"
            # `explorer calibrate` alone measures this machine for its default 5 minutes
            long = 600.0 if (cname, mname) == ("calibrate", "first_arg_only") else 0.0
            cases.append(
                Case(
                    "crashes",
                    f"{cname}:{mname}",
                    tuple(mutate(argv)),
                    expect=expect,
                    timeout_s=long,
                )
            )
    for p in presets:  # ordinary use: every preset profiles
        cases.append(
            Case("crashes", f"profile:{p}", ("profile", p, "--format", "json"), expect="either")
        )
    for f in families:
        cases.append(Case("crashes", f"spaces_show:{f}", ("spaces", "show", f), expect="either"))
    for d in device_profiles.list_devices():
        key = getattr(d, "key", d)
        cases.append(
            Case("crashes", f"devices_show:{key}", ("devices", "show", key), expect="either")
        )
    for p in ("ding2025", "lu2025"):
        cases.append(
            Case(
                "crashes",
                f"prune_preset:{p}",
                (
                    "prune",
                    p,
                    "--device",
                    "rpi4",
                    "--budget",
                    "7162368flops",
                    "--dataset",
                    "none",
                    "--no-bench",
                    "--finetune-epochs",
                    "0",
                    "--out",
                    "p.pt",
                ),
                expect="either",
                outputs=("p.pt",),
            )
        )
    return cases


def _destroyed() -> list[Case]:
    commands = {
        "train_out": lambda t: ("train", SMALL, "--epochs", "1", "--dataset", TINY, "--out", t),
        "prune_out": lambda t: (
            "prune",
            "{fx}/small.pt",
            "--device",
            "rpi4",
            "--budget",
            "1e9flops",
            "--dataset",
            "none",
            "--no-bench",
            "--finetune-epochs",
            "0",
            "--out",
            t,
        ),
        "prune_onnx": lambda t: (
            "prune",
            "{fx}/small.pt",
            "--device",
            "rpi4",
            "--budget",
            "1e9flops",
            "--dataset",
            "none",
            "--no-bench",
            "--finetune-epochs",
            "0",
            "--onnx",
            t,
        ),
        "export_onnx": lambda t: ("export", "{fx}/small.pt", "--onnx", t),
        "report_out": lambda t: ("report", "run", "--out", t, "--no-breakdown"),
        "roofline_out": lambda t: ("roofline", SMALL, "--device", "rpi4", "--out", t),
        "roofline_image": lambda t: (
            "roofline",
            SMALL,
            "--device",
            "rpi4",
            "--out",
            "r.html",
            "--image",
            t,
        ),
        "calibrate_out": lambda t: ("calibrate", "--out", t, "--networks", "0"),
    }
    cases = []
    for cname, make in commands.items():
        for tname, files, target in BAD_TARGETS:
            if tname == "dangling_dir" and cname == "calibrate_out":
                continue  # a legal path: the command would calibrate for minutes
            for fmt in ("table", "json"):
                run = (("run", "run", None),) if cname == "report_out" else ()
                cases.append(
                    Case(
                        "destroyed",
                        f"{cname}:{tname}:{fmt}",
                        (*make(target), "--format", fmt),
                        files=(*files, *run),
                        # missing directories are created: a legal target
                        expect="either" if tname == "dangling_dir" else "refuse",
                    )
                )
    return cases


def _hangs(families_fields: dict[str, list[str]], presets: list[str]) -> list[Case]:
    readers = {
        "profile": lambda p: ("profile", p),
        "export": lambda p: ("export", p, "--onnx", "o.onnx"),
        "train": lambda p: ("train", p, "--epochs", "1", "--dataset", TINY),
        "prune": lambda p: (
            "prune",
            p,
            "--device",
            "rpi4",
            "--budget",
            "1e6flops",
            "--dataset",
            "none",
        ),
        "bench": lambda p: ("bench", p, "--runs", "1"),
        "roofline": lambda p: ("roofline", p, "--device", "rpi4", "--out", "r.html"),
        "device_file": lambda p: ("profile", SMALL, "--device", p.replace(".pt", ".toml")),
        "devices_show": lambda p: ("devices", "show", p.replace(".pt", ".toml")),
        "from_measurements": lambda p: ("calibrate", "--from-measurements", p, "--device", "rpi4"),
        "bench_from": lambda p: ("bench", "--from-measurements", p, "--device", "rpi4"),
    }
    special = [
        x for x in BAD_INPUTS if x[0] in ("fifo", "zero_device", "link_to_fifo", "directory")
    ]
    cases = []
    for cname, make in readers.items():
        for sname, files, path in special:
            files = tuple(
                (
                    r.replace(".pt", ".toml")
                    if "device" in cname or cname == "devices_show"
                    else r,
                    k,
                    d,
                )
                for r, k, d in files
            )
            cases.append(Case("hangs", f"{cname}:{sname}", make(path), files=files))
    for sname, kind, data in (("fifo", "fifo", None), ("zero", "chardev", "1,5")):
        env = (("EXPLORER_DEVICES", "devs"),)
        files = (("devs", "dir", None), ("devs/board.toml", kind, data))
        cases.append(Case("hangs", f"devices_dir:{sname}", ("devices",), files=files, env=env))
        cases.append(
            Case(
                "hangs",
                f"devices_dir_profile:{sname}",
                ("profile", SMALL, "--device", "rpi4"),
                files=files,
                env=env,
            )
        )
    for kind in ("ravdess", "cremad"):
        for sname, fkind, data in (
            ("fifo", "fifo", None),
            ("zero", "chardev", "1,5"),
            ("dir", "dir", None),
        ):
            files = _clips(kind, bad={"wav": (fkind, data), "mp4": (fkind, data)})
            for cname, argv in (
                ("inspect", ("data", "inspect", f"{kind}:ds")),
                ("features", ("data", "features", "ding2025", "--dataset", f"{kind}:ds")),
                ("train", ("train", "ding2025", "--epochs", "1", "--dataset", f"{kind}:ds")),
            ):
                cases.append(
                    Case("hangs", f"{kind}_{sname}:{cname}", argv, files=files, expect="either")
                )
    for reader in ("results.csv", "search.json"):
        for sname, fkind, data in (("fifo", "fifo", None), ("zero", "chardev", "1,5")):
            files = (("run", "run", None), (f"run/{reader}", fkind, data))
            cases.append(
                Case(
                    "hangs",
                    f"report_{reader}:{sname}",
                    ("report", "run"),
                    files=files,
                    outputs=("run/report.html",),
                )
            )
    for p in presets:  # example inputs of a huge batch
        for b in ("1000000", "1000000000", "2147483648"):
            cases.append(
                Case("hangs", f"batch:{p}:{b}", ("profile", p, "--batch-size", b), expect="either")
            )
    for b in ("100000", "1000000000"):
        cases.append(
            Case(
                "hangs",
                f"bench_batch:{b}",
                ("bench", SMALL, "--batch", b, "--runs", "1"),
                expect="either",
            )
        )
        cases.append(
            Case(
                "hangs",
                f"export_batch:{b}",
                ("export", SMALL, "--onnx", "o.onnx", "--batch", b),
                expect="either",
                outputs=("o.onnx",),
            )
        )
    big = (
        "kumar:fbp_dim=8192,d_model=256,tucker_rank_audio=128,tucker_rank_visual=128",
        "lu:width_mult=64",
        "yang:frames=90,image_size_px=224",
        "ding:image_size_px=4096",
    )
    for m in big:
        for cmd in (("profile", m), ("export", m, "--onnx", "o.onnx"), ("bench", m, "--runs", "1")):
            cases.append(
                Case("hangs", f"big:{cmd[0]}:{m}", cmd, expect="either", outputs=("o.onnx",))
            )
    return cases


def _clips(kind: str, *, bad: dict | None = None, good: int = 2) -> tuple:
    """A RAVDESS or CREMA-D directory ``ds`` with ``good`` clips and one bad clip."""
    files: list = [("ds", "dir", None)]
    names = []
    for i in range(good + (1 if bad else 0)):
        if kind == "ravdess":
            stem = f"01-01-0{3 + i}-01-01-01-01"
            names.append((f"ds/Actor_01/{stem}.mp4", f"ds/Actor_01/03-{stem[3:]}.wav"))
        else:
            # a valid CREMA-D code (actor 1001.., sentence, emotion, intensity XX)
            stem = f"{1001 + i // 3}_DFA_{('ANG', 'HAP', 'SAD')[i % 3]}_XX"
            names.append((f"ds/VideoFlash/{stem}.mp4", f"ds/AudioWAV/{stem}.wav"))
    for i, (video, audio) in enumerate(names):
        if bad and i == len(names) - 1:
            files.append((audio, *bad["wav"]))
            files.append((video, *bad.get("mp4", ("copy", "good.mp4"))))
        else:
            files += [(video, "copy", "good.mp4"), (audio, "copy", "good.wav")]
    return tuple(files)


def _numbers(rng: random.Random, families_fields: dict[str, list[str]]) -> list[Case]:
    options = {
        "train": (
            ("train", SMALL, "--dataset", TINY, "--epochs", "1"),
            (
                "--epochs",
                "--batch-size",
                "--lr",
                "--weight-decay",
                "--seed",
                "--patience",
                "--fold",
                "--samples-per-clip",
            ),
        ),
        "profile": (("profile", SMALL), ("--batch-size",)),
        "bench": (
            ("bench", SMALL, "--runs", "2", "--warmup", "0"),
            ("--runs", "--warmup", "--threads", "--batch"),
        ),
        "export": (("export", SMALL, "--onnx", "o.onnx"), ("--opset", "--batch")),
        "prune": (
            (
                "prune",
                "{fx}/small.pt",
                "--device",
                "rpi4",
                "--budget",
                "1e9flops",
                "--dataset",
                "none",
                "--no-bench",
                "--finetune-epochs",
                "0",
            ),
            ("--finetune-epochs", "--steps", "--round-to", "--lr", "--runs", "--seed"),
        ),
        "search": (
            (
                "search",
                "--device",
                "rpi4",
                "--budget",
                "1e8flops",
                "--families",
                "ding",
                "--trials",
                "1",
                "--epochs",
                "1",
                "--dataset",
                TINY,
                "--no-references",
                "--workers",
                "1",
                "--timeout",
                "20s",
                "--out",
                "s",
            ),
            (
                "--trials",
                "--timeout",
                "--population",
                "--max-frames",
                "--max-image-size",
                "--threads",
                "--workers",
                "--heartbeat",
                "--epochs",
                "--seed",
            ),
        ),
        "calibrate": (
            # --time 20s: a valid value calibrates for the shortest budget, not 5 minutes
            ("calibrate", "--out", "c.toml", "--networks", "0", "--time", "20s"),
            ("--threads", "--networks"),
        ),
    }
    floats = {"--lr", "--weight-decay", "--timeout"}
    cases = []
    for cname, (base, opts) in options.items():
        for opt in opts:
            for v in NASTY_FLOATS if opt in floats else NASTY_INTS:
                if opt == "--timeout":
                    v = v + "m" if v and v[-1].isdigit() else v
                # the last occurrence of an option counts: the nasty one comes last
                cases.append(
                    Case(
                        "numbers",
                        f"{cname}{opt}={v[:20]}",
                        (*base, opt, v),
                        expect="either",
                        outputs=("o.onnx", "c.toml"),
                    )
                )
    for b in NASTY_BUDGETS:
        cases.append(
            Case(
                "numbers",
                f"prune_budget={b[:16]}..{b[-8:]}",
                (
                    "prune",
                    "{fx}/small.pt",
                    "--device",
                    "rpi4",
                    "--budget",
                    b,
                    "--dataset",
                    "none",
                    "--no-bench",
                ),
            )
        )
        cases.append(
            Case(
                "numbers",
                f"search_budget={b[:16]}..{b[-8:]}",
                ("search", "--device", "rpi4", "--budget", b, "--trials", "1", "--out", "s"),
            )
        )
    cases.append(
        Case(
            "numbers",
            "conflicting_budgets",
            (
                "search",
                "--device",
                "rpi4",
                "--budget",
                "20ms",
                "--budget",
                "10ms",
                "--trials",
                "0",
                "--out",
                "s",
            ),
            expect="either",
        )
    )
    values = ("-1", "0", "nan", "inf", "1e308", "abc", "99999999999", "")
    for family, fields in families_fields.items():
        for fld in fields:
            for v in values:
                cases.append(
                    Case(
                        "numbers",
                        f"override:{family}:{fld}={v}",
                        ("profile", f"{family}:{fld}={v}"),
                        expect="either",
                    )
                )
        for spec in (
            f"{family}:frames=2,frames=3",
            f"{family}:nosuch=1",
            f"{family}:=",
            f"{family}:,,",
            f"{family}:frames",
            f"{family}:" + "x=1," * 200,
        ):
            cases.append(
                Case(
                    "numbers",
                    f"override:{family}:{spec[len(family) + 1 :][:20]}",
                    ("profile", spec),
                )
            )
    return cases


def _paths() -> list[Case]:
    readers = {
        "profile": lambda p: ("profile", p),
        "export": lambda p: ("export", p, "--onnx", "o.onnx"),
        "train": lambda p: ("train", p, "--epochs", "1", "--dataset", TINY),
        "prune": lambda p: ("prune", p, "--device", "rpi4", "--budget", "1e6flops"),
        "bench": lambda p: ("bench", p),
        "ravdess": lambda p: ("data", "inspect", f"ravdess:{p}"),
        "cremad": lambda p: ("data", "features", SMALL, "--dataset", f"cremad:{p}"),
        "report": lambda p: ("report", p),
        "device": lambda p: ("profile", SMALL, "--device", p),
        "calibrate_from": lambda p: ("calibrate", "--from-measurements", p, "--device", "rpi4"),
        "roofline": lambda p: ("roofline", p, "--device", "rpi4", "--out", "r.html"),
    }
    cases = []
    for cname, make in readers.items():
        for pname, files, path in BAD_INPUTS:
            if cname in ("ravdess", "cremad", "report") and pname == "directory":
                continue  # an (empty) directory is the right kind there: see datasets/results
            cases.append(Case("paths", f"{cname}:{pname}", make(path), files=files))
    return cases


def _checkpoints(rng: random.Random, fixtures: Path) -> list[Case]:
    good = (fixtures / "small.pt").read_bytes()
    size = len(good)
    variants: list[tuple[str, bytes | str]] = []
    for frac in sorted({rng.random() for _ in range(16)} | {0.0, 0.5, 0.999}):
        variants.append((f"truncated_{frac:.3f}", good[: int(size * frac)]))
    for _ in range(60):
        pos, bit = rng.randrange(size), rng.randrange(8)
        raw = bytearray(good)
        raw[pos] ^= 1 << bit
        variants.append((f"bitflip_{pos}_{bit}", bytes(raw)))
    for _ in range(10):
        pos = rng.randrange(size)
        raw = bytearray(good)
        raw[pos : pos + 4096] = bytes(len(raw[pos : pos + 4096]))
        variants.append((f"zeroed_{pos}", bytes(raw)))
    variants += [
        ("empty", b""),
        ("random_bytes", rng.randbytes(5000)),
        ("plain_zip", _plain_zip()),
        ("toml_text", b'key = "x"\n'),
        ("json_text", b'{"format": "explorer-checkpoint"}'),
    ]
    index = json.loads((fixtures / "ckpt" / "index.json").read_text(encoding="utf-8"))
    variants += [(f"edited_{n}", f"ckpt/{n}.pt") for n in index]
    commands = {
        "profile": lambda: ("profile", "m.pt"),
        "export": lambda: ("export", "m.pt", "--onnx", "o.onnx"),
    }
    cases = []
    for vname, data in variants:
        file = ("m.pt", "copy", data) if isinstance(data, str) else ("m.pt", "bytes", data)
        for cname, make in commands.items():
            expect = "either" if vname.startswith(("bitflip", "zeroed")) else "refuse"
            cases.append(
                Case(
                    "checkpoints",
                    f"{cname}:{vname}",
                    make(),
                    files=(file,),
                    expect=expect,
                    outputs=("o.onnx",),
                )
            )
    for vname in ("edited_pickled_code", "edited_classes_many", "edited_shapes_huge"):
        file = ("m.pt", "copy", f"ckpt/{vname[7:]}.pt")
        for cmd in (
            ("train", "m.pt", "--epochs", "1", "--dataset", TINY),
            ("prune", "m.pt", "--device", "rpi4", "--budget", "1e6flops", "--dataset", "none"),
        ):
            cases.append(Case("checkpoints", f"{cmd[0]}:{vname}", cmd, files=(file,)))
    return cases


def _plain_zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", b"not a pickle")
    return buf.getvalue()


def _device_tomls() -> list[Case]:
    base = {
        "key": '"board"',
        "name": '"Board"',
        "kind": '"cpu"',
        "memory_gb": "4",
        "bandwidth_gb_s": "12.8",
    }
    peak = "\n[peak_gflops]\nfp32 = 30.0\n"

    def doc(fields: dict, tail: str = peak) -> str:
        return "".join(f"{k} = {v}\n" for k, v in fields.items()) + tail

    variants = {"valid": doc(base)}
    for k in base:
        variants[f"missing_{k}"] = doc({x: v for x, v in base.items() if x != k})
    for k in ("memory_gb", "bandwidth_gb_s"):
        for v in ("0", "-1", "nan", "inf", "-inf", "1e-320", "1e308", '"12"', "[]", "true", "{}"):
            variants[f"{k}={v}"] = doc({**base, k: v})
    for v in ("0", "-1", "nan", "inf", "1e-320", '"x"', "[1]"):
        variants[f"peak={v}"] = doc(base, f"\n[peak_gflops]\nfp32 = {v}\n")
    variants |= {
        "kind_weird": doc({**base, "kind": '"quantum"'}),
        "key_spaces": doc({**base, "key": '"my board!"'}),
        "key_empty": doc({**base, "key": '""'}),
        "aliases_str": doc({**base, "aliases": '"x"'}),
        "aliases_dup": doc({**base, "aliases": '["rpi4"]'}),
        "unknown_key": doc({**base, "bogus": "1"}),
        "duplicate_key": doc(base) + 'key = "again"\n',
        "invalid_toml": "key = \n[[[",
        "empty": "",
        "binary": "\x00\x01\x02\xff",
        "deep_arrays": "x = " + "[" * 5000 + "]" * 5000 + "\n",
        "deep_tables": "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "huge_string": doc({**base, "name": '"' + "x" * 2_000_000 + '"'}),
        "no_peak": doc(base, ""),
        "peak_table_str": doc(base, '\npeak_gflops = "fast"\n'),
        "calibration_bad": doc(base, peak + "\n[calibration]\nfraction = -3\n"),
        "targets_bad": doc(base, peak + "\n[targets.x]\nthreads = -1\n"),
    }
    cases = []
    for vname, text in variants.items():
        # legal by design: the key defaults to the file's stem, memory is optional, a single
        # alias may be written as a string; a file named by path stands alone, so its alias
        # may repeat a registry name (only files in the registry's folders must be unique)
        legal = ("valid", "unknown_key", "no_peak", "huge_string", "missing_key")
        legal += ("missing_memory_gb", "aliases_str")
        expect = "either" if vname in legal else "refuse"
        by_path = "either" if vname == "aliases_dup" else expect
        files = (("board.toml", "text", text),)
        cases.append(
            Case(
                "device_toml",
                f"show:{vname}",
                ("devices", "show", "board.toml"),
                files=files,
                expect=by_path,
            )
        )
        cases.append(
            Case(
                "device_toml",
                f"profile:{vname}",
                ("profile", SMALL, "--device", "board.toml", "--format", "json"),
                files=files,
                expect=by_path,
            )
        )
        env = (("EXPLORER_DEVICES", "devs"),)
        dfiles = (("devs", "dir", None), ("devs/board.toml", "text", text))
        cases.append(
            Case(
                "device_toml",
                f"registry:{vname}",
                ("profile", SMALL, "--device", "rpi4"),
                files=dfiles,
                env=env,
                expect=expect,
            )
        )
    return cases


def _datasets(rng: random.Random) -> list[Case]:
    specs = []
    for key in ("actors", "clips_per_class", "clip_seconds", "seed"):
        for v in ("0", "-1", "1e9", "nan", "inf", "abc", "1.5", "", "9" * 400):
            specs.append(f"synthetic:{key}={v}")
    specs += [
        "synthetic:nosuch=1",
        "synthetic:actors=2,actors=3",
        "synthetic:actors",
        "synthetic:,",
        "synthetic:" + "a=1," * 300,
        "nosuch:x",
        "ravdess:",
        "cremad:",
        ":",
        "SYNTHETIC",
    ]
    cases = []
    for spec in specs:
        cases.append(
            Case("datasets", f"inspect:{spec[:40]}", ("data", "inspect", spec), expect="either")
        )
        cases.append(
            Case(
                "datasets",
                f"features:{spec[:40]}",
                ("data", "features", SMALL, "--dataset", spec),
                expect="either",
            )
        )
    bad_media = {  # name: (the file the bad bytes replace, kind, data)
        "empty_wav": ("wav", "bytes", b""),
        "garbage_wav": ("wav", "bytes", rng.randbytes(3000)),
        "truncated_wav": ("wav", "copy_head", ("good.wav", 2000)),
        "header_only_wav": ("wav", "copy_head", ("good.wav", 44)),
        "nan_wav": ("wav", "float_wav", "nan"),
        "inf_wav": ("wav", "float_wav", "inf"),
        "huge_wav": ("wav", "float_wav", "3e38"),
        "empty_mp4": ("mp4", "bytes", b""),
        "garbage_mp4": ("mp4", "bytes", rng.randbytes(3000)),
        "wav_is_mp4": ("wav", "copy", "good.mp4"),  # an MP4 saved under the clip's .wav name
    }
    for kind in ("ravdess", "cremad"):
        for bname, (slot, fkind, data) in bad_media.items():
            bad = {slot: (fkind, data)}
            if slot == "mp4":
                bad["wav"] = ("copy", "good.wav")
            for good in (0, 2):
                files = _clips(kind, bad=bad, good=good)
                # 3e38 is a finite sample: computed in float64 its features are finite too
                expect = "either" if good or bname == "huge_wav" else "refuse"
                for cname, argv in (
                    ("inspect", ("data", "inspect", f"{kind}:ds")),
                    ("features", ("data", "features", "ding2025", "--dataset", f"{kind}:ds")),
                ):
                    cases.append(
                        Case(
                            "datasets",
                            f"{kind}:{bname}:good={good}:{cname}",
                            argv,
                            files=files,
                            expect=expect,
                        )
                    )
        files = _clips(kind, bad={"wav": ("float_wav", "nan")}, good=2)
        cases.append(
            Case(
                "datasets",
                f"{kind}:nan_wav:train",
                ("train", "ding2025", "--epochs", "1", "--dataset", f"{kind}:ds"),
                files=files,
                expect="either",
            )
        )
        cases.append(
            Case(
                "datasets",
                f"{kind}:empty_dir",
                ("data", "inspect", f"{kind}:ds"),
                files=(("ds", "dir", None),),
            )
        )
    return cases


RESULTS_HEADER = (
    "number,state,family,feasible,pareto,macro_f1,accuracy,params,flops,predicted_ms_rpi4,"
    "objective,cost\n"
)
RESULTS_ROW = (
    "{n},COMPLETE,ding,true,{p},0.{n}5,0.{n}4,{params},{flops},{ms},predicted_ms_rpi4,{ms}\n"
)


def _run_files(results: str | None = None, search: str | None = None) -> tuple:
    files: list = [("run", "run", None)]
    if results is not None:
        files.append(("run/results.csv", "text", results))
    if search is not None:
        files.append(("run/search.json", "text", search))
    return tuple(files)


def _results(rng: random.Random) -> list[Case]:
    good = RESULTS_HEADER + "".join(
        RESULTS_ROW.format(
            n=n,
            p="true" if n < 2 else "false",
            params=1000 * (n + 1),
            flops=10**6 * (n + 1),
            ms=0.5 * (n + 1),
        )
        for n in range(4)
    )
    rows = good.splitlines(keepends=True)
    csvs = {
        "empty": "",
        "header_only": RESULTS_HEADER,
        "truncated_row": good[: len(good) - 25],
        "no_number": good.replace("number,", "num,", 1),
        "binary": "\x00\xff\xfe" * 100,
        "bom": "\ufeff" + good,
        "duplicate_columns": good.replace("accuracy", "macro_f1", 1),
        "huge_field": rows[0] + rows[1].replace("ding", "x" * 1_000_000),
        "only_commas": ",,,,\n,,,\n",
        "ragged": rows[0] + "1,COMPLETE\n" + "".join(rows[2:]),
        "negative_number": good.replace("\n1,", "\n-1,", 1),
        "duplicate_numbers": rows[0] + rows[1] + rows[1],
        "quotes_unclosed": rows[0] + '"1,COMPLETE,ding\n',
    }
    for col in (
        "number",
        "macro_f1",
        "accuracy",
        "params",
        "flops",
        "predicted_ms_rpi4",
        "cost",
        "feasible",
        "pareto",
    ):
        idx = RESULTS_HEADER.strip().split(",").index(col)
        for v in ("abc", "nan", "inf", "-1", "1e999", ""):
            out = [rows[0]]
            for r in rows[1:]:
                cells = r.rstrip("\n").split(",")
                cells[idx] = v
                out.append(",".join(cells) + "\n")
            csvs[f"{col}={v}"] = "".join(out)
    searches = {
        "invalid": "{not json",
        "list": "[1, 2]",
        "string": '"x"',
        "deep": "[" * 100_000 + "]" * 100_000,
        "bandwidth_0": json.dumps(
            {"device": {"key": "rpi4", "bandwidth_gb_s": 0, "peak_gflops_fp32": 30}}
        ),
        "bandwidth_neg": json.dumps(
            {"device": {"key": "rpi4", "bandwidth_gb_s": -1, "peak_gflops_fp32": 30}}
        ),
        "bandwidth_str": json.dumps({"device": {"key": "rpi4", "bandwidth_gb_s": "x"}}),
        "devices_str": json.dumps({"devices": "rpi4"}),
        "objectives_bad": json.dumps({"objectives": [{"name": "nosuch", "direction": "sideways"}]}),
        "objectives_str": json.dumps({"objectives": "x"}),
        "references_bad": json.dumps({"references": [{"name": 1, "objectives": "x"}]}),
        "references_str": json.dumps({"references": "x"}),
        "environment_list": json.dumps({"environment": [1, 2]}),
        "nan_values": '{"device": {"key": "rpi4", "bandwidth_gb_s": NaN, '
        '"peak_gflops_fp32": Infinity}}',
    }
    cases = []
    for name, text in csvs.items():
        for fmt in ("table", "json"):
            cases.append(
                Case(
                    "results",
                    f"csv:{name}:{fmt}",
                    ("report", "run", "--format", fmt),
                    files=_run_files(results=text),
                    expect="either",
                    outputs=("run/report.html",),
                )
            )
    for name, text in searches.items():
        for fmt in ("table", "json"):
            cases.append(
                Case(
                    "results",
                    f"json:{name}:{fmt}",
                    ("report", "run", "--format", fmt),
                    files=_run_files(results=good, search=text),
                    expect="either",
                    outputs=("run/report.html",),
                )
            )
    return cases


def generate(seed: int, fixtures: Path) -> list[Case]:
    """Every case, in a fixed order for a given seed."""
    import search_spaces as ss

    rng = random.Random(seed)
    presets = list(ss.presets())
    families = ss.list_families()
    fields = {
        f: [n for n in ss.get_family(f).field_names() if n != "num_classes"] for f in families
    }
    cases = (
        _crashes(rng, presets, families)
        + _destroyed()
        + _hangs(fields, presets)
        + _numbers(rng, fields)
        + _paths()
        + _checkpoints(rng, fixtures)
        + _device_tomls()
        + _datasets(rng)
        + _results(rng)
    )
    names = Counter((c.group, c.name) for c in cases)
    dupes = [k for k, n in names.items() if n > 1]
    assert not dupes, dupes[:5]
    return cases


def stratified(cases: list[Case], limit: int, seed: int) -> list[Case]:
    """``limit`` cases, spread over the groups in proportion (at least a few of each)."""
    if limit >= len(cases):
        return cases
    by_group: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_group[c.group].append(c)
    rng = random.Random(seed)
    picked = []
    for items in by_group.values():
        k = max(min(5, len(items)), round(limit * len(items) / len(cases)))
        picked += rng.sample(items, min(k, len(items)))
    order = {id(c): i for i, c in enumerate(cases)}
    return sorted(picked, key=lambda c: order[id(c)])


# --- running --------------------------------------------------------------------------------


def _materialise(case: Case, d: Path, fixtures: Path) -> None:
    for rel, kind, data in case.files:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if kind == "bytes":
            p.write_bytes(data)  # type: ignore[arg-type]
        elif kind == "text":
            p.write_text(str(data), encoding="utf-8")
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "dir":
            p.mkdir(exist_ok=True)
        elif kind == "chardev":
            major, minor = (int(x) for x in str(data).split(","))
            os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        elif kind == "symlink":
            p.symlink_to(str(data))
        elif kind == "copy":
            shutil.copyfile(fixtures / str(data), p)
        elif kind == "copy_head":
            name, n = data  # type: ignore[misc]
            p.write_bytes((fixtures / name).read_bytes()[:n])
        elif kind == "float_wav":
            import numpy as np
            import soundfile as sf

            y, sr = sf.read(str(fixtures / "float.wav"), dtype="float32")
            y[len(y) // 3] = float(data)  # type: ignore[arg-type]
            sf.write(str(p), y, sr, subtype="FLOAT")
            del np
        elif kind == "run":
            p.mkdir(exist_ok=True)
            rows = [r for r in case.files if r[0].startswith(f"{rel}/")]
            if not any(r[0].endswith("results.csv") for r in rows):
                (p / "results.csv").write_text(
                    RESULTS_HEADER + RESULTS_ROW.format(n=1, p="true", params=10, flops=10, ms=1),
                    encoding="utf-8",
                )
        else:
            raise ValueError(kind)


def _snapshot(d: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(d, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(d))
            if rel.startswith(("cache", ".cache", ".config", "_io")):
                continue
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 50e6 else st.st_size
                out[rel] = ("file", h)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            else:
                out[rel] = (stat.S_IFMT(st.st_mode),)
    return out


def _child(case: Case, d: Path, mem_bytes: int, mode: str) -> None:
    """In the forked child: become the CLI on this case."""
    os.setsid()
    os.chdir(d)
    env = {"HOME": str(d), "EXPLORER_CACHE": str(d / "cache"), **dict(case.env)}
    os.environ.update(env)
    io = d / "_io"
    fd_out = os.open(io / "stdout", os.O_WRONLY | os.O_CREAT, 0o600)
    fd_err = os.open(io / "stderr", os.O_WRONLY | os.O_CREAT, 0o600)
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)
    fd_in = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd_in, 0)
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    argv = [a.replace("{fx}", os.environ["HOSTILE_FIXTURES"]) for a in case.argv]
    if mode == "subprocess":
        os.execv(sys.executable, [sys.executable, "-m", "explorer.cli", *argv])
    code = 1
    try:
        from explorer.cli import main

        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


@dataclass
class Outcome:
    group: str
    name: str
    expect: str
    code: int | None
    seconds: float
    verdict: str  # pass, traceback, unexpected, wrong_exit, not_one_line, hang
    destroyed: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    code_ran: bool = False
    stderr_tail: str = ""


def _judge(case: Case, code: int | None, stderr: str, stdout: str = "") -> str:
    if code is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    lines = [x for x in stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:")]
    if any(x.startswith("error: unexpected ") for x in errors):
        return "unexpected"
    if code == 0:
        return "pass" if case.expect == "either" else "wrong_exit"
    if code not in (1, 2):
        return "wrong_exit"
    if code == 2 and not lines and "Usage:" in stdout:  # a command group alone: its help
        return "pass"
    if len(errors) != 1 or not lines or not lines[-1].startswith("error:"):
        return "not_one_line"
    return "pass"


def _finish(case: Case, d: Path, before: dict, code: int | None, seconds: float) -> Outcome:
    io = d / "_io"
    stderr = (io / "stderr").read_text(encoding="utf-8", errors="replace")
    stdout = (io / "stdout").read_text(encoding="utf-8", errors="replace")[:100_000]
    after = _snapshot(d)
    destroyed = []
    for rel, sig in before.items():
        now = after.get(rel)
        if rel in case.outputs and sig[0] == "file" and now is not None and now[0] == "file":
            continue  # a regular output file may be replaced
        if now != sig:
            destroyed.append(f"{rel}: {sig[0]} -> {now[0] if now else 'gone'}")
    new = [r for r in after if r not in before]
    left = [r for r in new if ".tmp" in Path(r).name or r.endswith(".onnx.data")]
    if code not in (0, None):
        left += [r for r in new if r in case.outputs and r not in left]
    return Outcome(
        group=case.group,
        name=case.name,
        expect=case.expect,
        code=code,
        seconds=round(seconds, 2),
        verdict=_judge(case, code, stderr, stdout),
        destroyed=destroyed,
        left_behind=left,
        code_ran=(d / "PWNED").exists(),
        stderr_tail=" | ".join(stderr.strip().splitlines()[-2:])[:300],
    )


def run_cases(
    cases: list[Case],
    *,
    fixtures: Path,
    jobs: int,
    timeout: float,
    memory_gb: float,
    mode: str,
    progress: bool,
) -> list[Outcome]:
    os.environ["HOSTILE_FIXTURES"] = str(fixtures)
    if mode == "fork":  # import once; every child starts from here
        import explorer.cli
        import explorer.models

        del explorer
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    size = int(status.split("VmSize:")[1].split()[0]) * 1024
    mem = size + int(memory_gb * 2**30)
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, Case, Path, dict, float]] = {}
    results: list[Outcome | None] = [None] * len(cases)
    done = 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, case = pending.pop(0)
                d = work / f"c{i}"
                d.mkdir()
                (d / "_io").mkdir()
                _materialise(case, d, fixtures)
                before = _snapshot(d)
                pid = os.fork()
                if pid == 0:
                    _child(case, d, mem, mode)
                running[pid] = (i, case, d, before, time.monotonic())
            pid, status = os.waitpid(-1, os.WNOHANG)
            now = time.monotonic()
            finished = []
            if pid:
                finished.append((pid, os.waitstatus_to_exitcode(status)))
            for p, (_, c, _, _, t0) in running.items():
                if p != pid and now - t0 > max(timeout, c.timeout_s):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                    finished.append((p, None))
            for p, code in finished:
                i, case, d, before, t0 = running.pop(p)
                results[i] = _finish(case, d, before, code, now - t0)
                shutil.rmtree(d, ignore_errors=True)
                done += 1
                if progress and done % 25 == 0:
                    print(f"  {done}/{len(cases)} cases", file=sys.stderr, flush=True)
            if not pid:
                time.sleep(0.02)
    finally:
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    return [r for r in results if r is not None]


def summarise(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for g in GROUPS:
        rows = [o for o in outcomes if o.group == g]
        if not rows:
            continue
        v = Counter(o.verdict for o in rows)
        table[g] = {
            "cases": len(rows),
            "passes": v["pass"],
            "tracebacks": v["traceback"],
            "unexpected": v["unexpected"],
            "wrong_exit": v["wrong_exit"],
            "not_one_line": v["not_one_line"],
            "hangs": v["hang"],
            "destroyed": sum(1 for o in rows if o.destroyed),
            "left_behind": sum(1 for o in rows if o.left_behind),
            "code_ran": sum(1 for o in rows if o.code_ran),
        }
    return table


def _print(table: dict[str, dict[str, int]]) -> None:
    cols = [
        "cases",
        "passes",
        "tracebacks",
        "unexpected",
        "wrong_exit",
        "not_one_line",
        "hangs",
        "destroyed",
        "left_behind",
        "code_ran",
    ]
    print(f"{'group':<12}" + "".join(f"{c:>13}" for c in cols))
    total = Counter()
    for g, row in table.items():
        total.update(row)
        print(f"{g:<12}" + "".join(f"{row[c]:>13}" for c in cols))
    print(f"{'all':<12}" + "".join(f"{total[c]:>13}" for c in cols))


def combine(paths: list[Path], out: Path) -> None:
    """One table from runs of different groups (each group must come from one run)."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    table: dict[str, dict[str, int]] = {}
    for run in runs:
        for g, row in run["table"].items():
            if g in table:
                raise SystemExit(f"group {g} is in more than one of {[str(p) for p in paths]}")
            table[g] = row
    table = {g: table[g] for g in GROUPS if g in table}
    _print(table)
    doc = {
        "combined": [
            {k: r[k] for k in ("groups", "jobs", "timeout_s", "memory_gb", "seconds") if k in r}
            for r in runs
        ],
        "seed": runs[0]["seed"],
        "mode": runs[0]["mode"],
        "generated": runs[0]["generated"],
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "table": table,
        "failures": [f for r in runs for f in r["failures"]],
        "slowest": sorted(
            (x for r in runs for x in r.get("slowest", [])), key=lambda x: -x["seconds"]
        )[:15],
    }
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="run a stratified subset of N cases")
    ap.add_argument("--group", action="append", choices=GROUPS, help="only these groups")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="address space per case")
    ap.add_argument("--mode", choices=("fork", "subprocess"), default="fork")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--name", action="append", help="only cases whose name contains this (to re-run some)"
    )
    ap.add_argument("--list", action="store_true", help="print the case counts and stop")
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "hostile_inputs.json",
        help="JSON file to write (one per group when groups are run one at a time)",
    )
    ap.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="print and write (--out) one table from the JSON files of runs of other groups",
    )
    args = ap.parse_args()
    if args.combine:
        combine(args.combine, args.out)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    fixtures = Path(tempfile.mkdtemp(prefix="hostile-fixtures-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_hostile_fixtures.py")), str(fixtures)],
        check=True,
        env=env,
    )
    cases = generate(args.seed, fixtures)
    print(
        f"{len(cases)} cases generated: "
        + ", ".join(f"{g} {n}" for g, n in Counter(c.group for c in cases).items())
    )
    n_generated = len(cases)
    if args.group:
        cases = [c for c in cases if c.group in args.group]
    if args.name:
        cases = [c for c in cases if any(n in c.name for n in args.name)]
    if args.list:
        print(f"{len(cases)} selected")
        return
    if args.limit:
        cases = stratified(cases, args.limit, args.seed)
    t0 = time.perf_counter()
    outcomes = run_cases(
        cases,
        fixtures=fixtures,
        jobs=args.jobs,
        timeout=args.timeout,
        memory_gb=args.memory_gb,
        mode=args.mode,
        progress=True,
    )
    seconds = time.perf_counter() - t0
    shutil.rmtree(fixtures, ignore_errors=True)
    table = summarise(outcomes)
    print(
        f"\n{len(outcomes)} cases in {seconds:.0f} s ({args.jobs} at a time, mode {args.mode}, "
        f"cap {args.timeout:g} s and +{args.memory_gb:g} GB each)\n"
    )
    _print(table)
    failures = [
        o for o in outcomes if o.verdict != "pass" or o.destroyed or o.left_behind or o.code_ran
    ]
    if failures:
        print("\nfirst failures:")
        for o in failures[:40]:
            extra = f" destroyed={o.destroyed}" if o.destroyed else ""
            extra += f" left={o.left_behind}" if o.left_behind else ""
            print(
                f"  [{o.group}] {o.name}: {o.verdict} (exit {o.code}){extra}: {o.stderr_tail[:160]}"
            )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "seed": args.seed,
                "limit": args.limit,
                "groups": args.group or list(GROUPS),
                "names": args.name or [],
                "mode": args.mode,
                "jobs": args.jobs,
                "timeout_s": args.timeout,
                "memory_gb": args.memory_gb,
                "seconds": round(seconds, 1),
                "generated": n_generated,
                "table": table,
                "failures": [asdict(o) for o in failures],
                # the longest cases, to tell slow-by-design or by-load from stuck
                "slowest": [
                    {"group": o.group, "name": o.name, "seconds": o.seconds, "verdict": o.verdict}
                    for o in sorted(outcomes, key=lambda o: -o.seconds)[:15]
                ],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
