"""What the study machinery costs: a 1-trial study against calling train_segment directly.

Run from the repository root:

    .venv/bin/python benchmarks/study_overhead.py [--quick] [--epochs N]

The same model (MLP 20-128-128-3, batch norm, Adam), data (6,000 synthetic samples), seed and
number of epochs, twice:
- `direct`: ``build_dataset`` + ``new_state`` + one ``train_segment`` call in this process
  (the engine already imported), NumPy limited to one BLAS thread (as a study's worker is);
- `study`: ``new_study``, then the runner exactly as the dashboard starts it
  (``engine.run.launch.runner_command``: ``python -m engine run --study ID``, one BLAS thread), here
  in the foreground with 1 worker and its output to a log file: a runner process, a fork server
  and its worker, segments sized to ``engine.study.runner.SEGMENT_SECONDS`` of training each, each
  segment's checkpoint sent back, verified and written to SQLite with its metrics, heartbeats
  and intent polling, then the final status and the runner's exit.
Wall time of each, the study's until its runner process has exited (median of 2, or of
``--repeats``, alternating; the default 500 epochs take ~6 s direct on a quiet core). Three figures:
- start-up: a 1-epoch study minus a 1-epoch direct run (median of 3): everything a study pays
  once (processes starting, imports, data built, first segment scheduled, the end);
- per segment: what is left of the long study's excess, per segment after the first (a
  checkpoint out and back, SQLite, the next task), which also absorbs any difference in
  training speed between the worker and this process;
- the total: study / direct - 1. Target <= +10%.
The final weights are compared too: the study's segments must give bitwise the same model.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg  # noqa: F401  (so the BLAS report lists SciPy's BLAS too, as workers load it)
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blas_report, run_runner  # noqa: E402

from engine.data import build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, state_from_bytes, train_segment  # noqa: E402
from engine.search import trial_config  # noqa: E402
from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.study.facade import new_study  # noqa: E402
from engine.study.runner import SEGMENT_SECONDS, trial_seed  # noqa: E402

FIXED = {"hidden_layers": 2, "hidden_units": 128, "batch_size": 64, "optimizer": "adam",
         "learning_rate": 1e-3}
DATA = {"kind": "synthetic", "n_samples": 6000, "n_features": 20, "n_classes": 3, "seed": 0}
SEED = 7
TARGET = 0.10


def direct(n_epochs: int):
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        data = build_dataset(DATA)
        model, config, _ = trial_config({**FIXED, "n_epochs": n_epochs},
                                        data.X_train.shape[1], data.n_classes)
        state = new_state(ModelSpec(**model), trial_seed(SEED, 0))
        result = train_segment(state, TrainConfig(**config), data, n_epochs)
    return {"seconds": time.perf_counter() - t0, "state": result.state}


def study(db: Path, n_epochs: int):
    study_id = new_study(db, name="overhead", space={"params": {}, "fixed": FIXED},
                         sampler={"kind": "random"}, dataset=DATA, n_trials=1, seed=SEED,
                         scheduler={"kind": "full_budget", "n_epochs": n_epochs}, workers=1)
    run = run_runner(db, study_id)
    elapsed, launched, out = run["seconds"], run["launched"], run["log"]
    conn = connect(db)
    info = store.get_study(conn, study_id)
    assert info["status"] == "complete", info["status"]
    trial = store.list_trials(conn, study_id)[0]
    state = state_from_bytes(store.trial_checkpoint(conn, trial["id"]))
    conn.close()
    return {"seconds": elapsed, "state": state, "complete_at": info["finished_at"] - launched,
            "segments": len(re.findall(r"trial \d+: epoch \d+/\d+", out))}


def compare(db: Path, n_epochs: int, repeats: int, verbose: bool = True) -> dict:
    """Medians of direct and study runs of ``n_epochs``, alternating which goes first."""
    runs = {"direct": [], "study": []}
    for r in range(repeats):
        for which in (("direct", "study") if r % 2 == 0 else ("study", "direct")):
            run = direct(n_epochs) if which == "direct" else study(db, n_epochs)
            runs[which].append(run)
            if verbose:
                extra = (f" ({run['segments']} segments; status complete after "
                         f"{run['complete_at']:.2f} s)" if which == "study" else "")
                print(f"  {which:6s} {n_epochs} epochs: {run['seconds']:.2f} s{extra}", flush=True)
    d, s = runs["direct"][-1]["state"], runs["study"][-1]["state"]
    return {
        "direct": statistics.median(r["seconds"] for r in runs["direct"]),
        "study": statistics.median(r["seconds"] for r in runs["study"]),
        "complete_at": statistics.median(r["complete_at"] for r in runs["study"]),
        "segments": runs["study"][-1]["segments"],
        "same": all(np.array_equal(d.params[k], s.params[k]) for k in d.params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one repeat")
    parser.add_argument("--epochs", type=int, default=500, help="epochs of the trial")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (median)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(other processes competing for the cores distort these figures)")
    print(f"BLAS (this process; the runner and its worker inherit the environment): "
          f"{blas_report()}", flush=True)
    n_epochs, repeats = (5, 1) if args.quick else (args.epochs, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        one = compare(db, 1, 3, verbose=False)
        startup = one["study"] - one["direct"]
        print(f"start-up (1-epoch study {one['study']:.2f} s - 1-epoch direct "
              f"{one['direct']:.2f} s, median of 3): {startup:.2f} s; the study reads complete "
              f"{one['complete_at']:.2f} s after its launch, the processes' exit takes the rest",
              flush=True)
        long = compare(db, n_epochs, repeats)
    td, ts = long["direct"], long["study"]
    rest = ts - td - startup
    per_segment = rest / max(long["segments"] - 1, 1)
    total = ts / td - 1
    print(f"direct train_segment: {td:.2f} s   1-trial study: {ts:.2f} s   "
          f"overhead {100 * total:+.1f}% = start-up {100 * startup / td:.1f}% "
          f"({startup:.2f} s) + segments {100 * rest / td:+.1f}% ({long['segments']} segments "
          f"of ~{SEGMENT_SECONDS:g} s, {1000 * per_segment:+.0f} ms each after the first)")
    print(f"final weights bitwise equal: {long['same']}")
    print(f"{'PASS' if total <= TARGET else 'FAIL'}: overhead {100 * total:+.1f}% "
          f"(target <= +{100 * TARGET:.0f}%); the start-up alone needs a trial of "
          f">= {startup / TARGET:.1f} s of training to stay under it")


if __name__ == "__main__":
    main()
