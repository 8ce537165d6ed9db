"""How fast the dashboard can read a big study: 1,000 trials x 50 epochs of metrics.

Run from the repository root:

    .venv/bin/python benchmarks/storage_listing.py

It builds a study in a temporary database through the storage API the runner uses (one
``record_segment`` per trial: 50 epochs and a small checkpoint), then times, median of 5 after a
warm-up, what a live page reads on every refresh: ``list_studies``, ``list_trials`` and
``study_metrics`` (50,000 rows as columns), and ``pandas.DataFrame`` built from those columns.
Target: listing trials + metrics well under 1 s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect, transaction  # noqa: E402

N_TRIALS, N_EPOCHS, REPEATS = 1000, 50, 5


def build(conn) -> int:
    study_id = store.create_study(
        conn, name="listing benchmark", space={"params": {}, "fixed": {}},
        sampler={"kind": "random"}, scheduler={"kind": "full_budget", "n_epochs": N_EPOCHS},
        dataset={"kind": "moons"}, seed=0, n_trials=N_TRIALS, workers=2,
    )
    trials = [{"params": {"learning_rate": 10 ** (-4 + 4 * i / N_TRIALS), "hidden_units": 64},
               "unit": [i / N_TRIALS, 0.5], "target_epochs": N_EPOCHS} for i in range(N_TRIALS)]
    ids = store.add_trials(conn, study_id, trials)
    checkpoint = bytes(4096)
    for n, trial_id in enumerate(ids):
        metrics = [{"epoch": e, "train_loss": 1 / e, "train_acc": 1 - 0.5 / e,
                    "val_loss": 1.1 / e, "val_acc": 1 - 0.6 / e - n * 1e-5,
                    "learning_rate": 0.01, "seconds": 0.02} for e in range(1, N_EPOCHS + 1)]
        with transaction(conn):
            store.record_segment(conn, trial_id, metrics, checkpoint, state="complete")
    return study_id


def median_seconds(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        conn = connect(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        study_id = build(conn)
        print(f"built {N_TRIALS} trials x {N_EPOCHS} epochs in {time.perf_counter() - t0:.1f} s "
              f"(one record_segment transaction per trial)")
        t_studies = median_seconds(lambda: store.list_studies(conn))
        t_trials = median_seconds(lambda: store.list_trials(conn, study_id))
        t_metrics = median_seconds(lambda: store.study_metrics(conn, study_id))
        t_frame = median_seconds(lambda: pd.DataFrame(store.study_metrics(conn, study_id)))
        rows = len(store.study_metrics(conn, study_id)["epoch"])
        print(f"list_studies:                      {t_studies * 1000:7.1f} ms")
        print(f"list_trials ({N_TRIALS} trials):            {t_trials * 1000:7.1f} ms")
        print(f"study_metrics ({rows:,} rows):       {t_metrics * 1000:7.1f} ms")
        print(f"study_metrics -> pandas.DataFrame:  {t_frame * 1000:7.1f} ms")
        total = t_trials + t_metrics
        print(f"list_trials + study_metrics:        {total * 1000:7.1f} ms  (target < 1000 ms)")


if __name__ == "__main__":
    main()
