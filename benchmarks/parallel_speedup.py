"""Caviar's parallelism: 8 equal trials on 2 local workers against 1 worker, in one run.

Run from the repository root:

    .venv/bin/python benchmarks/parallel_speedup.py [--quick] [--epochs N]

Both studies are the same 8 trials (every hyperparameter fixed, so every trial costs the same:
an MLP 20-128-128-3 with batch norm and Adam on 6,000 synthetic samples; the default 80 epochs
are ~1 s of training per trial on one core, printed as measured) run by the real study runner
exactly as the dashboard starts it (``engine.run.launch.runner_command``: ``python -m engine run
--study ID``, here in the foreground, output to a log file): workers forked from a preloaded
fork server, one BLAS thread each, segments, checkpoints and metrics written to SQLite. The
wall time of each whole study is measured until its runner exits, start-up included; the
1-worker and 2-worker studies alternate so load from other processes hits both alike.
Two measures of how many cores a study got: the CPU time of the runner and every process below
it per wall second (this script makes itself their reaper, so the workers forked by the fork
server are counted too), and the training time the workers report per wall second.
Target: time(2 workers) / time(1 worker) <= 0.6.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import scipy.linalg  # noqa: F401  (so the BLAS report lists SciPy's BLAS too, as workers load it)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blas_report, run_runner  # noqa: E402

from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.study.facade import new_study  # noqa: E402

FIXED = {"hidden_layers": 2, "hidden_units": 128, "batch_size": 64, "optimizer": "adam"}
DATA = {"kind": "synthetic", "n_samples": 6000, "n_features": 20, "n_classes": 3, "seed": 0}
TARGET = 0.6
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so their CPU time reaches RUSAGE_CHILDREN."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_descendants(timeout: float = 10.0) -> None:
    """Wait for every adopted process (the fork server, the resource tracker) to exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def run_study(db: Path, workers: int, n_trials: int, n_epochs: int) -> dict:
    study_id = new_study(db, name=f"{workers} workers", space={"params": {}, "fixed": FIXED},
                         sampler={"kind": "random"}, dataset=DATA, n_trials=n_trials,
                         scheduler={"kind": "full_budget", "n_epochs": n_epochs},
                         workers=workers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = run_runner(db, study_id)["seconds"]
    reap_descendants()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    conn = connect(db)
    status = store.get_study(conn, study_id)["status"]
    assert status == "complete", status
    trained = [t["seconds"] for t in store.list_trials(conn, study_id)]
    conn.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": elapsed, "cpu": cpu, "trained": sum(trained),
            "per_trial": statistics.mean(trained)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one repeat")
    parser.add_argument("--epochs", type=int, default=80, help="epochs per trial")
    parser.add_argument("--repeats", type=int, default=2, help="studies of each size (median)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(other processes competing for the cores distort these figures)")
    print(f"BLAS (this process; the runners and workers inherit the environment): "
          f"{blas_report()}", flush=True)
    reaper = become_subreaper()
    n_trials, n_epochs, repeats = (8, 5, 1) if args.quick else (8, args.epochs, args.repeats)
    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for r in range(repeats):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                run = run_study(db, workers, n_trials, n_epochs)
                runs[workers].append(run)
                print(f"  {workers} worker(s): {run['seconds']:.2f} s wall; CPU "
                      f"{run['cpu']:.2f} s (= {run['cpu'] / run['seconds']:.2f} cores busy"
                      f"{'' if reaper else ', workers not counted'}); training "
                      f"{run['trained']:.2f} s (= {run['trained'] / run['seconds']:.2f} trials "
                      "training at once)", flush=True)
    t1 = statistics.median(r["seconds"] for r in runs[1])
    t2 = statistics.median(r["seconds"] for r in runs[2])
    per_trial = statistics.median(r["per_trial"] for r in runs[1])
    ratio = t2 / t1
    print(f"{n_trials} equal trials of {n_epochs} epochs, each ~{per_trial:.2f} s of training "
          f"on one worker: 1 worker {t1:.2f} s, 2 workers {t2:.2f} s, ratio 2/1 = {ratio:.2f} "
          f"(speed-up {t1 / t2:.2f}x)")
    print(f"{'PASS' if ratio <= TARGET else 'FAIL'}: ratio {ratio:.2f} (target <= {TARGET})")


if __name__ == "__main__":
    main()
