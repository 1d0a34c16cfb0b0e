"""Atomic writes: no half-written or destroyed files, no shared or leftover temporary files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from explorer.errors import ExplorerError, UsageError
from explorer.files import (
    atomic_output,
    atomic_write,
    check_output_path,
    require_regular_file,
    write_text_atomic,
)
from explorer.search._results import write_csv, write_json


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    write_text_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
    tmp_path: Path, exc_type: type[BaseException]
) -> None:
    target = tmp_path / "a.pt"
    target.write_bytes(b"previous checkpoint")
    with pytest.raises(exc_type), atomic_write(target) as fh:
        fh.write(b"half of the new one")
        raise exc_type("stop")
    assert target.read_bytes() == b"previous checkpoint"
    assert _leftovers(tmp_path) == []


def test_sigterm_during_a_write_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old\n", encoding="utf-8")
    code = (
        "import sys, time\n"
        "from explorer.files import atomic_write, exit_on_sigterm\n"
        "exit_on_sigterm()\n"
        f"with atomic_write({str(target)!r}) as fh:\n"
        "    fh.write(b'partial'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    assert len(_leftovers(tmp_path)) == 1  # the write is under way in a temporary file
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert target.read_text(encoding="utf-8") == "old\n"
    assert _leftovers(tmp_path) == []


def test_temporary_files_of_killed_processes_are_swept(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead = int(proc.stdout)
    from explorer.files import _HOST

    stale = tmp_path / f".a.pt.{_HOST}.{dead}.0123abcd.tmp"
    stale.write_bytes(b"x" * 100)
    live = tmp_path / f".a.pt.{_HOST}.{os.getpid()}.89abcdef.tmp"  # this process: kept
    live.write_bytes(b"y")
    other_host = tmp_path / f".a.pt.otherhost.{dead}.0123abcd.tmp"  # not ours to judge
    other_host.write_bytes(b"z")
    write_text_atomic(tmp_path / "b.txt", "b")
    assert not stale.exists()
    assert live.exists() and other_host.exists()


def test_special_files_are_refused_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "out.pt"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="FIFO") as info:
        write_text_atomic(fifo, "x", what="--out")
    assert "\n" not in str(info.value) and "--out" in str(info.value)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the FIFO
    with pytest.raises(UsageError, match="character device"):
        check_output_path("/dev/null")
    with pytest.raises(UsageError, match="directory"):
        write_text_atomic(tmp_path, "x")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        write_text_atomic(tmp_path / "out.pt" / "x.html", "x")
    assert _leftovers(tmp_path) == []


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.html"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new"


def test_reads_accept_regular_files_only(tmp_path: Path) -> None:
    fifo = tmp_path / "clip.wav"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="FIFO"):
        require_regular_file(fifo, what="audio")
    regular = tmp_path / "a.toml"
    regular.write_text("", encoding="utf-8")
    assert require_regular_file(regular) == regular


def test_concurrent_writers_of_one_target_never_collide(tmp_path: Path) -> None:
    """Workers rewrite results.csv and search.json at the same time (a fixed temporary name
    made one of four SQLite workers fail with 'No such file or directory')."""
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(25):
                write_json(tmp_path / "search.json", {"worker": k, "i": i, "pad": "x" * 5000})
                write_csv(tmp_path / "results.csv", [{"number": i, "w": k}], ["number", "w"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = json.loads((tmp_path / "search.json").read_text(encoding="utf-8"))
    assert data["i"] == 24 and len(data["pad"]) == 5000  # one writer's complete file
    assert (tmp_path / "results.csv").read_text(encoding="utf-8").startswith("number,w\n")
    assert _leftovers(tmp_path) == []


def test_concurrent_processes_write_one_target(tmp_path: Path) -> None:
    target = tmp_path / "search.json"
    code = (
        "import sys\n"
        "from explorer.files import write_text_atomic\n"
        "for i in range(40):\n"
        f"    write_text_atomic({str(target)!r}, sys.argv[1] * 20000)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)]) for k in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    text = target.read_text(encoding="utf-8")
    assert len(text) == 20000 and len(set(text)) == 1
    assert _leftovers(tmp_path) == []


def test_a_failed_staged_output_leaves_nothing_behind(tmp_path: Path) -> None:
    """An exporter that wrote a model and its external weights, then failed."""
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError), atomic_output(target) as staged:
        staged.write_bytes(b"graph")
        (staged.parent / "model.onnx.data").write_bytes(b"w" * 10_000)
        raise RuntimeError("exporter failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_staged_output_moves_the_file_and_its_side_files(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with atomic_output(target) as staged:
        staged.write_bytes(b"graph")
        (staged.parent / "model.onnx.data").write_bytes(b"weights")
    assert target.read_bytes() == b"graph"
    assert (tmp_path / "model.onnx.data").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.data"]
    with pytest.raises(ExplorerError, match="not written"), atomic_output(target):
        pass  # the writer produced nothing: the old file stays
    assert target.read_bytes() == b"graph"


def test_failed_onnx_export_leaves_no_file(tmp_path: Path) -> None:
    import torch

    from explorer.export import export_onnx

    class Noisy(torch.nn.Module):  # exports fine; ONNX Runtime's outputs then differ
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.rand_like(x)

    out = tmp_path / "m.onnx"
    t0 = time.perf_counter()
    with pytest.raises(ExplorerError, match="differ"):
        export_onnx(Noisy(), (torch.ones(2, 3),), out, exporter="torchscript")
    assert time.perf_counter() - t0 < 60
    assert list(tmp_path.iterdir()) == []


def test_a_device_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import device_profiles

    fifo = tmp_path / "board.toml"
    os.mkfifo(fifo)
    with pytest.raises(device_profiles.DeviceError, match="not a regular file"):
        device_profiles.load_file(fifo)


def test_a_kernel_latency_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    from explorer.latency._learned import load_kernel_model

    fifo = tmp_path / "host.kernels.json"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="FIFO"):
        load_kernel_model(fifo)


@pytest.mark.parametrize("name", ["results.csv", "search.json"])
def test_a_run_directory_with_a_fifo_is_refused_without_blocking(tmp_path: Path, name) -> None:
    import reports

    (tmp_path / "results.csv").write_text("number,state\n1,COMPLETE\n", encoding="utf-8")
    (tmp_path / name).unlink(missing_ok=True)
    os.mkfifo(tmp_path / name)
    with pytest.raises(ValueError, match="not a regular file"):
        reports.load_run(tmp_path)
