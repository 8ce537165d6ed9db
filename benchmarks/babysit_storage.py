"""How big a babysitting session's database grows: 2,000 epochs of an 82k-parameter model.

Issue 12 fault 4: checkpoints grew by ~1 MB an epoch (every epoch kept below 100k parameters,
every 5th above). The retention budget now keeps the recent epochs, thins older ones with age,
and keeps the best, forks and knob changes. This prints, measured in the same run, the database
size of the session under the default budget beside what keeping every checkpoint would take
(one checkpoint's bytes times the epochs), and the checkpoints kept.

    .venv/bin/python benchmarks/babysit_storage.py [--epochs 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import babysit  # noqa: E402
from engine.storage import sessions as store  # noqa: E402
from engine.storage.db import connect  # noqa: E402

MODEL = {"hidden": [256, 256, 64], "batch_norm": True}  # 2 inputs: 82,626 parameters
DATASET = {"kind": "moons", "n_samples": 200, "noise": 0.2, "seed": 0}
CONFIG = {"learning_rate": 1e-3, "batch_size": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "babysit.db")
        conn = connect(db)
        sid = babysit.new_session(conn, name="storage", model=MODEL, dataset=DATASET,
                                  config=CONFIG, seed=0)
        one = conn.execute("SELECT n_bytes FROM checkpoints").fetchone()[0]
        t0 = time.perf_counter()
        done = 0
        while done < args.epochs:  # a knob change every 500 epochs, as a person would
            n = min(500, args.epochs - done)
            babysit.execute(conn, sid, "run", {"epochs": n})
            done += n
            if done < args.epochs:
                lr = babysit.session_view(conn, sid)["config"]["learning_rate"]
                babysit.execute(conn, sid, "set", {"learning_rate": lr * 0.7})
        seconds = time.perf_counter() - t0
        view = babysit.session_view(conn, sid)
        kept = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        size = os.path.getsize(db)
        nodes = len(store.session_nodes(connect(db), sid))
    print(f"model {MODEL['hidden']}: {view['n_params']:,} parameters, one checkpoint "
          f"{one / 2**20:.2f} MB; {args.epochs} epochs in {seconds:.0f} s ({nodes} nodes)")
    print(f"database after the session: {size / 2**20:.1f} MB, {kept} checkpoints kept "
          f"(retention {view['retention']})")
    print(f"keeping every checkpoint would take: {one * (args.epochs + 1) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
