"""SIGKILL a small search at random moments, resume it, and count what survived.

For 1 and 2 worker processes, a tiny search (synthetic data, ding and lu, one short epoch per
trial) is started, killed with SIGKILL (the search process and the workers it started, as a
power cut or the OOM killer would) at a random moment, and started again with the same
command, which resumes the study. Before each kill the finished trials are read from the
study; after it they are read again: a finished trial must never be lost. When the last run
finishes, the run directory and the feature cache must hold no temporary file.

Usage: python benchmarks/kill_resume.py [--kills 6] [--trials 24] [--seed 0] [--delays 5 20]
Prints a table per kill and writes benchmarks/results/kill_resume.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
DATA = "synthetic:actors=4,clips_per_class=1,clip_seconds=0.5"


def _command(out: Path, *, trials: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "explorer.cli", "search",
        "--device", "orin-nano", "--budget", "1e8flops", "--families", "ding,lu",
        "--trials", str(trials), "--dataset", DATA, "--epochs", "1", "--max-frames", "1",
        "--max-image-size", "32", "--population", "2", "--study", "kills", "--out", str(out),
        "--no-references", "--heartbeat", "1", "--format", "json", "--workers", str(workers),
        "--timeout", "none",
    ]  # fmt: skip


def _finished(db: Path) -> set[int]:
    """Numbers of the COMPLETE trials in the study (empty before it exists)."""
    if not db.exists():
        return set()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for _ in range(20):  # the search may hold a write lock for a moment
        try:
            study = optuna.load_study(study_name="kills", storage=f"sqlite:///{db}")
            states = (optuna.trial.TrialState.COMPLETE,)
            return {t.number for t in study.get_trials(deepcopy=False, states=states)}
        except KeyError:  # the study is not created yet
            return set()
        except Exception:  # sqlite "database is locked": read again
            time.sleep(0.2)
    raise RuntimeError(f"cannot read {db}")


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _temporaries(*dirs: Path) -> list[str]:
    found = []
    for d in dirs:
        if d.exists():
            found += [str(p) for p in d.rglob("*") if p.name.endswith(".tmp")]
    return sorted(found)


def run(kills: int, trials: int, seed: int, delays: tuple[float, float] = (5.0, 20.0)) -> dict:
    rng = random.Random(seed)
    rows = []
    final = {}
    with tempfile.TemporaryDirectory(prefix="kill-resume-") as tmp:
        env = {
            **os.environ,
            "EXPLORER_CACHE": str(Path(tmp) / "cache"),
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
        }
        for workers in (1, 2):
            out = Path(tmp) / f"run-w{workers}"
            db = out / "study.db"
            cmd = _command(out, trials=trials, workers=workers)
            for k in range(kills):
                proc = subprocess.Popen(
                    cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                delay = rng.uniform(*delays)
                time.sleep(delay)
                if proc.poll() is not None:  # finished before the kill: nothing to kill
                    rows.append({"workers": workers, "kill": k + 1, "delay_s": round(delay, 1),
                                 "killed": False, "exit": proc.returncode})  # fmt: skip
                    break
                kids = _children(proc.pid)
                before = _finished(db)
                for pid in [proc.pid, *kids]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait()
                time.sleep(0.5)
                after = _finished(db)
                lost = sorted(before - after)
                rows.append(
                    {
                        "workers": workers,
                        "kill": k + 1,
                        "delay_s": round(delay, 1),
                        "killed": True,
                        "finished_before": len(before),
                        "finished_after": len(after),
                        "lost": lost,
                        "temporaries_after_kill": len(_temporaries(out, Path(tmp) / "cache")),
                    }
                )
                print(
                    f"workers={workers} kill {k + 1}: at {delay:4.1f} s, finished before "
                    f"{len(before)}, after {len(after)}, lost {len(lost)}, temporary files "
                    f"{rows[-1]['temporaries_after_kill']}",
                    flush=True,
                )
            start = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            left = _temporaries(out, Path(tmp) / "cache")
            final[workers] = {
                "exit": done.returncode,
                "seconds": round(time.perf_counter() - start, 1),
                "finished": len(_finished(db)),
                "temporaries_left": left,
                "stderr_tail": done.stderr.strip().splitlines()[-1:] if done.returncode else [],
            }
            print(f"workers={workers} final resume: {final[workers]}", flush=True)
    kills_done = [r for r in rows if r["killed"]]
    return {
        "kills": len(kills_done),
        "lost": sum(len(r["lost"]) for r in kills_done),
        "temporaries_left": sum(len(f["temporaries_left"]) for f in final.values()),
        "rows": rows,
        "final": final,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=6, help="kills per worker count")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--delays",
        type=float,
        nargs=2,
        default=(5.0, 20.0),
        metavar=("MIN", "MAX"),
        help="seconds from each start to its kill, drawn uniformly (longer on a loaded machine, "
        "where a search needs longer to finish its first trials)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run(args.kills, args.trials, args.seed, tuple(args.delays))
    result["delays_s"] = list(args.delays)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(
        f"\n{result['kills']} SIGKILLs, {result['lost']} finished trials lost, "
        f"{result['temporaries_left']} temporary files left after the final resume "
        f"({result['seconds']} s)"
    )
    path = ROOT / "benchmarks" / "results" / "kill_resume.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    sys.exit(0 if result["lost"] == 0 and result["temporaries_left"] == 0 else 1)


if __name__ == "__main__":
    main()
