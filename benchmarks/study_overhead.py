"""What the study machinery costs: a 1-trial study against calling train_segment directly.

Run from the repository root:

    .venv/bin/python benchmarks/study_overhead.py [--quick]

The same model, data, hyperparameters, seed and number of epochs, twice:
- `direct`: ``build_dataset`` + ``new_state`` + one ``train_segment`` call in this process,
  NumPy limited to one BLAS thread (as a study's worker is);
- `study`: ``new_study`` + ``run_study`` with 1 worker: a spawned worker process, segments sized
  to ~2 s, each segment's checkpoint sent back, verified and written to SQLite with its
  metrics, heartbeats and intent polling.
Wall time of each, start-up included (median of 2, alternating). Target: study <= 1.10 x direct.
The final weights are compared too: the study's segments must give bitwise the same model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data import build_dataset  # noqa: E402
from engine.nn import ModelSpec, TrainConfig, new_state, state_from_bytes, train_segment  # noqa: E402
from engine.runner import run_study, trial_seed  # noqa: E402
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
    assert run_study(db, study_id) == "complete"
    elapsed = time.perf_counter() - t0
    conn = connect(db)
    trial = store.list_trials(conn, study_id)[0]
    state = state_from_bytes(store.trial_checkpoint(conn, trial["id"]))
    conn.close()
    return elapsed, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, one repeat")
    parser.add_argument("--epochs", type=int, default=150, help="epochs of the trial")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f} (other "
          "processes competing for the cores distort these figures)", flush=True)
    n_epochs, repeats = (5, 1) if args.quick else (args.epochs, 2)
    times_direct, times_study = [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        for r in range(repeats):
            for which in (("direct", "study") if r % 2 == 0 else ("study", "direct")):
                if which == "direct":
                    seconds, direct_state = direct(n_epochs)
                    times_direct.append(seconds)
                else:
                    seconds, study_state = study(db, n_epochs)
                    times_study.append(seconds)
                print(f"  {which:6s} {n_epochs} epochs: {seconds:.2f} s", flush=True)
    same = all(np.array_equal(direct_state.params[k], study_state.params[k])
               for k in direct_state.params)
    td, ts = statistics.median(times_direct), statistics.median(times_study)
    print(f"direct train_segment: {td:.2f} s   1-trial study: {ts:.2f} s   "
          f"overhead {100 * (ts / td - 1):+.1f}% (target <= +10%)   "
          f"final weights bitwise equal: {same}")


if __name__ == "__main__":
    main()
