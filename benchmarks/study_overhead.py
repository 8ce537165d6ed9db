"""What the study machinery costs: a 1-trial study against calling train_segment directly.

Run from the repository root:

    .venv/bin/python benchmarks/study_overhead.py [--quick]

The same model, data, hyperparameters, seed and number of epochs, twice:
- `direct`: ``build_dataset`` + ``new_state`` + one ``train_segment`` call in this process,
  NumPy limited to one BLAS thread (as a study's worker is);
- `study`: ``new_study``, then ``python -m engine run --study ID`` with 1 worker, as the
  dashboard's runner runs it: a runner process, a spawned worker process, segments sized to
  ~2 s, each segment's checkpoint sent back, verified and written to SQLite with its metrics,
  heartbeats and intent polling.
Wall time of each, start-up included (median of 2, alternating; the default 500 epochs take
~10 s on a quiet core). The fixed start-up is measured apart with 1-epoch runs. Target: study
<= 1.10 x direct.
The final weights are compared too: the study's segments must give bitwise the same model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.data import build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, state_from_bytes, train_segment  # noqa: E402
from engine.runner import trial_seed  # noqa: E402
from engine.search import trial_config  # noqa: E402
from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.studies import new_study  # noqa: E402

FIXED = {"hidden_layers": 2, "hidden_units": 128, "batch_size": 64, "optimizer": "adam",
         "learning_rate": 1e-3}
DATA = {"kind": "synthetic", "n_samples": 6000, "n_features": 20, "n_classes": 3, "seed": 0}
SEED = 7


def direct(n_epochs: int):
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        data = build_dataset(DATA)
        model, config, _ = trial_config({**FIXED, "n_epochs": n_epochs},
                                        data.X_train.shape[1], data.n_classes)
        state = new_state(ModelSpec(**model), trial_seed(SEED, 0))
        result = train_segment(state, TrainConfig(**config), data, n_epochs)
    return time.perf_counter() - t0, result.state


def study(db: Path, n_epochs: int):
    study_id = new_study(db, name="overhead", space={"params": {}, "fixed": FIXED},
                         sampler={"kind": "random"}, dataset=DATA, n_trials=1, seed=SEED,
                         scheduler={"kind": "full_budget", "n_epochs": n_epochs}, workers=1)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "engine", "run", "--study", str(study_id), "--db",
                    str(db)], cwd=REPO, check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    conn = connect(db)
    trial = store.list_trials(conn, study_id)[0]
    state = state_from_bytes(store.trial_checkpoint(conn, trial["id"]))
    conn.close()
    return elapsed, state


def compare(db: Path, n_epochs: int, repeats: int, verbose: bool = True):
    """Median wall seconds of (direct, study) for ``n_epochs``, alternating which goes first."""
    times = {"direct": [], "study": []}
    states = {}
    for r in range(repeats):
        for which in (("direct", "study") if r % 2 == 0 else ("study", "direct")):
            seconds, states[which] = (direct if which == "direct" else
                                      lambda n: study(db, n))(n_epochs)
            times[which].append(seconds)
            if verbose:
                print(f"  {which:6s} {n_epochs} epochs: {seconds:.2f} s", flush=True)
    same = all(np.array_equal(states["direct"].params[k], states["study"].params[k])
               for k in states["direct"].params)
    return statistics.median(times["direct"]), statistics.median(times["study"]), same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one repeat")
    parser.add_argument("--epochs", type=int, default=500, help="epochs of the trial")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f} (other "
          "processes competing for the cores distort these figures)", flush=True)
    n_epochs, repeats = (5, 1) if args.quick else (args.epochs, 2)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        d1, s1, _ = compare(db, 1, 3, verbose=False)
        print(f"start-up (1-epoch study - 1-epoch direct, median of 3): {s1 - d1:.2f} s "
              "(runner and worker processes starting, importing the engine, building the data)")
        td, ts, same = compare(db, n_epochs, repeats)
    startup = s1 - d1
    print(f"direct train_segment: {td:.2f} s   1-trial study: {ts:.2f} s   "
          f"overhead {100 * (ts / td - 1):+.1f}% (target <= +10%): start-up "
          f"{100 * startup / td:.1f}%, the rest {100 * (ts - td - startup) / td:+.1f}%   "
          f"final weights bitwise equal: {same}")


if __name__ == "__main__":
    main()
