"""Stand-in work units for runner tests: fast, deterministic, and able to fail on purpose.

They follow ``engine.run.work.run_segment``'s contract (task dict in, result dict out) without
training: the "checkpoint" is JSON holding the epoch, and validation accuracy is a smooth
function of the learning rate (best near 1e-2), so schedulers have something to rank. They live
in a module (not a test file) so spawned worker processes can import them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

EPOCH_SECONDS = 0.005


def _accuracy(lr: float, epoch: int) -> float:
    quality = max(0.0, 1.0 - abs(math.log10(lr) + 2.0) / 4.0)  # 1 at lr=1e-2
    return 0.5 + 0.45 * quality * (1.0 - 0.5 ** epoch)


def fake_segment(task: dict) -> dict:
    """Train ``n_epochs`` pretend epochs from the task's checkpoint."""
    start = 0 if task["checkpoint"] is None else json.loads(task["checkpoint"])["epoch"]
    lr = task["config"]["learning_rate"]
    metrics, status, message = [], "ok", ""
    for epoch in range(start + 1, start + task["n_epochs"] + 1):
        time.sleep(EPOCH_SECONDS)
        if lr > 10.0 and epoch == 2:
            status, message = "diverged", f"loss became nan at epoch {epoch} (learning rate {lr})"
            break
        acc = _accuracy(lr, epoch)
        metrics.append({
            "epoch": epoch, "train_loss": 1.0 - acc, "train_acc": acc, "val_loss": 1.1 - acc,
            "val_acc": acc, "learning_rate": lr, "seconds": EPOCH_SECONDS,
        })
    done = start + len(metrics)
    blob = json.dumps({"epoch": done, "seed": task["seed"]}).encode()
    return {
        "checkpoint": blob, "sha256": hashlib.sha256(blob).hexdigest(), "epoch": done,
        "metrics": metrics, "status": status, "message": message, "seconds": 0.0,
    }


def failing_segment(task: dict) -> dict:
    """Raise inside the worker for learning rates below 1e-3; else like ``fake_segment``."""
    if task["config"]["learning_rate"] < 1e-3:
        raise RuntimeError("boom: this trial's work unit raised on purpose")
    return fake_segment(task)


def dying_segment(task: dict) -> dict:
    """Kill the worker process once per marker (a trial with learning rate below 1e-3, on its
    second segment), then behave like ``fake_segment``; ``$FAKE_DIE_DIR`` holds the markers.
    With ``$FAKE_DIE_ALWAYS`` set it dies every time for such trials."""
    if task["config"]["learning_rate"] < 1e-3 and task["checkpoint"] is not None:
        marker = Path(os.environ["FAKE_DIE_DIR"]) / f"died-{task['seed']}"
        if os.environ.get("FAKE_DIE_ALWAYS") or not marker.exists():
            marker.touch()
            os._exit(1)
    return fake_segment(task)


def dying_beside_slow(task: dict) -> dict:
    """``dying_segment`` for learning rates below 1e-3; others take 0.3 s a segment, so they
    are in flight on another worker whenever the dying one dies."""
    if task["config"]["learning_rate"] >= 1e-3:
        time.sleep(0.3)
    return dying_segment(task)


def slow_segment(task: dict) -> dict:
    """Like ``fake_segment`` but 0.1 s per epoch (time to stop or kill mid-study)."""
    time.sleep(0.1 * task["n_epochs"])
    return fake_segment(task)


def exit_now() -> None:
    """End the worker process at once, as a crash would."""
    os._exit(1)


def worker_report() -> dict:
    """What a local worker holds when a task arrives, and its OS threads after BLAS work."""
    import sys

    preloaded = {name: name in sys.modules for name in ("engine.nn", "scipy.linalg.blas")}
    import numpy as np
    from scipy.linalg import blas

    a = np.ones((400, 400), np.float32)
    for _ in range(3):  # big enough for OpenBLAS to use every thread it is allowed
        a @ a
        blas.sgemm(1.0, a, a)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    return {"preloaded": preloaded, "threads": threads, "pid": os.getpid()}


def pid_after(seconds: float) -> int:
    """This worker's pid, after a pause (so that several calls land on several workers)."""
    time.sleep(seconds)
    return os.getpid()
