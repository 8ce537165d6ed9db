"""The work unit that executors run: one training segment, from a task dict to a result dict.

``run_segment`` is a top-level function of plain data in and plain data out (a checkpoint is
``.npz`` bytes), so it pickles by reference for a local process pool or a Dask cluster, and a
worker needs nothing but this package. Built datasets are cached per process, keyed by the JSON
of their spec and the hash of the uploaded CSV text, so the segments of a study that land on
the same worker build their data once.

The engine itself (``engine.nn``, ``engine.data``) is imported on first use, not with this
module: a runner refers to ``run_segment`` without paying ~0.3 s to load NumPy's and SciPy's
BLAS and the training code it never runs (local workers get them preloaded by their fork
server, see ``engine.run.execution``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.data import Dataset, DatasetSpec

TASK_KEYS = ("model", "config", "dataset", "csv_text", "checkpoint", "seed", "n_epochs")
CACHE_SIZE = 4  # datasets kept per process
# network health: "auto" = at most 3% of the training time (epoch 1, every 2**j-th epoch, and the
# segment's last if the task says "health_last"; engine.nn.health.Cadence); every epoch cost
# +5% to +60% (benchmarks/health_overhead.py)
HEALTH_EVERY = "auto"

_datasets: OrderedDict[str, Dataset] = OrderedDict()


def dataset_for(spec: dict | DatasetSpec, csv_text: str | bytes | None = None) -> Dataset:
    """The built dataset of ``spec`` from this process's cache (building it on a miss)."""
    from engine.data import DatasetSpec, build_dataset

    spec = spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_dict(spec)
    if isinstance(csv_text, str):
        csv_hash = hashlib.sha256(csv_text.encode()).hexdigest()
    else:
        csv_hash = "" if csv_text is None else hashlib.sha256(csv_text).hexdigest()
    key = json.dumps(spec.to_dict(), sort_keys=True) + "|" + csv_hash
    data = _datasets.get(key)
    if data is None:
        data = build_dataset(spec, csv_text)
        _datasets[key] = data
        while len(_datasets) > CACHE_SIZE:
            _datasets.popitem(last=False)
    else:
        _datasets.move_to_end(key)
    return data


def health_every(task: dict) -> int | str:
    """How often the segment measures network health: the task's ``"health_every"`` if given,
    else $PANDA_CAVIAR_HEALTH_EVERY, else ``HEALTH_EVERY``: an integer k (every k-th epoch;
    0 = never) or ``"auto"``."""
    from engine.nn.health import check_every

    value, where = task.get("health_every"), "task health_every"
    if value is None:
        value, where = os.environ.get("PANDA_CAVIAR_HEALTH_EVERY"), "$PANDA_CAVIAR_HEALTH_EVERY"
        if value is None or value.strip() == "":
            return HEALTH_EVERY
        value = value.strip()
        value = int(value) if value.isdigit() else value
    return check_every(where, value)


def run_segment(task: dict) -> dict:
    """Train ``task["n_epochs"]`` epochs and return the new checkpoint and the epoch metrics.

    task = {"model": ModelSpec dict, "config": TrainConfig dict, "dataset": DatasetSpec dict,
            "csv_text": str | None, "checkpoint": bytes | None, "seed": int, "n_epochs": int,
            optional "health_every": int | "auto" (see ``health_every``), optional
            "health_last": bool (also measure the segment's last epoch)}
    returns {"checkpoint": bytes, "sha256": str, "epoch": int, "metrics": [EpochMetrics...],
             "status": "ok" | "diverged", "message": str, "seconds": float}
    ``checkpoint=None`` starts from ``new_state(model, seed)``; a given checkpoint must hold
    the same model. The epochs ``health_every`` picks carry ``"health"`` in their metrics
    (``engine.nn.health.epoch_health``).
    """
    t0 = time.perf_counter()
    from engine.nn import (
        ModelSpec,
        TrainConfig,
        new_state,
        sha256_hex,
        state_from_bytes,
        state_to_bytes,
        train_segment,
    )

    missing = [key for key in TASK_KEYS if key not in task]
    if missing:
        raise ValueError(f"task is missing {', '.join(missing)}; a task has {', '.join(TASK_KEYS)}")
    from engine.nn.size import check_size

    spec = ModelSpec.from_dict(task["model"])
    config = TrainConfig.from_dict(task["config"])
    check_size(spec, config.batch_size, config.optimizer)  # before allocating anything
    data = dataset_for(task["dataset"], task["csv_text"])
    if task["checkpoint"] is None:
        state = new_state(spec, task["seed"])
    else:
        state = state_from_bytes(task["checkpoint"])
        if state.spec != spec:
            raise ValueError(
                f"the checkpoint holds model {state.spec.to_dict()}, but the task asks for "
                f"{spec.to_dict()}"
            )
    result = train_segment(state, config, data, task["n_epochs"], health_every=health_every(task),
                           health_last=bool(task.get("health_last", False)))
    blob = state_to_bytes(result.state, history=False)
    return {
        "checkpoint": blob,
        "sha256": sha256_hex(blob),
        "epoch": result.state.epoch,
        "metrics": result.metrics,
        "status": result.status,
        "message": result.message,
        "seconds": time.perf_counter() - t0,
    }
