"""Caviar's parallelism: 8 equal trials on 2 local workers against 1 worker, in one run.

Run from the repository root:

    .venv/bin/python benchmarks/parallel_speedup.py [--quick]

Both studies are the same 8 trials (every hyperparameter fixed, so every trial costs the same:
an MLP 20-128-128-3 with batch norm and Adam on 6,000 synthetic samples) run by the real study
runner as the CLI runs it (``python -m engine run --study ID``: spawned worker processes with
one BLAS thread each, segments, checkpoints and metrics written to SQLite). The wall time of
each whole study is measured, process start-up included; the 1-worker and 2-worker studies
alternate so load from other processes hits both alike. The CPU time of the runner and its
workers per wall second shows how many cores the study actually got.
Target: time(2 workers) / time(1 worker) <= 0.6.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.studies import new_study  # noqa: E402

FIXED = {"hidden_layers": 2, "hidden_units": 128, "batch_size": 64, "optimizer": "adam"}
DATA = {"kind": "synthetic", "n_samples": 6000, "n_features": 20, "n_classes": 3, "seed": 0}


def study_seconds(db: Path, workers: int, n_trials: int, n_epochs: int) -> float:
    study_id = new_study(db, name=f"{workers} workers", space={"params": {}, "fixed": FIXED},
                         sampler={"kind": "random"}, dataset=DATA, n_trials=n_trials,
                         scheduler={"kind": "full_budget", "n_epochs": n_epochs},
                         workers=workers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "run", "--study", str(study_id), "--db",
                    str(db)], cwd=REPO, check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = store.get_study(connect(db), study_id)["status"]
    assert status == "complete", status
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one repeat")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per trial")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f} (other "
          "processes competing for the cores distort these figures)", flush=True)
    n_trials, n_epochs, repeats = (8, 3, 1) if args.quick else (8, args.epochs, 2)
    one, two = [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for r in range(repeats):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for workers in order:
                seconds, cpu = study_seconds(db, workers, n_trials, n_epochs)
                (one if workers == 1 else two).append(seconds)
                print(f"  {n_trials} trials x {n_epochs} epochs on {workers} worker(s): "
                      f"{seconds:.2f} s wall, CPU {cpu:.2f} s (= {cpu / seconds:.2f} "
                      "cores busy on average)", flush=True)
    t1, t2 = statistics.median(one), statistics.median(two)
    print(f"1 worker: {t1:.2f} s   2 workers: {t2:.2f} s   ratio 2/1 = {t2 / t1:.2f} "
          f"(target <= 0.60; speed-up {t1 / t2:.2f}x)")


if __name__ == "__main__":
    main()
