"""The stacked work unit: several trials' segments trained as one ``train_stacked`` call.

``run_stacked_segment(task)`` is ``engine.run.work.run_segment`` for a stack: a top-level
function of plain data (picklable by reference for a process pool or Dask). The task holds what
the members share (dataset, CSV text, epochs, health) once, and per member what
``run_segment`` takes (model, config, checkpoint, seed). It returns one ``run_segment``-shaped
result per member, in order, so the runner records each member exactly as a solo segment: the
checkpoints are solo checkpoints.
"""

from __future__ import annotations

import time

from engine.run.work import dataset_for, health_every

MEMBER_KEYS = ("model", "config", "checkpoint", "seed")
SHARED_KEYS = ("dataset", "csv_text", "n_epochs")


def _state(member: dict):
    from engine.nn import ModelSpec, new_state, state_from_bytes

    spec = ModelSpec.from_dict(member["model"])
    if member["checkpoint"] is None:
        return new_state(spec, member["seed"])
    state = state_from_bytes(member["checkpoint"])
    if state.spec != spec:
        raise ValueError(f"the checkpoint holds model {state.spec.to_dict()}, but the task "
                         f"asks for {spec.to_dict()}")
    return state


def run_stacked_segment(task: dict) -> dict:
    """Train every member ``task["n_epochs"]`` epochs as one stack.

    task = {"dataset": DatasetSpec dict, "csv_text": str | None, "n_epochs": int,
            optional "health_every": int, "members": [{"model", "config", "checkpoint",
            "seed", optional "health_last": bool}, ...]}
    returns {"members": [run_segment result dict per member], "seconds": float}
    """
    t0 = time.perf_counter()
    from engine.nn import TrainConfig, sha256_hex, state_to_bytes
    from engine.nn.stacked import train_stacked

    missing = [k for k in (*SHARED_KEYS, "members") if k not in task]
    if missing:
        raise ValueError(f"stacked task is missing {', '.join(missing)}")
    members = task["members"]
    for j, m in enumerate(members):
        absent = [k for k in MEMBER_KEYS if k not in m]
        if absent:
            raise ValueError(f"stacked task member {j} is missing {', '.join(absent)}")
    data = dataset_for(task["dataset"], task["csv_text"])
    states = [_state(m) for m in members]
    configs = [TrainConfig.from_dict(m["config"]) for m in members]
    results = train_stacked(states, configs, data, task["n_epochs"],
                            health_every=health_every(task),
                            health_last=[bool(m.get("health_last", False)) for m in members])
    out = []
    for result in results:
        blob = state_to_bytes(result.state, history=False)
        out.append({
            "checkpoint": blob, "sha256": sha256_hex(blob), "epoch": result.state.epoch,
            "metrics": result.metrics, "status": result.status, "message": result.message,
            "seconds": sum(m["seconds"] for m in result.metrics),
        })
    return {"members": out, "seconds": time.perf_counter() - t0}
