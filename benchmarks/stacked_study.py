"""Stacking as a user meets it: a whole study through the runner, stacked against one at a time.

Run from the repository root (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on this machine, hold
OpenBLAS to an older kernel; this command unsets them for itself and its runners only, and the
script prints the kernel that ran):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/stacked_study.py
    (--quick: 16 trials, one round, a smoke run; --workers 2: the dashboard's default here)

``benchmarks/stacked.py`` measures ``train_stacked`` against ``train_segment`` in one process;
this measures what a user waits for. Case (a) of that script as a study: 64 trials of
2-16-16-2 (Adam, no batch norm) on moons, 1,000 points, batch 32, 20 epochs, a random search
over the learning rate, Adam's beta1 and L2; created with ``new_study`` and run by the
dashboard's own runner command (``engine.run.launch.runner_command``: a runner process, its
fork server and workers, every segment's checkpoint and metrics committed to SQLite), once with
stacking on and once with ``$PANDA_CAVIAR_STACK=0``, alternating, best of ``--repeat`` rounds
(default 2). Printed per mode: wall seconds from launch to the runner's exit, trials/s, the
training seconds the trials recorded (their epochs' ``seconds``: a stacked member's share of
its stack), what the rest of the wall time went to (start-up, checkpoints, SQLite, waiting),
and the segments recorded; then the ratio. Both modes must find the same final validation
losses (each member trains as it would alone, up to float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from _common import blas_report, run_runner  # noqa: E402

from engine.storage import studies as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402
from engine.storage.trials import list_trials, trial_metrics  # noqa: E402
from engine.study.facade import new_study  # noqa: E402

SPACE = {
    "params": {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 0.03, "scale": "log"},
        "beta1": {"type": "float", "low": 0.8, "high": 0.99, "scale": "one_minus_log"},
        "l2": {"type": "float", "low": 1e-6, "high": 1e-2, "scale": "log"},
    },
    "fixed": {"optimizer": "adam", "batch_size": 32, "hidden_layers": 2, "hidden_units": 16,
              "batch_norm": False, "activation": "relu"},
}
DATA = {"kind": "moons", "n_samples": 1000, "noise": 0.2}
N_EPOCHS = 20
SEED = 11


def run_study(db: Path, n_trials: int, stack: bool, workers: int, n_epochs: int = N_EPOCHS) -> dict:
    study_id = new_study(db, name=f"stacked-{stack}", space=SPACE, sampler={"kind": "random"},
                         dataset=DATA, n_trials=n_trials, seed=SEED, workers=workers,
                         scheduler={"kind": "full_budget", "n_epochs": n_epochs})
    run = run_runner(db, study_id, {"PANDA_CAVIAR_STACK": "1" if stack else "0"})
    conn = connect(db)
    try:
        assert store.get_study(conn, study_id)["status"] == "complete"
        trials = list_trials(conn, study_id)
        rows = {t["number"]: trial_metrics(conn, t["id"]) for t in trials}
    finally:
        conn.close()
    assert len(rows) == n_trials and all(len(r) == n_epochs for r in rows.values())
    return {
        "wall": run["seconds"],
        "training": sum(m["seconds"] for r in rows.values() for m in r),
        "final": {n: r[-1]["val_loss"] for n, r in rows.items()},
        "segments": len(re.findall(r"trial \d+: epoch \d+/", run["log"])) / n_trials,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 trials, one round")
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    n_trials, repeat = (16, 1) if args.quick else (args.trials, args.repeat)
    load = os.getloadavg()
    print(f"BLAS: {blas_report()}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {n_trials} trials, "
          f"{args.workers} worker(s), best of {repeat}", flush=True)
    best: dict[bool, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            for stack in ((True, False) if r % 2 == 0 else (False, True)):
                run = run_study(Path(tmp) / f"bench-{r}-{stack}.db", n_trials, stack,
                                args.workers)
                print(f"  round {r + 1} {'stacked' if stack else 'one at a time'}: "
                      f"{run['wall']:.2f} s", flush=True)
                if stack not in best or run["wall"] < best[stack]["wall"]:
                    best[stack] = run
        startup = min(run_study(Path(tmp) / f"startup-{r}.db", 1, True, args.workers, 1)["wall"]
                      for r in range(2))
    print(f"start-up: a 1-trial, 1-epoch study takes {startup:.2f} s (best of 2)")
    for stack, label in ((False, "one at a time"), (True, "stacked")):
        b = best[stack]
        print(f"{label:14s} {b['wall']:6.2f} s wall  {n_trials / b['wall']:6.1f} trials/s  "
              f"training {b['training']:5.2f} s ({100 * b['training'] / b['wall']:4.1f}% of the "
              f"wall)  the rest {b['wall'] - b['training']:5.2f} s  {b['segments']:.1f} "
              "segments a trial")
    worst = max(abs(best[True]["final"][n] - best[False]["final"][n]) / (1 + abs(v))
                for n, v in best[False]["final"].items())
    print(f"ratio {best[False]['wall'] / best[True]['wall']:.2f}x (wall, stacked vs one at a "
          f"time); final validation losses agree within {worst:.1e} (relative to 1 + |loss|)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"stacked": best[True]["wall"], "solo": best[False]["wall"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
